//! Known divergences between the real module and the simulator: each one
//! is either a documented limit of the simulator or a documented kernel
//! behaviour (docs/kernel-facts.md, "Fuzzing the real module" in
//! docs/fuzzing.md). `fuzz-kernel` counts them but does not fail on them.

use jool_sim::{
    requests::op,
    wire::{genl, nlmsg},
};

use super::{
    answer::{attrs, error_code, nlmsg_error},
    request::{cmd_of, kind_of, message_offsets},
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

/// `JNLOP_GLOBAL_UPDATE` and `JNLOP_FILE_HANDLE` (atomic configuration)
/// of the 4.1 numbering (30 operations): the operations the simulator
/// does not emulate that change what it does emulate (SIIT globals,
/// instances).
const STATE_OPS_41: [u8; 2] = [9, 26];

/// After a [`KNOWN`] `sim-op-not-emulated` divergence: whether the real
/// module may have changed state the simulator models (instances,
/// globals). EAMT, pool4, BIB, denylist and joold changes do not show in
/// the emulated operations' answers, and resynchronising after each costs
/// ten exchanges. With another numbering than 4.1's, always.
pub fn not_emulated_changes_state(
    request: &[u8],
    fam: u16,
    op_count: u8,
) -> bool {
    op_count != 30
        || message_offsets(request).into_iter().any(|(off, len)| {
            let m = &request[off..off + len];
            kind_of(m) == Some(fam)
                && cmd_of(m)
                    .is_none_or(|c| STATE_OPS_41.contains(&c) || c >= op_count)
        })
}

/// Every known divergence.
pub const KNOWN: &[Known] = &[
    Known {
        id: "sim-op-not-emulated",
        why: "The simulator emulates the operations of the stats path (instance foreach/add/hello/rm/flush, stats foreach, global foreach) and nlctrl's GETFAMILY, and GETPOLICY only up to its checks (then ENOSYS); the others (EAMT, pool4, BIB, session, global update, ...) answer ENOSYS \"jool-sim does not emulate this operation.\" after the common checks, and GLOBAL_FOREACH of a NAT64 instance \"jool-sim does not emulate the globals of this release.\". The real module runs them; both sides are resynchronised when one of them may have changed what the simulator models (global update, atomic configuration: `not_emulated_changes_state`).",
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
        matches: same_entries_reordered,
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

/// Length of a Jool message's netlink, genl and (4.1) Jool headers.
const JOOL_HDR: usize = 20 + 28;

/// Whether the answers are the same datagram for datagram after masking,
/// except for pairs that `differ` accepts. The rest of a batch (acks,
/// errors, other replies) must match exactly.
fn pairwise(c: &Case<'_>, differ: impl Fn(&[u8], &[u8]) -> bool) -> bool {
    c.real.sent == c.sim.sent
        && c.real.recv_error == c.sim.recv_error
        && c.real.replies.len() == c.sim.replies.len()
        && c.real
            .replies
            .iter()
            .zip(&c.sim.replies)
            .all(|(a, b)| nlmsg::masked(a) == nlmsg::masked(b) || differ(a, b))
}

/// Whether `m` is a Jool INSTANCE_FOREACH message (request or reply: the
/// genl command).
fn is_foreach(m: &[u8], fam: u16) -> bool {
    m.len() >= JOOL_HDR
        && kind_of(m) == Some(fam)
        && cmd_of(m) == Some(op::INSTANCE_FOREACH)
}

/// Whether `m` is an INSTANCE_FOREACH reply listing instances: not a
/// Jool error report (whose ERROR flag a listing may carry too, echoed
/// from the request).
fn is_listing(m: &[u8], fam: u16) -> bool {
    is_foreach(m, fam) && error_code(m).is_none()
}

/// The request holds a Jool INSTANCE_FOREACH carrying attributes (an
/// offset), and the answers differ only in INSTANCE_FOREACH replies.
fn foreach_from_offset_both_listed(c: &Case<'_>, fam: u16) -> bool {
    let with_offset =
        message_offsets(c.request).into_iter().any(|(off, len)| {
            len > JOOL_HDR && is_foreach(&c.request[off..off + len], fam)
        });
    with_offset && pairwise(c, |a, b| is_listing(a, fam) && is_listing(b, fam))
}

/// `validate_collision`'s two texts (EEXIST).
const COLLISIONS: [&[u8]; 2] = [
    b"This namespace already has a Jool instance named '",
    b"This namespace already has a Netfilter Jool instance.",
];

/// Both refuse an INSTANCE_ADD with EEXIST, each with one of
/// `validate_collision`'s texts; the rest of the answers match.
fn collision_either_text(c: &Case<'_>) -> bool {
    let collision = |r: &[u8]| COLLISIONS.iter().any(|t| contains(r, t));
    pairwise(c, |a, b| collision(a) && collision(b))
}

/// Whether the answers differ only in the order of INSTANCE_FOREACH
/// replies' entries: same header, same top-level attributes, in another
/// order.
fn same_entries_reordered(c: &Case<'_>, fam: u16) -> bool {
    let reordered = |a: &[u8], b: &[u8]| {
        if a.len() != b.len() || !is_listing(a, fam) {
            return false;
        }
        if a[..8] != b[..8] || a[16..JOOL_HDR] != b[16..JOOL_HDR] {
            return false;
        }
        let entries = |m: &'_ [u8]| -> Vec<(u16, Vec<u8>)> {
            attrs(&m[JOOL_HDR..])
                .iter()
                .map(|a| (a.kind(), a.value().to_vec()))
                .collect()
        };
        let (mut x, mut y) = (entries(a), entries(b));
        x.sort_unstable();
        y.sort_unstable();
        x == y
    };
    pairwise(c, reordered)
}

/// Whether a datagram holds an `NLMSG_ERROR` with `error` (the simulator
/// answers `ENOSYS` for what it does not emulate, e.g. nlctrl's policy
/// dumps, whose text only shows with extended acks; the real genetlink
/// paths of these requests never do).
fn nlmsgerr_is(d: &[u8], error: i32) -> bool {
    message_offsets(d).into_iter().any(|(off, len)| {
        let m = &d[off..off + len];
        kind_of(m) == Some(nlmsg::NLMSG_ERROR) && nlmsg_error(m) == Some(error)
    })
}

/// Whether a datagram holds an nlctrl message about a family other than
/// Jool's.
fn names_other_family(d: &[u8]) -> bool {
    message_offsets(d).into_iter().any(|(off, len)| {
        let m = &d[off..off + len];
        kind_of(m) == Some(nlmsg::GENL_ID_CTRL)
            && attrs(m.get(20..).unwrap_or_default()).iter().any(|a| {
                a.kind() == genl::CTRL_ATTR_FAMILY_NAME
                    && a.value().split(|&b| b == 0).next() != Some(b"Jool")
            })
    })
}

/// The known divergence that explains `c`, if any.
pub fn explain(c: &Case<'_>, family_id: u16) -> Option<&'static Known> {
    KNOWN.iter().find(|k| (k.matches)(c, family_id))
}
