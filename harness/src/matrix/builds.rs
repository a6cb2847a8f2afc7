//! The build table of the release x suite matrix: one [`BuildRow`] per
//! cell (from its manifest and, when it built, its [`BootCheck`]), written
//! as `fixtures/matrix/builds.json` and as the Markdown tables of
//! `fixtures/matrix/README.md`.

use std::{
    cmp::Ordering,
    fmt::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{Context, Result};
use crate::vm::{
    self,
    cell::{self, BootCheck, Manifest},
};

/// How [`collect`] treats the cells' boot checks.
#[derive(Debug, Clone)]
pub struct Options {
    /// Boot the built cells that have no `check.json` yet.
    pub boot: bool,
    /// Boot them again even where `check.json` exists.
    pub recheck: bool,
    /// How to boot them.
    pub config: vm::Config,
}

/// One row per cell folder, each built cell boot-checked once (the check
/// is kept as the cell's `check.json`), in matrix order.
pub fn collect(cells: &[PathBuf], opts: &Options) -> Result<Vec<BuildRow>> {
    let mut rows = Vec::new();
    for dir in cells {
        let m = Manifest::read(dir)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let c = if m.built() { check(dir, opts)? } else { None };
        if let Some(c) = &c {
            eprintln!(
                "matrix builds: {name}: {} (init after {:.1} s)",
                c.verdict,
                c.boot_to_init.unwrap_or(f64::NAN)
            );
        }
        rows.push(BuildRow::new(&name, &m, c.as_ref()));
    }
    sort_rows(&mut rows);
    Ok(rows)
}

fn check(dir: &Path, opts: &Options) -> Result<Option<BootCheck>> {
    let kept = dir.join("check.json");
    if !opts.recheck {
        if let Ok(text) = std::fs::read_to_string(&kept) {
            let c = serde_json::from_str(&text)
                .with_context(|| format!("{}", kept.display()))?;
            return Ok(Some(c));
        }
    }
    if !opts.boot {
        return Ok(None);
    }
    let c = cell::boot_check(dir, &opts.config)?;
    std::fs::write(&kept, serde_json::to_string_pretty(&c)? + "\n")
        .with_context(|| format!("write {}", kept.display()))?;
    Ok(Some(c))
}

/// Writes `OUT/builds.json` and the tables of `OUT/README.md` (below its
/// `<!-- table -->` line; the text above it is kept).
pub fn write(out: &Path, rows: &[BuildRow]) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("create {}", out.display()))?;
    let json = out.join("builds.json");
    std::fs::write(&json, serde_json::to_string_pretty(rows)? + "\n")
        .with_context(|| format!("write {}", json.display()))?;
    let readme = out.join("README.md");
    let intro = std::fs::read_to_string(&readme).unwrap_or_default();
    let intro = match intro.find("<!-- table -->") {
        Some(i) => intro[..i].to_owned(),
        None => "# The release x suite matrix\n\n".to_owned(),
    };
    let text = format!("{intro}<!-- table -->\n\n{}", markdown(rows));
    std::fs::write(&readme, text)
        .with_context(|| format!("write {}", readme.display()))
}

/// The suites of the matrix, oldest first.
pub const SUITES: &[&str] = &["bullseye", "bookworm", "trixie", "sid"];

/// One cell: what was built, whether it built, whether it loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRow {
    /// Jool release (the tag without `v`, or `main`).
    pub release: String,
    /// Debian suite of the kernel.
    pub suite: String,
    /// `uname -r` of that kernel.
    pub kernel: String,
    /// `git` (a tag of Jool's repository), `debian` (Debian's packages) or
    /// `src` (a source tree).
    pub origin: String,
    /// The tag and commit, or the Debian package version.
    pub source: String,
    /// `built`, `module does not build` or `clients do not build`.
    pub result: String,
    /// The first compiler (or modpost, configure) error of what failed.
    pub first_error: Option<String>,
    /// The module's first error, even when the result is about the clients.
    pub module_error: Option<String>,
    /// The clients' first error.
    pub clients_error: Option<String>,
    /// `jool_siit --version` of the built client.
    pub jool_version: Option<String>,
    /// `modinfo -F version jool_siit`.
    pub module_version: Option<String>,
    /// Seconds of the whole cell build, of the module, of the clients.
    pub build_seconds: Option<u64>,
    /// See `build_seconds`.
    pub module_seconds: Option<u64>,
    /// See `build_seconds`.
    pub clients_seconds: Option<u64>,
    /// The host's load averages when the cell's build started.
    pub host_load: Option<String>,
    /// `loads`, or what failed in the boot check (None: not built or not
    /// booted).
    pub load: Option<String>,
    /// The boot check's first failing step (`modprobe-siit`, ...).
    pub failed_step: Option<String>,
    /// Host seconds from QEMU's start to the guest's init.
    pub boot_to_init: Option<f64>,
    /// Kernel messages about Jool in the boot check.
    pub dmesg: Vec<String>,
    /// The cell folder's name.
    pub cell: String,
}

impl BuildRow {
    /// The row of the cell named `cell` with manifest `m`, booted or not.
    pub fn new(cell: &str, m: &Manifest, check: Option<&BootCheck>) -> Self {
        let s = |k: &str| m.get(k).map(str::to_owned);
        let n = |k: &str| m.get(k).and_then(|v| v.parse().ok());
        let origin = s("origin").unwrap_or_else(|| {
            match m.get("source") {
                Some(v) if v.starts_with("Debian") => "debian",
                Some(v) if v.starts_with("tree") => "src",
                _ => "git",
            }
            .to_owned()
        });
        Self {
            release: s("release").unwrap_or_default(),
            suite: s("suite").unwrap_or_default(),
            kernel: s("kernel").unwrap_or_default(),
            origin,
            source: s("source").unwrap_or_default(),
            result: s("result").unwrap_or_else(|| "built".into()),
            first_error: s("first_error"),
            module_error: s("module_error"),
            clients_error: s("clients_error"),
            jool_version: s("jool_version"),
            module_version: s("module_version"),
            build_seconds: n("build_seconds"),
            module_seconds: n("module_seconds"),
            clients_seconds: n("clients_seconds"),
            host_load: s("host_load"),
            load: check.map(|c| c.verdict.clone()),
            failed_step: check
                .and_then(BootCheck::failed_step)
                .map(str::to_owned),
            boot_to_init: check.and_then(|c| c.boot_to_init),
            dmesg: check.map(|c| c.dmesg.clone()).unwrap_or_default(),
            cell: cell.to_owned(),
        }
    }

    /// The row's words in the table.
    pub fn status(&self) -> &'static str {
        let step = self.failed_step.as_deref().unwrap_or("");
        match (self.result.as_str(), self.load.as_deref()) {
            ("built", Some("loads")) => "loads",
            ("built", Some(v)) if v.starts_with("boot failed") => "boot fails",
            ("built", Some(_)) if step.starts_with("modprobe") => {
                "does not load"
            }
            ("built", Some(_)) if step.starts_with("version") => {
                "--version fails"
            }
            ("built", Some(_)) if step.starts_with("instance") => {
                "instance add fails"
            }
            ("built", Some(_)) if step.starts_with("stats") => {
                "stats display fails"
            }
            ("built", Some(_)) => "check fails",
            ("built", None) => "built",
            ("module does not build", _) => "module fails",
            ("clients do not build", _) => "clients fail",
            _ => "?",
        }
    }
}

fn suite_rank(s: &str) -> usize {
    SUITES.iter().position(|x| *x == s).unwrap_or(SUITES.len())
}

/// Matrix order: origin (tags first), release, suite.
pub fn sort_rows(rows: &mut [BuildRow]) {
    rows.sort_by(|a, b| {
        (a.origin != "git")
            .cmp(&(b.origin != "git"))
            .then_with(|| a.origin.cmp(&b.origin))
            .then_with(|| cmp_release(&a.release, &b.release))
            .then_with(|| suite_rank(&a.suite).cmp(&suite_rank(&b.suite)))
    });
}

fn cmp_release(a: &str, b: &str) -> Ordering {
    jool_sim::versions::cmp_releases(a, b)
}

/// The Markdown of `fixtures/matrix/README.md` below its introduction:
/// the release x suite table of tag builds, Debian's packages, every
/// first error, and the timings.
pub fn markdown(rows: &[BuildRow]) -> String {
    let mut s = String::new();
    let git: Vec<&BuildRow> =
        rows.iter().filter(|r| r.origin == "git").collect();
    let kernel = |suite: &str| {
        rows.iter()
            .find(|r| r.suite == suite)
            .map_or("", |r| r.kernel.as_str())
    };
    s.push_str("## Jool's tags on each suite's kernel\n\n| release |");
    for suite in SUITES {
        let _ = write!(s, " {suite} ({}) |", kernel(suite));
    }
    s.push_str("\n| --- |");
    s.push_str(&" --- |".repeat(SUITES.len()));
    s.push('\n');
    let mut releases: Vec<&str> =
        git.iter().map(|r| r.release.as_str()).collect();
    releases.sort_by(|a, b| cmp_release(a, b));
    releases.dedup();
    for rel in &releases {
        let _ = write!(s, "| {rel} |");
        for suite in SUITES {
            let cell =
                git.iter().find(|r| r.release == *rel && r.suite == *suite);
            let _ = write!(s, " {} |", cell.map_or("", |r| r.status()));
        }
        s.push('\n');
    }
    let debian: Vec<&BuildRow> =
        rows.iter().filter(|r| r.origin == "debian").collect();
    if !debian.is_empty() {
        s.push_str("\n## Debian's packages (jool-dkms, jool-tools)\n\n");
        s.push_str("| kernel of | source | kernel | result | boot check |\n| --- | --- | --- | --- | --- |\n");
        for r in debian {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                r.suite,
                r.source,
                r.kernel,
                r.result,
                r.load.as_deref().unwrap_or("")
            );
        }
    }
    first_errors(&mut s, rows);
    timings(&mut s, rows);
    s
}

fn first_errors(s: &mut String, rows: &[BuildRow]) {
    let failed: Vec<&BuildRow> = rows
        .iter()
        .filter(|r| r.status() != "loads" && r.status() != "built")
        .collect();
    if failed.is_empty() {
        return;
    }
    s.push_str("\n## What fails, first error\n\n| release | suite | origin | fails | first error (or boot check) |\n| --- | --- | --- | --- | --- |\n");
    for r in failed {
        let why = r.first_error.as_deref().or(r.load.as_deref()).unwrap_or("");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | `{}` |",
            r.release,
            r.suite,
            r.origin,
            r.status(),
            why.replace('|', "\\|").replace('`', "'")
        );
    }
}

fn timings(s: &mut String, rows: &[BuildRow]) {
    s.push_str("\n## Build and boot times (seconds)\n\n| suite | cells | build median | build max | boot to init median | boot to init max |\n| --- | --- | --- | --- | --- | --- |\n");
    for suite in SUITES {
        let mine: Vec<&BuildRow> =
            rows.iter().filter(|r| r.suite == *suite).collect();
        if mine.is_empty() {
            continue;
        }
        let mut build: Vec<f64> = mine
            .iter()
            .filter_map(|r| r.build_seconds)
            .map(|v| v as f64)
            .collect();
        let mut boot: Vec<f64> =
            mine.iter().filter_map(|r| r.boot_to_init).collect();
        let _ = writeln!(
            s,
            "| {suite} | {} | {} | {} | {} | {} |",
            mine.len(),
            fmt(median(&mut build)),
            fmt(max(&build)),
            fmt(median(&mut boot)),
            fmt(max(&boot))
        );
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().max_by(f64::total_cmp)
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.1}"))
}

#[cfg(test)]
mod test {
    use super::*;

    fn row(
        release: &str,
        suite: &str,
        result: &str,
        load: Option<&str>,
    ) -> BuildRow {
        let m = Manifest::parse(&format!(
            "release={release}\nsuite={suite}\nkernel=k-{suite}\nsource=v{release} abc\nresult={result}\nfirst_error=x.c:1:2: error: no\nbuild_seconds=10\n"
        ));
        let check = load.map(|v| BootCheck {
            verdict: v.into(),
            kernel: None,
            steps: Vec::new(),
            dmesg: Vec::new(),
            boot_to_init: Some(5.0),
            boot_total: 9.0,
            guest_times: None,
        });
        BuildRow::new("cell", &m, check.as_ref())
    }

    #[test]
    fn test_status_words() {
        assert_eq!(
            row("4.1.9", "bookworm", "built", Some("loads")).status(),
            "loads"
        );
        let mut r =
            row("4.1.9", "bookworm", "built", Some("modprobe jool: exit 1"));
        r.failed_step = Some("modprobe-nat64".into());
        assert_eq!(r.status(), "does not load");
        r.failed_step = Some("instance-siit".into());
        assert_eq!(r.status(), "instance add fails");
        r.load = Some("boot failed: no power-off within 120 s".into());
        r.failed_step = None;
        assert_eq!(r.status(), "boot fails");
        assert_eq!(
            row("4.0.0", "sid", "module does not build", None).status(),
            "module fails"
        );
        assert_eq!(
            row("4.0.0", "sid", "clients do not build", None).status(),
            "clients fail"
        );
    }

    #[test]
    fn test_sort_and_table() {
        let mut rows = vec![
            row("4.1.10", "sid", "module does not build", None),
            row("4.1.9", "sid", "built", Some("loads")),
            row("4.1.10", "bullseye", "built", Some("loads")),
            row("4.1.9", "bullseye", "built", Some("loads")),
        ];
        sort_rows(&mut rows);
        let order: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.release.as_str(), r.suite.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("4.1.9", "bullseye"),
                ("4.1.9", "sid"),
                ("4.1.10", "bullseye"),
                ("4.1.10", "sid")
            ]
        );
        let md = markdown(&rows);
        assert!(md.contains("| release | bullseye (k-bullseye) | bookworm () | trixie () | sid (k-sid) |"), "{md}");
        assert!(md.contains("| 4.1.9 | loads |  |  | loads |\n| 4.1.10 | loads |  |  | module fails |"), "{md}");
        assert!(
            md.contains(
                "| 4.1.10 | sid | git | module fails | `x.c:1:2: error: no` |"
            ),
            "{md}"
        );
        assert!(md.contains("| sid | 2 | 10.0 | 10.0 | 5.0 | 5.0 |"), "{md}");
    }
}
