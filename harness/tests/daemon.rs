//! The privilege and namespace matrix, with real processes: `jool-sim
//! serve` as a separate process, and `jool-stats` run as root, as uid
//! 65534 without capabilities (`setpriv`), as root of a new user namespace
//! (`unshare -Ur`) and from a second network namespace (`ip netns`).
//!
//! Expected outcomes come from the kernel's rules (docs/kernel-facts.md,
//! fixtures/versions/kernel-errors.md): stats needs CAP_NET_ADMIN in the
//! initial user namespace before 4.1.5 only; instance add always needs
//! it; instances are per network namespace.
//!
//! Needs root, `setpriv`, `unshare` and `ip`; without them each test says
//! SKIP on stderr and passes (CI runs as root and has them).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::util::{temp_path, Output};

/// Why the matrix cannot run here, if it cannot.
pub(crate) fn missing_facility() -> Option<String> {
    if !nix_is_root() {
        return Some("not root".into());
    }
    for tool in ["setpriv", "unshare", "ip"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output();
        if !found.map(|o| o.status.success()).unwrap_or(false) {
            return Some(format!("`{tool}` not installed"));
        }
    }
    None
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:")).map(|u| u.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

macro_rules! require_facilities {
    () => {
        if let Some(why) = missing_facility() {
            eprintln!("SKIP {}: {why}", module_path!());
            return;
        }
    };
}

/// target/<profile>/jool-sim, built by `cargo test --workspace`.
pub(crate) fn jool_sim_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("jool-sim");
    assert!(bin.exists(), "{} is missing: run the tests with `cargo test --workspace`", bin.display());
    bin
}

/// A `jool-sim serve` child process, killed on drop.
pub(crate) struct Serve {
    child: Child,
    pub(crate) socket: PathBuf,
}

impl Serve {
    pub(crate) fn start(args: &[&str]) -> Self {
        let dir = temp_path("sim");
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.join("sock");
        let child = Command::new(jool_sim_bin())
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while !socket.exists() {
            assert!(t.elapsed() < Duration::from_secs(10), "jool-sim serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, socket }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// A named network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Self {
        let name = format!("jsh-{}-{}", std::process::id(), temp_path("ns").display().to_string().len());
        let ok = Command::new("ip").args(["netns", "add", &name]).status().unwrap();
        assert!(ok.success(), "ip netns add {name}");
        Self(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// How a command is run.
#[derive(Clone, Copy, Debug)]
enum As<'a> {
    Root,
    Unprivileged,
    UserNsRoot,
    OtherNetns(&'a str),
}

fn run_as(who: As<'_>, socket: &Path, argv0: &str, args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_jool-stats");
    let mut cmd = match who {
        As::Root => Command::new(bin),
        As::Unprivileged => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", bin]);
            c
        }
        As::UserNsRoot => {
            let mut c = Command::new("unshare");
            c.args(["-Ur", bin]);
            c
        }
        As::OtherNetns(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, bin]);
            c
        }
    };
    // The program name picks the translator; pass it explicitly.
    let xlator = if argv0.contains("siit") { "--siit" } else { "--nat64" };
    let out = cmd.arg(xlator).args(args).env("JOOL_SIM_SOCKET", socket).output().unwrap();
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

const CAP_ERR: &str =
    "Error: The kernel module returned error 1: CAP_NET_ADMIN capability required. (Maybe try su or sudo?)\n";
const NO_INSTANCE: &str =
    "Error: The kernel module returned error 3: This namespace lacks an instance named 'default'.\n";

/// What `stats display --csv` must give for each caller under `release`.
fn expected_stats(release: &str, who: As<'_>) -> (i32, &'static str) {
    let needs_admin = jool_sim::versions::Profile::get(release).unwrap().stats_requires_net_admin;
    match who {
        As::OtherNetns(_) => (3, NO_INSTANCE),
        As::Unprivileged | As::UserNsRoot if needs_admin => (1, CAP_ERR),
        _ => (0, ""),
    }
}

#[test]
fn test_privilege_and_namespace_matrix() {
    require_facilities!();
    let other = Netns::new();
    for release in ["4.1.4", "4.1.9"] {
        let serve = Serve::start(&["--kernel-version", release]);
        let cv = ["--client-version", release];
        for who in [As::Root, As::Unprivileged, As::UserNsRoot, As::OtherNetns(&other.0)] {
            for argv0 in ["jool", "jool_siit"] {
                let args = [&cv[..], &["stats", "display", "--csv"]].concat();
                let out = run_as(who, &serve.socket, argv0, &args);
                let (code, err) = expected_stats(release, who);
                assert_eq!((out.code, out.stderr.as_str()), (code, err), "{release} {argv0} {who:?}");
                // The CSV header is printed before the request, always.
                assert_eq!(out.stdout, "Stat,Value\n", "{release} {argv0} {who:?}");
            }
            // Instance add needs CAP_NET_ADMIN in every release.
            let args = [&cv[..], &["instance", "add", "extra", "--iptables"]].concat();
            let out = run_as(who, &serve.socket, "jool_siit", &args);
            let want = match who {
                As::Root | As::OtherNetns(_) => (0, String::new()),
                _ => (1, CAP_ERR.to_owned()),
            };
            assert_eq!((out.code, out.stderr), want, "instance add {release} {who:?}");
        }
    }
}

#[test]
fn test_instances_are_per_namespace() {
    require_facilities!();
    let other = Netns::new();
    let serve = Serve::start(&[]);
    let add = run_as(As::OtherNetns(&other.0), &serve.socket, "jool_siit",
        &["instance", "add", "--netfilter", "--pool6", "64:ff9b::/96"]);
    assert_eq!(add.code, 0, "{add:?}");
    let there = run_as(As::OtherNetns(&other.0), &serve.socket, "jool_siit", &["stats", "display"]);
    assert_eq!((there.code, there.stderr.as_str()), (0, ""));
    // Removing it there leaves the initial namespace's instance alone.
    let rm = run_as(As::OtherNetns(&other.0), &serve.socket, "jool_siit", &["instance", "remove"]);
    assert_eq!(rm.code, 0, "{rm:?}");
    let here = run_as(As::Root, &serve.socket, "jool_siit", &["stats", "display"]);
    assert_eq!(here.code, 0, "{here:?}");
    let gone = run_as(As::OtherNetns(&other.0), &serve.socket, "jool_siit", &["stats", "display"]);
    assert_eq!((gone.code, gone.stderr.as_str()), (3, NO_INSTANCE));
}

#[test]
fn test_ctl_needs_net_admin_and_changes_counters() {
    require_facilities!();
    let serve = Serve::start(&[]);
    let ctl = |who: &str, args: &[&str]| {
        let mut c = if who == "root" {
            Command::new(jool_sim_bin())
        } else {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]).arg(jool_sim_bin());
            c
        };
        c.arg("ctl").arg("--socket").arg(&serve.socket).args(args).output().unwrap()
    };
    let denied = ctl("nobody", &["counters", "set", "JSTAT_RECEIVED6=7"]);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("CAP_NET_ADMIN"));
    let ok = ctl("root", &["counters", "set", "JSTAT_RECEIVED6=7", "JSTAT_SUCCESS=5"]);
    assert!(ok.status.success(), "{ok:?}");
    let out = run_as(As::Unprivileged, &serve.socket, "jool_siit", &["stats", "display"]);
    assert_eq!(out.stdout, "JSTAT_RECEIVED6: 7\nJSTAT_SUCCESS: 5\n");
}
