//! [`Model`]: what the instances should be after each operation of a
//! session, kept in one `BTreeMap` and predicted without the kernel's code.

use crate::kernel::Prefix6;
use std::{collections::BTreeMap, fmt};

use crate::requests::Frame;
use crate::{
    kernel::{iname_valid, Framework, Kernel, NetnsId, Xlator},
    versions::{Numbering, Profile},
    wire::jool::INAME_LEN,
};

/// `(netns, translator, name)`.
pub(super) type Key = (NetnsId, Xlator, String);

/// What an instance is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    /// Framework.
    pub(super) framework: Framework,
    /// pool6.
    pub(super) pool6: Option<Prefix6>,
    /// Counters by id.
    pub(super) counters: Vec<u64>,
}

/// The reference model of a kernel's instances.
#[derive(Clone, Debug)]
pub(super) struct Model {
    profile: &'static Profile,
    loaded: [bool; 2],
    /// Every instance.
    pub(super) instances: BTreeMap<Key, Entry>,
}

/// Prefix lengths `instance add` accepts for pool6 (4.0.8+).
const POOL6_LENS: [u8; 6] = [32, 40, 48, 56, 64, 96];

/// The name bytes up to the NUL, as a string.
pub(super) fn name_of(raw: &[u8; INAME_LEN]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(INAME_LEN);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

impl Model {
    /// The instances `k` has now.
    pub(super) fn of(k: &Kernel) -> Self {
        let mut m = Self {
            profile: k.profile(),
            loaded: [k.loaded(Xlator::Siit), k.loaded(Xlator::Nat64)],
            instances: BTreeMap::new(),
        };
        m.sync(k);
        m
    }

    /// Forgets the model's instances and takes the kernel's.
    pub(super) fn sync(&mut self, k: &Kernel) {
        self.instances = flatten(k);
    }

    /// Panics unless `k` holds exactly the model's instances.
    pub(super) fn assert_matches(&self, k: &Kernel, after: &dyn fmt::Debug) {
        if !self.matches(k) {
            panic!(
                "after {after:?}: kernel {:#?}\nmodel {:#?}",
                flatten(k),
                self.instances
            );
        }
    }

    /// Whether `k` holds exactly the model's instances: `flatten(k) ==
    /// self.instances` without the copy (the kernel's namespaces, then
    /// its `(translator, name)` keys, come in the model's key order).
    fn matches(&self, k: &Kernel) -> bool {
        let mut model = self.instances.iter();
        let kernel = k.namespaces().iter().flat_map(|(&ns, netns)| {
            netns.instances.iter().map(move |(key, i)| (ns, key, i))
        });
        for (ns, (x, name), i) in kernel {
            let Some(((m_ns, m_x, m_name), e)) = model.next() else {
                return false;
            };
            if (ns, x, name) != (*m_ns, m_x, m_name)
                || (i.framework, i.pool6) != (e.framework, e.pool6)
                || i.counters != e.counters
            {
                return false;
            }
        }
        model.next().is_none()
    }

    fn legacy(&self) -> bool {
        self.profile.is_legacy()
    }

    /// Records which modules are loaded.
    pub(super) fn set_modules(&mut self, siit: bool, nat64: bool) {
        self.loaded = [siit, nat64];
    }

    /// Whether `x`'s module is loaded.
    pub(super) fn loaded(&self, x: Xlator) -> bool {
        self.loaded[usize::from(x == Xlator::Nat64)]
    }

    /// Whether a privileged request for `x` with name `raw` passes the
    /// checks every instance operation makes.
    fn admin_ok(&self, admin: bool, x: Xlator, raw: &[u8; INAME_LEN]) -> bool {
        admin && self.loaded(x) && iname_valid(raw)
    }

    /// `instance add`; returns whether it must succeed, and applies it.
    pub(super) fn add(
        &mut self,
        (ns, admin, x): (NetnsId, bool, Xlator),
        raw: &[u8; INAME_LEN],
        frame: Frame,
        pool6: Option<Prefix6>,
    ) -> bool {
        let framework = match frame {
            Frame::Netfilter => Framework::Netfilter,
            Frame::Iptables => Framework::Iptables,
            // joolnl: the kernel takes `byte | header type`: bits 0-1 join
            // the type (which must stay SIIT or NAT64), bits 2-3 are the
            // framework (4.2.0-rc: bits 0-2 and 3-4).
            Frame::Invalid(b) if !self.legacy() => {
                let n = self.profile.numbering;
                let xt_mask = if n == Numbering::MapT { 0x07 } else { 0x03 };
                match (Framework::from_flags_in(b, n), (b | x.xt()) & xt_mask)
                {
                    (Some(f), 1 | 2) => f,
                    _ => return false,
                }
            }
            Frame::Invalid(_) => return false,
        };
        let name = name_of(raw);
        let pool6_ok = match pool6 {
            None => x == Xlator::Siit,
            // 4.0.8 (Jool #326): no pool6 with an address parses.
            Some(_) if self.profile.prefix_address_unspec() => false,
            Some((_, len)) => self.legacy() || POOL6_LENS.contains(&len),
        };
        let taken = self.instances.contains_key(&(ns, x, name.clone()))
            || self.is_netfilter(ns, x, framework);
        if !self.admin_ok(admin, x, raw) || !pool6_ok || taken {
            return false;
        }
        let counters = vec![0; usize::from(self.profile.max_id) + 1];
        self.instances
            .insert((ns, x, name), Entry { framework, pool6, counters });
        true
    }

    /// Whether adding a `framework` instance of `x` in `ns` collides with an
    /// existing Netfilter one.
    fn is_netfilter(
        &self,
        ns: NetnsId,
        x: Xlator,
        framework: Framework,
    ) -> bool {
        framework == Framework::Netfilter
            && self.instances.iter().any(|((n, kx, _), e)| {
                *n == ns && *kx == x && e.framework == Framework::Netfilter
            })
    }

    /// `instance remove`; returns whether it must succeed.
    pub(super) fn remove(
        &mut self,
        (ns, admin, x): (NetnsId, bool, Xlator),
        raw: &[u8; INAME_LEN],
    ) -> bool {
        self.admin_ok(admin, x, raw)
            && self.instances.remove(&(ns, x, name_of(raw))).is_some()
    }

    /// `instance flush`; returns whether it must succeed.
    pub(super) fn flush(
        &mut self,
        (ns, admin, x): (NetnsId, bool, Xlator),
    ) -> bool {
        if !admin || !self.loaded(x) {
            return false;
        }
        self.instances.retain(|(n, kx, _), _| (*n, *kx) != (ns, x));
        true
    }

    /// `instance hello`: `None` if it must fail, else whether it exists.
    pub(super) fn hello(
        &self,
        (ns, admin, x): (NetnsId, bool, Xlator),
        raw: &[u8; INAME_LEN],
    ) -> Option<bool> {
        let supported = !self.legacy() || !self.profile.is_before("4.0.4");
        let ok = supported && self.admin_ok(admin, x, raw);
        ok.then(|| self.instances.contains_key(&(ns, x, name_of(raw))))
    }

    /// `stats display`: `None` if it must fail, else every counter.
    ///
    /// 4.0.8+ looks an empty name up as `default`; 4.0.x takes
    /// `ATTR_INAME` as sent.
    pub(super) fn stats(
        &self,
        (ns, admin, x): (NetnsId, bool, Xlator),
        raw: &[u8; INAME_LEN],
        budget: usize,
    ) -> Option<Vec<(u16, u64)>> {
        let p = self.profile;
        let allowed = admin || (!self.legacy() && !p.stats_requires_net_admin);
        let empty = raw[0] == 0 && !self.legacy();
        let name = if empty { "default".to_owned() } else { name_of(raw) };
        let one_fits = 16 + 4 + p.header_len() + 12 <= budget || self.legacy();
        if !allowed
            || !self.loaded(x)
            || !(empty || iname_valid(raw))
            || !one_fits
        {
            return None;
        }
        let e = self.instances.get(&(ns, x, name))?;
        Some(
            (p.first_id()..=p.max_id)
                .map(|id| (id, e.counters[usize::from(id)]))
                .collect(),
        )
    }

    /// `instance display`: `None` if it must fail, else
    /// `(netns, framework, name)` of every instance of `x`, in order.
    pub(super) fn foreach(
        &self,
        admin: bool,
        x: Xlator,
    ) -> Option<Vec<(NetnsId, Framework, String)>> {
        (admin && self.loaded(x)).then(|| {
            let of_x =
                self.instances.iter().filter(|((_, kx, _), _)| *kx == x);
            of_x.map(|((ns, _, name), e)| (*ns, e.framework, name.clone()))
                .collect()
        })
    }

    /// Sets a counter as traffic would: whether the kernel must accept it.
    pub(super) fn set_counter(
        &mut self,
        key: &Key,
        id: u16,
        value: u64,
    ) -> bool {
        let p = self.profile;
        let Some(e) = self.instances.get_mut(key) else { return false };
        if id < p.first_id() || id > p.max_id {
            return false;
        }
        e.counters[usize::from(id)] = value;
        true
    }
}

fn flatten(k: &Kernel) -> BTreeMap<Key, Entry> {
    let mut out = BTreeMap::new();
    for (&ns, netns) in k.namespaces() {
        for ((x, name), i) in &netns.instances {
            let e = Entry {
                framework: i.framework,
                pool6: i.pool6,
                counters: i.counters.clone(),
            };
            out.insert((ns, *x, name.clone()), e);
        }
    }
    out
}
