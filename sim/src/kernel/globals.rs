//! `GLOBAL_FOREACH` replies: an instance's global configuration, encoded
//! as the 4.1.x module encodes a freshly added instance's defaults.
//!
//! Verified byte for byte against the real 4.1.9 SIIT reply
//! (`global_foreach_siit` in fixtures/conformance-4.1.9). The attribute
//! numbers are `JNLAG_*` of 4.1.x; see docs/kernel-facts.md.

use super::Xlator;
use crate::kernel::Prefix6;
use crate::{
    versions::{Numbering, Profile},
    wire::nla::{Writer, F_NESTED},
};

/// The MTU plateaus Jool ships by default (RFC 1191's table).
const PLATEAUS: [u16; 11] =
    [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/// The globals of a new instance, in metadata-array order, each as
/// `(JNLAG id, encoded attribute)`; `None` where the simulator does not
/// know the release's or translator's encoding.
pub(super) fn entries(
    profile: &Profile,
    xlator: Xlator,
    pool6: Option<Prefix6>,
) -> Option<Vec<(u16, Vec<u8>)>> {
    // 4.2.0-rc1 to rc3 (MAP-T numbering) answer a SIIT instance's globals
    // exactly as 4.1.2+ does (the real rc modules' replies, in
    // fixtures/matrix/probe/4.2.0-rc*).
    if profile.is_legacy()
        || !matches!(profile.numbering, Numbering::Jool41 | Numbering::MapT)
        || xlator != Xlator::Siit
    {
        return None;
    }
    let one = |f: &dyn Fn(&mut Writer)| {
        let mut w = Writer::new();
        f(&mut w);
        w.into_vec()
    };
    let lowest = profile.lowest_ipv6_mtu_global();
    let shift = u16::from(lowest.is_none());
    let mut out = Vec::new();
    out.push((
        1,
        one(&|w| {
            w.u8(1, 1); // enabled: true
        }),
    ));
    out.push((
        2,
        one(&|w| {
            // pool6. jnla_put_prefix6: address and length, or (unset)
            // only JNLAP_LEN = 0, "to force the nested attribute to exist".
            let p = w.begin_nest(2 | F_NESTED);
            match pool6 {
                Some((addr, len)) => w.attr(1, &addr).u8(2, len),
                None => w.u8(2, 0),
            };
            w.end_nest(p);
        }),
    ));
    let lowest_entry = |id: u16| {
        (
            id,
            one(&|w| {
                w.u32(id, 1280); // lowest-ipv6-mtu
            }),
        )
    };
    let first_bool = if lowest == Some(3) { 4 } else { 3 };
    if lowest == Some(3) {
        out.push(lowest_entry(3));
    }
    for kind in first_bool..first_bool + 4 {
        // trace/debug, reset-traffic-class, reset-tos, tos: 0.
        out.push((
            kind,
            one(&|w| {
                w.u8(kind, 0);
            }),
        ));
    }
    if lowest == Some(7) {
        out.push(lowest_entry(7));
    }
    let plateaus = 8 - shift;
    out.push((
        plateaus,
        one(&|w| {
            let p = w.begin_nest(plateaus | F_NESTED); // mtu-plateaus
            for v in PLATEAUS {
                w.u16(1, v);
            }
            w.end_nest(p);
        }),
    ));
    for (kind, v) in [(9 - shift, 0), (10 - shift, 2), (11 - shift, 1)] {
        out.push((
            kind,
            one(&|w| {
                w.u8(kind, v);
            }),
        ));
    }
    for kind in [12 - shift, 13 - shift] {
        out.push((
            kind,
            one(&|w| {
                let p = w.begin_nest(kind | F_NESTED);
                w.u8(2, 0);
                w.end_nest(p);
            }),
        ));
    }
    Some(out)
}
