//! `netlink_client.py`, a Python client of the kernel's socket API, run
//! with the shim preloaded.

use std::path::{Path, PathBuf};

use crate::support::{find_program, kernel_4_1_9, run, shimmed, TestDaemon};

/// The client script.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/netlink_client.py")
}

fn python() -> Option<PathBuf> {
    find_program("python3", "the Python netlink client tests")
}

/// Runs the script's `mode`; returns (stdout, stderr) after checking it
/// succeeded.
fn client(
    python: &Path,
    daemon: Option<&Path>,
    mode: &str,
) -> (String, String) {
    let out = run(shimmed(python, daemon).arg(script()).arg(mode));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{mode}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn test_python_client() {
    let Some(python) = python() else { return };
    let daemon = TestDaemon::start(kernel_4_1_9(true));
    let (stdout, stderr) = client(&python, Some(daemon.path()), "main");
    let checks: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        checks,
        [
            "ok sockopts",
            "ok bind",
            "ok netlink options",
            "ok getfamily 0x20 696",
            "ok stats 69",
            "ok truncation",
            "ok pipelined",
            "ok select",
            "ok empty send",
            "ok dup",
            checks[10], // "ok autobind PORT": checked below.
            "ok af_inet",
            "ok netlink_route",
        ]
    );
    assert!(stderr.is_empty(), "stderr: {stderr}");
    let port: u32 =
        checks[10].strip_prefix("ok autobind ").unwrap().parse().unwrap();
    assert_eq!(port as i32, -4096, "the second socket's port");

    // What reached the daemon: a data channel per socket, the bind as
    // requested, the one option that is forwarded, one send per datagram
    // (the empty one included), and the second socket's autobind before
    // its first send.
    let log = daemon.log();
    let pid = log[2].strip_prefix("B 0 ").expect("bind after the pairing");
    let mut expected: Vec<String> = vec!["P".into(), "D".into()];
    expected.extend([format!("B 0 {pid}"), "O 270 11 1".into()]);
    let sends = ["32", "48", "32", "32", "32", "32", "32", "0", "32", "32"];
    expected.extend(sends.iter().map(|n| format!("S {n}")));
    expected.extend(["P", "D", "B 0 -4096", "S 32"].map(String::from));
    assert_eq!(log, expected);
}

#[test]
fn test_python_no_daemon_variable() {
    let Some(python) = python() else { return };
    let (_, stderr) = client(&python, None, "unreachable");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, once: {stderr}");
    assert!(
        lines[0].starts_with("jool-sim-preload: JOOL_SIM_SOCKET is not set"),
        "{stderr}"
    );
}

#[test]
fn test_python_daemon_missing() {
    let Some(python) = python() else { return };
    // A name in a fresh folder of ours: nobody can have made it.
    let dir = jool_sim::supervise::PrivateDir::new("jool-sim-preload-missing")
        .expect("a private folder");
    let path = dir.path().join("no-such.sock");
    let (_, stderr) = client(&python, Some(&path), "unreachable");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, once: {stderr}");
    assert!(lines[0].contains(&format!("at {} ", path.display())), "{stderr}");
    assert!(lines[0].contains("No such file or directory"), "{stderr}");
}
