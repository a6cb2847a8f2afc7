//! Requests of any release, built by hand as that release's client
//! builds them: nlctrl's GETFAMILY, Jool requests (4.0.8+, `joolnlhdr`)
//! and 4.0.0 – 4.0.7's `request_hdr` requests. The simulator's fuzz
//! bodies, the conformance probe and `fuzz-kernel` build their requests
//! here (the simulator must not depend on the harness's neli client).

use crate::kernel::Prefix6;
use crate::{
    kernel::Xlator,
    versions::{LegacyLayout, Profile, Protocol},
    wire::{
        family::{Attr, InstanceAddAttr, PrefixAttr},
        genl,
        jool::{self, Layout, INAME_LEN},
        legacy,
        nla::{Writer, F_NESTED},
        nlmsg::{self, Packet},
    },
};

/// `JNLOP_*` of the operations the fuzz bodies send (4.0.8+), numbered
/// alike in every release ([`Op`](crate::wire::family::Op)).
pub mod op {
    use crate::wire::family::Op;

    /// `JNLOP_INSTANCE_FOREACH`.
    pub const INSTANCE_FOREACH: u8 = Op::InstanceForeach as u8;
    /// `JNLOP_INSTANCE_ADD`.
    pub const INSTANCE_ADD: u8 = Op::InstanceAdd as u8;
    /// `JNLOP_INSTANCE_HELLO`.
    pub const INSTANCE_HELLO: u8 = Op::InstanceHello as u8;
    /// `JNLOP_INSTANCE_RM`.
    pub const INSTANCE_RM: u8 = Op::InstanceRm as u8;
    /// `JNLOP_INSTANCE_FLUSH`.
    pub const INSTANCE_FLUSH: u8 = Op::InstanceFlush as u8;
    /// `JNLOP_STATS_FOREACH`.
    pub const STATS_FOREACH: u8 = Op::StatsForeach as u8;
}

/// `config_operation` values of 4.0.0 – 4.0.7 ([`ConfigOp`](crate::wire::legacy::ConfigOp)).
pub mod legacy_op {
    use crate::wire::legacy::ConfigOp;

    /// `OP_FOREACH`.
    pub const FOREACH: u8 = ConfigOp::Foreach as u8;
    /// `OP_ADD`.
    pub const ADD: u8 = ConfigOp::Add as u8;
    /// `OP_REMOVE`.
    pub const REMOVE: u8 = ConfigOp::Remove as u8;
    /// `OP_FLUSH`.
    pub const FLUSH: u8 = ConfigOp::Flush as u8;
    /// `OP_TEST`.
    pub const TEST: u8 = ConfigOp::Test as u8;
}

/// Most stats pages a display may take (offsets are one byte).
pub const MAX_PAGES: usize = 256;

/// The framework of `instance add`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `--netfilter`.
    Netfilter,
    /// `--iptables`.
    Iptables,
    /// A byte that names no framework.
    Invalid(u8),
}

impl Frame {
    /// The byte a client of `p` sends: `XF_*` (4, 8; 8, 16 in 4.2.0-rc),
    /// or `FW_*` (1, 2) before 4.0.6.
    pub fn byte(self, p: &Profile) -> u8 {
        let old = p.is_legacy() && p.is_before("4.0.6");
        let mapt = u8::from(p.numbering == crate::versions::Numbering::MapT);
        match (self, old) {
            (Self::Netfilter, false) => 4 << mapt,
            (Self::Iptables, false) => 8 << mapt,
            (Self::Netfilter, true) => 1,
            (Self::Iptables, true) => 2,
            (Self::Invalid(b), _) => b,
        }
    }
}

/// A netlink message: header (`NLM_F_REQUEST`), genl header, `body`.
pub fn message(kind: u16, seq: u32, cmd: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(nlmsg::HEADER_LEN + 4 + body.len());
    v.resize(nlmsg::HEADER_LEN, 0);
    let mut w = Writer::from_vec(v);
    w.bytes(&[cmd, 1, 0, 0]).bytes(body);
    let mut v = w.into_vec();
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

/// `INSTANCE_ADD`'s attributes (4.0.8+) as the client of `p` sends them:
/// the operand {XF, POOL6 {ADDR, LEN}}.
pub fn add_operand(p: &Profile, xf: u8, pool6: Option<Prefix6>) -> Vec<u8> {
    let mut operand = Writer::new();
    operand.u8(InstanceAddAttr::Xf.into(), xf);
    if let Some((addr, len)) = pool6 {
        let at =
            operand.begin_nest(u16::from(InstanceAddAttr::Pool6) | F_NESTED);
        operand
            .attr(PrefixAttr::Addr.into(), &addr)
            .u8(PrefixAttr::Len.into(), len);
        operand.end_nest(at);
    }
    let kind = p.numbering.attr(Attr::Operand).unwrap_or_default();
    let mut w = Writer::new();
    w.attr(kind | F_NESTED, operand.as_slice());
    w.into_vec()
}

/// A Jool request (4.0.8+) as the client of `p` sends it.
pub fn jool_request(
    p: &Profile,
    family: u16,
    seq: u32,
    cmd: u8,
    xt: u8,
    iname: [u8; INAME_LEN],
    attrs: &[u8],
) -> Vec<u8> {
    let layout = Layout::from_len(p.header_len()).unwrap_or(Layout::V2);
    let h = jool::Repr {
        layout,
        magic: jool::MAGIC,
        version: p.wire_version,
        xt,
        flags: 0,
        reserved: [0; 2],
        iname,
    };
    let mut body = h.to_vec();
    body.extend_from_slice(attrs);
    message(family, seq, cmd, &body)
}

/// A 4.0.0 – 4.0.7 request of `mode` and `op` as the client of `p` sends
/// it: `ATTR_INAME` if given, then `ATTR_DATA` (`request_hdr` + `body`).
pub fn legacy_request(
    p: &Profile,
    family: u16,
    seq: u32,
    xlator: Xlator,
    (mode, op): (u8, u8),
    iname: Option<&[u8]>,
    body: &[u8],
) -> Vec<u8> {
    let b4 = match p.protocol {
        Protocol::Legacy(LegacyLayout::TypeChar) => {
            [if xlator == Xlator::Siit { b's' } else { b'n' }, b'u', 0, 0]
        }
        Protocol::Legacy(LegacyLayout::NoType) => [b'u', 0, 0, 0],
        _ => [xlator.xt(), b'u', 0, 0],
    };
    let mut data =
        legacy::request_bytes(b4, p.wire_version, mode, op).to_vec();
    data.extend_from_slice(body);
    let mut w = Writer::new();
    if let Some(name) = iname {
        w.attr(legacy::ATTR_INAME, name);
    }
    w.attr(legacy::ATTR_DATA, &data);
    message(family, seq, legacy::JOOL_COMMAND, w.as_slice())
}

/// `MODE_STATS` of a 4.0.x release (`MODE_ADDRESS` came in 4.0.5).
pub fn legacy_stats_mode(p: &Profile) -> u8 {
    if p.is_before("4.0.5") {
        1
    } else {
        2
    }
}
