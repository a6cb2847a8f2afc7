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
    process::Command,
    time::Duration,
};

use jool_sim::versions::Profile;
use serde::{Deserialize, Serialize};

use super::{bail, release, Context, Error, Result};
use crate::{
    compat::predict::{Run, Shown, Verdict},
    host,
    suite::recipes,
    vm,
};

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
    let tmp = TempDir::new("check")?;
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

// ------------------------------------------------------------- the host

/// The folder of the real client of `release`: `bin/` and `lib/` taken
/// from its guest image with debugfs (cached beside the image).
pub fn client_bundle(release: &str, config: &vm::Config) -> Result<PathBuf> {
    let config = vm::Config { image: None, ..config.clone() };
    // Debian's packages where there are some; any other release's clients
    // from a cell built from its tag (`overlay/usr/bin`, the libraries
    // from the cell's base) on bookworm or trixie, whose glibc is one
    // file per library (bullseye's are links to libc-2.31.so and so on).
    let cell = (!DEBIAN_RELEASES.contains(&release))
        .then(|| {
            vm::cell::git_cells(release, &["bookworm", "trixie"])
                .into_iter()
                .next()
        })
        .flatten();
    let image = match &cell {
        Some(c) => c.clone(),
        None => vm::image_for(release, &config)?,
    };
    let key = image
        .file_name()
        .context("image folder without a name")?
        .to_string_lossy()
        .into_owned();
    let dir = image
        .parent()
        .and_then(Path::parent)
        .context("image folder without a cache folder")?
        .join("clients")
        .join(&key);
    if dir.join("complete").is_file() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin"))?;
    std::fs::create_dir_all(dir.join("lib"))?;
    let rootfs = image.join("rootfs.img");
    let debugfs = |req: &str| -> Result<String> {
        let o = Command::new("debugfs")
            .args(["-R", req])
            .arg(&rootfs)
            .output()
            .context("Failed to run debugfs (apt-get install e2fsprogs)")?;
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let dump = |from: &str, to: &Path| -> Result<()> {
        debugfs(&format!("dump {from} {}", to.display()))?;
        let len = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            bail!("{from} is not in {}", rootfs.display());
        }
        Command::new("chmod").arg("755").arg(to).status()?;
        Ok(())
    };
    for p in ["jool", "jool_siit"] {
        let to = dir.join("bin").join(p);
        match &cell {
            Some(c) => {
                std::fs::copy(c.join("overlay/usr/bin").join(p), &to)
                    .with_context(|| format!("{p} of {}", c.display()))?;
            }
            None => dump(&format!("/usr/bin/{p}"), &to)?,
        }
    }
    let libdir = "/usr/lib/x86_64-linux-gnu";
    let listing = debugfs(&format!("ls -l {libdir}"))?;
    for so in BUNDLE_LIBS {
        // A regular file named SONAME, or SONAME.x.y.z (SONAME a symlink).
        let file = listing
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let (mode, name) = (w.get(1)?, w.last()?);
                mode.starts_with("100").then_some(*name)
            })
            .find(|n| *n == *so || n.starts_with(&format!("{so}.")))
            .with_context(|| {
                format!("{so} is not in {libdir} of {}", rootfs.display())
            })?;
        dump(&format!("{libdir}/{file}"), &dir.join("lib").join(so))?;
    }
    std::fs::write(dir.join("complete"), format!("{release}\n"))?;
    Ok(dir)
}

/// What `versions real` found: every check, and a summary per module.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every check, in order.
    pub findings: Vec<Finding>,
    /// The per-module summaries, as text.
    pub summary: String,
}

/// Runs `jool-harness versions real`: captures each module (unless
/// `check_only`), writes `<module>.json` into `out`, and checks them.
pub fn run(opts: &RealOptions) -> Result<Outcome> {
    for r in opts.modules.iter().chain(&opts.clients) {
        if Profile::get(r).is_none() {
            bail!(
                "unknown release '{r}'; known releases: {}",
                Profile::names().join(" ")
            );
        }
    }
    let mut out = Outcome::default();
    for module in &opts.modules {
        let path = opts.out.join(format!("{module}.json"));
        if !opts.check_only {
            let c = capture(module, opts)?;
            std::fs::create_dir_all(&opts.out)?;
            std::fs::write(&path, serde_json::to_string_pretty(&c)? + "\n")?;
            eprintln!("versions real: wrote {}", path.display());
        }
        let c = load(&path)?;
        let f = check(&c)?;
        out.summary.push_str(&summary(&c, &f));
        out.findings.extend(f);
    }
    Ok(out)
}

/// A private folder (mkdtemp, 0700) removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Result<Self> {
        let template =
            std::env::temp_dir().join(format!("jool-harness-{what}-XXXXXX"));
        nix::unistd::mkdtemp(&template).map(Self).with_context(|| {
            format!("Failed to create {}", template.display())
        })
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Made by mkdtemp in `new`: ours to remove.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn capture(module: &str, args: &RealOptions) -> Result<Capture> {
    let share = TempDir::new("share")?;
    for c in &args.clients {
        let b = client_bundle(c, &args.vm)?;
        let st = Command::new("cp")
            .arg("-a")
            .arg(&b)
            .arg(share.path().join(c))
            .status()?;
        if !st.success() {
            bail!("Failed to copy {}", b.display());
        }
    }
    let guest = vm::Guest {
        args: [
            "versions",
            "real-guest",
            "--clients",
            "/h/bin/clients",
            "--out",
            "/h/out",
            "--release",
            module,
        ]
        .map(str::to_owned)
        .to_vec(),
        fixtures: None,
        extra_bin: vec![("clients".into(), share.path().to_owned())],
        script: None,
    };
    let guest = vm::boot_guest(module, &args.vm, &guest)?;
    let file = guest.out().join("cross.json");
    let text = match (guest.failure(), std::fs::read_to_string(&file)) {
        (None, Ok(t)) => t,
        (why, _) => {
            let kept = guest.keep_console(None);
            bail!(
                "the guest of {module} wrote no cross.json ({}); console in {}",
                why.unwrap_or("see guest.log above"),
                kept.display()
            );
        }
    };
    for (k, v) in guest.timings() {
        eprintln!("versions real: {module}: {k}: {v:.1} s");
    }
    let mut c: Capture =
        serde_json::from_str(&text).context("cross.json from the guest")?;
    if c.module != module {
        bail!("the {module} guest runs Jool {}", c.module);
    }
    let manifest = std::fs::read_to_string(guest.image().join("manifest"))
        .unwrap_or_default();
    c.image = manifest
        .lines()
        .filter(|l| {
            !l.starts_with("built=") && !l.starts_with("build_seconds=")
        })
        .map(str::to_owned)
        .collect();
    Ok(c)
}

// ------------------------------------------------------------ the guest

const TIMEOUT: Duration = Duration::from_secs(30);

fn sh_ok(script: &str) -> Result<()> {
    let o = host::run(&["sh".into(), "-c".into(), script.into()], TIMEOUT)
        .map_err(Error::Command)?;
    if o.status != 0 {
        bail!("`{script}` failed ({}): {}{}", o.status, o.stdout, o.stderr);
    }
    Ok(())
}

fn run_in(netns: &str, argv: Vec<String>) -> Result<(i32, String, String)> {
    let mut full: Vec<String> =
        ["ip", "netns", "exec", netns].map(str::to_owned).to_vec();
    full.extend(argv);
    let o = host::run(&full, TIMEOUT).map_err(Error::Command)?;
    Ok((o.status, o.stdout, o.stderr))
}

/// Runs `jool-harness versions real-guest` (inside the guest, as root).
pub fn guest(args: &GuestOptions) -> Result<()> {
    if !host::is_root() {
        bail!("versions real-guest needs root (namespaces, modprobe)");
    }
    sh_ok("modprobe jool_siit && modprobe jool")?;
    let loaded = host::installed_release()
        .context("cannot read the loaded Jool's version")?;
    // The release the module is (4.2.0-rc3 says 4.1.255, main today
    // 4.1.15: `host::module_is` compares wire versions).
    let module = match &args.release {
        Some(r) if host::module_is(r) => r.clone(),
        Some(r) => {
            bail!("--release {r} asked, but this kernel runs Jool {loaded}")
        }
        None => loaded,
    };
    // Executables on 9p are read again at every exec: copy them.
    let tmp = TempDir::new("cross")?;
    let root = tmp.path().join("clients");
    sh_ok(&format!(
        "cp -a '{}' '{}'",
        args.clients.display(),
        root.display()
    ))?;
    let mut bundles: Vec<String> = std::fs::read_dir(&root)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    bundles.sort_by(|a, b| jool_sim::versions::cmp_releases(a, b));
    // jool-stats under the programs' names.
    let js = vm::jool_stats_binary()?;
    let js_dir = tmp.path().join("jool-stats");
    std::fs::create_dir_all(&js_dir)?;
    for (_, _, p) in INSTANCES {
        std::os::unix::fs::symlink(&js, js_dir.join(p))?;
    }

    let mut recipe = Vec::new();
    for t in ["siit", "nat64"] {
        let topo = recipes::topology(t).context("topology")?;
        for s in topo.setup {
            sh_ok(s)?;
            recipe.push((*s).to_owned());
        }
    }
    for t in recipes::all_traffic() {
        // Unanswered pings are the point of some recipes.
        let _ =
            host::run(&["sh".into(), "-c".into(), t.script.into()], TIMEOUT);
        recipe.push(t.script.to_owned());
    }
    // Freeze the counters: no interface but lo is left in the
    // translators' namespaces.
    let freeze = "ip -n siit link del s6a && ip -n siit link del s4a && ip -n nat link del n6a && ip -n nat link del n4a";
    sh_ok(freeze)?;
    recipe.push(freeze.to_owned());
    std::thread::sleep(Duration::from_millis(300));

    let counters = |who: &str| -> Result<BTreeMap<String, String>> {
        let mut m = BTreeMap::new();
        for (x, ns, p) in INSTANCES {
            let (st, out, err) = run_in(
                ns,
                vec![
                    (*p).to_owned(),
                    "stats".into(),
                    "display".into(),
                    "--all".into(),
                    "--csv".into(),
                ],
            )?;
            if st != 0 {
                bail!("{who}: {p} stats display --all --csv failed ({st}): {err}");
            }
            m.insert((*x).to_owned(), out);
        }
        Ok(m)
    };
    let before = counters("before")?;

    let mut runs = Vec::new();
    let mut record = |kind: Kind,
                      release: &str,
                      program: &str,
                      ns: &str,
                      flags: &[&str],
                      argv: Vec<String>|
     -> Result<()> {
        let mut argv = argv;
        argv.extend(["stats".to_owned(), "display".to_owned()]);
        argv.extend(flags.iter().map(|f| (*f).to_owned()));
        let (status, stdout, stderr) = run_in(ns, argv)?;
        runs.push(Record {
            kind,
            release: release.to_owned(),
            program: program.to_owned(),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            status,
            stdout,
            stderr,
        });
        Ok(())
    };
    for (_, ns, p) in INSTANCES {
        for flags in FLAG_SETS {
            for b in &bundles {
                let dir = root.join(b);
                let ld = dir.join("lib/ld-linux-x86-64.so.2");
                record(
                    Kind::Real,
                    b,
                    p,
                    ns,
                    flags,
                    vec![
                        ld.display().to_string(),
                        "--library-path".into(),
                        dir.join("lib").display().to_string(),
                        "--argv0".into(),
                        (*p).to_owned(),
                        dir.join("bin").join(p).display().to_string(),
                    ],
                )?;
                record(
                    Kind::JoolStats,
                    b,
                    p,
                    ns,
                    flags,
                    vec![
                        js_dir.join(p).display().to_string(),
                        "--client-version".into(),
                        b.clone(),
                    ],
                )?;
            }
            record(
                Kind::Native,
                &module,
                p,
                ns,
                flags,
                vec![(*p).to_owned()],
            )?;
            record(
                Kind::JoolStats,
                "auto",
                p,
                ns,
                flags,
                vec![js_dir.join(p).display().to_string()],
            )?;
        }
    }
    let after = counters("after")?;
    let uname = host::run(&["uname".into(), "-r".into()], TIMEOUT)
        .map(|o| o.stdout.trim().to_owned())
        .unwrap_or_default();
    let c = Capture {
        module,
        kernel: uname,
        recipe,
        image: Vec::new(),
        counters: before,
        counters_after: after,
        runs,
    };
    let _ = sh_ok("for n in siit s6 s4 nat n6 n4; do ip netns del $n; done");
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("cross.json"), serde_json::to_string(&c)?)?;
    eprintln!("versions real-guest: {} runs written", c.runs.len());
    Ok(())
}
