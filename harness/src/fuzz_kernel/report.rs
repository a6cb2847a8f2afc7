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
//! to lines with `addr2line` on the modules' debug info ([`lines`]); the
//! lines that hold a coverage point (a call to
//! `__sanitizer_cov_trace_pc`, found from the relocations) are the
//! denominator.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::Path,
    process::{Command, ExitCode, Stdio},
    time::Instant,
};

use anyhow::{bail, Context};
use jool_sim::versions::Profile;

use super::{
    cover::{self, loc, unloc, Loc, ModuleMap, MODULES},
    discover,
    guest::{self, GuestPlan, Task},
    host::{self, Target},
    request::{map_type, replace_all, FAMILY_PLACEHOLDER, TAG_PLACEHOLDER},
    seeds,
    target::{KernelUnderTest, RealKernel},
    FuzzKernelArgs,
};

/// The phases, in order.
pub const PHASES: [&str; 3] = ["suites", "conformance", "fuzzing"];

/// Set in the child that replays a phase's requests.
const PHASE_ENV: &str = "JOOL_FUZZ_COVER_PHASE";

fn write_locs(path: &Path, locs: &[Loc]) -> anyhow::Result<()> {
    let text: String = locs
        .iter()
        .map(|l| {
            let (m, off) = unloc(*l);
            format!("{m} {off:x}\n")
        })
        .collect();
    std::fs::write(path, text).with_context(|| format!("{}", path.display()))
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
) -> anyhow::Result<ExitCode> {
    // Holding the device keeps jool_kcov (and its set) loaded while the
    // suites modprobe -r Jool; jool_common is never removed, so its code
    // stays where the set saw it.
    let _pin = std::fs::File::open(cover::DEVICE)?;
    std::fs::write(
        "/etc/modprobe.d/jool-cover.conf",
        "remove jool_common /bin/true\n",
    )?;
    std::fs::create_dir_all(out_dir)?;
    let release = match &plan.profile {
        Some(p) => p.clone(),
        None => guest::installed_release().context("no Jool loaded")?,
    };
    let mut log = String::new();
    for phase in PHASES {
        cover::set_global(true)?;
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
                .status()?
        } else {
            guest::reexec_in_netns(&[(PHASE_ENV, phase)])?
        };
        let map = ModuleMap::read(Path::new("/sys/module"));
        let locs = cover::global_set(&map)?;
        write_locs(&out_dir.join(format!("locs-{phase}.txt")), &locs)?;
        let _ = writeln!(
            log,
            "{phase}: {status}, {} locations, {:.1} s",
            locs.len(),
            t.elapsed().as_secs_f64()
        );
    }
    cover::set_global(false)?;
    std::fs::write(out_dir.join("phases.txt"), &log)?;
    eprint!("{log}");
    Ok(ExitCode::SUCCESS)
}

/// The child's part of a phase: the conformance requests, or the seeds
/// and the corpus, after the base state (restored every 200 requests).
pub(super) fn netns_phase(
    k: &mut RealKernel,
    p: &'static Profile,
    args: &FuzzKernelArgs,
    plan: &GuestPlan,
) -> anyhow::Result<ExitCode> {
    let phase = std::env::var(PHASE_ENV).unwrap_or_default();
    let d = discover::discover(k, p).map_err(anyhow::Error::msg)?;
    let conf =
        args.conformance.clone().unwrap_or_else(super::default_conformance);
    let mut reqs = seeds::conformance_dir(&conf, d.netns_tag)
        .map_err(anyhow::Error::msg)?;
    if phase == "fuzzing" {
        reqs.extend(seeds::built_seeds(p, d.netns_tag));
        if let Some(c) = &plan.corpus {
            reqs.extend(seeds::dir_seeds(c, "corpus", 0, usize::MAX));
        }
    }
    let base = discover::base_requests(p);
    for (i, s) in reqs.iter().enumerate() {
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
    eprintln!("coverage phase {phase}: {} requests", reqs.len());
    Ok(ExitCode::SUCCESS)
}

/// Runs `--coverage-report DIR`.
pub fn run(args: &FuzzKernelArgs, dir: &Path) -> anyhow::Result<ExitCode> {
    let release = super::release_of(args);
    super::profile_of(&release)?;
    if args.modules == "stock" {
        bail!("--coverage-report needs instrumented modules (--modules auto or a folder)");
    }
    let t = host::target(args, &release)?;
    let mods = t.modules.clone().context("no modules")?;
    let locs = collect(args, &t, &mods)?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}", dir.display()))?;
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
    std::fs::write(dir.join("coverage.txt"), &text)?;
    write_html(dir, &title, &cov, &mods)?;
    print!("{text}");
    println!("report: {}", dir.join("index.html").display());
    Ok(ExitCode::SUCCESS)
}

fn manifest(dir: &Path, key: &str) -> String {
    std::fs::read_to_string(dir.join("manifest"))
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix(&format!("{key}=")).map(str::to_owned)
            })
        })
        .unwrap_or_default()
}

/// Boots the coverage guest; the locations of each phase.
fn collect(
    args: &FuzzKernelArgs,
    t: &Target,
    mods: &Path,
) -> anyhow::Result<Vec<BTreeSet<Loc>>> {
    let work = host::private_dir("cover")?;
    let staged = work.join("fkmods");
    host::stage_modules(mods, t.kasan.as_deref(), &staged)?;
    let corpus = work.join("fkcorpus");
    std::fs::create_dir_all(&corpus)?;
    let corpus_src = host::corpus_dir(args, &t.release);
    if corpus_src.is_dir() {
        host::copy_dir(&corpus_src, &corpus)?;
    }
    let plan_dir = work.join("fk");
    std::fs::create_dir_all(&plan_dir)?;
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
    std::fs::write(
        plan_dir.join("plan.json"),
        serde_json::to_string_pretty(&plan)?,
    )?;
    let words: Vec<String> = [
        "fuzz-kernel",
        "--backend",
        "kernel",
        "--quiet-console",
        "--conformance",
        "/h/fixtures/conformance-4.1.9",
        "--guest-plan",
        "/h/bin/fk/plan.json",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .canonicalize()?;
    let mut vm = (*args.vm).clone();
    vm.image = Some(t.image.clone());
    vm.timeout = vm.timeout.max(900);
    let extra: [(&str, &Path); 3] =
        [("fkmods", &staged), ("fkcorpus", &corpus), ("fk", &plan_dir)];
    let guest = crate::vm::boot_guest_words(
        &t.release, &vm, &fixtures, &words, &extra,
    );
    let _ = std::fs::remove_dir_all(&work);
    let guest = guest?;
    for (what, secs) in guest.timings() {
        eprintln!("  {what}: {secs:.1} s");
    }
    let out = guest.out().join("cover");
    if !out.join("phases.txt").exists() {
        let kept = guest.keep_console(&vm, None);
        bail!(
            "the coverage guest wrote no phases.txt (console: {})",
            kept.display()
        );
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

/// Per file, per line: which phases reached it (`None`: the line has a
/// coverage point nobody reached).
pub type Lines = BTreeMap<String, BTreeMap<u32, [bool; 3]>>;

/// The offsets of `.text` that follow a call to
/// `__sanitizer_cov_trace_pc` in `ko`: its relocations plus 4.
fn points(ko: &Path) -> anyhow::Result<Vec<u64>> {
    let o = Command::new("readelf")
        .arg("-rW")
        .arg(ko)
        .output()
        .context("Failed to run readelf")?;
    let text = String::from_utf8_lossy(&o.stdout);
    let mut in_text = false;
    let mut v = Vec::new();
    for l in text.lines() {
        if l.starts_with("Relocation section") {
            in_text = l.contains("'.rela.text'");
            continue;
        }
        if in_text && l.contains("__sanitizer_cov_trace_pc") {
            if let Some(off) = l
                .split_whitespace()
                .next()
                .and_then(|w| u64::from_str_radix(w, 16).ok())
            {
                v.push(off + 4);
            }
        }
    }
    Ok(v)
}

/// `file:line` of each address of `.text` in `ko` (the call before each
/// return address), with the build folder's prefix removed.
fn addr_lines(
    ko: &Path,
    addrs: &[u64],
    strip: &str,
) -> anyhow::Result<Vec<Option<(String, u32)>>> {
    let input: String = addrs
        .iter()
        .map(|a| format!("{:#x}\n", a.saturating_sub(1)))
        .collect();
    let mut child = Command::new("addr2line")
        .args(["-j", ".text", "-e"])
        .arg(ko)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("Failed to run addr2line")?;
    let mut stdin = child.stdin.take().context("addr2line stdin")?;
    let writer = std::thread::spawn(move || {
        std::io::Write::write_all(&mut stdin, input.as_bytes())
    });
    let o = child.wait_with_output()?;
    let _ = writer.join();
    Ok(String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let l = l.split(" (discriminator").next().unwrap_or(l);
            let (file, line) = l.rsplit_once(':')?;
            let line: u32 = line.trim().parse().ok().filter(|n| *n > 0)?;
            let file = file
                .strip_prefix(strip)
                .unwrap_or(file)
                .trim_start_matches('/');
            Some((file.to_owned(), line))
        })
        .collect())
}

/// Maps every coverage point and every reached location to lines.
pub fn lines(mods: &Path, phases: &[BTreeSet<Loc>]) -> anyhow::Result<Lines> {
    let strip = manifest(mods, "build_root");
    let mut out = Lines::new();
    for (i, m) in MODULES.iter().enumerate() {
        let ko = mods.join(format!("{m}.ko"));
        let pts = points(&ko)?;
        let ls = addr_lines(&ko, &pts, &strip)?;
        let mut by_off = BTreeMap::new();
        for (off, fl) in pts.iter().zip(ls) {
            if let Some((f, l)) = fl {
                out.entry(f.clone())
                    .or_default()
                    .entry(l)
                    .or_insert([false; 3]);
                by_off.insert(*off, (f, l));
            }
        }
        for (k, set) in phases.iter().enumerate() {
            for l in set.iter().filter(|l| (**l >> 56) as usize == i) {
                let Some((f, line)) = by_off.get(&unloc(*l).1) else {
                    continue;
                };
                if let Some(x) = out.get_mut(f).and_then(|m| m.get_mut(line)) {
                    x[k] = true;
                }
            }
        }
    }
    Ok(out)
}

/// Lines with a point, and those reached by each phase and by any.
fn counts(lines: &BTreeMap<u32, [bool; 3]>) -> (usize, [usize; 4]) {
    let mut c = [0; 4];
    for v in lines.values() {
        for k in 0..3 {
            c[k] += usize::from(v[k]);
        }
        c[3] += usize::from(v.iter().any(|x| *x));
    }
    (lines.len(), c)
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / d as f64)
    }
}

/// A named group of files.
type Group = (&'static str, fn(&str) -> bool);

/// Whether a file is Jool's (not a kernel header inlined into it).
fn is_jool(f: &str) -> bool {
    f.starts_with("src/")
}

/// The groups totalled: the netlink code, the databases it reaches,
/// Jool's other files, all of Jool; and apart, the kernel headers whose
/// inline functions are compiled into Jool's objects.
fn groups() -> [Group; 5] {
    [
        ("src/mod/common/nl/ (netlink handlers)", |f| {
            f.starts_with("src/mod/common/nl/")
        }),
        ("src/mod/common/db/ (what they change)", |f| {
            f.starts_with("src/mod/common/db/")
        }),
        ("other Jool files", |f| {
            is_jool(f)
                && !f.starts_with("src/mod/common/nl/")
                && !f.starts_with("src/mod/common/db/")
        }),
        ("TOTAL (Jool's files)", is_jool),
        ("kernel headers (inlined into Jool)", |f| !is_jool(f)),
    ]
}

/// The text table: per file, then per group.
pub fn text_report(title: &str, cov: &Lines) -> String {
    let mut s = format!(
        "{title}: lines of Jool's modules holding a coverage point, and the share reached\n\n{:<48} {:>6} {:>8} {:>12} {:>8} {:>8}\n",
        "File", "Lines", "suites", "conformance", "fuzzing", "any"
    );
    let row = |s: &mut String, name: &str, n: usize, c: [usize; 4]| {
        let _ = writeln!(
            s,
            "{name:<48} {n:>6} {:>8} {:>12} {:>8} {:>8}",
            pct(c[0], n),
            pct(c[1], n),
            pct(c[2], n),
            pct(c[3], n)
        );
    };
    for (f, l) in cov.iter().filter(|(f, _)| is_jool(f)) {
        let (n, c) = counts(l);
        row(&mut s, f, n, c);
    }
    s.push('\n');
    for (name, pick) in groups() {
        let mut all = BTreeMap::new();
        for (i, (_, l)) in cov.iter().filter(|(f, _)| pick(f)).enumerate() {
            for (line, v) in l {
                all.insert((i, *line), *v);
            }
        }
        let (mut n, mut c) = (0, [0; 4]);
        for v in all.values() {
            n += 1;
            for k in 0..3 {
                c[k] += usize::from(v[k]);
            }
            c[3] += usize::from(v.iter().any(|x| *x));
        }
        row(&mut s, name, n, c);
    }
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn page_name(f: &str) -> String {
    f.replace(['/', '.'], "_") + ".html"
}

/// `index.html` (the table, linked) and `files/*.html` (each source line
/// coloured: reached, not reached, no coverage point).
fn write_html(
    dir: &Path,
    title: &str,
    cov: &Lines,
    mods: &Path,
) -> anyhow::Result<()> {
    const STYLE: &str = "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right}td:first-child{text-align:left}pre{margin:0}.hit{background:#c8f0c8}.miss{background:#f5c6c6}.ln{color:#888;text-align:right;padding-right:8px}.ph{color:#555;padding-right:8px}</style>";
    std::fs::create_dir_all(dir.join("files"))?;
    let mut idx = format!("<!doctype html><meta charset=utf-8><title>{0}</title>{STYLE}<h1>{0}</h1><p>Lines holding a coverage point; phases: S suites, C conformance, F fuzzing corpus.</p><table><tr><th>File<th>Lines<th>suites<th>conformance<th>fuzzing<th>any", escape(title));
    for (f, l) in cov.iter().filter(|(f, _)| is_jool(f)) {
        let (n, c) = counts(l);
        let _ = write!(
            idx,
            "<tr><td><a href=\"files/{}\">{}</a><td>{n}<td>{}<td>{}<td>{}<td>{}",
            page_name(f),
            escape(f),
            pct(c[0], n),
            pct(c[1], n),
            pct(c[2], n),
            pct(c[3], n)
        );
        write_file_page(dir, f, l, mods)?;
    }
    idx.push_str("</table><pre>");
    idx.push_str(&escape(&text_report(title, cov)));
    idx.push_str("</pre>");
    std::fs::write(dir.join("index.html"), idx)?;
    Ok(())
}

fn write_file_page(
    dir: &Path,
    f: &str,
    l: &BTreeMap<u32, [bool; 3]>,
    mods: &Path,
) -> anyhow::Result<()> {
    let src = std::fs::read_to_string(mods.join(f)).unwrap_or_default();
    let mut page = format!("<!doctype html><meta charset=utf-8><title>{0}</title><style>.hit{{background:#c8f0c8}}.miss{{background:#f5c6c6}}td{{padding:0 6px;font-family:monospace;white-space:pre}}</style><h2>{0}</h2><table>", escape(f));
    for (i, text) in src.lines().enumerate() {
        let n = i as u32 + 1;
        let (class, phases) = match l.get(&n) {
            Some(v) if v.iter().any(|x| *x) => {
                let p: String = ['S', 'C', 'F']
                    .iter()
                    .zip(v)
                    .filter(|(_, x)| **x)
                    .map(|(c, _)| *c)
                    .collect();
                ("hit", p)
            }
            Some(_) => ("miss", String::new()),
            None => ("", String::new()),
        };
        let _ = write!(
            page,
            "<tr class=\"{class}\"><td>{n}<td>{phases}<td>{}",
            escape(text)
        );
    }
    page.push_str("</table>");
    std::fs::write(dir.join("files").join(page_name(f)), page)?;
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_text_report_totals() {
        let mut cov = Lines::new();
        cov.entry("src/mod/common/nl/pool4.c".into())
            .or_default()
            .extend([(10, [true, false, true]), (11, [false; 3])]);
        cov.entry("src/mod/common/db/eam.c".into())
            .or_default()
            .extend([(5, [false, true, false])]);
        let t = text_report("Jool 4.1.9", &cov);
        let nl = t
            .lines()
            .find(|l| l.starts_with("src/mod/common/nl/ (netlink"))
            .unwrap();
        assert!(nl.contains(" 2 ") && nl.ends_with("50.0%"), "{nl}");
        cov.entry("usr/src/linux-headers/include/linux/skbuff.h".into())
            .or_default()
            .extend([(1, [false; 3])]);
        let t = text_report("Jool 4.1.9", &cov);
        let total = t.lines().find(|l| l.starts_with("TOTAL")).unwrap();
        assert!(total.ends_with("66.7%"), "{total}");
        let headers =
            t.lines().find(|l| l.starts_with("kernel headers")).unwrap();
        assert!(headers.ends_with("0.0%"), "{headers}");
        assert!(!t.contains("\nusr/src"), "{t}");
    }

    #[test]
    fn test_locs_roundtrip() {
        let dir = std::env::temp_dir()
            .join(format!("jool-locs-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("l.txt");
        write_locs(&p, &[loc(0, 0x10), loc(2, 0xabc)]).unwrap();
        assert_eq!(
            read_locs(&p),
            [loc(0, 0x10), loc(2, 0xabc)].into_iter().collect()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
