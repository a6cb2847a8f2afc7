//! `jool-harness versions` and labels that follow the kernel:
//!
//! - every fixture is emulated and snapshotted (a fixture added without
//!   its snapshot fails here, and in `snapshots`);
//! - the matrix: every client x kernel pair predicted from the tables and
//!   run in-process agree, match `fixtures/versions/README.md`'s list, and
//!   `docs/version-matrix.md` is current;
//! - `versions diff 4.1.9 4.1.12` (insta);
//! - `versions import` reproduces `fixtures/jool-src-synthetic/expected/`
//!   from the synthetic trees beside it, and, when a Jool git mirror is
//!   present, every `fixtures/versions/*.toml` from its real release;
//! - `jool-stats` labels with the kernel's release by default, warns when
//!   forced to other labels, and fails with `--strict`.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use jool_harness::compat::{
    self, diff, import, matrix,
    predict::{UnknownEffect, Verdict},
};
use jool_harness::matrix::cross;
use jool_sim::versions::Profile;

use crate::util::{fixtures, run_in_process, temp_path};

fn root() -> PathBuf {
    fixtures().join("..")
}

/// Release names of `fixtures/versions/*.toml`, read from disk now.
fn fixture_releases() -> BTreeSet<String> {
    let dir = fixtures().join("versions");
    fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn test_every_fixture_is_emulated_and_snapshotted() {
    let on_disk = fixture_releases();
    let embedded: BTreeSet<String> =
        Profile::names().into_iter().map(str::to_owned).collect();
    assert_eq!(
        on_disk, embedded,
        "the embedded fixtures are stale: rebuild jool-sim"
    );
    let snapshots =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let missing: Vec<&String> = on_disk
        .iter()
        .filter(|r| !snapshots.join(format!("display__{r}.snap")).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "fixtures without a display snapshot: {missing:?}; run `cargo insta test -p jool-harness` (or INSTA_UPDATE=always) and review"
    );
}

#[test]
fn test_matrix_prediction_and_simulation_agree_for_every_pair() {
    let m = matrix::build().unwrap_or_else(|e| panic!("{e:#?}"));
    let n = Profile::all().len();
    assert_eq!((m.cells.len(), m.cells[0].len()), (n, n));
    for (i, p) in m.releases.iter().enumerate() {
        assert!(m.cells[i][i].is_exact(), "{} against itself", p.release);
    }
}

#[test]
fn test_matrix_doc_is_current() {
    let m = matrix::build().unwrap_or_else(|e| panic!("{e:#?}"));
    let path = root().join("docs/version-matrix.md");
    let have = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == matrix::markdown(&m),
        "docs/version-matrix.md is not current: run `cargo run -p jool-harness --bin jool-harness -- versions matrix > docs/version-matrix.md`"
    );
}

/// One line of the README's mislabel list.
struct Case {
    clients: Vec<String>,
    kernels: Vec<String>,
    mislabeled: usize,
    /// First and last unknown id, and whether the client fails on them.
    unknown: Option<(u16, u16, bool)>,
}

/// `- client 4.1.5/4.1.6 + kernel 4.1.9/4.1.10: 57 ids mislabeled, ids
/// 69..69 unknown to client (error)`
fn readme_cases() -> Vec<Case> {
    let readme =
        fs::read_to_string(fixtures().join("versions/README.md")).unwrap();
    let mut out = Vec::new();
    for line in readme.lines().filter_map(|l| l.strip_prefix("- client ")) {
        let Some((clients, rest)) = line.split_once(" + kernel ") else {
            continue;
        };
        let (kernels, rest) = rest.split_once(": ").unwrap();
        let mislabeled = rest.split(' ').next().unwrap().parse().unwrap();
        let unknown = rest.split_once(", ids ").map(|(_, u)| {
            let (range, how) = u.split_once(" unknown to client ").unwrap();
            let (a, b) = range.split_once("..").unwrap();
            (a.parse().unwrap(), b.parse().unwrap(), how == "(error)")
        });
        let names =
            |s: &str| s.split('/').map(str::to_owned).collect::<Vec<_>>();
        out.push(Case {
            clients: names(clients),
            kernels: names(kernels),
            mislabeled,
            unknown,
        });
    }
    out
}

#[test]
fn test_matrix_matches_the_fixtures_readme() {
    let m = matrix::build().unwrap_or_else(|e| panic!("{e:#?}"));
    let cases = readme_cases();
    assert!(cases.len() >= 20, "the README's mislabel list was not found");
    let mut listed = BTreeSet::new();
    for case in &cases {
        let (n, unknown) = (&case.mislabeled, &case.unknown);
        for c in &case.clients {
            for k in &case.kernels {
                listed.insert((c.clone(), k.clone()));
                let v = m.get(c, k).unwrap();
                let Verdict::Accepted {
                    mislabels, unknown: u, effect, ..
                } = v
                else {
                    panic!("{c} x {k}: {v:?}")
                };
                assert_eq!(mislabels.len(), *n, "{c} x {k}");
                let got = u.first().map(|r| {
                    (
                        r.first,
                        r.last,
                        matches!(effect, Some(UnknownEffect::FailsAt(_))),
                    )
                });
                assert_eq!(got, *unknown, "{c} x {k}");
            }
        }
    }
    // Every accepted cross-release pair that is not exact is in the list.
    for (i, c) in m.releases.iter().enumerate() {
        for (j, k) in m.releases.iter().enumerate() {
            let v = &m.cells[i][j];
            if !matches!(v, Verdict::Rejected) && !v.is_exact() {
                assert!(
                    listed.contains(&(c.release.clone(), k.release.clone())),
                    "{} x {} missing",
                    c.release,
                    k.release
                );
            }
        }
    }
}

#[test]
fn test_diff_4_1_9_4_1_12() {
    let d = diff::diff(
        Profile::get("4.1.9").unwrap(),
        Profile::get("4.1.12").unwrap(),
    )
    .unwrap();
    let text = diff::text(&d);
    assert!(
        text.contains(
            "  id 69: 4.1.9 JSTAT_UNKNOWN, 4.1.12 JSTAT_JOOLD_EMPTY\n"
        ),
        "{text}"
    );
    assert!(text.contains("    id 69: 4.1.9 prints JSTAT_UNKNOWN; 4.1.12 means JSTAT_JOOLD_EMPTY\n"), "{text}");
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings
        .bind(|| insta::assert_snapshot!("versions__diff-4.1.9-4.1.12", text));
}

fn jool_harness(args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_jool-harness"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    let s = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (s(out.stdout), s(out.stderr), out.status.code().unwrap_or(-1))
}

#[test]
fn test_versions_cli() {
    let (out, _, code) = jool_harness(&["versions", "list"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1 + Profile::all().len());
    let (out, _, code) = jool_harness(&[
        "versions", "diff", "4.1.12", "4.1.13", "--format", "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["removed"][0]["name"], "JSTAT_JOOLD_FLUSH_ASAP");
    let (_, err, code) = jool_harness(&["versions", "diff", "4.1.9", "9.9"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown release '9.9'"), "{err}");
    let (_, err, code) = jool_harness(&[
        "versions",
        "matrix",
        "--check",
        "docs/version-matrix.md",
    ]);
    assert_eq!((err.as_str(), code), ("", 0));
    let (out, _, code) =
        jool_harness(&["versions", "matrix", "--format", "csv"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("client \\ kernel,4.0.0,"), "{out}");
}

/// The synthetic trees: `fixtures/jool-src-synthetic/<release>/`.
fn synthetic() -> PathBuf {
    fixtures().join("jool-src-synthetic")
}

fn expected(release: &str) -> String {
    fs::read_to_string(
        synthetic().join("expected").join(format!("{release}.toml")),
    )
    .unwrap()
}

#[test]
fn test_import_synthetic_release_trees() {
    let mut seen = 0;
    for e in fs::read_dir(synthetic()).unwrap() {
        let dir = e.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !dir.join("src").is_dir() || name == "main" {
            continue;
        }
        let (file, text) =
            import::import_text(&dir, &import::Overrides::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(file, format!("{name}.toml"));
        assert!(
            text == expected(&name),
            "{name}: the import differs from expected/{name}.toml:\n{text}"
        );
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} synthetic trees");
}

#[test]
fn test_import_writes_the_file() {
    let out = temp_path("import-out");
    let (stdout, err, code) = jool_harness(&[
        "versions",
        "import",
        "fixtures/jool-src-synthetic/4.1.9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!((err.as_str(), code), ("", 0));
    assert_eq!(stdout.trim(), out.join("4.1.9.toml").display().to_string());
    assert_eq!(
        fs::read_to_string(out.join("4.1.9.toml")).unwrap(),
        expected("4.1.9")
    );
    let _ = fs::remove_dir_all(&out);
}

fn git(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "synthetic")
        .env("GIT_AUTHOR_EMAIL", "synthetic@example.invalid")
        .env("GIT_AUTHOR_DATE", "2000-01-01T00:00:00+0000")
        .env("GIT_COMMITTER_NAME", "synthetic")
        .env("GIT_COMMITTER_EMAIL", "synthetic@example.invalid")
        .env("GIT_COMMITTER_DATE", "2000-01-01T00:00:00+0000")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A git checkout of the synthetic `main` tree on branch `main`, with a
/// fixed author and date so its commit id is always the same.
fn main_checkout() -> Option<crate::util::TempPath> {
    let dir = temp_path("synthetic-main");
    copy_tree(&synthetic().join("main"), &dir);
    let steps: [&[&str]; 4] = [
        &["init", "-q"],
        &["symbolic-ref", "HEAD", "refs/heads/main"],
        &["add", "-A"],
        &["commit", "-q", "-m", "synthetic main"],
    ];
    steps.iter().all(|s| git(&dir, s)).then_some(dir)
}

#[test]
fn test_import_synthetic_main_checkout() {
    let Some(dir) = main_checkout() else {
        eprintln!(
            "SKIP test_import_synthetic_main_checkout: `git` is not available"
        );
        return;
    };
    let (file, text) =
        import::import_text(&dir, &import::Overrides::default()).unwrap();
    assert_eq!(file, "main.toml");
    assert!(
        text == expected("main"),
        "main: the import differs from expected/main.toml:\n{text}"
    );
    // At a tag, the tag names the release.
    assert!(git(&dir, &["tag", "v4.1.15"]));
    let (file, text) =
        import::import_text(&dir, &import::Overrides::default()).unwrap();
    assert_eq!(file, "4.1.15.toml");
    assert!(
        text.contains("\nversion = \"4.1.15\"\ntag = \"v4.1.15\"\n"),
        "{text}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn test_import_errors_name_the_file() {
    let dir = temp_path("broken-tree");
    copy_tree(&synthetic().join("4.1.9"), &dir);
    let table = dir.join("src/usr/nl/stats.c");
    let text = fs::read_to_string(&table).unwrap().replace(
        "DEFINE_STAT(JSTAT_FLANGE_BENT",
        "DEFINE_STAT(JSTAT_FLANGE_BEND",
    );
    fs::write(&table, text).unwrap();
    let e =
        import::import_text(&dir, &import::Overrides::default()).unwrap_err();
    assert_eq!(e.file.as_deref(), Some("src/usr/nl/stats.c"));
    assert!(
        e.message.contains("JSTAT_FLANGE_BEND is not in enum jool_stat_id"),
        "{e}"
    );
    let _ = fs::remove_dir_all(&dir);
    let e = import::import_text(
        &root().join("docs"),
        &import::Overrides::default(),
    )
    .unwrap_err();
    assert!(e.message.contains("is it a Jool source tree?"), "{e}");
}

/// A bare or normal git directory of github.com/NICMx/Jool.
fn jool_git_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("JOOL_GIT_DIR").map(PathBuf::from),
        Some(PathBuf::from("/work/.mirror/NICMx+Jool/repo")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("HEAD").is_file() || p.join(".git").exists())
}

/// `git archive <rev> | tar -x -C <dir>`.
fn archive(git_dir: &Path, rev: &str, dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let dot_git = git_dir.join(".git");
    let git_dir = if dot_git.exists() { dot_git.as_path() } else { git_dir };
    let status = Command::new("sh")
        .args([
            "-c",
            "git --git-dir=\"$1\" archive \"$2\" | tar -x -C \"$3\"",
            "sh",
        ])
        .arg(git_dir)
        .arg(rev)
        .arg(dir)
        .status()
        .map_err(|e| e.to_string())?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("git archive {rev} failed"))
}

#[test]
fn test_import_reproduces_every_real_release() {
    let Some(git_dir) = jool_git_dir() else {
        eprintln!(
            "\n******** SKIP test_import_reproduces_every_real_release: no Jool git mirror \
             (set JOOL_GIT_DIR to a clone of github.com/NICMx/Jool) ********\n"
        );
        return;
    };
    let mut failures = Vec::new();
    for release in fixture_releases() {
        let fixture = fs::read_to_string(
            fixtures().join(format!("versions/{release}.toml")),
        )
        .unwrap();
        let p = Profile::from_toml("", &fixture).unwrap();
        // The fixture's tag: a release tag, or main's commit.
        let (rev, ov) = match release.as_str() {
            "main" => (
                p.tag.clone(),
                import::Overrides {
                    release: Some("main".into()),
                    tag: Some(p.tag.clone()),
                },
            ),
            _ => (p.tag.clone(), import::Overrides::default()),
        };
        let dir = temp_path(&format!("jool-{release}"));
        let result = archive(&git_dir, &rev, &dir).and_then(|()| {
            import::import_text(&dir, &ov).map_err(|e| e.to_string())
        });
        let _ = fs::remove_dir_all(&dir);
        match result {
            Ok((_, text)) if text == fixture => {}
            Ok((_, text)) => {
                let line = text
                    .lines()
                    .zip(fixture.lines())
                    .position(|(a, b)| a != b)
                    .map_or(0, |l| l + 1);
                failures.push(format!("{release}: differs from fixtures/versions/{release}.toml at line {line}"));
            }
            Err(e) => failures.push(format!("{release}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn test_jool_stats_labels_follow_the_sim_kernel() {
    let args =
        |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Default (auto): 4.1.12's own labels, nothing on stderr.
    let out = run_in_process(&args(&[
        "jool",
        "--sim",
        "--kernel-version",
        "4.1.12",
        "stats",
        "display",
        "--all",
        "--csv",
    ]));
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
    assert!(
        out.stdout.contains("\nJSTAT_JOOLD_EMPTY,0\n")
            && out.stdout.ends_with("\nJSTAT_UNKNOWN,0\n")
    );
    // Forced 4.1.9: the warning lists the mislabel, then the 4.1.9 client fails as the real one.
    let forced = [
        "jool",
        "--client-version",
        "4.1.9",
        "--sim",
        "--kernel-version",
        "4.1.12",
        "stats",
        "display",
        "--all",
        "--csv",
    ];
    let out = run_in_process(&args(&forced));
    assert_eq!(out.code, 234);
    assert!(out.stderr.contains("  id 69: shown as JSTAT_UNKNOWN; the kernel means JSTAT_JOOLD_EMPTY\n"), "{}", out.stderr);
    // --strict: an error, nothing printed.
    let out = run_in_process(&args(
        &[&["jool", "--strict"][..], &forced[1..]].concat(),
    ));
    assert_eq!((out.stdout.as_str(), out.code), ("", 65));
}

#[test]
fn test_jool_stats_reads_the_kernel_release_from_the_environment() {
    let run = |args: &[&str]| {
        use std::os::unix::process::CommandExt;
        let out = Command::new(env!("CARGO_BIN_EXE_jool-stats"))
            .arg0("jool-stats")
            .args(args)
            .env_remove("JOOL_SIM_SOCKET")
            .env(compat::detect::ENV_KERNEL_VERSION, "4.1.12")
            .output()
            .unwrap();
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
            out.status.code(),
        )
    };
    assert_eq!(run(&["-V"]).0, "4.1.12.0\n");
    let (out, err, code) =
        run(&["--strict", "--client-version", "4.1.9", "stats", "display"]);
    assert_eq!((out.as_str(), code), ("", Some(65)));
    assert!(err.starts_with("jool-stats: error: the kernel module is Jool 4.1.12 (JOOL_SIM_KERNEL_VERSION)"), "{err}");
}

/// `fixtures/captures/cross/<module>.json`: the real C clients of 4.1.9,
/// 4.1.13 and 4.1.15 and jool-stats, run against the real modules of the
/// same releases in the VMs (`jool-harness versions real`).
fn cross_captures() -> Vec<cross::Capture> {
    cross::DEBIAN_RELEASES
        .iter()
        .map(|m| {
            cross::load(&fixtures().join(format!("captures/cross/{m}.json")))
                .unwrap()
        })
        .collect()
}

#[test]
fn test_real_clients_on_real_modules_match_matrix_and_sim() {
    let mut pairs = BTreeSet::new();
    let mut checks = 0;
    for c in cross_captures() {
        let findings = cross::check(&c).unwrap();
        let bad: Vec<String> = findings
            .iter()
            .filter_map(|f| {
                f.problem.as_ref().map(|p| format!("{}\n{p}", f.what))
            })
            .collect();
        assert!(bad.is_empty(), "{}", bad.join("\n\n"));
        checks += findings.len();
        for r in &c.runs {
            if r.kind == cross::Kind::Real {
                pairs.insert((r.release.clone(), c.module.clone()));
            }
        }
    }
    // Every client x module pair of Debian's three releases, each with
    // every flag set on both translators.
    assert_eq!(pairs.len(), 9, "{pairs:?}");
    assert!(checks >= 9 * cross::FLAG_SETS.len() * 2 * 2, "{checks}");
}

/// `fixtures/matrix/cross/<cell>/<module>.json`: Debian's real 4.1.9,
/// 4.1.13 and 4.1.15 C clients on the module of each cell
/// (`scripts/matrix-cells`, step cross), every output checked against
/// `versions matrix` and the simulator, as when it was captured.
#[test]
fn test_real_clients_on_every_cell_match_matrix_and_sim() {
    let dir = fixtures().join("matrix/cross");
    let mut cells = 0;
    for cell in fs::read_dir(&dir).unwrap() {
        let cell = cell.unwrap().path();
        for f in fs::read_dir(&cell).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let c = cross::load(&f).unwrap();
            let bad: Vec<String> = cross::check(&c)
                .unwrap()
                .into_iter()
                .filter_map(|x| x.problem.map(|p| format!("{}\n{p}", x.what)))
                .collect();
            assert!(bad.is_empty(), "{}: {}", f.display(), bad.join("\n\n"));
            cells += 1;
        }
    }
    assert!(cells >= 5, "only {cells} cells in {}", dir.display());
}

#[test]
fn test_real_capture_check_catches_a_wrong_label_and_a_wrong_sim() {
    let mut c = cross_captures().remove(1);
    assert_eq!(c.module, "4.1.13");
    let all_csv = ["--all", "--csv", "--no-headers"].map(String::from);
    // The real 4.1.9 client on 4.1.13: id 69 printed as JSTAT_UNKNOWN
    // (meant: JSTAT_JOOLD_EMPTY), then "unknown stat counter" at id 70.
    let r = c
        .runs
        .iter_mut()
        .find(|r| {
            r.kind == cross::Kind::Real
                && r.release == "4.1.9"
                && r.program == "jool_siit"
                && r.flags == all_csv
        })
        .unwrap();
    assert_eq!(r.status, 234);
    assert!(r.stdout.ends_with("\nJSTAT_UNKNOWN,0\n"), "{}", r.stdout);
    // Had the real client printed the kernel's name, the matrix (which
    // predicts the mislabel) and the sim (which reproduces it) disagree.
    r.stdout =
        r.stdout.replace("\nJSTAT_UNKNOWN,0\n", "\nJSTAT_JOOLD_EMPTY,0\n");
    let findings = cross::check(&c).unwrap();
    let bad: Vec<&str> = findings
        .iter()
        .filter(|f| f.problem.is_some())
        .map(|f| f.what.as_str())
        .collect();
    assert!(bad.iter().any(|w| w.contains("versions matrix says")), "{bad:?}");
    assert!(bad.iter().any(|w| w.contains("on the sim")), "{bad:?}");
    assert!(bad.iter().any(|w| w.contains("on the real module")), "{bad:?}");
    // Counters that moved between the runs are reported too.
    let mut c = cross_captures().remove(0);
    c.counters_after.insert("siit".into(), String::new());
    assert!(cross::check(&c)
        .unwrap()
        .iter()
        .any(|f| f.problem.is_some() && f.what.contains("frozen")));
}
