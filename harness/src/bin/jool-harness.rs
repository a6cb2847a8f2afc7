//! `jool-harness`: suites, version tools and captures. Thin: every
//! subcommand lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jool_harness::{cli_capture, compat, suite};

/// Test harness for Jool's `stats` interface.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Opts {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run scenario suites against the simulator, this machine's kernel, or a VM.
    Run(suite::RunArgs),
    /// Releases, their differences, and which client mislabels which kernel.
    Versions(compat::VersionsArgs),
    /// Record real outputs and netlink bytes of every suite command.
    Capture(suite::CaptureArgs),
    /// Fuzz the real kernel module (inside the VM) against the simulator.
    FuzzKernel(suite::FuzzKernelArgs),
    /// Record the real clients' command-line behaviour (fixtures/captures/cli).
    CaptureCli(cli_capture::Args),
    /// What `capture-cli` runs inside a guest.
    #[command(hide = true)]
    CaptureCliGuest(cli_capture::GuestArgs),
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    let result = match opts.cmd {
        Cmd::Run(a) => suite::run(a),
        Cmd::Versions(a) => compat::run(a),
        Cmd::Capture(a) => suite::capture(a),
        Cmd::FuzzKernel(a) => suite::fuzz_kernel(a),
        Cmd::CaptureCli(a) => cli_capture::run(a),
        Cmd::CaptureCliGuest(a) => cli_capture::guest(a),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jool-harness: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
