//! `jool-harness capture`: every suite command run by the real client on
//! the real module, with its outputs and its netlink bytes (nlmon), into
//! `fixtures/captures/<release>-vm/`; and [`compare`], which replays the
//! captured requests on the simulator and checks its replies byte for
//! byte (sequence numbers and port ids masked, nothing else).
//!
//! Layout of a capture folder:
//!
//! ```text
//! README.md              recipe, kernel, packages (written on the host)
//! COMMANDS.tsv           NAME, netns, user, command (run order)
//! env/                   uname, versions, the image manifest
//! SUITE/CASE/NN.out .err .rc      step NN's stdout, stderr, status
//! SUITE/CASE/NN.netlink           the step's netlink messages, one per
//!                                 line: `>` request or `<` reply, hex
//! pcap/SUITE__CASE__NETNS.pcap    the raw nlmon captures
//! ```

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use jool_sim::wire::{hex, nlmsg};

use crate::{
    suite::{
        self, backend::ClientKind, expect::Snapshots, kernel::KernelBackend,
        report::Report, runner, spec::Suite,
    },
    vm,
};

mod error;
mod pcap;
mod replay;

pub use error::Error;
pub use pcap::{read_pcap, Message, PcapError};
pub use replay::{compare, Comparison, Replay};

/// Result of the capture operations.
pub type Result<T> = std::result::Result<T, Error>;

/// What `jool-harness capture` does.
#[derive(Clone, Debug)]
pub struct Capture {
    /// Suites to capture: globs on the file stem (default all).
    pub globs: Vec<String>,
    /// Folder of the suite files.
    pub suites_dir: PathBuf,
    /// Release (vm: the image's).
    pub release: String,
    /// Output folder; replaced when it already holds a capture, refused
    /// when it holds anything else.
    pub out: PathBuf,
}

impl Capture {
    /// The default output folder of `release`:
    /// `fixtures/captures/<release>-vm`.
    pub fn default_out(release: &str) -> PathBuf {
        suite::default_suites_dir().join(format!("../captures/{release}-vm"))
    }
}

/// The bits of a port id that libnl takes from the pid (it puts a
/// per-socket number in the upper 10 bits).
pub(crate) const PID_BITS: u32 = 0x3f_ffff;

/// `nlmsg_pid` of a message (0 if it is not one).
pub(crate) fn port_of(m: &[u8]) -> u32 {
    nlmsg::Packet::new_checked(m).map_or(0, |p| p.pid())
}

/// Runs the suites' commands with the real client in a guest of
/// `c.release` and copies the capture it makes (outputs, netlink bytes)
/// to `c.out`. The guest runs [`capture_kernel`].
pub fn capture_vm(c: &Capture, config: &vm::Config) -> Result<()> {
    check_out(&c.out)?;
    let dir = c.suites_dir.canonicalize().map_err(|e| {
        Error::io(format!("find {}", c.suites_dir.display()), e)
    })?;
    suite::load_suites(&dir, &c.globs)?; // fail early, on the host
    let mut args: Vec<String> =
        ["capture", "--backend", "kernel", "--out", "/h/out/capture"]
            .map(str::to_owned)
            .into();
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    args.extend(["--suites-dir".into(), format!("/h/fixtures/{name}")]);
    args.extend(["--release".into(), c.release.clone()]);
    for g in &c.globs {
        args.extend(["--suite".into(), g.clone()]);
    }
    let fixtures = dir.parent().map(Path::to_owned);
    let guest = vm::Guest { args, fixtures, ..vm::Guest::default() };
    let guest = vm::boot_guest(&c.release, config, &guest)?;
    let got = guest.out().join("capture");
    if guest.failure().is_some() || !got.join("COMMANDS.tsv").is_file() {
        let console = guest.keep_console(None);
        return Err(Error::NoCapture {
            why: guest.failure().unwrap_or("see guest.log").to_owned(),
            console,
        });
    }
    replace_dir(&got, &c.out)?;
    let _ = std::fs::copy(
        guest.image().join("manifest"),
        c.out.join("env/image-manifest.txt"),
    );
    let timings = guest.timings();
    write_readme(&c.out, &c.release, &timings)?;
    eprintln!("capture: {} written", c.out.display());
    for (k, v) in timings {
        eprintln!("{k}: {v:.1} s");
    }
    Ok(())
}

/// An output folder may be replaced when it is absent, empty, or an
/// earlier capture (it has `COMMANDS.tsv`): nothing else is removed.
fn check_out(out: &Path) -> Result<()> {
    let empty =
        std::fs::read_dir(out).map_or(true, |mut d| d.next().is_none());
    if empty || out.join("COMMANDS.tsv").is_file() {
        Ok(())
    } else {
        Err(Error::NotACapture(out.to_owned()))
    }
}

/// Replaces the capture folder `out` (see [`check_out`]) with a copy of
/// `from`.
fn replace_dir(from: &Path, out: &Path) -> Result<()> {
    check_out(out)?;
    if out.exists() {
        std::fs::remove_dir_all(out)
            .map_err(|e| Error::io(format!("remove {}", out.display()), e))?;
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Error::io(format!("create {}", out.display()), e))?;
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from.join("."))
        .arg(out)
        .status()
        .map_err(|e| Error::io("run cp", e))?;
    if !status.success() {
        return Err(Error::io(
            format!("copy the capture to {}", out.display()),
            std::io::Error::other(status.to_string()),
        ));
    }
    Ok(())
}

/// Runs the suites' commands with the real client on this machine's
/// kernel while nlmon records every namespace, and writes the capture to
/// `c.out`. Returns whether every case passed.
pub fn capture_kernel(c: &Capture) -> Result<bool> {
    check_out(&c.out)?;
    let suites = suite::load_suites(&c.suites_dir, &c.globs)?;
    let mut backend =
        KernelBackend::new(Some(&c.release), &vm::jool_stats_binary()?)
            .map_err(Error::Backend)?;
    let pcaps = c.out.join("pcap");
    backend.capture_into(&pcaps).map_err(Error::Backend)?;
    let plan = runner::Plan {
        suites: &suites,
        clients: &[ClientKind::Real],
        snapshots: Snapshots::Check,
        strict: false,
    };
    let report = runner::run(&plan, &mut backend, &mut |e| {
        if let runner::Event::CaseEnd(r) = e {
            eprintln!("captured {} ({:?})", r.id(), r.outcome);
        }
    });
    drop(backend);
    write_steps(&c.out, &suites, &report)?;
    write_env(&c.out)?;
    Ok(report.success())
}

/// Writes every step's outputs and netlink messages, and COMMANDS.tsv.
fn write_steps(out: &Path, suites: &[Suite], report: &Report) -> Result<()> {
    let mut tsv = String::new();
    for r in &report.cases {
        let Some(case) = suites
            .iter()
            .find(|s| s.suite.name == r.suite)
            .and_then(|s| s.cases.iter().find(|c| c.name == r.case))
        else {
            continue;
        };
        let dir = out.join(&r.suite).join(&r.case);
        let mut messages = Vec::new();
        for entry in std::fs::read_dir(out.join("pcap"))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{}__{}__", r.suite, r.case)) {
                let path = entry.path();
                let bytes = std::fs::read(&path)?;
                messages.extend(
                    read_pcap(&bytes)
                        .map_err(|why| Error::Pcap { path, why })?,
                );
            }
        }
        for s in &r.steps {
            let Some(status) = s.status else { continue };
            let step = &case.steps[s.index - 1];
            std::fs::create_dir_all(&dir)?;
            let base = dir.join(format!("{:02}", s.index));
            std::fs::write(base.with_extension("out"), &s.stdout)?;
            std::fs::write(base.with_extension("err"), &s.stderr)?;
            std::fs::write(base.with_extension("rc"), format!("{status}\n"))?;
            let mut nl = String::new();
            for m in messages.iter().filter(|m| {
                s.pid.is_some_and(|p| {
                    port_of(&m.bytes) & PID_BITS == p & PID_BITS
                })
            }) {
                let _ = writeln!(
                    nl,
                    "{} {}",
                    if m.to_kernel { '>' } else { '<' },
                    hex::encode(&m.bytes)
                );
            }
            if step.netns() != "new" {
                std::fs::write(base.with_extension("netlink"), nl)?;
            }
            let _ = writeln!(
                tsv,
                "{}/{}/{:02}\t{}\t{}\t{}",
                r.suite,
                r.case,
                s.index,
                step.netns(),
                step.user.name(),
                step.run.as_deref().unwrap_or_default()
            );
        }
    }
    std::fs::write(out.join("COMMANDS.tsv"), tsv)?;
    Ok(())
}

fn write_env(out: &Path) -> Result<()> {
    let env = out.join("env");
    std::fs::create_dir_all(&env)?;
    for (name, cmd) in [
        ("uname", "uname -a"),
        ("versions", "jool_siit --version; jool --version; cat /sys/module/jool_common/version"),
        ("packages", "dpkg-query -W jool-dkms jool-tools linux-image-amd64 iproute2 util-linux tcpdump"),
        ("genl-family", "genl ctrl get name Jool 2>&1 || true"),
    ] {
        let o = std::process::Command::new("sh").args(["-c", cmd]).output()?;
        std::fs::write(env.join(format!("{name}.txt")), [o.stdout, o.stderr].concat())?;
    }
    Ok(())
}

fn write_readme(
    out: &Path,
    release: &str,
    timings: &[(String, f64)],
) -> Result<()> {
    let read = |f: &str| {
        std::fs::read_to_string(out.join("env").join(f)).unwrap_or_default()
    };
    let steps = std::fs::read_to_string(out.join("COMMANDS.tsv"))
        .unwrap_or_default()
        .lines()
        .count();
    let mut t = String::new();
    for (k, v) in timings {
        let _ = writeln!(t, "| {k} | {v:.1} s |");
    }
    let text = format!(
        "# Jool {release}: every suite command on the real module (jool-harness capture)\n\n\
Made by `jool-harness capture --backend vm --release {release}` (harness/src/capture/): the \
image of `scripts/vm-image --release {release}` booted under QEMU, `jool-harness capture --backend kernel` \
inside. Every `run` step of every suite ran with the real C client (Debian's jool-tools), in real \
namespaces and as the step's user, while tcpdump recorded an nlmon device in each namespace of the case \
(commands in a fresh `unshare -n` namespace cannot be recorded). {steps} commands.\n\n\
Kernel (`uname -a`): `{}`\n\nVersions:\n```\n{}```\nPackages:\n```\n{}{}```\n\n\
Files: `COMMANDS.tsv` (NAME, netns, user, command), `SUITE/CASE/NN.out|.err|.rc` (exact stdout, stderr, exit \
status of step NN), `SUITE/CASE/NN.netlink` (the step's NETLINK_GENERIC messages, matched by the client's \
port id = its pid: `>` request, `<` reply, hex), `pcap/` (the raw nlmon captures, link type 253), `env/`.\n\n\
`harness/tests/suites.rs` replays every captured request on the simulator in the same state (the suite's \
steps) and compares the replies byte for byte, masking only sequence numbers and port ids; counters of \
a namespace that saw real traffic are first set to the values the capture shows (they cannot be \
predicted).\n\n| step | time |\n| --- | --- |\n{t}",
        read("uname.txt").trim(),
        read("versions.txt"),
        read("packages.txt"),
        read("image-manifest.txt").lines().filter(|l| l.starts_with("kernel=") || l.starts_with("key=")).fold(String::new(), |s, l| s + l + "\n"),
    );
    std::fs::write(out.join("README.md"), text)?;
    Ok(())
}
