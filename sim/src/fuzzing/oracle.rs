//! [`Checker`]: what every reply of the simulated kernel must look like,
//! whatever the request was.
//!
//! A reply datagram holds exactly one message, addressed to the caller
//! (its port id) with the sequence number of the request, and parses with
//! the same `wire` views the client uses, all the way down:
//!
//! - `NLMSG_ERROR`: errno (never positive), the echoed request (whole on
//!   error, its header on an ack), extended-ack attributes;
//! - nlctrl `NEWFAMILY`: attributes, nested ones too, naming a family the
//!   kernel has;
//! - `NLMSG_DONE`;
//! - Jool (4.0.8+): genl header, Jool header echoing the request's (flags
//!   aside), attributes; an error report carries `JNLAERR_CODE`;
//! - Jool 4.0.0 – 4.0.7: one `ATTR_DATA` holding a `response_hdr`; an
//!   error carries a NUL-terminated text.
//!
//! and it is no bigger than the kernel allocates: the budget for Jool's
//! replies (a full page for 4.0.x, which ignores it), `NLMSG_DEFAULT_SIZE`
//! for nlctrl, and the echoed request plus extended acks for errors.

use crate::{
    kernel::{Caller, Families, Kernel, DEFAULT_MSG_BUDGET},
    versions::Profile,
    wire::{
        align4, genl,
        jool::{self, Layout, FLAG_ERROR, FLAG_M, JNLAERR_CODE, JNLAERR_MSG},
        legacy,
        nla::{self, NlaBuffer, NlasIterator},
        nlmsg::{self, ErrorPayload, Packet},
    },
};

/// Runs `f`. Kept for the regression tests of two simulator bugs that
/// once needed extra checks turned on (INSTANCE_FOREACH and GLOBAL_FOREACH
/// ignored the message budget; fixed, see fixtures/fuzz-regressions):
/// those checks are now always on.
pub fn strict<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Room the extended-ack attributes may take in an `NLMSG_ERROR`.
const EXTACK_ROOM: usize = 128;

/// `NLMSGERR_ATTR_POLICY`, the only nested extended-ack attribute.
const NLMSGERR_ATTR_POLICY: u16 = 4;

/// A checked reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `NLMSG_ERROR`: 0 for an ack, else the (positive) errno.
    Ack(i32),
    /// nlctrl's answer: the family id it names.
    Family(u16),
    /// `NLMSG_DONE`.
    Done,
    /// A Jool reply (4.0.8+).
    Jool {
        /// Its Jool header.
        header: jool::Repr,
        /// The attributes after it.
        attrs: &'a [u8],
        /// Whether it reports an error: the ERROR flag, set by the kernel
        /// (the reply echoes the request's flags, so a request with ERROR
        /// set gets it back on success too; then an error report is told
        /// apart by its `JNLAERR_CODE`).
        error: bool,
    },
    /// A Jool 4.0.0 – 4.0.7 reply.
    Legacy {
        /// `response_hdr.error_code`.
        code: u16,
        /// What follows the `response_hdr`.
        payload: &'a [u8],
        /// `response_hdr.pending_data`: a listing left entries out.
        pending: bool,
    },
}

impl Reply<'_> {
    /// Whether the reply reports a failure.
    pub fn is_error(&self) -> bool {
        match *self {
            Self::Ack(errno) => errno != 0,
            Self::Jool { error, .. } => error,
            Self::Legacy { code, .. } => code != 0,
            Self::Family(_) | Self::Done => false,
        }
    }
}

/// Checks replies of one kernel to one caller.
#[derive(Clone, Debug)]
pub struct Checker<'k> {
    kernel: &'k Kernel,
    families: Families,
    caller: Caller,
    budget: usize,
}

impl<'k> Checker<'k> {
    /// A checker of replies of `kernel` (whose budget is `budget`) to
    /// `caller`.
    pub fn new(kernel: &'k Kernel, caller: Caller, budget: usize) -> Self {
        Self { kernel, families: kernel.families(), caller, budget }
    }

    fn profile(&self) -> &'static Profile {
        self.kernel.profile()
    }

    /// Checks `reply`, one of the datagrams the kernel queued for the
    /// request message `request`.
    ///
    /// # Panics
    /// On every violation, naming it.
    pub fn check<'a>(&self, request: &[u8], reply: &'a [u8]) -> Reply<'a> {
        let p = Packet::new_checked(reply)
            .unwrap_or_else(|e| panic!("reply header: {e}"));
        assert_eq!(
            p.len() as usize,
            reply.len(),
            "a reply datagram holds one whole message"
        );
        assert_eq!(
            p.pid(),
            self.caller.port_id,
            "reply addressed to another port"
        );
        if let Ok(req) = Packet::new_checked(request) {
            assert_eq!(
                p.seq(),
                req.seq(),
                "reply seq differs from the request's"
            );
        }
        let kind = p.kind();
        match kind {
            nlmsg::NLMSG_ERROR => self.error(request, &p),
            nlmsg::NLMSG_DONE => {
                assert_eq!(
                    p.payload(),
                    [0; 4],
                    "NLMSG_DONE carries one int, 0"
                );
                Reply::Done
            }
            nlmsg::GENL_ID_CTRL => self.family(&p),
            _ if self.families.iter().any(|f| f.id == kind) => {
                let payload = &reply[nlmsg::HEADER_LEN..];
                if self.profile().is_legacy() {
                    assert!(
                        reply.len() <= DEFAULT_MSG_BUDGET,
                        "{}-byte 4.0.x reply",
                        reply.len()
                    );
                    return legacy_reply(payload);
                }
                let r = self.jool(request, payload);
                let limit = self.limit(r.is_error());
                assert!(
                    reply.len() <= limit,
                    "{}-byte Jool reply, budget {}",
                    reply.len(),
                    self.budget
                );
                r
            }
            _ => panic!("reply of unexpected type {kind:#x}"),
        }
    }

    /// The most a Jool reply may take: the budget, but an error report
    /// may take what one with a text cut to 128 bytes does (the simulator
    /// cuts texts that do not fit to that; a budget below it, far below
    /// any real kernel's, cannot hold an error report at all).
    fn limit(&self, error: bool) -> usize {
        let headers =
            nlmsg::HEADER_LEN + genl::HEADER_LEN + self.profile().header_len();
        let report = headers
            + align4(nla::HEADER_LEN + 2)
            + align4(nla::HEADER_LEN + 129);
        if error {
            self.budget.max(report)
        } else {
            self.budget
        }
    }

    fn error(&self, request: &[u8], p: &Packet<&[u8]>) -> Reply<'static> {
        let e = ErrorPayload::new_checked(p.payload())
            .unwrap_or_else(|e| panic!("nlmsgerr: {e}"));
        let errno = e.error().checked_neg().filter(|&n| n >= 0);
        let errno =
            errno.unwrap_or_else(|| panic!("NLMSG_ERROR error {}", e.error()));
        let capped = p.flags() & nlmsg::F_CAPPED != 0;
        assert_eq!(capped, errno == 0, "only acks are capped");
        let echoed_len =
            if capped { nlmsg::HEADER_LEN } else { request.len() };
        let echoed = e.echoed();
        assert!(
            echoed.len() >= echoed_len,
            "the echo is shorter than the request"
        );
        assert_eq!(
            &echoed[..echoed_len],
            &request[..echoed_len],
            "echo differs from the request"
        );
        let tlvs = &p.payload()[align4(nlmsg::ERROR_CODE_LEN + echoed_len)
            .min(p.payload().len())..];
        assert_eq!(
            p.flags() & nlmsg::F_ACK_TLVS != 0,
            !tlvs.is_empty(),
            "F_ACK_TLVS and attributes"
        );
        for a in all_attrs(tlvs, "extended ack") {
            if a.kind() == NLMSGERR_ATTR_POLICY {
                all_attrs(a.value(), "extended ack policy");
            }
        }
        let limit = nlmsg::HEADER_LEN
            + nlmsg::ERROR_CODE_LEN
            + align4(request.len())
            + EXTACK_ROOM;
        assert!(
            p.message().len() <= limit,
            "{}-byte NLMSG_ERROR",
            p.message().len()
        );
        Reply::Ack(errno)
    }

    fn family(&self, p: &Packet<&[u8]>) -> Reply<'static> {
        assert!(
            p.message().len() <= DEFAULT_MSG_BUDGET,
            "nlctrl reply too big"
        );
        let g = genl::Packet::new_checked(p.payload())
            .unwrap_or_else(|e| panic!("nlctrl: {e}"));
        assert_eq!(g.cmd(), genl::CTRL_CMD_NEWFAMILY, "nlctrl reply command");
        let (mut id, mut name) = (None, None);
        for a in all_attrs(g.payload(), "nlctrl") {
            match a.kind() {
                genl::CTRL_ATTR_FAMILY_ID => {
                    id = a.value().try_into().ok().map(u16::from_le_bytes)
                }
                genl::CTRL_ATTR_FAMILY_NAME => {
                    name = a.value().split_last().map(|(_, n)| n.to_vec())
                }
                genl::CTRL_ATTR_OPS | genl::CTRL_ATTR_MCAST_GROUPS => {
                    for inner in all_attrs(a.value(), "nlctrl nest") {
                        all_attrs(inner.value(), "nlctrl nest");
                    }
                }
                _ => {}
            }
        }
        let (Some(id), Some(name)) = (id, name) else {
            panic!("family reply without id or name")
        };
        let f = self.families.iter().find(|f| f.id == id);
        assert!(
            f.is_some_and(|f| f.name.as_bytes() == name),
            "family reply names no family"
        );
        Reply::Family(id)
    }

    fn jool<'a>(&self, request: &[u8], payload: &'a [u8]) -> Reply<'a> {
        let prof = self.profile();
        let g = genl::Packet::new_checked(payload)
            .unwrap_or_else(|e| panic!("Jool genl: {e}"));
        assert_eq!(g.version(), prof.genl_version(), "Jool genl version");
        let layout = Layout::from_len(prof.header_len()).unwrap_or(Layout::V2);
        let h = jool::Header::new_checked(g.payload(), layout)
            .unwrap_or_else(|e| panic!("{e}"));
        let header = jool::Repr::parse(&h).unwrap_or_else(|e| panic!("{e}"));
        let at = nlmsg::HEADER_LEN + genl::HEADER_LEN;
        let sent = request
            .get(at..)
            .and_then(|r| jool::Header::new_checked(r, layout).ok());
        let sent = sent.map(|r| jool::Repr::parse(&r));
        let Some(Ok(sent)) = sent else {
            panic!("a Jool reply to a request without a header")
        };
        let others = !(FLAG_ERROR | FLAG_M);
        let want = if prof.zero_reply_flags { 0 } else { sent.flags & others };
        assert_eq!(
            jool::Repr { flags: header.flags & others, ..header },
            jool::Repr { flags: want, ..sent }
        );
        let attrs = &payload[genl::HEADER_LEN + layout.header_len()..];
        for a in all_attrs(attrs, "Jool reply") {
            if a.nested_flag() {
                all_attrs(a.value(), "Jool nest");
            }
        }
        let has_code = NlasIterator::new(attrs)
            .flatten()
            .any(|a| a.kind() == JNLAERR_CODE && a.value().len() == 2);
        let echoed = !prof.zero_reply_flags && sent.flags & FLAG_ERROR != 0;
        let error = header.flags & FLAG_ERROR != 0 && (!echoed || has_code);
        if error {
            check_error_report(attrs);
        }
        Reply::Jool { header, attrs, error }
    }
}

/// `ERROR` replies: a nonzero u16 code, and a NUL-terminated UTF-8 text.
fn check_error_report(attrs: &[u8]) {
    let mut code = None;
    for a in NlasIterator::new(attrs).flatten() {
        match a.kind() {
            JNLAERR_CODE => {
                code = Some(
                    <[u8; 2]>::try_from(a.value()).map(u16::from_le_bytes),
                )
            }
            JNLAERR_MSG => check_text(a.value()),
            _ => panic!("error report attribute {}", a.kind()),
        }
    }
    assert!(
        matches!(code, Some(Ok(c)) if c != 0),
        "error report code {code:?}"
    );
}

fn check_text(v: &[u8]) {
    let Some((0, text)) = v.split_last() else {
        panic!("text without its NUL")
    };
    assert!(std::str::from_utf8(text).is_ok(), "text is not UTF-8");
}

fn legacy_reply(payload: &[u8]) -> Reply<'_> {
    let g = genl::Packet::new_checked(payload)
        .unwrap_or_else(|e| panic!("legacy genl: {e}"));
    let attrs = all_attrs(g.payload(), "legacy reply");
    let [data] = attrs.as_slice() else {
        panic!("{} attributes in a legacy reply", attrs.len())
    };
    assert_eq!(data.kind(), legacy::ATTR_DATA, "legacy reply attribute");
    // The only attribute: its value starts right after its header.
    let start = genl::HEADER_LEN + nla::HEADER_LEN;
    let value = &payload[start..genl::HEADER_LEN + usize::from(data.length())];
    let r = legacy::ResponseHdr::new_checked(value)
        .unwrap_or_else(|e| panic!("response_hdr: {e}"));
    if r.error_code() != 0 {
        check_text(r.payload());
    }
    assert!(r.pending_data() <= 1, "pending_data {}", r.pending_data());
    Reply::Legacy {
        code: r.error_code(),
        payload: &value[legacy::RESPONSE_LEN..],
        pending: r.pending_data() == 1,
    }
}

/// Every attribute of `buf`; the stream must parse to its end.
fn all_attrs<'a>(buf: &'a [u8], what: &str) -> Vec<NlaBuffer<&'a [u8]>> {
    NlasIterator::new(buf)
        .map(|a| a.unwrap_or_else(|e| panic!("{what} attributes: {e}")))
        .collect()
}
