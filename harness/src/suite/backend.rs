//! What a backend must do for the runner: set up a case, run one client
//! command as a given user in a given namespace, build topologies, send
//! traffic, and read an instance's counters.

use std::{collections::BTreeMap, fmt};

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

/// Why a backend could not do what the runner asked. Setting a backend
/// up, it stops the run; during a case, the case fails with its text.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// This backend cannot run here (not root, no modules, another
    /// release loaded, the shim not built, an unknown release).
    Unavailable(String),
    /// A command on this machine did not run to its end, or a script
    /// failed.
    Host {
        /// What it was for.
        what: String,
        /// What went wrong.
        source: crate::host::Error,
    },
    /// A command ran and failed.
    Failed {
        /// What it was for.
        what: String,
        /// Its exit status.
        status: i32,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A file or socket operation failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The simulated kernel could not be built.
    Setup(jool_sim::setup::SetupError),
    /// The case asks for what the kernel side does not have (a counter
    /// of another release, an instance that is not there).
    Case(String),
}

impl Error {
    pub(crate) fn host(
        what: impl Into<String>,
        source: crate::host::Error,
    ) -> Self {
        Self::Host { what: what.into(), source }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { what: what.into(), source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(why) | Self::Case(why) => f.write_str(why),
            Self::Host { what, source } => write!(f, "{what}: {source}"),
            Self::Failed { what, status, stderr } => {
                write!(
                    f,
                    "{what} failed (exit {status}): {}",
                    stderr.trim_end()
                )
            }
            Self::Io { what, source } => write!(f, "cannot {what}: {source}"),
            Self::Setup(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Host { source, .. } => Some(source),
            Self::Io { source, .. } => Some(source),
            Self::Setup(e) => Some(e),
            _ => None,
        }
    }
}

/// Result of the backend operations.
pub type Result<T> = std::result::Result<T, Error>;

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
    ) -> Result<()>;

    /// Runs one `jool`/`jool_siit` command line.
    fn run(&mut self, step: &Step, argv: &[String]) -> Result<Output>;

    /// Builds a topology.
    fn topology(&mut self, t: &Topology) -> Result<()>;

    /// Sends traffic (kernel), or applies the declared deltas (sim).
    fn traffic(
        &mut self,
        t: &Traffic,
        deltas: &[(String, Delta)],
    ) -> Result<()>;

    /// Counters of instance `default` of type `xlator` in `netns`, by name.
    fn counters(
        &mut self,
        netns: &str,
        xlator: Xlator,
    ) -> Result<BTreeMap<String, u64>>;

    /// Undoes what the case created.
    fn end_case(&mut self);
}
