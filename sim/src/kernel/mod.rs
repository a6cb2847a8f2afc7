//! The simulated kernel: network namespaces, Jool instances and their
//! counters, and the generic-netlink family that serves them.
//!
//! [`Kernel::handle`] takes one datagram as a client would `sendmsg()` it
//! to a `NETLINK_GENERIC` socket and returns the datagrams the kernel
//! would queue on that socket, in order, one message each. Everything the
//! real module checks is checked here, in the same order, with the same
//! texts and errnos, for the release of the kernel's [`Profile`]:
//!
//! 1. the netlink core ([`netlink`]): messages without `NLM_F_REQUEST`,
//!    control types, acks, `NLMSG_ERROR` echoes, extended acks;
//! 2. generic netlink: family lookup (`ENOENT`), header length (`EINVAL`),
//!    command lookup and dump requests (`EOPNOTSUPP`), strict attribute
//!    policy (`EINVAL` with extack);
//! 3. nlctrl `CTRL_CMD_GETFAMILY` ([`ctrl`]);
//! 4. Jool's own request checks and operations ([`jool`], and [`legacy`]
//!    for 4.0.0 – 4.0.7).

use std::collections::BTreeMap;

use crate::{versions::Profile, wire::nlmsg};

mod ctrl;
mod globals;
mod jool;
mod legacy;
mod legacy_list;
pub(crate) mod netlink;
mod state;

pub use netlink::{
    EEXIST, EINVAL, EMSGSIZE, ENODATA, ENOENT, ENOSYS, EOPNOTSUPP, EPERM,
    ERANGE, ESRCH,
};
pub use state::{
    iname_valid, iname_valid_for, Framework, Instance, Netns, NetnsId,
    Prefix6, StateError, Xlator,
};

/// Who sent a request, and the options of the socket it came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The sender's network namespace.
    pub netns: NetnsId,
    /// `capable(CAP_NET_ADMIN)`: the capability in the *initial* user
    /// namespace (root of a new user namespace does not have it).
    pub net_admin: bool,
    /// The socket's port id (`nlmsg_pid` of replies).
    pub port_id: u32,
    /// `NETLINK_EXT_ACK` is set on the socket.
    pub ext_ack: bool,
}

impl Caller {
    /// A privileged caller in `netns` with port id 1.
    pub fn root(netns: NetnsId) -> Self {
        Self { netns, net_admin: true, port_id: 1, ext_ack: false }
    }

    /// A caller without `CAP_NET_ADMIN` in `netns` with port id 1.
    pub fn unprivileged(netns: NetnsId) -> Self {
        Self { net_admin: false, ..Self::root(netns) }
    }
}

/// A generic netlink family Jool registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    /// Name ("Jool", or "SIIT_Jool"/"NAT64_Jool" in 4.0.0 – 4.0.5).
    pub name: &'static str,
    /// Family id (`nlmsg_type`).
    pub id: u16,
    /// The translator a per-module family serves.
    pub xlator: Option<Xlator>,
    /// The id of its `joold` multicast group.
    pub mcast_group: u32,
}

/// The families a kernel registers (at most two), as a slice: built on
/// every message, so kept off the heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Families {
    slots: [Family; 2],
    len: usize,
}

impl Families {
    const EMPTY: Family =
        Family { name: "", id: 0, xlator: None, mcast_group: 0 };

    fn new() -> Self {
        Self { slots: [Self::EMPTY; 2], len: 0 }
    }

    fn push(&mut self, f: Family) {
        self.slots[self.len] = f;
        self.len += 1;
    }
}

impl std::ops::Deref for Families {
    type Target = [Family];

    fn deref(&self) -> &[Family] {
        &self.slots[..self.len]
    }
}

impl IntoIterator for Families {
    type Item = Family;
    type IntoIter = std::iter::Take<std::array::IntoIter<Family, 2>>;

    fn into_iter(self) -> Self::IntoIter {
        self.slots.into_iter().take(self.len)
    }
}

/// The initial network namespace's id in-process.
pub const INIT_NETNS: NetnsId = 1;

/// `GENLMSG_DEFAULT_SIZE` with the netlink and genl headers: the bytes a
/// reply may hold on x86_64 with 4 KiB pages (`SKB_WITH_OVERHEAD(4096)`).
pub const DEFAULT_MSG_BUDGET: usize = 3776;

/// Largest datagram a netlink socket accepts (`sk_sndbuf` default 212992
/// minus 32).
pub const MAX_DATAGRAM: usize = 212_992 - 32;

/// Most log lines kept (like a ring buffer).
const LOG_LINES: usize = 1024;

/// The simulated kernel.
#[derive(Clone, Debug)]
pub struct Kernel {
    profile: &'static Profile,
    family_id: u16,
    mcast_group_id: u32,
    siit_loaded: bool,
    nat64_loaded: bool,
    budget: usize,
    namespaces: BTreeMap<NetnsId, Netns>,
    netns_tags: BTreeMap<NetnsId, u32>,
    log: Vec<String>,
    /// An extack message a handler left for the ack of a message it
    /// served (a warning: `netlink_ack` sends it with error 0 too).
    ack_warning: Option<&'static str>,
    build: Build,
}

/// How the kernel and the module were built, beside the release: what
/// the same Jool release does differently on two machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Build {
    /// `char` is unsigned (Linux 6.2 and later build every architecture
    /// with `-funsigned-char`): instance names with bytes of 128 and up
    /// pass `iname_validate()`.
    pub unsigned_char: bool,
    /// The module has the iptables framework (`NETFILTER_XTABLES`; 4.1.9:
    /// not `XTABLES_DISABLED`). Debian trixie's 4.1.13 build has not.
    pub xtables: bool,
    /// nlctrl validates the attributes of a `CTRL_CMD_GETFAMILY` dump
    /// strictly (an unknown attribute type is EINVAL), as trixie's 6.12
    /// does; bookworm's 6.1 ignores them.
    pub ctrl_dump_strict: bool,
}

impl Default for Build {
    /// Debian bookworm's: Linux 6.1 (signed `char`), with xtables.
    fn default() -> Self {
        Self { unsigned_char: false, xtables: true, ctrl_dump_strict: false }
    }
}

impl Kernel {
    /// A kernel running `profile`'s release with both modules loaded, no
    /// instances, Jool's family id 0x20 and multicast group 9 (as the real
    /// 4.1.9 module on Debian bookworm's 6.1 kernel).
    pub fn new(profile: &'static Profile) -> Self {
        Self {
            profile,
            family_id: 0x20,
            mcast_group_id: 9,
            siit_loaded: true,
            nat64_loaded: true,
            budget: DEFAULT_MSG_BUDGET,
            namespaces: BTreeMap::new(),
            netns_tags: BTreeMap::new(),
            ack_warning: None,
            build: Build::default(),
            log: Vec::new(),
        }
    }

    /// The release this kernel runs.
    pub fn profile(&self) -> &'static Profile {
        self.profile
    }

    /// Jool's generic netlink family id, if a module is loaded (the first
    /// family, for 4.0.0 – 4.0.5 which register one per module).
    pub fn family_id(&self) -> Option<u16> {
        self.families().first().map(|f| f.id)
    }

    /// The generic netlink families the loaded modules register.
    ///
    /// 4.0.0 – 4.0.5: "SIIT_Jool" (id = the configured family id) and
    /// "NAT64_Jool" (id + 1), one per loaded module, each serving its own
    /// translator type and registering its own `joold` group (the
    /// configured group id, and the next one: `genl_register_family`
    /// gives each the next free id, `jool_siit` being loaded first).
    /// Later releases: one "Jool" family for both.
    pub fn families(&self) -> Families {
        use crate::versions::{LegacyLayout, Protocol};
        let split = matches!(
            self.profile.protocol,
            Protocol::Legacy(LegacyLayout::TypeChar | LegacyLayout::NoType)
        );
        let mut out = Families::new();
        if split {
            if self.siit_loaded {
                out.push(Family {
                    name: "SIIT_Jool",
                    id: self.family_id,
                    xlator: Some(Xlator::Siit),
                    mcast_group: self.mcast_group_id,
                });
            }
            if self.nat64_loaded {
                let id = self.family_id + 1;
                out.push(Family {
                    name: "NAT64_Jool",
                    id,
                    xlator: Some(Xlator::Nat64),
                    mcast_group: self.mcast_group_id + 1,
                });
            }
        } else if self.module_loaded() {
            out.push(Family {
                name: "Jool",
                id: self.family_id,
                xlator: None,
                mcast_group: self.mcast_group_id,
            });
        }
        out
    }

    /// How this kernel was built ([`Build`]).
    pub fn build(&self) -> Build {
        self.build
    }

    /// Changes how this kernel was built ([`Build`]).
    pub fn set_build(&mut self, build: Build) {
        self.build = build;
    }

    /// Changes the family id the kernel assigns to Jool.
    pub fn set_family_id(&mut self, id: u16) {
        self.family_id = id.max(nlmsg::NLMSG_MIN_TYPE + 1);
    }

    /// Changes the id of Jool's `joold` multicast group (9 on Debian
    /// bookworm's 6.1, 0x0f on trixie's 6.12: it depends on what registered
    /// before Jool); "NAT64_Jool"'s is the next one ([`Self::families`]).
    pub fn set_mcast_group_id(&mut self, id: u32) {
        self.mcast_group_id = id;
    }

    /// Which modules are loaded (`modprobe jool_siit`, `modprobe jool`).
    /// With neither, the "Jool" family does not exist.
    pub fn set_modules(&mut self, siit: bool, nat64: bool) {
        self.siit_loaded = siit;
        self.nat64_loaded = nat64;
    }

    /// Whether `xlator`'s module is loaded.
    pub fn loaded(&self, xlator: Xlator) -> bool {
        match xlator {
            Xlator::Siit => self.siit_loaded,
            Xlator::Nat64 => self.nat64_loaded,
        }
    }

    fn module_loaded(&self) -> bool {
        self.siit_loaded || self.nat64_loaded
    }

    /// Sets the bytes a reply message may hold (default
    /// [`DEFAULT_MSG_BUDGET`]); small budgets force stats pagination.
    pub fn set_msg_budget(&mut self, bytes: usize) {
        self.budget = bytes;
    }

    /// Sets what `JNLAIE_NS` (INSTANCE_FOREACH) carries for `netns`: the
    /// real module sends the low 32 bits of the namespace's `struct net`
    /// pointer, so a comparison with a real kernel needs its value.
    pub fn set_netns_tag(&mut self, netns: NetnsId, tag: u32) {
        self.netns_tags.insert(netns, tag);
    }

    /// What `JNLAIE_NS` carries for `netns`.
    pub fn netns_tag(&self, netns: NetnsId) -> u32 {
        self.netns_tags
            .get(&netns)
            .copied()
            .unwrap_or_else(|| jool::default_netns_tag(netns))
    }

    /// Jool's `Jool error: ...` kernel log lines, oldest first.
    pub fn log(&self) -> &[String] {
        &self.log
    }

    fn log_err(&mut self, msg: &str) {
        if self.log.len() == LOG_LINES {
            self.log.remove(0);
        }
        self.log.push(format!("Jool error: {msg}"));
    }

    /// Every namespace that holds instances.
    pub fn namespaces(&self) -> &BTreeMap<NetnsId, Netns> {
        &self.namespaces
    }

    /// Adds an instance as `instance add` would (no privilege check).
    pub fn add_instance(
        &mut self,
        netns: NetnsId,
        xlator: Xlator,
        name: &str,
        framework: Framework,
    ) -> Result<(), StateError> {
        let mut raw = state::text_bytes(name);
        raw.push(0);
        if name.is_empty() || !iname_valid_for(&raw, self.build.unsigned_char)
        {
            return Err(StateError::BadName(name.to_owned()));
        }
        if !self.loaded(xlator) {
            return Err(StateError::ModuleNotLoaded(xlator));
        }
        jool::check_add(self, netns, xlator, name, framework)
            .map_err(StateError::Exists)?;
        self.insert_instance(netns, xlator, name, framework, None);
        Ok(())
    }

    /// Inserts an instance the request handlers already validated.
    fn insert_instance(
        &mut self,
        netns: NetnsId,
        xlator: Xlator,
        name: &str,
        framework: Framework,
        pool6: Option<Prefix6>,
    ) {
        let counters = vec![0; usize::from(self.profile.max_id) + 1];
        let inst = Instance {
            name: name.to_owned(),
            xlator,
            framework,
            pool6,
            counters,
        };
        self.namespaces
            .entry(netns)
            .or_default()
            .instances
            .insert((xlator, name.to_owned()), inst);
    }

    /// Removes an instance.
    pub fn remove_instance(
        &mut self,
        netns: NetnsId,
        xlator: Xlator,
        name: &str,
    ) -> Result<Instance, StateError> {
        let ns = self.namespaces.get_mut(&netns);
        let removed =
            ns.and_then(|ns| ns.instances.remove(&(xlator, name.to_owned())));
        removed.ok_or_else(|| StateError::NoSuchInstance {
            netns,
            xlator,
            name: name.to_owned(),
        })
    }

    /// An instance, if it exists.
    pub fn instance(
        &self,
        netns: NetnsId,
        xlator: Xlator,
        name: &str,
    ) -> Option<&Instance> {
        self.namespaces.get(&netns)?.instances.get(&(xlator, name.to_owned()))
    }

    fn instance_mut(
        &mut self,
        netns: NetnsId,
        xlator: Xlator,
        name: &str,
    ) -> Result<&mut Instance, StateError> {
        self.namespaces
            .get_mut(&netns)
            .and_then(|ns| ns.instances.get_mut(&(xlator, name.to_owned())))
            .ok_or_else(|| StateError::NoSuchInstance {
                netns,
                xlator,
                name: name.to_owned(),
            })
    }

    fn counter_mut(
        &mut self,
        netns: NetnsId,
        xlator: Xlator,
        name: &str,
        id: u16,
    ) -> Result<&mut u64, StateError> {
        let first = self.profile.first_id();
        let inst = self.instance_mut(netns, xlator, name)?;
        if id < first {
            return Err(StateError::UnknownStat(id));
        }
        inst.counters
            .get_mut(usize::from(id))
            .ok_or(StateError::UnknownStat(id))
    }

    /// Sets counter `id` of an instance.
    pub fn set_counter(
        &mut self,
        netns: NetnsId,
        xlator: Xlator,
        name: &str,
        id: u16,
        value: u64,
    ) -> Result<(), StateError> {
        *self.counter_mut(netns, xlator, name, id)? = value;
        Ok(())
    }

    /// Adds `delta` to counter `id` (wrapping, like the kernel's u64).
    pub fn add_counter(
        &mut self,
        netns: NetnsId,
        xlator: Xlator,
        name: &str,
        id: u16,
        delta: u64,
    ) -> Result<(), StateError> {
        let c = self.counter_mut(netns, xlator, name, id)?;
        *c = c.wrapping_add(delta);
        Ok(())
    }

    /// Sets an instance's `pool6` (what `--pool6` gave `instance add`).
    pub fn set_pool6(
        &mut self,
        netns: NetnsId,
        xlator: Xlator,
        name: &str,
        pool6: Option<Prefix6>,
    ) -> Result<(), StateError> {
        self.instance_mut(netns, xlator, name)?.pool6 = pool6;
        Ok(())
    }

    /// Sets all counters of an instance to zero.
    pub fn reset_counters(
        &mut self,
        netns: NetnsId,
        xlator: Xlator,
        name: &str,
    ) -> Result<(), StateError> {
        self.instance_mut(netns, xlator, name)?.counters.fill(0);
        Ok(())
    }

    /// Sets several counters at once; nothing changes if one id is bad.
    pub fn set_counters(
        &mut self,
        netns: NetnsId,
        xlator: Xlator,
        name: &str,
        values: &[(u16, u64)],
    ) -> Result<(), StateError> {
        let (first, max) = (self.profile.first_id(), self.profile.max_id);
        if let Some(&(id, _)) =
            values.iter().find(|(id, _)| *id < first || *id > max)
        {
            return Err(StateError::UnknownStat(id));
        }
        let inst = self.instance_mut(netns, xlator, name)?;
        for &(id, v) in values {
            inst.counters[usize::from(id)] = v;
        }
        Ok(())
    }

    /// `sendmsg()` of one datagram: `Err(ENODATA)` for an empty one and
    /// `Err(EMSGSIZE)` past the socket buffer, as the kernel answers the
    /// sender; otherwise the reply datagrams.
    pub fn sendmsg(
        &mut self,
        caller: &Caller,
        datagram: &[u8],
    ) -> Result<Vec<Vec<u8>>, i32> {
        if datagram.is_empty() {
            return Err(ENODATA);
        }
        if datagram.len() > MAX_DATAGRAM {
            return Err(EMSGSIZE);
        }
        Ok(self.handle(caller, datagram))
    }

    /// Handles one datagram; returns the reply datagrams in order.
    pub fn handle(
        &mut self,
        caller: &Caller,
        datagram: &[u8],
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for msg in nlmsg::Messages::new(datagram) {
            self.handle_message(caller, msg.message(), &mut out);
        }
        out
    }

    /// `netlink_rcv_skb`'s body for one message.
    fn handle_message(
        &mut self,
        caller: &Caller,
        msg: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) {
        let p = nlmsg::Packet::new_unchecked(msg);
        let flags = p.flags();
        let mut reject = None;
        if flags & nlmsg::F_REQUEST != 0 && p.kind() >= nlmsg::NLMSG_MIN_TYPE {
            if let Err(r) = self.genl_rcv(caller, msg, out) {
                reject = Some(r);
            }
        }
        let warning = self.ack_warning.take();
        let (errno, extack) = reject.map_or(
            (0, netlink::Extack { msg: warning, ..Default::default() }),
            |r| (r.errno, r.extack),
        );
        if flags & nlmsg::F_ACK != 0 || errno != 0 {
            out.push(netlink::ack(
                msg,
                caller.port_id,
                errno,
                &extack,
                caller.ext_ack,
            ));
        }
    }

    /// `genl_rcv_msg`: family, header length, command, dump, policy, doit.
    fn genl_rcv(
        &mut self,
        caller: &Caller,
        msg: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), netlink::Reject> {
        let p = nlmsg::Packet::new_unchecked(msg);
        if p.kind() == nlmsg::GENL_ID_CTRL {
            return ctrl::rcv(self, caller, msg, out);
        }
        let Some(family) =
            self.families().into_iter().find(|f| f.id == p.kind())
        else {
            return Err(netlink::Reject::plain(ENOENT));
        };
        if self.profile.is_legacy() {
            legacy::rcv(self, caller, family, msg, out)
        } else {
            jool::rcv(self, caller, msg, out)
        }
    }
}

#[cfg(test)]
mod legacy_test;
#[cfg(test)]
mod test;
