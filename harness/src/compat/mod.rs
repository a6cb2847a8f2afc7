//! Differences between Jool releases: which counters a client of one
//! release mislabels against a kernel of another, and the tools around it
//! (`jool-harness versions list|diff|matrix|import`).
//!
//! (Being built: see issue "Version differences as a feature".)

use std::process::ExitCode;

/// `jool-harness versions`.
#[derive(Debug, clap::Args)]
pub struct VersionsArgs {}

/// Runs `jool-harness versions`.
pub fn run(_args: VersionsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`jool-harness versions` is not implemented yet")
}
