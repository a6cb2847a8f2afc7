//! What a backend must do for the runner: set up a case, run one client
//! command as a given user in a given namespace, build topologies, send
//! traffic, and read an instance's counters.

use std::collections::BTreeMap;

use jool_sim::kernel::Xlator;

use super::{
    recipes::{Topology, Traffic},
    spec::{Case, Delta, Step},
};

/// Which client runs the `run` steps.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// This project's `jool-stats`.
    JoolStats,
    /// The real C `jool` / `jool_siit`.
    Real,
}

impl ClientKind {
    /// The name used in suites and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::JoolStats => "jool-stats",
            Self::Real => "real",
        }
    }
}

pub use crate::host::Output;

/// A backend that can run cases.
pub trait Backend {
    /// `sim` or `kernel`.
    fn name(&self) -> &'static str;

    /// The release of the kernel side.
    fn release(&self) -> &str;

    /// Why this backend cannot run `client`, if it cannot.
    fn unsupported(&self, client: ClientKind) -> Option<String>;

    /// Prepares a clean kernel for `case` of suite `suite` (modules,
    /// namespaces).
    fn begin_case(
        &mut self,
        suite: &str,
        case: &Case,
        client: ClientKind,
    ) -> Result<(), String>;

    /// Runs one `jool`/`jool_siit` command line.
    fn run(&mut self, step: &Step, argv: &[String]) -> Result<Output, String>;

    /// Builds a topology.
    fn topology(&mut self, t: &Topology) -> Result<(), String>;

    /// Sends traffic (kernel), or applies the declared deltas (sim).
    fn traffic(
        &mut self,
        t: &Traffic,
        deltas: &[(String, Delta)],
    ) -> Result<(), String>;

    /// Counters of instance `default` of type `xlator` in `netns`, by name.
    fn counters(
        &mut self,
        netns: &str,
        xlator: Xlator,
    ) -> Result<BTreeMap<String, u64>, String>;

    /// Undoes what the case created.
    fn end_case(&mut self);
}
