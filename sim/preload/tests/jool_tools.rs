//! Debian's C clients (`jool_siit`, `jool`: package jool-tools 4.1.9,
//! over libnl-3 and libnl-genl-3) run unmodified under the shim, and
//! compared byte for byte with the real 4.1.9 module's captures in
//! `fixtures/captures/4.1.9` (stdout, stderr and exit code).
//!
//! Needs `jool_siit`/`jool` installed (`apt-get install
//! --no-install-recommends jool-tools`); without them each test prints
//! a loud SKIP line and passes.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::support::{
    find_program, kernel_4_1_9, loud, run, shimmed, TestDaemon,
};

/// The captures' folder.
fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/captures/4.1.9")
}

/// One captured `stats` command.
#[derive(Debug)]
struct Capture {
    /// `siit/display-all`: the files' path without extension.
    name: String,
    /// `jool_siit` or `jool`.
    program: String,
    args: Vec<String>,
}

impl Capture {
    /// The captured `NAME.ext` file.
    fn expected(&self, ext: &str) -> Vec<u8> {
        let path = captures().join(format!("{}.{ext}", self.name));
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The capture folder, which says what state the kernel was in.
    fn scenario(&self) -> &str {
        self.name.split('/').next().unwrap_or_default()
    }
}

/// The `stats` commands of `COMMANDS.tsv` whose outputs are kept here,
/// for the scenarios a [`kernel_4_1_9`] reproduces: before modprobe, no
/// instance, idle instances, and argument and instance-name errors.
fn stats_commands() -> Vec<Capture> {
    let tsv = std::fs::read_to_string(captures().join("COMMANDS.tsv"))
        .expect("COMMANDS.tsv");
    let scenarios = ["premodprobe", "noinstance", "siit", "nat64", "errors"];
    tsv.lines()
        .filter_map(|line| {
            let (name, command) = line.split_once('\t')?;
            let mut words = command.split_whitespace().map(str::to_owned);
            let program = words.next()?;
            let args: Vec<String> = words.collect();
            let c = Capture { name: name.to_owned(), program, args };
            let jool = c.program == "jool" || c.program == "jool_siit";
            let stats = c.args.iter().any(|a| a == "stats" || a == "stat");
            let kept = captures().join(format!("{name}.out")).is_file();
            (jool && stats && kept && scenarios.contains(&c.scenario()))
                .then_some(c)
        })
        .collect()
}

/// The kernel state of a capture scenario.
fn daemon_for(scenario: &str) -> TestDaemon {
    let mut kernel = kernel_4_1_9(scenario != "noinstance");
    if scenario == "premodprobe" {
        kernel.set_modules(false, false);
    }
    TestDaemon::start(kernel)
}

/// Runs `c` under the shim; returns what differs from the capture.
fn differences(
    program: &Path,
    daemon: &TestDaemon,
    c: &Capture,
) -> Vec<String> {
    let out = run(shimmed(program, Some(daemon.path()))
        .arg0(&c.program)
        .args(&c.args));
    let mut diffs = Vec::new();
    for (what, got, want) in [
        ("stdout", &out.stdout, c.expected("out")),
        ("stderr", &out.stderr, c.expected("err")),
    ] {
        if *got != want {
            diffs.push(format!(
                "{}: {what} differs\n--- captured\n{}\n--- under the shim\n{}",
                c.name,
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(got),
            ));
        }
    }
    let rc = String::from_utf8_lossy(&c.expected("rc")).trim().to_owned();
    let got = out
        .status
        .code()
        .map_or_else(|| format!("{}", out.status), |c| c.to_string());
    if rc != got {
        diffs.push(format!("{}: exit code {got}, captured {rc}", c.name));
    }
    diffs
}

/// The installed client, or `None` after a loud SKIP.
fn client(program: &str) -> Option<PathBuf> {
    let why = format!(
        "the byte-for-byte comparison of `{program}` with the 4.1.9 captures \
         (install the Debian package jool-tools)"
    );
    find_program(program, &why)
}

#[test]
fn test_jool_siit_stats_display_all() {
    let Some(program) = client("jool_siit") else { return };
    let daemon = daemon_for("siit");
    let c = Capture {
        name: "siit/display-all".into(),
        program: "jool_siit".into(),
        args: vec!["stats".into(), "display".into(), "--all".into()],
    };
    let diffs = differences(&program, &daemon, &c);
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    // libnl's exact call sequence reached the daemon: the socket, its own
    // port id, then GETFAMILY (32 bytes) and STATS_FOREACH (48 bytes).
    let log = daemon.log();
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(log[..2], ["P", "D"]);
    assert!(
        log[2].starts_with("B ") && !log[2].starts_with("B 0 "),
        "{log:?}"
    );
    assert_eq!(log[3..], ["S 32", "S 48"]);
}

#[test]
fn test_captured_stats_commands() {
    let commands = stats_commands();
    assert!(
        commands.len() >= 40,
        "COMMANDS.tsv lists {} stats commands",
        commands.len()
    );
    let (Some(siit), Some(nat64)) = (client("jool_siit"), client("jool"))
    else {
        return;
    };
    let mut diffs = Vec::new();
    for c in &commands {
        let program = if c.program == "jool" { &nat64 } else { &siit };
        let daemon = daemon_for(c.scenario());
        diffs.extend(differences(program, &daemon, c));
    }
    loud(&format!(
        "jool-tools under the shim: {} of {} captured stats commands identical",
        commands.len() - diffs.len().min(commands.len()),
        commands.len()
    ));
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// What jool-exporter does: Python running `jool_siit` as a subprocess,
/// with the shim loaded in both (Python's fork/exec path goes through the
/// descriptor hooks: `dup2`, `close`, `fcntl`).
#[test]
fn test_python_shells_out_to_jool_siit() {
    let Some(program) = client("jool_siit") else { return };
    let Some(python) = find_program("python3", "the jool-exporter-like test")
    else {
        return;
    };
    let daemon = daemon_for("siit");
    let script = "import subprocess, sys\n\
                  for _ in range(2):\n\
                  \x20   r = subprocess.run(sys.argv[1:], capture_output=True, check=True)\n\
                  sys.stdout.buffer.write(r.stdout)\n";
    let out = run(shimmed(&python, Some(daemon.path()))
        .args(["-c", script])
        .arg(&program)
        .args(["stats", "display", "--all"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want = std::fs::read(captures().join("siit/display-all.out")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(daemon.log().iter().filter(|l| *l == "S 48").count(), 2);
}
