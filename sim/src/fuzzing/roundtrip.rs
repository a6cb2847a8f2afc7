//! `wire_roundtrip`: the codec's promises on any bytes.
//!
//! Input: a mode byte, then the bytes for that mode.
//!
//! - modes 0 – 8, bytes → view → `Repr` → emit: `new_checked` accepts
//!   exactly the buffers long enough, no accessor panics on a checked
//!   view, and emitting what was parsed gives the input back, canonicalized
//!   (reserved bytes and padding zeroed);
//! - mode 9, `Repr` → emit → parse: every value decoded from the input
//!   comes back unchanged.

use super::Input;
use crate::wire::{
    align4, genl,
    jool::{self, Layout},
    legacy,
    nla::{NlasIterator, Writer, F_NESTED},
    nlmsg::{self, ErrorPayload, Messages, Packet},
    Error,
};

/// Runs one input.
pub fn fuzz_wire(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let rest = input.clone().rest();
    match mode % 10 {
        0 => nlmsg_header(rest),
        1 => genl_header(rest),
        2 => jool_header(rest, Layout::V1),
        3 => jool_header(rest, Layout::V2),
        4 => {
            attributes(rest);
        }
        5 => messages(rest),
        6 => error_payload(rest),
        7 => legacy_headers(rest),
        8 => whole_message(rest),
        _ => reprs(&mut input),
    }
}

/// Checks a `new_checked` error against the buffer: too short for the
/// header, or a length field out of range.
fn check_error(e: Error, have: usize, header: usize) {
    match e {
        Error::Truncated { need, have: h, .. } => {
            assert!(need == header && h == have && have < need)
        }
        Error::BadLength { have: h, len, .. } => {
            assert!(h == have && (len < header || len > have))
        }
        other => panic!("{other:?} from new_checked"),
    }
}

fn nlmsg_header(b: &[u8]) {
    let p = match Packet::new_checked(b) {
        Ok(p) => p,
        Err(e) => return check_error(e, b.len(), nlmsg::HEADER_LEN),
    };
    let r = nlmsg::Repr::parse(&p).expect("a checked header parses");
    assert_eq!(p.message(), &b[..r.len as usize]);
    assert_eq!(p.payload(), &b[nlmsg::HEADER_LEN..r.len as usize]);
    let mut out = b.to_vec();
    out[..nlmsg::HEADER_LEN].fill(0xa5);
    r.emit(&mut Packet::new_unchecked(&mut out[..]));
    assert_eq!(out, b, "nlmsghdr parse → emit");
}

fn genl_header(b: &[u8]) {
    let g = match genl::Packet::new_checked(b) {
        Ok(g) => g,
        Err(e) => return check_error(e, b.len(), genl::HEADER_LEN),
    };
    let r = genl::Repr::parse(&g).expect("a checked header parses");
    assert_eq!(
        (g.reserved().to_le_bytes(), g.payload()),
        ([b[2], b[3]], &b[genl::HEADER_LEN..])
    );
    let mut out = b.to_vec();
    out[..genl::HEADER_LEN].fill(0xa5);
    r.emit(&mut genl::Packet::new_unchecked(&mut out[..]));
    let mut want = b.to_vec();
    want[2..4].fill(0); // emit writes reserved = 0
    assert_eq!(out, want, "genlmsghdr parse → emit");
}

fn jool_header(b: &[u8], layout: Layout) {
    let h = match jool::Header::new_checked(b, layout) {
        Ok(h) => h,
        Err(e) => return check_error(e, b.len(), layout.header_len()),
    };
    let r = jool::Repr::parse(&h).expect("a checked header parses");
    let len = layout.header_len();
    assert_eq!((h.as_bytes(), h.payload()), (&b[..len], &b[len..]));
    assert_eq!(r.buffer_len(), len);
    let mut out = vec![0xa5; len];
    r.emit(&mut jool::Header::new_unchecked(&mut out[..], layout));
    match layout {
        Layout::V2 => assert_eq!(out, b[..len], "joolnlhdr parse → emit"),
        // V1 has no magic: the Repr reads as if it were right.
        Layout::V1 => assert!(
            out == b[..len] && r.magic_ok(),
            "joolnlhdr v1 parse → emit"
        ),
    }
    assert_eq!(r.to_vec(), out);
    match r.iname_str() {
        Some(s) => assert!(!s.contains(&0) && r.iname[s.len()] == 0),
        None => assert!(!r.iname.contains(&0)),
    }
}

/// Walks an attribute stream: each attribute is in bounds and re-emits
/// to its bytes with zeroed padding; a stream that does not end on an
/// attribute boundary ends in one `TrailingData` error. Returns whether
/// the stream parsed to its end.
fn attributes(b: &[u8]) -> bool {
    let mut it = NlasIterator::new(b);
    let (mut w, mut want) = (Writer::new(), Vec::new());
    loop {
        let start = it.offset();
        match it.next() {
            None => break,
            Some(Ok(a)) => {
                let len = usize::from(a.length());
                assert!(
                    len >= 4 && start + len <= b.len(),
                    "attribute out of bounds"
                );
                assert_eq!(a.value(), &b[start + 4..start + len]);
                assert_eq!(it.offset(), (start + align4(len)).min(b.len()));
                w.attr(a.raw_kind(), a.value());
                want.extend_from_slice(&b[start..start + len]);
                want.resize(align4(want.len()), 0);
            }
            Some(Err(e)) => {
                let tail = b.len() - start;
                assert!(
                    matches!(e, Error::TrailingData { len, .. } if len==tail),
                    "{e:?}"
                );
                assert!(it.next().is_none(), "the iterator is fused");
                assert_eq!(w.as_slice(), want);
                return false;
            }
        }
    }
    assert_eq!(it.offset(), b.len(), "the walk ends at the end");
    assert_eq!(w.as_slice(), want, "attributes parse → emit");
    true
}

fn messages(b: &[u8]) {
    let mut off = 0;
    for m in Messages::new(b) {
        let len = m.len() as usize;
        assert!(
            len >= nlmsg::HEADER_LEN && off + len <= b.len(),
            "message out of bounds"
        );
        assert_eq!(m.message(), &b[off..off + len]);
        off = (off + align4(len)).min(b.len());
    }
    let rest = &b[off..];
    assert!(
        rest.is_empty() || Packet::new_checked(rest).is_err(),
        "the walk stopped early"
    );
}

fn error_payload(b: &[u8]) {
    let Ok(e) = ErrorPayload::new_checked(b) else {
        return assert!(b.len() < nlmsg::ERROR_CODE_LEN + nlmsg::HEADER_LEN);
    };
    assert_eq!(e.error(), i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    assert_eq!(e.echoed(), &b[4..]);
}

fn legacy_headers(b: &[u8]) {
    if let Ok(r) = legacy::ResponseHdr::new_checked(b) {
        assert_eq!(r.request().as_bytes(), &b[..16]);
        assert_eq!(
            (r.error_code(), r.pending_data()),
            (u16::from_le_bytes([b[16], b[17]]), b[18])
        );
        assert_eq!(r.payload(), &b[legacy::RESPONSE_LEN..]);
    } else {
        assert!(b.len() < legacy::RESPONSE_LEN);
    }
    let Ok(h) = legacy::RequestHdr::new_checked(b) else {
        return assert!(b.len() < legacy::REQUEST_LEN);
    };
    assert_eq!((h.magic(), h.byte4()), ([b[0], b[1], b[2], b[3]], b[4]));
    assert_eq!(
        (h.mode(), h.operation(), h.payload()),
        (b[12], b[13], &b[16..])
    );
    let b4_7 = [b[4], b[5], b[6], b[7]];
    let emitted =
        legacy::request_bytes(b4_7, h.version(), h.mode(), h.operation());
    if h.magic() == *b"jool" && b[14..16] == [0, 0] {
        assert_eq!(emitted, h.as_bytes(), "request_hdr parse → emit");
    }
}

/// A whole Jool request (layout from the first byte): every layer parses
/// and the layers re-emit to the message (reserved and padding zeroed).
fn whole_message(b: &[u8]) {
    let Some((&layout, b)) = b.split_first() else { return };
    let layout = if layout & 1 == 0 { Layout::V1 } else { Layout::V2 };
    let Ok(p) = Packet::new_checked(b) else { return };
    let Ok(g) = genl::Packet::new_checked(p.payload()) else { return };
    let Ok(h) = jool::Header::new_checked(g.payload(), layout) else { return };
    if !attributes(h.payload()) {
        return;
    }
    let (nl, gr) = (
        nlmsg::Repr::parse(&p).expect("checked"),
        genl::Repr::parse(&g).expect("checked"),
    );
    let jr = jool::Repr::parse(&h).expect("checked");
    let mut w = Writer::new();
    for a in NlasIterator::new(h.payload()).flatten() {
        w.attr(a.raw_kind(), a.value());
    }
    let mut out = vec![0xa5; nlmsg::HEADER_LEN + genl::HEADER_LEN];
    nl.emit(&mut Packet::new_unchecked(&mut out[..]));
    gr.emit(&mut genl::Packet::new_unchecked(&mut out[nlmsg::HEADER_LEN..]));
    out.extend_from_slice(&jr.to_vec());
    out.extend_from_slice(w.as_slice());
    // The attributes were checked by `attributes`; here, the headers.
    let headers = nlmsg::HEADER_LEN + genl::HEADER_LEN + layout.header_len();
    let mut want = p.message()[..headers].to_vec();
    want[nlmsg::HEADER_LEN + 2..nlmsg::HEADER_LEN + 4].fill(0);
    assert_eq!(out[..headers], want[..], "message parse → emit");
}

/// Values decoded from the input → emit → parse → the same values.
fn reprs(input: &mut Input<'_>) {
    let payload = usize::from(input.u8());
    let (kind, flags, seq, pid) =
        (input.u16(), input.u16(), input.u32(), input.u32());
    let nl = nlmsg::Repr {
        len: (nlmsg::HEADER_LEN + payload) as u32,
        kind,
        flags,
        seq,
        pid,
    };
    let mut buf = vec![0xa5; nlmsg::HEADER_LEN + payload];
    nl.emit(&mut Packet::new_unchecked(&mut buf[..]));
    assert_eq!(
        nlmsg::Repr::parse(&Packet::new_checked(&buf[..]).expect("emitted")),
        Ok(nl)
    );

    let g = genl::Repr { cmd: input.u8(), version: input.u8() };
    let mut buf = [0xa5; genl::HEADER_LEN];
    g.emit(&mut genl::Packet::new_unchecked(&mut buf[..]));
    assert_eq!(
        genl::Repr::parse(&genl::Packet::new_unchecked(&buf[..])),
        Ok(g)
    );

    let layout = if input.u8() & 1 == 0 { Layout::V1 } else { Layout::V2 };
    let mut j = jool::Repr {
        layout,
        magic: input.array(),
        version: input.u32(),
        xt: input.u8(),
        flags: input.u8(),
        reserved: input.array(),
        iname: input.array(),
    };
    if layout == Layout::V1 {
        j.magic = jool::MAGIC; // not on the wire
    }
    let v = j.to_vec();
    assert_eq!(
        jool::Repr::parse(
            &jool::Header::new_checked(&v[..], layout).expect("emitted")
        ),
        Ok(j)
    );

    if let Ok(name) = std::str::from_utf8(input.chunk()) {
        match jool::encode_iname(name) {
            Ok(iname) => {
                let r = jool::Repr { iname, ..j };
                let nul =
                    name.bytes().position(|c| c == 0).unwrap_or(name.len());
                assert_eq!(r.iname_str(), Some(&name.as_bytes()[..nul]));
            }
            Err(_) => assert!(name.len() >= jool::INAME_LEN),
        }
    }
    writer_attributes(input);
}

/// Attributes written with [`Writer`] read back with [`NlasIterator`].
fn writer_attributes(input: &mut Input<'_>) {
    let (mut w, mut want) = (Writer::new(), Vec::new());
    for _ in 0..input.below(8) {
        let kind = input.u16();
        let value: Vec<u8> = match input.below(6) {
            0 => vec![input.u8()],
            1 => input.u16().to_le_bytes().to_vec(),
            2 => input.u32().to_le_bytes().to_vec(),
            3 => input.u64().to_le_bytes().to_vec(),
            4 => {
                let s: Vec<u8> =
                    input.chunk().iter().map(|&c| c.max(1)).collect();
                w.string(kind, &s);
                want.push((kind, [s, vec![0]].concat()));
                continue;
            }
            _ => {
                let at = w.begin_nest(kind | F_NESTED);
                let inner = input.u32();
                w.u32(1, inner);
                w.end_nest(at);
                let mut v = vec![8, 0, 1, 0];
                v.extend_from_slice(&inner.to_le_bytes());
                want.push((kind | F_NESTED, v));
                continue;
            }
        };
        w.attr(kind, &value);
        want.push((kind, value));
    }
    let got: Vec<_> = NlasIterator::new(w.as_slice())
        .map(|a| a.map(|a| (a.raw_kind(), a.value().to_vec())))
        .collect::<Result<_, _>>()
        .expect("written attributes parse");
    assert_eq!(got, want, "Writer → NlasIterator");
    assert_eq!(w.len() % 4, 0, "the writer pads");
}
