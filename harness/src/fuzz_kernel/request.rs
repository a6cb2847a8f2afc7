//! Requests as the fuzzer keeps them: built with `jool_sim::requests`
//! (as the clients build them) but with placeholders for what depends on
//! the kernel under test (Jool's family id, the namespace tag), and the
//! small walks over datagrams the engine needs, on `jool_sim::wire`'s
//! views.

use jool_sim::{
    kernel::Prefix6,
    requests::jool_request,
    versions::Profile,
    wire::{
        family::{Attr, InstanceEntryAttr},
        genl,
        jool::{Layout, INAME_LEN},
        nla::{Writer, F_NESTED},
        nlmsg::{self, Packet},
    },
};

pub use jool_sim::requests::{add_operand, get_family, message};

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

/// An `INSTANCE_FOREACH` offset {NS, XF, INAME}.
pub fn foreach_offset(p: &Profile, tag: u32, xf: u8, name: &[u8]) -> Vec<u8> {
    let mut e = Writer::new();
    e.u32(InstanceEntryAttr::Ns.into(), tag)
        .u8(InstanceEntryAttr::Xf.into(), xf)
        .string(InstanceEntryAttr::Iname.into(), name);
    let kind = p.numbering.attr(Attr::Offset).unwrap_or_default();
    let mut w = Writer::new();
    w.attr(kind | F_NESTED, e.as_slice());
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
    jool_request(p, FAMILY_PLACEHOLDER, 1, cmd, xt, iname(name), attrs)
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
            jool_sim::wire::hex::encode(&r),
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
}
