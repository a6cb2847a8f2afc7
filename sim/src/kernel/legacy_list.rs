//! 4.0.0 – 4.0.7 `MODE_INSTANCE` / `OP_FOREACH` (`handle_instance_display`,
//! src/mod/common/nl/instance.c): the instance table as an array of
//! `struct instance_entry_usr` after the `response_hdr`.
//!
//! ```text
//!  0              8       9                    25          32
//! +--------------+-------+--------------------+-----------+
//! | ns (pointer) | fw/xf | iname[16]          | (7 bytes) |
//! +--------------+-------+--------------------+-----------+
//! ```
//! `ns` is the namespace's `struct net *`; byte 8 is `fw` (`FW_NETFILTER`
//! 1, `FW_IPTABLES` 2) in 4.0.0 – 4.0.5 and `xf` (`XF_NETFILTER` 4,
//! `XF_IPTABLES` 8) from 4.0.6; the last 7 bytes are padding (4.0.0 –
//! 4.0.6) or `slop[7]` (4.0.7). The kernel fills the entry on its stack
//! field by field, so the padding and the name's bytes after its NUL are
//! whatever the stack held (`wire::legacy::mask_instance_entries`).

use super::{
    state::{Framework, Xlator},
    Kernel, NetnsId, DEFAULT_MSG_BUDGET,
};
use crate::wire::{genl, nlmsg};

/// `sizeof(struct instance_entry_usr)` on x86_64.
pub(super) const ENTRY_LEN: usize = 32;
/// `struct response_hdr`.
const RESPONSE_LEN: usize = crate::wire::legacy::RESPONSE_LEN;
/// `NLBUFFER_MAX_PAYLOAD` is `GENLMSG_DEFAULT_SIZE - 256`.
const NLBUFFER_SLACK: usize = 256;
/// Where `struct instance_entry_usr offset` starts in
/// `union request_instance` (after `config_bool offset_set`, aligned to
/// the pointer).
const OFFSET_AT: usize = 8;

/// The listing of `xlator`'s instances, in every namespace (4.0.x does
/// not filter by namespace), after the entry `body` names as its offset
/// (`offset_set`, then the entry): `None` when no instance matches it
/// (`xlator_foreach`'s ESRCH). Else whether entries were left out (the
/// `nlcore_buffer` full: `pending_data`) and the entries that fit. The
/// real module walks a list (4.0.0 – 4.0.5) or a hash table (4.0.6 –
/// 4.0.7); the simulator lists in (netns, name) order.
pub(super) fn foreach(
    k: &Kernel,
    xlator: Xlator,
    body: &[u8],
) -> Option<(bool, Vec<u8>)> {
    let mut entries = Vec::new();
    for (&ns, netns) in k.namespaces() {
        for inst in netns.instances.values().filter(|i| i.xlator == xlator) {
            entries.push(entry(k, ns, inst.framework, &inst.name));
        }
    }
    let start = match body.first() {
        Some(&set) if set != 0 => {
            let offset = body.get(OFFSET_AT..).unwrap_or_default();
            1 + entries.iter().position(|e| offset_equals(k, offset, e))?
        }
        _ => 0,
    };
    // nlbuffer_init_response(nlbuffer_response_max_size()): the
    // response_hdr and the entries in NLBUFFER_MAX_PAYLOAD bytes, a size
    // fixed at build time (PAGE_SIZE), whatever the reply budget.
    let genlmsg_default_size =
        DEFAULT_MSG_BUDGET - nlmsg::HEADER_LEN - genl::HEADER_LEN;
    let room =
        (genlmsg_default_size - NLBUFFER_SLACK - RESPONSE_LEN) / ENTRY_LEN;
    let rest = &entries[start.min(entries.len())..];
    let fit = rest.len().min(room);
    Some((fit < rest.len(), rest[..fit].concat()))
}

/// One entry as `xlator_entry_to_userspace` fills it; the bytes it does
/// not write are zero here.
fn entry(k: &Kernel, ns: NetnsId, fw: Framework, name: &str) -> Vec<u8> {
    let mut e = vec![0u8; ENTRY_LEN];
    e[..8].copy_from_slice(&ns_pointer(k, ns).to_le_bytes());
    e[8] = fw.listed_by(k.profile());
    let name = super::state::text_bytes(name);
    let n = name.len().min(15);
    e[9..9 + n].copy_from_slice(&name[..n]);
    e
}

/// The `struct net *` of `ns`: a kernel address (its top half all ones,
/// as the real listings show) whose low half is the namespace's tag
/// ([`Kernel::netns_tag`]).
fn ns_pointer(k: &Kernel, ns: NetnsId) -> u64 {
    0xffff_ffff_0000_0000 | u64::from(k.netns_tag(ns))
}

/// `offset_equals`: same `ns` and name (`strcmp`), and same `fw` in
/// 4.0.0 – 4.0.5.
fn offset_equals(k: &Kernel, offset: &[u8], entry: &[u8]) -> bool {
    let with_fw = k.profile().is_before("4.0.6");
    let name = |b: &[u8]| -> Vec<u8> {
        let s = b.get(9..).unwrap_or_default();
        s.iter().take_while(|&&c| c != 0).copied().collect()
    };
    offset.get(..8) == entry.get(..8)
        && (!with_fw || offset.get(8) == entry.get(8))
        && name(offset) == name(entry)
}
