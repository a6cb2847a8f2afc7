//! `jool-harness fuzz-kernel`: differential fuzzing of the real Jool
//! module against the simulator.
//!
//! - `--backend vm` (default): boots the cached QEMU guest of `--release`
//!   and runs `fuzz-kernel --backend kernel` inside; copies what it saved
//!   to `--artifacts`, prints boot and fuzz times and the summary.
//! - `--backend kernel`: this machine's kernel (root, Jool installed).
//!   Loads the modules, re-executes itself in a fresh network namespace
//!   (`unshare -n`), puts SIIT and NAT64 `default` instances there and in
//!   an in-process simulator of the same release, and runs the
//!   [`engine`] loop between a [`target::RealKernel`] and a
//!   [`target::SimKernel`].
//! - `--backend sim`: the same loop between two simulators (what the unit
//!   tests run; measures the mutator and the simulator).
//!
//! Exit status: 0, or 1 on a kernel crash or a divergence that is not in
//! [`known::KNOWN`]; 2 on errors.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Duration,
};

use anyhow::{bail, Context};
use jool_sim::versions::Profile;

use crate::{host, vm};

pub mod engine;
pub mod known;
pub mod mutate;
pub mod target;

pub use engine::{Engine, Options, Summary};
pub use target::{Exchange, KernelUnderTest, RealKernel, SimKernel};

/// Set in the re-executed process that runs in the fresh namespace.
const NETNS_ENV: &str = "JOOL_FUZZ_KERNEL_NETNS";
/// The journal file the re-executed process writes each request to.
const JOURNAL_ENV: &str = "JOOL_FUZZ_KERNEL_JOURNAL";

/// Where the real module runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Simulator against simulator (what the unit tests run).
    Sim,
    /// This machine's kernel (root, Jool installed).
    Kernel,
    /// A QEMU guest of `--release`.
    Vm,
}

/// `jool-harness fuzz-kernel`.
#[derive(Debug, clap::Args)]
pub struct FuzzKernelArgs {
    /// Where the real module runs (sim: simulator against simulator).
    #[arg(long, value_enum, default_value = "vm")]
    pub backend: BackendKind,
    /// Jool release (vm: the image's; kernel: must be the installed one).
    #[arg(long, value_name = "R")]
    pub release: Option<String>,
    /// How long to fuzz (the VM's hard limit is this plus --timeout).
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub seconds: u64,
    /// Stop after this many requests (replays a run up to a request).
    #[arg(long, value_name = "N")]
    pub max_execs: Option<u64>,
    /// PRNG seed (default: from the clock; printed).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Host folder the guest's crashes, divergences and summary are
    /// copied to (vm).
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
    /// Lower the console log level (`dmesg -n 1`) so that Jool's error
    /// lines do not go to the serial console (vm passes it).
    #[arg(long)]
    pub quiet_console: bool,
}

/// How `--backend vm` boots its guest.
#[derive(Clone, Debug, Default)]
pub struct Guests {
    /// The guest's configuration.
    pub config: vm::Config,
    /// Where to keep the console of a guest whose run failed.
    pub console: Option<PathBuf>,
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
pub fn run(args: FuzzKernelArgs, guests: &Guests) -> anyhow::Result<ExitCode> {
    match args.backend {
        BackendKind::Vm => run_vm(&args, guests),
        BackendKind::Kernel => run_kernel(&args),
        BackendKind::Sim => run_sim(&args),
    }
}

fn seed_of(args: &FuzzKernelArgs) -> u64 {
    args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
    })
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
fn seeds(
    args: &FuzzKernelArgs,
    p: &Profile,
    netns_tag: u32,
) -> anyhow::Result<Vec<mutate::Seed>> {
    let mut seeds = mutate::built_seeds(p, netns_tag);
    let dir = args.conformance.clone().unwrap_or_else(default_conformance);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        seeds.extend(
            mutate::conformance_seeds(&name, &text, netns_tag)
                .map_err(anyhow::Error::msg)?,
        );
    }
    if let Some(d) = &args.sim_request_corpus {
        seeds.extend(engine::sim_request_seeds(d, 4096));
    }
    Ok(seeds)
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
        journal: std::env::var_os(JOURNAL_ENV).map(PathBuf::from),
        avoid_cmds: avoided(args, p),
    }
}

/// Discovers `real`, builds the simulator of `sim_profile` like it, and
/// runs the loop.
pub fn campaign(
    real: &mut dyn KernelUnderTest,
    profile: &'static Profile,
    sim_profile: &'static Profile,
    seeds_of: &dyn Fn(u32) -> anyhow::Result<Vec<mutate::Seed>>,
    opts: Options,
) -> anyhow::Result<Summary> {
    let mut d = engine::discover_family(real).map_err(anyhow::Error::msg)?;
    d.netns_tag = engine::discover_netns_tag(real, profile, d.family_id)
        .map_err(anyhow::Error::msg)?;
    engine::discover_build(real, profile, &mut d);
    let mut sim = engine::sim_like(sim_profile, &d);
    let seeds = seeds_of(d.netns_tag)?;
    if let Some(out) = &opts.out {
        std::fs::create_dir_all(out)
            .with_context(|| format!("{}", out.display()))?;
    }
    Ok(Engine::new(real, &mut sim, profile, d, seeds, opts).run())
}

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
    let release =
        args.release.as_deref().unwrap_or(crate::cli::DEFAULT_CLIENT);
    let p = profile_of(release)?;
    let mut real = SimKernel::new(p);
    let out = args.out.clone().unwrap_or_else(|| args.artifacts.clone());
    let s = campaign(
        &mut real,
        p,
        p,
        &|tag| seeds(args, p, tag),
        options(args, p, Some(out)),
    )?;
    Ok(finish(&s, args.fail_on))
}

/// `--backend kernel`: this machine's module, from a fresh namespace.
fn run_kernel(args: &FuzzKernelArgs) -> anyhow::Result<ExitCode> {
    if !host::is_root() {
        bail!(
            "fuzz-kernel --backend kernel needs root (modprobe, namespaces)"
        );
    }
    if std::env::var_os(NETNS_ENV).is_none() {
        let o = host::run(
            &[
                "sh".into(),
                "-c".into(),
                "modprobe jool_siit && modprobe jool".into(),
            ],
            Duration::from_secs(60),
        )
        .map_err(anyhow::Error::msg)?;
        if o.status != 0 {
            bail!(
                "fuzz-kernel needs Jool's modules: {}{}",
                o.stdout,
                o.stderr
            );
        }
        let exe = std::env::current_exe()?;
        let journal = std::env::temp_dir()
            .join(format!("jool-fuzz-kernel-{}.journal", std::process::id()));
        let _ = std::fs::remove_file(&journal);
        let mut kmsg = target::Kmsg::open().ok();
        let status = Command::new("unshare")
            .arg("-n")
            .arg("--")
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(NETNS_ENV, "1")
            .env(JOURNAL_ENV, &journal)
            .status()
            .context("Failed to run unshare -n")?;
        let code = match status.code() {
            Some(c @ (0..=2)) => ExitCode::from(c as u8),
            _ => died(args, &status, &journal, kmsg.as_mut())?,
        };
        let _ = std::fs::remove_file(&journal);
        return Ok(code);
    }
    let installed = host::installed_release()
        .context("cannot read the loaded Jool's version")?;
    if let Some(r) = args.release.as_deref().filter(|r| *r != installed) {
        bail!("--release {r} asked, but this kernel runs Jool {installed}");
    }
    let p = profile_of(&installed)?;
    if args.quiet_console {
        let _ = Command::new("dmesg").arg("-n").arg("1").status();
    }
    let kmsg = match target::Kmsg::open() {
        Ok(k) => Some(k),
        Err(e) => {
            eprintln!("fuzz-kernel: cannot watch /dev/kmsg ({e}): crashes will not be seen");
            None
        }
    };
    let mut k = RealKernel::new(&installed, kmsg);
    let out = args.out.clone().unwrap_or_else(|| args.artifacts.clone());
    let s = campaign(
        &mut k,
        p,
        p,
        &|tag| seeds(args, p, tag),
        options(args, p, Some(out)),
    )?;
    Ok(finish(&s, args.fail_on))
}

/// The fuzzing process died (killed by an oops in `sendmsg()`, ...):
/// saves the request it was sending and the kernel log as a crash.
fn died(
    args: &FuzzKernelArgs,
    status: &std::process::ExitStatus,
    journal: &Path,
    kmsg: Option<&mut target::Kmsg>,
) -> anyhow::Result<ExitCode> {
    let log = kmsg.map(|k| k.records(4000)).unwrap_or_default();
    let start = log.iter().position(|l| target::is_crash_line(l));
    let lines: Vec<String> =
        start.map(|s| log[s..].to_vec()).unwrap_or_default();
    let out = args.out.clone().unwrap_or_else(|| args.artifacts.clone());
    let (exec, ext_ack, request) =
        engine::read_journal(journal).unwrap_or_default();
    let rel = format!("crash/{exec}");
    let dir = out.join(&rel);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("request.bin"), &request)?;
    std::fs::write(
        dir.join("request.hex"),
        format!("{}\n", mutate::hex(&request)),
    )?;
    std::fs::write(
        dir.join("real.hex"),
        format!(
            "no reply: the fuzzing process died ({status}) in the request\n"
        ),
    )?;
    std::fs::write(
        dir.join("info.txt"),
        format!(
            "exec {exec}\nseed {}\next_ack {ext_ack}\nprocess {status}\n{}\n",
            seed_of(args),
            lines.join("\n")
        ),
    )?;
    let summary = Summary {
        real: format!(
            "real {}",
            host::installed_release().unwrap_or_default()
        ),
        seed: seed_of(args),
        execs: exec,
        crashes: vec![engine::Crash {
            exec,
            request_hex: mutate::hex(&request),
            lines: if lines.is_empty() {
                vec![format!("the fuzzing process died: {status}")]
            } else {
                lines
            },
            dir: Some(rel),
        }],
        stopped: format!("the fuzzing process died ({status})"),
        ..Summary::default()
    };
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    Ok(finish(&summary, args.fail_on))
}

/// `--backend vm`: the same in the release's guest.
fn run_vm(args: &FuzzKernelArgs, guests: &Guests) -> anyhow::Result<ExitCode> {
    let release = args
        .release
        .clone()
        .unwrap_or_else(|| crate::cli::DEFAULT_CLIENT.to_owned());
    profile_of(&release)?;
    let seed = seed_of(args);
    let mut words: Vec<String> = [
        "fuzz-kernel",
        "--backend",
        "kernel",
        "--out",
        "/h/out/fuzz-kernel",
        "--conformance",
        "/h/fixtures/conformance-4.1.9",
        "--quiet-console",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    words.extend([
        "--release".into(),
        release.clone(),
        "--seconds".into(),
        args.seconds.to_string(),
        "--seed".into(),
        seed.to_string(),
        "--resync-every".into(),
        args.resync_every.to_string(),
        "--progress".into(),
        args.progress.to_string(),
    ]);
    if let Some(m) = args.max_execs {
        words.extend(["--max-execs".into(), m.to_string()]);
    }
    for c in &args.avoid_cmd {
        words.extend(["--avoid-cmd".into(), c.to_string()]);
    }
    if args.all_cmds {
        words.push("--all-cmds".into());
    }
    if args.fail_on == FailOn::Crash {
        words.extend(["--fail-on".into(), "crash".into()]);
    }
    let mut config = guests.config.clone();
    config.timeout += Duration::from_secs(args.seconds);
    eprintln!("fuzz-kernel: seed {seed}, {} s on {release}", args.seconds);
    let guest = vm::Guest { args: words, ..vm::Guest::default() };
    let guest = vm::boot_guest(&release, &config, &guest)?;
    let guest_out = guest.out().join("fuzz-kernel");
    std::fs::create_dir_all(&args.artifacts)
        .with_context(|| format!("{}", args.artifacts.display()))?;
    copy_tree(&guest_out, &args.artifacts)?;
    println!("timings:");
    for (what, secs) in guest.timings() {
        println!("  {what}: {secs:.1} s");
    }
    let summary = std::fs::read_to_string(guest_out.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Summary>(&t).ok());
    let Some(summary) = summary else {
        let kept = guest.keep_console(guests.console.as_deref());
        let progress = std::fs::read_to_string(guest_out.join("progress.txt"))
            .unwrap_or_default();
        bail!(
            "the guest wrote no fuzz summary ({}; last progress: {}; guest.rc: {}); console in {}. Replay with --seed {seed} --max-execs N.",
            guest.failure().unwrap_or("it powered off"),
            progress.trim(),
            std::fs::read_to_string(guest.out().join("guest.rc"))
                .unwrap_or_else(|_| "none".into())
                .trim(),
            kept.display()
        );
    };
    println!(
        "  fuzz loop (guest clock): {:.1} s, {} execs, {:.0} exec/s",
        summary.seconds,
        summary.execs,
        summary.exec_per_sec()
    );
    println!("artifacts: {}", args.artifacts.display());
    if !summary.crashes.is_empty() {
        guest.keep_console(guests.console.as_deref());
    }
    Ok(finish(&summary, args.fail_on))
}

/// Copies the files under `from` into `to` (folders recreated).
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    let Ok(rd) = std::fs::read_dir(from) else { return Ok(()) };
    for e in rd.flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("{}", src.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod test;
