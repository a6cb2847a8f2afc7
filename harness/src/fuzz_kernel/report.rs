//! `--coverage-report DIR`: which lines of Jool's code the suites, the
//! conformance requests and the fuzzer's corpus reach in the real
//! module, as text (`coverage.txt`) and HTML (`index.html`, one page per
//! file).
//!
//! One guest loads the instrumented modules with `jool_kcov`'s global
//! mode on ([`guest_phases`]) and runs three phases, emptying the set
//! between them: `jool-harness run --backend kernel` with both clients
//! (every suite), every request of the conformance corpus, then the
//! seeds and the kept inputs of `--corpus`. The host maps the locations
//! to lines ([`super::lines`]).

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use jool_sim::versions::Profile;

use super::{
    cover::{self, loc, unloc, Loc, ModuleMap, MODULES},
    discover,
    error::{fs, Error, Result},
    guest::{self, GuestPlan, Task},
    lines::{lines, text_report, write_html},
    request::{map_type, replace_all, FAMILY_PLACEHOLDER, TAG_PLACEHOLDER},
    seeds,
    setup::{self, manifest, Target},
    target::{KernelUnderTest, RealKernel},
    Modules, Settings, Verdict,
};
use crate::{host::installed_release, vm};

/// The phases, in order.
pub const PHASES: [&str; 3] = ["suites", "conformance", "fuzzing"];

/// Set in the child that replays a phase's requests.
const PHASE_ENV: &str = "JOOL_FUZZ_COVER_PHASE";

fn write_locs(path: &Path, locs: &[Loc]) -> Result<()> {
    let text: String = locs
        .iter()
        .map(|l| {
            let (m, off) = unloc(*l);
            format!("{m} {off:x}\n")
        })
        .collect();
    fs::write(path, text)
}

fn read_locs(path: &Path) -> BTreeSet<Loc> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (m, off) = l.split_once(' ')?;
            let i = MODULES.iter().position(|x| *x == m)?;
            Some(loc(i, u64::from_str_radix(off, 16).ok()?))
        })
        .collect()
}

/// The guest's part (parent process, modules installed, global mode on).
pub(super) fn guest_phases(
    plan: &GuestPlan,
    out_dir: &Path,
    suites_dir: &Path,
) -> Result<Verdict> {
    // Holding the device keeps jool_kcov (and its set) loaded while the
    // suites modprobe -r Jool; jool_common is never removed, so its code
    // stays where the set saw it.
    let device = Path::new(cover::DEVICE);
    let _pin =
        std::fs::File::open(device).map_err(Error::at("open", device))?;
    fs::write(
        Path::new("/etc/modprobe.d/jool-cover.conf"),
        "remove jool_common /bin/true\n",
    )?;
    fs::create_dir_all(out_dir)?;
    let release = match &plan.profile {
        Some(p) => p.clone(),
        None => installed_release()
            .ok_or_else(|| Error::Guest("no Jool loaded".into()))?,
    };
    let mut log = String::new();
    for phase in PHASES {
        cover::set_global(true).map_err(global_error)?;
        let t = Instant::now();
        let status = if phase == "suites" {
            Command::new("/tmp/hbin/jool-harness")
                .args([
                    "run",
                    "--backend",
                    "kernel",
                    "--client",
                    "both",
                    "--plain",
                    "--release",
                ])
                .arg(&release)
                .arg("--suites-dir")
                .arg(suites_dir)
                .stdout(Stdio::null())
                .status()
                .map_err(|e| Error::io("run jool-harness run", e))?
        } else {
            guest::reexec_in_netns(&[(PHASE_ENV, phase)])?
        };
        let map = ModuleMap::read(Path::new("/sys/module"));
        let locs = cover::global_set(&map).map_err(global_error)?;
        write_locs(&out_dir.join(format!("locs-{phase}.txt")), &locs)?;
        // How far a phase that an oops ended got (at most 20 short).
        let sent =
            std::fs::read_to_string(out_dir.join(format!("sent-{phase}.txt")))
                .ok()
                .and_then(|t| {
                    let (i, n) = t.trim().split_once(' ')?;
                    (i != n).then(|| {
                format!("; stopped after ~{i} of its {n} requests (an oops?)")
            })
                })
                .unwrap_or_default();
        let _ = writeln!(
            log,
            "{phase}: {status}, {} locations, {:.1} s{sent}",
            locs.len(),
            t.elapsed().as_secs_f64()
        );
    }
    cover::set_global(false).map_err(global_error)?;
    fs::write(&out_dir.join("phases.txt"), &log)?;
    eprint!("{log}");
    Ok(Verdict::Pass)
}

fn global_error(e: std::io::Error) -> Error {
    Error::io(format!("use {}'s global set", cover::DEVICE), e)
}

/// The child's part of a phase: the conformance requests, or the seeds
/// and the corpus, after the base state (restored every 200 requests).
pub(super) fn netns_phase(
    k: &mut RealKernel,
    p: &'static Profile,
    args: &Settings,
    plan: &GuestPlan,
) -> Result<Verdict> {
    let phase = std::env::var(PHASE_ENV).unwrap_or_default();
    let d = discover::discover(k, p)?;
    let conf =
        args.conformance.clone().unwrap_or_else(super::default_conformance);
    let mut reqs = seeds::conformance_dir(&conf, d.netns_tag)?;
    if phase == "fuzzing" {
        // The kept inputs first: they never crashed (a request that
        // kills the fuzzer is never kept), while a built seed may oops
        // the module (4.1.9), which ends the phase.
        if let Some(c) = &plan.corpus {
            reqs.extend(seeds::dir_seeds(c, "corpus", 0, usize::MAX));
        }
        reqs.extend(seeds::built_seeds(p, d.netns_tag));
    }
    let sent = match &plan.task {
        Task::Cover { out_dir, .. } => {
            Some(out_dir.join(format!("sent-{phase}.txt")))
        }
        _ => None,
    };
    let base = discover::base_requests(p);
    for (i, s) in reqs.iter().enumerate() {
        if let Some(f) = sent.as_ref().filter(|_| i % 20 == 0) {
            let _ = std::fs::write(f, format!("{i} {}\n", reqs.len()));
        }
        if i % 200 == 0 {
            for r in &base {
                let mut r = r.clone();
                map_type(&mut r, FAMILY_PLACEHOLDER, d.family_id);
                k.exchange(&r, false);
            }
        }
        let mut r = s.bytes.clone();
        map_type(&mut r, FAMILY_PLACEHOLDER, d.family_id);
        replace_all(&mut r, &TAG_PLACEHOLDER, &d.netns_tag.to_le_bytes());
        k.exchange(&r, false);
    }
    if let Some(f) = &sent {
        let _ = std::fs::write(f, format!("{0} {0}\n", reqs.len()));
    }
    eprintln!("coverage phase {phase}: {} requests", reqs.len());
    Ok(Verdict::Pass)
}

/// Runs `--coverage-report DIR`.
pub fn run(args: &Settings, dir: &Path) -> Result<Verdict> {
    let release = super::release_of(args);
    super::profile_of(&release)?;
    if args.modules == Modules::Stock {
        return Err(Error::Usage("--coverage-report needs instrumented modules (--modules auto or a folder)".into()));
    }
    let t = setup::target(args, &release)?;
    let Some(mods) = t.modules.clone() else {
        return Err(Error::Usage("no instrumented modules".into()));
    };
    let locs = collect(args, &t, &mods)?;
    fs::create_dir_all(dir)?;
    for (phase, l) in PHASES.iter().zip(&locs) {
        write_locs(
            &dir.join(format!("locs-{phase}.txt")),
            &l.iter().copied().collect::<Vec<_>>(),
        )?;
    }
    let cov = lines(&mods, &locs)?;
    let title = format!(
        "Jool {} ({}) on {}",
        manifest(&mods, "jool_version"),
        manifest(&mods, "jool_source"),
        manifest(&mods, "kernel")
    );
    let text = text_report(&title, &cov);
    fs::write(&dir.join("coverage.txt"), &text)?;
    write_html(dir, &title, &cov, &mods)?;
    print!("{text}");
    println!("report: {}", dir.join("index.html").display());
    Ok(Verdict::Pass)
}

/// Boots the coverage guest; the locations of each phase.
fn collect(
    args: &Settings,
    t: &Target,
    mods: &Path,
) -> Result<Vec<BTreeSet<Loc>>> {
    let work = setup::private_dir("cover")?;
    let guest = cover_guest(args, t, mods, &work);
    // The folder is ours: made by mkdtemp above.
    let _ = std::fs::remove_dir_all(&work);
    let guest = guest?;
    for (what, secs) in guest.timings() {
        eprintln!("  {what}: {secs:.1} s");
    }
    let out = guest.out().join("cover");
    if !out.join("phases.txt").exists() {
        let kept = guest.keep_console(args.console.as_deref());
        return Err(Error::Guest(format!(
            "the coverage guest wrote no phases.txt (console: {})",
            kept.display()
        )));
    }
    eprint!(
        "{}",
        std::fs::read_to_string(out.join("phases.txt")).unwrap_or_default()
    );
    Ok(PHASES
        .iter()
        .map(|p| read_locs(&out.join(format!("locs-{p}.txt"))))
        .collect())
}

/// Stages the modules, the corpus and the plan under `work` (the
/// guest's `/h/bin/fk*`) and boots the coverage guest with the
/// repository's fixtures (the suites, the conformance corpus).
fn cover_guest(
    args: &Settings,
    t: &Target,
    mods: &Path,
    work: &Path,
) -> Result<vm::GuestRun> {
    let staged = work.join("fkmods");
    setup::stage_modules(mods, t.kasan.as_deref(), &staged)?;
    let corpus = work.join("fkcorpus");
    fs::create_dir_all(&corpus)?;
    let corpus_src = setup::corpus_dir(args, &t.release);
    if corpus_src.is_dir() {
        setup::copy_dir(&corpus_src, &corpus)?;
    }
    let plan_dir = work.join("fk");
    fs::create_dir_all(&plan_dir)?;
    let plan = GuestPlan {
        modules: Some("/h/bin/fkmods".into()),
        install_modules: true,
        builtin: t
            .kasan
            .as_ref()
            .map(|_| "/h/bin/fkmods/modules.builtin".into()),
        corpus: Some("/h/bin/fkcorpus".into()),
        profile: t.profile.clone(),
        task: Task::Cover {
            out_dir: "/h/out/cover".into(),
            suites_dir: "/h/fixtures/suites".into(),
        },
        ..GuestPlan::default()
    };
    fs::write_json(&plan_dir.join("plan.json"), &plan)?;
    let words = setup::guest_words(
        "/h/bin/fk/plan.json",
        &["--conformance", "/h/fixtures/conformance-4.1.9"],
    );
    let mut config = args.vm.clone();
    config.image = Some(t.image.clone());
    config.timeout = config.timeout.max(std::time::Duration::from_secs(900));
    let guest = vm::Guest {
        args: words,
        fixtures: None,
        extra_bin: [
            ("fkmods", staged),
            ("fkcorpus", corpus),
            ("fk", plan_dir),
        ]
        .map(|(n, d)| (n.to_owned(), d))
        .to_vec(),
        ..vm::Guest::default()
    };
    Ok(vm::boot_guest(&t.release, &config, &guest)?)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_locs_roundtrip() {
        let dir = crate::host::TempDir::new("jool-locs-test").unwrap();
        let p = dir.path().join("l.txt");
        write_locs(&p, &[loc(0, 0x10), loc(2, 0xabc)]).unwrap();
        assert_eq!(
            read_locs(&p),
            [loc(0, 0x10), loc(2, 0xabc)].into_iter().collect()
        );
    }
}
