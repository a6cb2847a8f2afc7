//! `jool-harness run`: its options, and the progress and reports it
//! prints. The runner itself is [`crate::suite`].

use std::{io::IsTerminal, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;

use crate::{
    suite::{self, expect::Snapshots, Clients, Report, Target},
    vm,
};

/// Where the cases run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
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

impl From<ClientArg> for Clients {
    fn from(c: ClientArg) -> Self {
        match c {
            ClientArg::JoolStats => Self::JoolStats,
            ClientArg::Real => Self::Real,
            ClientArg::Both => Self::Both,
        }
    }
}

/// `jool-harness run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Where the cases run.
    #[arg(long, value_enum, default_value = "sim")]
    pub backend: BackendArg,
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
    pub vm: VmArgs,
}

/// Options of the guests (`--backend vm`, `capture`, `fuzz-kernel`,
/// `versions real`).
#[derive(Debug, Clone, clap::Args)]
pub struct VmArgs {
    /// Use this image folder (vmlinuz, initrd.img, rootfs.img) instead of
    /// scripts/vm-image's cached one.
    #[arg(long, value_name = "DIR")]
    pub image: Option<PathBuf>,
    /// Hard limit on one boot, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
    /// Hardware acceleration.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: AccelArg,
    /// Where to keep the guest console when the run fails (default: beside
    /// the JUnit file, or the temporary folder).
    #[arg(long, value_name = "FILE")]
    pub console: Option<PathBuf>,
    /// Guests booted at once by `run --backend vm`, each running a share
    /// of the (client, suite) pairs, and by `fuzz-kernel`, each fuzzing
    /// with its own seed (default: one per host CPU under TCG, where a
    /// guest has one vCPU; one per two CPUs with KVM).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// The jool-harness and jool-stats to copy into the guest (default:
    /// this executable and the jool-stats beside it). Guests whose C
    /// library is older than this build's (bullseye's 2.31) need a static
    /// build: `scripts/guest-bin` makes one in target/guest-bin.
    /// Default: $JOOL_HARNESS_GUEST_BIN.
    #[arg(long, value_name = "DIR")]
    pub guest_bin: Option<PathBuf>,
}

/// How QEMU runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelArg {
    /// KVM if the CPU has vmx/svm, else TCG.
    Auto,
    /// KVM (`-enable-kvm -cpu host`).
    Kvm,
    /// Software emulation.
    Tcg,
}

impl VmArgs {
    /// How to boot the guests.
    pub fn config(&self) -> vm::Config {
        vm::Config {
            image: self.image.clone(),
            timeout: Duration::from_secs(self.timeout),
            accel: match self.accel {
                AccelArg::Auto => vm::Accel::Auto,
                AccelArg::Kvm => vm::Accel::Kvm,
                AccelArg::Tcg => vm::Accel::Tcg,
            },
            events: vm::Events::default(),
            guest_bin: self.guest_bin.clone().or_else(|| {
                std::env::var_os("JOOL_HARNESS_GUEST_BIN").map(PathBuf::from)
            }),
        }
    }
}

/// Runs `jool-harness run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let target = match args.backend {
        BackendArg::Sim => Target::Sim,
        BackendArg::Kernel => Target::Kernel,
        BackendArg::Vm => Target::Vm(suite::vm::Options {
            vm: args.vm.config(),
            jobs: args.vm.jobs,
            console: args.vm.console.clone().or_else(|| {
                args.junit.as_ref().map(|j| j.with_extension("console.log"))
            }),
        }),
    };
    let run = suite::Run {
        target,
        clients: args.client.into(),
        suites_dir: args
            .suites_dir
            .clone()
            .unwrap_or_else(suite::default_suites_dir),
        globs: args.suites.clone(),
        // `--release`, else (vm) the release of the `--image` cell.
        release: args.release.clone().or_else(|| match args.backend {
            BackendArg::Vm => {
                args.vm.image.as_deref().and_then(vm::cell::image_release)
            }
            _ => None,
        }),
        snapshots: if args.bless {
            Snapshots::Bless
        } else {
            Snapshots::Check
        },
        strict: args.strict,
    };
    let mut progress =
        Progress::new(!args.plain && std::io::stderr().is_terminal());
    let result = suite::run(&run, &mut |e| progress.event(e));
    progress.finish();
    let (report, name) = result?;
    finish(&report, &args, &name)
}

/// Prints the failures and the summary, writes JUnit/JSON; the exit code.
fn finish(
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
    let counts = report.counts();
    if args.strict && counts.passed + counts.failed == 0 {
        let why = report
            .cases
            .iter()
            .find_map(|c| match &c.outcome {
                suite::report::Outcome::Skipped(why) => Some(why.as_str()),
                _ => None,
            })
            .unwrap_or("no suite matched");
        eprintln!(
            "run: --strict: no case ran ({} skipped; e.g. {why}): a release \
             no suite targets is a failure (docs/suites.md)",
            report.cases.len()
        );
        return Ok(ExitCode::from(1));
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

    fn event(&mut self, e: suite::runner::Event<'_>) {
        match (e, &self.bar) {
            (suite::runner::Event::Start(n), Some(_)) => {
                let bar = indicatif::ProgressBar::new(n as u64);
                let style = indicatif::ProgressStyle::with_template(
                    "{pos}/{len} [{elapsed}] {bar:30} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
                bar.set_style(style);
                self.bar = Some(bar);
            }
            (suite::runner::Event::CaseStart(id), Some(bar)) => {
                bar.set_message(id.to_owned())
            }
            (suite::runner::Event::CaseEnd(r), Some(bar)) => {
                if let suite::report::Outcome::Failed(why) = &r.outcome {
                    bar.println(format!("FAIL {}: {why}", r.id()));
                }
                bar.inc(1);
            }
            (suite::runner::Event::CaseEnd(r), None) => {
                let tag = match &r.outcome {
                    suite::report::Outcome::Passed => "PASS",
                    suite::report::Outcome::Failed(_) => "FAIL",
                    suite::report::Outcome::Skipped(_) => "SKIP",
                };
                if !matches!(&r.outcome, suite::report::Outcome::Skipped(w) if w.starts_with("not targeted"))
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
