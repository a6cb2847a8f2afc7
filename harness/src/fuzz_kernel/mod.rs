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
//! The options arrive as [`Settings`] (the command line is `cmd`'s). A
//! run ends with a [`Verdict`]: [`Verdict::Fail`] on a kernel crash or a
//! divergence that is not in [`known::KNOWN`] (the command exits 1), or
//! with an [`Error`] (exit 2).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use jool_sim::{versions::Profile, wire::family::Op};

pub mod answer;
pub mod artifacts;
pub mod cover;
pub mod crash;
pub mod discover;
pub mod engine;
mod error;
pub mod fleet;
pub mod guest;
pub mod journal;
pub mod known;
pub mod lines;
pub mod mutate;
pub mod report;
pub mod repro;
pub mod request;
pub mod rng;
pub mod seeds;
pub mod setup;
pub mod stack;
pub mod summary;
pub mod target;

pub use engine::{Engine, Options};
pub use error::{Error, Result};
pub use guest::GuestPlan;
pub use summary::Summary;
pub use target::{Exchange, KernelUnderTest, RealKernel, SimKernel};

use error::fs;

/// The release a run targets when `--release` is not given.
pub const DEFAULT_RELEASE: &str = "4.1.9";

/// Where the module under test runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The simulator against itself, in this process.
    Sim,
    /// This machine's kernel with the real module (root).
    Kernel,
    /// QEMU guests with the real module.
    #[default]
    Vm,
}

/// Which Jool modules the guests load.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Modules {
    /// Jool's modules built with coverage instrumentation, and
    /// `jool_kcov` (scripts/fuzz-kernel-build, cached).
    #[default]
    Auto,
    /// The image's own (no coverage).
    Stock,
    /// The `.ko` files of a folder made by scripts/fuzz-kernel-build.
    Dir(PathBuf),
}

/// What fails a `fuzz-kernel` run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailOn {
    /// A kernel crash or a divergence not in the known list.
    #[default]
    Any,
    /// Only a kernel crash (BUG/WARNING/Oops/KASAN, or the fuzzing
    /// process killed).
    Crash,
}

/// How a run ended (the command's exit status: 0 or 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing that fails the run (`reproduced` for `--reproduce`).
    Pass,
    /// A crash or an unknown divergence (`not reproduced`).
    Fail,
}

/// What `jool-harness fuzz-kernel` does: its options, resolved by the
/// command layer (`cmd`). Field by field as the options documented in
/// `jool-harness fuzz-kernel --help`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the real module runs.
    pub backend: Backend,
    /// Jool release (vm: the image's; kernel: the installed one).
    pub release: Option<String>,
    /// How long to fuzz.
    pub seconds: u64,
    /// Stop after this many requests.
    pub max_execs: Option<u64>,
    /// PRNG seed (default: from the clock). Guest N uses SEED + N - 1.
    pub seed: Option<u64>,
    /// Host folder for the crashes, divergences, summaries (vm).
    pub artifacts: PathBuf,
    /// Where crashes, divergences and the summary are written (kernel,
    /// sim; default: `artifacts`).
    pub out: Option<PathBuf>,
    /// Conformance corpus folder whose requests are seeds.
    pub conformance: Option<PathBuf>,
    /// A sim_request corpus folder whose files are seeds too.
    pub sim_request_corpus: Option<PathBuf>,
    /// The corpus of kept inputs (default:
    /// target/fuzz-kernel-corpus/RELEASE).
    pub corpus: Option<PathBuf>,
    /// Do not load the corpus.
    pub fresh: bool,
    /// Blind mutation: coverage measured, not used to keep inputs.
    pub no_feedback: bool,
    /// The modules the guests load.
    pub modules: Modules,
    /// Build the modules from this ref of Jool's repository.
    pub jool_ref: Option<String>,
    /// Boot the KASAN kernel.
    pub kasan: bool,
    /// Resynchronise both sides every N requests (0: after divergences).
    pub resync_every: u64,
    /// Progress line every N seconds (0: none).
    pub progress: u64,
    /// Jool commands never sent.
    pub avoid_cmd: Vec<u8>,
    /// What fails the run.
    pub fail_on: FailOn,
    /// Also send the commands the simulator does not emulate.
    pub all_cmds: bool,
    /// Do not minimize crashes.
    pub no_minimize: bool,
    /// After a crash, boot a fresh guest for the time left.
    pub keep_going: bool,
    /// Replay this crash folder's reproducer in a fresh guest.
    pub reproduce: Option<PathBuf>,
    /// With `reproduce`: on the stock module of every cached release.
    pub bisect: bool,
    /// Write the coverage report of Jool's code to this folder.
    pub coverage_report: Option<PathBuf>,
    /// `dmesg -n 1` before fuzzing.
    pub quiet_console: bool,
    /// What the guest does (`--backend kernel` in a guest).
    pub guest_plan: Option<PathBuf>,
    /// How the guests boot.
    pub vm: crate::vm::Config,
    /// Guests at once (default: one per host CPU under TCG, at most 8).
    pub jobs: Option<usize>,
    /// Where to keep the console of the first guest that crashed or
    /// failed (each guest's is also under `artifacts`).
    pub console: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            backend: Backend::Vm,
            release: None,
            seconds: 60,
            max_execs: None,
            seed: None,
            artifacts: PathBuf::from("target/fuzz-kernel"),
            out: None,
            conformance: None,
            sim_request_corpus: None,
            corpus: None,
            fresh: false,
            no_feedback: false,
            modules: Modules::Auto,
            jool_ref: None,
            kasan: false,
            resync_every: 2000,
            progress: 5,
            avoid_cmd: Vec::new(),
            fail_on: FailOn::Any,
            all_cmds: false,
            no_minimize: false,
            keep_going: false,
            reproduce: None,
            bisect: false,
            coverage_report: None,
            quiet_console: false,
            guest_plan: None,
            vm: crate::vm::Config::default(),
            jobs: None,
            console: None,
        }
    }
}

/// Runs `jool-harness fuzz-kernel`.
///
/// # Errors
/// What kept the run from starting or finishing ([`Error`]); crashes
/// and divergences are a [`Verdict::Fail`].
pub fn run(args: &Settings) -> Result<Verdict> {
    match args.backend {
        Backend::Vm => fleet::run(args),
        Backend::Kernel => guest::run(args),
        Backend::Sim => run_sim(args),
    }
}

fn seed_of(args: &Settings) -> u64 {
    args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
    })
}

fn release_of(args: &Settings) -> String {
    args.release.clone().unwrap_or_else(|| DEFAULT_RELEASE.to_owned())
}

fn profile_of(release: &str) -> Result<&'static Profile> {
    let p = Profile::get(release)
        .ok_or_else(|| Error::Release(format!("unknown release {release}")))?;
    if p.is_legacy() {
        return Err(Error::Release(format!("fuzz-kernel speaks the joolnlhdr protocol (4.0.8 and later), not {release}'s")));
    }
    Ok(p)
}

fn default_conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/conformance-4.1.9")
}

/// The seeds: built requests, the conformance corpus, a sim_request
/// corpus.
fn seed_requests(
    args: &Settings,
    p: &Profile,
    netns_tag: u32,
) -> Result<Vec<seeds::Seed>> {
    let mut out = seeds::built_seeds(p, netns_tag);
    let dir = args.conformance.clone().unwrap_or_else(default_conformance);
    out.extend(seeds::conformance_dir(&dir, netns_tag)?);
    if let Some(d) = &args.sim_request_corpus {
        out.extend(seeds::sim_request_seeds(d, 4096));
    }
    Ok(out)
}

/// The operations the simulator emulates.
const EMULATED: [Op; 7] = [
    Op::InstanceForeach,
    Op::InstanceAdd,
    Op::InstanceHello,
    Op::InstanceRm,
    Op::InstanceFlush,
    Op::StatsForeach,
    Op::GlobalForeach,
];

/// Whether the simulator emulates command `cmd` of `p`'s family.
fn emulated(p: &Profile, cmd: u8) -> bool {
    p.numbering.op(cmd).is_some_and(|op| EMULATED.contains(&op))
}

/// `--avoid-cmd`, plus (without `--all-cmds`) every command `p`'s family
/// registers that the simulator does not emulate.
fn avoided(args: &Settings, p: &Profile) -> Vec<u8> {
    let mut v = args.avoid_cmd.clone();
    if !args.all_cmds {
        v.extend((0..p.op_count()).filter(|c| !emulated(p, *c)));
    }
    v.sort_unstable();
    v.dedup();
    v
}

fn options(args: &Settings, p: &Profile, out: Option<PathBuf>) -> Options {
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
///
/// # Errors
/// Discovery failed, the seeds could not be read, or `opts.out` could
/// not be created.
pub fn campaign(
    real: &mut dyn KernelUnderTest,
    profile: &'static Profile,
    sim_profile: &'static Profile,
    seeds_of: &dyn Fn(u32) -> Result<Vec<seeds::Seed>>,
    mut corpus: Vec<seeds::Seed>,
    opts: Options,
) -> Result<Summary> {
    let d = discover::discover(real, profile)?;
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
        fs::create_dir_all(out)?;
    }
    Ok(Engine::new(real, &mut sim, profile, d, (seeds, corpus), opts).run())
}

/// Prints the summary and returns the verdict `fail_on` gives it.
fn finish(summary: &Summary, fail_on: FailOn) -> Verdict {
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
        Verdict::Pass
    } else {
        println!(
            "fuzz-kernel: FAILED ({} crashes, {} unknown divergence classes)",
            summary.crashes.len(),
            summary.unknown().count()
        );
        Verdict::Fail
    }
}

/// `--backend sim`: simulator against simulator.
fn run_sim(args: &Settings) -> Result<Verdict> {
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
