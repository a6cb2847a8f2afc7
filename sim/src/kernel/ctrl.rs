//! nlctrl, the generic netlink controller: `CTRL_CMD_GETFAMILY` for
//! "Jool", answered as Linux 6.1 answers it (liberal validation, name or
//! id lookup, `ENOENT` when the family is absent).

use super::{
    netlink::{
        self, Policy, Reject, Validate, EINVAL, ENOENT, ENOSYS, EOPNOTSUPP,
    },
    Caller, Family, Kernel,
};
use crate::wire::{
    genl::*,
    nla::Writer,
    nlmsg::{self, Packet},
};

/// Jool's multicast group.
const MCAST_GROUP: &str = "joold";
/// `GENL_CMD_CAP_DO`: every Jool op has a `.doit` (and no `.dumpit`).
const CAP_DO: u32 = 0x2;
/// `GENL_CMD_CAP_HASPOL`: the op (or its family) has a policy.
const CAP_HASPOL: u32 = 0x8;
/// nlctrl's own family version.
const CTRL_VERSION: u8 = 2;
/// `ctrl_policy_family`: id (u16) and name (NUL string, 15 chars max).
const POLICY: [Policy; 3] =
    [Policy::Unspec, Policy::U16, Policy::NulString(15)];

pub(super) fn rcv(
    k: &mut Kernel,
    caller: &Caller,
    msg: &[u8],
    out: &mut Vec<Vec<u8>>,
) -> Result<(), Reject> {
    let hdrlen = nlmsg::HEADER_LEN + HEADER_LEN;
    if msg.len() < hdrlen {
        return Err(Reject::plain(EINVAL));
    }
    let p = Packet::new_unchecked(msg);
    let cmd = msg[nlmsg::HEADER_LEN];
    // nlctrl's resv_start_op is CTRL_CMD_GETPOLICY + 1: the newer
    // commands (none exist) get genl_header_check before the lookup.
    if cmd >= CTRL_RESV_START_OP {
        netlink::genl_header_check(msg)?;
    }
    let is_dump = p.flags() & nlmsg::F_DUMP == nlmsg::F_DUMP;
    if cmd == CTRL_CMD_GETPOLICY {
        // Dump only (no doit).
        if !is_dump {
            return Err(Reject::plain(EOPNOTSUPP));
        }
        return get_policy(k, msg, hdrlen);
    }
    if cmd != CTRL_CMD_GETFAMILY {
        return Err(Reject::plain(EOPNOTSUPP));
    }
    if is_dump {
        if k.build().ctrl_dump_strict {
            netlink::parse_attrs(msg, hdrlen, &POLICY, Validate::Strict)?;
        }
        return dump(k, caller, &p, out);
    }
    let attrs = netlink::parse_attrs(msg, hdrlen, &POLICY, Validate::Liberal)?;
    // Bytes after the attributes: a warning in the ack, error or not.
    let warning = attrs.leftover.then_some(netlink::LEFTOVER);
    let reject = |errno| Reject {
        errno,
        extack: netlink::Extack { msg: warning, ..Default::default() },
    };
    let families = k.families();
    let mut found = None;
    let mut err = EINVAL;
    if let Some(v) = attrs.get(msg, CTRL_ATTR_FAMILY_ID) {
        let id = u16::from_le_bytes([v[0], v.get(1).copied().unwrap_or(0)]);
        found = families.iter().find(|f| f.id == id);
        err = ENOENT;
    }
    if let Some(v) = attrs.get(msg, CTRL_ATTR_FAMILY_NAME) {
        let name = v.split(|&b| b == 0).next().unwrap_or_default();
        found = families.iter().find(|f| f.name.as_bytes() == name);
        err = ENOENT;
    }
    let Some(family) = found else {
        return Err(reject(err));
    };
    out.push(family_msg(k, family, p.seq(), caller.port_id, 0));
    k.ack_warning = warning;
    Ok(())
}

/// `CTRL_CMD_GETPOLICY`, nlctrl's second command (Linux 5.7+).
const CTRL_CMD_GETPOLICY: u8 = 10;
/// nlctrl's `resv_start_op`.
const CTRL_RESV_START_OP: u8 = CTRL_CMD_GETPOLICY + 1;
/// `ctrl_policy_policy`, validated strictly (GETPOLICY sets no
/// `GENL_DONT_VALIDATE_*` flag): family id, family name, and
/// `CTRL_ATTR_OP` (10, u32).
const GETPOLICY_POLICY: [Policy; 11] = [
    Policy::Unspec,
    Policy::U16,
    Policy::NulString(15),
    Policy::Unspec,
    Policy::Unspec,
    Policy::Unspec,
    Policy::Unspec,
    Policy::Unspec,
    Policy::Unspec,
    Policy::Unspec,
    Policy::U32,
];

/// `ctrl_dumppolicy_start`'s checks (the attributes, the family, the
/// op); a request that passes them would get the family's policy dump,
/// which the simulator does not emulate (`ENOSYS`).
fn get_policy(k: &Kernel, msg: &[u8], hdrlen: usize) -> Result<(), Reject> {
    let attrs = netlink::parse_attrs(
        msg,
        hdrlen,
        &GETPOLICY_POLICY,
        Validate::Strict,
    )?;
    let id = attrs.get(msg, CTRL_ATTR_FAMILY_ID);
    let name = attrs.get(msg, CTRL_ATTR_FAMILY_NAME);
    let families = k.families();
    let family = match (id, name) {
        (None, None) => return Err(Reject::plain(EINVAL)),
        (Some(v), _) => {
            let id = u16::from_le_bytes([v[0], v[1]]);
            families.iter().find(|f| f.id == id)
        }
        (None, Some(v)) => {
            let name = v.split(|&b| b == 0).next().unwrap_or_default();
            families.iter().find(|f| f.name.as_bytes() == name)
        }
    };
    if family.is_none() {
        // Families other than Jool's exist on a real kernel; the
        // simulator registers only Jool's (a documented limit).
        return Err(Reject::plain(ENOENT));
    }
    Err(Reject::msg(
        ENOSYS,
        "jool-sim does not emulate nlctrl's policy dumps.",
    ))
}

/// `ctrl_dumpfamily`: every family this kernel serves, then `NLMSG_DONE`.
fn dump(
    k: &Kernel,
    caller: &Caller,
    p: &Packet<&[u8]>,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), Reject> {
    for f in k.families() {
        out.push(family_msg(k, &f, p.seq(), caller.port_id, nlmsg::F_MULTI));
    }
    // NLMSG_DONE carries an int (0) after the header.
    let mut done = vec![0u8; nlmsg::HEADER_LEN + 4];
    let hdr = nlmsg::Repr {
        len: done.len() as u32,
        kind: nlmsg::NLMSG_DONE,
        flags: nlmsg::F_MULTI,
        seq: p.seq(),
        pid: caller.port_id,
    };
    hdr.emit(&mut Packet::new_unchecked(&mut done[..]));
    out.push(done);
    Ok(())
}

/// `ctrl_fill_info` for Jool: name, id, version, hdrsize, maxattr, ops,
/// multicast groups.
fn family_msg(
    k: &Kernel,
    family: &Family,
    seq: u32,
    pid: u32,
    flags: u16,
) -> Vec<u8> {
    let prof = k.profile();
    let mut w: Writer = netlink::begin(
        nlmsg::GENL_ID_CTRL,
        flags,
        seq,
        pid,
        CTRL_CMD_NEWFAMILY,
        CTRL_VERSION,
    );
    w.string(CTRL_ATTR_FAMILY_NAME, family.name.as_bytes())
        .u16(CTRL_ATTR_FAMILY_ID, family.id)
        .u32(CTRL_ATTR_VERSION, u32::from(prof.genl_version()))
        .u32(CTRL_ATTR_HDRSIZE, prof.header_len() as u32)
        .u32(CTRL_ATTR_MAXATTR, u32::from(prof.maxattr()));
    // ctrl_fill_info: the op's own flags (none in any release), CAP_DO
    // for a doit, CAP_HASPOL for a policy (the op's or the family's).
    let op_flags =
        if prof.genl_ops_have_policy() { CAP_DO | CAP_HASPOL } else { CAP_DO };
    let ops = w.begin_nest(CTRL_ATTR_OPS);
    for cmd in 0..prof.op_count() {
        let op = w.begin_nest(u16::from(cmd) + 1);
        w.u32(1, u32::from(cmd)).u32(2, op_flags);
        w.end_nest(op);
    }
    w.end_nest(ops);
    let groups = w.begin_nest(CTRL_ATTR_MCAST_GROUPS);
    let g = w.begin_nest(1);
    w.u32(2, family.mcast_group).string(1, MCAST_GROUP.as_bytes());
    w.end_nest(g);
    w.end_nest(groups);
    netlink::finish(w)
}
