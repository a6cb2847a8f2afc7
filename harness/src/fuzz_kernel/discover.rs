//! What the kernel under test is: Jool's family id and multicast group,
//! the other families' ids, the namespace tag, how the kernel was built;
//! the base state both sides are put in, and a simulator configured
//! like the kernel.

use std::collections::BTreeSet;

use jool_sim::{
    kernel::INIT_NETNS,
    requests::op,
    versions::Profile,
    wire::{
        ctrl::Family,
        family::{InstanceEntryAttr, ListAttr, Op},
        genl, hex,
        nlmsg::{self, Packet},
    },
};
use serde::{Deserialize, Serialize};

use super::{
    answer::{answer_kind, attrs, GENL_END},
    error::{Error, Result},
    request::{
        self, add_operand, get_family, map_type, message, FAMILY_PLACEHOLDER,
        POOL6,
    },
    target::{KernelUnderTest, SimKernel},
};

/// What the kernel under test told about itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Discovery {
    /// Jool's generic netlink family id.
    pub family_id: u16,
    /// Jool's `joold` multicast group id.
    pub mcast_group: Option<u32>,
    /// Ids of the other generic netlink families (never sent to).
    pub foreign: BTreeSet<u16>,
    /// `JNLAIE_NS` of the fuzzing namespace.
    pub netns_tag: u32,
    /// Linux 6.2+ `-funsigned-char` (names with bytes >= 128 are valid).
    #[serde(default)]
    pub unsigned_char: bool,
    /// The module has the iptables framework.
    #[serde(default)]
    pub xtables: bool,
    /// nlctrl validates GETFAMILY dumps strictly.
    #[serde(default)]
    pub ctrl_dump_strict: bool,
}

/// Asks `k` for Jool's family (id, multicast group) and every other
/// family's id (`CTRL_CMD_GETFAMILY`, then its dump).
pub fn discover_family(k: &mut dyn KernelUnderTest) -> Result<Discovery> {
    let ex = k.exchange(&get_family("Jool", 1), false);
    let reply = ex.replies.first().ok_or_else(|| {
        Error::Discover("no answer to CTRL_CMD_GETFAMILY \"Jool\"".into())
    })?;
    let jool = Family::find(reply).ok_or_else(|| {
        Error::Discover(format!(
            "Jool's family does not exist (is the module loaded?): {}",
            hex::encode(reply)
        ))
    })?;
    let mut d = Discovery {
        family_id: jool.id,
        mcast_group: jool.mcast_groups.last().map(|(_, id)| *id),
        ..Discovery::default()
    };
    let mut dump =
        message(nlmsg::GENL_ID_CTRL, 2, genl::CTRL_CMD_GETFAMILY, &[]);
    Packet::new_unchecked(&mut dump[..])
        .set_flags(nlmsg::F_REQUEST | nlmsg::F_DUMP);
    for r in k.exchange(&dump, false).replies {
        d.foreign.extend(
            nlmsg::Messages::new(&r)
                .filter_map(|m| Family::parse(m.message()).ok())
                .map(|f| f.id),
        );
    }
    d.foreign.remove(&d.family_id);
    d.foreign.remove(&nlmsg::GENL_ID_CTRL);
    Ok(d)
}

/// The requests that put a kernel in the base state: flush both
/// translators' instances of the namespace, then add SIIT and NAT64
/// `default` (netfilter, pool6 64:ff9b::/96).
pub fn base_requests(p: &Profile) -> Vec<Vec<u8>> {
    let flush = |xt| request::request(p, op::INSTANCE_FLUSH, xt, b"", &[]);
    let add = |xt| {
        request::request(
            p,
            op::INSTANCE_ADD,
            xt,
            b"default",
            &add_operand(p, 4, Some(POOL6)),
        )
    };
    vec![flush(1), flush(2), add(1), add(2)]
}

/// Requests whose answers show the state: instance lists, globals and
/// stats of both `default` instances.
pub fn check_requests(p: &Profile) -> Vec<Vec<u8>> {
    let globals = p.numbering.cmd(Op::GlobalForeach).unwrap_or_default();
    let mut v = Vec::new();
    for xt in [1, 2] {
        v.push(request::request(p, op::INSTANCE_FOREACH, xt, b"", &[]));
        v.push(request::request(p, globals, xt, b"default", &[]));
        v.push(request::request(p, op::STATS_FOREACH, xt, b"default", &[]));
    }
    v
}

/// `JNLAIE_NS` of the first instance `k` lists (after the base state).
pub fn discover_netns_tag(
    k: &mut dyn KernelUnderTest,
    p: &Profile,
    family_id: u16,
) -> Result<u32> {
    for mut r in base_requests(p) {
        map_type(&mut r, FAMILY_PLACEHOLDER, family_id);
        k.exchange(&r, false);
    }
    let mut r = request::request(p, op::INSTANCE_FOREACH, 1, b"", &[]);
    map_type(&mut r, FAMILY_PLACEHOLDER, family_id);
    let ex = k.exchange(&r, false);
    let reply = ex.replies.first().ok_or_else(|| {
        Error::Discover("no answer to INSTANCE_FOREACH".into())
    })?;
    let body = reply.get(GENL_END + p.header_len()..).unwrap_or_default();
    let tag = attrs(body)
        .into_iter()
        .filter(|entry| entry.kind() == u16::from(ListAttr::Entry))
        .flat_map(|entry| attrs(entry.value()))
        .find(|a| a.kind() == u16::from(InstanceEntryAttr::Ns))
        .and_then(|a| <[u8; 4]>::try_from(a.value().get(..4)?).ok())
        .map(u32::from_le_bytes);
    tag.ok_or_else(|| {
        Error::Discover(format!(
            "INSTANCE_FOREACH after adding the base instances listed none: {}",
            hex::encode(reply)
        ))
    })
}

/// How the kernel under test was built ([`Build`]), by asking it three
/// questions that change nothing: STATS_FOREACH of a SIIT instance named
/// "\xff" (ESRCH: unsigned `char`; EINVAL "The instance name must be...":
/// signed), INSTANCE_ADD of a NAT64 iptables instance without pool6
/// ("Netfilter is the only available instance framework.": no xtables;
/// else "pool6 is mandatory in NAT64 instances."), and a GETFAMILY dump
/// with an attribute nlctrl's policy lacks.
///
/// [`Build`]: jool_sim::kernel::Build
pub fn discover_build(
    k: &mut dyn KernelUnderTest,
    p: &Profile,
    d: &mut Discovery,
) {
    let mut r = request::request(p, op::STATS_FOREACH, 1, b"\xff", &[]);
    map_type(&mut r, FAMILY_PLACEHOLDER, d.family_id);
    d.unsigned_char =
        answer_kind(&k.exchange(&r, false), d.family_id) == "jool-err3";
    let mut r = request::request(
        p,
        op::INSTANCE_ADD,
        2,
        b"probe",
        &add_operand(p, 8, None),
    );
    map_type(&mut r, FAMILY_PLACEHOLDER, d.family_id);
    const ONLY_NETFILTER: &[u8] =
        b"Netfilter is the only available instance framework.";
    d.xtables =
        !k.exchange(&r, false).replies.iter().any(|m| {
            m.windows(ONLY_NETFILTER.len()).any(|w| w == ONLY_NETFILTER)
        });
    // Type 5, u8: EINVAL where dumps are validated, else the dump.
    let mut dump = message(
        nlmsg::GENL_ID_CTRL,
        2,
        genl::CTRL_CMD_GETFAMILY,
        &[5, 0, 5, 0, b'N', 0, 0, 0],
    );
    Packet::new_unchecked(&mut dump[..])
        .set_flags(nlmsg::F_REQUEST | nlmsg::F_DUMP);
    d.ctrl_dump_strict =
        answer_kind(&k.exchange(&dump, false), d.family_id) == "nlerr22";
}

/// A simulator configured like the kernel `d` describes.
pub fn sim_like(profile: &'static Profile, d: &Discovery) -> SimKernel {
    let mut s = SimKernel::new(profile);
    s.kernel.set_build(jool_sim::kernel::Build {
        unsigned_char: d.unsigned_char,
        xtables: d.xtables,
        ctrl_dump_strict: d.ctrl_dump_strict,
    });
    s.kernel.set_family_id(d.family_id);
    if let Some(g) = d.mcast_group {
        s.kernel.set_mcast_group_id(g);
    }
    s.kernel.set_netns_tag(INIT_NETNS, d.netns_tag);
    s
}

/// Discovers everything about `k`.
pub fn discover(
    k: &mut dyn KernelUnderTest,
    p: &Profile,
) -> Result<Discovery> {
    let mut d = discover_family(k)?;
    d.netns_tag = discover_netns_tag(k, p, d.family_id)?;
    discover_build(k, p, &mut d);
    Ok(d)
}
