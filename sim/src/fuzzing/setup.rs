//! The kernels the fuzz bodies start from: built once per release and set
//! of loaded modules, then cloned for each input.
//!
//! Every kernel holds the same instances, where their module is loaded:
//!
//! | netns | translator | name      | framework | pool6           |
//! |-------|------------|-----------|-----------|-----------------|
//! | 1     | SIIT       | `default` | netfilter | `64:ff9b::/96`  |
//! | 1     | NAT64      | `default` | netfilter | `64:ff9b::/96`  |
//! | 2     | SIIT       | `alt`     | iptables  | none            |
//!
//! and counter `id` of each holds [`counter_value`]`(xlator, id)`.

use crate::kernel::Prefix6;
use std::sync::OnceLock;

use super::Input;
use crate::{
    kernel::{
        Caller, Framework, Kernel, NetnsId, Xlator, DEFAULT_MSG_BUDGET,
        INIT_NETNS,
    },
    versions::Profile,
};

/// Budgets a setup can choose (bytes per reply message).
pub const BUDGETS: [usize; 4] = [DEFAULT_MSG_BUDGET, 1024, 512, 256];

/// Namespaces a caller can be in: with both `default` instances, with
/// `alt`, and empty.
pub const NETNS: [NetnsId; 3] = [INIT_NETNS, 2, 3];

/// Port id of every fuzzed socket.
pub const PORT_ID: u32 = 0x0f00_0001;

/// Loaded modules, by index: both, SIIT only, NAT64 only, none.
const MODULES: [(bool, bool); 4] =
    [(true, true), (true, false), (false, true), (false, false)];

/// `64:ff9b::/96`.
pub const POOL6: Prefix6 =
    ([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 96);

/// What counter `id` of an instance of `xlator` holds at the start.
pub fn counter_value(xlator: Xlator, id: u16) -> u64 {
    (u64::from(id) << 8 | u64::from(xlator.xt()))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A kernel and a caller, decoded from two bytes:
///
/// - byte 0: release, an index into [`Profile::all`];
/// - byte 1: bit 0 `CAP_NET_ADMIN`, bit 1 `NETLINK_EXT_ACK`, bits 2-3
///   modules (both, SIIT, NAT64, none), bits 4-5 the caller's netns
///   ([`NETNS`], 3 = the initial one), bits 6-7 the budget ([`BUDGETS`]).
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Index of the release in [`Profile::all`].
    pub release: usize,
    /// Index into `MODULES`.
    pub modules: usize,
    /// Bytes a reply message may hold.
    pub budget: usize,
    /// The caller.
    pub caller: Caller,
}

impl Setup {
    /// Reads the two setup bytes.
    pub fn decode(input: &mut Input<'_>) -> Self {
        let release = input.below(Profile::all().len());
        Self::with_flags(release, input.u8())
    }

    /// The setup of release `release` (an index) and flags byte `flags`.
    pub fn with_flags(release: usize, flags: u8) -> Self {
        let bits = |shift: u8| usize::from(flags >> shift & 3);
        let caller = Caller {
            netns: NETNS[bits(4) % NETNS.len()],
            net_admin: flags & 1 != 0,
            port_id: PORT_ID,
            ext_ack: flags & 2 != 0,
        };
        Self { release, modules: bits(2), budget: BUDGETS[bits(6)], caller }
    }

    /// The two bytes [`Setup::decode`] reads as `release`, a privileged or
    /// unprivileged caller in the initial netns, both modules and the
    /// default budget.
    pub fn encode(release: &str, net_admin: bool, ext_ack: bool) -> [u8; 2] {
        let index = Profile::all()
            .iter()
            .position(|p| p.release == release)
            .unwrap_or(0);
        [index as u8, u8::from(net_admin) | u8::from(ext_ack) << 1]
    }

    /// The release.
    pub fn profile(&self) -> &'static Profile {
        &Profile::all()[self.release]
    }

    /// A fresh copy of the setup's kernel.
    pub fn kernel(&self) -> Kernel {
        let mut k = self.baseline().clone();
        k.set_msg_budget(self.budget);
        k
    }

    /// The cached kernel [`Setup::kernel`] copies (with the default
    /// budget).
    pub fn baseline(&self) -> &'static Kernel {
        base(self.release, self.modules)
    }
}

/// The cached kernel of a release and module set.
fn base(release: usize, modules: usize) -> &'static Kernel {
    static ALL: OnceLock<Vec<Kernel>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let build = |i: usize| {
            build(
                &Profile::all()[i / MODULES.len()],
                MODULES[i % MODULES.len()],
            )
        };
        (0..Profile::all().len() * MODULES.len()).map(build).collect()
    });
    &all[release * MODULES.len() + modules]
}

fn build(profile: &'static Profile, (siit, nat64): (bool, bool)) -> Kernel {
    let mut k = Kernel::new(profile);
    k.set_modules(siit, nat64);
    let instances = [
        (
            INIT_NETNS,
            Xlator::Siit,
            "default",
            Framework::Netfilter,
            Some(POOL6),
        ),
        (
            INIT_NETNS,
            Xlator::Nat64,
            "default",
            Framework::Netfilter,
            Some(POOL6),
        ),
        (NETNS[1], Xlator::Siit, "alt", Framework::Iptables, None),
    ];
    for (ns, x, name, fw, pool6) in instances {
        // Fails only when the module is not loaded: then there is no
        // instance of that translator.
        if k.add_instance(ns, x, name, fw).is_err() {
            continue;
        }
        let ids = profile.first_id()..=profile.max_id;
        let values: Vec<_> =
            ids.map(|id| (id, counter_value(x, id))).collect();
        let set = k
            .set_counters(ns, x, name, &values)
            .and_then(|()| k.set_pool6(ns, x, name, pool6));
        assert!(set.is_ok(), "setting up {name}: {set:?}");
    }
    k
}
