//! The 4.0.x answers the real modules gave in the probe
//! (fixtures/matrix/probe/4.0.{4,7}@bullseye, Debian bullseye's 5.10),
//! byte for byte: nlctrl's view of the legacy family, instance TEST
//! without a body, and the instance listing with its pagination.

use super::*;
use crate::wire::{
    ctrl, hex,
    legacy::{self, mask_instance_entries, mask_response_padding},
};

/// The 4.0.x probe's kernel: family ids and group as the guest had them,
/// the `default` instances of the `root` run.
fn kernel(release: &str, with_instances: bool) -> Kernel {
    let mut k = Kernel::new(Profile::get(release).unwrap());
    k.set_family_id(0x1d);
    k.set_mcast_group_id(5);
    if with_instances {
        for x in [Xlator::Siit, Xlator::Nat64] {
            k.add_instance(INIT_NETNS, x, "default", Framework::Netfilter)
                .unwrap();
        }
    }
    k
}

/// The only reply to `request_hex`, masked as the probe compares it.
fn answer(k: &mut Kernel, request_hex: &str) -> Vec<u8> {
    let caller = Caller { port_id: 120, ..Caller::root(INIT_NETNS) };
    let replies = k.sendmsg(&caller, &hex::decode(request_hex).unwrap());
    let replies = replies.unwrap();
    assert_eq!(replies.len(), 1);
    masked(&replies[0])
}

fn masked(d: &[u8]) -> Vec<u8> {
    let mut v = nlmsg::masked(d);
    mask_response_padding(&mut v);
    mask_instance_entries(&mut v);
    v
}

fn real(reply_hex: &str) -> Vec<u8> {
    masked(&hex::decode(reply_hex).unwrap())
}

/// 4.0.7 root run: CTRL_CMD_GETFAMILY "Jool". The legacy op has a doit
/// and no policy: GENL_CMD_CAP_DO only (4.0.8+ report DO | HASPOL).
#[test]
fn test_legacy_op_flags_are_do_only() {
    let mut k = kernel("4.0.7", true);
    let got = answer(
        &mut k,
        "2000000010000100010000000000000003010000090002004a6f6f6c00000000",
    );
    assert_eq!(got, real("7400000010000000010000007800000001020000090002004a6f6f6c00000000060001001d0000000800030001000000080004000000000008000500030000001800060014000100080001000000000008000200020000001c0007001800010008000200050000000a0001006a6f6f6c64000000"));
    let ops = |release: &str| {
        let mut w = netlink::begin(
            nlmsg::GENL_ID_CTRL,
            nlmsg::F_REQUEST,
            1,
            0,
            crate::wire::genl::CTRL_CMD_GETFAMILY,
            1,
        );
        w.string(crate::wire::genl::CTRL_ATTR_FAMILY_NAME, b"Jool");
        let req = netlink::finish(w);
        let mut k = Kernel::new(Profile::get(release).unwrap());
        let d = k.sendmsg(&Caller::root(INIT_NETNS), &req).unwrap();
        ctrl::Family::find(&d[0]).unwrap().ops
    };
    assert_eq!(ops("4.0.7"), vec![(0, 0x2)]);
    let modern = ops("4.0.9");
    assert!(!modern.is_empty());
    assert!(modern.iter().all(|&(_, f)| f == 0x2 | 0x8), "{modern:?}");
}

/// 4.0.4 root run: "NAT64_Jool" (registered after "SIIT_Jool") has its
/// own `joold` group, the next id.
#[test]
fn test_4_0_4_nat64_family_has_its_own_group() {
    let mut k = kernel("4.0.4", true);
    let got = answer(&mut k, "24000000100001000200000000000000030100000f0002004e415436345f4a6f6f6c0000");
    assert_eq!(got, real("78000000100000000200000078000000010200000f0002004e415436345f4a6f6f6c0000060001001e0000000800030001000000080004000000000008000500030000001800060014000100080001000000000008000200020000001c0007001800010008000200060000000a0001006a6f6f6c64000000"));
}

/// 4.0.7 root run: OP_TEST with no body after `request_hdr`. The handler
/// reads `hello.iname` past `ATTR_DATA`, from the zeroed tailroom: the
/// empty name, valid and not found, so "dead" (1), not an error.
#[test]
fn test_legacy_hello_without_body_is_dead() {
    let mut k = kernel("4.0.7", true);
    let got = answer(&mut k, "340000001d0001001300000000000000000100000c00010064656661756c7400140002006a6f6f6c017500000400070000060000");
    assert_eq!(got, real("300000001d000000130000007800000000010000190002006a6f6f6c0175000004000700000600000000004001000000"));
    // With the name in the body: alive (0).
    let with_name = hello(&k, b"default\0");
    let got = answer(&mut k, &hex::encode(&with_name));
    assert_eq!(got[got.len() - 4..], [0, 0, 0, 0]);
}

/// A 4.0.7 MODE_INSTANCE request for SIIT with `body` after the header.
fn instance_request(k: &Kernel, op: u8, body: &[u8]) -> Vec<u8> {
    let b4 = [crate::wire::jool::XT_SIIT, b'u', 0, 0];
    let mut data =
        legacy::request_bytes(b4, k.profile().wire_version, 0, op).to_vec();
    data.extend_from_slice(body);
    let mut w = netlink::begin(0x1d, nlmsg::F_REQUEST, 7, 0, 0, 1);
    w.attr(legacy::ATTR_DATA, &data);
    netlink::finish(w)
}

fn hello(k: &Kernel, name: &[u8]) -> Vec<u8> {
    instance_request(k, legacy::ConfigOp::Test.into(), name)
}

/// 4.0.7 and 4.0.4 root runs, and 4.0.7 siitonly: the instance listing,
/// entries compared but for the namespace pointer and stack bytes.
#[test]
fn test_legacy_instance_foreach_matches_the_real_listing() {
    let mut k = kernel("4.0.7", true);
    k.set_netns_tag(INIT_NETNS, 0x93c1_6840);
    let req = "340000001d0001001400000000000000000100000c00010064656661756c7400140002006a6f6f6c017500000400070000000000";
    let rep = "4c0000001d000000140000007800000000010000380002006a6f6f6c017500000400070000000000000000664068c193ffffffff0464656661756c74000000000000000000c2fe781843cc59";
    assert_eq!(answer(&mut k, req), real(rep));
    // The pointer itself: the tag in its low half, a kernel address.
    let caller = Caller { port_id: 120, ..Caller::root(INIT_NETNS) };
    let d = k.sendmsg(&caller, &hex::decode(req).unwrap()).unwrap();
    assert_eq!(d[0][44..52], hex::decode(&rep[88..104]).unwrap());
    let mut k = kernel("4.0.4", true);
    assert_eq!(
        answer(&mut k, "340000001d0001001500000000000000000100000c00010064656661756c7400140002006a6f6f6c750000000400040000000000"),
        real("4c0000001d000000150000007800000000010000380002006a6f6f6c750000000400040000000000000000c0406861b2ffffffff0164656661756c740000000000000000006e3c88872914a1"),
    );
    let mut k = kernel("4.0.7", false);
    k.set_modules(true, false);
    assert_eq!(
        answer(&mut k, req),
        real("2c0000001d000000140000007800000000010000180002006a6f6f6c01750000040007000000000000000066")
    );
}

/// (pending_data, entries) of a listing reply.
fn listing(d: &[u8]) -> (u8, Vec<Vec<u8>>) {
    let value = &d[nlmsg::HEADER_LEN + 8..];
    let r = legacy::ResponseHdr::new_checked(value).unwrap();
    assert_eq!(r.error_code(), 0);
    let len = usize::from(u16::from_le_bytes([d[20], d[21]])) - 4;
    let entries = value[legacy::RESPONSE_LEN..len].chunks(32);
    (r.pending_data(), entries.map(<[u8]>::to_vec).collect())
}

/// 120 instances: 108 fit in `NLBUFFER_MAX_PAYLOAD` (3500 bytes, the
/// response_hdr first), with `pending_data`; the client's last entry as
/// the offset gives the other 12; an offset no instance matches, ESRCH
/// with an empty message.
#[test]
fn test_legacy_instance_foreach_pages() {
    let mut k = kernel("4.0.7", false);
    for i in 0..120 {
        let name = format!("i{i:03}");
        k.add_instance(INIT_NETNS, Xlator::Siit, &name, Framework::Iptables)
            .unwrap();
    }
    let caller = Caller::root(INIT_NETNS);
    let mut ask = |body: &[u8]| {
        let req = instance_request(&k, 0, body);
        k.sendmsg(&caller, &req).unwrap().remove(0)
    };
    let (pending, first) = listing(&ask(&[]));
    assert_eq!((pending, first.len()), (1, 108));
    assert_eq!(first[0][8], 8, "XF_IPTABLES");
    assert_eq!(&first[107][9..14], b"i107\0");
    let offset = [&[1u8, 0, 0, 0, 0, 0, 0, 0][..], &first[107]].concat();
    let (pending, rest) = listing(&ask(&offset));
    assert_eq!((pending, rest.len()), (0, 12));
    assert_eq!(&rest[0][9..14], b"i108\0");
    let mut gone = offset.clone();
    gone[8 + 9] = b'x';
    let d = ask(&gone);
    let r = legacy::ResponseHdr::new_checked(&d[24..]).unwrap();
    assert_eq!((r.error_code(), r.payload()[0]), (3, 0), "ESRCH, \"\"");
}
