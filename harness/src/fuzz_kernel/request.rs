//! Building and walking request datagrams with the `jool_sim::wire`
//! views: netlink and genl headers, Jool's header, attributes; the
//! family-id placeholder every built request carries; hex.

use jool_sim::{
    kernel::Prefix6,
    versions::Profile,
    wire::{
        genl,
        jool::{self, Layout, INAME_LEN},
        nla::{Writer, F_NESTED},
        nlmsg::{self, Packet},
    },
};

/// The family id requests carry for Jool (the id of the conformance
/// corpus, captured on Debian bookworm's 6.1); the engine maps it to the
/// id the kernel under test assigned.
pub const FAMILY_PLACEHOLDER: u16 = 0x20;

/// What crash folders and reproducers carry instead of the `JNLAIE_NS`
/// of the namespace they were found in (a kernel pointer); replaced by
/// the tag of the namespace they are replayed in.
pub const TAG_PLACEHOLDER: [u8; 4] = *b"nsT!";

/// Replaces every `from` in `bytes` by `to` (non-overlapping, left to
/// right).
pub fn replace_all(bytes: &mut [u8], from: &[u8; 4], to: &[u8; 4]) {
    let mut i = 0;
    while i + 4 <= bytes.len() {
        if &bytes[i..i + 4] == from {
            bytes[i..i + 4].copy_from_slice(to);
            i += 4;
        } else {
            i += 1;
        }
    }
}

/// The pool6 of the base instances: 64:ff9b::/96.
pub const POOL6: Prefix6 =
    ([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 96);

/// A netlink message: header (`NLM_F_REQUEST`), genl header (version 1),
/// `body`.
pub fn message(kind: u16, seq: u32, cmd: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0; nlmsg::HEADER_LEN + genl::HEADER_LEN];
    genl::Repr { cmd, version: 1 }
        .emit(&mut genl::Packet::new_unchecked(&mut v[nlmsg::HEADER_LEN..]));
    v.extend_from_slice(body);
    let hdr = nlmsg::Repr {
        len: v.len() as u32,
        kind,
        flags: nlmsg::F_REQUEST,
        seq,
        pid: 0,
    };
    hdr.emit(&mut Packet::new_unchecked(&mut v[..]));
    v
}

/// `CTRL_CMD_GETFAMILY` by name.
pub fn get_family(name: &str, seq: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(genl::CTRL_ATTR_FAMILY_NAME, name.as_bytes());
    message(nlmsg::GENL_ID_CTRL, seq, genl::CTRL_CMD_GETFAMILY, w.as_slice())
}

/// `INSTANCE_ADD`'s attributes as the client of `p` sends them: the
/// operand {XF, POOL6 {ADDR, LEN}}.
pub fn add_operand(p: &Profile, xf: u8, pool6: Option<Prefix6>) -> Vec<u8> {
    let mut operand = Writer::new();
    operand.u8(1, xf);
    if let Some((addr, len)) = pool6 {
        let at = operand.begin_nest(2 | F_NESTED);
        operand.attr(1, &addr).u8(2, len);
        operand.end_nest(at);
    }
    let mut w = Writer::new();
    w.attr((p.offset_u8_attr() + 1) | F_NESTED, operand.as_slice());
    w.into_vec()
}

/// An `INSTANCE_FOREACH` offset {NS, XF, INAME}.
pub fn foreach_offset(p: &Profile, tag: u32, xf: u8, name: &[u8]) -> Vec<u8> {
    let mut e = Writer::new();
    e.u32(1, tag).u8(2, xf).string(3, name);
    let mut w = Writer::new();
    w.attr((p.offset_u8_attr() - 1) | F_NESTED, e.as_slice());
    w.into_vec()
}

/// `name` NUL-padded to an instance name field (cut at 16 bytes).
pub fn iname(name: &[u8]) -> [u8; INAME_LEN] {
    let mut out = [0; INAME_LEN];
    let n = name.len().min(INAME_LEN);
    out[..n].copy_from_slice(&name[..n]);
    out
}

/// The Jool header layout of `p`'s clients.
pub fn layout(p: &Profile) -> Layout {
    Layout::from_len(p.header_len()).unwrap_or(Layout::V2)
}

/// A Jool request of release `p` with the placeholder family: command
/// `cmd`, translator `xt`, instance `name`, then `attrs`.
pub fn request(
    p: &Profile,
    cmd: u8,
    xt: u8,
    name: &[u8],
    attrs: &[u8],
) -> Vec<u8> {
    let h = jool::Repr {
        layout: layout(p),
        magic: jool::MAGIC,
        version: p.wire_version,
        xt,
        flags: 0,
        reserved: [0; 2],
        iname: iname(name),
    };
    let mut body = h.to_vec();
    body.extend_from_slice(attrs);
    message(FAMILY_PLACEHOLDER, 1, cmd, &body)
}

/// The offsets and lengths of the messages of a datagram, as the netlink
/// core walks them ([`nlmsg::Messages`]).
pub fn message_offsets(d: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = 0;
    for m in nlmsg::Messages::new(d) {
        let len = m.message().len();
        out.push((off, len));
        off += jool_sim::wire::align4(len);
    }
    out
}

/// The genl command of a message, if it has a genl header.
pub fn cmd_of(m: &[u8]) -> Option<u8> {
    let p = genl::Packet::new_checked(m.get(nlmsg::HEADER_LEN..)?).ok()?;
    Some(p.cmd())
}

/// `nlmsg_type` of a buffer that holds at least a header.
pub fn kind_of(m: &[u8]) -> Option<u16> {
    (m.len() >= nlmsg::HEADER_LEN).then(|| Packet::new_unchecked(m).kind())
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

#[cfg(test)]
mod test {
    use super::*;

    fn p() -> &'static Profile {
        Profile::get("4.1.9").unwrap()
    }

    /// The request the real jool_siit 4.1.9 sends for `stats display`
    /// (fixtures/conformance-4.1.9/root.json, `stats_siit`, whose seq is
    /// 4).
    #[test]
    fn test_request_is_the_clients() {
        let mut r = request(p(), 7, 1, b"default", &[]);
        Packet::new_unchecked(&mut r[..]).set_seq(4);
        assert_eq!(
            hex(&r),
            "30000000200001000400000000000000070100006a6f6f6c04010900010000\
             0064656661756c74000000000000000000"
        );
    }

    #[test]
    fn test_map_type() {
        let mut d = get_family("Jool", 1);
        d.extend(request(p(), 7, 1, b"default", &[]));
        map_type(&mut d, FAMILY_PLACEHOLDER, 0x23);
        let kinds: Vec<u16> = message_offsets(&d)
            .iter()
            .filter_map(|&(o, _)| kind_of(&d[o..]))
            .collect();
        assert_eq!(kinds, [nlmsg::GENL_ID_CTRL, 0x23]);
        assert_eq!(cmd_of(&d), Some(genl::CTRL_CMD_GETFAMILY));
    }

    #[test]
    fn test_unhex() {
        assert_eq!(unhex("00ff10"), Some(vec![0, 0xff, 0x10]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(hex(&[0xab, 1]), "ab01");
    }
}
