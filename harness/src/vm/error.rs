//! What can go wrong around a guest: the image, QEMU, the host's files.

use std::{fmt, path::PathBuf};

/// Why a guest could not be prepared or booted. A guest that booted but
/// whose run failed is not an error: see `GuestRun::failure`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `scripts/vm-image` failed or printed no folder.
    ImageScript {
        /// The release asked for.
        release: String,
        /// Its exit status, or what was wrong with its output.
        status: String,
    },
    /// The image folder lacks a file a boot needs.
    NotAnImage {
        /// The folder.
        dir: PathBuf,
        /// The missing file.
        missing: &'static str,
    },
    /// `qemu-system-x86_64` could not be started.
    Qemu(std::io::Error),
    /// `jool-stats` is not beside this executable.
    NoJoolStats(PathBuf),
    /// A file operation on the host failed.
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
            Self::ImageScript { release, status } => write!(
                f,
                "scripts/vm-image --release {release} failed ({status})"
            ),
            Self::NotAnImage { dir, missing } => write!(
                f,
                "{} has no {missing}: not an image from scripts/vm-image",
                dir.display()
            ),
            Self::Qemu(e) => write!(
                f,
                "cannot start qemu-system-x86_64 (apt-get install qemu-system-x86): {e}"
            ),
            Self::NoJoolStats(exe) => write!(
                f,
                "jool-stats is not beside {} (cargo build -p jool-harness)",
                exe.display()
            ),
            Self::Io { what, source } => write!(f, "cannot {what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Qemu(e) | Self::Io { source: e, .. } => Some(e),
            _ => None,
        }
    }
}
