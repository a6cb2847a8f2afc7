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

/// `handle_instance_foreach`: every instance of the request's translator
/// type, in every namespace (the real module does not filter by netns),
/// after the one named by `JNLAR_OFFSET` (none matching: ESRCH with an
/// empty message), as many as fit (then the M flag). The real module walks
/// a hash table; the simulator lists in (netns, name) order.
fn instance_foreach(
    k: &mut Kernel,
    caller: &Caller,
    req: &Request<'_>,
) -> Result<Vec<u8>, Failure> {
    let xlator = req.start(k, caller, true)?;
    let offset = match req.root_attr(k, Attr::Offset) {
        Some(v) => Some(parse_instance_offset(v)?),
        None => None,
    };
    let mut entries = Vec::new();
    for (&ns, netns) in k.namespaces() {
        for inst in netns.instances.values().filter(|i| i.xlator == xlator) {
            let mut e = Writer::new();
            let at = e.begin_nest(u16::from(ListAttr::Entry) | F_NESTED);
            e.u32(InstanceEntryAttr::Ns.into(), k.netns_tag(ns))
                .u8(
                    InstanceEntryAttr::Xf.into(),
                    inst.framework.xf_in(k.profile().numbering),
                )
                .string(
                    InstanceEntryAttr::Iname.into(),
                    &text_bytes(&inst.name),
                );
            e.end_nest(at);
            entries.push(((k.netns_tag(ns), inst.name.clone()), e.into_vec()));
        }
    }
    let start = match &offset {
        None => 0,
        Some(o) => match entries.iter().position(|(key, _)| key == o) {
            Some(i) => i + 1,
            None => return Err(Failure::new(ESRCH, "")),
        },
    };
    let (mut w, flags_at) = reply_start(k, caller, req);
    let put = |w: &mut Writer, (_, bytes): &(_, Vec<u8>)| {
        w.bytes(bytes);
    };
    if !pack(
        &mut w,
        flags_at,
        k.budget,
        &entries[start..],
        |(_, b)| b.len(),
        put,
    ) {
        return Err(too_small());
    }
    Ok(netlink::finish(w))
}

/// `JNLAR_OFFSET` of INSTANCE_FOREACH: the client's last entry
/// {NS, XF, INAME}; returns (NS, INAME).
fn parse_instance_offset(v: &[u8]) -> Result<(u32, String), Failure> {
    const ENTRY: [Policy; 4] =
        [Policy::Unspec, Policy::U32, Policy::U8, Policy::NulString(15)];
    let attrs =
        netlink::parse_attrs(v, 0, &ENTRY, Validate::Strict).map_err(|r| {
            // jnla_parse_nested passes nla_parse_nested's errno on
            // (ERANGE for a name longer than 15 bytes).
            let why = r.extack.msg.unwrap_or_default();
            Failure::new(
                r.errno,
                format!("The 'instance' attribute is malformed: {why}"),
            )
        })?;
    let missing = |what| {
        Failure::new(
            EINVAL,
            format!("Invalid request: '{what}' attribute is missing."),
        )
    };
    let get = |a: InstanceEntryAttr| attrs.get(v, a.into());
    let ns = get(InstanceEntryAttr::Ns).ok_or_else(|| missing("namespace"))?;
    get(InstanceEntryAttr::Xf).ok_or_else(|| missing("framework"))?;
    let name = get(InstanceEntryAttr::Iname)
        .ok_or_else(|| missing("instance name"))?;
    let ns = u32::from_le_bytes([ns[0], ns[1], ns[2], ns[3]]);
    let name = name.split(|&b| b == 0).next().unwrap_or_default();
    Ok((ns, name_from_bytes(name)))
}

/// What `JNLAIE_NS` carries for a namespace without a tag set with
/// [`Kernel::set_netns_tag`] (the kernel sends the low 32 bits of its
/// `struct net` pointer; any stable tag will do).
pub(super) fn default_netns_tag(ns: NetnsId) -> u32 {
    (ns as u32) ^ 0xb309_dcc0 ^ 1
}

/// `handle_instance_hello`: alive (0) or dead (1) in the caller's netns,
/// looked up by the raw name ("" is not "default" here).
fn instance_hello(
    k: &mut Kernel,
    caller: &Caller,
    req: &Request<'_>,
) -> Result<Vec<u8>, Failure> {
    let xlator = req.start(k, caller, true)?;
    let name = req.raw_iname().map_err(|f| {
        Failure::new(f.errno, format!("{}Unknown status.", f.msg))
    })?;
    let alive = k.instance(caller.netns, xlator, &name).is_some();
    let (mut w, _) = reply_start(k, caller, req);
    w.u8(InstanceStatusAttr::Status.into(), if alive { 0 } else { 1 });
    Ok(netlink::finish(w))
}

/// `handle_instance_add`, in the real order: operand, framework, pool6,
/// then `xlator_add`'s name, type, framework, pool6 and collision checks.
fn instance_add(
    k: &mut Kernel,
    caller: &Caller,
    req: &Request<'_>,
) -> Result<Vec<u8>, Failure> {
    let xlator = req.start(k, caller, true)?;
    let Some(operand) = req.root_attr(k, Attr::Operand) else {
        return Err(Failure::new(
            EINVAL,
            "The request is missing an 'Operand' attribute.",
        ));
    };
    let (xf, pool6) = parse_operand(k, operand)?;
    let name = req.raw_iname()?;
    // xlator_add gets `xf | hdr->xt`: the operand's low bits join the
    // header's type (basic_validations: xt_validate), its bits 2-3 are the
    // framework (xf_validate).
    let numbering = k.profile().numbering;
    let xt_mask = if numbering == Numbering::MapT { 0x07 } else { 0x03 };
    if !matches!((xf | xlator.xt()) & xt_mask, 1 | 2) {
        return Err(Failure::new(EINVAL, xt_validate_errmsg(k)));
    }
    // xf_validate: without xtables support (NETFILTER_XTABLES unset in
    // the kernel, Debian trixie's 6.12 build of 4.1.13), only Netfilter.
    let xtables = k.build().xtables;
    let framework = Framework::from_flags_in(xf, numbering)
        .filter(|f| xtables || *f == Framework::Netfilter)
        .ok_or_else(|| {
            Failure::new(
                EINVAL,
                if numbering == Numbering::MapT
                    && k.profile().is_before("4.2.0-rc2")
                {
                    // v4.2.0-rc1 src/common/types.h XF_VALIDATE_ERRMSG.
                    "The instance framework must be either Netfilter or iptables."
                } else if xtables {
                    "Netfilter and iptables are the only available instance frameworks."
                } else {
                    "Netfilter is the only available instance framework."
                },
            )
        })?;
    if xlator == Xlator::Nat64 && pool6.is_none() {
        return Err(Failure::new(
            EINVAL,
            "pool6 is mandatory in NAT64 instances.",
        ));
    }
    if let Some((addr, len)) = pool6 {
        // globals_init -> pool6_validate: prefix6_validate (length, then
        // suffix bits), then the RFC 6052 lengths (u-bit check forced off).
        if len > 128 {
            return Err(Failure::new(
                EINVAL,
                format!("Prefix length {len} is too high."),
            ));
        }
        let bit = |i: usize| addr[i / 8] & (0x80 >> (i % 8)) != 0;
        if (usize::from(len)..128).any(bit) {
            return Err(Failure::new(
                EINVAL,
                format!(
                    "'{}/{len}' seems to have a suffix; please fix.",
                    pi6c(&addr)
                ),
            ));
        }
        if ![32, 40, 48, 56, 64, 96].contains(&len) {
            return Err(Failure::new(
                EINVAL,
                format!("{len} is not a valid prefix length (32, 40, 48, 56, 64, 96)."),
            ));
        }
    }
    check_add(k, caller.netns, xlator, &name, framework)
        .map_err(|m| Failure::new(EEXIST, m))?;
    k.insert_instance(caller.netns, xlator, &name, framework, pool6);
    Ok(ack_reply(k, caller, req))
}

/// An IPv6 address as the kernel's `%pI6c` prints it: RFC 5952 zero
/// compression (the first longest run of two or more zero words), and
/// the last 32 bits as a dotted quad for IPv4-mapped and ISATAP addresses.
pub(crate) fn pi6c(a: &[u8; 16]) -> String {
    let w: Vec<u16> =
        a.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    let mapped = w[..5].iter().all(|x| *x == 0) && w[5] == 0xffff;
    let isatap = (w[4] | 0x0200) == 0x0200 && w[5] == 0x5efe;
    let range = if mapped || isatap { 6 } else { 8 };
    let (mut best, mut at) = (0, usize::MAX);
    let mut i = 0;
    while i < range {
        let run = w[i..range].iter().take_while(|x| **x == 0).count();
        if run > best {
            (best, at) = (run, i);
        }
        i += run.max(1);
    }
    if best < 2 {
        at = usize::MAX;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < range {
        if i == at {
            out.push_str("::");
            i += best;
            continue;
        }
        if !out.is_empty() && !out.ends_with(':') {
            out.push(':');
        }
        out.push_str(&format!("{:x}", w[i]));
        i += 1;
    }
    if range == 6 {
        if !out.ends_with(':') {
            out.push(':');
        }
        out.push_str(&format!("{}.{}.{}.{}", a[12], a[13], a[14], a[15]));
    }
    out
}

/// The operand of INSTANCE_ADD (strict, policy {XF: u8, POOL6: nested}):
/// framework byte and optional pool6. A malformed operand goes back to
/// genetlink as a plain error.
fn parse_operand(
    k: &Kernel,
    v: &[u8],
) -> Result<(u8, Option<Prefix6>), Failure> {
    const OPERAND: [Policy; 3] = [Policy::Unspec, Policy::U8, Policy::Nested];
    let attrs = netlink::parse_attrs(v, 0, &OPERAND, Validate::Strict)
        .map_err(|r| Failure::raw(r.errno))?;
    let xf = attrs
        .get(v, InstanceAddAttr::Xf.into())
        .and_then(|x| x.first().copied())
        .ok_or_else(|| {
            Failure::new(
                EINVAL,
                "Invalid request: 'framework' attribute is missing.",
            )
        })?;
    let pool6 = match attrs.get(v, InstanceAddAttr::Pool6.into()) {
        Some(p) if k.profile().prefix_address_unspec() => {
            parse_prefix6_408(p)?
        }
        Some(p) => parse_prefix6(p)?,
        None => None,
    };
    Ok((xf, pool6))
}

/// v4.0.8's `jnla_get_prefix6`, Jool #326 (fixed in 4.0.9 by commit
/// fad9dc98, "Remove NLA_UNSPEC"): `joolnl_prefix6_policy` types the
/// address NLA_UNSPEC, which strict validation (`nla_parse_nested`,
/// Linux 5.2 and later: every kernel here) refuses as an "Unsupported
/// attribute", so no pool6 with an address parses: "The 'pool6'
/// attribute is malformed." (no extack text). Without an address the
/// length is read unchecked (`nla_get_u8` of a missing attribute: a NULL
/// dereference, not emulated), then the address is missing. Seen in the
/// real 4.0.8 module's answers (fixtures/matrix/probe/4.0.8@bullseye).
fn parse_prefix6_408(v: &[u8]) -> Result<Option<Prefix6>, Failure> {
    const PREFIX6: [Policy; 3] = [Policy::Unspec, Policy::Unspec, Policy::U8];
    let attrs = netlink::parse_attrs(v, 0, &PREFIX6, Validate::Strict)
        .map_err(|r| {
            Failure::new(r.errno, "The 'pool6' attribute is malformed.")
        })?;
    if attrs.get(v, 2).is_none() {
        return Err(Failure::new(
            ENOSYS,
            "jool-sim does not emulate this: v4.0.8 dereferences the missing pool6 length.",
        ));
    }
    Err(Failure::new(
        EINVAL,
        "Invalid request: 'IPv6 prefix address' attribute is missing.",
    ))
}

/// `jnla_get_prefix6_optional`: {ADDR: binary(16), LEN: u8}.
fn parse_prefix6(v: &[u8]) -> Result<Option<Prefix6>, Failure> {
    const PREFIX6: [Policy; 3] =
        [Policy::Unspec, Policy::Binary(16), Policy::U8];
    let attrs = netlink::parse_attrs(v, 0, &PREFIX6, Validate::Strict)
        .map_err(|r| {
            // jnla_parse_nested passes nla_parse_nested's errno on
            // (ERANGE for a 17-byte address, EINVAL for a bad length).
            let why = r.extack.msg.unwrap_or_default();
            Failure::new(
                r.errno,
                format!("The 'pool6' attribute is malformed: {why}"),
            )
        })?;
    let Some(len) = attrs.get(v, 2).and_then(|l| l.first().copied()) else {
        return Err(Failure::new(
            EINVAL,
            "Malformed pool6: length attribute is missing",
        ));
    };
    let Some(addr) = attrs.get(v, 1) else { return Ok(None) };
    let addr: [u8; 16] = addr.try_into().map_err(|_| {
        Failure::new(
            EINVAL,
            format!("Invalid request: IPv6 prefix address has {} bytes instead of 16.", addr.len()),
        )
    })?;
    Ok(Some((addr, len)))
}

/// The kernel's duplicate checks for a new instance: same name, or a
/// second Netfilter instance of the same type in the namespace.
pub(super) fn check_add(
    k: &Kernel,
    netns: NetnsId,
    xlator: Xlator,
    name: &str,
    framework: Framework,
) -> Result<(), String> {
    let Some(ns) = k.namespaces().get(&netns) else { return Ok(()) };
    if ns.instances.contains_key(&(xlator, name.to_owned())) {
        return Err(format!(
            "This namespace already has a Jool instance named '{name}'."
        ));
    }
    let nf = |i: &&super::Instance| {
        i.xlator == xlator && i.framework == Framework::Netfilter
    };
    if framework == Framework::Netfilter
        && ns.instances.values().any(|i| nf(&i))
    {
        return Err(
            "This namespace already has a Netfilter Jool instance.".to_owned()
        );
    }
    Ok(())
}

/// `handle_instance_rm`.
fn instance_rm(
    k: &mut Kernel,
    caller: &Caller,
    req: &Request<'_>,
) -> Result<Vec<u8>, Failure> {
    let xlator = req.start(k, caller, true)?;
    let name = req.raw_iname()?;
    k.remove_instance(caller.netns, xlator, &name).map_err(|_| {
        Failure::new(ESRCH, "The requested instance does not exist.")
    })?;
    Ok(ack_reply(k, caller, req))
}

/// `handle_instance_flush`: removes every instance of the caller's netns.
fn instance_flush(
    k: &mut Kernel,
    caller: &Caller,
    req: &Request<'_>,
) -> Result<Vec<u8>, Failure> {
    let xlator = req.start(k, caller, true)?;
    if let Some(ns) = k.namespaces.get_mut(&caller.netns) {
        ns.instances.retain(|(x, _), _| *x != xlator);
    }
    Ok(ack_reply(k, caller, req))
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

#[cfg(test)]
mod pi6c_test {
    use super::pi6c;
    use std::net::Ipv6Addr;

    fn f(s: &str) -> String {
        pi6c(&s.parse::<Ipv6Addr>().unwrap().octets())
    }

    #[test]
    fn test_pi6c_is_rfc5952_with_the_kernels_dotted_quads() {
        assert_eq!(f("64:ff9b::1"), "64:ff9b::1");
        assert_eq!(f("2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1");
        assert_eq!(f("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");
        assert_eq!(f("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
        assert_eq!(f("::"), "::");
        assert_eq!(f("::1"), "::1");
        assert_eq!(f("1::"), "1::");
        assert_eq!(f("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
        assert_eq!(f("fe80::5efe:c000:201"), "fe80::5efe:192.0.2.1");
        assert_eq!(f("fe80::200:5efe:c000:201"), "fe80::200:5efe:192.0.2.1");
        // Not ISATAP: Rust and the kernel agree.
        for s in ["64:ff9b::c000:201", "1:2:3:4:5:6:7:8", "1:0:0:2::3"] {
            assert_eq!(f(s), s.parse::<Ipv6Addr>().unwrap().to_string());
        }
    }
}
