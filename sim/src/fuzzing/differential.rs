//! `differential`: one datagram, two releases that should answer alike.
//!
//! Releases are grouped by everything their [`Profile`]s say about the
//! kernel side except the stat table and the version word: compat rule,
//! protocol and header layout, op numbering, stats privilege, error-reply
//! rules and, for 4.0.x, the release gates of `kernel/legacy.rs` (hello
//! from 4.0.4, `MODE_STATS` 2 from 4.0.5, `XF_*` and no trailing newline
//! from 4.0.6), and the numbering of the globals (`JNLAG_LOWEST_IPV6_MTU`
//! is absent before 4.1.0, 7 in 4.1.0–4.1.1, 3 from 4.1.2) and 4.0.8's
//! refusal of any pool6 address (Jool #326). Two releases of a group
//! must give the same replies, except where their profiles differ:
//!
//! - the version word: a message whose version one accepts and the other
//!   rejects ends the comparison (their states may differ from then on),
//!   and the version-mismatch text, which quotes it, is not compared;
//! - `max_id`: counters beyond the smaller table are dropped, and so is
//!   an M flag that only the longer table needed.
//!
//! Input: group, release A, release B (bytes), the [`Setup`] flags byte,
//! a byte whose bit 0 patches each message's version word to the
//! receiving kernel's own (so `exact` releases get past the check), then
//! the datagram.

use std::sync::OnceLock;

use super::{setup::Setup, Input};
use crate::{
    kernel::Kernel,
    requests::op,
    versions::Profile,
    wire::{
        genl,
        jool::{self, Layout, FLAG_M, JNLAERR_CODE, JNLAERR_MSG},
        legacy,
        nla::{NlasIterator, TYPE_MASK},
        nlmsg::{self, Messages, Packet},
    },
};

/// What the version-mismatch texts start with.
const MISMATCH: &[u8] = b"Version mismatch.";

/// Indices into [`Profile::all`] of the releases of each group that has
/// two or more.
pub fn groups() -> &'static [Vec<usize>] {
    static GROUPS: OnceLock<Vec<Vec<usize>>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, p) in Profile::all().iter().enumerate() {
            let key = group_key(p);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        groups.into_iter().map(|(_, m)| m).filter(|m| m.len() > 1).collect()
    })
}

fn group_key(p: &Profile) -> String {
    let before = |r| p.is_legacy() && p.is_before(r);
    format!(
        "{:?}",
        (
            (p.compat, p.protocol, p.numbering, p.stats_requires_net_admin),
            (p.always_error_msg, p.zero_reply_flags, p.error_style),
            (before("4.0.4"), before("4.0.5"), before("4.0.6")),
            (p.lowest_ipv6_mtu_global(), p.prefix_address_unspec()),
        )
    )
}

/// Runs one datagram on two releases of a group.
pub fn fuzz_differential(data: &[u8]) {
    let mut input = Input::new(data);
    let group = input.pick(groups());
    let a = input.below(group.len());
    let b = (a + 1 + input.below(group.len() - 1)) % group.len();
    let (flags, patch) = (input.u8(), input.u8() & 1 != 0);
    let datagram = input.rest();
    let sides = [
        Setup::with_flags(group[a], flags),
        Setup::with_flags(group[b], flags),
    ];
    let mut kernels = sides.map(|s| s.kernel());
    let min_max = kernels[0].profile().max_id.min(kernels[1].profile().max_id);
    let mut comparing = true;
    for msg in Messages::new(datagram) {
        let msg = msg.message();
        let at = version_at(&kernels[0], msg);
        let accepts = kernels.each_ref().map(|k| {
            let v = at.map_or(0, |at| {
                u32::from_be_bytes(msg[at..at + 4].try_into().expect("4"))
            });
            at.is_none() || patch || k.profile().kernel_accepts(v)
        });
        let replies = [0, 1].map(|i| {
            let mut m = msg.to_vec();
            if let (Some(at), true) = (at, patch) {
                m[at..at + 4].copy_from_slice(
                    &kernels[i].profile().wire_version.to_be_bytes(),
                );
            }
            kernels[i].handle(&sides[i].caller, &m)
        });
        comparing &= accepts[0] == accepts[1];
        if !comparing {
            continue;
        }
        let stats = msg.get(nlmsg::HEADER_LEN) == Some(&op::STATS_FOREACH);
        let norm = [0, 1].map(|i| {
            let n =
                |r: &Vec<u8>| normalize(&kernels[i], r, (at, stats), min_max);
            replies[i].iter().map(n).collect::<Vec<_>>()
        });
        let names = kernels.each_ref().map(|k| &k.profile().release);
        assert!(
            norm[0] == norm[1],
            "{} and {} differ:\n{:#?}\n{:#?}",
            names[0],
            names[1],
            norm[0],
            norm[1]
        );
    }
}

/// Where the version word of a Jool request is, if `msg` is one.
fn version_at(k: &Kernel, msg: &[u8]) -> Option<usize> {
    let p = Packet::new_checked(msg).ok()?;
    k.families().iter().find(|f| f.id == p.kind())?;
    let base = nlmsg::HEADER_LEN + genl::HEADER_LEN;
    if !k.profile().is_legacy() {
        let at = base + if k.profile().has_magic() { 4 } else { 0 };
        return (msg.len() >= base + k.profile().header_len()).then_some(at);
    }
    // The last ATTR_DATA, as the kernel's attribute parser keeps it.
    let mut it = NlasIterator::new(msg.get(base..)?);
    let mut data = None;
    loop {
        let off = it.offset();
        match it.next() {
            Some(Ok(a)) if a.raw_kind() & TYPE_MASK == legacy::ATTR_DATA => {
                data = Some((off, a.length()))
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    let (off, len) = data?;
    (usize::from(len) >= 4 + 12).then_some(base + off + 4 + 8)
}

/// A reply with what two releases of a group may disagree on taken out.
#[derive(Debug, PartialEq, Eq)]
enum Norm {
    /// Compared byte for byte (echoed version words zeroed).
    Bytes(Vec<u8>),
    /// A Jool reply: header (version zeroed, M flag as explained above)
    /// and attributes (counters past the smaller table dropped).
    Jool(Vec<u8>, jool::Repr, Vec<(u16, Vec<u8>)>),
    /// A 4.0.x reply: `response_hdr` (version zeroed) and payload.
    Legacy(Vec<u8>, Vec<u8>, Vec<u8>),
}

/// Normalizes a reply to a message whose version word is at `at` and
/// which is a `STATS_FOREACH` request if `stats`.
fn normalize(
    k: &Kernel,
    reply: &[u8],
    (at, stats): (Option<usize>, bool),
    min_max: u16,
) -> Norm {
    let p = Packet::new_unchecked(reply);
    let is_jool = k.families().iter().any(|f| f.id == p.kind());
    let headers = nlmsg::HEADER_LEN + genl::HEADER_LEN;
    if !is_jool || reply.len() < headers {
        let mut bytes = reply.to_vec();
        // NLMSG_ERROR echoes the request after its 4-byte errno.
        let echoed = at
            .map(|at| nlmsg::HEADER_LEN + 4 + at)
            .filter(|&e| e + 4 <= bytes.len());
        if let (nlmsg::NLMSG_ERROR, Some(e)) = (p.kind(), echoed) {
            bytes[e..e + 4].fill(0);
        }
        return Norm::Bytes(bytes);
    }
    let mut start = reply[..headers].to_vec();
    start[..4].fill(0); // nlmsg_len: the texts and tables differ in length
    if k.profile().is_legacy() {
        return legacy_norm(start, &reply[headers..], min_max);
    }
    let layout =
        Layout::from_len(k.profile().header_len()).unwrap_or(Layout::V2);
    let h = jool::Header::new_checked(&reply[headers..], layout)
        .expect("checked reply");
    let mut header = jool::Repr::parse(&h).expect("checked reply");
    header.version = 0;
    let mut attrs: Vec<(u16, Vec<u8>)> = NlasIterator::new(h.payload())
        .flatten()
        .map(|a| (a.raw_kind(), a.value().to_vec()))
        .collect();
    // A stats page (even one whose request had the ERROR flag, which the
    // reply echoes), or else maybe an error report.
    let report =
        attrs.iter().any(|(kind, v)| *kind == JNLAERR_CODE && v.len() == 2);
    if stats && !report {
        attrs.retain(|(id, _)| *id <= min_max);
        if attrs.last().is_none_or(|(id, _)| *id == min_max) {
            header.flags &= !FLAG_M;
        }
    } else {
        for (kind, v) in &mut attrs {
            if *kind == JNLAERR_MSG && v.starts_with(MISMATCH) {
                *v = MISMATCH.to_vec();
            }
        }
    }
    Norm::Jool(start, header, attrs)
}

fn legacy_norm(start: Vec<u8>, attrs: &[u8], min_max: u16) -> Norm {
    let data =
        NlasIterator::new(attrs).flatten().next().expect("checked reply");
    let mut hdr = data.value()[..legacy::RESPONSE_LEN].to_vec();
    let mut payload = data.value()[legacy::RESPONSE_LEN..].to_vec();
    hdr[8..12].fill(0);
    if hdr[16..18] != [0, 0] {
        if payload.starts_with(MISMATCH) {
            payload = MISMATCH.to_vec();
        }
    } else if payload.len() % 8 == 0 {
        payload.truncate((usize::from(min_max) + 1) * 8);
    }
    Norm::Legacy(start, hdr, payload)
}
