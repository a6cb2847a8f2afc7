//! Requests, serialized with neli exactly as libnl-based Jool clients
//! serialize them (flags `NLM_F_REQUEST` only, genl version 1).

use std::io::Cursor;

use neli::{
    consts::{
        genl::{CtrlAttr, CtrlCmd},
        nl::{GenlId, NlmF},
    },
    genl::{
        AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, NlattrBuilder,
        NoUserHeader,
    },
    nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder},
    types::{Buffer, GenlBuffer},
    Size, ToBytes,
};

/// One attribute to send: type, value, and whether it holds attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attr {
    pub(crate) kind: u16,
    pub(crate) value: Vec<u8>,
    pub(crate) nested: bool,
}

impl Attr {
    pub(crate) fn u8(kind: u16, v: u8) -> Self {
        Self { kind, value: vec![v], nested: false }
    }

    pub(crate) fn bytes(kind: u16, value: Vec<u8>) -> Self {
        Self { kind, value, nested: false }
    }

    pub(crate) fn nested(kind: u16, value: Vec<u8>) -> Self {
        Self { kind, value, nested: true }
    }
}

/// Serializes `attrs` (without the genl header) with neli, for nesting.
pub(crate) fn attrs_bytes(attrs: &[Attr]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in genl_attrs(attrs).iter() {
        let mut c = Cursor::new(vec![0; a.padded_size()]);
        // Serializing into an in-memory vector cannot fail.
        a.to_bytes(&mut c).expect("in-memory serialization");
        out.extend_from_slice(c.get_ref());
    }
    out
}

fn genl_attrs(attrs: &[Attr]) -> GenlBuffer<u16, Buffer> {
    attrs
        .iter()
        .map(|a| {
            let ty = AttrTypeBuilder::default()
                .nla_type(a.kind)
                .nla_nested(a.nested)
                .build()
                .expect("every field of the attribute type is set");
            NlattrBuilder::default()
                .nla_type(ty)
                .nla_payload(Buffer::from(a.value.clone()))
                .build()
                .expect("every field of the attribute is set")
        })
        .collect()
}

fn serialize<P: Size + ToBytes + std::fmt::Debug>(
    kind: u16,
    seq: u32,
    pid: u32,
    payload: P,
) -> Vec<u8> {
    let msg: Nlmsghdr<u16, P> = NlmsghdrBuilder::default()
        .nl_type(kind)
        .nl_flags(NlmF::REQUEST)
        .nl_seq(seq)
        .nl_pid(pid)
        .nl_payload(NlPayload::Payload(payload))
        .build()
        .expect("every field of the message is set");
    let mut c = Cursor::new(vec![0; msg.padded_size()]);
    msg.to_bytes(&mut c).expect("in-memory serialization");
    c.into_inner()
}

/// `CTRL_CMD_GETFAMILY` by name, as `genl_ctrl_resolve()` sends it.
pub(crate) fn get_family(name: &str, seq: u32, pid: u32) -> Vec<u8> {
    let ty = AttrTypeBuilder::default()
        .nla_type(CtrlAttr::FamilyName)
        .build()
        .expect("every field of the attribute type is set");
    let attr = NlattrBuilder::default()
        .nla_type(ty)
        .nla_payload(name)
        .build()
        .expect("every field of the attribute is set");
    let genl: Genlmsghdr<CtrlCmd, CtrlAttr> = GenlmsghdrBuilder::default()
        .cmd(CtrlCmd::Getfamily)
        .version(1)
        .attrs(std::iter::once(attr).collect::<GenlBuffer<_, _>>())
        .build()
        .expect("every field of the genl header is set");
    serialize(u16::from(GenlId::Ctrl), seq, pid, genl)
}

/// A Jool request (4.0.8+): genl `cmd`, version 1, the Jool header as
/// the genl user header, then `attrs`.
pub(crate) fn jool(
    family: u16,
    seq: u32,
    pid: u32,
    cmd: u8,
    header: &[u8],
    attrs: &[Attr],
) -> Vec<u8> {
    match header.len() {
        28 => jool_sized::<28>(family, seq, pid, cmd, header, attrs),
        _ => jool_sized::<24>(family, seq, pid, cmd, header, attrs),
    }
}

fn jool_sized<const N: usize>(
    family: u16,
    seq: u32,
    pid: u32,
    cmd: u8,
    header: &[u8],
    attrs: &[Attr],
) -> Vec<u8> {
    let mut h = [0u8; N];
    h.copy_from_slice(&header[..N]);
    let genl: Genlmsghdr<u8, u16, [u8; N]> = GenlmsghdrBuilder::default()
        .cmd(cmd)
        .version(1)
        .header(h)
        .attrs(genl_attrs(attrs))
        .build_with_header()
        .expect("every field of the genl header is set");
    serialize(family, seq, pid, genl)
}

/// A 4.0.0 – 4.0.7 request: genl cmd 0, version 1, optional `ATTR_INAME`,
/// then `ATTR_DATA` (request_hdr + payload).
pub(crate) fn legacy(
    family: u16,
    seq: u32,
    pid: u32,
    iname: Option<&str>,
    data: &[u8],
) -> Vec<u8> {
    let mut attrs = Vec::new();
    if let Some(name) = iname {
        let mut v = name.as_bytes().to_vec();
        v.push(0);
        attrs.push(Attr::bytes(jool_sim::wire::legacy::ATTR_INAME, v));
    }
    attrs.push(Attr::bytes(jool_sim::wire::legacy::ATTR_DATA, data.to_vec()));
    let genl: Genlmsghdr<u8, u16, NoUserHeader> = GenlmsghdrBuilder::default()
        .cmd(jool_sim::wire::legacy::JOOL_COMMAND)
        .version(1)
        .attrs(genl_attrs(&attrs))
        .build()
        .expect("every field of the genl header is set");
    serialize(family, seq, pid, genl)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_get_family_matches_libnl() {
        // fixtures/captures/4.1.9/netlink/*.strace.txt: the real client's
        // GETFAMILY payload after the nlmsghdr.
        let m = get_family("Jool", 7, 9);
        assert_eq!(&m[..4], &32u32.to_le_bytes());
        assert_eq!(&m[4..8], &[0x10, 0, 1, 0]);
        assert_eq!(
            &m[16..],
            b"\x03\x01\x00\x00\x09\x00\x02\x00Jool\x00\x00\x00\x00"
        );
    }

    #[test]
    fn test_stats_request_matches_the_real_client() {
        // fixtures/conformance-4.1.9 `stats_siit` (seq 4, pid 0): byte for
        // byte what `jool_siit stats display` 4.1.9 sends.
        let hdr = jool_sim::wire::jool::Repr::request(
            jool_sim::wire::jool::Layout::V2,
            0x0401_0900,
            1,
            "default",
        )
        .unwrap();
        let m = jool(0x20, 4, 0, 7, &hdr.to_vec(), &[]);
        let want = "30000000200001000400000000000000070100006a6f6f6c040109000100000064656661756c74000000000000000000";
        let got = jool_sim::wire::hex::encode(&m);
        assert_eq!(got, want);
        let with_offset =
            jool(0x20, 4, 0, 7, &hdr.to_vec(), &[Attr::u8(9, 30)]);
        assert_eq!(&with_offset[48..], &[5, 0, 9, 0, 30, 0, 0, 0]);
        assert_eq!(with_offset[0], 56);
    }

    #[test]
    fn test_legacy_request_layout() {
        let data = jool_sim::wire::legacy::request_bytes(
            [1, b'u', 0, 0],
            0x0400_0700,
            2,
            0,
        );
        let m = legacy(0x20, 1, 1, None, &data);
        assert_eq!(m.len(), 40);
        assert_eq!(&m[16..24], &[0, 1, 0, 0, 20, 0, 2, 0]);
        let m = legacy(0x20, 1, 1, Some("abc"), &data);
        assert_eq!(&m[20..28], &[8, 0, 1, 0, b'a', b'b', b'c', 0]);
    }
}
