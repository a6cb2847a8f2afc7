//! Scenario suites (`fixtures/suites/*.toml`) and the runner that replays
//! them against a backend: the simulator ([`sim`]; jool-stats in-process
//! through [`inproc`], or real clients through the daemon), the real
//! kernel of this machine ([`kernel`]), or QEMU guests running the real
//! module ([`vm`], which runs `--backend kernel` inside each guest).
//!
//! - [`spec`]: the file format, loaded and checked;
//! - [`recipes`]: traffic topologies and recipes;
//! - [`runner`]: cases x clients on one backend, with progress events;
//! - [`expect`]: expectations and diffs; [`report`]: summary, JUnit, JSON.
//!
//! The format is described in `docs/suites.md`.

use std::path::{Path, PathBuf};

pub mod backend;
mod error;
pub mod expect;
pub mod inproc;
pub mod kernel;
pub mod recipes;
pub mod report;
pub mod runner;
pub mod sim;
pub mod spec;
pub mod vm;

pub use backend::ClientKind;
pub use error::Error;
pub use report::Report;
pub use spec::Suite;

/// Result of the runner's operations.
pub type Result<T> = std::result::Result<T, Error>;

/// Which clients run the `jool`/`jool_siit` commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clients {
    /// `jool-stats` (this project).
    JoolStats,
    /// The real C `jool`/`jool_siit`.
    Real,
    /// Both, one after the other.
    Both,
}

impl Clients {
    /// The clients it stands for.
    pub fn clients(self) -> Vec<ClientKind> {
        match self {
            Self::JoolStats => vec![ClientKind::JoolStats],
            Self::Real => vec![ClientKind::Real],
            Self::Both => vec![ClientKind::JoolStats, ClientKind::Real],
        }
    }

    /// The name on the command line (`--client`).
    pub fn name(self) -> &'static str {
        match self {
            Self::JoolStats => "jool-stats",
            Self::Real => "real",
            Self::Both => "both",
        }
    }
}

/// Where the cases run.
#[derive(Clone, Debug)]
pub enum Target {
    /// The simulator, in this process.
    Sim,
    /// This machine's kernel with the real module (root, Jool installed).
    Kernel,
    /// QEMU guests with the real module (image from scripts/vm-image).
    Vm(vm::Options),
}

/// One run of the suites.
#[derive(Clone, Debug)]
pub struct Run {
    /// Where the cases run.
    pub target: Target,
    /// Which clients run the commands.
    pub clients: Clients,
    /// The suites folder.
    pub suites_dir: PathBuf,
    /// Globs on the suites' file stems (every suite when empty).
    pub globs: Vec<String>,
    /// The kernel release (sim: default [`crate::cli::DEFAULT_CLIENT`];
    /// kernel: must be the installed one; vm: the image's).
    pub release: Option<String>,
    /// Write snapshots that are missing or differ instead of failing.
    pub snapshots: expect::Snapshots,
    /// Fail, instead of skipping, the cases of a client the backend
    /// cannot run.
    pub strict: bool,
}

impl Run {
    /// The release the cases target.
    pub fn release(&self) -> &str {
        self.release.as_deref().unwrap_or(crate::cli::DEFAULT_CLIENT)
    }
}

/// Runs the suites of `run`, calling `progress` for each event; returns
/// the report and the name of the backend.
pub fn run(
    run: &Run,
    progress: &mut dyn FnMut(runner::Event<'_>),
) -> Result<(Report, String)> {
    let suites = load_suites(&run.suites_dir, &run.globs)?;
    let clients = run.clients.clients();
    let mut backend: Box<dyn backend::Backend> = match &run.target {
        Target::Vm(opts) => {
            let report = vm::run(run, opts, &suites)?;
            return Ok((report, format!("jool-harness vm {}", run.release())));
        }
        Target::Sim => Box::new(
            sim::SimBackend::new(run.release()).map_err(Error::Backend)?,
        ),
        Target::Kernel => Box::new(
            kernel::KernelBackend::new(
                run.release.as_deref(),
                &crate::vm::jool_stats_binary()?,
            )
            .map_err(Error::Backend)?,
        ),
    };
    let plan = runner::Plan {
        suites: &suites,
        clients: &clients,
        snapshots: run.snapshots,
        strict: run.strict,
    };
    let report = runner::run(&plan, backend.as_mut(), progress);
    Ok((report, format!("jool-harness {}", backend.name())))
}

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
pub fn load_suites(dir: &Path, globs: &[String]) -> Result<Vec<Suite>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::ReadDir { dir: dir.to_owned(), source })?
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
        return Err(Error::NoSuite {
            dir: dir.to_owned(),
            globs: globs.to_vec(),
        });
    }
    paths.iter().map(|p| Suite::load(p).map_err(Error::Spec)).collect()
}

/// Runs `suites` on the in-process simulator of `release` with
/// `jool-stats` (what `cargo test` does).
pub fn run_sim(
    suites: &[Suite],
    release: &str,
    clients: &[ClientKind],
) -> Result<Report> {
    let mut backend = sim::SimBackend::new(release).map_err(Error::Backend)?;
    let plan = runner::Plan {
        suites,
        clients,
        snapshots: expect::Snapshots::Check,
        strict: false,
    };
    Ok(runner::run(&plan, &mut backend, &mut |_| {}))
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
