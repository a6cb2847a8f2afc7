//! Structure-aware mutations of netlink, genl, Jool header and
//! attribute fields, truncation and concatenation; each request built
//! from a seed (or a kept corpus input) by 1-4 of them.
//!
//! Every request uses [`FAMILY_PLACEHOLDER`] as Jool's family id; the
//! engine maps it to the id the kernel under test assigned before sending
//! the same bytes to both sides.

use jool_sim::{
    versions::Profile,
    wire::{
        genl,
        jool::{Header, Layout, INAME_LEN, MAGIC},
        nla::{NlasIterator, Writer, F_NESTED, F_NET_BYTEORDER},
        nlmsg::{self, Packet},
    },
};

use super::{
    request::{layout, message_offsets, FAMILY_PLACEHOLDER, POOL6},
    rng::Rng,
    seeds::{Seed, MAX_REQUEST},
};

/// Deepest attribute nesting the mutator descends into.
const MAX_DEPTH: usize = 3;

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
            layout: layout(p),
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
    let mut it = NlasIterator::new(b);
    let mut out = Vec::new();
    let mut end = 0;
    while let Some(Ok(a)) = it.next() {
        out.push(Attr {
            kind: a.raw_kind(),
            value: a.value().to_vec(),
            bad_len: None,
        });
        end = it.offset();
    }
    (out, b[end.min(b.len())..].to_vec())
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
            if m.len() < genl_end {
                m.resize(genl_end, 0);
            }
            let mut g =
                genl::Packet::new_unchecked(&mut m[nlmsg::HEADER_LEN..]);
            match (rng.below(4), rng.below(3)) {
                (0, 0) => {
                    g.set_cmd(rng.below(usize::from(dict.op_count) + 2) as u8)
                }
                (0, _) => g.set_cmd(rng.u8()),
                (1, 0) => g.set_version(rng.below(4) as u8),
                (1, _) => g.set_version(rng.u8()),
                (2, _) => g.set_reserved(u16::from(rng.u8())),
                _ => g.set_reserved(u16::from(rng.u8()) << 8),
            }
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

/// What mutations start from: the seeds, and the inputs kept because
/// they reached new edges (picked two times in three once there are any).
#[derive(Clone, Copy, Debug)]
pub struct Pool<'a> {
    /// The seeds.
    pub seeds: &'a [Seed],
    /// The kept inputs.
    pub kept: &'a [Seed],
}

impl<'a> Pool<'a> {
    /// One input to mutate.
    ///
    /// # Panics
    /// If both slices are empty.
    pub fn pick(&self, rng: &mut Rng) -> &'a Seed {
        if !self.kept.is_empty() && rng.chance(2, 3) {
            rng.pick(self.kept)
        } else {
            rng.pick(self.seeds)
        }
    }
}

/// A mutated request from `pool`: 1–4 structured mutations of one
/// message (its length fixed unless a mutation broke it on purpose),
/// sometimes several messages in one datagram, a truncated datagram or
/// random bytes at the end.
pub fn mutate(rng: &mut Rng, pool: &Pool<'_>, dict: &Dict) -> Vec<u8> {
    let one = |rng: &mut Rng| {
        let seed = pool.pick(rng);
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
        let mut d = pool.pick(rng).bytes.clone();
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
    use crate::fuzz_kernel::{request::request, seeds::built_seeds};

    fn p() -> &'static Profile {
        Profile::get("4.1.9").unwrap()
    }

    #[test]
    fn test_mutations_are_bounded_and_deterministic() {
        let seeds = built_seeds(p(), 0x1234);
        let dict = Dict::new(p(), 0x1234);
        let pool = Pool { seeds: &seeds, kept: &[] };
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        let mut changed = 0;
        for _ in 0..5000 {
            let x = mutate(&mut a, &pool, &dict);
            assert_eq!(x, mutate(&mut b, &pool, &dict));
            assert!(x.len() <= MAX_REQUEST);
            changed += usize::from(!seeds.iter().any(|s| s.bytes == x));
        }
        assert!(changed > 4000, "only {changed} of 5000 were mutated");
    }

    #[test]
    fn test_attrs_roundtrip() {
        let b = super::super::request::add_operand(p(), 4, Some(POOL6));
        let (attrs, rest) = parse_attrs(&b);
        assert_eq!(attrs.len(), 1);
        assert_eq!(emit_attrs(&attrs, &rest), b);
        // Bytes after the last attribute that fits are kept as they are.
        let mut junk = request(p(), 7, 1, b"default", &[])[48..].to_vec();
        junk.extend_from_slice(&b);
        junk.extend_from_slice(&[9, 0, 1]);
        let (attrs, rest) = parse_attrs(&junk);
        assert_eq!(emit_attrs(&attrs, &rest), junk);
    }
}
