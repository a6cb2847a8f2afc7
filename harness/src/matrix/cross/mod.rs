//! Real clients against real modules: `jool-harness versions real`
//! (the host side: [`run`]; the guest side: [`guest`]).
//!
//! For each kernel module release K with a guest image (Debian's
//! jool-dkms 4.1.9, 4.1.13, 4.1.15), boots K's guest with the real C
//! clients of every release C (Debian's `jool`/`jool_siit` binaries with
//! their own loader, libc, libm and libnl, taken from C's image), moves the
//! counters of a SIIT and a NAT64 instance with real traffic, freezes them
//! (the veths go away), and runs `stats display` with each flag set through
//! every client C, K's own installed client, and `jool-stats` (auto labels
//! and `--client-version C`). The outputs are one JSON capture per module
//! (`fixtures/captures/cross/<K>.json`).
//!
//! [`check`] then proves, from a capture alone (so `cargo test` does it
//! for the committed ones without a VM):
//! - the labels each real client C printed for K's counters are what
//!   `versions matrix` predicts for the pair (rejected, exact, the
//!   mislabelled ids, the id where the display fails);
//! - `jool-stats --client-version C` against a simulated K kernel holding
//!   the same counters prints what the real client C printed against the
//!   real K module (stdout and exit status; stderr may only add warnings
//!   in front);
//! - `jool-stats` against the real module prints the same, with auto
//!   labels equal to K's own client;
//! - the copied client of release K behaves as K's installed one, and the
//!   counters did not move during the runs.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use jool_sim::versions::Profile;
use serde::{Deserialize, Serialize};

use super::{bail, release, Context, Result};
use crate::{
    compat::predict::{Run, Shown, Verdict},
    host, vm,
};

mod guest;
mod run;

pub use guest::guest;
pub use run::{client_bundle, run, Outcome};

/// The releases Debian packages (bookworm, trixie, sid).
pub const DEBIAN_RELEASES: &[&str] = &["4.1.9", "4.1.13", "4.1.15"];

/// The `stats display` flag sets every client runs.
pub const FLAG_SETS: &[&[&str]] = &[
    &[],
    &["--all"],
    &["--explain"],
    &["--all", "--explain"],
    &["--csv"],
    &["--all", "--csv"],
    &["--all", "--csv", "--no-headers"],
    &["--all", "--csv", "--explain"],
];

/// The two instances: (translator, its namespace, the program).
const INSTANCES: &[(&str, &str, &str)] =
    &[("siit", "siit", "jool_siit"), ("nat64", "nat", "jool")];

/// The libraries a `jool` binary needs, taken from its own image and
/// started through its own loader, so it runs on any guest.
const BUNDLE_LIBS: &[&str] = &[
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libnl-3.so.200",
    "libnl-genl-3.so.200",
];

/// What `jool-harness versions real` does.
#[derive(Debug, Clone)]
pub struct RealOptions {
    /// Kernel module releases to boot (each needs scripts/vm-image's
    /// image; built when absent).
    pub modules: Vec<String>,
    /// Releases of the real C clients to run (binaries from their images).
    pub clients: Vec<String>,
    /// Folder of the captures (`<module>.json`).
    pub out: PathBuf,
    /// Do not boot anything: check the captures already in `out`.
    pub check_only: bool,
    /// How to boot the guests.
    pub vm: vm::Config,
}

/// What `jool-harness versions real-guest` does (inside the guest).
#[derive(Debug, Clone)]
pub struct GuestOptions {
    /// Folder of client bundles: `<release>/bin/{jool,jool_siit}`,
    /// `<release>/lib/`.
    pub clients: PathBuf,
    /// Where to write `cross.json`.
    pub out: PathBuf,
    /// The release the host expects the guest to run.
    pub release: Option<String>,
}

/// Who ran a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The real C client of `release`, copied with its libraries.
    Real,
    /// The guest's installed client (`release` is the module's).
    Native,
    /// `jool-stats`; `release` is its `--client-version` (`auto`).
    JoolStats,
}

/// One `stats display` in the guest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// Who ran it.
    pub kind: Kind,
    /// The client's release (or `auto`).
    pub release: String,
    /// `jool_siit` or `jool`.
    pub program: String,
    /// The flags after `stats display`.
    pub flags: Vec<String>,
    /// Exit status.
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A module's capture: `fixtures/captures/cross/<module>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Capture {
    /// The module's release (from /sys/module/jool*/version).
    pub module: String,
    /// The guest's kernel (`uname -r`).
    pub kernel: String,
    /// How it was made.
    pub recipe: Vec<String>,
    /// Image manifest lines (packages and versions).
    #[serde(default)]
    pub image: Vec<String>,
    /// Each instance's counters before the runs, as the module's own
    /// client prints them with `--all --csv`.
    pub counters: BTreeMap<String, String>,
    /// The same, after the runs.
    pub counters_after: BTreeMap<String, String>,
    /// Every run.
    pub runs: Vec<Record>,
}

fn flag_name(flags: &[String]) -> String {
    if flags.is_empty() {
        "(no flags)".to_owned()
    } else {
        flags.join(" ")
    }
}

// ---------------------------------------------------------------- checks

/// One comparison of [`check`].
#[derive(Clone, Debug)]
pub struct Finding {
    /// What was compared.
    pub what: String,
    /// `None` when it agreed; else why not.
    pub problem: Option<String>,
}

/// The verdict the real client's `--all --csv --no-headers` run shows.
pub fn observed_verdict(
    client: &Profile,
    kernel: &Profile,
    r: &Record,
) -> Verdict {
    let rows: Vec<&str> = r.stdout.lines().collect();
    if r.status != 0 && rows.is_empty() && !unknown_failure(&r.stderr) {
        return Verdict::Rejected;
    }
    let first = kernel.first_id();
    let labels = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let name = row.split(',').next().unwrap_or_default();
            let id =
                first.saturating_add(u16::try_from(i).unwrap_or(u16::MAX));
            (id, (name != "????").then(|| name.to_owned()))
        })
        .collect::<Vec<_>>();
    let failed_at = (r.status != 0 && unknown_failure(&r.stderr)).then(|| {
        first.saturating_add(u16::try_from(labels.len()).unwrap_or(u16::MAX))
    });
    Verdict::from_run(client, kernel, &Run::Shown(Shown { labels, failed_at }))
}

fn unknown_failure(stderr: &str) -> bool {
    stderr.contains("unknown stat counter")
}

fn find<'a>(
    c: &'a Capture,
    kind: &Kind,
    release: &str,
    program: &str,
    flags: &[String],
) -> Option<&'a Record> {
    c.runs.iter().find(|r| {
        r.kind == *kind
            && r.release == release
            && r.program == program
            && r.flags == flags
    })
}

/// `a` and `b` printed the same (stdout, status) and `b`'s stderr ends
/// with `a`'s (jool-stats may warn first).
fn same_output(a: &Record, b: &Record) -> Option<String> {
    if a.stdout != b.stdout {
        return Some(format!(
            "stdout differs:\n{}",
            crate::suite::expect::diff("stdout", &a.stdout, &b.stdout)
        ));
    }
    if a.status != b.status {
        return Some(format!("exit status {} vs {}", a.status, b.status));
    }
    if !b.stderr.ends_with(&a.stderr) {
        return Some(format!(
            "stderr: {:?} does not end with {:?}",
            b.stderr, a.stderr
        ));
    }
    None
}

/// What `jool-stats --client-version C --sim --kernel-version K` prints
/// for a capture's run, with the captured counters.
pub fn sim_record(
    c: &Capture,
    r: &Record,
    counters_dir: &Path,
) -> Result<Record> {
    let xlator = INSTANCES
        .iter()
        .find(|(_, _, p)| *p == r.program)
        .with_context(|| format!("unknown program {}", r.program))?
        .0;
    let file = counters_dir.join(format!("{}-{xlator}.csv", c.module));
    if !file.is_file() {
        let text = c
            .counters
            .get(xlator)
            .with_context(|| format!("capture without {xlator} counters"))?;
        std::fs::write(&file, text)?;
    }
    let mut args: Vec<String> = vec![
        r.program.clone(),
        "--sim".into(),
        "--kernel-version".into(),
        c.module.clone(),
        "--counters".into(),
        file.display().to_string(),
        "--client-version".into(),
        r.release.clone(),
        "stats".into(),
        "display".into(),
    ];
    args.extend(r.flags.iter().cloned());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = crate::cli::run(&args, &mut out, &mut err);
    Ok(Record {
        kind: Kind::JoolStats,
        release: r.release.clone(),
        program: r.program.clone(),
        flags: r.flags.clone(),
        status: i32::from(status),
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

/// Every comparison a capture supports (see the module documentation).
pub fn check(c: &Capture) -> Result<Vec<Finding>> {
    let kernel = release(&c.module)?;
    let tmp = host::TempDir::new("jool-harness-check")?;
    let mut f = Vec::new();
    let mut push = |what: String, problem: Option<String>| {
        f.push(Finding { what, problem })
    };
    for (x, before) in &c.counters {
        let after = c.counters_after.get(x);
        push(
            format!("{} {x}: counters frozen during the runs", c.module),
            (after != Some(before))
                .then(|| "the counters moved between the runs".to_owned()),
        );
    }
    if !c.runs.iter().any(|r| r.kind == Kind::Real) {
        bail!("capture of {} has no real client runs", c.module);
    }
    for r in c.runs.iter().filter(|r| r.kind == Kind::Real) {
        let client = release(&r.release)?;
        let pair = format!(
            "client {} x module {}: {} stats display {}",
            r.release,
            c.module,
            r.program,
            flag_name(&r.flags)
        );
        // The matrix, from the one run that shows every id in order.
        if r.flags == ["--all", "--csv", "--no-headers"] {
            let seen = observed_verdict(client, kernel, r);
            let said = Verdict::predicted(client, kernel);
            push(
                format!("{pair}: versions matrix says {}", said.words()),
                (seen != said).then(|| {
                    format!(
                        "the real client showed {} ({seen:?}); predicted {said:?}",
                        seen.words()
                    )
                }),
            );
        }
        // The sim with the same counters.
        let sim = sim_record(c, r, tmp.path())?;
        push(
            format!(
                "{pair}: jool-stats --client-version {} on the sim",
                r.release
            ),
            same_output(r, &sim),
        );
        // jool-stats on the real module.
        let js = find(c, &Kind::JoolStats, &r.release, &r.program, &r.flags);
        push(
            format!(
                "{pair}: jool-stats --client-version {} on the real module",
                r.release
            ),
            match js {
                None => Some("not captured".into()),
                Some(js) => same_output(r, js),
            },
        );
        if r.release == c.module {
            for (kind, release, who) in [
                (Kind::Native, c.module.as_str(), "the installed client"),
                (Kind::JoolStats, "auto", "jool-stats (auto labels)"),
            ] {
                push(
                    format!("{pair}: {who} prints the same"),
                    match find(c, &kind, release, &r.program, &r.flags) {
                        None => Some("not captured".into()),
                        Some(o) => same_output(r, o),
                    },
                );
            }
        }
    }
    Ok(f)
}

/// Reads a capture file.
pub fn load(path: &Path) -> Result<Capture> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("Failed to read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a capture", path.display()))
}

/// The summary table: one row per client x module pair.
pub fn summary(c: &Capture, findings: &[Finding]) -> String {
    let mut s = String::new();
    let kernel = Profile::get(&c.module);
    let mut releases: Vec<&str> = c
        .runs
        .iter()
        .filter(|r| r.kind == Kind::Real)
        .map(|r| r.release.as_str())
        .collect();
    releases.sort_by(|a, b| jool_sim::versions::cmp_releases(a, b));
    releases.dedup();
    for rel in releases {
        let prefix = format!("client {rel} x module {}:", c.module);
        let mine: Vec<&Finding> =
            findings.iter().filter(|f| f.what.starts_with(&prefix)).collect();
        let bad = mine.iter().filter(|f| f.problem.is_some()).count();
        let real = find(
            c,
            &Kind::Real,
            rel,
            "jool_siit",
            &["--all", "--csv", "--no-headers"].map(String::from),
        );
        let seen = match (Profile::get(rel), kernel, real) {
            (Some(cl), Some(k), Some(r)) => observed_verdict(cl, k, r).words(),
            _ => "?".into(),
        };
        let _ = writeln!(
            s,
            "  {prefix:<34} {seen:<32} {}/{} checks agree",
            mine.len() - bad,
            mine.len()
        );
    }
    s
}
