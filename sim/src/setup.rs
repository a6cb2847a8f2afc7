//! What a simulated kernel looks like at start, in one place: the
//! release it runs, how it was built, which modules are loaded, its
//! instances (name, translator, framework, pool6) and the counters they
//! hold. `jool-sim serve|exec`, `jool-stats --sim` and the suites all
//! describe their kernel with a [`Setup`] and get it from
//! [`Setup::build`].
//!
//! `counters` means the same everywhere: every instance the setup
//! creates starts with them (so `jool stats display` and `jool_siit stats
//! display` both show a counters file given to `--counters`).

use std::{fmt, path::Path};

use crate::{
    counters::{self, Counters},
    kernel::{Build, Framework, Kernel, NetnsId, Prefix6, StateError, Xlator},
    versions::Profile,
};

/// `64:ff9b::/96`, the well-known prefix every default instance gets.
pub const WELL_KNOWN_PREFIX: Prefix6 =
    ([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 96);

/// An instance to create at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceSpec {
    /// Its name.
    pub name: String,
    /// Its translator.
    pub xlator: Xlator,
    /// Its framework.
    pub framework: Framework,
    /// Its pool6.
    pub pool6: Option<Prefix6>,
}

impl InstanceSpec {
    /// A `--netfilter` instance with pool6 `64:ff9b::/96`.
    pub fn netfilter(name: &str, xlator: Xlator) -> Self {
        Self {
            name: name.to_owned(),
            xlator,
            framework: Framework::Netfilter,
            pool6: Some(WELL_KNOWN_PREFIX),
        }
    }

    /// `NAME:siit` or `NAME:nat64` (a netfilter instance with pool6
    /// `64:ff9b::/96`).
    pub fn parse(spec: &str) -> Result<Self, SetupError> {
        let bad = || SetupError::BadInstanceSpec(spec.to_owned());
        let (name, x) = spec.split_once(':').ok_or_else(bad)?;
        let xlator = match x {
            "siit" => Xlator::Siit,
            "nat64" => Xlator::Nat64,
            _ => return Err(bad()),
        };
        Ok(Self::netfilter(name, xlator))
    }

    /// Creates this instance in `netns` of `k`, with `counters` (ids of
    /// `k`'s release).
    pub fn add_to(
        &self,
        k: &mut Kernel,
        netns: NetnsId,
        counters: &[(u16, u64)],
    ) -> Result<(), SetupError> {
        let fail = |e| SetupError::Instance(self.name.clone(), e);
        k.add_instance(netns, self.xlator, &self.name, self.framework)
            .map_err(fail)?;
        k.set_pool6(netns, self.xlator, &self.name, self.pool6)
            .map_err(fail)?;
        k.set_counters(netns, self.xlator, &self.name, counters).map_err(fail)
    }

    /// `default:siit` and `default:nat64`.
    pub fn defaults() -> Vec<Self> {
        vec![
            Self::netfilter("default", Xlator::Siit),
            Self::netfilter("default", Xlator::Nat64),
        ]
    }
}

/// A simulated kernel's state at start.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The Jool release the kernel runs.
    pub release: &'static Profile,
    /// How the kernel and module were built.
    pub build: Build,
    /// Whether `jool_siit` and `jool` are loaded (neither: no "Jool"
    /// family at all).
    pub modules: Modules,
    /// The namespace the instances are created in.
    pub netns: NetnsId,
    /// The instances, in order.
    pub instances: Vec<InstanceSpec>,
    /// The counters every instance starts with (by name, mapped through
    /// `release`'s table); all zero when `None`.
    pub counters: Option<Counters>,
}

/// Which translator modules are loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modules {
    /// `jool_siit`.
    pub siit: bool,
    /// `jool`.
    pub nat64: bool,
}

impl Modules {
    /// Both loaded.
    pub const BOTH: Self = Self { siit: true, nat64: true };
    /// None loaded.
    pub const NONE: Self = Self { siit: false, nat64: false };
}

/// Why a [`Setup`] cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupError {
    /// No fixture describes this release.
    UnknownRelease(String),
    /// An instance spec that is not `NAME:siit` or `NAME:nat64`.
    BadInstanceSpec(String),
    /// Counters were given but there is no instance to hold them.
    CountersWithoutInstance,
    /// A counters file could not be read (path, why).
    CountersFile(String, counters::Error),
    /// The counters name a stat the kernel's release does not have.
    Counters(counters::Error),
    /// The kernel refused an instance (a bad name, a second netfilter
    /// instance of a translator, a module not loaded).
    Instance(String, StateError),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownRelease(r) => write!(
                f,
                "unknown release '{r}'; known releases: {}",
                Profile::names().join(" ")
            ),
            Self::BadInstanceSpec(s) => {
                write!(
                    f,
                    "bad instance '{s}': expected NAME:siit or NAME:nat64"
                )
            }
            Self::CountersWithoutInstance => {
                f.write_str("counters need an instance to hold them")
            }
            Self::CountersFile(path, e) => write!(f, "{path}: {e}"),
            Self::Counters(e) => e.fmt(f),
            Self::Instance(name, e) => {
                write!(f, "cannot create instance {name}: {e}")
            }
        }
    }
}

impl std::error::Error for SetupError {}

/// The profile of release `name`.
pub fn release(name: &str) -> Result<&'static Profile, SetupError> {
    Profile::get(name).ok_or_else(|| SetupError::UnknownRelease(name.into()))
}

/// Reads a counters file, naming it in the error.
pub fn read_counters(path: &Path) -> Result<Counters, SetupError> {
    let named = |e| SetupError::CountersFile(path.display().to_string(), e);
    let file = std::fs::File::open(path)
        .map_err(|e| named(counters::Error::io(&e)))?;
    counters::read(file).map_err(named)
}

impl Setup {
    /// `release` with both modules loaded, a default instance of each
    /// translator in `netns`, all counters zero, Debian bookworm's build.
    pub fn new(release: &'static Profile, netns: NetnsId) -> Self {
        Self {
            release,
            build: Build::default(),
            modules: Modules::BOTH,
            netns,
            instances: InstanceSpec::defaults(),
            counters: None,
        }
    }

    /// The kernel this setup describes.
    pub fn build(&self) -> Result<Kernel, SetupError> {
        let mut k = Kernel::new(self.release);
        k.set_build(self.build);
        let ids = match &self.counters {
            Some(_) if self.instances.is_empty() => {
                return Err(SetupError::CountersWithoutInstance)
            }
            Some(c) => counters::to_ids(c, self.release)
                .map_err(SetupError::Counters)?,
            None => Vec::new(),
        };
        for i in &self.instances {
            i.add_to(&mut k, self.netns, &ids)?;
        }
        k.set_modules(self.modules.siit, self.modules.nat64);
        Ok(k)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::kernel::INIT_NETNS;

    fn p(r: &str) -> &'static Profile {
        Profile::get(r).unwrap()
    }

    #[test]
    fn test_defaults() {
        let k = Setup::new(p("4.1.9"), INIT_NETNS).build().unwrap();
        for x in [Xlator::Siit, Xlator::Nat64] {
            let i = k.instance(INIT_NETNS, x, "default").unwrap();
            assert_eq!(i.pool6, Some(WELL_KNOWN_PREFIX));
            assert!(i.counters.iter().all(|c| *c == 0));
        }
        assert!(k.loaded(Xlator::Siit) && k.loaded(Xlator::Nat64));
    }

    #[test]
    fn test_counters_fill_every_instance() {
        let mut s = Setup::new(p("4.1.9"), INIT_NETNS);
        s.counters = Some(counters::parse("JSTAT_RECEIVED6,7\n").unwrap());
        let k = s.build().unwrap();
        let id = usize::from(p("4.1.9").stats[0].id);
        for x in [Xlator::Siit, Xlator::Nat64] {
            let i = k.instance(INIT_NETNS, x, "default").unwrap();
            assert_eq!(i.counters[id], 7, "{x}");
        }
    }

    #[test]
    fn test_errors() {
        assert_eq!(
            InstanceSpec::parse("x:nat46"),
            Err(SetupError::BadInstanceSpec("x:nat46".into()))
        );
        assert!(matches!(release("9.9"), Err(SetupError::UnknownRelease(_))));
        let mut s = Setup::new(p("4.1.9"), INIT_NETNS);
        s.instances.clear();
        s.counters = Some(Counters::default());
        assert_eq!(
            s.build().unwrap_err(),
            SetupError::CountersWithoutInstance
        );
        let mut s = Setup::new(p("4.1.9"), INIT_NETNS);
        s.counters = Some(counters::parse("JSTAT_JOOLD_EMPTY,1\n").unwrap());
        let e = s.build().unwrap_err().to_string();
        assert!(
            e.contains("line 1") && e.contains("JSTAT_JOOLD_EMPTY"),
            "{e}"
        );
    }

    #[test]
    fn test_no_module_keeps_nothing_loaded() {
        let mut s = Setup::new(p("4.1.9"), INIT_NETNS);
        s.modules = Modules::NONE;
        let k = s.build().unwrap();
        assert!(!k.loaded(Xlator::Siit) && k.family_id().is_none());
    }
}
