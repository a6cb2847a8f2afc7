//! `--backend vm`, the fuzzing run: boots `--jobs` guests of the
//! [`Target`] that fuzz with consecutive seeds, stops the others when one
//! crashes (or, with `--keep-going`, boots a fresh one in its lane),
//! merges what they found, grows the corpus, and turns each crash into a
//! folder with a reproducer ([`super::crash`]).

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    time::Instant,
};

use super::{
    crash,
    error::{fs, Error, Result},
    finish,
    guest::GuestPlan,
    profile_of, release_of, seed_of,
    setup::{self, copy_dir, copy_tree, corpus_dir, Target, SHARED},
    summary::Summary,
    FailOn, Settings, Verdict,
};

/// Fills the shared folder: conformance requests, staged modules, the
/// corpus, the plan; returns the plan.
fn share(
    args: &Settings,
    t: &Target,
    shared: &Path,
    corpus: &Path,
) -> Result<()> {
    let conf =
        args.conformance.clone().unwrap_or_else(super::default_conformance);
    copy_dir(&conf, &shared.join("conformance"))?;
    let mut plan = GuestPlan {
        journal: Some("/h/out/journal.bin".into()),
        stop_file: Some(format!("{SHARED}/stop").into()),
        profile: t.profile.clone(),
        // A measurement knob (docs/fuzzing.md, "Speed").
        fresh_sockets: std::env::var_os("JOOL_FUZZ_FRESH_SOCKETS").is_some(),
        ..GuestPlan::default()
    };
    if let Some(m) = &t.modules {
        setup::stage_modules(m, t.kasan.as_deref(), &shared.join("modules"))?;
        plan.modules = Some(format!("{SHARED}/modules").into());
        plan.builtin = t
            .kasan
            .as_ref()
            .map(|_| format!("{SHARED}/modules/modules.builtin").into());
    }
    if !args.fresh && corpus.is_dir() {
        copy_dir(corpus, &shared.join("corpus"))?;
        plan.corpus = Some(format!("{SHARED}/corpus").into());
    }
    fs::write_json(&shared.join("plan.json"), &plan)
}

/// The guest's command line: fuzz `seconds` from `seed`.
fn fuzz_words(args: &Settings, seed: u64, seconds: u64) -> Vec<String> {
    let mut w: Vec<String> = [
        "fuzz-kernel",
        "--backend",
        "kernel",
        "--out",
        "/h/out/fuzz-kernel",
        "--conformance",
        "/h/fixtures/conformance",
        "--guest-plan",
        "/h/fixtures/plan.json",
        "--quiet-console",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    w.extend([
        "--seconds".into(),
        seconds.to_string(),
        "--seed".into(),
        seed.to_string(),
        "--resync-every".into(),
        args.resync_every.to_string(),
        "--progress".into(),
        args.progress.clamp(1, 5).to_string(),
    ]);
    if let Some(m) = args.max_execs {
        w.extend(["--max-execs".into(), m.to_string()]);
    }
    for c in &args.avoid_cmd {
        w.extend(["--avoid-cmd".into(), c.to_string()]);
    }
    for (on, flag) in
        [(args.all_cmds, "--all-cmds"), (args.no_feedback, "--no-feedback")]
    {
        if on {
            w.push(flag.into());
        }
    }
    if args.fail_on == FailOn::Crash {
        w.extend(["--fail-on".into(), "crash".into()]);
    }
    w
}

/// What one guest brought back.
pub struct GuestResult {
    /// Its lane (1-based: one per `--jobs`).
    pub index: usize,
    /// Which boot of its lane (0, then 1, ... with `--keep-going`).
    pub run: usize,
    /// Its seed.
    pub seed: u64,
    /// The summary it wrote, if it lived to write one.
    pub summary: Option<Summary>,
    /// Where its output was copied.
    pub dir: PathBuf,
    /// Its console.
    pub console: String,
    /// Boot and run timings.
    pub timings: Vec<(String, f64)>,
    /// Why the boot failed, if it did.
    pub failure: Option<String>,
}

/// Boots one guest of lane `index` (boot `run` of it, fuzzing `seconds`
/// from `seed`) and copies what it wrote to `artifacts/guest-N[.R]`.
fn run_guest(
    args: &Settings,
    t: &Target,
    shared: &Path,
    (index, run, seed, seconds): (usize, usize, u64, u64),
    tag: &str,
) -> Result<GuestResult> {
    let words = fuzz_words(args, seed, seconds);
    let guest = setup::boot(args, t, shared, &words, (seconds, tag))?;
    let name = match run {
        0 => format!("guest-{index}"),
        r => format!("guest-{index}.{r}"),
    };
    let dir = args.artifacts.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    copy_tree(&guest.out().join("fuzz-kernel"), &dir)?;
    for f in ["journal.bin", "guest.log"] {
        let _ = std::fs::copy(guest.out().join(f), dir.join(f));
    }
    let console = std::fs::read_to_string(guest.console()).unwrap_or_default();
    fs::write(&dir.join("console.log"), &console)?;
    let summary = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Summary>(&t).ok());
    let crashed = summary.as_ref().is_none_or(|s| !s.crashes.is_empty());
    if crashed && !args.keep_going {
        // A crash, or a guest that died: the others stop.
        let _ =
            std::fs::write(shared.join("stop"), format!("guest {index}\n"));
    }
    Ok(GuestResult {
        index,
        run,
        seed,
        summary,
        dir,
        console,
        timings: guest.timings(),
        failure: guest.failure().map(str::to_owned),
    })
}

/// Least time worth booting another guest for, with `--keep-going`.
const MIN_RERUN_SECS: u64 = 20;

/// Lane `index` of `jobs`: one guest, or with `--keep-going` one guest
/// after another (seeds `seed`, `seed + jobs`, ...) until the time is
/// used up.
fn lane(
    args: &Settings,
    t: &Target,
    shared: &Path,
    (index, seed, jobs): (usize, u64, usize),
) -> Result<Vec<GuestResult>> {
    let start = Instant::now();
    let tag =
        if jobs > 1 { format!("[guest {index}] ") } else { String::new() };
    let mut out = Vec::new();
    for run in 0.. {
        let left = args.seconds.saturating_sub(start.elapsed().as_secs());
        if run > 0 && left < MIN_RERUN_SECS {
            break;
        }
        let seed = seed + (run * jobs) as u64;
        let r = run_guest(args, t, shared, (index, run, seed, left), &tag)?;
        let crashed = r.summary.as_ref().is_none_or(|s| !s.crashes.is_empty());
        out.push(r);
        if !(args.keep_going && crashed) {
            break;
        }
        eprintln!("fuzz-kernel: guest {index} crashed; booting a fresh one (--keep-going)");
    }
    Ok(out)
}

/// Guests to boot: `--jobs`, else one per host CPU (one vCPU each
/// under TCG), at most 8.
fn jobs(args: &Settings) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kvm = args.vm.wants_kvm();
    args.jobs.unwrap_or(if kvm { cpus / 2 } else { cpus }).clamp(1, 8)
}

/// Runs `--backend vm`.
pub(super) fn run(args: &Settings) -> Result<Verdict> {
    if let Some(dir) = &args.reproduce {
        return super::repro::run(args, dir);
    }
    if let Some(dir) = &args.coverage_report {
        return super::report::run(args, dir);
    }
    let t0 = Instant::now();
    let release = release_of(args);
    profile_of(&release)?;
    let t = setup::target(args, &release)?;
    let seed = seed_of(args);
    let jobs = jobs(args);
    let corpus = corpus_dir(args, &release);
    let shared = setup::private_dir("share")?;
    share(args, &t, &shared, &corpus)?;
    fs::create_dir_all(&args.artifacts)?;
    eprintln!(
        "fuzz-kernel: {jobs} guest(s), seeds {seed}..{}, {} s on {release}{}; modules: {}",
        seed + jobs as u64 - 1,
        args.seconds,
        if t.kasan.is_some() { " (KASAN kernel)" } else { "" },
        t.modules.as_ref().map_or("the image's".into(), |m| m.display().to_string())
    );
    let setup_secs = t0.elapsed().as_secs_f64();
    let results: Vec<Result<Vec<GuestResult>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=jobs)
            .map(|i| {
                let (t, shared) = (&t, &shared);
                s.spawn(move || {
                    lane(args, t, shared, (i, seed + i as u64 - 1, jobs))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Guest("a guest thread panicked".into()))
                })
            })
            .collect()
    });
    let _ = std::fs::remove_dir_all(&shared);
    let results: Vec<GuestResult> = results
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let grown = grow_corpus(&results, &corpus)?;
    let mut total = report_guests(&results, setup_secs, grown, &corpus);
    if total.real.is_empty() {
        total.real = format!("real {release}");
        total.sim =
            format!("sim {}", t.profile.as_deref().unwrap_or(&release));
    }
    // Every crash becomes a folder (a guest that died included).
    total.crashes = crash::collect(args, &t, &results)?;
    for c in &total.crashes {
        println!(
            "crash folder: {}",
            args.artifacts.join(c.dir.as_deref().unwrap_or("")).display()
        );
    }
    keep_console(args, &results)?;
    if total.crashes.is_empty() && results.iter().any(|r| r.summary.is_none())
    {
        return Err(Error::Guest(format!(
            "a guest wrote no fuzz summary and its console shows no crash (see {}/guest-*/console.log)",
            args.artifacts.display()
        )));
    }
    Ok(finish(&total, args.fail_on))
}

/// `--console FILE`: the console of the first guest that crashed or
/// wrote no summary.
fn keep_console(args: &Settings, results: &[GuestResult]) -> Result<()> {
    let Some(dest) = &args.console else { return Ok(()) };
    let failed = results
        .iter()
        .find(|r| r.summary.as_ref().is_none_or(|s| !s.crashes.is_empty()));
    match failed {
        Some(r) => fs::write(dest, &r.console),
        None => Ok(()),
    }
}

/// Adds the guests' kept inputs to the corpus; how many were new.
fn grow_corpus(results: &[GuestResult], corpus: &Path) -> Result<usize> {
    fs::create_dir_all(corpus)?;
    let mut n = 0;
    for r in results {
        let Ok(rd) = std::fs::read_dir(r.dir.join("corpus")) else { continue };
        for e in rd.flatten() {
            let dest = corpus.join(e.file_name());
            if !dest.exists() {
                fs::copy(&e.path(), &dest)?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Prints each guest's timings, and returns the merged summary: execs,
/// time split and exec/s summed, classes merged, coverage as the union
/// of the guests' edges and PCs.
fn report_guests(
    results: &[GuestResult],
    setup_secs: f64,
    grown: usize,
    corpus: &Path,
) -> Summary {
    let mut total = Summary::default();
    let mut locs: HashSet<String> = HashSet::new();
    let mut edges: HashSet<String> = HashSet::new();
    let mut cover = super::summary::CoverStats::default();
    // Per lane: execs and loop seconds of its guests one after the other.
    let mut lanes: std::collections::BTreeMap<usize, (u64, f64)> =
        Default::default();
    println!("setup (image, modules): {setup_secs:.1} s");
    for r in results {
        println!(
            "guest {}{} (seed {}):",
            r.index,
            if r.run > 0 { format!(".{}", r.run) } else { String::new() },
            r.seed
        );
        for (what, secs) in &r.timings {
            println!("  {what}: {secs:.1} s");
        }
        if let Some(f) = &r.failure {
            println!("  boot: {f}");
        }
        locs.extend(read_lines(&r.dir.join("locs.txt")));
        edges.extend(read_lines(&r.dir.join("edges.txt")));
        let Some(s) = &r.summary else {
            println!(
                "  no summary: the guest died (see {})",
                r.dir.join("console.log").display()
            );
            continue;
        };
        println!(
            "  {:.0} exec/s, {} execs in {:.1} s; stopped: {}",
            s.exec_per_sec(),
            s.execs,
            s.seconds,
            s.stopped
        );
        let l = lanes.entry(r.index).or_insert((0, 0.0));
        // The lane's first crash, on its clock (its guests one after the
        // other: --keep-going).
        let in_lane = s.first_crash_seconds.map(|t| l.1 + t);
        total.first_crash_seconds = match (total.first_crash_seconds, in_lane)
        {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        l.0 += s.execs;
        l.1 += s.seconds;
        total.execs += s.execs;
        // Guest time, summed like the time split.
        total.seconds += s.seconds;
        total.real_seconds += s.real_seconds;
        total.sim_seconds += s.sim_seconds;
        total.journal_seconds += s.journal_seconds;
        total.resyncs += s.resyncs;
        if let Some(c) = &s.cover {
            cover.kept += c.kept;
            cover.loaded = cover.loaded.max(c.loaded);
            cover.feedback = c.feedback;
            cover.seconds += c.seconds;
            // A guest killed by an oops left no edge list: its count.
            cover.edges = cover.edges.max(c.edges);
            cover.pcs = cover.pcs.max(c.pcs);
        }
        merge_classes(&mut total, s);
        if total.real.is_empty() {
            total.real.clone_from(&s.real);
            total.sim.clone_from(&s.sim);
            total.discovery = s.discovery.clone();
            total.seeds.clone_from(&s.seeds);
            total.seed = s.seed;
        }
    }
    // The union of the guests' lists, or at least the largest count.
    cover.edges = cover.edges.max(edges.len());
    cover.pcs = cover.pcs.max(locs.len());
    if cover.edges > 0 || cover.pcs > 0 {
        total.cover = Some(cover);
    }
    total.total_exec_per_sec =
        lanes.values().filter(|l| l.1 > 0.0).map(|l| l.0 as f64 / l.1).sum();
    total.guests = lanes.len();
    total.stopped = "see each guest".into();
    if results.len() == 1 {
        total.guests = 1;
        total.total_exec_per_sec = 0.0;
    }
    println!("corpus: {} (+{grown} new inputs)", corpus.display());
    total
}

fn merge_classes(total: &mut Summary, s: &Summary) {
    for c in &s.classes {
        match total.classes.iter_mut().find(|x| x.key == c.key) {
            Some(x) => x.count += c.count,
            None => total.classes.push(c.clone()),
        }
    }
    total
        .classes
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
}

fn read_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}
