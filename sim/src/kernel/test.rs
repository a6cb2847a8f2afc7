//! One test per kernel check and error text, across the release ranges
//! whose rules differ (the 4.1.9 range is also covered byte for byte by
//! the conformance replay in tests/conformance.rs).

use super::*;
use crate::wire::{
    jool::{Layout, Repr as JoolHdr, FLAG_ERROR, FLAG_M},
    legacy,
    nla::{self, NlasIterator, Writer},
};

const FAMILY: u16 = 0x20;

fn kernel(release: &str) -> Kernel {
    let mut k = Kernel::new(Profile::get(release).unwrap());
    for x in [Xlator::Siit, Xlator::Nat64] {
        k.add_instance(INIT_NETNS, x, "default", Framework::Netfilter)
            .unwrap();
    }
    k
}

/// A joolnl request: header of `layout`, `version`, `xt`, `iname`.
fn request(
    cmd: u8,
    layout: Layout,
    version: u32,
    xt: u8,
    iname: &str,
    attrs: &[u8],
) -> Vec<u8> {
    let h = JoolHdr::request(layout, version, xt, iname).unwrap().to_vec();
    let mut w = netlink::begin(FAMILY, nlmsg::F_REQUEST, 5, 0, cmd, 1);
    w.bytes(&h).bytes(attrs);
    netlink::finish(w)
}

fn stats(k: &Kernel, xt: u8, iname: &str) -> Vec<u8> {
    let p = k.profile();
    let layout = Layout::from_len(p.header_len()).unwrap();
    request(7, layout, p.wire_version, xt, iname, &[])
}

/// (code, message) of a Jool error reply, or None for another reply.
fn jool_error(reply: &[u8], hdr_len: usize) -> Option<(u16, Option<String>)> {
    let flags_at = 20 + if hdr_len == 28 { 9 } else { 5 };
    if reply.get(flags_at)? & FLAG_ERROR == 0 {
        return None;
    }
    let mut code = None;
    let mut msg = None;
    for a in NlasIterator::new(&reply[20 + hdr_len..]).flatten() {
        match a.kind() {
            1 => code = Some(u16::from_le_bytes([a.value()[0], a.value()[1]])),
            2 => {
                msg = Some(
                    String::from_utf8_lossy(
                        a.value().split(|b| *b == 0).next()?,
                    )
                    .into(),
                )
            }
            _ => {}
        }
    }
    Some((code?, msg))
}

fn one(k: &mut Kernel, caller: &Caller, req: &[u8]) -> Vec<u8> {
    let mut r = k.handle(caller, req);
    assert_eq!(r.len(), 1, "expected one reply");
    r.remove(0)
}

fn netlink_errno(reply: &[u8]) -> i32 {
    assert_eq!(u16::from_le_bytes([reply[4], reply[5]]), nlmsg::NLMSG_ERROR);
    -i32::from_le_bytes(reply[16..20].try_into().unwrap())
}

#[test]
fn test_stats_needs_net_admin_before_4_1_5() {
    let mut k = kernel("4.1.4");
    let req = stats(&k, 1, "default");
    let r = one(&mut k, &Caller::unprivileged(INIT_NETNS), &req);
    assert_eq!(
        jool_error(&r, 24),
        Some((
            1,
            Some(
                "CAP_NET_ADMIN capability required. (Maybe try su or sudo?)"
                    .into()
            )
        ))
    );
    let mut k = kernel("4.1.5");
    let req = stats(&k, 1, "default");
    let r = one(&mut k, &Caller::unprivileged(INIT_NETNS), &req);
    assert_eq!(jool_error(&r, 28), None);
    assert_eq!(r.len(), 48 + 68 * 12);
}

#[test]
fn test_other_ops_need_net_admin() {
    let mut k = kernel("4.1.9");
    for cmd in [0, 1, 2, 3, 4, 8] {
        let req = request(cmd, Layout::V2, 0x0401_0900, 1, "default", &[]);
        let r = one(&mut k, &Caller::unprivileged(INIT_NETNS), &req);
        assert_eq!(jool_error(&r, 28).map(|e| e.0), Some(1), "cmd {cmd}");
    }
}

#[test]
fn test_version_rules() {
    // Exact kernels reject any other word; major.minor kernels accept the
    // same major.minor, including the 4.2.0-rc tags' 4.1.255.x.
    let mut k = kernel("4.1.8");
    let r = one(
        &mut k,
        &Caller::root(INIT_NETNS),
        &request(7, Layout::V2, 0x0401_0900, 1, "default", &[]),
    );
    assert_eq!(
        jool_error(&r, 28),
        Some((22, Some("Version mismatch. The userspace client's version is 4.1.9.0,\nbut the kernel module is 4.1.8.0.\nPlease update the kernel module.".into())))
    );
    let mut k = kernel("4.1.13");
    let r = one(
        &mut k,
        &Caller::root(INIT_NETNS),
        &request(7, Layout::V2, 0x0401_ff05, 1, "default", &[]),
    );
    assert_eq!(jool_error(&r, 28), None);
    let r = one(
        &mut k,
        &Caller::root(INIT_NETNS),
        &request(7, Layout::V2, 0x0400_0900, 1, "default", &[]),
    );
    assert!(jool_error(&r, 28)
        .unwrap()
        .1
        .unwrap()
        .ends_with("Please update the userspace client."));
}

#[test]
fn test_magic_checked_from_4_1_5_only() {
    let mut k = kernel("4.1.9");
    let mut req = stats(&k, 1, "default");
    req[20..24].copy_from_slice(b"JOOL");
    let r = one(&mut k, &Caller::root(INIT_NETNS), &req);
    assert_eq!(
        jool_error(&r, 28),
        Some((22, Some("Don't know what to do: The packet I just received does not follow Jool's protocol.".into())))
    );
}

#[test]
fn test_short_header_is_a_netlink_error() {
    // A 24-byte-header client against a 28-byte-header kernel.
    let mut k = kernel("4.1.9");
    let req = request(7, Layout::V1, 0x0401_0400, 1, "default", &[]);
    assert_eq!(
        netlink_errno(&one(&mut k, &Caller::root(INIT_NETNS), &req)),
        EINVAL
    );
}

#[test]
fn test_stateness_messages() {
    let mut k = kernel("4.1.9");
    k.set_modules(true, false);
    let req = stats(&k, 2, "default");
    let r = one(&mut k, &Caller::root(INIT_NETNS), &req);
    assert_eq!(
        jool_error(&r, 28).unwrap().1.as_deref(),
        Some("NAT64 Jool has not been modprobed. (Try `modprobe jool`)")
    );
    k.set_modules(false, true);
    let req = stats(&k, 1, "default");
    let r = one(&mut k, &Caller::root(INIT_NETNS), &req);
    assert_eq!(
        jool_error(&r, 28).unwrap().1.as_deref(),
        Some("SIIT Jool has not been modprobed. (Try `modprobe jool_siit`)")
    );
}

#[test]
fn test_instance_lookup_is_per_namespace_and_type() {
    let mut k = kernel("4.1.9");
    k.remove_instance(INIT_NETNS, Xlator::Nat64, "default").unwrap();
    let req = stats(&k, 2, "default");
    let r = one(&mut k, &Caller::root(INIT_NETNS), &req);
    assert_eq!(jool_error(&r, 28).unwrap().0, 3);
    let req = stats(&k, 1, "default");
    let r = one(&mut k, &Caller::root(99), &req);
    assert_eq!(
        jool_error(&r, 28).unwrap().1.as_deref(),
        Some("This namespace lacks an instance named 'default'.")
    );
}

#[test]
fn test_rc2_zeroes_flags_and_omits_empty_message() {
    let mut k = kernel("4.2.0-rc2");
    let mut req = stats(&k, 1, "default");
    req[29] = FLAG_M;
    let r = one(&mut k, &Caller::root(INIT_NETNS), &req);
    assert_eq!(r[29], 0, "rc2 replies carry flags 0");
    let mut k419 = kernel("4.1.9");
    let r = one(&mut k419, &Caller::root(INIT_NETNS), &req);
    assert_eq!(r[29], FLAG_M, "4.1.x echoes the request's flags");
}

#[test]
fn test_pagination_sets_m_and_error_when_nothing_fits() {
    let mut k = kernel("4.1.9");
    k.set_msg_budget(48 + 3 * 12);
    let req = stats(&k, 1, "default");
    let r = one(&mut k, &Caller::root(INIT_NETNS), &req);
    assert_eq!(r.len(), 48 + 36);
    assert_eq!(r[29] & FLAG_M, FLAG_M);
    k.set_msg_budget(50);
    let r = one(&mut k, &Caller::root(INIT_NETNS), &req);
    assert_eq!(jool_error(&r, 28).unwrap().0, 90, "EMSGSIZE");
}

#[test]
fn test_offset_u8_numbering_of_mapt_releases() {
    let mut k = kernel("4.2.0-rc3");
    let mut w = Writer::new();
    w.u8(10, 80);
    let req = request(7, Layout::V2, 0x0401_ff05, 1, "default", w.as_slice());
    let r = one(&mut k, &Caller::root(INIT_NETNS), &req);
    assert_eq!(r.len(), 48 + 12 * 12, "ids 81..92");
    // Type 9 is JNLAR_OFFSET (nested) there: a u8 in it is rejected.
    let mut w = Writer::new();
    w.u8(9, 80);
    let req = request(7, Layout::V2, 0x0401_ff05, 1, "default", w.as_slice());
    assert_eq!(
        netlink_errno(&one(&mut k, &Caller::root(INIT_NETNS), &req)),
        EINVAL
    );
}

/// Jool #326: v4.0.8's pool6 address policy is NLA_UNSPEC, which strict
/// validation refuses, so every `instance add --pool6` fails (the real
/// 4.0.8 module: fixtures/matrix/probe/4.0.8@bullseye, instance_add_*);
/// 4.0.9 accepts the same request.
#[test]
fn test_4_0_8_refuses_every_pool6_with_an_address() {
    let add = |release: &str, addr: bool| {
        let mut k = Kernel::new(Profile::get(release).unwrap());
        let mut w = Writer::new();
        let op = w.begin_nest(10 | nla::F_NESTED);
        w.u8(1, 4);
        let p6 = w.begin_nest(2 | nla::F_NESTED);
        if addr {
            w.attr(
                1,
                &[0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            );
        }
        w.u8(2, 96);
        w.end_nest(p6);
        w.end_nest(op);
        let p = k.profile();
        let layout = Layout::from_len(p.header_len()).unwrap();
        let req =
            request(1, layout, p.wire_version, 1, "default", &w.into_vec());
        let reply = one(&mut k, &Caller::root(INIT_NETNS), &req);
        (
            jool_error(&reply, p.header_len()),
            k.instance(INIT_NETNS, Xlator::Siit, "default").is_some(),
        )
    };
    let malformed =
        Some((22, Some("The 'pool6' attribute is malformed.".into())));
    assert_eq!(add("4.0.8", true), (malformed, false));
    let missing =
        "Invalid request: 'IPv6 prefix address' attribute is missing.";
    assert_eq!(add("4.0.8", false), (Some((22, Some(missing.into()))), false));
    assert_eq!(add("4.0.9", true), (None, true));
}

#[test]
fn test_unknown_command_and_dump() {
    let mut k = kernel("4.1.9");
    let req = request(30, Layout::V2, 0x0401_0900, 1, "default", &[]);
    assert_eq!(
        netlink_errno(&one(&mut k, &Caller::root(INIT_NETNS), &req)),
        EOPNOTSUPP
    );
    let mut k = kernel("4.2.0-rc1");
    let req = request(33, Layout::V1, 0x0401_ff02, 1, "default", &[]);
    let r = one(&mut k, &Caller::root(INIT_NETNS), &req);
    assert_eq!(
        jool_error(&r, 24).unwrap().0,
        38,
        "rc1 has 34 ops; unemulated ones say so"
    );
}

#[test]
fn test_no_module_means_no_family() {
    let mut k = kernel("4.1.9");
    k.set_modules(false, false);
    let req = stats(&k, 1, "default");
    assert_eq!(
        netlink_errno(&one(&mut k, &Caller::root(INIT_NETNS), &req)),
        ENOENT
    );
}

fn legacy_request(
    k: &Kernel,
    b4: [u8; 4],
    mode: u8,
    op: u8,
    family: u16,
) -> Vec<u8> {
    let data = legacy::request_bytes(b4, k.profile().wire_version, mode, op);
    let mut w = netlink::begin(family, nlmsg::F_REQUEST, 1, 0, 0, 1);
    w.attr(legacy::ATTR_DATA, &data);
    netlink::finish(w)
}

/// (error_code, payload) of a legacy reply.
fn legacy_reply(r: &[u8]) -> (u16, Vec<u8>) {
    let a = NlasIterator::new(&r[20..]).next().unwrap().unwrap();
    let h = legacy::ResponseHdr::new_checked(a.value()).unwrap();
    (h.error_code(), h.payload().to_vec())
}

#[test]
fn test_legacy_stats_and_families() {
    let mut k = kernel("4.0.4");
    let names: Vec<&str> = k.families().iter().map(|f| f.name).collect();
    assert_eq!(names, ["SIIT_Jool", "NAT64_Jool"]);
    let req = legacy_request(&k, [b'u', 0, 0, 0], 1, 0, FAMILY + 1);
    let (code, payload) =
        legacy_reply(&one(&mut k, &Caller::root(INIT_NETNS), &req));
    assert_eq!((code, payload.len()), (0, 63 * 8));
    let mut k = kernel("4.0.7");
    assert_eq!(k.families()[0].name, "Jool");
    let req = legacy_request(&k, [2, b'u', 0, 0], 2, 0, FAMILY);
    let (code, payload) =
        legacy_reply(&one(&mut k, &Caller::root(INIT_NETNS), &req));
    assert_eq!((code, payload.len()), (0, 66 * 8));
}

#[test]
fn test_legacy_privilege_and_texts() {
    let mut k = kernel("4.0.5");
    let req = legacy_request(&k, [b'u', 0, 0, 0], 2, 0, FAMILY);
    let (code, payload) =
        legacy_reply(&one(&mut k, &Caller::unprivileged(INIT_NETNS), &req));
    assert_eq!(code, 1);
    assert_eq!(payload, b"CAP_NET_ADMIN capability required. (Maybe try using su or sudo?)\n\0");
    let mut k = kernel("4.0.0");
    let req = legacy_request(&k, [b'n', b'u', 0, 0], 1, 0, FAMILY);
    let (code, payload) =
        legacy_reply(&one(&mut k, &Caller::root(INIT_NETNS), &req));
    assert_eq!(code, 22);
    assert_eq!(
        payload,
        b"The userspace client is NAT64 but the kernel module is SIIT. Please match us correctly.\n\0"
    );
}

#[test]
fn test_legacy_bad_magic_is_a_netlink_error() {
    let mut k = kernel("4.0.7");
    let mut req = legacy_request(&k, [1, b'u', 0, 0], 2, 0, FAMILY);
    req[24] = b'J';
    assert_eq!(
        netlink_errno(&one(&mut k, &Caller::root(INIT_NETNS), &req)),
        EINVAL
    );
}

#[test]
fn test_malformed_datagrams_never_panic() {
    let mut k = kernel("4.1.9");
    let c = Caller::root(INIT_NETNS);
    let base = stats(&k, 1, "default");
    for cut in 0..base.len() {
        let mut d = base[..cut].to_vec();
        if d.len() >= 4 {
            d[..4].copy_from_slice(&(cut as u32).to_le_bytes());
        }
        let _ = k.handle(&c, &d);
    }
    assert_eq!(k.sendmsg(&c, &[]), Err(ENODATA));
    assert_eq!(k.sendmsg(&c, &vec![0; MAX_DATAGRAM + 1]), Err(EMSGSIZE));
}
