//! Known divergences between the real module and the simulator: each one
//! is either a documented limit of the simulator or a documented kernel
//! behaviour (docs/kernel-facts.md, "Fuzzing the real module" in
//! docs/fuzzing.md). `fuzz-kernel` counts them but does not fail on them.

use jool_sim::wire::{genl, nlmsg};

use super::{
    engine::{attrs, mask},
    mutate::message_offsets,
    target::Exchange,
};

/// One request and both answers.
#[derive(Clone, Copy, Debug)]
pub struct Case<'a> {
    /// The request datagram (family id already mapped).
    pub request: &'a [u8],
    /// The kernel under test's answer.
    pub real: &'a Exchange,
    /// The simulator's answer.
    pub sim: &'a Exchange,
}

/// A known divergence.
#[derive(Clone, Copy, Debug)]
pub struct Known {
    /// Short id, shown in reports.
    pub id: &'static str,
    /// Why the answers differ.
    pub why: &'static str,
    /// The real kernel may have changed state the simulator did not:
    /// resynchronise after it.
    pub may_change_state: bool,
    matches: fn(&Case<'_>, u16) -> bool,
}

/// How the simulator's error texts for what it does not emulate start
/// ("... this operation.", "... the globals of this release.").
const NOT_EMULATED: &[u8] = b"jool-sim does not emulate ";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every known divergence.
pub const KNOWN: &[Known] = &[
    Known {
        id: "sim-op-not-emulated",
        why: "The simulator emulates the operations of the stats path (instance foreach/add/hello/rm/flush, stats foreach, global foreach) and nlctrl's GETFAMILY, and GETPOLICY only up to its checks (then ENOSYS); the others (EAMT, pool4, BIB, session, global update, ...) answer ENOSYS \"jool-sim does not emulate this operation.\" after the common checks, and GLOBAL_FOREACH of a NAT64 instance \"jool-sim does not emulate the globals of this release.\". The real module runs them, and may change state: both sides are resynchronised.",
        may_change_state: true,
        matches: |c, _| {
            c.sim.replies.iter().any(|r| contains(r, NOT_EMULATED) || nlmsgerr_is(r, -38))
        },
    },
    Known {
        id: "ctrl-other-family",
        why: "nlctrl on the real kernel knows every generic netlink family (nlctrl itself, devlink, ethtool, ...): a GETFAMILY by another name or id, or a dump, answers them; the simulator only registers Jool's.",
        may_change_state: false,
        matches: |c, _| c.real.replies.iter().any(|r| names_other_family(r)),
    },
    Known {
        id: "instance-foreach-order",
        why: "INSTANCE_FOREACH lists the instances in the order of the real module's hash table; the simulator lists them by (namespace, name). Same entries, another order.",
        may_change_state: false,
        matches: |c, _| same_entries_reordered(c),
    },
    Known {
        id: "instance-foreach-offset-order",
        why: "INSTANCE_FOREACH from an offset (JNLAR_OFFSET: the last instance seen) lists the instances that follow it in the real module's hash table order, which userspace cannot predict; the simulator lists those that follow it by (namespace, name). Both answer with entries (or an empty list), the same instances exist on both sides.",
        may_change_state: false,
        matches: |c, fam| foreach_from_offset_both_listed(c, fam),
    },
    Known {
        id: "instance-add-collision-order",
        why: "INSTANCE_ADD of a name that exists while another Netfilter instance of the type exists too: validate_collision walks the instance hash table (hashed on the namespace's address) and reports the first collision it meets, \"...named '...'\" or \"...a Netfilter Jool instance.\"; the simulator checks the name first. Same error (EEXIST), same state.",
        may_change_state: false,
        matches: |c, _| collision_either_text(c),
    },
];

/// The request is one Jool INSTANCE_FOREACH carrying attributes (an
/// offset), and both sides answered it with Jool replies; or a batch
/// holding one ([`in_batch`]).
fn foreach_from_offset_both_listed(c: &Case<'_>, fam: u16) -> bool {
    const HDR: usize = 20 + 28;
    let offs = message_offsets(c.request);
    let [(off, len)] = offs[..] else { return in_batch(c, fam) };
    let m = &c.request[off..off + len];
    let is_foreach =
        m.len() > HDR && u16::from_le_bytes([m[4], m[5]]) == fam && m[16] == 0;
    // Jool replies, not NLMSG_ERRORs (their flags echo the request's,
    // ERROR bit included, so only the message type tells).
    let listed = |e: &Exchange| {
        !e.replies.is_empty()
            && e.replies.iter().all(|r| {
                r.len() >= HDR && u16::from_le_bytes([r[4], r[5]]) == fam
            })
    };
    is_foreach && listed(c.real) && listed(c.sim)
}

/// A batch holding an INSTANCE_FOREACH with attributes: the datagrams are
/// the same after masking, but for INSTANCE_FOREACH replies (genl command
/// 0) on both sides.
fn in_batch(c: &Case<'_>, fam: u16) -> bool {
    const HDR: usize = 20 + 28;
    let foreach = |m: &[u8]| {
        m.len() >= HDR && u16::from_le_bytes([m[4], m[5]]) == fam && m[16] == 0
    };
    let with_offset = message_offsets(c.request)
        .into_iter()
        .any(|(off, len)| len > HDR && foreach(&c.request[off..off + len]));
    with_offset
        && c.real.sent == c.sim.sent
        && c.real.recv_error == c.sim.recv_error
        && c.real.replies.len() == c.sim.replies.len()
        && c.real
            .replies
            .iter()
            .zip(&c.sim.replies)
            .all(|(a, b)| mask(a) == mask(b) || (foreach(a) && foreach(b)))
}

/// `validate_collision`'s two texts (EEXIST).
const COLLISIONS: [&[u8]; 2] = [
    b"This namespace already has a Jool instance named '",
    b"This namespace already has a Netfilter Jool instance.",
];

/// Both refuse an INSTANCE_ADD with EEXIST, each with one of
/// `validate_collision`'s texts.
fn collision_either_text(c: &Case<'_>) -> bool {
    let one = |e: &Exchange| {
        e.replies.len() == 1
            && COLLISIONS.iter().any(|t| contains(&e.replies[0], t))
    };
    one(c.real) && one(c.sim)
}

/// Whether the answers differ only in the order of an INSTANCE_FOREACH
/// reply's entries: each datagram pair is the same after masking, or is
/// a pair of INSTANCE_FOREACH replies (genl command 0) with the same
/// header and the same top-level attributes in another order. Acks and
/// the replies to the other messages of a batch must match exactly.
fn same_entries_reordered(c: &Case<'_>) -> bool {
    const HDR: usize = 20 + 28;
    let reordered = |a: &[u8], b: &[u8]| {
        if a.len() != b.len() || a.len() < HDR || a[16] != 0 {
            return false;
        }
        if a[..8] != b[..8] || a[16..HDR] != b[16..HDR] {
            return false;
        }
        let mut x: Vec<(u16, &[u8])> = attrs(&a[HDR..]);
        let mut y: Vec<(u16, &[u8])> = attrs(&b[HDR..]);
        x.sort_unstable();
        y.sort_unstable();
        x == y
    };
    c.real.sent == c.sim.sent
        && c.real.recv_error == c.sim.recv_error
        && c.real.replies.len() == c.sim.replies.len()
        && c.real
            .replies
            .iter()
            .zip(&c.sim.replies)
            .all(|(a, b)| mask(a) == mask(b) || reordered(a, b))
}

/// Whether a datagram holds an `NLMSG_ERROR` with `error` (the simulator
/// answers `ENOSYS` for what it does not emulate, e.g. nlctrl's policy
/// dumps, whose text only shows with extended acks; the real genetlink
/// paths of these requests never do).
fn nlmsgerr_is(d: &[u8], error: i32) -> bool {
    message_offsets(d).into_iter().any(|(off, len)| {
        let m = &d[off..off + len];
        m.len() >= 20
            && u16::from_le_bytes([m[4], m[5]]) == nlmsg::NLMSG_ERROR
            && i32::from_le_bytes([m[16], m[17], m[18], m[19]]) == error
    })
}

/// Whether a datagram holds an nlctrl message about a family other than
/// Jool's.
fn names_other_family(d: &[u8]) -> bool {
    message_offsets(d).into_iter().any(|(off, len)| {
        let m = &d[off..off + len];
        m.len() >= 20
            && u16::from_le_bytes([m[4], m[5]]) == nlmsg::GENL_ID_CTRL
            && attrs(&m[20..]).iter().any(|(k, v)| {
                *k == genl::CTRL_ATTR_FAMILY_NAME
                    && v.split(|&b| b == 0).next() != Some(b"Jool")
            })
    })
}

/// The known divergence that explains `c`, if any.
pub fn explain(c: &Case<'_>, family_id: u16) -> Option<&'static Known> {
    KNOWN.iter().find(|k| (k.matches)(c, family_id))
}
