//! `jool-harness fuzz-kernel`: its options, resolved into
//! [`fuzz_kernel::Settings`]. The fuzzer itself is
//! [`crate::fuzz_kernel`].

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;

use super::VmArgs;
use crate::fuzz_kernel::{self, Backend, FailOn, Modules, Settings, Verdict};

/// Where the module under test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// The simulator against itself, in this process.
    Sim,
    /// This machine's kernel with the real module (root).
    Kernel,
    /// QEMU guests with the real module.
    Vm,
}

/// What fails a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOnArg {
    /// A kernel crash or a divergence not in the known list.
    Any,
    /// Only a kernel crash (BUG/WARNING/Oops/KASAN, or the fuzzing
    /// process killed).
    Crash,
}

/// `jool-harness fuzz-kernel`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the real module runs (sim: simulator against simulator).
    #[arg(long, value_enum, default_value = "vm")]
    pub backend: BackendArg,
    /// Jool release (vm: the image's; kernel: must be the installed one).
    #[arg(long, value_name = "R")]
    pub release: Option<String>,
    /// How long to fuzz (the VM's hard limit is this plus --timeout).
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub seconds: u64,
    /// Stop after this many requests (replays a run up to a request).
    #[arg(long, value_name = "N")]
    pub max_execs: Option<u64>,
    /// PRNG seed (default: from the clock; printed). Guest N of --jobs
    /// uses SEED + N - 1.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Host folder for the crashes, divergences, summaries (vm).
    #[arg(long, value_name = "DIR", default_value = "target/fuzz-kernel")]
    pub artifacts: PathBuf,
    /// Where crashes, divergences and the summary are written (kernel,
    /// sim; default: --artifacts).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Conformance corpus folder whose requests are seeds (default: the
    /// repository's fixtures/conformance-4.1.9).
    #[arg(long, value_name = "DIR")]
    pub conformance: Option<PathBuf>,
    /// A sim_request corpus folder (fuzz/corpus/sim_request) whose files
    /// are seeds too.
    #[arg(long, value_name = "DIR")]
    pub sim_request_corpus: Option<PathBuf>,
    /// The corpus of kept inputs (those that reached new edges): loaded
    /// at the start, grown at the end (vm; default:
    /// target/fuzz-kernel-corpus/RELEASE).
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Start from the seeds only: do not load the corpus (new inputs are
    /// still added to it).
    #[arg(long)]
    pub fresh: bool,
    /// Blind mutation: coverage is measured but does not decide which
    /// inputs are kept (to compare with feedback).
    #[arg(long)]
    pub no_feedback: bool,
    /// Modules to load in the guest: `auto` (build or reuse Jool's
    /// modules with coverage instrumentation and jool_kcov, with
    /// scripts/fuzz-kernel-build), `stock` (the image's own, no
    /// coverage), or a folder of .ko files from that script.
    #[arg(long, value_name = "auto|stock|DIR", default_value = "auto")]
    pub modules: String,
    /// Build the modules (`--modules auto`) from this ref of Jool's
    /// repository (e.g. `main`) instead of the image's DKMS source; the
    /// simulator then follows --release.
    #[arg(long, value_name = "REF")]
    pub jool_ref: Option<String>,
    /// Boot the KASAN kernel (scripts/fuzz-kernel-build kasan, built once
    /// and cached) with the image's root file system (vm).
    #[arg(long)]
    pub kasan: bool,
    /// Resynchronise both sides every N requests (0: only after
    /// divergences).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub resync_every: u64,
    /// Progress line every N seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub progress: u64,
    /// Never send this Jool command (a known crasher; repeatable).
    #[arg(long, value_name = "CMD")]
    pub avoid_cmd: Vec<u8>,
    /// What fails the run (exit status 1): `any` crash or unknown
    /// divergence, or only a kernel `crash` (unknown divergences are then
    /// reported, for a smoke run in CI).
    #[arg(long, value_enum, default_value = "any")]
    pub fail_on: FailOnArg,
    /// Also send the Jool commands the simulator does not emulate (EAMT,
    /// pool4, BIB, session, global update, address queries, joold). By
    /// default they are replaced by STATS_FOREACH: the simulator answers
    /// them "not emulated" (a known divergence that costs a resync each
    /// time), and on 4.1.9 the real module oopses on several of them
    /// (see fixtures/fuzz-regressions). Use it to hunt such crashes.
    #[arg(long)]
    pub all_cmds: bool,
    /// Do not minimize the crashes' request sequences (each step boots a
    /// guest).
    #[arg(long)]
    pub no_minimize: bool,
    /// After a crash, boot a fresh guest (the next seed) for the time
    /// left instead of stopping every guest; crashes with the same
    /// signature get one folder (for long campaigns).
    #[arg(long)]
    pub keep_going: bool,
    /// Boot a fresh guest, run the crash folder DIR's reproducer and print
    /// `reproduced` (exit 0) or `not reproduced` (exit 1).
    #[arg(long, value_name = "DIR", conflicts_with = "coverage_report")]
    pub reproduce: Option<PathBuf>,
    /// With --reproduce: run it on the stock module of every release that
    /// has a cached image, and name the first release where it no longer
    /// crashes.
    #[arg(long, requires = "reproduce")]
    pub bisect: bool,
    /// Write the coverage report of Jool's code (suites, conformance
    /// requests, the corpus) for --release to DIR: coverage.txt and
    /// index.html.
    #[arg(long, value_name = "DIR")]
    pub coverage_report: Option<PathBuf>,
    /// Lower the console log level (`dmesg -n 1`) so that Jool's error
    /// lines do not go to the serial console (vm passes it).
    #[arg(long)]
    pub quiet_console: bool,
    /// What the guest does, written by `--backend vm` (internal).
    #[arg(long, hide = true, value_name = "FILE")]
    pub guest_plan: Option<PathBuf>,
}

impl Args {
    /// The library's settings, with the guests' options of `vm`
    /// (`--jobs`: guests at once).
    pub fn settings(self, vm: &VmArgs) -> Settings {
        Settings {
            backend: match self.backend {
                BackendArg::Sim => Backend::Sim,
                BackendArg::Kernel => Backend::Kernel,
                BackendArg::Vm => Backend::Vm,
            },
            release: self.release,
            seconds: self.seconds,
            max_execs: self.max_execs,
            seed: self.seed,
            artifacts: self.artifacts,
            out: self.out,
            conformance: self.conformance,
            sim_request_corpus: self.sim_request_corpus,
            corpus: self.corpus,
            fresh: self.fresh,
            no_feedback: self.no_feedback,
            modules: match self.modules.as_str() {
                "auto" => Modules::Auto,
                "stock" => Modules::Stock,
                dir => Modules::Dir(PathBuf::from(dir)),
            },
            jool_ref: self.jool_ref,
            kasan: self.kasan,
            resync_every: self.resync_every,
            progress: self.progress,
            avoid_cmd: self.avoid_cmd,
            fail_on: match self.fail_on {
                FailOnArg::Any => FailOn::Any,
                FailOnArg::Crash => FailOn::Crash,
            },
            all_cmds: self.all_cmds,
            no_minimize: self.no_minimize,
            keep_going: self.keep_going,
            reproduce: self.reproduce,
            bisect: self.bisect,
            coverage_report: self.coverage_report,
            quiet_console: self.quiet_console,
            guest_plan: self.guest_plan,
            vm: vm.config(),
            jobs: vm.jobs,
            console: vm.console.clone(),
        }
    }
}

/// Runs `jool-harness fuzz-kernel`: exit status 0, or 1 on a crash or an
/// unknown divergence (`--reproduce`: not reproduced).
pub fn run(args: Args, vm: &VmArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings(vm);
    let verdict = fuzz_kernel::run(&settings).context("fuzz-kernel failed")?;
    Ok(match verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(1),
    })
}

#[cfg(test)]
mod test {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
        #[command(flatten)]
        vm: VmArgs,
    }

    fn settings(words: &[&str]) -> Settings {
        let cli =
            Cli::parse_from(std::iter::once("x").chain(words.iter().copied()));
        cli.args.settings(&cli.vm)
    }

    #[test]
    fn test_defaults_are_the_librarys() {
        let (s, d) = (settings(&[]), Settings::default());
        assert_eq!(
            (s.backend, s.seconds, s.resync_every, s.progress, s.modules),
            (d.backend, d.seconds, d.resync_every, d.progress, d.modules)
        );
        assert_eq!((s.artifacts, s.fail_on), (d.artifacts, d.fail_on));
        assert_eq!(s.vm.timeout, d.vm.timeout);
    }

    #[test]
    fn test_modules_and_jobs() {
        let s = settings(&["--modules", "stock", "--jobs", "3"]);
        assert_eq!((s.modules, s.jobs), (Modules::Stock, Some(3)));
        let s = settings(&["--modules", "/x/mods"]);
        assert_eq!(s.modules, Modules::Dir("/x/mods".into()));
    }

    #[test]
    fn test_bisect_needs_reproduce() {
        let words = ["x", "--bisect"];
        assert!(Cli::try_parse_from(words).is_err());
        let s = settings(&["--reproduce", "d", "--bisect"]);
        assert!(s.bisect && s.reproduce.is_some());
    }
}
