//! `--backend kernel`: this machine's kernel, normally a guest booted by
//! `--backend vm`, whose [`GuestPlan`] says which modules to load and
//! what to do: fuzz, replay a request sequence, run a reproducer, or
//! collect coverage ([`super::report`]).
//!
//! The process loads the modules, then re-executes itself in a fresh
//! network namespace (`unshare -n`) for the work; when the child dies
//! (an oops in `sendmsg()` kills it), the parent saves the request it was
//! sending from the journal.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
    time::{Duration, Instant},
};

use jool_sim::wire::hex;
use serde::{Deserialize, Serialize};

use super::{
    campaign, cover, discover,
    error::{fs, Error, Result},
    finish, journal, options, profile_of,
    request::{map_type, replace_all, FAMILY_PLACEHOLDER, TAG_PLACEHOLDER},
    seed_of, seed_requests, seeds,
    summary::{Crash, Progress, Summary},
    target::{self, Kmsg, RealKernel},
    Settings, Verdict,
};
use crate::host::{self, installed_release, is_root};

/// Set in the re-executed process that runs in the fresh namespace.
const NETNS_ENV: &str = "JOOL_FUZZ_KERNEL_NETNS";
/// The marker file the re-executed fuzzer writes each request's index to.
const MARKER_ENV: &str = "JOOL_FUZZ_KERNEL_MARKER";
/// The journal file the re-executed fuzzer writes its requests to.
const JOURNAL_ENV: &str = "JOOL_FUZZ_KERNEL_JOURNAL";

/// What the guest does, written by `--backend vm` as JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GuestPlan {
    /// A folder of .ko files to load instead of the installed Jool
    /// (`jool_kcov.ko` first if present, then Jool's three).
    pub modules: Option<PathBuf>,
    /// Install them in /lib/modules and run depmod, so that `modprobe`
    /// (of the suites) loads them too.
    #[serde(default)]
    pub install_modules: bool,
    /// The kernel's `modules.builtin`, for a kernel (KASAN) whose
    /// /lib/modules folder does not exist in the image.
    pub builtin: Option<PathBuf>,
    /// The journal, on the host's share.
    pub journal: Option<PathBuf>,
    /// Kept inputs of earlier runs.
    pub corpus: Option<PathBuf>,
    /// Stop fuzzing when this file appears.
    pub stop_file: Option<PathBuf>,
    /// The simulator's release, when the module's version is not the
    /// release (Jool's main branch says 4.1.15).
    pub profile: Option<String>,
    /// One netlink socket per request, as the clients do, instead of one
    /// kept across requests (to measure what that costs).
    #[serde(default)]
    pub fresh_sockets: bool,
    /// What to do.
    #[serde(default)]
    pub task: Task,
}

/// What a guest does.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub enum Task {
    /// Fuzz (`--seconds`, `--seed`, ...).
    #[default]
    Fuzz,
    /// Put the base state, send a journal's requests in order, write what
    /// happened to `result` (`start I` before each, then `clean`, or
    /// `crash I` and the kernel's lines).
    Replay {
        /// The journal file.
        sequence: PathBuf,
        /// The result file.
        result: PathBuf,
    },
    /// Run a program (a standalone reproducer) and write its exit status
    /// and any crash lines of the kernel log to `result`.
    Exec {
        /// The program.
        program: PathBuf,
        /// The result file.
        result: PathBuf,
    },
    /// Collect coverage of the suites, the conformance requests and the
    /// corpus ([`super::report::guest_phases`]).
    Cover {
        /// Where `locs-PHASE.txt` go.
        out_dir: PathBuf,
        /// The suites folder.
        suites_dir: PathBuf,
    },
}

/// Runs `--backend kernel`.
pub(super) fn run(args: &Settings) -> Result<Verdict> {
    if !is_root() {
        return Err(Error::Usage(
            "fuzz-kernel --backend kernel needs root (modules, namespaces)"
                .into(),
        ));
    }
    let plan: GuestPlan = match &args.guest_plan {
        Some(p) => serde_json::from_str(&fs::read_to_string(p)?).map_err(
            |source| Error::Json { what: p.display().to_string(), source },
        )?,
        None => GuestPlan::default(),
    };
    if std::env::var_os(NETNS_ENV).is_some() {
        return in_netns(args, &plan);
    }
    if args.quiet_console {
        let _ = Command::new("dmesg").args(["-n", "1"]).status();
    }
    let t = Instant::now();
    load_modules(&plan)?;
    eprintln!(
        "fuzz-kernel: modules loaded in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    match &plan.task {
        Task::Exec { program, result } => exec_program(program, result),
        Task::Cover { out_dir, suites_dir } => {
            super::report::guest_phases(&plan, out_dir, suites_dir)
        }
        Task::Fuzz | Task::Replay { .. } => fuzz_or_replay(args, &plan),
    }
}

/// Runs the fuzzer (or a replay) in a fresh namespace; saves the request
/// it was sending if it dies.
fn fuzz_or_replay(args: &Settings, plan: &GuestPlan) -> Result<Verdict> {
    // The marker is written before every request: on a tmpfs (/run),
    // not the guest's disk.
    let run = Path::new("/run");
    let work = if run.is_dir() {
        super::setup::private_dir_in(run, "run")?
    } else {
        super::setup::private_dir("run")?
    };
    let journal =
        plan.journal.clone().unwrap_or_else(|| work.join("journal.bin"));
    let marker = work.join("marker");
    let mut kmsg = Kmsg::open().ok();
    let started = Instant::now();
    let status = reexec_in_netns(&[
        (MARKER_ENV, &marker.to_string_lossy()),
        (JOURNAL_ENV, &journal.to_string_lossy()),
    ]);
    let verdict = match status.map(|s| (s.code(), s)) {
        Err(e) => Err(e),
        Ok((Some(0), _)) => Ok(Verdict::Pass),
        Ok((Some(1), _)) => Ok(Verdict::Fail),
        Ok((Some(c @ 2..=127), _)) => Err(Error::Guest(format!(
            "the fuzzing process failed (exit {c}; its error above)"
        ))),
        Ok((_, status)) => {
            let at = Died { status, journal, marker, started };
            died(args, plan, &at, kmsg.as_mut())
        }
    };
    // The folder is ours: made by mkdtemp above.
    let _ = std::fs::remove_dir_all(&work);
    verdict
}

/// Runs this command again in a fresh network namespace, with `env`.
pub(super) fn reexec_in_netns(env: &[(&str, &str)]) -> Result<ExitStatus> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("find this executable", e))?;
    Command::new("unshare")
        .arg("-n")
        .arg("--")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(NETNS_ENV, "1")
        .envs(env.iter().copied())
        .status()
        .map_err(|e| Error::io("run unshare -n", e))
}

/// Runs `sh -c CMD` (module loading, depmod: ten minutes at most; a
/// depmod of 6.12's tree takes over a minute under TCG on a loaded host).
fn sh(cmd: &str) -> Result<()> {
    host::sh(cmd, Duration::from_secs(600))?;
    Ok(())
}

/// Loads Jool: the plan's modules (insmod, or installed for modprobe), or
/// the installed ones (`modprobe`).
fn load_modules(plan: &GuestPlan) -> Result<()> {
    let Some(dir) = &plan.modules else {
        if Path::new("/sys/module/jool").exists() {
            return Ok(());
        }
        return sh("modprobe jool_siit && modprobe jool").map_err(|e| {
            Error::Usage(format!("fuzz-kernel needs Jool's modules: {e}"))
        });
    };
    // The image's own Jool may be loaded (nothing loads it at boot).
    for m in ["jool", "jool_siit", "jool_common"] {
        if Path::new("/sys/module").join(m).exists() {
            sh(&format!("rmmod {m}"))?;
        }
    }
    if plan.install_modules {
        return install_modules(dir, plan.builtin.as_deref());
    }
    const OURS: [&str; 4] = ["jool_kcov", "jool_common", "jool_siit", "jool"];
    for m in OURS {
        let ko = dir.join(format!("{m}.ko"));
        if !ko.exists() {
            continue;
        }
        // The kernel's modules ours need (x_tables, ...); built-in ones
        // are not found by modprobe, which is fine.
        for dep in depends(&ko).iter().filter(|d| !OURS.contains(&d.as_str()))
        {
            if !Path::new("/sys/module").join(dep).exists() {
                let _ = sh(&format!("modprobe {dep}"));
            }
        }
        sh(&format!("insmod {}", ko.display()))?;
    }
    Ok(())
}

/// The `depends=` of a module's `.modinfo`.
fn depends(ko: &Path) -> Vec<String> {
    let b = std::fs::read(ko).unwrap_or_default();
    let key = b"\0depends=";
    let Some(at) = b.windows(key.len()).position(|w| w == key) else {
        return Vec::new();
    };
    let rest = &b[at + key.len()..];
    let end = rest.iter().position(|x| *x == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Puts the modules of `dir` in place of the image's under /lib/modules,
/// runs depmod, then loads jool_kcov (global coverage on) and Jool.
fn install_modules(dir: &Path, builtin: Option<&Path>) -> Result<()> {
    let kver = fs::read_to_string(Path::new("/proc/sys/kernel/osrelease"))?;
    let root = Path::new("/lib/modules").join(kver.trim());
    let dest = root.join("updates/dkms");
    fs::create_dir_all(&dest)?;
    for e in fs::entries(&dest)? {
        if e.file_name().to_string_lossy().starts_with("jool") {
            std::fs::remove_file(e.path())
                .map_err(Error::at("remove", &e.path()))?;
        }
    }
    for e in fs::entries(dir)? {
        if e.file_name().to_string_lossy().ends_with(".ko") {
            fs::copy(&e.path(), &dest.join(e.file_name()))?;
        }
    }
    if let Some(b) = builtin.filter(|_| !root.join("modules.builtin").exists())
    {
        fs::copy(b, &root.join("modules.builtin"))?;
    }
    sh(&format!("depmod -a {}", kver.trim()))?;
    if dir.join("jool_kcov.ko").exists() {
        sh("modprobe jool_kcov")?;
        cover::set_global(true).map_err(|e| {
            Error::io(format!("turn {}'s global set on", cover::DEVICE), e)
        })?;
    }
    sh("modprobe jool_siit && modprobe jool")
}

/// The release whose simulator and requests the run uses: the plan's,
/// else the loaded module's (which `--release` must match).
fn guest_release(args: &Settings, plan: &GuestPlan) -> Result<String> {
    let installed = installed_release().ok_or_else(|| {
        Error::Usage("cannot read the loaded Jool's version".into())
    })?;
    if let Some(p) = &plan.profile {
        return Ok(p.clone());
    }
    if let Some(r) = args.release.as_deref().filter(|r| *r != installed) {
        return Err(Error::Usage(format!(
            "--release {r} asked, but this kernel runs Jool {installed}"
        )));
    }
    Ok(installed)
}

/// The work, in the fresh namespace.
fn in_netns(args: &Settings, plan: &GuestPlan) -> Result<Verdict> {
    let release = guest_release(args, plan)?;
    let p = profile_of(&release)?;
    let kmsg = match Kmsg::open() {
        Ok(k) => Some(k),
        Err(e) => {
            eprintln!("fuzz-kernel: cannot watch /dev/kmsg ({e}): crashes will not be seen");
            None
        }
    };
    let kcov = Path::new(cover::DEVICE)
        .exists()
        .then(|| {
            cover::Kcov::open(cover::ModuleMap::read(Path::new("/sys/module")))
        })
        .and_then(|k| {
            k.map_err(|e| eprintln!("fuzz-kernel: {}: {e}", cover::DEVICE))
                .ok()
        });
    let mut k = RealKernel::new(&release, kmsg, kcov)
        .fresh_sockets(plan.fresh_sockets);
    match &plan.task {
        Task::Replay { sequence, result } => {
            replay(&mut k, p, sequence, result)
        }
        Task::Cover { .. } => {
            super::report::netns_phase(&mut k, p, args, plan)
        }
        _ => {
            let out =
                args.out.clone().unwrap_or_else(|| args.artifacts.clone());
            let mut opts = options(args, p, Some(out));
            opts.journal = std::env::var_os(JOURNAL_ENV).map(PathBuf::from);
            opts.marker = std::env::var_os(MARKER_ENV).map(PathBuf::from);
            opts.stop_file = plan.stop_file.clone();
            let corpus = plan
                .corpus
                .as_deref()
                .map(|d| seeds::dir_seeds(d, "corpus", 0, usize::MAX))
                .unwrap_or_default();
            let mut s = campaign(
                &mut k,
                p,
                p,
                &|tag| seed_requests(args, p, tag),
                corpus,
                opts,
            )?;
            s.target.insert("release".into(), release.clone());
            Ok(finish(&s, args.fail_on))
        }
    }
}

/// Sends `sequence`'s requests after the base state; see [`Task::Replay`].
fn replay(
    k: &mut RealKernel,
    p: &'static jool_sim::versions::Profile,
    sequence: &Path,
    result: &Path,
) -> Result<Verdict> {
    use std::io::Write;
    use target::KernelUnderTest;
    let d = discover::discover(k, p)?;
    for mut r in discover::base_requests(p) {
        map_type(&mut r, FAMILY_PLACEHOLDER, d.family_id);
        k.exchange(&r, false);
    }
    let mut out =
        std::fs::File::create(result).map_err(Error::at("create", result))?;
    let mut line = |text: String| {
        writeln!(out, "{text}").map_err(Error::at("write", result))
    };
    for (i, e) in journal::read(sequence).into_iter().enumerate() {
        line(format!("start {i}"))?;
        let mut req = e.request;
        map_type(&mut req, FAMILY_PLACEHOLDER, d.family_id);
        replace_all(&mut req, &TAG_PLACEHOLDER, &d.netns_tag.to_le_bytes());
        k.exchange(&req, e.ext_ack);
        let lines = k.crash_lines();
        if !lines.is_empty() {
            line(format!("crash {i}\n{}", lines.join("\n")))?;
            return Ok(Verdict::Fail);
        }
    }
    line("clean".into())?;
    Ok(Verdict::Pass)
}

/// Runs a reproducer; see [`Task::Exec`].
fn exec_program(program: &Path, result: &Path) -> Result<Verdict> {
    let mut kmsg = Kmsg::open().ok();
    // Run from a tmpfs copy: the share may not allow exec.
    let work = super::setup::private_dir("repro")?;
    let local = work.join("repro");
    fs::copy(program, &local)?;
    std::fs::set_permissions(
        &local,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(Error::at("chmod", &local))?;
    fs::write(result, "started\n")?;
    let status = wait_at_most(&local, Duration::from_secs(120));
    // The folder is ours: made by mkdtemp above.
    let _ = std::fs::remove_dir_all(&work);
    std::thread::sleep(Duration::from_millis(200));
    let lines = kmsg.as_mut().map(|k| k.records(4000)).unwrap_or_default();
    let crash: Vec<&str> = lines
        .iter()
        .filter(|l| target::is_crash_line(l))
        .map(String::as_str)
        .collect();
    let text = format!(
        "exit {}\n{}",
        status?.map_or("timeout".into(), |s| s.to_string()),
        crash.join("\n")
    );
    fs::write(result, text + "\n")?;
    Ok(Verdict::Pass)
}

/// Runs `program`; its status, or None if it ran longer than `limit`
/// (then killed).
fn wait_at_most(
    program: &Path,
    limit: Duration,
) -> Result<Option<ExitStatus>> {
    let mut child =
        Command::new(program).spawn().map_err(Error::at("run", program))?;
    let t = Instant::now();
    loop {
        if let Some(s) =
            child.try_wait().map_err(Error::at("wait for", program))?
        {
            return Ok(Some(s));
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How the fuzzing child ended.
struct Died {
    status: ExitStatus,
    journal: PathBuf,
    marker: PathBuf,
    started: Instant,
}

/// The fuzzing process died (killed by an oops in `sendmsg()`, ...):
/// saves the request it was sending (the marker's index, in the journal)
/// and the kernel log as a crash.
fn died(
    args: &Settings,
    plan: &GuestPlan,
    at: &Died,
    kmsg: Option<&mut Kmsg>,
) -> Result<Verdict> {
    let status = &at.status;
    let log = kmsg.map(|k| k.records(4000)).unwrap_or_default();
    let start = log.iter().position(|l| target::is_crash_line(l));
    let lines: Vec<String> =
        start.map(|s| log[s..].to_vec()).unwrap_or_default();
    if let Task::Replay { result, .. } = &plan.task {
        let mut t = std::fs::read_to_string(result).unwrap_or_default();
        t.push_str(&format!("died {status}\n{}\n", lines.join("\n")));
        fs::write(result, t)?;
        return Ok(Verdict::Fail);
    }
    let out = args.out.clone().unwrap_or_else(|| args.artifacts.clone());
    let exec = journal::read_marker(&at.marker).unwrap_or(0);
    let entries = journal::read(&at.journal);
    let last = entries.iter().find(|e| e.exec == exec).cloned().unwrap_or(
        journal::Entry { exec, ext_ack: false, request: Vec::new() },
    );
    let rel = format!("crash/{exec}");
    let dir = out.join(&rel);
    fs::create_dir_all(&dir)?;
    fs::write(&dir.join("request.bin"), &last.request)?;
    fs::write(
        &dir.join("request.hex"),
        format!("{}\n", hex::encode(&last.request)),
    )?;
    fs::write(
        &dir.join("info.txt"),
        format!(
            "exec {exec}\nseed {}\next_ack {}\nprocess {status}\n{}\n",
            seed_of(args),
            last.ext_ack,
            lines.join("\n")
        ),
    )?;
    let seconds = at.started.elapsed().as_secs_f64();
    let read = |f: &str| std::fs::read_to_string(out.join(f)).ok();
    let discovery = read("discovery.json")
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    // The coverage the child last reported (none before its first
    // progress interval).
    let progress: Progress = read("progress.json")
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let release = installed_release().unwrap_or_default();
    let summary = Summary {
        real: format!("real {release}"),
        sim: format!("sim {}", plan.profile.as_deref().unwrap_or(&release)),
        discovery,
        seed: seed_of(args),
        execs: exec,
        seconds,
        first_crash_seconds: Some(seconds),
        real_seconds: progress.real_seconds,
        sim_seconds: progress.sim_seconds,
        journal_seconds: progress.journal_seconds,
        resyncs: progress.resyncs,
        seeds: progress.seeds,
        cover: progress.cover,
        crashes: vec![Crash {
            exec,
            request_hex: hex::encode(&last.request),
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
    fs::write_json(&out.join("summary.json"), &summary)?;
    Ok(finish(&summary, args.fail_on))
}
