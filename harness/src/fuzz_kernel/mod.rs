//! `jool-harness fuzz-kernel`: coverage-guided differential fuzzing of
//! the real Jool module against the simulator.
//!
//! - `--backend vm` (default, [`host`]): builds (or reuses) Jool's modules
//!   compiled with coverage instrumentation and our `jool_kcov` companion
//!   (scripts/fuzz-kernel-build), boots `--jobs` guests of `--release`
//!   (optionally on the KASAN kernel) and runs `--backend kernel` in each;
//!   collects their divergences, crashes and kept inputs, and turns every
//!   crash into a folder with the minimized requests and a standalone C
//!   reproducer ([`crash`], [`repro`]). Also `--reproduce DIR`,
//!   `--bisect` and `--coverage-report DIR` ([`report`]).
//! - `--backend kernel` ([`guest`]): this machine's kernel (root, Jool
//!   installed, or the modules the guest plan names). Re-executes itself
//!   in a fresh network namespace (`unshare -n`) and runs the [`engine`]
//!   loop between a [`target::RealKernel`] and a [`target::SimKernel`].
//! - `--backend sim`: the same loop between two simulators (what the unit
//!   tests run; measures the mutator and the simulator).
//!
//! Exit status: 0, or 1 on a kernel crash or a divergence that is not in
//! [`known::KNOWN`]; 2 on errors.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{bail, Context};
use jool_sim::versions::Profile;

pub mod answer;
pub mod artifacts;
pub mod cover;
pub mod crash;
pub mod discover;
pub mod engine;
pub mod guest;
pub mod host;
pub mod journal;
pub mod known;
pub mod mutate;
pub mod report;
pub mod repro;
pub mod request;
pub mod rng;
pub mod seeds;
pub mod stack;
pub mod summary;
pub mod target;

pub use engine::{Engine, Options};
pub use guest::GuestPlan;
pub use summary::Summary;
pub use target::{Exchange, KernelUnderTest, RealKernel, SimKernel};

/// The release a run targets when `--release` is not given.
pub const DEFAULT_RELEASE: &str = "4.1.9";

/// Where the module under test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The simulator against itself, in this process.
    Sim,
    /// This machine's kernel with the real module (root).
    Kernel,
    /// QEMU guests with the real module.
    Vm,
}

/// `jool-harness fuzz-kernel`.
#[derive(Debug, clap::Args)]
pub struct FuzzKernelArgs {
    /// Where the real module runs (sim: simulator against simulator).
    #[arg(long, value_enum, default_value = "vm")]
    pub backend: Backend,
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
    pub fail_on: FailOn,
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
    /// VM options (`--jobs`: guests at once, default one per host CPU
    /// under TCG).
    #[command(flatten)]
    pub vm: Box<crate::vm::VmArgs>,
}

/// What fails a `fuzz-kernel` run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A kernel crash or a divergence not in the known list.
    Any,
    /// Only a kernel crash (BUG/WARNING/Oops/KASAN, or the fuzzing
    /// process killed).
    Crash,
}

/// Runs `jool-harness fuzz-kernel`.
pub fn run(args: FuzzKernelArgs) -> anyhow::Result<ExitCode> {
    match args.backend {
        Backend::Vm => host::run(&args),
        Backend::Kernel => guest::run(&args),
        Backend::Sim => run_sim(&args),
    }
}

fn seed_of(args: &FuzzKernelArgs) -> u64 {
    args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
    })
}

fn release_of(args: &FuzzKernelArgs) -> String {
    args.release.clone().unwrap_or_else(|| DEFAULT_RELEASE.to_owned())
}

fn profile_of(release: &str) -> anyhow::Result<&'static Profile> {
    let p = Profile::get(release)
        .with_context(|| format!("unknown release {release}"))?;
    if p.is_legacy() {
        bail!("fuzz-kernel speaks the joolnlhdr protocol (4.0.8 and later), not {release}'s");
    }
    Ok(p)
}

fn default_conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/conformance-4.1.9")
}

/// The seeds: built requests, the conformance corpus, a sim_request
/// corpus.
fn seed_requests(
    args: &FuzzKernelArgs,
    p: &Profile,
    netns_tag: u32,
) -> anyhow::Result<Vec<seeds::Seed>> {
    let mut out = seeds::built_seeds(p, netns_tag);
    let dir = args.conformance.clone().unwrap_or_else(default_conformance);
    out.extend(
        seeds::conformance_dir(&dir, netns_tag).map_err(anyhow::Error::msg)?,
    );
    if let Some(d) = &args.sim_request_corpus {
        out.extend(seeds::sim_request_seeds(d, 4096));
    }
    Ok(out)
}

/// The Jool commands the simulator emulates (4.1 numbering): instance
/// foreach/add/hello/rm/flush, stats foreach, global foreach.
const EMULATED_CMDS: [u8; 7] = [0, 1, 2, 3, 4, 7, 8];

/// `--avoid-cmd`, plus (without `--all-cmds`) every command `p`'s family
/// registers that the simulator does not emulate.
fn avoided(args: &FuzzKernelArgs, p: &Profile) -> Vec<u8> {
    let mut v = args.avoid_cmd.clone();
    if !args.all_cmds {
        let n = p.op_count();
        v.extend((0..n).filter(|c| !EMULATED_CMDS.contains(c)));
    }
    v.sort_unstable();
    v.dedup();
    v
}

fn options(
    args: &FuzzKernelArgs,
    p: &Profile,
    out: Option<PathBuf>,
) -> Options {
    Options {
        seed: seed_of(args),
        duration: Some(Duration::from_secs(args.seconds)),
        max_execs: args.max_execs,
        resync_every: args.resync_every,
        progress: (args.progress > 0)
            .then(|| Duration::from_secs(args.progress)),
        out,
        journal: None,
        marker: None,
        avoid_cmds: avoided(args, p),
        feedback: !args.no_feedback,
        stop_file: None,
    }
}

/// Discovers `real`, builds the simulator of `sim_profile` like it, and
/// runs the loop on the seeds `seeds_of` gives and the kept inputs
/// `corpus`.
pub fn campaign(
    real: &mut dyn KernelUnderTest,
    profile: &'static Profile,
    sim_profile: &'static Profile,
    seeds_of: &dyn Fn(u32) -> anyhow::Result<Vec<seeds::Seed>>,
    mut corpus: Vec<seeds::Seed>,
    opts: Options,
) -> anyhow::Result<Summary> {
    let d = discover::discover(real, profile).map_err(anyhow::Error::msg)?;
    for s in &mut corpus {
        request::replace_all(
            &mut s.bytes,
            &request::TAG_PLACEHOLDER,
            &d.netns_tag.to_le_bytes(),
        );
    }
    let mut sim = discover::sim_like(sim_profile, &d);
    let seeds = seeds_of(d.netns_tag)?;
    if let Some(out) = &opts.out {
        std::fs::create_dir_all(out)
            .with_context(|| format!("{}", out.display()))?;
    }
    Ok(Engine::new(real, &mut sim, profile, d, (seeds, corpus), opts).run())
}

/// Prints the summary and returns the exit status `fail_on` gives it.
fn finish(summary: &Summary, fail_on: FailOn) -> ExitCode {
    print!("{}", summary.render());
    let failed = match fail_on {
        FailOn::Any => !summary.success(),
        FailOn::Crash => !summary.crashes.is_empty(),
    };
    if !failed {
        if !summary.success() {
            println!(
                "fuzz-kernel: {} unknown divergence classes (reported; --fail-on crash)",
                summary.unknown().count()
            );
        }
        ExitCode::SUCCESS
    } else {
        println!(
            "fuzz-kernel: FAILED ({} crashes, {} unknown divergence classes)",
            summary.crashes.len(),
            summary.unknown().count()
        );
        ExitCode::from(1)
    }
}

/// `--backend sim`: simulator against simulator.
fn run_sim(args: &FuzzKernelArgs) -> anyhow::Result<ExitCode> {
    let p = profile_of(&release_of(args))?;
    let mut real = SimKernel::new(p);
    let out = args.out.clone().unwrap_or_else(|| args.artifacts.clone());
    let s = campaign(
        &mut real,
        p,
        p,
        &|tag| seed_requests(args, p, tag),
        Vec::new(),
        options(args, p, Some(out)),
    )?;
    Ok(finish(&s, args.fail_on))
}

#[cfg(test)]
mod test;
