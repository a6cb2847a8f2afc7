//! What can go wrong around a guest: the image, QEMU, the host's files.

use std::{fmt, path::PathBuf};

/// Why a guest could not be prepared or booted. A guest that booted but
/// whose run failed is not an error: see `GuestRun::failure`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `scripts/vm-image` failed or printed no folder.
    ImageScript {
        /// Its arguments (`--release R ...`).
        args: String,
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
    /// The cell's manifest says Jool did not build there.
    NotBuilt {
        /// The cell folder.
        dir: PathBuf,
        /// Its release.
        release: String,
        /// `module does not build` or `clients do not build`.
        result: String,
        /// The first compiler error.
        first_error: String,
    },
    /// The guest's C library is older than the one the executables
    /// copied into it need.
    OldGlibc {
        /// The image folder.
        dir: PathBuf,
        /// The guest's glibc version.
        guest: String,
        /// The newest `GLIBC_` symbol version the executable needs.
        needs: String,
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
            Self::OldGlibc { dir, guest, needs } => write!(
                f,
                "{}: the guest's C library is glibc {guest}, this build needs {needs}: \
                 give the guest a static build (scripts/guest-bin, then --guest-bin target/guest-bin)",
                dir.display()
            ),
            Self::ImageScript { args, status } => {
                write!(f, "scripts/vm-image {args} failed ({status})")
            }
            Self::NotBuilt { dir, release, result, first_error } => write!(
                f,
                "{}: Jool {release} cannot boot there: {result}: {first_error}",
                dir.display()
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
