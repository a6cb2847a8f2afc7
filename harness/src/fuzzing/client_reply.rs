//! `client_reply`: fuzzer bytes as the kernel's replies to [`Client`].
//!
//! Input: a release byte, a mode byte (bit 0: NAT64 instead of SIIT; bit
//! 1: the mode), then the mode's bytes. The family lookup always gets a
//! valid answer (from the simulated kernel), so the bytes reach the stats
//! path.
//!
//! - raw (bit 1 clear): the replies are length-prefixed datagrams (u16
//!   LE), one per request, as is;
//! - pages (bit 1 set): each reply is a well-formed page built around the
//!   request's own header: a flags byte (M, error, wrong magic, version or
//!   translator, a 4-byte counter), a count and the counters (id, value).
//!
//! Oracles: the client returns `Ok` or a typed error whose text and exit
//! code render; it sends at most [`MAX_PAGES`] + 1 requests; each request's
//! offset is the last id of the page before; whatever it returns came from
//! the replies (raw: no more counters than the bytes hold; pages: exactly
//! the counters served, and `Ok` exactly when the pages follow the
//! protocol). The client against the simulated kernel itself, with any
//! budget, is the `prop_client_pagination` property of the tests.

use std::{collections::VecDeque, io, sync::OnceLock};

use jool_sim::{
    fuzzing::{get_family, Input},
    kernel::{Caller, Kernel, Xlator, INIT_NETNS},
    versions::{Profile, ReplyCheck},
    wire::{
        genl,
        jool::{self as jhdr, Layout, FLAG_ERROR, FLAG_M},
        legacy,
        nla::{NlasIterator, Writer, TYPE_MASK},
        nlmsg::{self, Packet},
    },
};

use crate::{
    client::{Client, Error, MAX_PAGES},
    transport::Transport,
};

/// Port id of the fuzzed socket.
const PORT_ID: u32 = 0x0f00_0002;

/// Most counters a page of mode "pages" holds.
const PAGE_MAX: usize = 96;

/// The family reply the kernel of release `release` gives a client for
/// `xlator`.
fn family_reply(release: usize, xlator: Xlator) -> &'static [u8] {
    static ALL: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let mut out = Vec::new();
        for p in Profile::all() {
            for x in [Xlator::Siit, Xlator::Nat64] {
                let mut k = Kernel::new(p);
                let client = Client::new(Unused, p, x);
                let replies = k.handle(
                    &Caller::root(INIT_NETNS),
                    &get_family(client.family_name(), 1),
                );
                out.push(
                    replies.into_iter().next().expect("the family exists"),
                );
            }
        }
        out
    });
    &all[release * 2 + usize::from(xlator == Xlator::Nat64)]
}

/// A transport that is never used (to ask a client its family name).
struct Unused;

impl Transport for Unused {
    fn send(&mut self, _: &[u8]) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn recv(&mut self) -> io::Result<Vec<u8>> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn port_id(&self) -> u32 {
        PORT_ID
    }
}

/// How the scripted kernel answers stats requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Raw,
    Pages,
}

/// A kernel that answers the family lookup, then replies from the input.
struct Scripted<'a> {
    profile: &'static Profile,
    family: &'static [u8],
    mode: Mode,
    input: Input<'a>,
    pending: VecDeque<Vec<u8>>,
    sends: usize,
    /// Pages: every counter served, in order.
    served: Vec<(u16, u64)>,
    /// Pages: how many were served, and whether the last set M.
    pages: usize,
    more: bool,
    /// Pages: whether every page so far followed the protocol.
    valid: bool,
    /// Raw: bytes handed to the client.
    raw_bytes: usize,
}

impl Transport for Scripted<'_> {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        self.sends += 1;
        assert!(
            self.sends <= MAX_PAGES + 1,
            "the client sent {} requests",
            self.sends
        );
        self.pending.clear();
        if self.sends == 1 {
            self.pending.push_back(self.family.to_vec());
            return Ok(());
        }
        self.check_offset(datagram);
        let reply = match self.mode {
            Mode::Raw => Some(self.input.long_chunk().to_vec())
                .filter(|d| !d.is_empty()),
            Mode::Pages if self.input.is_empty() => None,
            Mode::Pages => Some(self.page(datagram)),
        };
        if let Some(r) = reply {
            self.raw_bytes += r.len();
            self.pending.push_back(r);
        }
        Ok(())
    }

    fn recv(&mut self) -> io::Result<Vec<u8>> {
        self.pending
            .pop_front()
            .ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }

    fn port_id(&self) -> u32 {
        PORT_ID
    }
}

impl Scripted<'_> {
    /// The offset a stats request carries is the last id served.
    fn check_offset(&self, datagram: &[u8]) {
        if self.profile.is_legacy() || self.mode != Mode::Pages {
            return;
        }
        let at =
            nlmsg::HEADER_LEN + genl::HEADER_LEN + self.profile.header_len();
        let attrs = datagram.get(at..).expect("a request with a Jool header");
        let offset = NlasIterator::new(attrs)
            .flatten()
            .find(|a| {
                a.raw_kind() & TYPE_MASK == self.profile.offset_u8_attr()
            })
            .map_or(0, |a| u16::from(a.value()[0]));
        let last = self.served.last().map_or(0, |&(id, _)| id);
        assert_eq!(
            offset, last,
            "the request's offset is not the last id received"
        );
    }

    /// A page for `request`, shaped by the input: flags, then counters.
    fn page(&mut self, request: &[u8]) -> Vec<u8> {
        let flags = self.input.u8();
        let count = self.input.below(PAGE_MAX + 1);
        let (before, served_before) =
            (self.served.last().map_or(0, |&(id, _)| id), self.served.len());
        let mut values = Writer::new();
        let mut bad_len = false;
        for i in 0..count {
            let (id, value) = (u16::from(self.input.u8()), self.input.u64());
            if flags & 0x40 != 0 && i == count / 2 {
                values.attr(id, &value.to_le_bytes()[..4]);
                bad_len = true;
                break;
            }
            values.u64(id, value);
            self.served.push((id, value));
        }
        let last = match self.served.last() {
            Some(&(id, _)) if self.served.len() > served_before => id,
            _ => before,
        };
        self.pages += 1;
        self.more = flags & 1 != 0;
        if self.profile.is_legacy() {
            // One reply, whose payload must hold exactly the table.
            let len = self.served.len() * 8 + if bad_len { 4 } else { 0 };
            self.valid &=
                flags & 2 == 0 && len == self.profile.stats.len() * 8;
            return legacy_page(request, flags, values.as_slice());
        }
        // Releases that check the reply header see the spoiled ones.
        let checked = matches!(self.profile.reply_check, ReplyCheck::Magic(_));
        let spoiled =
            flags & 2 != 0 || (checked && flags & 0x1c != 0) || bad_len;
        self.valid &=
            !spoiled && (!self.more || (last > before && last <= 255));
        jool_page(self.profile, request, flags, values.as_slice())
    }
}

/// A Jool reply echoing the request's header, spoiled as `flags` say:
/// bit 0 M, 1 ERROR, 2 bad magic, 3 other major version, 4 other
/// translator (bit 6, a 4-byte counter, is in `attrs`).
fn jool_page(p: &Profile, request: &[u8], flags: u8, attrs: &[u8]) -> Vec<u8> {
    let layout = Layout::from_len(p.header_len()).unwrap_or(Layout::V2);
    let at = nlmsg::HEADER_LEN + genl::HEADER_LEN;
    let h = jhdr::Header::new_checked(&request[at..], layout)
        .expect("the client's own header");
    let mut r = jhdr::Repr::parse(&h).expect("the client's own header");
    r.flags = ((flags & 1) * FLAG_M) | ((flags >> 1 & 1) * FLAG_ERROR);
    if flags & 4 != 0 {
        r.magic = *b"JOOL";
    }
    if flags & 8 != 0 {
        r.version ^= 0x0100_0000;
    }
    if flags & 16 != 0 {
        r.xt ^= 3;
    }
    let header = r.to_vec();
    let req = Packet::new_unchecked(request);
    let mut w = Writer::from_vec(vec![0; nlmsg::HEADER_LEN]);
    w.bytes(&[0, 2, 0, 0]).bytes(&header).bytes(attrs);
    finish(w, req.kind(), req.seq())
}

/// A 4.0.x reply: `ATTR_DATA` = the request's `request_hdr`, error code
/// (flags bit 1), the counters' values as the payload.
fn legacy_page(request: &[u8], flags: u8, attrs: &[u8]) -> Vec<u8> {
    let at = nlmsg::HEADER_LEN + genl::HEADER_LEN;
    let data = NlasIterator::new(&request[at..])
        .flatten()
        .find(|a| a.kind() == legacy::ATTR_DATA);
    let mut value = data.expect("the client sends ATTR_DATA").value()
        [..legacy::REQUEST_LEN]
        .to_vec();
    value.extend_from_slice(&[flags >> 1 & 1, 0, 0, 0]);
    for a in NlasIterator::new(attrs).flatten() {
        value.extend_from_slice(a.value());
    }
    let req = Packet::new_unchecked(request);
    let mut w = Writer::from_vec(vec![0; nlmsg::HEADER_LEN]);
    w.bytes(&[0, 1, 0, 0]).attr(legacy::ATTR_DATA, &value);
    finish(w, req.kind(), req.seq())
}

fn finish(w: Writer, kind: u16, seq: u32) -> Vec<u8> {
    let mut v = w.into_vec();
    let hdr =
        nlmsg::Repr { len: v.len() as u32, kind, flags: 0, seq, pid: PORT_ID };
    hdr.emit(&mut Packet::new_unchecked(&mut v[..]));
    v
}

/// Runs one input.
pub fn fuzz_client_reply(data: &[u8]) {
    let mut input = Input::new(data);
    let release = input.below(Profile::all().len());
    let profile = &Profile::all()[release];
    let flags = input.u8();
    let xlator = if flags & 1 == 0 { Xlator::Siit } else { Xlator::Nat64 };
    let mode = if flags & 2 == 0 { Mode::Raw } else { Mode::Pages };
    scripted(profile, release, xlator, mode, input);
}

fn scripted(
    profile: &'static Profile,
    release: usize,
    xlator: Xlator,
    mode: Mode,
    input: Input<'_>,
) {
    let t = Scripted {
        profile,
        family: family_reply(release, xlator),
        mode,
        input,
        pending: VecDeque::new(),
        sends: 0,
        served: Vec::new(),
        pages: 0,
        more: false,
        valid: true,
        raw_bytes: 0,
    };
    let mut client = Client::new(t, profile, xlator);
    let result = client.stats(None);
    check_error(&result);
    let t = client.transport();
    match (mode, result) {
        (Mode::Raw, Ok(v)) if profile.is_legacy() => {
            assert_eq!(v.len(), profile.stats.len())
        }
        (Mode::Raw, Ok(v)) => assert!(
            v.len() * 12 <= t.raw_bytes,
            "{} counters from {} bytes",
            v.len(),
            t.raw_bytes
        ),
        (Mode::Raw, Err(_)) => {}
        (Mode::Pages, result) => check_pages(profile, t, result),
    }
}

/// Pages: `Ok` exactly when the served pages follow the protocol, with
/// exactly the counters served.
fn check_pages(
    profile: &Profile,
    t: &Scripted<'_>,
    result: Result<Vec<(u16, u64)>, Error>,
) {
    let ended = t.pages > 0 && !t.more;
    let ok = t.valid
        && (ended || profile.is_legacy() && t.pages > 0)
        && t.pages <= MAX_PAGES;
    match result {
        Ok(v) => {
            assert!(
                ok,
                "the client accepted pages that break the protocol: {:?}",
                t.served
            );
            if profile.is_legacy() {
                // 4.0.x sends values only: the client numbers them.
                assert!(
                    v.iter()
                        .map(|&(_, v)| v)
                        .eq(t.served.iter().map(|&(_, v)| v)),
                    "legacy values"
                );
            } else {
                assert_eq!(
                    v, t.served,
                    "the client's counters are not the ones served"
                );
            }
        }
        Err(e) => assert!(!ok, "valid pages rejected: {e} ({:?})", e.kind()),
    }
}

/// Every error has its text and exit code.
fn check_error(result: &Result<Vec<(u16, u64)>, Error>) {
    if let Err(e) = result {
        assert!(
            !e.to_string().is_empty(),
            "an error without text: {:?}",
            e.kind()
        );
        let _ = e.exit_code();
    }
}
