//! The real clients' command lines (fixtures/captures/cli: 4.1.9, 4.1.13
//! and 4.1.15, on a host without the module and in a guest with it)
//! replayed through the jool-stats binary as `jool-stats --client-version
//! R ARGS...` under the captured `argv[0]`, in the same working folder
//! (the `-f` files), with the same clean environment: stdout, stderr and
//! the ending (exit status or signal) must be the captured bytes.
//!
//! - host records run against this machine's real netlink, where Jool is
//!   not loaded (skipped, loudly, where it is);
//! - guest records run against a `jool-sim` daemon (a thread of this
//!   test) holding the guest's state: the module's release, a `default`
//!   instance of each translator with the captured counters.
//!
//! One line is compared loosely: after `The JSON parser got confused
//! around the beginning of this string:` the real client prints freed
//! heap bytes (see the captures' README); the rest of those records is
//! compared exactly.

use std::{
    collections::BTreeMap, ffi::OsStr, os::unix::ffi::OsStrExt, path::Path,
    time::Duration,
};

use jool_harness::cmd::cli_capture::{
    run_one, Bytes, CaptureFile, Place, Ran, Record, Runner,
};
use jool_sim::{
    counters,
    daemon::{self, Shared},
    identity::Identity,
    kernel::Xlator,
    setup::{self, Setup},
};

use crate::util::fixtures;

const RELEASES: [&str; 3] = ["4.1.9", "4.1.13", "4.1.15"];

/// The line of a JSON error that holds heap garbage in the real client.
const JSON_ERROR: &[u8] = b"Error: The JSON parser got confused around the beginning of this string:\n";

fn load(release: &str, place: Place) -> CaptureFile {
    let path = fixtures()
        .join(format!("captures/cli/{release}/{}.json", place.name()));
    CaptureFile::load(&path).unwrap()
}

/// A fresh folder holding the capture's `-f` files.
fn work_dir(c: &CaptureFile) -> crate::util::TempPath {
    let dir = crate::util::temp_path(&format!(
        "cli-{}-{}",
        c.release,
        c.place.name()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in &c.files {
        std::fs::write(dir.join(name), &bytes.0).unwrap();
    }
    dir
}

/// Whether `got` is what `want` shows.
fn same(want: &Record, got: &Ran) -> bool {
    if want.stdout != got.stdout || want.status != got.status {
        return false;
    }
    match want.stderr.0.strip_prefix(JSON_ERROR) {
        Some(_) => {
            got.stderr.0.starts_with(JSON_ERROR)
                && got.stderr.0.ends_with(b"\n")
        }
        None => want.stderr == got.stderr,
    }
}

fn show(b: &Bytes) -> String {
    let s = String::from_utf8_lossy(&b.0);
    let mut end = s.len().min(300);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    match end < s.len() {
        true => format!("{:?}...", &s[..end]),
        false => format!("{s:?}"),
    }
}

/// Runs every record of `c` through jool-stats; returns the mismatches.
fn replay(c: &CaptureFile, env: &[(&str, &OsStr)]) -> Vec<String> {
    let dir = work_dir(c);
    let bin = Path::new(env!("CARGO_BIN_EXE_jool-stats"));
    let runner = Runner {
        program: bin,
        pre: vec![OsStr::new("--client-version"), OsStr::new(&c.release)],
        cwd: &dir,
        env: env.to_vec(),
        timeout: Duration::from_secs(30),
    };
    let chunks: Vec<&[Record]> =
        c.records.chunks(c.records.len().div_ceil(4).max(1)).collect();
    let bad: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let runner = &runner;
                s.spawn(move || {
                    let mut bad = Vec::new();
                    for r in chunk.iter() {
                        let got = run_one(runner, &r.argv[0].0, &r.argv[1..], r.stdout_kind).unwrap();
                        if !same(r, &got) {
                            bad.push(format!(
                                "{} {}: {:?}\n  real:       {} out {} err {}\n  jool-stats: {} out {} err {}",
                                c.release,
                                c.place.name(),
                                r.argv,
                                r.status,
                                show(&r.stdout),
                                show(&r.stderr),
                                got.status,
                                show(&got.stdout),
                                show(&got.stderr)
                            ));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let _ = std::fs::remove_dir_all(&dir);
    bad
}

fn assert_none(bad: &[String], total: usize) {
    assert!(
        bad.is_empty(),
        "{} of {total} command lines differ:\n{}",
        bad.len(),
        bad.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn test_captures_are_big_enough() {
    for r in RELEASES {
        for place in [Place::Host, Place::Guest] {
            let c = load(r, place);
            assert_eq!(c.release, r);
            assert!(
                c.records.len() >= 160,
                "{r} {}: {} records",
                place.name(),
                c.records.len()
            );
        }
    }
}

#[test]
fn test_host_command_lines() {
    if Path::new("/sys/module/jool_common").exists() {
        eprintln!("SKIP {}: Jool's module is loaded here; the host captures were made without it", module_path!());
        return;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let (mut bad, mut total) = (Vec::new(), 0);
    for r in RELEASES {
        let c = load(r, Place::Host);
        total += c.records.len();
        bad.extend(replay(&c, &[("PATH", &path)]));
    }
    assert_none(&bad, total);
}

/// The guest's kernel: its module's release, a default instance of each
/// translator holding the captured counters.
fn guest_kernel(c: &CaptureFile) -> jool_sim::kernel::Kernel {
    let module =
        c.module.as_deref().expect("a guest capture names its module");
    let me = Identity::current().unwrap();
    let s = Setup::new(setup::release(module).unwrap(), me.netns);
    let mut k = s.build().unwrap();
    let by_xlator: BTreeMap<&str, Xlator> =
        [("siit", Xlator::Siit), ("nat64", Xlator::Nat64)].into();
    for (name, x) in by_xlator {
        let text = c.counters.get(name).expect("the capture's counters");
        let rows = counters::parse(text).unwrap();
        let ids = counters::to_ids(&rows, k.profile()).unwrap();
        k.set_counters(me.netns, x, "default", &ids).unwrap();
    }
    k
}

#[test]
fn test_guest_command_lines() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let (mut bad, mut total) = (Vec::new(), 0);
    for r in RELEASES {
        let c = load(r, Place::Guest);
        assert_eq!(
            c.counters.get("siit"),
            c.counters.get("siit-after"),
            "{r}: counters moved during the capture"
        );
        let dir = crate::util::temp_path(&format!("cli-daemon-{r}"));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("sock");
        let running =
            daemon::spawn(&socket, Shared::new(guest_kernel(&c))).unwrap();
        total += c.records.len();
        bad.extend(replay(
            &c,
            &[("PATH", &path), ("JOOL_SIM_SOCKET", socket.as_os_str())],
        ));
        drop(running);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_none(&bad, total);
}

/// jool-stats with `env` only (and PATH), standard output as `stdout`.
fn jool_stats_env(
    args: &[&str],
    env: &[(&str, &OsStr)],
    stdout: jool_harness::cmd::cli_capture::StdoutKind,
) -> Ran {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut all = vec![("PATH", path.as_os_str())];
    all.extend_from_slice(env);
    let dir = fixtures();
    let runner = Runner {
        program: Path::new(env!("CARGO_BIN_EXE_jool-stats")),
        pre: Vec::new(),
        cwd: &dir,
        env: all,
        timeout: Duration::from_secs(30),
    };
    let args: Vec<Bytes> = args.iter().map(|a| Bytes::from(*a)).collect();
    run_one(&runner, &args[0].0, &args[1..], stdout).unwrap()
}

/// Regression (issue 15): `--counters` without `--sim` printed the file's
/// numbers, even with a daemon named by `JOOL_SIM_SOCKET`.
#[test]
fn r15_sim_only_options_need_sim() {
    use jool_harness::cmd::cli_capture::{Status, StdoutKind};
    let socket = OsStr::new("/nonexistent/jool-sim.sock");
    for extra in [
        &["--counters", "samples/siit-4.1.9.csv"][..],
        &["--kernel-version", "4.1.12"],
        &["--no-module"],
        &["--no-instance"],
    ] {
        for env in [&[][..], &[("JOOL_SIM_SOCKET", socket)]] {
            let mut args = vec!["jool_siit"];
            args.extend_from_slice(extra);
            args.extend(["stats", "display"]);
            let r = jool_stats_env(&args, env, StdoutKind::Pipe);
            assert_eq!(r.status, Status::Exit(64), "{args:?}: {r:?}");
            assert!(r.stdout.0.is_empty(), "{args:?}: {r:?}");
            let text = String::from_utf8_lossy(&r.stderr.0).into_owned();
            assert!(text.contains("it needs --sim"), "{text}");
        }
    }
}

/// `--sim` and `JOOL_SIM_SOCKET` together are refused, not silently
/// resolved.
#[test]
fn test_sim_with_a_daemon_socket_is_refused() {
    use jool_harness::cmd::cli_capture::{Status, StdoutKind};
    let socket = OsStr::new("/nonexistent/jool-sim.sock");
    let r = jool_stats_env(
        &["jool", "--sim", "stats", "display"],
        &[("JOOL_SIM_SOCKET", socket)],
        StdoutKind::Pipe,
    );
    assert_eq!(r.status, Status::Exit(64), "{r:?}");
    assert_eq!(
        String::from_utf8_lossy(&r.stderr.0),
        "jool: --sim simulates a kernel in this process, but JOOL_SIM_SOCKET=/nonexistent/jool-sim.sock names a jool-sim daemon's; unset one\n"
    );
}

/// A reader that went away: death by SIGPIPE, as the real client dies,
/// also past the first 4 KiB of a long display.
#[test]
fn test_closed_pipe_kills_jool_stats_with_sigpipe() {
    use jool_harness::cmd::cli_capture::{Status, StdoutKind};
    let r = jool_stats_env(
        &[
            "jool",
            "--sim",
            "--counters",
            "samples/siit-4.1.9.csv",
            "stats",
            "display",
            "--all",
            "--explain",
        ],
        &[],
        StdoutKind::ClosedPipe,
    );
    assert_eq!(r.status, Status::Signal(13), "{r:?}");
    assert!(r.stderr.0.is_empty(), "{r:?}");
}

/// argp's texts for any `--program-name` (its line wrapping, including
/// glibc's out-of-order blanks) against the installed real client, on
/// random names: skipped, loudly, without Debian's jool-tools.
#[test]
fn test_argp_wrapping_matches_the_installed_client() {
    use std::process::Command;
    let real = Path::new("/usr/bin/jool");
    let version = Command::new(real).arg("-V").output();
    if !version.is_ok_and(|o| o.stdout == b"4.1.9.0\n") {
        eprintln!("SKIP {}: no 4.1.9 /usr/bin/jool (apt-get install jool-tools on bookworm)", module_path!());
        return;
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabets: [&[u8]; 3] = [b"ab \t", b"x ", b"\x01xyz\xff\t"];
    let mut bad = Vec::new();
    for _ in 0..120 {
        let len = usize::try_from(next() % 300).unwrap();
        let abc = alphabets[usize::try_from(next() % 3).unwrap()];
        let name: Vec<u8> = (0..len)
            .map(|_| abc[usize::try_from(next()).unwrap() % abc.len()])
            .collect();
        let mut prog = b"--program-name=".to_vec();
        prog.extend(&name);
        for op in ["--usage", "--help", "--bogus"] {
            let prog = OsStr::from_bytes(&prog);
            let args =
                ["stats".as_ref(), "display".as_ref(), prog, op.as_ref()];
            let want = Command::new(real).args(args).output().unwrap();
            let got = Command::new(env!("CARGO_BIN_EXE_jool-stats"))
                .args(["--client-version", "4.1.9", "--nat64"])
                .args(args)
                .env_remove("JOOL_SIM_SOCKET")
                .output()
                .unwrap();
            // The real client names itself `jool`; jool-stats by its path:
            // argp's texts only use the --program-name.
            if (want.stdout, want.stderr, want.status.code())
                != (got.stdout, got.stderr, got.status.code())
            {
                bad.push(format!(
                    "{op} with a {len}-byte name {:?}",
                    String::from_utf8_lossy(&name)
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
}

/// Random command lines from the captures' vocabulary, through the
/// installed real client (4.1.9, no module here) and jool-stats: the same
/// bytes and endings (modes jool-stats refuses are left out). Skipped,
/// loudly, without Debian's jool-tools 4.1.9 or with the module loaded.
#[test]
fn test_random_command_lines_match_the_installed_client() {
    use std::{
        os::unix::process::{CommandExt, ExitStatusExt},
        process::Command,
    };
    let ok = Command::new("/usr/bin/jool").arg("-V").output();
    if !ok.is_ok_and(|o| o.stdout == b"4.1.9.0\n")
        || Path::new("/sys/module/jool_common").exists()
    {
        eprintln!(
            "SKIP {}: needs Debian's 4.1.9 /usr/bin/jool and no Jool module",
            module_path!()
        );
        return;
    }
    let c = load("4.1.9", Place::Host);
    let dir = work_dir(&c);
    let words: &[&[u8]] = &[
        b"stats",
        b"display",
        b"disp",
        b"s",
        b"d",
        b"-i",
        b"-f",
        b"--",
        b"-",
        b"",
        b"--all",
        b"-ae",
        b"--csv",
        b"--no",
        b"--help",
        b"--usage",
        b"-V",
        b"-?",
        b"-h",
        b"--vers",
        b"--program-name=x",
        b"--instance=",
        b"--inst",
        b"--fi",
        b"ok.json",
        b"notjson.txt",
        b"missing.json",
        b"array.json",
        b"number.json",
        b".",
        b"default",
        b"\xc3\xb1",
        b"a\x01b",
        b"--=",
        b"-x",
        b"--bogus",
        b"--csv=1",
        b"-iother",
        b"-fok.json",
        b"-Vi",
        b"instance",
        b"pool4",
        b"eamt",
        b"-a1",
        b"-?a",
        b"\xff",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % n as u64).unwrap()
    };
    let (mut bad, mut compared) = (Vec::new(), 0);
    for _ in 0..300 {
        let prog = ["jool", "jool_siit"][next(2)];
        let args: Vec<&OsStr> = (0..next(7))
            .map(|_| OsStr::from_bytes(words[next(words.len())]))
            .collect();
        let run = |cmd: &mut Command| {
            cmd.current_dir(&dir)
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .output()
                .unwrap()
        };
        let want = run(Command::new(format!("/usr/bin/{prog}"))
            .arg0(prog)
            .args(&args));
        let got = run(Command::new(env!("CARGO_BIN_EXE_jool-stats"))
            .arg0(prog)
            .args(["--client-version", "4.1.9"])
            .args(&args));
        if got.status.code() == Some(69) {
            continue; // a mode jool-stats does not emulate
        }
        compared += 1;
        let json = |e: &[u8]| e.starts_with(JSON_ERROR);
        let same_err = want.stderr == got.stderr
            || (json(&want.stderr) && json(&got.stderr));
        if want.stdout != got.stdout
            || !same_err
            || want.status.code() != got.status.code()
            || want.status.signal() != got.status.signal()
        {
            bad.push(format!("{prog} {args:?}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(compared > 200, "only {compared} compared");
    assert!(
        bad.is_empty(),
        "{} of {compared} differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
