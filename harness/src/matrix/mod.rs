//! Real modules in guests, checked against the simulator: `versions real`
//! ([`cross`]: the real C clients of several releases against each real
//! module, with traffic, and the offline check of those captures), the
//! conformance probe of a release ([`probe`]) and the table of which
//! release builds and loads on which Debian kernel ([`builds`]).
//!
//! Sits above `suite` and `vm`: it boots guests and reuses the suites'
//! traffic recipes.

use std::{fmt, path::PathBuf};

use jool_sim::versions::Profile;

pub mod builds;
pub mod cross;
pub mod probe;

/// Why a run could not be made or checked. Disagreements are not errors:
/// they are findings.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A guest could not be prepared or booted.
    Vm(crate::vm::Error),
    /// A command could not be run.
    Command(crate::host::Error),
    /// A file operation failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Anything else, said in words (a guest without results, a capture
    /// that is not one, a release that is not known).
    Failed(String),
}

/// Result of the matrix operations.
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vm(e) => write!(f, "{e}"),
            Self::Command(e) => write!(f, "{e}"),
            Self::Io { what, source } => write!(f, "cannot {what}: {source}"),
            Self::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Vm(e) => Some(e),
            Self::Command(e) => Some(e),
            Self::Io { source, .. } => Some(source),
            Self::Failed(_) => None,
        }
    }
}

impl From<crate::vm::Error> for Error {
    fn from(e: crate::vm::Error) -> Self {
        Self::Vm(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Self::Io { what: "read or write a file".into(), source }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Failed(format!("JSON: {e}"))
    }
}

/// Adds what was being done to an error, or turns a `None` into one.
pub(crate) trait Context<T> {
    /// With a fixed text.
    fn context(self, what: &str) -> Result<T>;
    /// With a text made only on failure.
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|e| Error::Failed(format!("{what}: {e}")))
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Failed(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: &str) -> Result<T> {
        self.ok_or_else(|| Error::Failed(what.to_owned()))
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| Error::Failed(what()))
    }
}

/// Returns early with [`Error::Failed`] and a formatted text.
macro_rules! bail {
    ($($t:tt)*) => {
        return Err($crate::matrix::Error::Failed(format!($($t)*)))
    };
}
pub(crate) use bail;

/// A release by name, or an error listing the known ones.
fn release(name: &str) -> Result<&'static Profile> {
    Profile::get(name).with_context(|| {
        format!(
            "unknown release '{name}'; known releases: {}",
            Profile::names().join(" ")
        )
    })
}

/// The default folder of `versions real`'s captures.
pub fn default_cross_dir() -> PathBuf {
    crate::vm::default_fixtures().join("captures/cross")
}
