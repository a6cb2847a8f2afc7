//! Scenario suites (`fixtures/suites/*.toml`) and the runner that replays
//! them against a backend: the simulator ([`sim`]), the real kernel of
//! this machine ([`kernel`]), or a QEMU guest running the real module
//! (`crate::vm`, which runs `--backend kernel` inside the guest).
//!
//! - [`spec`]: the file format, loaded and checked;
//! - [`recipes`]: traffic topologies and recipes;
//! - [`runner`]: cases x clients on one backend, with progress events;
//! - [`expect`]: expectations and diffs; [`report`]: summary, JUnit, JSON.
//!
//! The format is described in `docs/suites.md`.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;

pub mod backend;
pub mod capture;
pub mod expect;
pub mod inproc;
pub mod kernel;
pub mod recipes;
pub mod report;
pub mod runner;
pub mod sim;
pub mod spec;

pub use backend::ClientKind;
pub use report::Report;
pub use spec::Suite;

/// Where the cases run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The simulator, in this process.
    Sim,
    /// This machine's kernel with the real module (root, Jool installed).
    Kernel,
    /// A QEMU guest with the real module (image from scripts/vm-image).
    Vm,
}

/// Which clients run the commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientArg {
    /// `jool-stats` (this project).
    JoolStats,
    /// The real C `jool`/`jool_siit`.
    Real,
    /// Both, one after the other.
    Both,
}

impl ClientArg {
    /// The clients it stands for.
    pub fn clients(self) -> Vec<ClientKind> {
        match self {
            Self::JoolStats => vec![ClientKind::JoolStats],
            Self::Real => vec![ClientKind::Real],
            Self::Both => vec![ClientKind::JoolStats, ClientKind::Real],
        }
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::JoolStats => "jool-stats",
            Self::Real => "real",
            Self::Both => "both",
        }
    }
}

/// `jool-harness run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Where the cases run.
    #[arg(long, value_enum, default_value = "sim")]
    pub backend: BackendKind,
    /// Which client runs the `jool`/`jool_siit` commands.
    #[arg(long, value_enum, default_value = "jool-stats")]
    pub client: ClientArg,
    /// Suites to run: glob on the file stem (repeatable; default all).
    #[arg(long = "suite", value_name = "GLOB")]
    pub suites: Vec<String>,
    /// Folder of the suite files.
    #[arg(long, value_name = "DIR")]
    pub suites_dir: Option<PathBuf>,
    /// Kernel release (sim: default 4.1.9; kernel: must be the installed
    /// one; vm: the image's).
    #[arg(long, value_name = "R")]
    pub release: Option<String>,
    /// Write JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write snapshots that are missing or differ, instead of failing.
    #[arg(long)]
    pub bless: bool,
    /// Print one line per case even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Fail, instead of skipping, the cases of a client the backend cannot
    /// run (e.g. the real client without the LD_PRELOAD shim).
    #[arg(long)]
    pub strict: bool,
    /// VM options.
    #[command(flatten)]
    pub vm: crate::vm::VmArgs,
}

pub use capture::CaptureArgs;

pub use crate::fuzz_kernel::FuzzKernelArgs;

/// The repository's `fixtures/suites`.
pub fn default_suites_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/suites")
}

/// Whether `name` matches `glob` (`*` any run, `?` one character).
pub fn glob_matches(glob: &str, name: &str) -> bool {
    fn go(g: &[u8], n: &[u8]) -> bool {
        match (g.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                go(&g[1..], n) || (!n.is_empty() && go(g, &n[1..]))
            }
            (Some(b'?'), Some(_)) => go(&g[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&g[1..], &n[1..]),
            _ => false,
        }
    }
    go(glob.as_bytes(), name.as_bytes())
}

/// Loads the suites of `dir` whose file stem matches one of `globs`
/// (every suite if `globs` is empty), sorted by file name.
pub fn load_suites(
    dir: &Path,
    globs: &[String],
) -> anyhow::Result<Vec<Suite>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| {
            format!("Failed to read the suites folder {}", dir.display())
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            globs.is_empty()
                || globs
                    .iter()
                    .any(|g| glob_matches(g.trim_end_matches(".toml"), &stem))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        anyhow::bail!("no suite in {} matches {:?}", dir.display(), globs);
    }
    paths.iter().map(|p| Suite::load(p).map_err(anyhow::Error::from)).collect()
}

/// Runs `suites` on the in-process simulator of `release` with
/// `jool-stats` (what `cargo test` does).
pub fn run_sim(
    suites: &[Suite],
    release: &str,
    clients: &[ClientKind],
) -> anyhow::Result<Report> {
    let mut backend =
        sim::SimBackend::new(release).map_err(anyhow::Error::msg)?;
    let plan = runner::Plan {
        suites,
        clients,
        snapshots: expect::Snapshots::Check,
        strict: false,
    };
    Ok(runner::run(&plan, &mut backend, &mut |_| {}))
}

/// The jool-stats binary beside this executable.
pub fn jool_stats_binary() -> anyhow::Result<PathBuf> {
    let exe =
        std::env::current_exe().context("Failed to find this executable")?;
    let dir = exe.parent().context("executable without a folder")?;
    [dir.join("jool-stats"), dir.join("../jool-stats")]
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "jool-stats is not beside {} (cargo build -p jool-harness)",
                exe.display()
            )
        })
}

/// Runs `jool-harness run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.backend == BackendKind::Vm {
        return crate::vm::run(&args);
    }
    let dir = args.suites_dir.clone().unwrap_or_else(default_suites_dir);
    let suites = load_suites(&dir, &args.suites)?;
    let clients = args.client.clients();
    let mut backend: Box<dyn backend::Backend> = match args.backend {
        BackendKind::Sim => Box::new(
            sim::SimBackend::new(
                args.release.as_deref().unwrap_or(crate::cli::DEFAULT_CLIENT),
            )
            .map_err(anyhow::Error::msg)?,
        ),
        _ => Box::new(
            kernel::KernelBackend::new(
                args.release.as_deref(),
                &jool_stats_binary()?,
            )
            .map_err(anyhow::Error::msg)?,
        ),
    };
    let snapshots = if args.bless {
        expect::Snapshots::Bless
    } else {
        expect::Snapshots::Check
    };
    let plan = runner::Plan {
        suites: &suites,
        clients: &clients,
        snapshots,
        strict: args.strict,
    };
    let mut progress =
        Progress::new(!args.plain && std::io::stderr().is_terminal());
    let report =
        runner::run(&plan, backend.as_mut(), &mut |e| progress.event(e));
    progress.finish();
    finish(&report, &args, &format!("jool-harness {}", backend.name()))
}

/// Prints the failures and the summary, writes JUnit/JSON; the exit code.
pub fn finish(
    report: &Report,
    args: &RunArgs,
    name: &str,
) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    report.write_failures(&mut out)?;
    report.write_summary(&mut out)?;
    if let Some(p) = &args.junit {
        std::fs::write(p, report.to_junit(name))
            .with_context(|| format!("Failed to write {}", p.display()))?;
    }
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(report)?;
        std::fs::write(p, text + "\n")
            .with_context(|| format!("Failed to write {}", p.display()))?;
    }
    Ok(if report.success() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Progress on stderr: a bar on a terminal, a line per case otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        Self { bar: terminal.then(indicatif::ProgressBar::hidden) }
    }

    fn event(&mut self, e: runner::Event<'_>) {
        match (e, &self.bar) {
            (runner::Event::Start(n), Some(_)) => {
                let bar = indicatif::ProgressBar::new(n as u64);
                let style = indicatif::ProgressStyle::with_template(
                    "{pos}/{len} [{elapsed}] {bar:30} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
                bar.set_style(style);
                self.bar = Some(bar);
            }
            (runner::Event::CaseStart(id), Some(bar)) => {
                bar.set_message(id.to_owned())
            }
            (runner::Event::CaseEnd(r), Some(bar)) => {
                if let report::Outcome::Failed(why) = &r.outcome {
                    bar.println(format!("FAIL {}: {why}", r.id()));
                }
                bar.inc(1);
            }
            (runner::Event::CaseEnd(r), None) => {
                let tag = match &r.outcome {
                    report::Outcome::Passed => "PASS",
                    report::Outcome::Failed(_) => "FAIL",
                    report::Outcome::Skipped(_) => "SKIP",
                };
                if !matches!(&r.outcome, report::Outcome::Skipped(w) if w.starts_with("not targeted"))
                {
                    eprintln!("{tag} {} ({:.2} s)", r.id(), r.seconds);
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Runs `jool-harness capture`.
pub fn capture(args: CaptureArgs) -> anyhow::Result<ExitCode> {
    capture::capture(args)
}

/// Runs `jool-harness fuzz-kernel`.
pub fn fuzz_kernel(args: FuzzKernelArgs) -> anyhow::Result<ExitCode> {
    crate::fuzz_kernel::run(args)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_glob_matches() {
        assert!(glob_matches("*", "siit-display"));
        assert!(glob_matches("siit-*", "siit-display"));
        assert!(!glob_matches("nat64-*", "siit-display"));
        assert!(glob_matches("s?it*", "siit"));
    }
}
