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

use std::{
    io::{self, BufWriter, Write},
    path::PathBuf,
    process::ExitCode,
};

use anyhow::Context;
use jool_sim::versions::Profile;

pub mod crossrun;
pub mod detect;
pub mod diff;
pub mod import;
pub mod list;
pub mod matrix;
pub mod predict;
pub mod protocol;
pub mod real;

use matrix::MatrixFormat;

/// Output formats of `list` and `diff`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Plain text.
    #[default]
    Text,
    /// JSON (serde).
    Json,
    /// Markdown tables.
    Markdown,
}

/// `jool-harness versions`.
#[derive(Debug, clap::Args)]
pub struct VersionsArgs {
    #[command(subcommand)]
    cmd: VersionsCmd,
}

#[derive(Debug, clap::Subcommand)]
enum VersionsCmd {
    /// Every release the project emulates: wire version, stat count,
    /// the kernel's compat rule, and whether stats needs CAP_NET_ADMIN.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// What changed from release A to release B (stats and protocol), and
    /// which counters a client of one mislabels against a kernel of the
    /// other, verified against the simulator.
    Diff {
        /// Release A (`4.1.9`, `4.2.0-rc3`, `main`).
        a: String,
        /// Release B.
        b: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Client release x kernel release: rejected, exact, or accepted with
    /// N mislabels; every cell checked by an in-process run.
    Matrix {
        /// Output format (`docs/version-matrix.md` is the markdown one).
        #[arg(long, value_enum, default_value_t = MatrixFormat::Markdown)]
        format: MatrixFormat,
        /// Print nothing; fail unless FILE holds the current output.
        #[arg(long, value_name = "FILE")]
        check: Option<PathBuf>,
    },
    /// Write a release's `<release>.toml` from a Jool source tree (a git
    /// checkout or a release tarball's folder), in the fixtures' format.
    Import {
        /// The Jool source tree.
        path: PathBuf,
        /// Folder to write `<release>.toml` into.
        #[arg(long, default_value = "fixtures/versions")]
        out: PathBuf,
        /// Print the TOML instead of writing it.
        #[arg(long)]
        stdout: bool,
        /// Release name, instead of git's tag/branch or configure.ac's.
        #[arg(long)]
        release: Option<String>,
        /// Tag (or commit) to record, instead of git's or `v<release>`.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Prove the matrix on real kernels: boot each module release's
    /// guest, run every release's real C client and jool-stats against
    /// it, and check the outputs against `versions matrix` and the sim
    /// (captures in fixtures/captures/cross/).
    Real(real::RealArgs),
    /// Run inside a guest by `versions real`.
    #[command(hide = true)]
    RealGuest(real::GuestArgs),
}

/// A release by name, or an error listing the known ones.
pub fn release(name: &str) -> anyhow::Result<&'static Profile> {
    Profile::get(name).with_context(|| {
        format!(
            "unknown release '{name}'; known releases: {}",
            Profile::names().join(" ")
        )
    })
}

/// Runs `jool-harness versions`.
pub fn run(args: VersionsArgs) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let code = run_to(args, &mut out)?;
    out.flush()?;
    Ok(code)
}

/// [`run`], writing to `out`.
pub fn run_to<W: Write>(
    args: VersionsArgs,
    out: &mut W,
) -> anyhow::Result<ExitCode> {
    match args.cmd {
        VersionsCmd::List { format } => {
            list::write(Profile::all(), format, out)?
        }
        VersionsCmd::Diff { a, b, format } => {
            let d = diff::diff(release(&a)?, release(&b)?)
                .map_err(anyhow::Error::msg)?;
            diff::write(&d, format, out)?;
        }
        VersionsCmd::Matrix { format, check } => {
            return matrix_cmd(format, check, out)
        }
        VersionsCmd::Real(a) => return real::run(a),
        VersionsCmd::RealGuest(a) => return real::guest(a),
        VersionsCmd::Import { path, out: dir, stdout, release, tag } => {
            let ov = import::Overrides { release, tag };
            if stdout {
                let (_, text) = import::import_text(&path, &ov)?;
                out.write_all(text.as_bytes())?;
            } else {
                let written = import::import(&path, &ov, &dir)?;
                writeln!(out, "{}", written.display())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn matrix_cmd<W: Write>(
    format: MatrixFormat,
    check: Option<PathBuf>,
    out: &mut W,
) -> anyhow::Result<ExitCode> {
    let m = matrix::build().map_err(|errors| {
        anyhow::anyhow!(
            "prediction and simulation disagree:\n{}",
            errors.join("\n")
        )
    })?;
    let Some(path) = check else {
        matrix::write(&m, format, out)?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut want = Vec::new();
    matrix::write(&m, format, &mut want)?;
    let have = std::fs::read(&path)
        .with_context(|| format!("Failed to read {}", path.display()))?;
    if have == want {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{} is not current; regenerate it with `jool-harness versions matrix > {}`",
        path.display(),
        path.display()
    );
    Ok(ExitCode::FAILURE)
}
