//! The client against the in-process simulator.

use jool_sim::{
    kernel::{Caller, Framework, Kernel, Xlator, INIT_NETNS},
    versions::Profile,
};

use super::*;
use crate::transport::InProcess;

fn kernel(release: &str) -> Kernel {
    let mut k = Kernel::new(Profile::get(release).unwrap());
    for x in [Xlator::Siit, Xlator::Nat64] {
        k.add_instance(INIT_NETNS, x, "default", Framework::Netfilter)
            .unwrap();
    }
    k
}

fn client(
    k: Kernel,
    release: &str,
    caller: Caller,
) -> Client<InProcess<Kernel>> {
    Client::new(
        InProcess::new(k, caller),
        Profile::get(release).unwrap(),
        Xlator::Siit,
    )
}

#[test]
fn test_stats_every_counter_once_in_order() {
    let mut k = kernel("4.1.9");
    k.set_counter(INIT_NETNS, Xlator::Siit, "default", 3, 42).unwrap();
    let got =
        client(k, "4.1.9", Caller::root(INIT_NETNS)).stats(None).unwrap();
    assert_eq!(got.len(), 69);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, (id, _))| usize::from(*id) == i + 1));
    assert_eq!(got[2], (3, 42));
}

#[test]
fn test_pagination_with_a_tiny_budget() {
    let mut k = kernel("4.1.13");
    // Header (48 bytes) plus five 12-byte counters per reply.
    k.set_msg_budget(48 + 5 * 12);
    for id in 1..=83 {
        k.set_counter(
            INIT_NETNS,
            Xlator::Siit,
            "default",
            id,
            u64::from(id) * 10,
        )
        .unwrap();
    }
    let mut c = client(k, "4.1.13", Caller::root(INIT_NETNS));
    let got = c.stats(None).unwrap();
    let want: Vec<(u16, u64)> =
        (1..=83).map(|id| (id, u64::from(id) * 10)).collect();
    assert_eq!(got, want);
}

#[test]
fn test_first_page_alone_loses_counters() {
    // A client that ignored M would stop after the first reply.
    let mut k = kernel("4.1.9");
    k.set_msg_budget(48 + 10 * 12);
    let mut t = InProcess::new(k, Caller::root(INIT_NETNS));
    let hdr = jool_sim::wire::jool::Repr::request(
        Layout::V2,
        0x0401_0900,
        1,
        "default",
    )
    .unwrap();
    t.send(&request::jool(0x20, 1, 1, 7, &hdr.to_vec(), &[])).unwrap();
    let reply = t.recv().unwrap();
    assert_eq!(reply.len(), 48 + 10 * 12);
    assert_eq!(reply[29] & FLAG_M, FLAG_M);
}

#[test]
fn test_module_missing() {
    let mut k = kernel("4.1.9");
    k.set_modules(false, false);
    let e =
        client(k, "4.1.9", Caller::root(INIT_NETNS)).stats(None).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::FamilyMissing(Nle::ObjNotFound)));
    assert_eq!(e.exit_code(), 253);
}

#[test]
fn test_no_instance_in_other_namespace() {
    let e = client(kernel("4.1.9"), "4.1.9", Caller::root(7))
        .stats(None)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "The kernel module returned error 3: This namespace lacks an instance named 'default'."
    );
    assert_eq!(e.exit_code(), 3);
}

#[test]
fn test_stats_privilege_by_release() {
    let e = client(kernel("4.1.4"), "4.1.4", Caller::unprivileged(INIT_NETNS))
        .stats(None)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "The kernel module returned error 1: CAP_NET_ADMIN capability required. (Maybe try su or sudo?)"
    );
    assert_eq!(e.exit_code(), 1);
    let ok =
        client(kernel("4.1.5"), "4.1.5", Caller::unprivileged(INIT_NETNS))
            .stats(None);
    assert_eq!(ok.unwrap().len(), 68);
}

#[test]
fn test_version_mismatch_exact_kernel() {
    let e = client(kernel("4.1.8"), "4.1.9", Caller::root(INIT_NETNS))
        .stats(None)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "The kernel module returned error 22: Version mismatch. The userspace client's version is 4.1.9.0,\nbut the kernel module is 4.1.8.0.\nPlease update the kernel module."
    );
    assert_eq!(e.exit_code(), 22);
}

#[test]
fn test_cross_version_kernel_sends_its_own_ids() {
    // A 4.1.9 client against a 4.1.12 kernel: accepted (major.minor),
    // the kernel sends its 84 ids; labelling is the formatter's business.
    let got = client(kernel("4.1.12"), "4.1.9", Caller::root(INIT_NETNS))
        .stats(None)
        .unwrap();
    assert_eq!(got.len(), 84);
}

#[test]
fn test_24_byte_header_client_rejected_by_magic_kernel() {
    let e = client(kernel("4.1.9"), "4.1.4", Caller::root(INIT_NETNS))
        .stats(None)
        .unwrap_err();
    // genetlink: message shorter than 16 + 4 + 28; the 4.1.4 client does
    // not check magic, so libnl's error surfaces.
    assert!(matches!(e.kind(), ErrorKind::Receive(Nle::Inval)), "{e:?}");
}

#[test]
fn test_instance_add_and_remove() {
    let k = Kernel::new(Profile::get("4.1.9").unwrap());
    let mut c = client(k, "4.1.9", Caller::root(INIT_NETNS));
    c.instance_add(
        Some("t1"),
        Framework::Netfilter,
        parse_prefix6("64:ff9b::/96"),
    )
    .unwrap();
    let again =
        c.instance_add(Some("t1"), Framework::Netfilter, None).unwrap_err();
    assert_eq!(again.exit_code(), 17);
    assert_eq!(c.stats(Some("t1")).unwrap().len(), 69);
    c.instance_remove(Some("t1")).unwrap();
    assert_eq!(c.stats(Some("t1")).unwrap_err().exit_code(), 3);
}

/// 4.0.x: `instance add`/`remove` go as `MODE_INSTANCE` requests with
/// `union request_instance` (FW_* before 4.0.6, XF_* after), and the
/// kernel's answers come back as the release's client prints them.
#[test]
fn test_legacy_instance_add_and_remove() {
    for r in ["4.0.0", "4.0.5", "4.0.6", "4.0.7"] {
        let k = Kernel::new(Profile::get(r).unwrap());
        let mut c = client(k, r, Caller::root(INIT_NETNS));
        c.instance_add(
            Some("t1"),
            Framework::Iptables,
            parse_prefix6("64:ff9b::/96"),
        )
        .unwrap_or_else(|e| panic!("{r}: {e}"));
        let again = c
            .instance_add(Some("t1"), Framework::Netfilter, None)
            .unwrap_err();
        assert_eq!(again.exit_code(), 17, "{r}");
        let n = Profile::get(r).unwrap().stats.len();
        assert_eq!(c.stats(Some("t1")).unwrap().len(), n, "{r}");
        c.instance_remove(Some("t1")).unwrap();
        assert_eq!(c.stats(Some("t1")).unwrap_err().exit_code(), 3, "{r}");
        assert_eq!(c.instance_remove(Some("t1")).unwrap_err().exit_code(), 3);
    }
}

#[test]
fn test_legacy_instance_body_is_the_c_union() {
    // v4.0.7 src/common/config.h: xf, iname[16], then config_prefix6
    // (set, pad, in6_addr at 24, len at 40); sizeof the union is 48.
    let addr = parse_prefix6("64:ff9b::/96").unwrap();
    let b = legacy::instance_add_body(8, b"alpha", Some(addr));
    assert_eq!(b.len(), 48);
    assert_eq!(&b[..7], b"\x08alpha\0");
    assert_eq!(
        (b[20], &b[24..28], b[40]),
        (1, &[0, 0x64, 0xff, 0x9b][..], 96)
    );
    let b = legacy::instance_name_body(b"a-name-too-long-for-it");
    assert_eq!((&b[..15], b[15]), (&b"a-name-too-long"[..], 0));
}

#[test]
fn test_every_release_reads_its_own_kernel() {
    for p in Profile::all() {
        let mut k = Kernel::new(p);
        k.add_instance(
            INIT_NETNS,
            Xlator::Nat64,
            "default",
            Framework::Netfilter,
        )
        .unwrap();
        let mut c = Client::new(
            InProcess::new(k, Caller::root(INIT_NETNS)),
            p,
            Xlator::Nat64,
        );
        let got =
            c.stats(None).unwrap_or_else(|e| panic!("{}: {e}", p.release));
        assert_eq!(got.len(), p.stats.len(), "{}", p.release);
    }
}
