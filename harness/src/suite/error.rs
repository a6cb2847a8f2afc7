//! Why a run of the suites could not start or finish. A case that fails
//! is not an error: it is in the report.

use std::{fmt, path::PathBuf};

use super::spec::SpecError;

/// Why the suites could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The suites folder could not be read.
    ReadDir {
        /// The folder.
        dir: PathBuf,
        /// What reading it said.
        source: std::io::Error,
    },
    /// No suite file matches the globs.
    NoSuite {
        /// The folder.
        dir: PathBuf,
        /// The globs.
        globs: Vec<String>,
    },
    /// A suite file is malformed.
    Spec(SpecError),
    /// The backend could not be set up.
    Backend(super::backend::Error),
    /// A thread running a guest panicked.
    Panicked(&'static str),
    /// A guest could not be prepared or booted.
    Vm(crate::vm::Error),
    /// A guest booted but brought back no results.
    Guest {
        /// What went wrong.
        why: String,
        /// Where its console was kept.
        console: PathBuf,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReadDir { dir, source } => write!(
                f,
                "cannot read the suites folder {}: {source}",
                dir.display()
            ),
            Self::NoSuite { dir, globs } => {
                write!(f, "no suite in {} matches {globs:?}", dir.display())
            }
            Self::Spec(e) => write!(f, "{e}"),
            Self::Backend(e) => write!(f, "{e}"),
            Self::Panicked(what) => write!(f, "{what} panicked"),
            Self::Vm(e) => write!(f, "{e}"),
            Self::Guest { why, console } => write!(
                f,
                "{why} (guest console kept in {})",
                console.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::ReadDir { source, .. } => Some(source),
            Self::Spec(e) => Some(e),
            Self::Backend(e) => Some(e),
            Self::Vm(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::vm::Error> for Error {
    fn from(e: crate::vm::Error) -> Self {
        Self::Vm(e)
    }
}
