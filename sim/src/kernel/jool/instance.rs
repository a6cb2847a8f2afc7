//! The instance operations (`nl/instance.c`): INSTANCE_FOREACH, HELLO,
//! ADD, RM and FLUSH, with the operand and prefix parsing of ADD.

use super::*;

/// `handle_instance_foreach`: every instance of the request's translator
/// type, in every namespace (the real module does not filter by netns),
/// after the one named by `JNLAR_OFFSET` (none matching: ESRCH with an
/// empty message), as many as fit (then the M flag). The real module walks
/// a hash table; the simulator lists in (netns, name) order.
pub(super) fn instance_foreach(
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
pub(in crate::kernel) fn default_netns_tag(ns: NetnsId) -> u32 {
    (ns as u32) ^ 0xb309_dcc0 ^ 1
}

/// `handle_instance_hello`: alive (0) or dead (1) in the caller's netns,
/// looked up by the raw name ("" is not "default" here).
pub(super) fn instance_hello(
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
pub(super) fn instance_add(
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
fn pi6c(a: &[u8; 16]) -> String {
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
pub(in crate::kernel) fn check_add(
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
    let nf = |i: &&crate::kernel::Instance| {
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
pub(super) fn instance_rm(
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
pub(super) fn instance_flush(
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

#[cfg(test)]
mod test {
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
