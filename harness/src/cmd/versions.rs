//! `jool-harness versions ...`: the command-line types of the version
//! tools ([`crate::compat`]) and of `versions real` ([`crate::matrix`]).

use std::{
    io::{self, BufWriter, Write},
    path::PathBuf,
    process::ExitCode,
};

use anyhow::Context;
use jool_sim::versions::Profile;

use super::VmArgs;
use crate::{
    compat::{self, diff, import, list, matrix, matrix::MatrixFormat, Format},
    matrix::cross,
};

/// Output formats of `list` and `diff`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Plain text.
    #[default]
    Text,
    /// JSON (serde).
    Json,
    /// Markdown tables.
    Markdown,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Text => Self::Text,
            FormatArg::Json => Self::Json,
            FormatArg::Markdown => Self::Markdown,
        }
    }
}

/// Output formats of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MatrixFormatArg {
    /// The committed `docs/version-matrix.md`.
    Markdown,
    /// A grid of words, one row per client release.
    Csv,
    /// A standalone page with the details as tooltips.
    Html,
}

impl From<MatrixFormatArg> for MatrixFormat {
    fn from(f: MatrixFormatArg) -> Self {
        match f {
            MatrixFormatArg::Markdown => Self::Markdown,
            MatrixFormatArg::Csv => Self::Csv,
            MatrixFormatArg::Html => Self::Html,
        }
    }
}

/// The releases Debian packages (bookworm, trixie, sid).
const DEBIAN_RELEASES: &[&str] = cross::DEBIAN_RELEASES;

/// `jool-harness versions real`.
#[derive(Debug, Clone, clap::Args)]
pub struct RealArgs {
    /// Kernel module releases to boot (each needs scripts/vm-image's
    /// image; built when absent).
    #[arg(long = "module", value_delimiter = ',', value_name = "R",
          default_values_t = DEBIAN_RELEASES.iter().map(|s| s.to_string()))]
    pub modules: Vec<String>,
    /// Releases of the real C clients to run (binaries from their images).
    #[arg(long = "client", value_delimiter = ',', value_name = "R",
          default_values_t = DEBIAN_RELEASES.iter().map(|s| s.to_string()))]
    pub clients: Vec<String>,
    /// Folder of the captures (`<module>.json`).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "fixtures/captures/cross"
    )]
    pub out: PathBuf,
    /// Do not boot anything: check the captures already in --out.
    #[arg(long)]
    pub check_only: bool,
    /// VM options.
    #[command(flatten)]
    pub vm: VmArgs,
}

/// `jool-harness versions real-guest` (run by `real` inside the guest).
#[derive(Debug, Clone, clap::Args)]
pub struct GuestArgs {
    /// Folder of client bundles: `<release>/bin/{jool,jool_siit}`,
    /// `<release>/lib/`.
    #[arg(long, value_name = "DIR")]
    pub clients: PathBuf,
    /// Where to write `cross.json`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The release the host expects the guest to run.
    #[arg(long, value_name = "R")]
    pub release: Option<String>,
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
        format: FormatArg,
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
        format: FormatArg,
    },
    /// Client release x kernel release: rejected, exact, or accepted with
    /// N mislabels; every cell checked by an in-process run.
    Matrix {
        /// Output format (`docs/version-matrix.md` is the markdown one).
        #[arg(long, value_enum, default_value_t = MatrixFormatArg::Markdown)]
        format: MatrixFormatArg,
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
    Real(RealArgs),
    /// Run inside a guest by `versions real`.
    #[command(hide = true)]
    RealGuest(GuestArgs),
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
            list::write(Profile::all(), format.into(), out)?
        }
        VersionsCmd::Diff { a, b, format } => {
            let d = diff::diff(compat::release(&a)?, compat::release(&b)?)?;
            diff::write(&d, format.into(), out)?;
        }
        VersionsCmd::Matrix { format, check } => {
            return matrix_cmd(format.into(), check, out)
        }
        VersionsCmd::Real(a) => return real(a, out),
        VersionsCmd::RealGuest(a) => {
            cross::guest(&cross::GuestOptions {
                clients: a.clients,
                out: a.out,
                release: a.release,
            })?;
        }
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

/// `versions real`: captures (unless --check-only), checks, prints.
fn real<W: Write>(a: RealArgs, out: &mut W) -> anyhow::Result<ExitCode> {
    let opts = cross::RealOptions {
        modules: a.modules,
        clients: a.clients,
        out: a.out,
        check_only: a.check_only,
        vm: a.vm.config(),
    };
    let o = cross::run(&opts)?;
    let bad: Vec<&cross::Finding> =
        o.findings.iter().filter(|f| f.problem.is_some()).collect();
    for f in &bad {
        writeln!(
            out,
            "DIFFERS {}\n{}",
            f.what,
            f.problem.as_deref().unwrap_or("")
        )?;
    }
    write!(out, "{}", o.summary)?;
    writeln!(
        out,
        "{} of {} checks agree (real clients x real modules x the sim)",
        o.findings.len() - bad.len(),
        o.findings.len()
    )?;
    Ok(if bad.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn matrix_cmd<W: Write>(
    format: MatrixFormat,
    check: Option<PathBuf>,
    out: &mut W,
) -> anyhow::Result<ExitCode> {
    let m = matrix::build().map_err(|errors| {
        anyhow::anyhow!(
            "prediction and simulation disagree:\n{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
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
