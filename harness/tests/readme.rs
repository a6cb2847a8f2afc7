//! The README's examples, run as written: every ```` ```sh ```` block of
//! README.md runs in bash, command by command, in a folder where
//! `fixtures/` is the repository's and `target/release/` holds this
//! build's binaries (also first on `PATH`, for the bare `jool-stats`);
//! `cargo run --release -q --bin NAME -- ARGS` runs that binary and
//! `cargo build ...` does nothing (the test's build made them).
//!
//! Conventions in the README, under a command:
//! - `#> LINE`: the command's stdout has this line;
//! - `#! LINE`: its stderr has this line;
//! - `#? N`: it exits with N (otherwise it must exit 0).
//!
//! A block is preceded by `<!-- readme-test: skip (why) -->` when it is
//! not run here (QEMU, fuzzing, the test suite itself), or by
//! `<!-- readme-test: needs root jool_siit -->` (what it needs: `root`,
//! `no-jool-module`, or programs; without it the block is skipped and
//! says SKIP on stderr).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::{daemon::jool_sim_bin, util::temp_path};

/// One command of a block and what the README says it prints.
#[derive(Debug, Default)]
struct Step {
    command: String,
    stdout: Vec<String>,
    stderr: Vec<String>,
    status: i32,
}

/// One ```` ```sh ```` block.
#[derive(Debug)]
struct Block {
    line: usize,
    marker: Option<String>,
    steps: Vec<Step>,
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(path).unwrap()
}

/// The `sh` blocks of `text`, with their markers.
fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "```sh" {
            i += 1;
            continue;
        }
        let marker = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.trim().strip_prefix("<!-- readme-test:"))
            .and_then(|l| l.strip_suffix("-->"))
            .map(|m| m.trim().to_owned());
        let start = i + 1;
        let end =
            (start..lines.len()).find(|&j| lines[j].trim() == "```").unwrap();
        out.push(Block {
            line: start,
            marker,
            steps: steps(&lines[start..end]),
        });
        i = end + 1;
    }
    out
}

fn steps(lines: &[&str]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut pending = String::new();
    for l in lines {
        let t = l.trim_start();
        if let Some(want) = t.strip_prefix("#> ") {
            steps.last_mut().unwrap().stdout.push(want.to_owned());
        } else if let Some(want) = t.strip_prefix("#! ") {
            steps.last_mut().unwrap().stderr.push(want.to_owned());
        } else if let Some(n) = t.strip_prefix("#? ") {
            steps.last_mut().unwrap().status = n.trim().parse().unwrap();
        } else if t.starts_with('#') || t.is_empty() {
            continue;
        } else if let Some(part) = l.strip_suffix('\\') {
            pending.push_str(part);
            pending.push('\n');
        } else {
            pending.push_str(l);
            steps.push(Step {
                command: std::mem::take(&mut pending),
                ..Step::default()
            });
        }
    }
    steps
}

/// `cargo` as the README uses it, over this build's binaries.
const CARGO_SHIM: &str = r#"cargo() {
  case "$1" in
    build) return 0 ;;
    run) shift
      while [ "$1" != "--" ]; do case "$1" in --bin) bin=$2; shift ;; esac; shift; done
      shift; "$BIN/$bin" "$@" ;;
    *) echo "the README test runs no 'cargo $1'" >&2; return 99 ;;
  esac
}
trap 'kill $(jobs -p) 2>/dev/null' EXIT
"#;

/// The bash script of a block: each command's outputs and status go to
/// `N.out`, `N.err`, `N.rc` in `results`.
fn script(b: &Block, results: &Path) -> String {
    let mut s = String::from(CARGO_SHIM);
    for (n, st) in b.steps.iter().enumerate() {
        let r = results.join(n.to_string());
        let r = r.display();
        match st.command.trim_end().strip_suffix('&') {
            Some(bg) => s.push_str(&format!(
                "{bg} >'{r}.out' 2>'{r}.err' &\necho 0 >'{r}.rc'\n"
            )),
            None => s.push_str(&format!(
                "{{ {}\n}} >'{r}.out' 2>'{r}.err'; echo $? >'{r}.rc'\n",
                st.command
            )),
        }
    }
    s
}

/// A folder with `fixtures/` and `target/release/` as the README expects.
fn stage() -> (crate::util::TempPath, PathBuf) {
    let root = temp_path("readme");
    let release = root.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::os::unix::fs::symlink(
        repo.join("fixtures").canonicalize().unwrap(),
        root.join("fixtures"),
    )
    .unwrap();
    let sim = jool_sim_bin();
    let built = [
        PathBuf::from(env!("CARGO_BIN_EXE_jool-stats")),
        PathBuf::from(env!("CARGO_BIN_EXE_jool-harness")),
        sim.clone(),
        sim.with_file_name("libjool_sim_preload.so"),
    ];
    for b in built {
        let name = b.file_name().unwrap().to_owned();
        std::os::unix::fs::symlink(&b, release.join(name)).unwrap();
    }
    (root, release)
}

fn missing(needs: &str) -> Option<String> {
    needs.split_whitespace().find_map(|n| match n {
        "root" => crate::daemon::missing_facility(),
        "no-jool-module" => Path::new("/sys/module/jool_common")
            .exists()
            .then(|| "Jool's module is loaded here".to_owned()),
        tool => {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output();
            (!found.is_ok_and(|o| o.status.success()))
                .then(|| format!("`{tool}` is not installed"))
        }
    })
}

fn run(b: &Block) -> Vec<String> {
    let (root, bin) = stage();
    let results = root.join("results");
    std::fs::create_dir_all(&results).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script(b, &results))
        .current_dir(&root)
        .env("PATH", path)
        .env("BIN", &bin)
        .env_remove("JOOL_SIM_SOCKET")
        .env_remove("JOOL_SIM_KERNEL_VERSION")
        .output()
        .unwrap();
    let mut bad = Vec::new();
    if !out.status.success() {
        bad.push(format!(
            "README line {}: the block's script failed: {}",
            b.line,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    for (n, st) in b.steps.iter().enumerate() {
        let read = |ext: &str| {
            std::fs::read_to_string(results.join(format!("{n}.{ext}")))
                .unwrap_or_default()
        };
        let (stdout, stderr, rc) = (read("out"), read("err"), read("rc"));
        let rc: i32 = rc.trim().parse().unwrap_or(-1);
        let lines = |t: &str| t.lines().map(str::to_owned).collect::<Vec<_>>();
        let (o, e) = (lines(&stdout), lines(&stderr));
        let problems: Vec<String> = st
            .stdout
            .iter()
            .filter(|w| !o.contains(w))
            .map(|w| format!("stdout lacks {w:?}"))
            .chain(
                st.stderr
                    .iter()
                    .filter(|w| !e.contains(w))
                    .map(|w| format!("stderr lacks {w:?}")),
            )
            .chain((rc != st.status).then(|| {
                format!("exit status {rc}, the README says {}", st.status)
            }))
            .collect();
        if !problems.is_empty() {
            bad.push(format!(
                "README line {}: `{}`: {}\n  stdout: {}\n  stderr: {}",
                b.line,
                st.command,
                problems.join("; "),
                stdout.chars().take(600).collect::<String>(),
                stderr.chars().take(600).collect::<String>()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    bad
}

#[test]
fn test_readme_examples_run_as_written() {
    let text = readme();
    let all = blocks(&text);
    let (mut ran, mut bad) = (0, Vec::new());
    for b in &all {
        match b.marker.as_deref() {
            Some(m) if m.starts_with("skip") => {
                assert!(
                    m.len() > "skip (".len(),
                    "README line {}: a skipped block says why",
                    b.line
                );
                continue;
            }
            Some(m) if m.starts_with("needs") => {
                if let Some(why) = missing(&m["needs".len()..]) {
                    eprintln!("SKIP README block at line {}: {why}", b.line);
                    continue;
                }
            }
            Some(m) => panic!(
                "README line {}: unknown readme-test marker {m:?}",
                b.line
            ),
            None => {}
        }
        ran += 1;
        bad.extend(run(b));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(ran >= 2, "only {ran} README blocks ran");
}

#[test]
fn test_conventions_are_parsed() {
    let text = "x\n<!-- readme-test: skip (why) -->\n```sh\na \\\n  b\n#> out\n#! err\n#? 3\nc &\n```\n";
    let b = blocks(text);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].marker.as_deref(), Some("skip (why)"));
    assert_eq!(b[0].steps.len(), 2);
    assert_eq!(b[0].steps[0].command, "a \n  b");
    assert_eq!(
        (
            b[0].steps[0].stdout.clone(),
            b[0].steps[0].stderr.clone(),
            b[0].steps[0].status
        ),
        (vec!["out".to_owned()], vec!["err".to_owned()], 3)
    );
    let s = script(&b[0], Path::new("/r"));
    assert!(s.contains("c  >'/r/1.out' 2>'/r/1.err' &"), "{s}");
}
