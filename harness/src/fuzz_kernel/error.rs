//! Why a `fuzz-kernel` run could not start or finish. A crash or a
//! divergence is not an error: it is in the summary (and the exit
//! status the command layer derives from it, [`super::Verdict`]).

use std::{fmt, path::Path};

/// Result of the fuzz-kernel operations.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a fuzz-kernel run failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The release is unknown, or older than the `joolnlhdr` protocol.
    Release(String),
    /// Options that do not go together, or a host that cannot run them
    /// (not root, no C compiler, no cached image).
    Usage(String),
    /// The kernel under test did not answer as Jool's does (no family,
    /// no instance listed after the base state).
    Discover(String),
    /// A seed or corpus file could not be read as requests.
    Seeds(String),
    /// `scripts/fuzz-kernel-build` failed or printed no folder.
    Build {
        /// Its arguments.
        args: String,
        /// Its exit status, or what was wrong with its output.
        status: String,
    },
    /// A guest could not be prepared or booted.
    Vm(crate::vm::Error),
    /// A command on this machine (or in the guest) failed.
    Host(crate::host::Error),
    /// A guest booted but did not do its work.
    Guest(String),
    /// A file operation failed.
    Io {
        /// What was being done, naming the file.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A JSON file of ours (plan, summary) could not be written or read.
    Json {
        /// The file.
        what: String,
        /// The error.
        source: serde_json::Error,
    },
}

impl Error {
    /// An I/O error while doing `what`.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { what: what.into(), source }
    }

    /// A closure mapping an I/O error on `path` (`verb PATH`).
    pub(crate) fn at(
        verb: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let what = format!("{verb} {}", path.display());
        move |e| Self::io(what, e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Release(why)
            | Self::Usage(why)
            | Self::Seeds(why)
            | Self::Guest(why) => f.write_str(why),
            Self::Discover(why) => {
                write!(f, "the kernel under test: {why}")
            }
            Self::Build { args, status } => {
                write!(f, "scripts/fuzz-kernel-build {args} failed ({status})")
            }
            Self::Vm(e) => write!(f, "{e}"),
            Self::Host(e) => write!(f, "{e}"),
            Self::Io { what, source } => write!(f, "cannot {what}: {source}"),
            Self::Json { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent: their text is already this error's.
            Self::Vm(e) => e.source(),
            Self::Host(e) => e.source(),
            Self::Io { source, .. } => Some(source),
            Self::Json { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<crate::vm::Error> for Error {
    fn from(e: crate::vm::Error) -> Self {
        Self::Vm(e)
    }
}

impl From<crate::host::Error> for Error {
    fn from(e: crate::host::Error) -> Self {
        Self::Host(e)
    }
}

/// File operations whose errors name the file.
pub(crate) mod fs {
    use std::path::Path;

    use super::{Error, Result};

    /// `std::fs::write`.
    pub(crate) fn write(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
        std::fs::write(path, data).map_err(Error::at("write", path))
    }

    /// `std::fs::read_to_string`.
    pub(crate) fn read_to_string(path: &Path) -> Result<String> {
        std::fs::read_to_string(path).map_err(Error::at("read", path))
    }

    /// `std::fs::create_dir_all`.
    pub(crate) fn create_dir_all(path: &Path) -> Result<()> {
        std::fs::create_dir_all(path).map_err(Error::at("create", path))
    }

    /// `std::fs::copy`.
    pub(crate) fn copy(from: &Path, to: &Path) -> Result<u64> {
        std::fs::copy(from, to).map_err(|e| {
            Error::io(
                format!("copy {} to {}", from.display(), to.display()),
                e,
            )
        })
    }

    /// `std::fs::read_dir`, its entries that could be read.
    pub(crate) fn entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
        Ok(std::fs::read_dir(dir)
            .map_err(Error::at("read the folder", dir))?
            .flatten()
            .collect())
    }

    /// A JSON file of ours.
    pub(crate) fn write_json(
        path: &Path,
        v: &impl serde::Serialize,
    ) -> Result<()> {
        let text = serde_json::to_string_pretty(v).map_err(|source| {
            Error::Json { what: path.display().to_string(), source }
        })?;
        write(path, text + "\n")
    }
}
