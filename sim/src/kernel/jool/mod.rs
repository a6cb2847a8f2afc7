//! Jool's generic netlink family, 4.0.8 and later (`joolnlhdr` protocol):
//! the family's header and policy checks, `request_handle_start` (or
//! rc2/rc3's `jnl_start`) and the operations the `stats` path needs.

use super::{
    netlink::{
        self, Attrs, Policy, Reject, Validate, EEXIST, EINVAL, ENOSYS,
        EOPNOTSUPP, EPERM, ESRCH,
    },
    state::{iname_valid_for, name_from_bytes, text_bytes, Framework, Xlator},
    Caller, Kernel, NetnsId,
};
use std::sync::OnceLock;

mod instance;

pub(super) use instance::{check_add, default_netns_tag};
use instance::{
    instance_add, instance_flush, instance_foreach, instance_hello,
    instance_rm,
};

use crate::kernel::Prefix6;
use crate::{
    versions::Numbering,
    wire::{
        family::{
            Attr, ErrorAttr, InstanceAddAttr, InstanceEntryAttr,
            InstanceStatusAttr, ListAttr, Op,
        },
        genl,
        jool::{self as hdr, Header, Layout, FLAG_ERROR, FLAG_M},
        nla::{Writer, F_NESTED},
        nlmsg::{self, Packet},
    },
};

/// `INAME_VALIDATE_ERRMSG`.
const INAME_ERR: &str = "The instance name must be a null-terminated ascii string, 15 characters max.";
/// `INAME_DEFAULT`.
const INAME_DEFAULT: &str = "default";

/// `jool_policy`: the root attribute policy of a numbering, indexed by
/// attribute type (0 unused).
fn policy(n: Numbering) -> &'static [Policy] {
    fn build(n: Numbering) -> Vec<Policy> {
        (0..=n.maxattr())
            .map(|t| n.attr_of(t).map_or(Policy::Unspec, attr_policy))
            .collect()
    }
    static JOOL41: OnceLock<Vec<Policy>> = OnceLock::new();
    static MAPT: OnceLock<Vec<Policy>> = OnceLock::new();
    match n {
        Numbering::Jool41 => JOOL41.get_or_init(|| build(n)),
        Numbering::MapT => MAPT.get_or_init(|| build(n)),
    }
}

/// The policy of one root attribute (`jool_policy` in nl_handler.c).
fn attr_policy(a: Attr) -> Policy {
    match a {
        Attr::AddrQuery | Attr::AtomicEnd => Policy::Binary(0),
        Attr::OffsetU8 | Attr::Proto | Attr::AtomicInit => Policy::U8,
        Attr::Globals
        | Attr::Bl4Entries
        | Attr::EamtEntries
        | Attr::Pool4Entries
        | Attr::BibEntries
        | Attr::SessionEntries
        | Attr::FmrtEntries
        | Attr::Offset
        | Attr::Operand => Policy::Nested,
    }
}

/// A request that passed the genl core: its message, header and
/// attributes.
struct Request<'a> {
    msg: &'a [u8],
    seq: u32,
    cmd: u8,
    hdr: hdr::Repr,
    attrs: Attrs,
    /// The kernel's `char` is unsigned (Linux 6.2+): see
    /// [`iname_valid_for`].
    unsigned_char: bool,
}

/// A Jool-level failure: errno and the messages logged.
struct Failure {
    errno: i32,
    msg: String,
    /// Returned to genetlink as is: a plain `NLMSG_ERROR`, no Jool reply.
    raw: bool,
}

impl Failure {
    fn new(errno: i32, msg: impl Into<String>) -> Self {
        Self { errno, msg: msg.into(), raw: false }
    }

    fn raw(errno: i32) -> Self {
        Self { errno, msg: String::new(), raw: true }
    }
}

/// The genl part for Jool's family, then the op.
pub(super) fn rcv(
    k: &mut Kernel,
    caller: &Caller,
    msg: &[u8],
    out: &mut Vec<Vec<u8>>,
) -> Result<(), Reject> {
    let prof = k.profile();
    let layout =
        Layout::from_len(prof.header_len()).ok_or(Reject::plain(EINVAL))?;
    let hdrlen = nlmsg::HEADER_LEN + genl::HEADER_LEN + layout.header_len();
    if msg.len() < hdrlen {
        return Err(Reject::plain(EINVAL));
    }
    netlink::genl_header_check(msg)?;
    let p = Packet::new_unchecked(msg);
    let cmd = msg[nlmsg::HEADER_LEN];
    if cmd >= prof.op_count() || p.flags() & nlmsg::F_DUMP == nlmsg::F_DUMP {
        return Err(Reject::plain(EOPNOTSUPP));
    }
    let attrs = netlink::parse_attrs(
        msg,
        hdrlen,
        policy(prof.numbering),
        Validate::Strict,
    )?;
    let view = Header::new_unchecked(
        &msg[nlmsg::HEADER_LEN + genl::HEADER_LEN..],
        layout,
    );
    let hdr = hdr::Repr::parse(&view).map_err(|_| Reject::plain(EINVAL))?;
    let req = Request {
        msg,
        seq: p.seq(),
        cmd,
        hdr,
        attrs,
        unsigned_char: k.build().unsigned_char,
    };
    let reply = match dispatch(k, caller, &req) {
        Ok(reply) => reply,
        Err(f) if f.raw => return Err(Reject::plain(f.errno)),
        Err(f) => {
            k.log_err(&f.msg);
            error_reply(k, caller, &req, &f)
        }
    };
    out.push(reply);
    Ok(())
}

fn dispatch(
    k: &mut Kernel,
    caller: &Caller,
    req: &Request<'_>,
) -> Result<Vec<u8>, Failure> {
    match k.profile().numbering.op(req.cmd) {
        Some(Op::StatsForeach) => stats_foreach(k, caller, req),
        Some(Op::InstanceForeach) => instance_foreach(k, caller, req),
        Some(Op::InstanceAdd) => instance_add(k, caller, req),
        Some(Op::InstanceHello) => instance_hello(k, caller, req),
        Some(Op::InstanceRm) => instance_rm(k, caller, req),
        Some(Op::InstanceFlush) => instance_flush(k, caller, req),
        Some(Op::GlobalForeach) => global_foreach(k, caller, req),
        Some(Op::FileHandle)
            if k.profile().numbering == Numbering::MapT
                && req.root_attr(k, Attr::AtomicInit).is_none() =>
        {
            file_handle_without_init(k, caller, req)
        }
        _ => {
            req.start(k, caller, true)?;
            Err(Failure::new(
                ENOSYS,
                "jool-sim does not emulate this operation.",
            ))
        }
    }
}

/// `handle_atomconfig_request` (4.2.0-rc) of a request without
/// `JNLAR_ATOMIC_INIT`: `__jnl_start` (any translator, CAP_NET_ADMIN),
/// `iname_validate`, then `get_candidate`, which finds no transaction of
/// this process (the simulator keeps none): ESRCH "Instance not found."
/// (v4.2.0-rc3 src/mod/common/atomic_config.c; seen in the real rc
/// modules' answers to the probe's `cmd_30`).
fn file_handle_without_init(
    k: &mut Kernel,
    caller: &Caller,
    req: &Request<'_>,
) -> Result<Vec<u8>, Failure> {
    req.start(k, caller, true)?;
    req.raw_iname()?;
    Err(Failure::new(ESRCH, "Instance not found."))
}

impl Request<'_> {
    /// `request_handle_start` / `jnl_start` up to the instance lookup:
    /// privilege, magic, stateness, version. Returns the translator.
    fn start(
        &self,
        k: &Kernel,
        caller: &Caller,
        require_admin: bool,
    ) -> Result<Xlator, Failure> {
        let prof = k.profile();
        if (require_admin || prof.stats_requires_net_admin)
            && !caller.net_admin
        {
            return Err(Failure::new(EPERM, prof.cap_error_text()));
        }
        if !self.hdr.magic_ok() {
            return Err(Failure::new(
                EINVAL,
                "Don't know what to do: The packet I just received does not follow Jool's protocol.",
            ));
        }
        let xlator = stateness(k, self.hdr.xt)?;
        if !prof.kernel_accepts(self.hdr.version) {
            return Err(Failure::new(
                EINVAL,
                version_mismatch(self.hdr.version, prof.wire_version),
            ));
        }
        Ok(xlator)
    }

    /// `xlator_find_current`: the instance name, validated, and found in
    /// the caller's namespace.
    fn lookup(
        &self,
        k: &Kernel,
        caller: &Caller,
        xlator: Xlator,
    ) -> Result<String, Failure> {
        let name = self.iname()?;
        if k.instance(caller.netns, xlator, &name).is_none() {
            return Err(Failure::new(
                ESRCH,
                format!("This namespace lacks an instance named '{name}'."),
            ));
        }
        Ok(name)
    }

    /// The instance name the kernel uses: `default` when empty; validated.
    fn iname(&self) -> Result<String, Failure> {
        if self.hdr.iname[0] == 0 {
            return Ok(INAME_DEFAULT.to_owned());
        }
        if !iname_valid_for(&self.hdr.iname, self.unsigned_char) {
            return Err(Failure::new(EINVAL, INAME_ERR));
        }
        let raw = self.hdr.iname_str().unwrap_or_default();
        Ok(name_from_bytes(raw))
    }

    /// The header's instance name as `xlator_add`/`xlator_rm` take it:
    /// validated, but an empty name stays empty.
    fn raw_iname(&self) -> Result<String, Failure> {
        if !iname_valid_for(&self.hdr.iname, self.unsigned_char) {
            return Err(Failure::new(EINVAL, INAME_ERR));
        }
        let raw = self.hdr.iname_str().unwrap_or_default();
        Ok(name_from_bytes(raw))
    }

    fn attr(&self, kind: u16) -> Option<&[u8]> {
        self.attrs.get(self.msg, kind)
    }

    /// The value of root attribute `a` in the kernel's numbering.
    fn root_attr(&self, k: &Kernel, a: Attr) -> Option<&[u8]> {
        self.attr(k.profile().numbering.attr(a)?)
    }
}

/// `validate_stateness`.
fn stateness(k: &Kernel, xt: u8) -> Result<Xlator, Failure> {
    match Xlator::from_xt(xt) {
        Some(x) if k.loaded(x) => Ok(x),
        Some(Xlator::Siit) => Err(Failure::new(
            EINVAL,
            "SIIT Jool has not been modprobed. (Try `modprobe jool_siit`)",
        )),
        Some(Xlator::Nat64) => Err(Failure::new(
            EINVAL,
            "NAT64 Jool has not been modprobed. (Try `modprobe jool`)",
        )),
        None if xt == hdr::XT_MAPT
            && k.profile().numbering == Numbering::MapT =>
        {
            Err(Failure::new(
                EINVAL,
                "MAPT Jool has not been modprobed. (Try `modprobe jool_mapt`)",
            ))
        }
        None => Err(Failure::new(EINVAL, xt_validate_errmsg(k))),
    }
}

/// `XT_VALIDATE_ERRMSG`: 4.2.0-rc names MAP-T too.
fn xt_validate_errmsg(k: &Kernel) -> &'static str {
    if k.profile().numbering == Numbering::MapT {
        "The instance type must be either SIIT, NAT64 or MAP-T."
    } else {
        "The instance type must be either SIIT or NAT64."
    }
}

/// `validate_version`'s message.
pub(super) fn version_mismatch(client: u32, kernel: u32) -> String {
    format!(
        "Version mismatch. The userspace client's version is {},\nbut the kernel module is {}.\nPlease update the {}.",
        crate::versions::quad(client),
        crate::versions::quad(kernel),
        if kernel > client { "userspace client" } else { "kernel module" }
    )
}

/// `jresponse_init`: a reply whose header is the request's, byte for byte
/// (rc2/rc3 zero the flags).
fn reply_start(
    k: &Kernel,
    caller: &Caller,
    req: &Request<'_>,
) -> (Writer, usize) {
    let fam = k.family_id;
    let mut w = netlink::begin(
        fam,
        0,
        req.seq,
        caller.port_id,
        0,
        k.profile().genl_version(),
    );
    let mut h = req.hdr;
    if k.profile().zero_reply_flags {
        h.flags = 0;
    }
    let flags_at = w.len() + h.layout.flags_offset();
    w.bytes(&h.to_vec());
    (w, flags_at)
}

/// `jresponse_send_simple` with an error: ERROR flag, code, message.
fn error_reply(
    k: &Kernel,
    caller: &Caller,
    req: &Request<'_>,
    f: &Failure,
) -> Vec<u8> {
    let (mut w, flags_at) = reply_start(k, caller, req);
    w.or_byte(flags_at, FLAG_ERROR);
    let code = f.errno.unsigned_abs().min(u32::from(u16::MAX)) as u16;
    w.u16(ErrorAttr::Code.into(), code);
    if k.profile().always_error_msg || !f.msg.is_empty() {
        let room = k.budget.saturating_sub(w.len() + 4);
        let mut text = text_bytes(&f.msg);
        if text.len() >= room {
            text.truncate(128);
        }
        w.string(ErrorAttr::Msg.into(), &text);
    }
    netlink::finish(w)
}

/// An empty success reply (`jresponse_send_simple(..., 0)`).
fn ack_reply(k: &Kernel, caller: &Caller, req: &Request<'_>) -> Vec<u8> {
    netlink::finish(reply_start(k, caller, req).0)
}

/// `handle_stats_foreach`.
fn stats_foreach(
    k: &mut Kernel,
    caller: &Caller,
    req: &Request<'_>,
) -> Result<Vec<u8>, Failure> {
    let xlator = req.start(k, caller, false)?;
    let name = req.lookup(k, caller, xlator)?;
    let offset = req.root_attr(k, Attr::OffsetU8).map_or(0, |v| v[0]);
    let (mut w, flags_at) = reply_start(k, caller, req);
    let Some(inst) = k.instance(caller.netns, xlator, &name) else {
        return Err(Failure::new(
            ESRCH,
            format!("This namespace lacks an instance named '{name}'."),
        ));
    };
    let ids = u16::from(offset) + 1..=k.profile().max_id;
    let put = |w: &mut Writer, id: u16| {
        w.u64(id, inst.counters[usize::from(id)]);
    };
    if !pack(&mut w, flags_at, k.budget, ids, |_| 12, put) {
        return Err(Failure::new(
            netlink::EMSGSIZE,
            "The allocated Netlink packet is too small to contain the response. This might be a bug; please report it. PAGE_SIZE is 4096.",
        ));
    }
    Ok(netlink::finish(w))
}

/// `handle_global_foreach`: the instance's global configuration, from
/// after the global whose id is `JNLAR_OFFSET_U8` (an offset never
/// matched gives an empty page), as many as fit (then the M flag).
fn global_foreach(
    k: &mut Kernel,
    caller: &Caller,
    req: &Request<'_>,
) -> Result<Vec<u8>, Failure> {
    let xlator = req.start(k, caller, true)?;
    let name = req.lookup(k, caller, xlator)?;
    let (mut w, flags_at) = reply_start(k, caller, req);
    let pool6 = k.instance(caller.netns, xlator, &name).and_then(|i| i.pool6);
    let all = super::globals::entries(k.profile(), xlator, pool6).ok_or_else(
        || {
            Failure::new(
                ENOSYS,
                "jool-sim does not emulate the globals of this release.",
            )
        },
    )?;
    let offset = req.root_attr(k, Attr::OffsetU8).map(|v| u16::from(v[0]));
    // globals_foreach: offset 0 is no offset; another one skips up to
    // and including that global (all of them if it is not one).
    let start = match offset {
        None | Some(0) => 0,
        Some(o) => all
            .iter()
            .position(|(id, _)| *id == o)
            .map_or(all.len(), |i| i + 1),
    };
    let put = |w: &mut Writer, (_, bytes): &(_, Vec<u8>)| {
        w.bytes(bytes);
    };
    if !pack(&mut w, flags_at, k.budget, &all[start..], |(_, b)| b.len(), put)
    {
        return Err(too_small());
    }
    Ok(netlink::finish(w))
}

/// Appends `items` to a reply while they fit in the kernel's message
/// `budget` (`len` says how many bytes each takes); on the first that does
/// not fit, sets the M flag at `flags_at` and stops: the client asks again
/// from an offset. False when not even the first item fits.
fn pack<T>(
    w: &mut Writer,
    flags_at: usize,
    budget: usize,
    items: impl IntoIterator<Item = T>,
    len: impl Fn(&T) -> usize,
    mut put: impl FnMut(&mut Writer, T),
) -> bool {
    for (written, item) in items.into_iter().enumerate() {
        if w.len() + len(&item) > budget {
            if written == 0 {
                return false;
            }
            w.or_byte(flags_at, FLAG_M);
            break;
        }
        put(w, item);
    }
    true
}

/// `report_put_failure`'s text: not even one entry fits the message.
fn too_small() -> Failure {
    Failure::new(
        EINVAL,
        "The allocated Netlink packet is too small to contain the response. This might be a bug; please report it. PAGE_SIZE is 4096.",
    )
}
