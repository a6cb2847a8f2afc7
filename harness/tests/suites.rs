//! Every suite of `fixtures/suites` on the in-process simulator, with
//! jool-stats: the same files `jool-harness run --backend vm` replays
//! against the real module (see docs/suites.md).

use jool_harness::suite::{self, report::Outcome, ClientKind};

#[test]
fn test_every_suite_passes_on_the_sim() {
    let suites =
        suite::load_suites(&suite::default_suites_dir(), &[]).unwrap();
    let report =
        suite::run_sim(&suites, "4.1.9", &[ClientKind::JoolStats]).unwrap();
    let mut text = Vec::new();
    report.write_failures(&mut text).unwrap();
    assert!(report.success(), "{}", String::from_utf8_lossy(&text));
    let ran =
        report.cases.iter().filter(|c| c.outcome == Outcome::Passed).count();
    assert!(ran >= 30, "only {ran} cases ran");
}

/// `jool-harness run --release R --strict` for every release of
/// `versions list`: no failure and at least 30 cases (4.0.0 to 4.0.7 too:
/// jool-stats sends their legacy instance requests, and the steps whose
/// 4.0.x outputs differ carry `when` blocks; docs/suites.md). 4.0.8 is
/// the exception: on Linux 5.2+ no instance can be added (Jool #326, as
/// its real module and client do on bullseye), so only the cases that
/// need none run, and the history case that shows the bug.
#[test]
fn test_every_release_runs_30_cases_on_the_sim() {
    use jool_sim::versions::Profile;
    let suites =
        suite::load_suites(&suite::default_suites_dir(), &[]).unwrap();
    let mut checked = 0;
    for r in Profile::names() {
        let report =
            suite::run_sim(&suites, r, &[ClientKind::JoolStats]).unwrap();
        let ran = report
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Passed)
            .count();
        let mut text = Vec::new();
        report.write_failures(&mut text).unwrap();
        assert!(report.success(), "{r}: {}", String::from_utf8_lossy(&text));
        checked += 1;
        if r == "4.0.8" {
            assert!(ran >= 8, "{r}: only {ran} cases ran");
            assert!(report
                .cases
                .iter()
                .any(|c| c.case == "jool-326-no-instance-on-4.0.8"
                    && c.outcome == Outcome::Passed));
            continue;
        }
        assert!(ran >= 30, "{r}: only {ran} cases ran");
    }
    assert!(checked >= 30, "only {checked} releases");
}

#[test]
fn test_release_glob_does_not_select_its_own_prefix() {
    use jool_harness::suite::spec::release_matches;
    let t = ["4.1.1*".to_owned()];
    assert!(release_matches(&t, "4.1.12") && !release_matches(&t, "4.1.1"));
}

// The real C client on the sim (LD_PRELOAD shim, real namespaces, root)
// runs from .ci/run: `jool-harness run --client both`. Here only its
// skip reason, when it cannot run, is checked.
#[test]
fn test_real_client_on_the_sim_says_why_it_cannot_run() {
    use jool_harness::suite::backend::Backend;
    let why_not = |r: &str| {
        let sim = suite::sim::SimBackend::new(r).unwrap();
        let why = sim.unsupported(ClientKind::Real);
        if let Some(why) = &why {
            assert!(
                why.contains("jool-sim exec")
                    || why.contains("root")
                    || why.contains("jool-tools")
                    || why.contains("the installed C client is Jool"),
                "{why}"
            );
        }
        why
    };
    why_not("4.1.9");
    // Debian 12's jool-tools is 4.1.9: the suites of another release
    // expect that release's client (or nothing here can run one).
    assert!(why_not("4.1.12").is_some());
}

#[test]
fn test_junit_names_every_case() {
    let suites = suite::load_suites(
        &suite::default_suites_dir(),
        &["privilege".to_owned()],
    )
    .unwrap();
    let report =
        suite::run_sim(&suites, "4.1.9", &[ClientKind::JoolStats]).unwrap();
    let xml = report.to_junit("sim");
    assert!(xml.contains("<testsuite name=\"sim.privilege\""), "{xml}");
    for c in &suites[0].cases {
        assert!(
            xml.contains(&format!("name=\"{} [jool-stats]\"", c.name)),
            "{}",
            c.name
        );
    }
}

/// The `jool-harness capture --backend vm` folders:
/// fixtures/captures/<release>-vm (or $JOOL_HARNESS_CAPTURE alone).
fn captures() -> Vec<(String, std::path::PathBuf)> {
    if let Some(dir) = std::env::var_os("JOOL_HARNESS_CAPTURE") {
        return vec![("4.1.9".to_owned(), dir.into())];
    }
    let root = suite::default_suites_dir().join("../captures");
    let mut v: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Some((name.strip_suffix("-vm")?.to_owned(), e.path()))
        })
        .collect();
    v.sort();
    assert!(
        v.iter().any(|(r, _)| r == "4.1.9"),
        "no fixtures/captures/4.1.9-vm"
    );
    v
}

fn sim_matches_capture(release: &str, dir: &std::path::Path) {
    let suites =
        suite::load_suites(&suite::default_suites_dir(), &[]).unwrap();
    let c = jool_harness::capture::compare(dir, &suites, release);
    assert!(
        c.diffs.is_empty(),
        "{release}: {} differences:\n{}",
        c.diffs.len(),
        c.diffs.join("\n")
    );
    assert!(
        c.requests >= 100,
        "{release}: only {} requests compared",
        c.requests
    );
}

/// The real 4.1.9 module's replies to every captured request of the
/// suites, against the simulator's replies to the same bytes in the same
/// state: equal once sequence numbers and port ids are masked.
#[test]
fn test_sim_replies_equal_captured_real_replies() {
    let (release, dir) =
        captures().into_iter().find(|(r, _)| r == "4.1.9").unwrap();
    sim_matches_capture(&release, &dir);
}

/// The same for the other captured releases (4.1.13, trixie, whose kernel
/// gives Jool's `joold` multicast group the id 0x0f: taken from the
/// capture like the family id).
#[test]
fn test_sim_replies_equal_captured_real_replies_other_releases() {
    for (release, dir) in captures().into_iter().filter(|(r, _)| r != "4.1.9")
    {
        sim_matches_capture(&release, &dir);
    }
}

/// jool-stats fed with the real module's captured replies (the replay
/// answers each request with the bytes the kernel gave the real client)
/// prints what the real client printed: same stdout, stderr and status.
#[test]
fn test_client_on_captured_replies_prints_what_the_real_client_printed() {
    for (release, dir) in captures() {
        client_matches_capture(&release, &dir);
    }
}

fn client_matches_capture(release: &str, dir: &std::path::Path) {
    use jool_harness::{
        capture::Replay,
        suite::{inproc, spec},
    };
    let profile = jool_sim::versions::Profile::get(release).unwrap();
    let tsv =
        std::fs::read_to_string(dir.join("COMMANDS.tsv")).expect("a capture");
    let (mut checked, mut bad) = (0, Vec::new());
    for line in tsv.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (name, netns, command) = (f[0], f[1], f[3]);
        let base = dir.join(name);
        let read = |ext: &str| {
            std::fs::read_to_string(base.with_extension(ext))
                .unwrap_or_default()
        };
        if netns == "new" {
            continue; // not captured
        }
        let mut t = Replay::new(&read("netlink"));
        let argv = spec::split_words(command).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status =
            inproc::run_on(&mut t, profile, &argv, &mut out, &mut err);
        let got = (
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err),
            status.to_string(),
        );
        let want = (read("out"), read("err"), read("rc").trim().to_owned());
        if (got.0.as_ref(), got.1.as_ref(), got.2.as_str())
            != (want.0.as_str(), want.1.as_str(), want.2.as_str())
            || t.left() != 0
        {
            bad.push(format!("{name} ({command}): got {got:?}, real {want:?}, {} captured requests unsent", t.left()));
        }
        checked += 1;
    }
    assert!(
        bad.is_empty(),
        "{release}: {} of {checked}:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(checked >= 50, "{release}: only {checked} commands");
}
