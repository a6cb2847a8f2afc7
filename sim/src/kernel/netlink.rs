//! The netlink and generic-netlink core around Jool, as Linux 6.1 runs it:
//! the datagram walk of `netlink_rcv_skb`, acks and errors of
//! `netlink_ack` (with extended acks), and the attribute policy checks of
//! `__nla_validate_parse` in strict and liberal modes.

use crate::wire::{
    align4,
    nla::{NlaBuffer, Writer, F_NESTED, HEADER_LEN as NLA_HDRLEN, TYPE_MASK},
    nlmsg::{self, Packet},
};

/// `EPERM`.
pub const EPERM: i32 = 1;
/// `ENOENT`.
pub const ENOENT: i32 = 2;
/// `ESRCH`.
pub const ESRCH: i32 = 3;
/// `EEXIST`.
pub const EEXIST: i32 = 17;
/// `EINVAL`.
pub const EINVAL: i32 = 22;
/// `ERANGE`.
pub const ERANGE: i32 = 34;
/// `ENOSYS`.
pub const ENOSYS: i32 = 38;
/// `ENODATA`.
pub const ENODATA: i32 = 61;
/// `EMSGSIZE`.
pub const EMSGSIZE: i32 = 90;
/// `EOPNOTSUPP`.
pub const EOPNOTSUPP: i32 = 95;

/// `NLMSGERR_ATTR_MSG`.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// `NLMSGERR_ATTR_OFFS`.
const NLMSGERR_ATTR_OFFS: u16 = 2;
/// `NLMSGERR_ATTR_POLICY`.
const NLMSGERR_ATTR_POLICY: u16 = 4;

/// An attribute policy entry (`struct nla_policy`), the kinds Jool and
/// nlctrl use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    /// `NLA_UNSPEC`: rejected in strict mode.
    Unspec,
    /// `NLA_U8`.
    U8,
    /// `NLA_U16`.
    U16,
    /// `NLA_U32`.
    U32,
    /// `NLA_NESTED` (contents not validated by the core).
    Nested,
    /// `NLA_BINARY` with a maximum length (0 = none).
    Binary(u16),
    /// `NLA_NUL_STRING` with a maximum length (0 = none).
    NulString(u16),
}

impl Policy {
    /// Exact length for fixed-size types (`nla_attr_len`).
    fn exact_len(self) -> Option<usize> {
        match self {
            Self::U8 => Some(1),
            Self::U16 => Some(2),
            Self::U32 => Some(4),
            _ => None,
        }
    }

    /// Writes the `netlink_policy_dump_write_attr` description.
    fn dump(self, w: &mut Writer) {
        const TYPE: u16 = 1;
        const MIN_U: u16 = 4;
        const MAX_U: u16 = 5;
        const MAX_LEN: u16 = 7;
        let (ty, range) = match self {
            Self::U8 => (2, Some(u64::from(u8::MAX))),
            Self::U16 => (3, Some(u64::from(u16::MAX))),
            Self::U32 => (4, Some(u64::from(u32::MAX))),
            Self::Nested => (13, None),
            Self::Binary(len) | Self::NulString(len) => {
                if len > 0 {
                    w.u32(MAX_LEN, u32::from(len));
                }
                (if matches!(self, Self::Binary(_)) { 10 } else { 12 }, None)
            }
            Self::Unspec => return,
        };
        if let Some(max) = range {
            w.u64(MIN_U, 0).u64(MAX_U, max);
        }
        w.u32(TYPE, ty);
    }
}

/// `NL_VALIDATE_STRICT` or `NL_VALIDATE_LIBERAL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Validate {
    /// Unknown types, trailing bytes, wrong lengths and missing
    /// `NLA_F_NESTED` are errors.
    Strict,
    /// Only too-short values are errors.
    Liberal,
}

/// The extended-ack details of a rejection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extack {
    /// `NL_SET_ERR_MSG` text.
    pub(crate) msg: Option<&'static str>,
    /// Offset of the bad attribute from the start of the message.
    pub(crate) bad_attr: Option<u32>,
    /// The violated policy.
    pub(crate) policy: Option<Policy>,
}

/// A netlink-level rejection: negative errno plus extack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reject {
    /// Positive errno.
    pub(crate) errno: i32,
    /// Details.
    pub(crate) extack: Extack,
}

impl Reject {
    /// A rejection without details.
    pub(crate) fn plain(errno: i32) -> Self {
        Self { errno, extack: Extack::default() }
    }

    /// A rejection with an extack message only.
    pub(crate) fn msg(errno: i32, msg: &'static str) -> Self {
        Self { errno, extack: Extack { msg: Some(msg), ..Extack::default() } }
    }

    fn attr(
        errno: i32,
        msg: &'static str,
        off: usize,
        policy: Option<Policy>,
    ) -> Self {
        Self {
            errno,
            extack: Extack {
                msg: Some(msg),
                bad_attr: Some(off as u32),
                policy,
            },
        }
    }
}

/// Parsed attributes: for each type, the offset (from the message start)
/// of the last attribute of that type.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attrs {
    slots: Vec<Option<usize>>,
    /// Liberal parsing stopped before the end (bytes that are not a
    /// whole attribute): the kernel then sets the extack message
    /// [`LEFTOVER`] as a warning and goes on.
    pub(crate) leftover: bool,
}

/// `__nla_validate_parse`'s text for bytes after the last attribute.
pub(crate) const LEFTOVER: &str = "bytes leftover after parsing attributes";

impl Attrs {
    /// The value of attribute `kind`, if present.
    pub(crate) fn get<'a>(
        &self,
        msg: &'a [u8],
        kind: u16,
    ) -> Option<&'a [u8]> {
        let off = (*self.slots.get(usize::from(kind))?)?;
        let a = NlaBuffer::new_unchecked(&msg[off..]);
        Some(&msg[off + NLA_HDRLEN..off + usize::from(a.length())])
    }

    /// Where the value of attribute `kind` starts in the message.
    pub(crate) fn value_offset(&self, kind: u16) -> Option<usize> {
        Some((*self.slots.get(usize::from(kind))?)? + NLA_HDRLEN)
    }
}

/// `__nla_validate_parse` over `msg[start..]` with `policy[1..=maxtype]`.
pub(crate) fn parse_attrs(
    msg: &[u8],
    start: usize,
    policy: &[Policy],
    mode: Validate,
) -> Result<Attrs, Reject> {
    let maxtype = policy.len().saturating_sub(1);
    let mut attrs = Attrs { slots: vec![None; maxtype + 1], leftover: false };
    let mut off = start.min(msg.len());
    while msg.len() - off >= NLA_HDRLEN {
        let a = NlaBuffer::new_unchecked(&msg[off..]);
        let len = usize::from(a.length());
        if len < NLA_HDRLEN || len > msg.len() - off {
            break;
        }
        let kind = usize::from(a.raw_kind() & TYPE_MASK);
        if kind == 0 || kind > maxtype {
            if mode == Validate::Strict {
                return Err(Reject::attr(
                    EINVAL,
                    "Unknown attribute type",
                    off,
                    None,
                ));
            }
        } else {
            validate_nla(&a, policy[kind], mode, off)?;
            attrs.slots[kind] = Some(off);
        }
        off += align4(len).min(msg.len() - off);
    }
    if off < msg.len() {
        if mode == Validate::Strict {
            return Err(Reject::msg(EINVAL, LEFTOVER));
        }
        attrs.leftover = true;
    }
    Ok(attrs)
}

/// `validate_nla` for one attribute at offset `off`.
fn validate_nla(
    a: &NlaBuffer<&[u8]>,
    pt: Policy,
    mode: Validate,
    off: usize,
) -> Result<(), Reject> {
    let strict = mode == Validate::Strict;
    let len = a.value().len();
    if let Some(exact) = pt.exact_len() {
        if len != exact && strict {
            return Err(Reject::attr(
                EINVAL,
                "invalid attribute length",
                off,
                Some(pt),
            ));
        }
    }
    if strict {
        let nested = a.nested_flag();
        if pt == Policy::Nested && !nested {
            return Err(Reject::attr(
                EINVAL,
                "NLA_F_NESTED is missing",
                off,
                Some(pt),
            ));
        }
        if pt != Policy::Nested && pt != Policy::Unspec && nested {
            return Err(Reject::attr(
                EINVAL,
                "NLA_F_NESTED not expected",
                off,
                Some(pt),
            ));
        }
    }
    let failed = |errno| {
        Err(Reject::attr(
            errno,
            "Attribute failed policy validation",
            off,
            Some(pt),
        ))
    };
    match pt {
        Policy::Unspec if strict => {
            Err(Reject::attr(EINVAL, "Unsupported attribute", off, None))
        }
        Policy::Unspec => Ok(()),
        Policy::Nested if len != 0 && len < NLA_HDRLEN => failed(ERANGE),
        Policy::Binary(max) if max != 0 && len > usize::from(max) => {
            failed(ERANGE)
        }
        Policy::NulString(max) => {
            let limit =
                if max == 0 { len } else { len.min(usize::from(max) + 1) };
            if limit == 0 || !a.value()[..limit].contains(&0) {
                return failed(EINVAL);
            }
            // Then NLA_STRING's check: without one trailing NUL, no
            // longer than the policy's length.
            let v = a.value();
            let text = len - usize::from(v[len - 1] == 0);
            if max != 0 && text > usize::from(max) {
                return failed(ERANGE);
            }
            Ok(())
        }
        Policy::U8 | Policy::U16 | Policy::U32
            if len < pt.exact_len().unwrap_or(0) =>
        {
            failed(ERANGE)
        }
        _ => Ok(()),
    }
}

/// Builds an `NLMSG_ERROR` answering `msg` (the whole request message)
/// with `-errno` (0 = ack), as `netlink_ack` does.
pub(crate) fn ack(
    msg: &[u8],
    port_id: u32,
    errno: i32,
    extack: &Extack,
    ext_ack: bool,
) -> Vec<u8> {
    let req = Packet::new_unchecked(msg);
    let mut flags = 0;
    let echoed = if errno != 0 {
        msg
    } else {
        flags |= nlmsg::F_CAPPED;
        &msg[..nlmsg::HEADER_LEN]
    };
    let mut tlv = Writer::new();
    if ext_ack {
        if let Some(text) = extack.msg {
            tlv.string(NLMSGERR_ATTR_MSG, text.as_bytes());
        }
        if errno != 0 {
            if let Some(off) = extack.bad_attr {
                tlv.u32(NLMSGERR_ATTR_OFFS, off);
            }
            if let Some(p) = extack.policy {
                let at = tlv.begin_nest(NLMSGERR_ATTR_POLICY | F_NESTED);
                p.dump(&mut tlv);
                tlv.end_nest(at);
            }
        }
    }
    if !tlv.is_empty() {
        flags |= nlmsg::F_ACK_TLVS;
    }
    let mut w = header(nlmsg::NLMSG_ERROR, flags, req.seq(), port_id);
    w.bytes(&(-errno).to_le_bytes()).bytes(echoed).pad().bytes(tlv.as_slice());
    finish(w)
}

/// Bytes reserved for a reply message as it is written (acks, errors and
/// Jool's small replies fit; a stats page of a bigger budget grows).
const REPLY_CAPACITY: usize = 512;

/// A writer holding an `nlmsghdr` whose length [`finish`] fills in.
fn header(kind: u16, flags: u16, seq: u32, pid: u32) -> Writer {
    // Room for most replies, so that writing them seldom reallocates.
    let mut buf = Vec::with_capacity(REPLY_CAPACITY);
    buf.resize(nlmsg::HEADER_LEN, 0);
    let hdr = nlmsg::Repr { len: 0, kind, flags, seq, pid };
    hdr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    Writer::from_vec(buf)
}

/// Starts a message: `nlmsghdr` (length fixed by [`finish`]) and a
/// `genlmsghdr`.
pub(crate) fn begin(
    kind: u16,
    flags: u16,
    seq: u32,
    pid: u32,
    cmd: u8,
    version: u8,
) -> Writer {
    let mut w = header(kind, flags, seq, pid);
    w.bytes(&[cmd, version, 0, 0]);
    w
}

/// Sets `nlmsg_len` to the bytes written and returns the message.
pub(crate) fn finish(mut w: Writer) -> Vec<u8> {
    let len = w.len() as u32;
    w.set_u32(0, len);
    w.into_vec()
}

/// `genl_header_check` (Linux 6.0+), for the commands of a family at or
/// past its `resv_start_op`: every command of Jool's families, which do
/// not set it. The genl header's reserved field must be 0, and the flags
/// only `NLM_F_REQUEST`, `NLM_F_ACK`, `NLM_F_ECHO` (and both dump bits
/// together). Runs after the header length check, before the command
/// lookup. `msg` holds at least the netlink and genl headers.
pub(crate) fn genl_header_check(msg: &[u8]) -> Result<(), Reject> {
    if msg[nlmsg::HEADER_LEN + 2..nlmsg::HEADER_LEN + 4] != [0, 0] {
        return Err(Reject::msg(EINVAL, "genlmsghdr.reserved field is not 0"));
    }
    let mut flags = Packet::new_unchecked(msg).flags();
    if flags & nlmsg::F_DUMP == nlmsg::F_DUMP {
        flags &= !nlmsg::F_DUMP;
    }
    if flags & !(nlmsg::F_REQUEST | nlmsg::F_ACK | nlmsg::F_ECHO) != 0 {
        return Err(Reject::msg(
            EINVAL,
            "ambiguous or reserved bits set in nlmsg_flags",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    const U8_ONLY: [Policy; 2] = [Policy::Unspec, Policy::U8];

    fn msg_with(attrs: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; 20];
        m.extend_from_slice(attrs);
        m
    }

    #[test]
    fn test_strict_u8_wrong_length() {
        let m = msg_with(&[8, 0, 1, 0, 30, 0, 0, 0]);
        let r = parse_attrs(&m, 20, &U8_ONLY, Validate::Strict).unwrap_err();
        assert_eq!(r.errno, EINVAL);
        assert_eq!(r.extack.msg, Some("invalid attribute length"));
        assert_eq!(r.extack.bad_attr, Some(20));
    }

    #[test]
    fn test_liberal_ignores_unknown_and_trailing() {
        let m = msg_with(&[5, 0, 7, 0, 1, 0, 0, 0, 0, 0]);
        assert!(parse_attrs(&m, 20, &U8_ONLY, Validate::Liberal).is_ok());
        let r = parse_attrs(&m, 20, &U8_ONLY, Validate::Strict).unwrap_err();
        assert_eq!(r.extack.msg, Some("Unknown attribute type"));
    }

    #[test]
    fn test_trailing_bytes() {
        let m = msg_with(&[3, 0, 1, 0]);
        let r = parse_attrs(&m, 20, &U8_ONLY, Validate::Strict).unwrap_err();
        assert_eq!(
            r.extack.msg,
            Some("bytes leftover after parsing attributes")
        );
        assert_eq!(r.extack.bad_attr, None);
    }

    #[test]
    fn test_last_attribute_wins() {
        let m = msg_with(&[5, 0, 1, 0, 30, 0, 0, 0, 5, 0, 1, 0, 60, 0, 0, 0]);
        let a = parse_attrs(&m, 20, &U8_ONLY, Validate::Strict).unwrap();
        assert_eq!(a.get(&m, 1), Some(&[60u8][..]));
    }
}
