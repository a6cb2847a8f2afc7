//! The `jool-harness` command: subcommand dispatch, command-line types
//! (clap) and error reporting (anyhow). The only layer that knows the
//! command line; everything below is a library with typed errors
//! (docs/architecture.md).
//!
//! - [`run`]: `jool-harness run` (suites on the sim, this kernel, guests);
//! - [`versions`]: `jool-harness versions ...`;
//! - [`capture`]: `jool-harness capture`;
//! - [`fuzz_kernel`]: `jool-harness fuzz-kernel` ([`crate::fuzz_kernel`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod capture;
pub mod cli_capture;
pub mod fuzz_kernel;
pub mod matrix;
pub mod run;
pub mod versions;

pub use run::VmArgs;

/// Test harness for Jool's `stats` interface.
#[derive(Debug, Parser)]
#[command(name = "jool-harness", version, about, long_about = None)]
struct Opts {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run scenario suites against the simulator, this machine's kernel, or a VM.
    Run(run::RunArgs),
    /// Releases, their differences, and which client mislabels which kernel.
    Versions(versions::VersionsArgs),
    /// Record real outputs and netlink bytes of every suite command.
    Capture(capture::CaptureArgs),
    /// Fuzz the real kernel module (inside the VM) against the simulator.
    FuzzKernel {
        #[command(flatten)]
        args: Box<fuzz_kernel::Args>,
        /// VM options (`--jobs`: guests at once, default one per host
        /// CPU under TCG).
        #[command(flatten)]
        vm: VmArgs,
    },
    /// The conformance probe of a release on the real module, checked
    /// against the simulator.
    Matrix(matrix::MatrixArgs),
    /// Record the real clients' command-line behaviour (fixtures/captures/cli).
    CaptureCli(cli_capture::Args),
    /// What `capture-cli` runs inside a guest.
    #[command(hide = true)]
    CaptureCliGuest(cli_capture::GuestArgs),
}

/// The exit status of an error: 2, like a usage error (ripgrep's).
const EXIT_ERROR: u8 = 2;

/// `jool-harness`'s `main`: parses the command line, runs the
/// subcommand, prints an error's chain on stderr.
pub fn main() -> ExitCode {
    let opts = Opts::parse();
    let result = match opts.cmd {
        Cmd::Run(a) => run::run(a),
        Cmd::Versions(a) => versions::run(a),
        Cmd::Capture(a) => capture::run(a),
        Cmd::FuzzKernel { args, vm } => fuzz_kernel::run(*args, &vm),
        Cmd::Matrix(a) => matrix::run(a),
        Cmd::CaptureCli(a) => cli_capture::run(a),
        Cmd::CaptureCliGuest(a) => cli_capture::guest(a),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jool-harness: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_command_line_is_consistent() {
        use clap::CommandFactory;
        Opts::command().debug_assert();
    }
}
