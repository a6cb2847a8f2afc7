//! `GLOBAL_FOREACH` replies: an instance's global configuration, encoded
//! as the 4.1.x module encodes a freshly added instance's defaults.
//!
//! Verified byte for byte against the real 4.1.9 SIIT reply
//! (`global_foreach_siit` in fixtures/conformance-4.1.9). The attribute
//! numbers are `JNLAG_*` of 4.1.x; see docs/kernel-facts.md.

use super::Xlator;
use crate::{
    versions::{Numbering, Profile},
    wire::nla::{Writer, F_NESTED},
};

/// The MTU plateaus Jool ships by default (RFC 1191's table).
const PLATEAUS: [u16; 11] = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/// Writes the globals of a new instance; `None` where the simulator does
/// not know the release's or translator's encoding.
pub(super) fn write(
    profile: &Profile,
    xlator: Xlator,
    pool6: Option<([u8; 16], u8)>,
    w: &mut Writer,
) -> Option<()> {
    if profile.is_legacy() || profile.numbering != Numbering::Jool41 || xlator != Xlator::Siit {
        return None;
    }
    w.u8(1, 1); // JNLAG_ENABLED: true
    let p = w.begin_nest(2 | F_NESTED); // JNLAG_POOL6
    if let Some((addr, len)) = pool6 {
        w.attr(1, &addr).u8(2, len);
    }
    w.end_nest(p);
    w.u32(3, 1280); // lowest-ipv6-mtu
    for kind in 4..=7 {
        w.u8(kind, 0); // zeroize-traffic-class, override-tos, tos... (0)
    }
    let p = w.begin_nest(8 | F_NESTED); // mtu-plateaus
    for v in PLATEAUS {
        w.u16(1, v);
    }
    w.end_nest(p);
    w.u8(9, 0);
    w.u8(10, 2);
    w.u8(11, 1);
    for kind in [12, 13] {
        let p = w.begin_nest(kind | F_NESTED);
        w.u8(2, 0);
        w.end_nest(p);
    }
    Some(())
}
