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
    Known {
        id: "instance-table-order-batch",
        why: "A batch whose answers differ in more than one of the three ways above (a listing from an offset, the order of a listing's entries, validate_collision's text): each comes from the order of the real module's instance hash table, which the simulator does not reproduce. Every other datagram of the batch must match.",
        may_change_state: false,
        matches: instance_table_order_batch,
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
    has_foreach_offset(c.request, fam)
        && pairwise(c, |a, b| is_listing(a, fam) && is_listing(b, fam))
}

/// The request holds a Jool INSTANCE_FOREACH carrying attributes.
fn has_foreach_offset(request: &[u8], fam: u16) -> bool {
    message_offsets(request).into_iter().any(|(off, len)| {
        len > JOOL_HDR && is_foreach(&request[off..off + len], fam)
    })
}

/// Each datagram that differs does so in one of the instance hash table's
/// ways: both listings after an offset, a reordered listing, or both
/// `validate_collision` texts.
fn instance_table_order_batch(c: &Case<'_>, fam: u16) -> bool {
    let offset = has_foreach_offset(c.request, fam);
    pairwise(c, |a, b| {
        (offset && is_listing(a, fam) && is_listing(b, fam))
            || reordered(a, b, fam)
            || (collision(a) && collision(b))
    })
}

/// `validate_collision`'s two texts (EEXIST).
const COLLISIONS: [&[u8]; 2] = [
    b"This namespace already has a Jool instance named '",
    b"This namespace already has a Netfilter Jool instance.",
];

/// Both refuse an INSTANCE_ADD with EEXIST, each with one of
/// `validate_collision`'s texts; the rest of the answers match.
fn collision_either_text(c: &Case<'_>) -> bool {
    pairwise(c, |a, b| collision(a) && collision(b))
}

/// Whether a datagram holds one of `validate_collision`'s texts.
fn collision(r: &[u8]) -> bool {
    COLLISIONS.iter().any(|t| contains(r, t))
}

/// Whether the answers differ only in the order of INSTANCE_FOREACH
/// replies' entries: same header, same top-level attributes, in another
/// order.
fn same_entries_reordered(c: &Case<'_>, fam: u16) -> bool {
    pairwise(c, |a, b| reordered(a, b, fam))
}

/// Whether two INSTANCE_FOREACH listings hold the same header and the
/// same top-level attributes, in another order.
fn reordered(a: &[u8], b: &[u8], fam: u16) -> bool {
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

#[cfg(test)]
mod test {
    use jool_sim::wire::hex;

    use super::*;

    fn exchange(replies: &[&str]) -> Exchange {
        Exchange {
            replies: replies.iter().map(|r| hex::decode(r).unwrap()).collect(),
            ..Exchange::default()
        }
    }

    /// Found by `fuzz-kernel --release 4.1.9 --seconds 60` (seed
    /// 1957543662, request #13622): a refused INSTANCE_ADD, an
    /// INSTANCE_FOREACH from the offset `default` (the real module lists
    /// the instance named "" after it, the simulator nothing) and an
    /// INSTANCE_ADD colliding with both (each side names another
    /// collision). Two known ways in one batch; a third difference is not.
    #[test]
    fn test_two_instance_table_differences_in_one_batch() {
        let req = hex::decode("63000000200005000100000000000000010100006a6f6f6c04010900020039186465006661756c74000000000000000034000a80050001000400000020000280140001000064ff9b00000000000000000000000005000200600000007f0000000000000050000000200001000100000000000000000100006a6f6f6c04010600010800000000000000000000000000000000000120000880080001008011f48205000200040000000c00030064656661756c740094000000200001000100000000000000010100006a6f6f6c0401090001000000000000000000000000000000000000000c000a8005000100000000002c000a80050001000400000020000280140001000064ff9b00000000000000000000000005000200600000002c000a80050001000400000020000280140001000064ff9b0000000000000000000000000500020060000000").unwrap();
        let real = exchange(&[
            "780000000200000001000000a3000000eaffffff63000000200005000100000000000000010100006a6f6f6c04010900020039186465006661756c74000000000000000034000a80050001000400000020000280140001000064ff9b00000000000000000000000005000200600000007f00000000000000",
            "4c0000002000000001000000a3000000000200006a6f6f6c0401060001080000000000000000000000000000000000011c000180080001008011f48205000200080000000500030000000000",
            "740000002000000001000000a3000000000200006a6f6f6c04010900010100000000000000000000000000000000000006000100110000003a00020054686973206e616d65737061636520616c7265616479206861732061204e657466696c746572204a6f6f6c20696e7374616e63652e000000",
        ]);
        let sim = exchange(&[
            "78000000020000000100000001000040eaffffff63000000200005000100000000000000010100006a6f6f6c04010900020039186465006661756c74000000000000000034000a80050001000400000020000280140001000064ff9b00000000000000000000000005000200600000007f00000000000000",
            "30000000200000000100000001000040000200006a6f6f6c040106000108000000000000000000000000000000000001",
            "74000000200000000100000001000040000200006a6f6f6c04010900010100000000000000000000000000000000000006000100110000003900020054686973206e616d65737061636520616c7265616479206861732061204a6f6f6c20696e7374616e6365206e616d65642027272e00000000",
        ]);
        let c = Case { request: &req, real: &real, sim: &sim };
        assert_eq!(
            explain(&c, 0x20).map(|k| k.id),
            Some("instance-table-order-batch")
        );
        let mut other = sim.clone();
        other.replies[0][16] ^= 1;
        let c = Case { request: &req, real: &real, sim: &other };
        assert_eq!(explain(&c, 0x20).map(|k| k.id), None);
    }
}
