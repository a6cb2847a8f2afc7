//! Differences between Jool releases: which counters a client of one
//! release mislabels against a kernel of another, and the tools around it
//! (`jool-harness versions list|diff|matrix|import`).
//!
//! - [`predict`]: acceptance and labels from two releases' tables;
//! - [`crossrun`]: the same, observed by running the client against the
//!   simulated kernel in-process; every report checks the two agree;
//! - [`protocol`]: the protocol facts of a release, for diffs;
//! - [`list`], [`diff`], [`matrix`]: the reports;
//! - [`import`]: a release's fixture from a Jool source tree;
//! - [`detect`]: which release the kernel side runs (sysfs, the sim's
//!   environment), for `jool-stats --client-version auto`.
//!
//! See `docs/versions.md`.

use jool_sim::versions::Profile;

pub mod crossrun;
pub mod detect;
pub mod diff;
pub mod import;
pub mod list;
pub mod matrix;
pub mod predict;
pub mod protocol;

/// Output formats of `list` and `diff`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Plain text.
    #[default]
    Text,
    /// JSON (serde).
    Json,
    /// Markdown tables.
    Markdown,
}

/// A release by name, or an error listing the known ones.
pub fn release(name: &str) -> Result<&'static Profile, UnknownRelease> {
    Profile::get(name).ok_or_else(|| UnknownRelease(name.to_owned()))
}

/// A release name that no fixture defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRelease(pub String);

impl std::fmt::Display for UnknownRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown release '{}'; known releases: {}",
            self.0,
            Profile::names().join(" ")
        )
    }
}

impl std::error::Error for UnknownRelease {}
