//! Runs cases on a backend, once per client, and reports progress as
//! events.

use std::time::Instant;

use jool_sim::kernel::Xlator;

use super::{
    backend::{self, Backend, ClientKind},
    expect::{self, Snapshots},
    recipes,
    report::{CaseResult, Outcome, Report, StepResult},
    spec::{self, Case, Delta, Step, StepKind, Suite},
};

/// Progress of a run, for a terminal or a log.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run starts with this many case x client runs.
    Start(usize),
    /// A case starts.
    CaseStart(&'a str),
    /// A case ended.
    CaseEnd(&'a CaseResult),
}

/// What to run.
#[derive(Debug)]
pub struct Plan<'a> {
    /// The suites.
    pub suites: &'a [Suite],
    /// The clients, each case runs once per client.
    pub clients: &'a [ClientKind],
    /// Snapshot mode.
    pub snapshots: Snapshots,
    /// A client this backend cannot run fails its cases instead of
    /// skipping them (CI: "the step fails with the reason").
    pub strict: bool,
}

/// Runs the plan on `backend`, calling `progress` for each event.
pub fn run(
    plan: &Plan<'_>,
    backend: &mut dyn Backend,
    progress: &mut dyn FnMut(Event<'_>),
) -> Report {
    let started = Instant::now();
    let total = plan.suites.iter().map(|s| s.cases.len()).sum::<usize>()
        * plan.clients.len();
    progress(Event::Start(total));
    let mut report = Report::default();
    for &client in plan.clients {
        let unsupported = backend.unsupported(client);
        for suite in plan.suites {
            for case in &suite.cases {
                let id = format!(
                    "{}/{} [{}]",
                    suite.suite.name,
                    case.name,
                    client.name()
                );
                progress(Event::CaseStart(&id));
                let mut r = run_case(
                    suite,
                    case,
                    client,
                    unsupported.as_deref(),
                    plan.snapshots,
                    backend,
                );
                if let (true, Outcome::Skipped(why)) =
                    (plan.strict, &r.outcome)
                {
                    if !why.starts_with("not targeted") {
                        r.outcome = Outcome::Failed(format!(
                            "cannot run (--strict): {why}"
                        ));
                    }
                }
                progress(Event::CaseEnd(&r));
                report.cases.push(r);
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// Why `case` is not run with `client` on `backend`, if it is not.
fn not_targeted(
    suite: &Suite,
    case: &Case,
    client: ClientKind,
    backend: &dyn Backend,
) -> Option<String> {
    let release = backend.release();
    if !spec::release_matches(suite.releases(case), release) {
        return Some(format!("not targeted: release {release}"));
    }
    if !case.backends.is_empty()
        && !case.backends.iter().any(|b| b == backend.name())
    {
        return Some(format!("not targeted: backend {}", backend.name()));
    }
    if !case.clients.is_empty()
        && !case.clients.iter().any(|c| c == client.name())
    {
        return Some(format!("not targeted: client {}", client.name()));
    }
    None
}

fn run_case(
    suite: &Suite,
    case: &Case,
    client: ClientKind,
    unsupported: Option<&str>,
    snapshots: Snapshots,
    backend: &mut dyn Backend,
) -> CaseResult {
    let started = Instant::now();
    let mut result = CaseResult {
        suite: suite.suite.name.clone(),
        case: case.name.clone(),
        client: client.name().to_owned(),
        backend: backend.name().to_owned(),
        release: backend.release().to_owned(),
        outcome: Outcome::Passed,
        steps: Vec::new(),
        seconds: 0.0,
    };
    let skip = not_targeted(suite, case, client, backend)
        .or_else(|| unsupported.map(str::to_owned));
    if let Some(why) = skip {
        result.outcome = Outcome::Skipped(why);
        return result;
    }
    if let Err(e) = backend.begin_case(&suite.suite.name, case, client) {
        result.outcome = Outcome::Failed(format!("setup: {e}"));
        backend.end_case();
        return result;
    }
    for (i, step) in case.steps.iter().enumerate() {
        let step = step.for_release(backend.release());
        let s = run_step(suite, &step, i + 1, snapshots, backend);
        let failed = !s.failures.is_empty();
        result.steps.push(s);
        if failed {
            let first = result
                .steps
                .last()
                .map(|s| s.description.clone())
                .unwrap_or_default();
            result.outcome =
                Outcome::Failed(format!("step {} ({first})", i + 1));
            break;
        }
    }
    backend.end_case();
    result.seconds = started.elapsed().as_secs_f64();
    result
}

fn run_step(
    suite: &Suite,
    step: &Step,
    index: usize,
    snapshots: Snapshots,
    backend: &mut dyn Backend,
) -> StepResult {
    let started = Instant::now();
    let mut r = StepResult {
        index,
        description: step.describe(),
        status: None,
        stdout: String::new(),
        stderr: String::new(),
        counter_changes: Vec::new(),
        pid: None,
        failures: Vec::new(),
        seconds: 0.0,
    };
    match step.kind() {
        StepKind::Run(line) => {
            match spec::split_words(line).map_err(|e| e.to_string()).and_then(
                |argv| backend.run(step, &argv).map_err(|e| e.to_string()),
            ) {
                Ok(out) => {
                    let release = backend.release().to_owned();
                    r.failures =
                        expect::check(suite, step, &out, snapshots, &release);
                    r.status = Some(out.status);
                    r.pid = out.pid;
                    r.stdout = out.stdout;
                    r.stderr = out.stderr;
                }
                Err(e) => r.failures.push(e),
            }
        }
        StepKind::Topology(name) => {
            let t = recipes::topology(name).expect("validated by Suite::load");
            if let Err(e) = backend.topology(t) {
                r.failures.push(e.to_string());
            }
        }
        StepKind::Traffic(name) => {
            if let Err(e) = traffic(step, name, backend, &mut r) {
                r.failures.push(e.to_string());
            }
        }
    }
    r.seconds = started.elapsed().as_secs_f64();
    r
}

/// Reads the counters, sends the traffic, reads them again and checks
/// every declared delta (and only those).
fn traffic(
    step: &Step,
    name: &str,
    backend: &mut dyn Backend,
    r: &mut StepResult,
) -> backend::Result<()> {
    let t = recipes::traffic(name).expect("validated by Suite::load");
    let topo =
        recipes::topology(t.topology).expect("validated by recipes' test");
    let deltas: Vec<(String, Delta)> = step
        .deltas
        .iter()
        .map(|(k, v)| {
            (k.clone(), Delta::parse(v).expect("validated by Suite::load"))
        })
        .collect();
    let netns = topo.netns;
    let before = backend.counters(netns, topo.xlator)?;
    backend.traffic(t, &deltas)?;
    let after = backend.counters(netns, topo.xlator)?;
    for (k, a) in &after {
        let b = before.get(k).copied().unwrap_or(0);
        if *a != b {
            r.counter_changes.push((k.clone(), b, *a));
        }
    }
    for (stat, d) in &deltas {
        let (Some(b), Some(a)) = (before.get(stat), after.get(stat)) else {
            r.failures
                .push(format!("{stat}: not a counter this kernel reports"));
            continue;
        };
        let got = a.wrapping_sub(*b);
        if !d.accepts(got) {
            r.failures.push(format!(
                "{stat}: expected a change {d}, got {got} ({b} -> {a})"
            ));
        }
    }
    if !r.failures.is_empty() {
        let all: Vec<String> = r
            .counter_changes
            .iter()
            .map(|(k, b, a)| format!("{k} +{}", a.wrapping_sub(*b)))
            .collect();
        r.failures.push(format!(
            "every counter that moved in {} ({}): {}",
            netns,
            xlator_name(topo.xlator),
            all.join(", ")
        ));
    }
    Ok(())
}

fn xlator_name(x: Xlator) -> &'static str {
    x.name()
}
