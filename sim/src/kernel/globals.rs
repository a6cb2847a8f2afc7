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
    if profile.is_legacy()
        || profile.numbering != Numbering::Jool41
        || xlator != Xlator::Siit
    {
        return None;
    }
    let one = |f: &dyn Fn(&mut Writer)| {
        let mut w = Writer::new();
        f(&mut w);
        w.into_vec()
    };
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
            let p = w.begin_nest(2 | F_NESTED); // pool6
                                                // jnla_put_prefix6: address and length, or (unset) only
                                                // JNLAP_LEN = 0, "to force the nested attribute to exist".
            match pool6 {
                Some((addr, len)) => w.attr(1, &addr).u8(2, len),
                None => w.u8(2, 0),
            };
            w.end_nest(p);
        }),
    ));
    out.push((
        3,
        one(&|w| {
            w.u32(3, 1280); // lowest-ipv6-mtu
        }),
    ));
    for kind in 4..=7 {
        // reset-traffic-class, reset-tos, tos, and the next boolean: 0.
        out.push((
            kind,
            one(&|w| {
                w.u8(kind, 0);
            }),
        ));
    }
    out.push((
        8,
        one(&|w| {
            let p = w.begin_nest(8 | F_NESTED); // mtu-plateaus
            for v in PLATEAUS {
                w.u16(1, v);
            }
            w.end_nest(p);
        }),
    ));
    for (kind, v) in [(9, 0), (10, 2), (11, 1)] {
        out.push((
            kind,
            one(&|w| {
                w.u8(kind, v);
            }),
        ));
    }
    for kind in [12, 13] {
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
