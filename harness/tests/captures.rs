//! The real Jool 4.1.9 client's outputs (fixtures/captures/4.1.9, captured
//! from Debian's jool-tools against Debian's jool-dkms in a QEMU guest; its
//! README has the recipe) reproduced by `jool-stats --sim`, byte for byte:
//! stdout, stderr and exit status.
//!
//! Each captured `stats display` runs again against a simulated 4.1.9
//! kernel set up like the capture's (module loaded or not, instances or
//! none) and holding the counters that the captured output shows (zero
//! where a filtered output omits them). Commands that need real processes
//! with other credentials (`setpriv`, `unshare`) belong to the daemon tests.

use std::{collections::BTreeMap, fs, path::Path};

use crate::util::{fixtures, jool_stats, temp_file};

/// `NAME: VALUE` and `NAME,VALUE...` rows of a captured output.
fn counters_of(output: &str) -> Vec<(String, u64)> {
    let mut rows = BTreeMap::new();
    for line in output.lines() {
        let row = line.split_once(": ").or_else(|| line.split_once(','));
        let Some((name, rest)) = row else { continue };
        if !name.starts_with("JSTAT") || name.contains(' ') {
            continue;
        }
        let value = rest.split(',').next().unwrap_or(rest);
        if let Ok(v) = value.parse::<u64>() {
            rows.insert(name.to_owned(), v);
        }
    }
    rows.into_iter().collect()
}

/// Global options that set up the simulated kernel of a capture folder.
fn sim_setup(name: &str) -> Option<Vec<&'static str>> {
    let dir = name.split('/').next()?;
    let base = name.rsplit('/').next()?;
    match dir {
        "premodprobe" => Some(vec!["--no-module"]),
        "noinstance" | "teardown" => Some(vec!["--no-instance"]),
        "netlink" if base.starts_with("premodprobe") => {
            Some(vec!["--no-module"])
        }
        "netlink" if base.starts_with("noinstance") => {
            Some(vec!["--no-instance"])
        }
        "netlink" | "siit" | "nat64" | "errors" | "siit-traffic"
        | "nat64-traffic" => Some(vec![]),
        _ => None,
    }
}

struct Case {
    name: String,
    argv0: String,
    args: Vec<String>,
}

/// The replayable commands of COMMANDS.tsv.
fn cases() -> Vec<Case> {
    let root = fixtures().join("captures/4.1.9");
    let tsv = fs::read_to_string(root.join("COMMANDS.tsv")).unwrap();
    let mut out = Vec::new();
    for line in tsv.lines() {
        let Some((name, cmd)) = line.split_once('\t') else { continue };
        let words: Vec<&str> = cmd.split_whitespace().collect();
        if words.iter().any(|w| *w == "setpriv" || *w == "unshare") {
            continue;
        }
        let Some(at) =
            words.iter().position(|w| *w == "jool" || *w == "jool_siit")
        else {
            continue;
        };
        let args: Vec<String> =
            words[at + 1..].iter().map(|s| s.to_string()).collect();
        let is_stats = args.iter().any(|a| a.starts_with("stat"));
        if !is_stats
            || !root.join(format!("{name}.out")).exists()
            || sim_setup(name).is_none()
        {
            continue;
        }
        out.push(Case {
            name: name.to_owned(),
            argv0: words[at].to_owned(),
            args,
        });
    }
    out
}

fn read(root: &Path, name: &str, ext: &str) -> String {
    fs::read_to_string(root.join(format!("{name}.{ext}"))).unwrap()
}

#[test]
fn test_captured_stats_outputs_byte_for_byte() {
    let root = fixtures().join("captures/4.1.9");
    let cases = cases();
    // siit/ and nat64/ (15 each), errors/, noinstance/, premodprobe/,
    // teardown/, siit-traffic/, netlink/: at least these many exist here.
    assert!(
        cases.len() >= 55,
        "only {} replayable captures found",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let want_out = read(&root, &case.name, "out");
        let counters: String = counters_of(&want_out)
            .iter()
            .map(|(n, v)| format!("{n},{v}\n"))
            .collect();
        let file = temp_file("counters.csv", &counters);
        let setup = sim_setup(&case.name).unwrap();
        let mut args: Vec<String> = vec!["--sim".into()];
        // Counters fill the simulated instances: none with --no-instance.
        if !setup.contains(&"--no-instance") {
            args.push("--counters".into());
            args.push(file.display().to_string());
        }
        args.extend(setup.iter().map(|s| s.to_string()));
        args.extend(case.args.iter().cloned());
        let got = jool_stats(&case.argv0, &args);
        let _ = fs::remove_file(&file);
        let want_err = read(&root, &case.name, "err");
        let want_rc: i32 =
            read(&root, &case.name, "rc").trim().parse().unwrap();
        if got.stdout != want_out
            || got.stderr != want_err
            || got.code != want_rc
        {
            failures.push(format!(
                "{} ({} {}):\n  want rc {want_rc} err {want_err:?}\n  got  rc {} err {:?}\n  stdout equal: {}",
                case.name,
                case.argv0,
                case.args.join(" "),
                got.code,
                got.stderr,
                got.stdout == want_out
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn test_jool_and_jool_siit_differ_as_the_real_ones() {
    // Same idle instance: same table, same output; the translator type
    // only shows in which instance is read and in errors.
    let root = fixtures().join("captures/4.1.9");
    assert_eq!(
        read(&root, "siit/display-all", "out"),
        read(&root, "nat64/display-all", "out")
    );
    let siit = jool_stats(
        "jool_siit",
        &["--sim".into(), "stats".into(), "foo".into()],
    );
    assert_eq!(siit.stderr, read(&root, "errors/siit-stats-foo", "err"));
    let top = jool_stats("jool_siit", &["--sim".into(), "pool4".into()]);
    assert!(top.stderr.starts_with("Unexpected token: 'pool4'"), "{top:?}");
    let nat = jool_stats("jool", &["--sim".into(), "pool4".into()]);
    assert!(nat.stderr.starts_with("More arguments expected."), "{nat:?}");
}
