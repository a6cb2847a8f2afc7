//! The differential loop: the same mutated request to the kernel under
//! test and to the simulator, replies compared with seq and port id
//! masked, divergences deduplicated by class, crashes from the kernel log,
//! both sides resynchronised after a divergence that may have changed
//! state (and every `resync_every` requests).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use jool_sim::{
    fuzzing::{get_family, message, op, POOL6},
    kernel::INIT_NETNS,
    versions::Profile,
    wire::{
        genl,
        jool::{FLAG_ERROR, JNLAERR_CODE},
        nlmsg::{self, Packet},
    },
};
use serde::{Deserialize, Serialize};

use super::{
    known::{self, Case},
    mutate::{
        self, add_operand, hex, map_type, message_offsets, Dict, Rng, Seed,
        FAMILY_PLACEHOLDER,
    },
    target::{Exchange, KernelUnderTest, SimKernel},
};

/// Samples kept (files written) per divergence class.
const SAMPLES_PER_CLASS: usize = 3;
/// Most distinct classes tracked; later ones count as `other`.
const MAX_CLASSES: usize = 500;

/// How long and how the loop runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// PRNG seed.
    pub seed: u64,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many requests.
    pub max_execs: Option<u64>,
    /// Resynchronise both sides every this many requests (0: never).
    pub resync_every: u64,
    /// A progress line on stderr this often (None: silent).
    pub progress: Option<Duration>,
    /// Where divergences and crashes are saved (None: not saved).
    pub out: Option<PathBuf>,
    /// A file that holds the request being sent ([`read_journal`]), so
    /// that the parent process can save a request whose `sendmsg()`
    /// oopsed the kernel and killed this process.
    pub journal: Option<PathBuf>,
    /// Jool commands never sent (known crashers), replaced by
    /// `STATS_FOREACH`.
    pub avoid_cmds: Vec<u8>,
}

/// Writes the journal entry of request `exec`: exec (u64 LE), ext_ack
/// (u8), length (u32 LE), the bytes; one `pwrite()` at offset 0.
fn write_journal(f: &std::fs::File, exec: u64, ext_ack: bool, d: &[u8]) {
    use std::os::unix::fs::FileExt;
    let mut b = Vec::with_capacity(13 + d.len());
    b.extend_from_slice(&exec.to_le_bytes());
    b.push(u8::from(ext_ack));
    b.extend_from_slice(&(d.len() as u32).to_le_bytes());
    b.extend_from_slice(d);
    let _ = f.write_all_at(&b, 0);
}

/// The last journal entry: (exec, ext_ack, request).
pub fn read_journal(path: &Path) -> Option<(u64, bool, Vec<u8>)> {
    let b = std::fs::read(path).ok()?;
    let exec = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
    let ext_ack = *b.get(8)? != 0;
    let len = u32::from_le_bytes(b.get(9..13)?.try_into().ok()?) as usize;
    Some((exec, ext_ack, b.get(13..13 + len)?.to_vec()))
}

/// What the kernel under test told about itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Discovery {
    /// Jool's generic netlink family id.
    pub family_id: u16,
    /// Jool's `joold` multicast group id.
    pub mcast_group: Option<u32>,
    /// Ids of the other generic netlink families (never sent to).
    pub foreign: BTreeSet<u16>,
    /// `JNLAIE_NS` of the fuzzing namespace.
    pub netns_tag: u32,
    /// Linux 6.2+ `-funsigned-char` (names with bytes >= 128 are valid).
    #[serde(default)]
    pub unsigned_char: bool,
    /// The module has the iptables framework.
    #[serde(default)]
    pub xtables: bool,
    /// nlctrl validates GETFAMILY dumps strictly.
    #[serde(default)]
    pub ctrl_dump_strict: bool,
}

/// One class of divergence.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Class {
    /// `request kind/cmd | real answer | sim answer`.
    pub key: String,
    /// How many requests fell in it.
    pub count: u64,
    /// The known-divergence entry that explains it, if any.
    pub known: Option<String>,
    /// Index of the first request.
    pub first_exec: u64,
    /// Folders of the saved samples (relative to the output folder).
    pub samples: Vec<String>,
}

/// A request after which the kernel logged a crash.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Crash {
    /// Its index.
    pub exec: u64,
    /// The request, in hex.
    pub request_hex: String,
    /// The kernel log lines.
    pub lines: Vec<String>,
    /// Where it was saved.
    pub dir: Option<String>,
}

/// What a campaign did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// The kernel under test.
    pub real: String,
    /// The simulator.
    pub sim: String,
    /// PRNG seed.
    pub seed: u64,
    /// How many seed requests, by source.
    pub seeds: BTreeMap<String, usize>,
    /// What the kernel under test told.
    pub discovery: Discovery,
    /// Requests sent (to each side).
    pub execs: u64,
    /// Wall seconds of the loop.
    pub seconds: f64,
    /// Seconds in the kernel under test's exchanges (socket, sendmsg,
    /// recv, close) and kernel log reads.
    pub real_seconds: f64,
    /// Seconds in the simulator's exchanges.
    pub sim_seconds: f64,
    /// Resynchronisations.
    pub resyncs: u64,
    /// Divergence classes, most frequent first.
    pub classes: Vec<Class>,
    /// Crashes.
    pub crashes: Vec<Crash>,
    /// Why the loop stopped.
    pub stopped: String,
}

impl Summary {
    /// Requests per second.
    pub fn exec_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.execs as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Divergences not explained by the known list.
    pub fn unknown(&self) -> impl Iterator<Item = &Class> {
        self.classes.iter().filter(|c| c.known.is_none())
    }

    /// Whether the run found nothing to fail on.
    pub fn success(&self) -> bool {
        self.crashes.is_empty() && self.unknown().next().is_none()
    }

    /// The summary as text.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "fuzz-kernel: {} vs {}", self.real, self.sim);
        let seeds: Vec<String> =
            self.seeds.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let _ = writeln!(
            s,
            "  seed {} ({} seed requests: {}); family id 0x{:x}, JNLAIE_NS {:08x}, char {}, xtables {}, strict nlctrl dumps {}",
            self.seed,
            self.seeds.values().sum::<usize>(),
            seeds.join(", "),
            self.discovery.family_id,
            self.discovery.netns_tag,
            if self.discovery.unsigned_char { "unsigned" } else { "signed" },
            if self.discovery.xtables { "yes" } else { "no" },
            if self.discovery.ctrl_dump_strict { "yes" } else { "no" },
        );
        let _ = writeln!(
            s,
            "  {} execs in {:.1} s: {:.0} exec/s (real side {:.1} s, sim {:.1} s, mutation/compare {:.1} s); {} resyncs; stopped: {}",
            self.execs,
            self.seconds,
            self.exec_per_sec(),
            self.real_seconds,
            self.sim_seconds,
            (self.seconds - self.real_seconds - self.sim_seconds).max(0.0),
            self.resyncs,
            self.stopped
        );
        let total: u64 = self.classes.iter().map(|c| c.count).sum();
        let _ = writeln!(
            s,
            "  divergences: {total} in {} classes ({} unknown)",
            self.classes.len(),
            self.unknown().count()
        );
        for c in &self.classes {
            let _ = writeln!(
                s,
                "    {:>8}  {}  [{}] first #{}{}",
                c.count,
                c.key,
                c.known.as_deref().unwrap_or("UNKNOWN"),
                c.first_exec,
                c.samples
                    .first()
                    .map(|d| format!(", sample {d}"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(s, "  crashes: {}", self.crashes.len());
        for c in &self.crashes {
            let _ = writeln!(
                s,
                "    #{}: {}",
                c.exec,
                c.lines.first().map_or("", String::as_str)
            );
        }
        s
    }
}

/// Asks `k` for Jool's family (id, multicast group) and every other
/// family's id (`CTRL_CMD_GETFAMILY`, then its dump).
pub fn discover_family(
    k: &mut dyn KernelUnderTest,
) -> Result<Discovery, String> {
    let ex = k.exchange(&get_family("Jool", 1), false);
    let reply = ex
        .replies
        .first()
        .ok_or("no answer to CTRL_CMD_GETFAMILY \"Jool\"")?;
    let mut d = Discovery::default();
    let p = Packet::new_unchecked(&reply[..]);
    if reply.len() < 20 || p.kind() != nlmsg::GENL_ID_CTRL {
        return Err(format!(
            "Jool's family does not exist (is the module loaded?): {}",
            hex(reply)
        ));
    }
    for (kind, v) in attrs(&reply[20..]) {
        match kind {
            genl::CTRL_ATTR_FAMILY_ID if v.len() >= 2 => {
                d.family_id = u16::from_le_bytes([v[0], v[1]]);
            }
            genl::CTRL_ATTR_MCAST_GROUPS => {
                for (_, grp) in attrs(v) {
                    for (k2, id) in attrs(grp) {
                        if k2 == 2 && id.len() >= 4 {
                            d.mcast_group = Some(u32::from_le_bytes([
                                id[0], id[1], id[2], id[3],
                            ]));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if d.family_id == 0 {
        return Err("CTRL_CMD_GETFAMILY \"Jool\": no family id".into());
    }
    let mut dump =
        message(nlmsg::GENL_ID_CTRL, 2, genl::CTRL_CMD_GETFAMILY, &[]);
    Packet::new_unchecked(&mut dump[..])
        .set_flags(nlmsg::F_REQUEST | nlmsg::F_DUMP);
    for r in k.exchange(&dump, false).replies {
        for (off, len) in message_offsets(&r) {
            let m = &r[off..off + len];
            if m.len() < 20
                || Packet::new_unchecked(m).kind() != nlmsg::GENL_ID_CTRL
            {
                continue;
            }
            for (kind, v) in attrs(&m[20..]) {
                if kind == genl::CTRL_ATTR_FAMILY_ID && v.len() >= 2 {
                    d.foreign.insert(u16::from_le_bytes([v[0], v[1]]));
                }
            }
        }
    }
    d.foreign.remove(&d.family_id);
    d.foreign.remove(&nlmsg::GENL_ID_CTRL);
    Ok(d)
}

/// The attributes of a stream, leniently (stops at the first bad one).
pub(super) fn attrs(b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while b.len() >= off + 4 {
        let len = usize::from(u16::from_le_bytes([b[off], b[off + 1]]));
        let kind = u16::from_le_bytes([b[off + 2], b[off + 3]]) & 0x3fff;
        if len < 4 || off + len > b.len() {
            break;
        }
        out.push((kind, &b[off + 4..off + len]));
        off += (len + 3) & !3;
    }
    out
}

/// The requests that put a kernel in the base state: flush both
/// translators' instances of the namespace, then add SIIT and NAT64
/// `default` (netfilter, pool6 64:ff9b::/96).
pub fn base_requests(p: &Profile) -> Vec<Vec<u8>> {
    let flush = |xt| mutate::request(p, op::INSTANCE_FLUSH, xt, b"", &[]);
    let add = |xt| {
        mutate::request(
            p,
            op::INSTANCE_ADD,
            xt,
            b"default",
            &add_operand(p, 4, Some(POOL6)),
        )
    };
    vec![flush(1), flush(2), add(1), add(2)]
}

/// Requests whose answers show the state: instance lists, globals and
/// stats of both `default` instances.
fn check_requests(p: &Profile) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for xt in [1, 2] {
        v.push(mutate::request(p, op::INSTANCE_FOREACH, xt, b"", &[]));
        v.push(mutate::request(p, 8, xt, b"default", &[]));
        v.push(mutate::request(p, op::STATS_FOREACH, xt, b"default", &[]));
    }
    v
}

/// `JNLAIE_NS` of the first instance `k` lists (after the base state).
pub fn discover_netns_tag(
    k: &mut dyn KernelUnderTest,
    p: &Profile,
    family_id: u16,
) -> Result<u32, String> {
    for mut r in base_requests(p) {
        map_type(&mut r, FAMILY_PLACEHOLDER, family_id);
        k.exchange(&r, false);
    }
    let mut r = mutate::request(p, op::INSTANCE_FOREACH, 1, b"", &[]);
    map_type(&mut r, FAMILY_PLACEHOLDER, family_id);
    let ex = k.exchange(&r, false);
    let reply = ex.replies.first().ok_or("no answer to INSTANCE_FOREACH")?;
    let start = 20 + p.header_len();
    let body = reply.get(start..).unwrap_or_default();
    for (kind, entry) in attrs(body) {
        if kind != 1 {
            continue;
        }
        for (k2, v) in attrs(entry) {
            if k2 == 1 && v.len() >= 4 {
                return Ok(u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
            }
        }
    }
    Err(format!(
        "INSTANCE_FOREACH after adding the base instances listed none: {}",
        hex(reply)
    ))
}

/// How the kernel under test was built ([`Build`]), by asking it two
/// questions that change nothing: STATS_FOREACH of a SIIT instance named
/// "\xff" (ESRCH: unsigned `char`; EINVAL "The instance name must be...":
/// signed), and INSTANCE_ADD of a NAT64 iptables instance without pool6
/// ("Netfilter is the only available instance framework.": no xtables;
/// else "pool6 is mandatory in NAT64 instances.").
///
/// [`Build`]: jool_sim::kernel::Build
pub fn discover_build(
    k: &mut dyn KernelUnderTest,
    p: &Profile,
    d: &mut Discovery,
) {
    let mut r = mutate::request(p, op::STATS_FOREACH, 1, b"\xff", &[]);
    map_type(&mut r, FAMILY_PLACEHOLDER, d.family_id);
    d.unsigned_char =
        answer_kind(&k.exchange(&r, false), d.family_id) == "jool-err3";
    let mut r = mutate::request(
        p,
        op::INSTANCE_ADD,
        2,
        b"probe",
        &add_operand(p, 8, None),
    );
    map_type(&mut r, FAMILY_PLACEHOLDER, d.family_id);
    const ONLY_NETFILTER: &[u8] =
        b"Netfilter is the only available instance framework.";
    d.xtables =
        !k.exchange(&r, false).replies.iter().any(|m| {
            m.windows(ONLY_NETFILTER.len()).any(|w| w == ONLY_NETFILTER)
        });
    // A GETFAMILY dump with an attribute nlctrl's policy lacks (type 5,
    // u8): EINVAL where dumps are validated, else the dump.
    let mut dump = message(
        nlmsg::GENL_ID_CTRL,
        2,
        genl::CTRL_CMD_GETFAMILY,
        &[5, 0, 5, 0, b'N', 0, 0, 0],
    );
    Packet::new_unchecked(&mut dump[..])
        .set_flags(nlmsg::F_REQUEST | nlmsg::F_DUMP);
    d.ctrl_dump_strict =
        answer_kind(&k.exchange(&dump, false), d.family_id) == "nlerr22";
}

/// A simulator configured like the kernel `d` describes.
pub fn sim_like(profile: &'static Profile, d: &Discovery) -> SimKernel {
    let mut s = SimKernel::new(profile);
    s.kernel.set_build(jool_sim::kernel::Build {
        unsigned_char: d.unsigned_char,
        xtables: d.xtables,
        ctrl_dump_strict: d.ctrl_dump_strict,
    });
    s.kernel.set_family_id(d.family_id);
    if let Some(g) = d.mcast_group {
        s.kernel.set_mcast_group_id(g);
    }
    s.kernel.set_netns_tag(INIT_NETNS, d.netns_tag);
    s
}

/// Zeroes `nlmsg_seq` and `nlmsg_pid` of every message of a datagram.
pub fn mask(d: &[u8]) -> Vec<u8> {
    let mut v = d.to_vec();
    let mut off = 0;
    while v.len() >= off + nlmsg::HEADER_LEN {
        let len = Packet::new_unchecked(&v[off..]).len() as usize;
        v[off + 8..off + 16].fill(0);
        if len < nlmsg::HEADER_LEN {
            break;
        }
        off = off.saturating_add((len + 3) & !3);
    }
    v
}

/// Whether two exchanges are the same after masking.
pub fn same(a: &Exchange, b: &Exchange) -> bool {
    a.sent == b.sent
        && a.recv_error == b.recv_error
        && a.replies.len() == b.replies.len()
        && a.replies.iter().zip(&b.replies).all(|(x, y)| mask(x) == mask(y))
}

/// Whether datagram `d` holds a Jool INSTANCE_ADD, INSTANCE_RM or
/// INSTANCE_FLUSH.
fn changes_instances(d: &[u8], family_id: u16) -> bool {
    message_offsets(d).into_iter().any(|(off, len)| {
        len > nlmsg::HEADER_LEN
            && Packet::new_unchecked(&d[off..]).kind() == family_id
            && matches!(
                d[off + nlmsg::HEADER_LEN],
                op::INSTANCE_ADD | op::INSTANCE_RM | op::INSTANCE_FLUSH
            )
    })
}

/// A short name for what a request is: `jool/cmd7`, `ctrl/cmd3`,
/// `type0x3`, `empty`, `short`.
pub fn request_kind(d: &[u8], family_id: u16) -> String {
    if d.is_empty() {
        return "empty".into();
    }
    if d.len() < nlmsg::HEADER_LEN {
        return "short".into();
    }
    let p = Packet::new_unchecked(d);
    let cmd = d.get(16).map_or("-".to_owned(), |c| c.to_string());
    let several = if message_offsets(d).len() > 1 { "+more" } else { "" };
    match p.kind() {
        k if k == family_id => format!("jool/cmd{cmd}{several}"),
        nlmsg::GENL_ID_CTRL => format!("ctrl/cmd{cmd}{several}"),
        k => format!("type0x{k:x}{several}"),
    }
}

/// A short name for an answer: `send-errno61`, `no-reply`, `ack`,
/// `nlerr22`, `done`, `ctrl`, `jool-ok`, `jool-err3`, plus `x2` for two
/// datagrams.
pub fn answer_kind(ex: &Exchange, family_id: u16) -> String {
    if let Err(e) = ex.sent {
        return format!("send-errno{e}");
    }
    let Some(first) = ex.replies.first() else {
        return match ex.recv_error {
            Some(e) => format!("recv-errno{e}"),
            None => "no-reply".into(),
        };
    };
    let base = if first.len() < nlmsg::HEADER_LEN {
        "short".to_owned()
    } else {
        let p = Packet::new_unchecked(&first[..]);
        match p.kind() {
            nlmsg::NLMSG_ERROR if first.len() >= 20 => {
                let e = i32::from_le_bytes([
                    first[16], first[17], first[18], first[19],
                ]);
                if e == 0 {
                    "ack".into()
                } else {
                    format!("nlerr{}", e.wrapping_neg())
                }
            }
            nlmsg::NLMSG_DONE => "done".into(),
            nlmsg::GENL_ID_CTRL => "ctrl".into(),
            k if k == family_id => jool_answer(first),
            k => format!("type0x{k:x}"),
        }
    };
    let n = ex.replies.len();
    if n > 1 {
        format!("{base}x{n}")
    } else {
        base
    }
}

fn jool_answer(m: &[u8]) -> String {
    // nlmsghdr, genl header, then a 28-byte (v2) or 24-byte (v1) header
    // whose flags byte is at 9 or 5; errors carry JNLAERR_CODE.
    for (hlen, flags_at) in [(28usize, 9usize), (24, 5)] {
        let Some(flags) = m.get(20 + flags_at) else { continue };
        if flags & FLAG_ERROR == 0 {
            continue;
        }
        if let Some(code) = attrs(m.get(20 + hlen..).unwrap_or_default())
            .into_iter()
            .find(|(k, v)| *k == JNLAERR_CODE && v.len() >= 2)
            .map(|(_, v)| u16::from_le_bytes([v[0], v[1]]))
        {
            return format!("jool-err{code}");
        }
    }
    "jool-ok".into()
}

/// The loop's state.
pub struct Engine<'a> {
    real: &'a mut dyn KernelUnderTest,
    sim: &'a mut dyn KernelUnderTest,
    profile: &'static Profile,
    seeds: Vec<Seed>,
    dict: Dict,
    rng: Rng,
    opts: Options,
    summary: Summary,
    classes: BTreeMap<String, Class>,
}

impl<'a> Engine<'a> {
    /// A loop between `real` (configured as `d` says) and `sim`, for
    /// requests of `profile`'s clients.
    pub fn new(
        real: &'a mut dyn KernelUnderTest,
        sim: &'a mut dyn KernelUnderTest,
        profile: &'static Profile,
        d: Discovery,
        seeds: Vec<Seed>,
        opts: Options,
    ) -> Self {
        let mut by_source = BTreeMap::new();
        for s in &seeds {
            let src = s.name.rsplit_once(':').map_or("", |(a, _)| a);
            *by_source.entry(src.to_owned()).or_insert(0) += 1;
        }
        let summary = Summary {
            real: real.name(),
            sim: sim.name(),
            seed: opts.seed,
            seeds: by_source,
            discovery: d.clone(),
            ..Summary::default()
        };
        Self {
            dict: Dict::new(profile, d.netns_tag),
            rng: Rng::new(opts.seed),
            real,
            sim,
            profile,
            seeds,
            opts,
            summary,
            classes: BTreeMap::new(),
        }
    }

    fn prepare(&self, mut d: Vec<u8>) -> Vec<u8> {
        let fam = self.summary.discovery.family_id;
        map_type(&mut d, FAMILY_PLACEHOLDER, fam);
        for f in &self.summary.discovery.foreign {
            map_type(&mut d, *f, fam);
        }
        if !self.opts.avoid_cmds.is_empty() {
            for (off, len) in message_offsets(&d) {
                let is_jool = Packet::new_unchecked(&d[off..]).kind() == fam;
                if is_jool
                    && len > nlmsg::HEADER_LEN
                    && self.opts.avoid_cmds.contains(&d[off + 16])
                {
                    d[off + 16] = op::STATS_FOREACH;
                }
            }
        }
        d
    }

    fn both(&mut self, d: &[u8], ext_ack: bool) -> (Exchange, Exchange) {
        let t = Instant::now();
        let r = self.real.exchange(d, ext_ack);
        let t2 = Instant::now();
        let s = self.sim.exchange(d, ext_ack);
        self.summary.real_seconds += (t2 - t).as_secs_f64();
        self.summary.sim_seconds += t2.elapsed().as_secs_f64();
        (r, s)
    }

    /// Puts both sides in the base state and checks that they agree.
    fn resync(&mut self) -> Result<(), String> {
        self.summary.resyncs += 1;
        for r in base_requests(self.profile) {
            let r = self.prepare(r);
            self.both(&r, false);
        }
        for r in check_requests(self.profile) {
            let r = self.prepare(r);
            let (a, b) = self.both(&r, false);
            if !same(&a, &b) {
                let case = Case { request: &r, real: &a, sim: &b };
                if known::explain(&case, self.summary.discovery.family_id)
                    .is_none()
                {
                    return Err(format!(
                        "after resynchronising, {} differs:\n  real {:?}\n  sim  {:?}",
                        request_kind(&r, self.summary.discovery.family_id),
                        a.replies.iter().map(|x| hex(x)).collect::<Vec<_>>(),
                        b.replies.iter().map(|x| hex(x)).collect::<Vec<_>>(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// [`Self::resync`]; a failure is recorded as a class. Whether it
    /// worked.
    fn resync_or_record(&mut self, exec: u64) -> bool {
        match self.resync() {
            Ok(()) => true,
            Err(e) => {
                self.record_class(exec, format!("resync | {e}"), None, None);
                false
            }
        }
    }

    /// INSTANCE_FOREACH of both translators on both sides; the first
    /// pair of answers that differs other than in a known way (order).
    fn state_differs(&mut self) -> Option<(Vec<u8>, Exchange, Exchange)> {
        let fam = self.summary.discovery.family_id;
        for xt in [1, 2] {
            let q = self.prepare(mutate::request(
                self.profile,
                op::INSTANCE_FOREACH,
                xt,
                b"",
                &[],
            ));
            let (a, b) = self.both(&q, false);
            if !same(&a, &b) {
                let case = Case { request: &q, real: &a, sim: &b };
                if known::explain(&case, fam).is_none() {
                    return Some((q, a, b));
                }
            }
        }
        None
    }

    /// Runs the loop; returns what it found.
    pub fn run(mut self) -> Summary {
        let fam = self.summary.discovery.family_id;
        let start = Instant::now();
        let mut last_progress = Instant::now();
        if let Err(e) = self.resync() {
            self.record_class(0, format!("initial state | {e}"), None, None);
            self.summary.stopped = "the initial states differ".into();
            return self.finish(start);
        }
        let journal = self.opts.journal.as_ref().and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(p)
                .ok()
        });
        let mut exec = 0u64;
        self.summary.stopped = loop {
            if self.opts.max_execs.is_some_and(|m| exec >= m) {
                break "max execs".into();
            }
            if self.opts.duration.is_some_and(|d| start.elapsed() >= d) {
                break "time".into();
            }
            if self.opts.resync_every > 0
                && exec > 0
                && exec % self.opts.resync_every == 0
                && !self.resync_or_record(exec)
            {
                break "resynchronisation failed".into();
            }
            let d = mutate::mutate(&mut self.rng, &self.seeds, &self.dict);
            let d = self.prepare(d);
            let ext_ack = self.rng.chance(1, 4);
            if let Some(j) = &journal {
                write_journal(j, exec + 1, ext_ack, &d);
            }
            let (r, s) = self.both(&d, ext_ack);
            let t = Instant::now();
            let crash = self.real.crash_lines();
            self.summary.real_seconds += t.elapsed().as_secs_f64();
            exec += 1;
            if !crash.is_empty() {
                let dir =
                    self.save("crash", exec, &d, ext_ack, &r, &s, &crash);
                self.summary.crashes.push(Crash {
                    exec,
                    request_hex: hex(&d),
                    lines: crash,
                    dir,
                });
                break "kernel crash".into();
            }
            if !same(&r, &s) {
                let case = Case { request: &d, real: &r, sim: &s };
                let known = known::explain(&case, fam);
                // A known explanation is part of the class: the same
                // answers may be a known reorder once and a real
                // divergence another time.
                let key = format!(
                    "{} | real {} | sim {}{}",
                    request_kind(&d, fam),
                    answer_kind(&r, fam),
                    answer_kind(&s, fam),
                    known.map_or(String::new(), |k| format!(" @{}", k.id))
                );
                let resync = known.is_none_or(|k| k.may_change_state);
                let sample = (&d[..], ext_ack, &r, &s);
                self.record_class(
                    exec,
                    key,
                    known.map(|k| k.id),
                    Some(sample),
                );
                if resync && !self.resync_or_record(exec) {
                    break "resynchronisation failed".into();
                }
            } else if changes_instances(&d, fam) {
                // Same answers, but did both change the instances alike?
                if let Some((_, a, b)) = self.state_differs() {
                    let key = format!(
                        "state after {} | foreach real {} | sim {}",
                        request_kind(&d, fam),
                        answer_kind(&a, fam),
                        answer_kind(&b, fam)
                    );
                    self.record_class(
                        exec,
                        key,
                        None,
                        Some((&d[..], ext_ack, &a, &b)),
                    );
                    if !self.resync_or_record(exec) {
                        break "resynchronisation failed".into();
                    }
                }
            }
            if let Some(every) = self.opts.progress {
                if last_progress.elapsed() >= every {
                    last_progress = Instant::now();
                    self.progress(exec, start);
                }
            }
        };
        self.summary.execs = exec;
        self.finish(start)
    }

    fn progress(&self, exec: u64, start: Instant) {
        let secs = start.elapsed().as_secs_f64();
        let div: u64 = self.classes.values().map(|c| c.count).sum();
        let unknown = self.classes.values().filter(|c| c.known.is_none());
        eprintln!(
            "fuzz-kernel: {exec} execs, {:.0} exec/s, {div} divergences in {} classes ({} unknown), {} crashes, {:.0} s",
            exec as f64 / secs.max(1e-9),
            self.classes.len(),
            unknown.count(),
            self.summary.crashes.len(),
            secs
        );
        if let Some(out) = &self.opts.out {
            let _ = std::fs::write(
                out.join("progress.txt"),
                format!("seed {} execs {exec}\n", self.opts.seed),
            );
        }
    }

    #[allow(clippy::type_complexity)]
    fn record_class(
        &mut self,
        exec: u64,
        key: String,
        known: Option<&'static str>,
        sample: Option<(&[u8], bool, &Exchange, &Exchange)>,
    ) {
        let key = if self.classes.len() >= MAX_CLASSES
            && !self.classes.contains_key(&key)
        {
            "other (too many classes)".to_owned()
        } else {
            key
        };
        let c = self.classes.entry(key.clone()).or_insert_with(|| Class {
            key: key.clone(),
            count: 0,
            known: known.map(str::to_owned),
            first_exec: exec,
            samples: Vec::new(),
        });
        c.count += 1;
        if c.samples.len() >= SAMPLES_PER_CLASS {
            return;
        }
        let Some((d, ext_ack, r, s)) = sample else { return };
        let slug: String = key
            .chars()
            .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
            .collect();
        let slug =
            slug.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>();
        let name = format!("divergence/{}", slug.join("-"));
        if let Some(dir) = self.save(&name, exec, d, ext_ack, r, s, &[]) {
            if let Some(c) = self.classes.get_mut(&key) {
                c.samples.push(dir);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn save(
        &self,
        name: &str,
        exec: u64,
        d: &[u8],
        ext_ack: bool,
        r: &Exchange,
        s: &Exchange,
        lines: &[String],
    ) -> Option<String> {
        let out = self.opts.out.as_ref()?;
        let rel = format!("{name}/{exec}");
        let dir = out.join(&rel);
        std::fs::create_dir_all(&dir).ok()?;
        let show = |ex: &Exchange| {
            let mut t = String::new();
            if let Err(e) = ex.sent {
                t.push_str(&format!("send errno {e}\n"));
            }
            for x in &ex.replies {
                t.push_str(&hex(x));
                t.push('\n');
            }
            if let Some(e) = ex.recv_error {
                t.push_str(&format!("recv errno {e}\n"));
            }
            t
        };
        let info = format!(
            "exec {exec}\nseed {}\next_ack {ext_ack}\nreal {}\nsim {}\nfamily_id 0x{:x}\n{}",
            self.opts.seed,
            self.summary.real,
            self.summary.sim,
            self.summary.discovery.family_id,
            lines.join("\n")
        );
        let files = [
            ("request.bin", d.to_vec()),
            ("request.hex", format!("{}\n", hex(d)).into_bytes()),
            ("real.hex", show(r).into_bytes()),
            ("sim.hex", show(s).into_bytes()),
            ("info.txt", info.into_bytes()),
        ];
        for (f, bytes) in files {
            std::fs::write(dir.join(f), bytes).ok()?;
        }
        Some(rel)
    }

    fn finish(mut self, start: Instant) -> Summary {
        self.summary.seconds = start.elapsed().as_secs_f64();
        let mut classes: Vec<Class> = self.classes.into_values().collect();
        classes.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
        self.summary.classes = classes;
        if let Some(out) = &self.opts.out {
            let _ = std::fs::create_dir_all(out);
            if let Ok(text) = serde_json::to_string_pretty(&self.summary) {
                let _ = std::fs::write(out.join("summary.json"), text + "\n");
            }
            let _ =
                std::fs::write(out.join("summary.txt"), self.summary.render());
        }
        self.summary
    }
}

/// Reads the named seeds of `dir` (sim_request corpus format: two setup
/// bytes, then the datagram; family id 0x20), at most `max` files.
pub fn sim_request_seeds(dir: &Path, max: usize) -> Vec<Seed> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> =
        rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .into_iter()
        .take(max)
        .filter_map(|p| {
            let b = std::fs::read(&p).ok()?;
            let d = b.get(2..)?;
            let name = p.file_name()?.to_string_lossy().into_owned();
            (d.len() <= mutate::MAX_REQUEST).then(|| Seed {
                name: format!("sim_request:{name}"),
                bytes: d.to_vec(),
            })
        })
        .collect()
}
