//! Reading answers: comparing exchanges (seq and port id masked,
//! `nlmsg::masked`), and short names for requests and
//! answers that group divergences into classes.

use jool_sim::{
    requests::op,
    wire::{
        genl,
        jool::{Header, Layout, FLAG_ERROR, JNLAERR_CODE},
        nla::{self, NlaBuffer, NlasIterator},
        nlmsg::{self, ErrorPayload},
    },
};

use super::{
    request::{cmd_of, kind_of, message_offsets},
    target::Exchange,
};

/// Length of a message's netlink and genl headers.
pub const GENL_END: usize = nlmsg::HEADER_LEN + genl::HEADER_LEN;

/// One attribute of a stream: its type (flags masked off) and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attr<'a> {
    kind: u16,
    value: &'a [u8],
}

impl<'a> Attr<'a> {
    /// `nla_type` without the flag bits.
    pub fn kind(&self) -> u16 {
        self.kind
    }

    /// The value (borrowed from the stream).
    pub fn value(&self) -> &'a [u8] {
        self.value
    }
}

/// The attributes of a stream, leniently: those before the first one
/// that does not fit ([`NlasIterator`] checks each).
pub fn attrs(b: &[u8]) -> Vec<Attr<'_>> {
    let mut it = NlasIterator::new(b);
    let mut out = Vec::new();
    loop {
        let at = it.offset();
        let Some(Ok(a)) = it.next() else { break };
        let a: NlaBuffer<&[u8]> = a;
        let end = at + usize::from(a.length());
        out.push(Attr {
            kind: a.kind(),
            value: &b[at + nla::HEADER_LEN..end],
        });
    }
    out
}

/// Whether two exchanges are the same after masking.
pub fn same(a: &Exchange, b: &Exchange) -> bool {
    a.sent == b.sent
        && a.recv_error == b.recv_error
        && a.replies.len() == b.replies.len()
        && a.replies
            .iter()
            .zip(&b.replies)
            .all(|(x, y)| nlmsg::masked(x) == nlmsg::masked(y))
}

/// Whether datagram `d` holds a Jool INSTANCE_ADD, INSTANCE_RM or
/// INSTANCE_FLUSH.
pub fn changes_instances(d: &[u8], family_id: u16) -> bool {
    message_offsets(d).into_iter().any(|(off, len)| {
        let m = &d[off..off + len];
        kind_of(m) == Some(family_id)
            && matches!(
                cmd_of(m),
                Some(op::INSTANCE_ADD | op::INSTANCE_RM | op::INSTANCE_FLUSH)
            )
    })
}

/// A short name for what a request is: `jool/cmd7`, `ctrl/cmd3`,
/// `type0x3`, `empty`, `short`; `+more` when it holds several messages.
pub fn request_kind(d: &[u8], family_id: u16) -> String {
    let Some(kind) = kind_of(d) else {
        return if d.is_empty() { "empty" } else { "short" }.into();
    };
    let cmd = d.get(nlmsg::HEADER_LEN).map_or("-".to_owned(), u8::to_string);
    let several = if message_offsets(d).len() > 1 { "+more" } else { "" };
    match kind {
        k if k == family_id => format!("jool/cmd{cmd}{several}"),
        nlmsg::GENL_ID_CTRL => format!("ctrl/cmd{cmd}{several}"),
        k => format!("type0x{k:x}{several}"),
    }
}

/// A short name for an answer: `send-errno61`, `no-reply`, `ack`,
/// `nlerr22`, `done`, `ctrl`, `jool-ok`, `jool-err3`, plus `x2` for two
/// datagrams.
pub fn answer_kind(ex: &Exchange, family_id: u16) -> String {
    if let Err(e) = ex.sent {
        return format!("send-errno{e}");
    }
    let Some(first) = ex.replies.first() else {
        return match ex.recv_error {
            Some(e) => format!("recv-errno{e}"),
            None => "no-reply".into(),
        };
    };
    let base = match kind_of(first) {
        None => "short".to_owned(),
        Some(nlmsg::NLMSG_ERROR) => match nlmsg_error(first) {
            Some(0) => "ack".into(),
            Some(e) => format!("nlerr{}", e.wrapping_neg()),
            None => "type0x2".into(),
        },
        Some(nlmsg::NLMSG_DONE) => "done".into(),
        Some(nlmsg::GENL_ID_CTRL) => "ctrl".into(),
        Some(k) if k == family_id => jool_answer(first),
        Some(k) => format!("type0x{k:x}"),
    };
    match ex.replies.len() {
        1 => base,
        n => format!("{base}x{n}"),
    }
}

/// The errno of an `NLMSG_ERROR` message (0: an ack), if it holds one.
pub fn nlmsg_error(m: &[u8]) -> Option<i32> {
    let payload = m.get(nlmsg::HEADER_LEN..)?;
    Some(ErrorPayload::new_checked(payload).ok()?.error())
}

/// The code of a Jool error report: a Jool message whose header has the
/// ERROR flag and whose first attribute is `JNLAERR_CODE`, a u16. Tries
/// the 28-byte header (4.1.5+), then the 24-byte one.
///
/// The flag alone does not make an error report: a successful reply
/// echoes the request's header flags, so a request with ERROR set gets a
/// listing with ERROR set (INSTANCE_FOREACH entries are attribute 1
/// too, but nested and longer).
pub fn error_code(m: &[u8]) -> Option<u16> {
    let rest = m.get(GENL_END..)?;
    [Layout::V2, Layout::V1].into_iter().find_map(|layout| {
        let h = Header::new_checked(rest, layout).ok()?;
        if h.flags() & FLAG_ERROR == 0 {
            return None;
        }
        let first = *attrs(&rest[layout.header_len()..]).first()?;
        let v = first.value();
        (first.kind() == JNLAERR_CODE && v.len() == 2)
            .then(|| u16::from_le_bytes([v[0], v[1]]))
    })
}

/// `jool-err<code>` for a Jool error report ([`error_code`]), else
/// `jool-ok`.
fn jool_answer(m: &[u8]) -> String {
    error_code(m).map_or_else(|| "jool-ok".into(), |c| format!("jool-err{c}"))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_nlmsg_error() {
        let ack = [
            36, 0, 0, 0, // nlmsg_len
            2, 0, 0, 1, // NLMSG_ERROR, flags
            0, 0, 0, 0, 0, 0, 0, 0, // seq, pid
            0xea, 0xff, 0xff, 0xff, // error -22
            20, 0, 0, 0, 0x20, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, // echo
        ];
        assert_eq!(nlmsg_error(&ack), Some(-22));
        assert_eq!(nlmsg_error(&ack[..20]), None);
    }
}
