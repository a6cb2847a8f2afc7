//! The coverage report's lines: every line of Jool's modules that holds
//! a coverage point (a call to `__sanitizer_cov_trace_pc`, found from
//! the relocations with `readelf`), which phases reached it (locations
//! mapped to lines with `addr2line` on the modules' debug info), and the
//! text (`coverage.txt`) and HTML (`index.html`, `files/*.html`) tables.
//!
//! The HTML pages hold Jool's source (the build folder's copy): they stay
//! on the machine that made them; only `coverage.txt`'s numbers may be
//! committed.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    io::Write as _,
    path::Path,
    process::{Command, Stdio},
};

use super::{
    cover::{unloc, Loc, MODULES},
    error::{fs, Error, Result},
    setup::manifest,
};

/// Per file, per line: which phases reached it (`None`: the line has a
/// coverage point nobody reached).
pub type Lines = BTreeMap<String, BTreeMap<u32, [bool; 3]>>;

/// The offsets of `.text` that follow a call to
/// `__sanitizer_cov_trace_pc` in `ko`: its relocations plus 4.
fn points(ko: &Path) -> Result<Vec<u64>> {
    let o = Command::new("readelf")
        .arg("-rW")
        .arg(ko)
        .output()
        .map_err(|e| Error::io("run readelf (binutils)", e))?;
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
) -> Result<Vec<Option<(String, u32)>>> {
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
        .map_err(|e| Error::io("run addr2line (binutils)", e))?;
    // Piped just above.
    let mut stdin = child.stdin.take().expect("addr2line's stdin is piped");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let o = child
        .wait_with_output()
        .map_err(|e| Error::io("wait for addr2line", e))?;
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
///
/// # Errors
/// `readelf` or `addr2line` could not be run.
pub fn lines(mods: &Path, phases: &[BTreeSet<Loc>]) -> Result<Lines> {
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
pub fn write_html(
    dir: &Path,
    title: &str,
    cov: &Lines,
    mods: &Path,
) -> Result<()> {
    const STYLE: &str = "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right}td:first-child{text-align:left}pre{margin:0}.hit{background:#c8f0c8}.miss{background:#f5c6c6}.ln{color:#888;text-align:right;padding-right:8px}.ph{color:#555;padding-right:8px}</style>";
    fs::create_dir_all(&dir.join("files"))?;
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
    fs::write(&dir.join("index.html"), idx)?;
    Ok(())
}

fn write_file_page(
    dir: &Path,
    f: &str,
    l: &BTreeMap<u32, [bool; 3]>,
    mods: &Path,
) -> Result<()> {
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
    fs::write(&dir.join("files").join(page_name(f)), page)?;
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
}
