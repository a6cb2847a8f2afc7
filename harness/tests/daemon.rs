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
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use crate::util::{temp_path, Output};

/// Why the matrix cannot run here, if it cannot.
pub(crate) fn missing_facility() -> Option<String> {
    if !nix_is_root() {
        return Some("not root".into());
    }
    for tool in ["setpriv", "unshare", "ip"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output();
        if !found.map(|o| o.status.success()).unwrap_or(false) {
            return Some(format!("`{tool}` not installed"));
        }
    }
    None
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().nth(1) == Some("0"))
        })
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
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// A `jool-sim serve` child process, killed on drop.
pub(crate) struct Serve {
    child: Child,
    pub(crate) socket: PathBuf,
    // Its folder, removed after the child is killed (fields drop after
    // `Drop::drop`).
    _dir: crate::util::TempPath,
}

impl Serve {
    pub(crate) fn start(args: &[&str]) -> Self {
        let dir = temp_path("sim");
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .unwrap();
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
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "jool-sim serve did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, socket, _dir: dir }
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
        // Unique per test of this process (tests run in parallel).
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("jsh-{}-{n}", std::process::id());
        let ok =
            Command::new("ip").args(["netns", "add", &name]).status().unwrap();
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
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                bin,
            ]);
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
    let out = cmd
        .arg(xlator)
        .args(args)
        .env("JOOL_SIM_SOCKET", socket)
        .output()
        .unwrap();
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
    let needs_admin = jool_sim::versions::Profile::get(release)
        .unwrap()
        .stats_requires_net_admin;
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
        for who in [
            As::Root,
            As::Unprivileged,
            As::UserNsRoot,
            As::OtherNetns(&other.0),
        ] {
            for argv0 in ["jool", "jool_siit"] {
                let args = [&cv[..], &["stats", "display", "--csv"]].concat();
                let out = run_as(who, &serve.socket, argv0, &args);
                let (code, err) = expected_stats(release, who);
                assert_eq!(
                    (out.code, out.stderr.as_str()),
                    (code, err),
                    "{release} {argv0} {who:?}"
                );
                // The CSV header is printed before the request, always.
                assert_eq!(
                    out.stdout, "Stat,Value\n",
                    "{release} {argv0} {who:?}"
                );
            }
            // Instance add needs CAP_NET_ADMIN in every release.
            let args = [&cv[..], &["instance", "add", "extra", "--iptables"]]
                .concat();
            let out = run_as(who, &serve.socket, "jool_siit", &args);
            let want = match who {
                As::Root | As::OtherNetns(_) => (0, String::new()),
                _ => (1, CAP_ERR.to_owned()),
            };
            assert_eq!(
                (out.code, out.stderr),
                want,
                "instance add {release} {who:?}"
            );
        }
    }
}

#[test]
fn test_instances_are_per_namespace() {
    require_facilities!();
    let other = Netns::new();
    let serve = Serve::start(&[]);
    let add = run_as(
        As::OtherNetns(&other.0),
        &serve.socket,
        "jool_siit",
        &["instance", "add", "--netfilter", "--pool6", "64:ff9b::/96"],
    );
    assert_eq!(add.code, 0, "{add:?}");
    let there = run_as(
        As::OtherNetns(&other.0),
        &serve.socket,
        "jool_siit",
        &["stats", "display"],
    );
    assert_eq!((there.code, there.stderr.as_str()), (0, ""));
    // Removing it there leaves the initial namespace's instance alone.
    let rm = run_as(
        As::OtherNetns(&other.0),
        &serve.socket,
        "jool_siit",
        &["instance", "remove"],
    );
    assert_eq!(rm.code, 0, "{rm:?}");
    let here =
        run_as(As::Root, &serve.socket, "jool_siit", &["stats", "display"]);
    assert_eq!(here.code, 0, "{here:?}");
    let gone = run_as(
        As::OtherNetns(&other.0),
        &serve.socket,
        "jool_siit",
        &["stats", "display"],
    );
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
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(jool_sim_bin());
            c
        };
        c.arg("ctl")
            .arg("--socket")
            .arg(&serve.socket)
            .args(args)
            .output()
            .unwrap()
    };
    let denied = ctl("nobody", &["counters", "set", "JSTAT_RECEIVED6=7"]);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("CAP_NET_ADMIN"));
    let ok = ctl(
        "root",
        &["counters", "set", "JSTAT_RECEIVED6=7", "JSTAT_SUCCESS=5"],
    );
    assert!(ok.status.success(), "{ok:?}");
    let out = run_as(
        As::Unprivileged,
        &serve.socket,
        "jool_siit",
        &["stats", "display"],
    );
    assert_eq!(out.stdout, "JSTAT_RECEIVED6: 7\nJSTAT_SUCCESS: 5\n");
}

/// The real module's answers to the 91 crafted requests of
/// fixtures/conformance-4.1.9, replayed over `jool-sim serve` by the same
/// probe (conformance.py, stdlib Python on AF_NETLINK sockets, through the
/// LD_PRELOAD shim) run as root, as uid 65534 without capabilities and as
/// root of a new user namespace.
///
/// Expected: root gets root.json's replies. The other two get the same
/// except where the corpus README says they differ: requests 72–75 and
/// 78–82 (every Jool op but stats) get Jool's EPERM error, built here from the protocol
/// (request header echoed with the ERROR flag, code 1, the 4.1.x text).
/// Masked: seq and port id (bytes 8..16 of each reply message) and the
/// `JNLAIE_NS` value in instance lists (the kernel's `struct net` pointer,
/// different at every boot; see the corpus README).
#[test]
fn test_conformance_replay_over_the_daemon_with_real_identities() {
    require_facilities!();
    let shim = jool_sim_bin().with_file_name("libjool_sim_preload.so");
    assert!(
        shim.exists(),
        "{} is missing: cargo build --workspace",
        shim.display()
    );
    let root_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::util::fixtures().join("conformance-4.1.9/root.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let serve = Serve::start(&["--kernel-version", "4.1.9"]);
    // uid 65534 must read the shim and the probe wherever the checkout
    // is (a 0700 folder would hide them): 0644 copies in our own folder.
    let staged = temp_path("conformance-staged");
    std::fs::create_dir(&staged).unwrap();
    let stage = |from: &Path, name: &str| {
        use std::os::unix::fs::PermissionsExt;
        let to = staged.join(name);
        std::fs::copy(from, &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644))
            .unwrap();
        to
    };
    let shim = stage(&shim, "libjool_sim_preload.so");
    let probe = stage(
        &crate::util::fixtures().join("conformance-4.1.9/conformance.py"),
        "conformance.py",
    );
    // Debian's interpreter: a per-user one (pyenv under /root) is not
    // executable by uid 65534.
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("python3");
    let results: Vec<(String, serde_json::Value)> = std::thread::scope(|s| {
        let runs: Vec<_> = ["root", "unpriv", "userns"]
            .into_iter()
            .map(|who| {
                let (probe, shim, socket) = (&probe, &shim, &serve.socket);
                s.spawn(move || {
                    (
                        who.to_owned(),
                        run_probe(who, python, probe, shim, socket),
                    )
                })
            })
            .collect();
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (who, got) in results {
        let failures = compare_conformance(&root_json, &got, who != "root");
        assert!(
            failures.is_empty(),
            "{who}: {} differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Runs conformance.py's `main()` with no receive timeout. The probe
/// reads until a recv times out (0.5 s, for the real kernel); over the
/// daemon every reply is queued on the socket before `sendto()` returns
/// (docs/daemon-protocol.md), so a non-blocking recv that finds nothing
/// means there is no more, and the same replies are recorded at once.
const DRAIN_AT_ONCE: &str = "\
import importlib.util, sys
spec = importlib.util.spec_from_file_location('conformance', sys.argv[1])
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)
probe.RECV_TIMEOUT = 0
sys.argv = sys.argv[1:]
probe.main()
";

/// Runs conformance.py as `who` through the shim; returns its JSON.
fn run_probe(
    who: &str,
    python: &str,
    probe: &Path,
    shim: &Path,
    socket: &Path,
) -> serde_json::Value {
    let mut cmd = match who {
        "root" => Command::new(python),
        "unpriv" => {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                python,
            ]);
            c
        }
        _ => {
            let mut c = Command::new("unshare");
            c.args(["-Ur", python]);
            c
        }
    };
    let dir = temp_path(&format!("conf-{who}"));
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
        .unwrap();
    let out = dir.join("out.json");
    let status = cmd
        .args(["-c", DRAIN_AT_ONCE])
        .arg(probe)
        .arg("--out")
        .arg(&out)
        .env("LD_PRELOAD", shim)
        .env("JOOL_SIM_SOCKET", socket)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "conformance.py as {who}");
    let got =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    got
}

fn unhex(s: &str) -> Vec<u8> {
    jool_sim::wire::hex::decode(s).unwrap()
}

/// seq/pid masked in every message (`nlmsg::masked`); JNLAIE_NS masked
/// in instance lists.
fn masked(d: Vec<u8>, instance_list: bool) -> Vec<u8> {
    let mut d = jool_sim::wire::nlmsg::masked(&d);
    if instance_list && d.len() >= 60 {
        // 48 header bytes, JNLAL_ENTRY nest header (4), JNLAIE_NS header (4).
        d[56..60].fill(0);
    }
    d
}

/// The EPERM error reply the real 4.1.x module sends to `request`.
fn eperm_reply(request: &[u8]) -> Vec<u8> {
    const MSG: &[u8] =
        b"CAP_NET_ADMIN capability required. (Maybe try su or sudo?)\0";
    let mut m = Vec::new();
    m.extend_from_slice(&[0; 4]); // nlmsg_len, below
    m.extend_from_slice(&request[4..6]); // the family id
    m.extend_from_slice(&[0, 0]); // flags
    m.extend_from_slice(&[0; 8]); // seq, pid (masked)
    m.extend_from_slice(&[0, 2, 0, 0]); // genl cmd 0, version 2
    let mut hdr = request[20..48].to_vec();
    hdr[9] |= 1; // JOOLNLHDR_FLAGS_ERROR
    m.extend_from_slice(&hdr);
    m.extend_from_slice(&[6, 0, 1, 0, 1, 0, 0, 0]); // JNLAERR_CODE = 1
    let len = (4 + MSG.len()) as u16;
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&[2, 0]);
    m.extend_from_slice(MSG);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    let total = m.len() as u32;
    m[..4].copy_from_slice(&total.to_le_bytes());
    m
}

fn compare_conformance(
    root: &serde_json::Value,
    got: &serde_json::Value,
    unprivileged: bool,
) -> Vec<String> {
    let want_reqs = root["requests"].as_array().unwrap();
    let got_reqs = got["requests"].as_array().unwrap();
    let mut failures = Vec::new();
    if want_reqs.len() != got_reqs.len() {
        return vec![format!(
            "{} requests, want {}",
            got_reqs.len(),
            want_reqs.len()
        )];
    }
    for (w, g) in want_reqs.iter().zip(got_reqs) {
        let name = w["name"].as_str().unwrap();
        let index = w["index"].as_u64().unwrap();
        let list = name.starts_with("instance_foreach");
        let replies = |r: &serde_json::Value| -> Vec<Vec<u8>> {
            r["replies_hex"]
                .as_array()
                .unwrap()
                .iter()
                .chain(r["late_replies_hex"].as_array().unwrap())
                .map(|h| masked(unhex(h.as_str().unwrap()), list))
                .collect()
        };
        let mut want = replies(w);
        // The corpus README's table: these answer E-PERM unprivileged.
        if unprivileged
            && [72, 73, 74, 75, 78, 79, 80, 81, 82].contains(&index)
        {
            want = vec![masked(
                eperm_reply(&unhex(w["request_hex"].as_str().unwrap())),
                list,
            )];
        }
        let got_r = replies(g);
        if w["errno_on_send_name"] != g["errno_on_send_name"] || want != got_r
        {
            failures.push(format!(
                "{index} {name}: send {:?}/{:?}, {} replies vs {}",
                w["errno_on_send_name"],
                g["errno_on_send_name"],
                want.len(),
                got_r.len()
            ));
        }
    }
    failures
}
