//! Why a capture could not be made.

use std::{fmt, path::PathBuf};

/// Why a capture could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The suites could not be loaded.
    Suite(crate::suite::Error),
    /// The guest could not be prepared or booted.
    Vm(crate::vm::Error),
    /// The kernel backend could not be set up.
    Backend(crate::suite::backend::Error),
    /// The guest brought no capture back.
    NoCapture {
        /// What went wrong.
        why: String,
        /// Where its console is.
        console: PathBuf,
    },
    /// The output folder holds something that is not a capture: it is
    /// not replaced.
    NotACapture(PathBuf),
    /// A pcap file could not be read.
    Pcap {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: super::PcapError,
    },
    /// A file operation failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { what: what.into(), source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Suite(e) => write!(f, "{e}"),
            Self::Vm(e) => write!(f, "{e}"),
            Self::Backend(e) => write!(f, "{e}"),
            Self::NoCapture { why, console } => write!(
                f,
                "the guest made no capture ({why}); console in {}",
                console.display()
            ),
            Self::NotACapture(p) => write!(
                f,
                "{} exists and is not a capture folder (no COMMANDS.tsv): not replacing it",
                p.display()
            ),
            Self::Pcap { path, why } => {
                write!(f, "{}: {why}", path.display())
            }
            Self::Io { what, source } => write!(f, "cannot {what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Suite(e) => Some(e),
            Self::Backend(e) => Some(e),
            Self::Vm(e) => Some(e),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<crate::suite::Error> for Error {
    fn from(e: crate::suite::Error) -> Self {
        Self::Suite(e)
    }
}

impl From<crate::vm::Error> for Error {
    fn from(e: crate::vm::Error) -> Self {
        Self::Vm(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::io("write the capture folder", e)
    }
}
