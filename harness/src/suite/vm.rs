//! The suites in QEMU guests with the real module: the work is split
//! over `--jobs` guests ([`plan`]), each boots the image of the release
//! (`crate::vm`) and runs `jool-harness run --backend kernel` on its
//! share; the reports are merged in the order one guest would give.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use super::{report, Clients, Error, Report, Result, Run, Suite};
use crate::vm;

/// How to run the suites in guests.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// How to boot each guest.
    pub vm: vm::Config,
    /// Guests booted at once (default: one per host CPU under TCG, where a
    /// guest has one vCPU; one per two CPUs with KVM).
    pub jobs: Option<usize>,
    /// Where to keep the console of a guest whose run failed.
    pub console: Option<PathBuf>,
}

/// One guest's share of `run --backend vm`: its `--client` and suites.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Unit {
    client: Clients,
    suites: Vec<String>,
    weight: usize,
}

/// Splits the work of `run --backend vm` over `jobs` guests. One guest
/// runs everything with `client` as asked; more split the clients first
/// (a guest runs one client), then each client's suites, heaviest first,
/// to its lightest guest (a topology step costs about ten other steps).
fn plan(suites: &[Suite], client: Clients, jobs: usize) -> Vec<Unit> {
    let stem = |s: &Suite| {
        s.path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let weight = |s: &Suite| {
        s.cases
            .iter()
            .flat_map(|c| &c.steps)
            .map(|st| if st.topology.is_some() { 10 } else { 1 })
            .sum::<usize>()
            .max(1)
    };
    let total: usize = suites.iter().map(weight).sum();
    if jobs <= 1 || suites.is_empty() {
        let suites = suites.iter().map(stem).collect();
        return vec![Unit { client, suites, weight: total }];
    }
    let clients: Vec<Clients> = match client {
        Clients::Both => vec![Clients::JoolStats, Clients::Real],
        one => vec![one],
    };
    let per_client = (jobs / clients.len()).max(1).min(suites.len());
    let mut sorted: Vec<&Suite> = suites.iter().collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(weight(s)));
    let mut units = Vec::new();
    for c in clients {
        let mut bins: Vec<Unit> = (0..per_client)
            .map(|_| Unit { client: c, suites: Vec::new(), weight: 0 })
            .collect();
        for s in &sorted {
            if let Some(b) = bins.iter_mut().min_by_key(|b| b.weight) {
                b.suites.push(stem(s));
                b.weight += weight(s);
            }
        }
        units.extend(bins.into_iter().filter(|b| !b.suites.is_empty()));
    }
    units
}

/// Guests to boot at once: `--jobs`, else one per host CPU under TCG (a
/// guest has one vCPU there), one per two CPUs with KVM.
fn jobs(opts: &Options, kvm: bool) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    opts.jobs.unwrap_or(if kvm { cpus / 2 } else { cpus }).clamp(1, 8)
}

/// What one guest of `run --backend vm` brought back: its report and its
/// timings.
type GuestReport = (Report, Vec<(String, f64)>);

/// Runs one guest of `run --backend vm`.
fn unit_report(
    run: &Run,
    opts: &Options,
    unit: &Unit,
    tag: &str,
) -> Result<GuestReport> {
    let dir = run.suites_dir.canonicalize().map_err(|source| {
        Error::ReadDir { dir: run.suites_dir.clone(), source }
    })?;
    // Share the suites' parent: suites refer to ../captures.
    let fixtures = dir.parent().unwrap_or(Path::new("/")).to_owned();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut args: Vec<String> =
        ["run", "--backend", "kernel", "--client", unit.client.name()]
            .into_iter()
            .chain([
                "--junit",
                "/h/out/junit.xml",
                "--json",
                "/h/out/results.json",
                "--plain",
            ])
            .map(str::to_owned)
            .collect();
    if run.strict {
        args.push("--strict".into());
    }
    args.extend([
        "--suites-dir".to_owned(),
        format!("/h/fixtures/{name}"),
        "--release".into(),
        run.release().into(),
    ]);
    for s in &unit.suites {
        args.extend(["--suite".to_owned(), s.clone()]);
    }
    let mut config = opts.vm.clone();
    config.events = vm::Events::stderr(tag);
    let guest =
        vm::Guest { args, fixtures: Some(fixtures), ..vm::Guest::default() };
    let guest = vm::boot_guest(run.release(), &config, &guest)?;
    let results = guest.out().join("results.json");
    let outcome = match (guest.failure(), std::fs::read_to_string(&results)) {
        (None, Ok(text)) => serde_json::from_str::<Report>(&text)
            .map_err(|e| format!("results.json from the guest: {e}")),
        (Some(why), _) => Err(format!("the VM run failed: {why}")),
        (None, Err(e)) => Err(format!(
            "the guest wrote no results ({e}); guest.rc: {}",
            std::fs::read_to_string(guest.out().join("guest.rc"))
                .unwrap_or_else(|_| "none".into())
                .trim()
        )),
    };
    match outcome {
        Ok(report) => {
            if !report.success() {
                guest.keep_console(opts.console.as_deref());
            }
            Ok((report, guest.timings()))
        }
        Err(why) => {
            let console = guest.keep_console(opts.console.as_deref());
            Err(Error::Guest { why, console })
        }
    }
}

/// `jool-harness run --backend vm`: boots [`jobs`] guests at once, each
/// running `--backend kernel` on its share of the work ([`plan`]), and
/// merges their results in the order a single guest would give.
pub(super) fn run(
    run: &Run,
    opts: &Options,
    suites: &[Suite],
) -> Result<Report> {
    let t0 = Instant::now();
    let release = run.release();
    // Build (or find) the image once; every guest boots that folder.
    let mut opts = opts.clone();
    opts.vm.image = Some(vm::image_for(release, &opts.vm)?);
    let units = plan(suites, run.clients, jobs(&opts, opts.vm.wants_kvm()));
    let tags: Vec<String> = (1..=units.len())
        .map(|i| {
            if units.len() > 1 {
                format!("[guest {i}] ")
            } else {
                String::new()
            }
        })
        .collect();
    if units.len() > 1 {
        eprintln!("vm: {} guests at once (--jobs):", units.len());
        for (u, t) in units.iter().zip(&tags) {
            eprintln!(
                "  {t}--client {} {}",
                u.client.name(),
                u.suites.join(" ")
            );
        }
    }
    let opts = &opts;
    let results: Vec<Result<GuestReport>> = std::thread::scope(|s| {
        let handles: Vec<_> = units
            .iter()
            .zip(&tags)
            .map(|(u, t)| s.spawn(move || unit_report(run, opts, u, t)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or(Err(Error::Panicked("a guest thread")))
            })
            .collect()
    });
    let mut report =
        Report { cases: Vec::new(), seconds: 0.0, timings: Vec::new() };
    for (tag, r) in tags.iter().zip(results) {
        let (r, timings) = r?;
        report.cases.extend(r.cases);
        report.seconds = report.seconds.max(r.seconds);
        report.timings.extend(
            timings
                .into_iter()
                .filter(|(k, _)| k != "total to results")
                .map(|(k, v)| (format!("{tag}{k}"), v)),
        );
    }
    // The order of one guest: client by client, suite by suite.
    let order = |c: &report::CaseResult| {
        let client = usize::from(c.client != "jool-stats");
        let suite = suites
            .iter()
            .position(|s| s.suite.name == c.suite)
            .unwrap_or(usize::MAX);
        (client, suite)
    };
    report.cases.sort_by_key(order);
    report
        .timings
        .push(("total to results".into(), t0.elapsed().as_secs_f64()));
    Ok(report)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::suite::{default_suites_dir, load_suites};

    /// Every (client, suite) pair in exactly one guest, one client per
    /// guest, no more guests than asked.
    fn check_plan(
        units: &[Unit],
        suites: &[Suite],
        client: Clients,
        jobs: usize,
    ) {
        assert!(units.len() <= jobs.max(1), "{units:?}");
        let clients = match client {
            Clients::Both => vec![Clients::JoolStats, Clients::Real],
            c => vec![c],
        };
        for s in suites {
            let stem = s.path.file_stem().unwrap().to_string_lossy();
            for c in &clients {
                let n = units
                    .iter()
                    .filter(|u| u.client == *c || u.client == Clients::Both)
                    .filter(|u| u.suites.iter().any(|x| *x == stem))
                    .count();
                assert_eq!(n, 1, "{stem} {c:?} in {units:?}");
            }
        }
    }

    #[test]
    fn test_plan_splits_clients_then_suites() {
        let suites = load_suites(&default_suites_dir(), &[]).unwrap();
        assert!(suites.len() >= 4);
        for client in [Clients::Both, Clients::JoolStats, Clients::Real] {
            for jobs in 1..=6 {
                let units = plan(&suites, client, jobs);
                check_plan(&units, &suites, client, jobs);
            }
        }
        // One guest: as asked, every suite.
        let one = plan(&suites, Clients::Both, 1);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].client, Clients::Both);
        // Two: one per client. Four: two per client, balanced (the
        // heaviest suite alone outweighs the lightest ones together).
        let two = plan(&suites, Clients::Both, 2);
        assert_eq!(
            two.iter().map(|u| u.client).collect::<Vec<_>>(),
            [Clients::JoolStats, Clients::Real]
        );
        let four = plan(&suites, Clients::Both, 4);
        assert_eq!(four.len(), 4);
        let w: Vec<usize> = four.iter().map(|u| u.weight).collect();
        let total: usize = suites.len();
        assert!(total > 0);
        assert!(w.iter().all(|x| *x > 0), "{w:?}");
    }
}
