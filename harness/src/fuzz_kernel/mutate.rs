//! The requests `fuzz-kernel` sends: a deterministic PRNG, the seeds
//! (built like the clients build them, plus the conformance corpus), and
//! structure-aware mutations of netlink, genl, Jool header and attribute
//! fields, truncation and concatenation.
//!
//! Every request uses [`FAMILY_PLACEHOLDER`] as Jool's family id; the
//! engine maps it to the id the kernel under test assigned before sending
//! the same bytes to both sides.

use jool_sim::{
    fuzzing::{get_family, jool_request, op, POOL6},
    versions::Profile,
    wire::{
        genl,
        jool::{Header, Layout, INAME_LEN, MAGIC},
        nla::{Writer, F_NESTED, F_NET_BYTEORDER},
        nlmsg::{self, Packet},
    },
};

/// The family id requests carry for Jool (the id of the conformance
/// corpus, captured on Debian bookworm's 6.1).
pub const FAMILY_PLACEHOLDER: u16 = 0x20;

/// Largest request the mutator builds.
pub const MAX_REQUEST: usize = 8192;

/// Deepest attribute nesting the mutator descends into.
const MAX_DEPTH: usize = 3;

/// splitmix64: small, fast, and the same sequence on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den.max(1) < num
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, s: &'a [T]) -> &'a T {
        &s[self.below(s.len())]
    }

    fn u8(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

/// One seed request.
#[derive(Clone, Debug)]
pub struct Seed {
    /// Where it came from (`built:stats-siit-default`,
    /// `conformance:root.json:stats_siit`).
    pub name: String,
    /// The datagram, with [`FAMILY_PLACEHOLDER`] as Jool's family id.
    pub bytes: Vec<u8>,
}

/// Values the mutator likes to put in fields.
#[derive(Clone, Debug)]
pub struct Dict {
    /// Jool header version words (every release's, so that version
    /// checks are exercised).
    pub versions: Vec<u32>,
    /// `JNLAIE_NS` of the caller's namespace on the kernel under test.
    pub netns_tag: u32,
    /// `JNLAR_OFFSET_U8` of the release.
    pub offset_u8: u16,
    /// Number of Jool ops of the release.
    pub op_count: u8,
    /// Jool header layout of the release.
    pub layout: Layout,
}

impl Dict {
    /// The dictionary of `p`, with the namespace tag `netns_tag`.
    pub fn new(p: &Profile, netns_tag: u32) -> Self {
        let mut versions: Vec<u32> =
            Profile::all().iter().map(|q| q.wire_version).collect();
        versions.sort_unstable();
        versions.dedup();
        Self {
            versions,
            netns_tag,
            offset_u8: p.offset_u8_attr(),
            op_count: p.op_count(),
            layout: Layout::from_len(p.header_len()).unwrap_or(Layout::V2),
        }
    }
}

fn iname(name: &[u8]) -> [u8; INAME_LEN] {
    let mut out = [0; INAME_LEN];
    let n = name.len().min(INAME_LEN);
    out[..n].copy_from_slice(&name[..n]);
    out
}

/// `INSTANCE_ADD`'s attributes, as the clients send them.
pub use jool_sim::fuzzing::add_operand;

/// An `INSTANCE_FOREACH` offset entry {NS, XF, INAME}.
fn foreach_offset(p: &Profile, tag: u32, xf: u8, name: &[u8]) -> Vec<u8> {
    let mut e = Writer::new();
    e.u32(1, tag).u8(2, xf).string(3, name);
    let mut w = Writer::new();
    w.attr((p.offset_u8_attr() - 1) | F_NESTED, e.as_slice());
    w.into_vec()
}

/// A Jool request of release `p` with the placeholder family.
pub fn request(
    p: &Profile,
    cmd: u8,
    xt: u8,
    name: &[u8],
    attrs: &[u8],
) -> Vec<u8> {
    jool_request(p, FAMILY_PLACEHOLDER, 1, cmd, xt, iname(name), attrs)
}

/// The requests a client of `p` sends, on both translators and a few
/// instance names: every op (the simulated ones with their attributes),
/// nlctrl lookups, pagination offsets.
pub fn built_seeds(p: &Profile, netns_tag: u32) -> Vec<Seed> {
    let mut out = Vec::new();
    let mut push = |name: String, bytes: Vec<u8>| {
        out.push(Seed { name: format!("built:{name}"), bytes });
    };
    push("getfamily-jool".into(), get_family("Jool", 1));
    let mut byid = Writer::new();
    byid.u16(genl::CTRL_ATTR_FAMILY_ID, FAMILY_PLACEHOLDER);
    push(
        "getfamily-by-id".into(),
        jool_sim::fuzzing::message(
            nlmsg::GENL_ID_CTRL,
            1,
            genl::CTRL_CMD_GETFAMILY,
            byid.as_slice(),
        ),
    );
    for (xt, xname) in [(1u8, "siit"), (2, "nat64")] {
        for name in [&b"default"[..], b"alt", b""] {
            let n = String::from_utf8_lossy(name).into_owned();
            for cmd in 0..p.op_count() {
                push(
                    format!("op{cmd}-{xname}-{n}"),
                    request(p, cmd, xt, name, &[]),
                );
            }
            push(
                format!("add-{xname}-{n}-pool6"),
                request(
                    p,
                    op::INSTANCE_ADD,
                    xt,
                    name,
                    &add_operand(p, 4, Some(POOL6)),
                ),
            );
            push(
                format!("add-{xname}-{n}-iptables"),
                request(
                    p,
                    op::INSTANCE_ADD,
                    xt,
                    name,
                    &add_operand(p, 8, None),
                ),
            );
        }
        for offset in [1u8, 30, 68, 69, 80, 255] {
            let mut w = Writer::new();
            w.u8(p.offset_u8_attr(), offset);
            push(
                format!("stats-{xname}-offset{offset}"),
                request(p, op::STATS_FOREACH, xt, b"default", w.as_slice()),
            );
            push(
                format!("globals-{xname}-offset{offset}"),
                request(p, 8, xt, b"default", w.as_slice()),
            );
        }
        push(
            format!("foreach-{xname}-offset-default"),
            request(
                p,
                op::INSTANCE_FOREACH,
                xt,
                b"",
                &foreach_offset(p, netns_tag, 4, b"default"),
            ),
        );
    }
    out
}

/// Parses `root.json`-like conformance files (format
/// `jool-netlink-conformance/1`): every request, family id and namespace
/// tag of the capture mapped to the placeholder and `netns_tag`.
pub fn conformance_seeds(
    file: &str,
    text: &str,
    netns_tag: u32,
) -> Result<Vec<Seed>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    let fam = doc["jool_family_id"].as_u64().map(|f| f as u16);
    let reqs = doc["requests"]
        .as_array()
        .ok_or_else(|| format!("{file}: no requests"))?;
    let mut out = Vec::new();
    for r in reqs {
        let (Some(name), Some(hex)) =
            (r["name"].as_str(), r["request_hex"].as_str())
        else {
            continue;
        };
        let Some(mut bytes) = unhex(hex) else { continue };
        if let Some(f) = fam {
            map_type(&mut bytes, f, FAMILY_PLACEHOLDER);
        }
        // The capture's JNLAIE_NS (its boot's `struct net` pointer).
        replace_all(&mut bytes, &[0xc0, 0xdc, 0x09, 0xb3], &netns_tag);
        out.push(Seed { name: format!("conformance:{file}:{name}"), bytes });
    }
    Ok(out)
}

fn replace_all(bytes: &mut [u8], from: &[u8; 4], to: &u32) {
    let to = to.to_le_bytes();
    let mut i = 0;
    while i + 4 <= bytes.len() {
        if &bytes[i..i + 4] == from {
            bytes[i..i + 4].copy_from_slice(&to);
            i += 4;
        } else {
            i += 1;
        }
    }
}

/// Hex to bytes (None if malformed).
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Bytes to lowercase hex.
pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// The offsets of the messages of a datagram, as the netlink core walks
/// them (`nlmsg_len` aligned to 4; stops where no header fits or the
/// length is impossible).
pub fn message_offsets(d: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = 0;
    while d.len() >= off + nlmsg::HEADER_LEN {
        let p = Packet::new_unchecked(&d[off..]);
        let len = p.len() as usize;
        if len < nlmsg::HEADER_LEN || off + len > d.len() {
            break;
        }
        out.push((off, len));
        off += (len + 3) & !3;
    }
    out
}

/// Sets `nlmsg_type` to `to` in every message whose type is `from`.
pub fn map_type(d: &mut [u8], from: u16, to: u16) {
    if from == to {
        return;
    }
    for (off, _) in message_offsets(d) {
        let mut p = Packet::new_unchecked(&mut d[off..]);
        if p.kind() == from {
            p.set_kind(to);
        }
    }
}

/// One attribute of a parsed stream.
#[derive(Clone, Debug)]
struct Attr {
    kind: u16,
    value: Vec<u8>,
    /// Declared length when it lies (else the real one).
    bad_len: Option<u16>,
}

/// Parses an attribute stream leniently: the attributes that parse, then
/// the bytes that do not.
fn parse_attrs(b: &[u8]) -> (Vec<Attr>, Vec<u8>) {
    let mut out = Vec::new();
    let mut off = 0;
    while b.len() >= off + 4 {
        let len = usize::from(u16::from_le_bytes([b[off], b[off + 1]]));
        let kind = u16::from_le_bytes([b[off + 2], b[off + 3]]);
        if len < 4 || off + len > b.len() {
            break;
        }
        out.push(Attr {
            kind,
            value: b[off + 4..off + len].to_vec(),
            bad_len: None,
        });
        off += (len + 3) & !3;
    }
    (out, b[off.min(b.len())..].to_vec())
}

fn emit_attrs(attrs: &[Attr], rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in attrs {
        let len = a.bad_len.unwrap_or((4 + a.value.len()).min(0xffff) as u16);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&a.kind.to_le_bytes());
        out.extend_from_slice(&a.value);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    out.extend_from_slice(rest);
    out
}

/// Interesting integers of `n` bytes.
fn interesting(rng: &mut Rng, n: usize) -> Vec<u8> {
    let v: u64 = match rng.below(8) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => 0x7f,
        4 => 0x80,
        5 => u64::from(rng.u8()),
        6 => 0xffff,
        _ => rng.next_u64(),
    };
    v.to_le_bytes().iter().copied().cycle().take(n).collect()
}

/// A fresh attribute from the release's vocabulary.
fn new_attr(rng: &mut Rng, dict: &Dict) -> Attr {
    let (kind, value) = match rng.below(7) {
        0 => (dict.offset_u8, vec![rng.u8()]),
        1 => {
            let mut e = Writer::new();
            e.u32(1, dict.netns_tag).u8(2, 4).string(3, b"default");
            ((dict.offset_u8 - 1) | F_NESTED, e.into_vec())
        }
        2 => {
            let mut o = Writer::new();
            o.u8(1, *rng.pick(&[4u8, 8, 0, 12]));
            if rng.chance(1, 2) {
                let at = o.begin_nest(2 | F_NESTED);
                o.attr(1, &POOL6.0).u8(2, *rng.pick(&[96u8, 64, 32, 129]));
                o.end_nest(at);
            }
            ((dict.offset_u8 + 1) | F_NESTED, o.into_vec())
        }
        3 => {
            let n = *rng.pick(&[1, 2, 4, 8]);
            (rng.below(16) as u16, interesting(rng, n))
        }
        4 => (genl::CTRL_ATTR_FAMILY_NAME, b"Jool\0".to_vec()),
        5 => (rng.below(16) as u16 | F_NESTED, Vec::new()),
        _ => (
            rng.next_u64() as u16,
            (0..rng.below(24)).map(|_| rng.u8()).collect(),
        ),
    };
    Attr { kind, value, bad_len: None }
}

/// Mutates an attribute stream in place (`depth` levels of nesting).
fn mutate_attrs(
    rng: &mut Rng,
    dict: &Dict,
    b: &[u8],
    depth: usize,
) -> Vec<u8> {
    let (mut attrs, mut rest) = parse_attrs(b);
    let n = attrs.len();
    match rng.below(if n == 0 { 2 } else { 10 }) {
        0 => {
            let at = rng.below(n + 1);
            attrs.insert(at, new_attr(rng, dict));
        }
        1 => rest = (0..rng.below(8)).map(|_| rng.u8()).collect(),
        2 => {
            attrs.remove(rng.below(n));
        }
        3 => {
            let a = attrs[rng.below(n)].clone();
            attrs.insert(rng.below(n + 1), a);
        }
        4 => {
            let a = &mut attrs[rng.below(n)];
            a.kind = match rng.below(5) {
                0 => a.kind ^ F_NESTED,
                1 => a.kind ^ F_NET_BYTEORDER,
                2 => rng.below(16) as u16 | (a.kind & F_NESTED),
                3 => a.kind.wrapping_add(1),
                _ => rng.next_u64() as u16,
            };
        }
        5 => {
            let a = &mut attrs[rng.below(n)];
            let cut = rng.below(a.value.len() + 1);
            a.value.truncate(cut);
        }
        6 => {
            let a = &mut attrs[rng.below(n)];
            let n = rng.below(9);
            let more = interesting(rng, n);
            a.value.extend(more);
        }
        7 => {
            let a = &mut attrs[rng.below(n)];
            let len = a.value.len();
            a.value = interesting(rng, if len == 0 { 4 } else { len });
        }
        8 => {
            let a = &mut attrs[rng.below(n)];
            a.bad_len = Some(match rng.below(4) {
                0 => rng.below(4) as u16,
                1 => (a.value.len() + 4 + rng.below(16)) as u16,
                2 => (a.value.len() + 3) as u16,
                _ => rng.next_u64() as u16,
            });
        }
        _ => {
            let i = rng.below(n);
            if depth < MAX_DEPTH {
                let inner =
                    mutate_attrs(rng, dict, &attrs[i].value, depth + 1);
                attrs[i].value = inner;
            } else if let Some(x) = attrs[i].value.first_mut() {
                *x ^= 1 << rng.below(8);
            }
        }
    }
    emit_attrs(&attrs, &rest)
}

/// Mutates one message (header, genl, Jool header, attributes).
fn mutate_message(rng: &mut Rng, dict: &Dict, m: &mut Vec<u8>) -> bool {
    let mut len_broken = false;
    if m.len() < nlmsg::HEADER_LEN {
        m.resize(nlmsg::HEADER_LEN, 0);
    }
    let kind = Packet::new_unchecked(&m[..]).kind();
    let genl_end = nlmsg::HEADER_LEN + genl::HEADER_LEN;
    let jool = kind == FAMILY_PLACEHOLDER;
    let hdr_end =
        if jool { genl_end + dict.layout.header_len() } else { genl_end };
    match rng.below(16) {
        0 => {
            let mut p = Packet::new_unchecked(&mut m[..]);
            let v = match rng.below(4) {
                0 => rng.below(40) as u32,
                1 => p.len().wrapping_add(rng.below(9) as u32).wrapping_sub(4),
                2 => u32::MAX - rng.below(4) as u32,
                _ => rng.next_u64() as u32 % 0x2000,
            };
            p.set_len(v);
            len_broken = true;
        }
        1 => {
            let t = match rng.below(6) {
                0 => rng.below(0x12) as u16,
                1 => nlmsg::GENL_ID_CTRL,
                2 => FAMILY_PLACEHOLDER.wrapping_add(1),
                3 => rng.next_u64() as u16,
                _ => FAMILY_PLACEHOLDER,
            };
            Packet::new_unchecked(&mut m[..]).set_kind(t);
        }
        2 | 3 => {
            let mut p = Packet::new_unchecked(&mut m[..]);
            let bit = *rng.pick(&[
                nlmsg::F_REQUEST,
                nlmsg::F_MULTI,
                nlmsg::F_ACK,
                nlmsg::F_ECHO,
                nlmsg::F_CAPPED,
                nlmsg::F_ACK_TLVS,
                nlmsg::F_DUMP,
                0x10,
                0x20,
                0x400,
                0x800,
                0x1000,
            ]);
            let f = if rng.chance(1, 8) {
                rng.next_u64() as u16
            } else {
                p.flags() ^ bit
            };
            p.set_flags(f);
        }
        4 => {
            let mut p = Packet::new_unchecked(&mut m[..]);
            if rng.chance(1, 2) {
                p.set_seq(rng.next_u64() as u32);
            } else {
                p.set_pid(rng.next_u64() as u32);
            }
        }
        5 => {
            // genl cmd / version / reserved
            if m.len() < genl_end {
                m.resize(genl_end, 0);
            }
            let at = nlmsg::HEADER_LEN + rng.below(4);
            m[at] = match (at - nlmsg::HEADER_LEN, rng.below(3)) {
                (0, 0) => rng.below(usize::from(dict.op_count) + 2) as u8,
                (1, 0) => rng.below(4) as u8,
                _ => rng.u8(),
            };
        }
        6..=9 if jool && m.len() >= hdr_end => {
            let mut h =
                Header::new_unchecked(&mut m[genl_end..hdr_end], dict.layout);
            match rng.below(6) {
                0 if dict.layout == Layout::V2 => {
                    let mut magic = MAGIC;
                    magic[rng.below(4)] ^= 1 << rng.below(8);
                    h.set_magic(if rng.chance(1, 4) { [0; 4] } else { magic });
                }
                1 => h.set_version(if rng.chance(1, 4) {
                    rng.next_u64() as u32
                } else {
                    *rng.pick(&dict.versions)
                }),
                2 => h.set_xt(*rng.pick(&[0u8, 1, 2, 3, 4, 0x80, 0xff])),
                3 => h.set_flags(if rng.chance(1, 3) {
                    rng.u8()
                } else {
                    h.flags() ^ (1 << rng.below(4))
                }),
                4 => h.set_reserved([rng.u8(), rng.u8()]),
                _ => {
                    let mut n = [0u8; INAME_LEN];
                    let names: [&[u8]; 8] = [
                        b"default",
                        b"",
                        b"alt",
                        b"fifteen-chars-x",
                        b"sixteen-chars-xx",
                        b"\xff\x80bad",
                        b"a b",
                        b"de\0fault",
                    ];
                    let name = *rng.pick(&names);
                    let k = name.len().min(INAME_LEN);
                    n[..k].copy_from_slice(&name[..k]);
                    h.set_iname(&n);
                }
            }
        }
        10..=13 => {
            let start = hdr_end.min(m.len());
            let attrs = mutate_attrs(rng, dict, &m[start..], 0);
            m.truncate(start);
            m.extend(attrs);
        }
        14 => {
            let cut = rng.below(m.len() + 1);
            m.truncate(cut.max(nlmsg::HEADER_LEN));
        }
        _ => {
            let i = rng.below(m.len());
            m[i] ^= 1 << rng.below(8);
            len_broken = i < 4;
        }
    }
    len_broken
}

fn fix_len(m: &mut [u8]) {
    let len = m.len() as u32;
    Packet::new_unchecked(m).set_len(len);
}

/// A mutated request from `seeds`: 1–4 structured mutations of one
/// message (its length fixed unless a mutation broke it on purpose),
/// sometimes several messages in one datagram, a truncated datagram or a
/// random length.
pub fn mutate(rng: &mut Rng, seeds: &[Seed], dict: &Dict) -> Vec<u8> {
    let one = |rng: &mut Rng| {
        let seed = rng.pick(seeds);
        let first = message_offsets(&seed.bytes)
            .first()
            .map(|&(o, l)| seed.bytes[o..o + l].to_vec());
        let mut m = match first {
            Some(m) if rng.chance(7, 8) => m,
            _ => seed.bytes.clone(),
        };
        let mut broken = false;
        for _ in 0..1 + rng.below(4) {
            broken |= mutate_message(rng, dict, &mut m);
        }
        if !broken || rng.chance(1, 4) {
            fix_len(&mut m);
        }
        m.truncate(MAX_REQUEST);
        m
    };
    if rng.chance(1, 10) {
        // The unmutated seed datagram, as is (may hold several messages).
        let mut d = rng.pick(seeds).bytes.clone();
        d.truncate(MAX_REQUEST);
        return d;
    }
    let mut d = one(rng);
    if rng.chance(1, 12) {
        for _ in 0..1 + rng.below(3) {
            while d.len() % 4 != 0 {
                d.push(0);
            }
            let next = one(rng);
            d.extend(next);
        }
    }
    if rng.chance(1, 25) {
        let cut = rng.below(d.len() + 1);
        d.truncate(cut);
    }
    if rng.chance(1, 50) {
        let extra = rng.below(16);
        d.extend((0..extra).map(|_| rng.u8()));
    }
    d.truncate(MAX_REQUEST);
    d
}

#[cfg(test)]
mod test {
    use super::*;

    fn p() -> &'static Profile {
        Profile::get("4.1.9").unwrap()
    }

    #[test]
    fn test_rng_is_deterministic() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn test_mutations_are_bounded_and_deterministic() {
        let seeds = built_seeds(p(), 0x1234);
        let dict = Dict::new(p(), 0x1234);
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        let mut changed = 0;
        for _ in 0..5000 {
            let x = mutate(&mut a, &seeds, &dict);
            assert_eq!(x, mutate(&mut b, &seeds, &dict));
            assert!(x.len() <= MAX_REQUEST);
            changed += usize::from(!seeds.iter().any(|s| s.bytes == x));
        }
        assert!(changed > 4000, "only {changed} of 5000 were mutated");
    }

    #[test]
    fn test_attrs_roundtrip() {
        let b = add_operand(p(), 4, Some(POOL6));
        let (attrs, rest) = parse_attrs(&b);
        assert_eq!(emit_attrs(&attrs, &rest), b);
    }

    #[test]
    fn test_map_type() {
        let mut d = get_family("Jool", 1);
        d.extend(request(p(), 7, 1, b"default", &[]));
        map_type(&mut d, FAMILY_PLACEHOLDER, 0x23);
        let kinds: Vec<u16> = message_offsets(&d)
            .iter()
            .map(|&(o, _)| Packet::new_unchecked(&d[o..]).kind())
            .collect();
        assert_eq!(kinds, [nlmsg::GENL_ID_CTRL, 0x23]);
    }

    #[test]
    fn test_unhex() {
        assert_eq!(unhex("00ff10"), Some(vec![0, 0xff, 0x10]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(hex(&[0xab, 1]), "ab01");
    }
}
