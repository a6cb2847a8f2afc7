//! Scenario suites (`fixtures/suites/*.toml`) and the runner that replays
//! them against a backend: the simulator, the real kernel of this machine,
//! or a QEMU guest running the real module.
//!
//! (Being built: see issue "One suite, every backend".)

use std::process::ExitCode;

/// `jool-harness run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// `jool-harness capture`.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {}

/// `jool-harness fuzz-kernel`.
#[derive(Debug, clap::Args)]
pub struct FuzzKernelArgs {}

/// Runs `jool-harness run`.
pub fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`jool-harness run` is not implemented yet")
}

/// Runs `jool-harness capture`.
pub fn capture(_args: CaptureArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`jool-harness capture` is not implemented yet")
}

/// Runs `jool-harness fuzz-kernel`.
pub fn fuzz_kernel(_args: FuzzKernelArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`jool-harness fuzz-kernel` is not implemented yet")
}
