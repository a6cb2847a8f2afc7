//! `jool-harness capture`: its options. The captures themselves are
//! [`crate::capture`].

use std::{path::PathBuf, process::ExitCode};

use super::VmArgs;
use crate::{capture, suite};

/// Where `jool-harness capture` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CaptureBackend {
    /// This machine's kernel (root, Jool and nlmon available).
    Kernel,
    /// A QEMU guest of `--release` (what fixtures are made with).
    Vm,
}

/// `jool-harness capture`.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Where the commands run.
    #[arg(long, value_enum, default_value = "vm")]
    pub backend: CaptureBackend,
    /// Suites to capture: glob on the file stem (default all).
    #[arg(long = "suite", value_name = "GLOB")]
    pub suites: Vec<String>,
    /// Folder of the suite files.
    #[arg(long, value_name = "DIR")]
    pub suites_dir: Option<PathBuf>,
    /// Release (vm: the image's; default 4.1.9).
    #[arg(long, value_name = "R")]
    pub release: Option<String>,
    /// Output folder (default: fixtures/captures/<release>-vm). An earlier
    /// capture there is replaced; a folder holding anything else is not.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// VM options.
    #[command(flatten)]
    pub vm: VmArgs,
}

/// Runs `jool-harness capture`.
pub fn run(args: CaptureArgs) -> anyhow::Result<ExitCode> {
    let release = args
        .release
        .clone()
        .unwrap_or_else(|| crate::cli::DEFAULT_CLIENT.to_owned());
    let c = capture::Capture {
        globs: args.suites.clone(),
        suites_dir: args
            .suites_dir
            .clone()
            .unwrap_or_else(suite::default_suites_dir),
        out: args
            .out
            .clone()
            .unwrap_or_else(|| capture::Capture::default_out(&release)),
        release,
    };
    let passed = match args.backend {
        CaptureBackend::Kernel => capture::capture_kernel(&c)?,
        CaptureBackend::Vm => {
            capture::capture_vm(&c, &args.vm.config())?;
            true
        }
    };
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
