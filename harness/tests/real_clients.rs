//! Unmodified real clients against the simulator: Debian's C `jool_siit`
//! and `jool` (jool-tools 4.1.9) and the PyPI `jool-exporter`, run under
//! `jool-sim exec` (private daemon + LD_PRELOAD shim), compared byte for
//! byte with `jool-stats` and with the real-kernel captures.
//!
//! Needs the binaries (`.ci/run` installs jool-tools and a jool-exporter
//! venv); without them each test prints SKIP with what is missing.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    daemon::jool_sim_bin,
    util::{fixtures, jool_stats, temp_file, Output},
};

/// The real C client `name` (`jool` or `jool_siit`), if installed.
fn real_client(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.exists())
}

macro_rules! require_clients {
    () => {
        match (real_client("jool_siit"), real_client("jool")) {
            (Some(s), Some(n)) => (s, n),
            _ => {
                eprintln!("SKIP {}: Debian's jool-tools (jool, jool_siit) is not installed", module_path!());
                return;
            }
        }
    };
}

fn output(out: std::process::Output) -> Output {
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// `jool-sim exec KERNEL_ARGS -- CMD...`.
fn exec(kernel: &[&str], cmd: &[&str]) -> Output {
    let out = Command::new(jool_sim_bin())
        .arg("exec")
        .args(kernel)
        .arg("--")
        .args(cmd)
        .output()
        .unwrap();
    output(out)
}

const FLAGS: [&str; 4] = ["--all", "--explain", "--csv", "--no-headers"];

fn combos() -> Vec<Vec<&'static str>> {
    (0..16u8)
        .map(|m| {
            (0..4).filter(|b| m & (1 << b) != 0).map(|b| FLAGS[b]).collect()
        })
        .collect()
}

#[test]
fn test_every_flag_combination_matches_jool_stats() {
    let (siit, nat64) = require_clients!();
    let counters = fixtures().join("samples/siit-4.1.9.csv");
    let counters = counters.to_str().unwrap();
    for (bin, first, flag) in [
        (&siit, "default:siit", "--siit"),
        (&nat64, "default:nat64", "--nat64"),
    ] {
        let kernel = [
            "--kernel-version",
            "4.1.9",
            "--counters",
            counters,
            "--instance",
            first,
        ];
        for flags in combos() {
            let cmd =
                [&[bin.to_str().unwrap(), "stats", "display"][..], &flags]
                    .concat();
            let real = exec(&kernel, &cmd);
            let mut ours = vec![
                "--client-version",
                "4.1.9",
                flag,
                "--sim",
                "--counters",
                counters,
            ];
            ours.extend(["stats", "display"]);
            ours.extend(&flags);
            let ours = jool_stats(
                "jool-stats",
                &ours.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            );
            assert_eq!(
                real,
                ours,
                "{} stats display {}",
                bin.display(),
                flags.join(" ")
            );
            assert_eq!(real.code, 0);
        }
    }
}

#[test]
fn test_idle_outputs_match_the_real_kernel_captures() {
    let (siit, nat64) = require_clients!();
    let root = fixtures().join("captures/4.1.9");
    for (bin, dir) in [(&siit, "siit"), (&nat64, "nat64")] {
        for (file, flags) in [
            ("display-all", vec!["--all"]),
            ("display-csv-explain-all", vec!["--csv", "--explain", "--all"]),
            (
                "display-all-csv-noheaders",
                vec!["--all", "--csv", "--no-headers"],
            ),
        ] {
            let cmd =
                [&[bin.to_str().unwrap(), "stats", "display"][..], &flags]
                    .concat();
            let real = exec(&["--kernel-version", "4.1.9"], &cmd);
            let want = std::fs::read_to_string(
                root.join(format!("{dir}/{file}.out")),
            )
            .unwrap();
            assert_eq!(real.stdout, want, "{dir}/{file}");
        }
    }
}

/// (kernel args, client args, what the case is about)
const ERROR_CASES: &[(&[&str], &[&str], &str)] = &[
    (&["--no-module"], &["stats", "display"], "module not loaded"),
    (&["--no-instance"], &["stats", "display", "--csv"], "no instance"),
    (&[], &["-i", "nonexistent", "stats", "display"], "wrong -i"),
    (
        &["--kernel-version", "4.1.8"],
        &["stats", "display"],
        "exact-version kernel",
    ),
    (
        &["--kernel-version", "4.0.9"],
        &["stats", "display"],
        "24-byte-header kernel",
    ),
    (
        &["--kernel-version", "4.0.5"],
        &["stats", "display"],
        "4.0.x kernel (other family names)",
    ),
    (
        &["--kernel-version", "4.2.0-rc3"],
        &["stats", "display", "--all"],
        "4.2 kernel that accepts 4.1",
    ),
    (
        &["--kernel-version", "4.1.12"],
        &["stats", "display", "--all"],
        "newer ids: unknown stat counter",
    ),
    (&[], &["stats", "display", "--bogus"], "argp error"),
    (&[], &["stats"], "tree error"),
];

#[test]
fn test_error_paths_match_jool_stats() {
    let (siit, _) = require_clients!();
    for (kernel, args, what) in ERROR_CASES {
        let cmd = [&[siit.to_str().unwrap()][..], args].concat();
        let real = exec(kernel, &cmd);
        let mut ours: Vec<String> =
            ["--client-version", "4.1.9", "--siit", "--sim"]
                .map(String::from)
                .to_vec();
        ours.extend(kernel.iter().map(|s| s.to_string()));
        ours.extend(args.iter().map(|s| s.to_string()));
        let ours = jool_stats("jool_siit", &ours);
        assert_eq!(real.stdout, ours.stdout, "{what}: stdout");
        assert_eq!(
            real.code, ours.code,
            "{what}: exit status ({})",
            real.stderr
        );
        // jool-stats may add its own mislabel warning on stderr; the real
        // client's lines must all be there, first.
        assert!(
            ours.stderr.ends_with(&real.stderr),
            "{what}:\n real {:?}\n ours {:?}",
            real.stderr,
            ours.stderr
        );
    }
}

#[test]
fn test_instance_add_and_remove_through_the_real_client() {
    let (siit, _) = require_clients!();
    let s = siit.to_str().unwrap();
    let script = format!(
        "{s} instance add --netfilter --pool6 64:ff9b::/96; echo add=$?; \
         {s} stats display --csv; echo stats=$?; \
         {s} instance add --netfilter --pool6 64:ff9b::/96; echo again=$?; \
         {s} instance remove; echo rm=$?; \
         {s} stats display; echo gone=$?"
    );
    let out = exec(&["--no-instance"], &["sh", "-c", &script]);
    assert_eq!(
        out.stdout, "add=0\nStat,Value\nstats=0\nagain=17\nrm=0\ngone=3\n",
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr,
        "Error: The kernel module returned error 17: This namespace already has a Jool instance named 'default'.\n\
         Error: The kernel module returned error 3: This namespace lacks an instance named 'default'.\n"
    );
}

#[test]
fn test_privilege_and_namespaces_with_the_real_client() {
    let (siit, _) = require_clients!();
    if crate::daemon::missing_facility().is_some() {
        eprintln!("SKIP {}: needs root, setpriv, unshare, ip", module_path!());
        return;
    }
    let s = siit.to_str().unwrap();
    let ns = format!("jsr-{}", std::process::id());
    assert!(Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap()
        .success());
    let unpriv =
        "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all";
    let script = format!(
        "{s} stats display --csv; echo root=$?; \
         {unpriv} {s} stats display --csv; echo unpriv=$?; \
         unshare -Ur {s} stats display --csv; echo userns=$?; \
         ip netns exec {ns} {s} stats display --csv; echo otherns=$?; \
         {unpriv} {s} instance add x --iptables --pool6 64:ff9b::/96; echo unpriv_add=$?; \
         unshare -Ur {s} instance add y --iptables --pool6 64:ff9b::/96; echo userns_add=$?"
    );
    let out = exec(&["--kernel-version", "4.1.9"], &["sh", "-c", &script]);
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    // 4.1.9: stats needs no privilege; instances are per namespace;
    // instance add needs CAP_NET_ADMIN in the initial user namespace.
    assert_eq!(
        out.stdout,
        "Stat,Value\nroot=0\nStat,Value\nunpriv=0\nStat,Value\nuserns=0\nStat,Value\notherns=3\nunpriv_add=1\nuserns_add=1\n"
    );
    let cap = "Error: The kernel module returned error 1: CAP_NET_ADMIN capability required. (Maybe try su or sudo?)\n";
    assert_eq!(
        out.stderr,
        format!("Error: The kernel module returned error 3: This namespace lacks an instance named 'default'.\n{cap}{cap}")
    );
}

/// The jool-exporter console script, if a venv or PATH has it.
fn jool_exporter() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("JOOL_EXPORTER") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/venv-jool-exporter/bin/jool-exporter");
    if venv.exists() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("jool-exporter"))
        .find(|p| p.exists())
}

/// GET /metrics with curl (a bounded, well-tested HTTP client).
fn scrape(port: u16) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `(metric, value)` of every `jool_*` sample.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| l.starts_with("jool_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            let metric = name.split('{').next()?.to_owned();
            Some((metric, value.parse().ok()?))
        })
        .collect()
}

#[test]
fn test_jool_exporter_scrape_matches_the_counters_file() {
    let (_, _) = require_clients!();
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIP {}: curl not installed", module_path!());
        return;
    }
    let Some(exporter) = jool_exporter() else {
        eprintln!("SKIP {}: jool-exporter not installed (bash .ci/run makes target/venv-jool-exporter)", module_path!());
        return;
    };
    let counters = temp_file(
        "nat64.csv",
        "JSTAT_RECEIVED6,12\nJSTAT_RECEIVED4,7\nJSTAT_SUCCESS,19\nJSTAT_BIB_ENTRIES,3\nJSTAT_SESSIONS,4\nJSTAT64_SRC,2\nJSTAT_UNKNOWN,18446744073709551615\n",
    );
    // A port nothing listens on: ask the kernel for one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // `timeout` bounds the exporter's life whatever happens to this test.
    let mut child = Command::new(jool_sim_bin())
        .args([
            "exec",
            "--counters",
            counters.to_str().unwrap(),
            "--instance",
            "default:nat64",
            "--",
        ])
        .args(["timeout", "20"])
        .arg(&exporter)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let body = loop {
        if let Some(b) = scrape(port).filter(|b| b.contains("jool_")) {
            break b;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "jool-exporter did not answer on port {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // SIGTERM, which jool-sim exec passes on before it cleans up (its
    // socket folder would stay behind after a SIGKILL).
    let _ =
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let got = samples(&body);
    assert_eq!(got.len(), 69, "every 4.1.9 stat is exported:\n{body}");
    let want = [
        ("jool_received6", 12.0),
        ("jool_received4", 7.0),
        ("jool_success", 19.0),
        ("jool_bib_entries", 3.0),
        ("jool_sessions", 4.0),
        ("jool_jstat64_src", 2.0),
        ("jool_unknown", 18446744073709551615.0),
    ];
    for (name, value) in want {
        assert!(
            got.contains(&(name.to_owned(), value)),
            "{name} {value} missing:\n{body}"
        );
    }
    assert_eq!(got.iter().filter(|(_, v)| *v != 0.0).count(), want.len());
    // jool-stats --format prometheus gives the same samples.
    let args = [
        "--nat64",
        "--sim",
        "--counters",
        counters.to_str().unwrap(),
        "--format",
        "prometheus",
        "stats",
        "display",
    ];
    let ours = jool_stats("jool", &args.map(String::from));
    assert_eq!(samples(&ours.stdout), got);
}

/// Regression (issue 15): `jool-sim exec --counters F` filled the first
/// instance only (SIIT), so `jool stats display` showed nothing. The
/// counters now go to every instance, for jool-stats as for the real
/// client.
#[test]
fn r15_exec_counters_fill_every_instance() {
    let file = fixtures().join("samples/siit-4.1.9.csv");
    let file = file.to_str().unwrap();
    let js = env!("CARGO_BIN_EXE_jool-stats");
    for x in ["--siit", "--nat64"] {
        let out = exec(&["--counters", file], &[js, x, "stats", "display"]);
        assert_eq!(out.code, 0, "{x}: {out:?}");
        assert!(
            out.stdout.starts_with("JSTAT_RECEIVED6: 27\n"),
            "{x}: {out:?}"
        );
    }
    let (_, nat64) = require_clients!();
    let nat64 = nat64.to_str().unwrap();
    let out = exec(&["--counters", file], &[nat64, "stats", "display"]);
    assert!(out.stdout.starts_with("JSTAT_RECEIVED6: 27\n"), "{out:?}");
}
