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
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use jool_sim::{
    kernel::{Caller, Framework, Kernel, NetnsId, Xlator, INIT_NETNS},
    versions::Profile,
    wire::{ctrl::Family, genl, hex, nla::NlasIterator, nlmsg},
};

use crate::{
    suite::{
        self,
        backend::ClientKind,
        expect::Snapshots,
        kernel::KernelBackend,
        recipes,
        report::Report,
        runner,
        spec::{Case, StepKind, Suite, User},
    },
    vm,
};

mod error;

pub use error::Error;

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

/// One netlink message of a pcap record, with its direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Sent to the kernel (a request), else to userspace (a reply).
    pub to_kernel: bool,
    /// The netlink message bytes.
    pub bytes: Vec<u8>,
}

/// `NETLINK_GENERIC`.
const NETLINK_GENERIC: u16 = 16;

/// The NETLINK_GENERIC messages of a pcap (link type 253: a 16-byte cooked
/// header, then the netlink messages of one skb).
pub fn read_pcap(bytes: &[u8]) -> std::result::Result<Vec<Message>, String> {
    let magic = bytes.get(..4).ok_or("pcap too short")?;
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err("not a pcap file".into()),
    };
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(v) } else { u32::from_be_bytes(v) })
    };
    if u32_at(bytes, 20) != Some(253) {
        return Err("not a NETLINK (253) capture".into());
    }
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len =
            u32_at(bytes, at + 8).ok_or("truncated record header")? as usize;
        let data =
            bytes.get(at + 16..at + 16 + len).ok_or("truncated record")?;
        at += 16 + len;
        let Some(cooked) = data.get(..16) else { continue };
        let proto = u16::from_be_bytes([cooked[14], cooked[15]]);
        if proto != NETLINK_GENERIC {
            continue;
        }
        for m in nlmsg::Messages::new(&data[16..]) {
            // nlmon marks every message outgoing: requests are those with
            // NLM_F_REQUEST.
            let to_kernel = m.flags() & nlmsg::F_REQUEST != 0;
            out.push(Message { to_kernel, bytes: m.message().to_vec() });
        }
    }
    Ok(out)
}

/// The bits of a port id that libnl takes from the pid (it puts a
/// per-socket number in the upper 10 bits).
const PID_BITS: u32 = 0x3f_ffff;

/// `nlmsg_pid` of a message.
fn port_of(m: &[u8]) -> u32 {
    m.get(12..16).map_or(0, |p| u32::from_ne_bytes([p[0], p[1], p[2], p[3]]))
}

/// A message with its sequence number and port id zeroed (also those of
/// the request an `NLMSG_ERROR` echoes).
pub fn masked(m: &[u8]) -> Vec<u8> {
    nlmsg::masked(m)
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

/// The captured messages of one step: (request, replies) pairs.
fn exchanges(text: &str) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut ex: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    for line in text.lines() {
        let (dir, h) = line.split_at(1.min(line.len()));
        let Ok(bytes) = hex::decode(h.trim()) else { continue };
        match (dir, ex.last_mut()) {
            (">", _) => ex.push((bytes, Vec::new())),
            ("<", Some(last)) => last.1.push(bytes),
            _ => {}
        }
    }
    ex
}

/// A transport that answers each request with the replies the real
/// kernel gave to the captured request at the same position, with the
/// sequence number and port id rewritten to the new request's (also in
/// the request an `NLMSG_ERROR` echoes).
#[derive(Debug)]
pub struct Replay {
    exchanges: std::collections::VecDeque<Vec<Vec<u8>>>,
    queue: std::collections::VecDeque<Vec<u8>>,
}

impl Replay {
    /// The replay of one captured step (`NN.netlink`).
    pub fn new(netlink: &str) -> Self {
        let exchanges =
            exchanges(netlink).into_iter().map(|(_, r)| r).collect();
        Self { exchanges, queue: Default::default() }
    }

    /// Requests the client did not send.
    pub fn left(&self) -> usize {
        self.exchanges.len()
    }
}

impl crate::transport::Transport for Replay {
    fn send(&mut self, datagram: &[u8]) -> std::io::Result<()> {
        let replies = self.exchanges.pop_front().ok_or_else(|| {
            std::io::Error::other(format!(
                "request {} was not captured",
                hex::encode(datagram)
            ))
        })?;
        let (seq, port) = (
            datagram.get(8..12).unwrap_or(&[0; 4]),
            datagram.get(12..16).unwrap_or(&[0; 4]),
        );
        for mut r in replies {
            for at in [8, 28] {
                let is_echo = at == 28;
                if is_echo
                    && !(r.get(4..6) == Some(&2u16.to_ne_bytes()[..])
                        && r.len() >= 36)
                {
                    continue;
                }
                r[at..at + 4].copy_from_slice(seq);
                r[at + 4..at + 8].copy_from_slice(port);
            }
            self.queue.push_back(r);
        }
        Ok(())
    }

    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        self.queue.pop_front().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "no reply queued",
            )
        })
    }

    fn port_id(&self) -> u32 {
        0x4242
    }
}

impl crate::transport::Transport for &mut Replay {
    fn send(&mut self, datagram: &[u8]) -> std::io::Result<()> {
        (**self).send(datagram)
    }

    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        (**self).recv()
    }

    fn port_id(&self) -> u32 {
        (**self).port_id()
    }
}

/// The counters of a Jool stats reply (`u64` attributes after the genl
/// and Jool headers).
fn reply_counters(reply: &[u8], header_len: usize) -> Vec<(u16, u64)> {
    let Ok(p) = nlmsg::Packet::new_checked(reply) else { return vec![] };
    let attrs = p.payload().get(genl::HEADER_LEN + header_len..);
    NlasIterator::new(attrs.unwrap_or_default())
        .map_while(std::result::Result::ok)
        .filter_map(|a| {
            let v: [u8; 8] = a.value().try_into().ok()?;
            Some((a.kind(), u64::from_le_bytes(v)))
        })
        .collect()
}

/// What [`compare`] found.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Requests replayed.
    pub requests: usize,
    /// Every difference (empty: byte-identical after masking).
    pub diffs: Vec<String>,
}

/// Replays the captured requests of `dir` on the simulator of `release`.
///
/// # Panics
/// If `release` is not a known release.
pub fn compare(dir: &Path, suites: &[Suite], release: &str) -> Comparison {
    let profile = Profile::get(release).expect("known release");
    let mut c = Comparison::default();
    let commands: BTreeMap<String, String> =
        std::fs::read_to_string(dir.join("COMMANDS.tsv"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                Some((f.first()?.to_string(), f.get(3)?.to_string()))
            })
            .collect();
    for suite in suites {
        for case in &suite.cases {
            let cdir = dir.join(&suite.suite.name).join(&case.name);
            if !cdir.is_dir() {
                continue;
            }
            // A capture of older suite files is stale, not a mismatch.
            let stale = case.steps.iter().enumerate().find(|(i, s)| {
                let name =
                    format!("{}/{}/{:02}", suite.suite.name, case.name, i + 1);
                let got = commands.get(&name).map(String::as_str);
                s.run.is_some()
                    && s.netns() != "new"
                    && got != s.run.as_deref()
            });
            match stale {
                Some((i, _)) => c.diffs.push(format!(
                    "{}: step {} differs from the captured command: the capture is stale (jool-harness capture --backend vm --release {release})",
                    cdir.display(),
                    i + 1
                )),
                None => compare_case(&cdir, case, profile, &mut c),
            }
        }
    }
    c
}

fn compare_case(
    cdir: &Path,
    case: &Case,
    profile: &'static Profile,
    c: &mut Comparison,
) {
    let diffs = &mut c.diffs;
    let mut k = Kernel::new(profile);
    let (siit, nat64) = case.modules.loaded();
    k.set_modules(siit, nat64);
    let mut ns: BTreeMap<String, NetnsId> = BTreeMap::new();
    let mut moving: Vec<NetnsId> = Vec::new();
    let mut next: NetnsId = 0x1000;
    let mut id_of = |name: &str| -> NetnsId {
        if name == "init" {
            return INIT_NETNS;
        }
        next += 1;
        if name == "new" {
            return next;
        }
        *ns.entry(name.to_owned()).or_insert(next)
    };
    for (i, step) in case.steps.iter().enumerate() {
        let netns = id_of(step.netns());
        match step.kind() {
            StepKind::Topology(t) => {
                let Some(t) = recipes::topology(t) else { continue };
                let n = id_of(t.netns);
                let _ = k.add_instance(
                    n,
                    t.xlator,
                    "default",
                    Framework::Netfilter,
                );
                moving.push(n);
            }
            StepKind::Traffic(_) => {}
            // A fresh `unshare -n` namespace has no nlmon device.
            StepKind::Run(_) if step.netns() == "new" => {}
            StepKind::Run(_) => {
                let base = cdir.join(format!("{:02}", i + 1));
                let Ok(text) =
                    std::fs::read_to_string(base.with_extension("netlink"))
                else {
                    diffs.push(format!("{}: not captured", base.display()));
                    continue;
                };
                for (req, want) in exchanges(&text) {
                    c.requests += 1;
                    let family = want.iter().find_map(|r| Family::find(r));
                    if let Some(f) = &family {
                        k.set_family_id(f.id);
                    }
                    if let Some((_, id)) =
                        family.and_then(|f| f.mcast_groups.first().cloned())
                    {
                        k.set_mcast_group_id(id);
                    }
                    if moving.contains(&netns) {
                        sync_counters(&mut k, netns, &req, &want, profile);
                    }
                    let caller = Caller {
                        netns,
                        net_admin: step.user == User::Root,
                        port_id: port_of(&req),
                        ext_ack: false,
                    };
                    let got: Vec<Vec<u8>> = k.handle(&caller, &req);
                    let g: Vec<Vec<u8>> =
                        got.iter().map(|m| masked(m)).collect();
                    let w: Vec<Vec<u8>> =
                        want.iter().map(|m| masked(m)).collect();
                    if g != w {
                        diffs.push(format!(
                            "{} ({}): request {}\n  real: {}\n  sim:  {}",
                            base.display(),
                            step.run.as_deref().unwrap_or_default(),
                            hex::encode(&req),
                            w.iter()
                                .map(|m| hex::encode(m))
                                .collect::<Vec<_>>()
                                .join(" "),
                            g.iter()
                                .map(|m| hex::encode(m))
                                .collect::<Vec<_>>()
                                .join(" "),
                        ));
                    }
                }
            }
        }
    }
}

/// Before a stats request in a namespace that saw real traffic: sets the
/// sim's counters to the ones the real reply shows.
fn sync_counters(
    k: &mut Kernel,
    netns: NetnsId,
    req: &[u8],
    want: &[Vec<u8>],
    p: &Profile,
) {
    // Jool header after nlmsghdr (16) and genl (4): magic, version, xt, flags, reserved, iname.
    let Some(hdr) = req.get(20..20 + p.header_len()) else { return };
    if req.get(16) != Some(&7) || hdr.len() < 28 {
        return;
    }
    let Some(x) = Xlator::from_xt(hdr[8]) else { return };
    let iname = hdr[12..28]
        .split(|b| *b == 0)
        .next()
        .map(|n| String::from_utf8_lossy(n).into_owned());
    let iname =
        iname.filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
    let values: Vec<(u16, u64)> =
        want.iter().flat_map(|r| reply_counters(r, p.header_len())).collect();
    let _ = k.set_counters(netns, x, &iname, &values);
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_masked_zeroes_seq_and_port_only() {
        let mut m = vec![0xa5u8; 36];
        m[..4].copy_from_slice(&36u32.to_ne_bytes());
        m[4..6].copy_from_slice(&2u16.to_ne_bytes());
        let z = masked(&m);
        assert_eq!(&z[8..16], &[0; 8]);
        assert_eq!(&z[28..36], &[0; 8]);
        assert_eq!(&z[16..28], &m[16..28]);
    }

    #[test]
    fn test_exchanges_pairs_requests_and_replies() {
        let ex = exchanges("> 0102\n< 03\n< 04\n> 05\n");
        assert_eq!(
            ex,
            vec![(vec![1, 2], vec![vec![3], vec![4]]), (vec![5], vec![])]
        );
    }

    /// Every message a step's `.netlink` file holds was read from the
    /// case's nlmon pcap (the file is made from the pcap by `write_steps`).
    #[test]
    fn test_read_pcap_finds_the_captured_messages() {
        let dir = suite::default_suites_dir().join("../captures/4.1.9-vm");
        let pcap = dir.join("pcap/errors__abbreviations__init.pcap");
        let msgs = read_pcap(&std::fs::read(pcap).unwrap()).unwrap();
        assert!(msgs.iter().any(|m| m.to_kernel));
        assert!(msgs.iter().any(|m| !m.to_kernel));
        let text = std::fs::read_to_string(
            dir.join("errors/abbreviations/01.netlink"),
        )
        .unwrap();
        let mut n = 0;
        for line in text.lines() {
            let (dir, h) = line.split_at(1);
            let bytes = hex::decode(h.trim()).unwrap();
            let found = msgs
                .iter()
                .any(|m| m.bytes == bytes && m.to_kernel == (dir == ">"));
            assert!(found, "{line}");
            n += 1;
        }
        assert!(n >= 2, "{n}");
        assert!(read_pcap(b"not a pcap").is_err());
    }
}
