//! `jool-sim serve`, `exec` and `ctl` as root on a shared host, each test
//! named for a fault of issue #14 (run as real processes: the binary, a
//! second daemon, signals, files planted by another user).
//!
//! Needs root (the socket paths, `chown`, `setpriv`); without it each test
//! prints SKIP and passes.

use std::{
    fs,
    io::Read,
    os::unix::{
        fs::{symlink, PermissionsExt},
        process::ExitStatusExt,
    },
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use jool_sim::daemon::Client;

/// Why these tests cannot run here, if they cannot.
fn missing() -> Option<&'static str> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|u| u.split_whitespace().nth(1) == Some("0"));
    (!root).then_some("not root")
}

macro_rules! require_root {
    () => {
        if let Some(why) = missing() {
            eprintln!("SKIP {}: {why}", module_path!());
            return;
        }
    };
}

fn jool_sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jool-sim"))
}

use crate::util::TempDir;

/// `child`'s status, or `None` if it is still running after `limit`.
fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if t.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` until it holds (up to 10 s); whether it did.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// `jool-sim serve --socket PATH ARGS`, its stderr piped.
fn serve(path: &Path, args: &[&str]) -> Child {
    jool_sim()
        .arg("serve")
        .arg("--socket")
        .arg(path)
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A serving daemon, killed on drop.
struct Serving(Child);

impl Serving {
    fn start(path: &Path) -> Self {
        let child = serve(path, &[]);
        assert!(
            eventually(|| Client::connect(path).is_ok()),
            "jool-sim serve did not start"
        );
        Self(child)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A second serve on `path`: its status and stderr (killed after 5 s).
fn second_serve(path: &Path) -> (Option<ExitStatus>, String) {
    let mut child = serve(path, &[]);
    let status = wait_for(&mut child, Duration::from_secs(5));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (status, err)
}

/// `jool_siit stats display`'s request (4.1.9), family 0x20.
const STATS: &str = "30000000200001000400000000000000070100006a6f6f6c040109000100000064656661756c74000000000000000000";

fn unhex(s: &str) -> Vec<u8> {
    jool_sim::wire::hex::decode(s).unwrap()
}

/// One stats round trip over `path`: the reply's length.
fn stats(path: &Path) -> usize {
    let c = Client::connect(path).unwrap();
    assert_eq!(c.command(b'S', &unhex(STATS)).unwrap(), (0, 1));
    c.recv(true).unwrap().len()
}

#[test]
fn test_serve_leaves_a_regular_file_on_its_path_alone() {
    require_root!();
    let dir = TempDir::new("jool-sim-hardening");
    let file = dir.join("x.txt");
    fs::write(&file, "important\n").unwrap();
    let (status, err) = second_serve(&file);
    assert!(status.is_some_and(|s| !s.success()), "{status:?} {err}");
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "important\n");
}

#[test]
fn test_serve_leaves_a_symlink_on_its_path_alone() {
    require_root!();
    let dir = TempDir::new("jool-sim-hardening");
    let target = dir.join("target");
    fs::write(&target, "kept\n").unwrap();
    let link = dir.join("sock");
    symlink(&target, &link).unwrap();
    let (status, err) = second_serve(&link);
    assert!(status.is_some_and(|s| !s.success()), "{status:?} {err}");
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_link(&link).unwrap(), target);
    assert_eq!(fs::read_to_string(&target).unwrap(), "kept\n");
}

#[test]
fn test_second_serve_on_a_live_path_is_refused() {
    require_root!();
    let dir = TempDir::new("jool-sim-hardening");
    let path = dir.join("sock");
    let _first = Serving::start(&path);
    let (status, err) = second_serve(&path);
    assert!(status.is_some_and(|s| !s.success()), "{status:?} {err}");
    assert!(err.contains("already serving"), "{err}");
    assert_eq!(stats(&path), 876, "the first daemon still owns the path");
}

#[test]
fn test_serve_replaces_a_dead_socket_file() {
    require_root!();
    let dir = TempDir::new("jool-sim-hardening");
    let path = dir.join("sock");
    let mut first = Serving::start(&path);
    // SIGKILL: no clean-up, the socket file stays.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    assert!(path.exists());
    let _second = Serving::start(&path);
    assert_eq!(stats(&path), 876);
}

#[test]
fn test_serves_started_at_once_one_takes_the_path() {
    require_root!();
    let dir = TempDir::new("jool-sim-hardening");
    let path = dir.join("sock");
    let mut children: Vec<Child> = (0..4).map(|_| serve(&path, &[])).collect();
    assert!(eventually(|| Client::connect(&path).is_ok()));
    std::thread::sleep(Duration::from_millis(500));
    let running: Vec<bool> =
        children.iter_mut().map(|c| c.try_wait().unwrap().is_none()).collect();
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let n = running.iter().filter(|r| **r).count();
    assert_eq!(n, 1, "daemons still running: {running:?}");
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.len() <= 1, "{leftovers:?}");
}

/// `jool-sim exec -- sh -c SCRIPT`, spawned.
fn exec_sh(script: &str) -> Child {
    jool_sim()
        .args(["exec", "--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn exec_output(cmd: &[&str]) -> Output {
    jool_sim().arg("exec").arg("--").args(cmd).output().unwrap()
}

#[test]
fn test_exec_socket_folder_is_fresh_and_ours() {
    require_root!();
    // Plant what another user would: folders owned by uid 65534 with
    // the names the old exec used (`jool-sim-PID`) for the next pids.
    let tmp = std::env::temp_dir();
    let last: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let planted: Vec<PathBuf> = (last + 1..last + 200)
        .map(|pid| tmp.join(format!("jool-sim-{pid}")))
        .filter(|d| fs::create_dir(d).is_ok())
        .collect();
    for d in &planted {
        std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
        fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    }
    let out = exec_output(&["sh", "-c", "echo $JOOL_SIM_SOCKET"]);
    for d in &planted {
        let _ = fs::remove_dir_all(d);
    }
    assert!(out.status.success(), "{out:?}");
    let socket = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let folder = socket.parent().unwrap().to_owned();
    assert!(!planted.contains(&folder), "used a planted folder: {folder:?}");
    assert!(!folder.exists(), "{folder:?} is left behind");
    // While it runs: ours, not writable or listable by others.
    let out = exec_output(&[
        "sh",
        "-c",
        "stat -c '%u %a' \"$(dirname $JOOL_SIM_SOCKET)\"",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0 711\n", "{out:?}");
}

/// A command that drops to uid 65534 still loads the shim, wherever the
/// build is (a checkout under a 0700 folder would hide the original): it
/// is a 0644 copy beside the socket, gone afterwards with its folder.
#[test]
fn test_exec_shim_loads_for_a_command_that_drops_privileges() {
    require_root!();
    let out = exec_output(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sh",
        "-c",
        "test -r \"$LD_PRELOAD\" && echo \"$LD_PRELOAD\" \"$(dirname $JOOL_SIM_SOCKET)\" $(stat -c %a \"$LD_PRELOAD\")",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    let [shim, folder, mode] = words[..] else { panic!("{text:?}") };
    assert_eq!(Path::new(shim).parent(), Some(Path::new(folder)), "{text}");
    assert_eq!(mode, "644");
    assert!(!Path::new(folder).exists(), "{folder} is left behind");
}

#[test]
fn test_exec_forwards_sigterm_and_cleans_up() {
    require_root!();
    let mut exec = exec_sh("echo $$ $JOOL_SIM_SOCKET; exec sleep 30");
    let mut line = [0u8; 256];
    let n = exec.stdout.as_mut().unwrap().read(&mut line).unwrap();
    let line = String::from_utf8_lossy(&line[..n]).into_owned();
    let (pid, socket) = line.trim().split_once(' ').unwrap();
    let socket = PathBuf::from(socket);
    assert!(socket.exists());
    let term = Command::new("kill")
        .args(["-TERM", &exec.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = wait_for(&mut exec, Duration::from_secs(10));
    let alive = Path::new(&format!("/proc/{pid}")).exists();
    if alive {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    assert!(!alive, "the command outlived jool-sim exec");
    let status = status.expect("jool-sim exec still running");
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    assert!(!socket.exists(), "{socket:?} left behind");
    assert!(!socket.parent().unwrap().exists(), "folder left behind");
}

#[test]
fn test_exec_exit_statuses_like_a_shell() {
    require_root!();
    let dir = TempDir::new("jool-sim-hardening");
    let plain = dir.join("not-executable");
    fs::write(&plain, "echo hi\n").unwrap();
    let code = |cmd: &[&str]| {
        let out = exec_output(cmd);
        (out.status.code(), out.status.signal())
    };
    assert_eq!(code(&["sh", "-c", "exit 5"]), (Some(5), None));
    assert_eq!(code(&["sh", "-c", "kill -KILL $$"]), (Some(128 + 9), None));
    assert_eq!(code(&["/nonexistent/jool-sim-cmd"]), (Some(127), None));
    assert_eq!(code(&[plain.to_str().unwrap()]), (Some(126), None));
}

/// `jool-sim ctl --socket PATH ARGS`.
fn ctl(path: &Path, args: &[&str]) -> Output {
    jool_sim()
        .arg("ctl")
        .arg("--socket")
        .arg(path)
        .args(args)
        .output()
        .unwrap()
}

/// The counters of the `default` SIIT instance, from `ctl dump`.
fn counters(path: &Path) -> (u64, u64) {
    let out = ctl(path, &["dump"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let siit = v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["xlator"] == "siit")
        .unwrap()
        .clone();
    let c = |name: &str| siit["counters"][name].as_u64().unwrap();
    (c("JSTAT_RECEIVED6"), c("JSTAT_SUCCESS"))
}

#[test]
fn test_ctl_counters_arguments_are_validated() {
    require_root!();
    let dir = TempDir::new("jool-sim-hardening");
    let path = dir.join("sock");
    let _d = Serving::start(&path);
    let set = ctl(
        &path,
        &["counters", "set", "JSTAT_RECEIVED6=7", "JSTAT_SUCCESS=5"],
    );
    assert!(set.status.success(), "{set:?}");
    assert_eq!(counters(&path), (7, 5));
    // A reset with a value is refused, and changes nothing.
    let bad = ctl(&path, &["counters", "reset", "JSTAT_RECEIVED6=1"]);
    assert!(!bad.status.success(), "{bad:?}");
    assert_eq!(counters(&path), (7, 5));
    // A reset with names resets those.
    let one = ctl(&path, &["counters", "reset", "JSTAT_RECEIVED6"]);
    assert!(one.status.success(), "{one:?}");
    assert_eq!(counters(&path), (0, 5));
    // set and add need values.
    for action in ["set", "add"] {
        let empty = ctl(&path, &["counters", action]);
        assert!(!empty.status.success(), "{action}: {empty:?}");
    }
    assert_eq!(counters(&path), (0, 5));
}
