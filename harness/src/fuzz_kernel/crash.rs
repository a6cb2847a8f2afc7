//! From crash to report, on the host: every crash a guest left (a kernel
//! log report, a fuzzing process killed by an oops, or a guest that died
//! in a panic) becomes `ARTIFACTS/crash/NAME/` with
//!
//! - `info.txt`: release, kernel, modules, seed, guest, request index,
//!   how it was seen;
//! - `kernel.log` and `stack.txt` (symbolized, [`super::stack`]);
//! - `sequence.journal` / `sequence.hex`: the requests since the base
//!   state was last restored, the last one being the crashing one;
//! - `minimized.journal` / `minimized.hex`: the shortest sequence found
//!   that still crashes a fresh guest (replayed in guests, [`replays`]);
//! - `repro.c`: a standalone reproducer of it ([`super::repro`]);
//! - `README.md`: how to use them.
//!
//! Requests are kept with the family-id placeholder and the namespace-tag
//! placeholder, so they replay on any kernel.

use std::path::Path;

use jool_sim::wire::hex;

use super::{
    discover::Discovery,
    error::{fs, Error, Result},
    fleet::GuestResult,
    guest::Task,
    journal::{self, Entry, Journal},
    repro,
    request::{map_type, replace_all, FAMILY_PLACEHOLDER, TAG_PLACEHOLDER},
    setup::{self, Target, SHARED},
    stack,
    summary::Crash,
    target::is_crash_line,
    Settings,
};

/// Most guest boots one minimization may take.
const MAX_MINIMIZE_BOOTS: usize = 16;

/// The crash lines of a console: from the first crash-like line of the
/// kernel's log on (at most 120 lines). Only the kernel's lines (`[  time]`
/// prefix) count: userspace writes to the console too (the initramfs's
/// "modprobe: WARNING: Module 9p not found" on the KASAN kernel, whose
/// drivers are built in).
pub fn console_crash(console: &str) -> Vec<String> {
    let lines: Vec<&str> = console.lines().collect();
    let Some(start) = lines.iter().position(|l| {
        printk_time(l).is_some()
            && (is_crash_line(l) || l.contains("Kernel panic"))
    }) else {
        return Vec::new();
    };
    lines[start..].iter().take(120).map(|l| l.trim_end().to_owned()).collect()
}

/// The build folder the modules' debug info names, with a slash.
fn build_root(modules: &Path) -> String {
    std::fs::read_to_string(modules.join("manifest"))
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix("build_root=").map(|r| format!("{r}/"))
            })
        })
        .unwrap_or_default()
}

/// The seconds from the fuzz loop's start (guest.log: "fuzz loop starts
/// at uptime X") to the first crash line's printk time (`[  T]`).
fn panic_seconds(guest_log: &str, lines: &[String]) -> Option<f64> {
    let start: f64 = guest_log
        .lines()
        .find_map(|l| l.split("fuzz loop starts at uptime ").nth(1))?
        .trim()
        .parse()
        .ok()?;
    let t = lines.iter().find_map(|l| printk_time(l))?;
    Some(t - start)
}

/// The printk time of a kernel log line on the console (`[    7.361649]
/// ...`), or `None` for another line.
fn printk_time(l: &str) -> Option<f64> {
    l.trim_start().strip_prefix('[')?.split(']').next()?.trim().parse().ok()
}

/// Maps a guest's requests back to the placeholders.
fn portable(entries: Vec<Entry>, d: &Discovery) -> Vec<Entry> {
    entries
        .into_iter()
        .map(|mut e| {
            map_type(&mut e.request, d.family_id, FAMILY_PLACEHOLDER);
            if d.netns_tag != 0 {
                replace_all(
                    &mut e.request,
                    &d.netns_tag.to_le_bytes(),
                    &TAG_PLACEHOLDER,
                );
            }
            e
        })
        .collect()
}

/// Writes `entries` as a journal file and as hex (`ext_ack hex` lines).
fn write_sequence(dir: &Path, name: &str, entries: &[Entry]) -> Result<()> {
    let path = dir.join(format!("{name}.journal"));
    write_journal(&path, entries)?;
    let text: String = entries
        .iter()
        .map(|e| {
            format!("{} {}\n", u8::from(e.ext_ack), hex::encode(&e.request))
        })
        .collect();
    fs::write(&dir.join(format!("{name}.hex")), text)
}

/// Writes `entries` as a journal file.
fn write_journal(path: &Path, entries: &[Entry]) -> Result<()> {
    let mut j = Journal::create(path).map_err(Error::at("create", path))?;
    for e in entries {
        j.append(e).map_err(Error::at("write", path))?;
    }
    Ok(())
}

/// One guest's crash, before it is written.
struct Found {
    how: String,
    exec: u64,
    lines: Vec<String>,
    seconds: Option<f64>,
}

/// What guest `r` crashed on, if it did.
fn found(r: &GuestResult) -> Option<Found> {
    match &r.summary {
        Some(s) => s.crashes.first().map(|c| Found {
            how: if s.stopped.contains("died") {
                s.stopped.clone()
            } else {
                "the kernel log (the process lived)".into()
            },
            exec: c.exec,
            lines: c.lines.clone(),
            seconds: s.first_crash_seconds,
        }),
        None => {
            let lines = console_crash(&r.console);
            let log = std::fs::read_to_string(r.dir.join("guest.log"))
                .unwrap_or_default();
            (!lines.is_empty()).then(|| Found {
                how: "the guest died (panic; console)".into(),
                exec: 0,
                seconds: panic_seconds(&log, &lines),
                lines,
            })
        }
    }
}

/// What identifies a crash: its first report line without addresses,
/// the RIP's function and the first two module frames under it.
pub fn signature(lines: &[String]) -> String {
    let title = lines
        .iter()
        .find(|l| {
            is_crash_line(l)
                && !l.contains("RIP:")
                && !l.contains("Call Trace")
        })
        .map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .map_or(l, |(_, r)| r.trim());
            let l = l.split(", address:").next().unwrap_or(l);
            without_task(l.split(" at ").next().unwrap_or(l))
        })
        .unwrap_or_default();
    let frames: Vec<String> = lines
        .iter()
        .filter_map(|l| stack::parse_frame(l).map(|f| (f, l.contains("RIP:"))))
        .filter(|(f, rip)| *rip || (f.module.is_some() && !f.uncertain))
        .take(3)
        .map(|(f, _)| f.func)
        .collect();
    format!("{title} | {}", frames.join(" < "))
}

/// `title` without a WARNING's `CPU: N PID: N` (which task hit it).
fn without_task(title: &str) -> String {
    let mut words = title.split_whitespace();
    let mut kept = Vec::new();
    while let Some(w) = words.next() {
        if w == "CPU:" || w == "PID:" {
            words.next();
        } else {
            kept.push(w);
        }
    }
    kept.join(" ")
}

/// Turns every guest's crash into a crash folder under
/// `ARTIFACTS/crash/` (one per [`signature`]: the others are counted in
/// `crash/signatures.txt`); returns them as summary entries (dir
/// relative to the artifacts).
pub fn collect(
    args: &Settings,
    t: &Target,
    results: &[GuestResult],
) -> Result<Vec<Crash>> {
    let mut out = Vec::new();
    let mut seen: std::collections::BTreeMap<String, (String, usize)> =
        Default::default();
    for r in results {
        let Some(f) = found(r) else { continue };
        let sig = signature(&f.lines);
        if let Some((_, n)) = seen.get_mut(&sig) {
            *n += 1;
            continue;
        }
        let d: Discovery =
            std::fs::read_to_string(r.dir.join("discovery.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
        let mut seq = portable(journal::read(&r.dir.join("journal.bin")), &d);
        // The journal runs ahead of what was sent (a batch at a time): cut
        // it at the crashing request, known or found by replaying.
        if f.exec > 0 {
            seq.retain(|e| e.exec <= f.exec);
        } else if !seq.is_empty() {
            eprintln!("fuzz-kernel: replaying the {} journaled requests to find the crashing one", seq.len());
            if let Some(Some(i)) = replay(args, t, &seq)? {
                seq.truncate(i + 1);
            }
        }
        let exec = seq.last().map_or(f.exec, |e| e.exec);
        let name = format!(
            "{}-guest{}.{}-seed{}-exec{exec}",
            t.release, r.index, r.run, r.seed
        );
        seen.insert(sig.clone(), (name.clone(), 1));
        let rel = format!("crash/{name}");
        let dir = args.artifacts.join(&rel);
        fs::create_dir_all(&dir)?;
        let info = format!(
            "{}seed={}\nguest={}.{}\nexec={exec}\nsignature={sig}\nseen_by={}\nseconds_to_crash={}\nfamily_id_in_guest={:#x}\n",
            t.describe(),
            r.seed,
            r.index,
            r.run,
            f.how,
            f.seconds.map_or("unknown".into(), |s| format!("{s:.1}")),
            d.family_id,
        );
        fs::write(&dir.join("info.txt"), &info)?;
        fs::write(&dir.join("kernel.log"), f.lines.join("\n") + "\n")?;
        let vmlinux = t.kasan.as_ref().map(|k| k.join("vmlinux"));
        let strip = t.modules.as_deref().map(build_root).unwrap_or_default();
        let st = stack::symbolize(
            &f.lines,
            t.modules.as_deref(),
            vmlinux.as_deref(),
            &strip,
        );
        fs::write(&dir.join("stack.txt"), &st)?;
        write_sequence(&dir, "sequence", &seq)?;
        let minimized = if args.no_minimize || seq.is_empty() {
            None
        } else {
            minimize(args, t, &seq)?
        };
        let chosen = minimized.as_deref().unwrap_or(&seq);
        if let Some(m) = &minimized {
            write_sequence(&dir, "minimized", m)?;
        }
        let p = super::profile_of(t.profile.as_deref().unwrap_or(&t.release))?;
        fs::write(&dir.join("repro.c"), repro::c_source(p, &info, chosen))?;
        fs::write(
            &dir.join("README.md"),
            readme(&name, &f, &seq, minimized.as_deref(), &st),
        )?;
        out.push(Crash {
            exec,
            request_hex: seq
                .last()
                .map(|e| hex::encode(&e.request))
                .unwrap_or_default(),
            lines: f.lines,
            dir: Some(rel),
        });
    }
    if !seen.is_empty() {
        let text: String = seen
            .iter()
            .map(|(sig, (name, n))| format!("{n}\t{name}\t{sig}\n"))
            .collect();
        fs::write(&args.artifacts.join("crash/signatures.txt"), text)?;
    }
    Ok(out)
}

fn readme(
    name: &str,
    f: &Found,
    seq: &[Entry],
    min: Option<&[Entry]>,
    stack: &str,
) -> String {
    let title = f
        .lines
        .iter()
        .find(|l| is_crash_line(l))
        .map_or("crash", |l| l.as_str());
    format!(
        "# {name}\n\n`{}`\n\nSeen by: {}. Requests since the base state: {} (`sequence.hex`); minimized: {}.\n\n\
         ## Reproduce\n\n```sh\n# On a machine (or throwaway VM) with Jool's modules loaded, as root:\n\
         gcc -O1 -static -o repro repro.c && ./repro\n# Or in a fresh guest of this project:\n\
         jool-harness fuzz-kernel --reproduce {}\n```\n\n## Stack\n\n```\n{stack}```\n",
        title.trim(),
        f.how,
        seq.len(),
        min.map_or("not done (or it did not crash on replay)".into(), |m| format!("{} request(s) (`minimized.hex`)", m.len())),
        "ARTIFACTS/crash/".to_owned() + name,
    )
}

/// Whether replaying `seq` after the base state crashes a fresh guest.
pub fn replays(args: &Settings, t: &Target, seq: &[Entry]) -> Result<bool> {
    Ok(replay(args, t, seq)?.is_some())
}

/// Replays `seq` after the base state in a fresh guest: `Some(i)` if it
/// crashed, `i` being the index of the last request it started (`None`
/// inside when not known).
pub fn replay(
    args: &Settings,
    t: &Target,
    seq: &[Entry],
) -> Result<Option<Option<usize>>> {
    let shared = setup::private_dir("replay")?;
    let guest = replay_guest(args, t, seq, &shared);
    // The folder is ours: made by mkdtemp above.
    let _ = std::fs::remove_dir_all(&shared);
    let guest = guest?;
    let result = std::fs::read_to_string(guest.out().join("result.txt"))
        .unwrap_or_default();
    let console = std::fs::read_to_string(guest.console()).unwrap_or_default();
    let crashed = result.contains("\ncrash ")
        || result.starts_with("crash ")
        || result.contains("died")
        || (!result.contains("clean") && !console_crash(&console).is_empty());
    let last = result
        .lines()
        .filter_map(|l| l.strip_prefix("start ")?.parse().ok())
        .next_back();
    Ok(crashed.then_some(last))
}

/// Boots the guest that replays `seq`, sharing `shared`.
fn replay_guest(
    args: &Settings,
    t: &Target,
    seq: &[Entry],
    shared: &Path,
) -> Result<crate::vm::GuestRun> {
    write_journal(&shared.join("sequence.journal"), seq)?;
    let task = Task::Replay {
        sequence: format!("{SHARED}/sequence.journal").into(),
        result: "/h/out/result.txt".into(),
    };
    setup::boot_task(args, t, shared, task, (60, "[replay] "))
}

/// The shortest sequence found that still crashes: the last request
/// alone, else delta debugging over the whole sequence (at most
/// [`MAX_MINIMIZE_BOOTS`] boots). None if the whole sequence does not
/// crash on replay.
fn minimize(
    args: &Settings,
    t: &Target,
    seq: &[Entry],
) -> Result<Option<Vec<Entry>>> {
    let last = seq[seq.len() - 1..].to_vec();
    eprintln!("fuzz-kernel: minimizing: the last request alone");
    if replays(args, t, &last)? {
        return Ok(Some(last));
    }
    if seq.len() == 1 {
        return Ok(None);
    }
    eprintln!(
        "fuzz-kernel: minimizing: the {} requests since the base state",
        seq.len()
    );
    if !replays(args, t, seq)? {
        return Ok(None);
    }
    let mut boots = 2;
    let mut cur = seq.to_vec();
    let mut n = 2;
    while cur.len() > 1 && boots < MAX_MINIMIZE_BOOTS {
        match without_a_chunk(args, t, &cur, n, &mut boots)? {
            Some(smaller) => {
                cur = smaller;
                n = (n - 1).max(2);
            }
            None if n >= cur.len() => break,
            None => n = (n * 2).min(cur.len()),
        }
    }
    Ok(Some(cur))
}

/// Delta debugging's step: `cur` without one of its `n` chunks, the
/// first that still crashes (each try a boot, counted in `boots`).
fn without_a_chunk(
    args: &Settings,
    t: &Target,
    cur: &[Entry],
    n: usize,
    boots: &mut usize,
) -> Result<Option<Vec<Entry>>> {
    let chunk = cur.len().div_ceil(n);
    for i in 0..n {
        let cand: Vec<Entry> = cur
            .iter()
            .enumerate()
            .filter(|(k, _)| k / chunk != i)
            .map(|(_, e)| e.clone())
            .collect();
        if cand.is_empty() || cand.len() == cur.len() {
            continue;
        }
        if *boots >= MAX_MINIMIZE_BOOTS {
            break;
        }
        *boots += 1;
        eprintln!(
            "fuzz-kernel: minimizing: {} of {} requests (boot {boots})",
            cand.len(),
            cur.len()
        );
        if replays(args, t, &cand)? {
            return Ok(Some(cand));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_console_crash_starts_at_the_first_crash_line() {
        let console = "[    1.0] booting\n[    9.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\n[    9.1] RIP: 0010:jstat_put+0xe/0x50 [jool_common]\n[    9.2] Kernel panic - not syncing: Fatal exception in interrupt\n";
        let l = console_crash(console);
        assert_eq!(l.len(), 3);
        assert!(l[0].contains("BUG:"));
        assert!(console_crash("[ 1.0] all fine\n").is_empty());
        // The KASAN kernel's boot: the initramfs's modprobe complains on
        // the console before the real oops.
        let kasan = format!(
            "modprobe: WARNING: Module 9p not found in directory /lib/modules/6.1.192-jool-kasan\n{console}"
        );
        assert_eq!(console_crash(&kasan), l);
        assert!(console_crash("modprobe: WARNING: Module 9p not found\n")
            .is_empty());
    }

    #[test]
    fn test_signature_ignores_addresses_and_times() {
        let a: Vec<String> = [
            "[    7.3] BUG: kernel NULL pointer dereference, address: 0000000000000030",
            "[    7.3] RIP: 0010:_raw_spin_lock_bh+0x17/0x30",
            "[    7.3] Call Trace:",
            "[    7.3]  pool4db_flush+0x1b/0x60 [jool_common]",
            "[    7.3]  handle_pool4_flush+0x76/0x150 [jool_common]",
            "[    7.3]  ? handle_pool4_rm+0x190/0x190 [jool_common]",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            signature(&a),
            "BUG: kernel NULL pointer dereference | _raw_spin_lock_bh < pool4db_flush < handle_pool4_flush"
        );
        let mut b = a.clone();
        b[0] = "[   99.0] BUG: kernel NULL pointer dereference, address: 0000000000000038".into();
        assert_eq!(signature(&a), signature(&b));
    }

    /// Two guests hit the same WARN_ON (4.1.15, a BIB_FOREACH with an
    /// unknown protocol): one signature, whatever task and build.
    #[test]
    fn test_signature_ignores_the_warnings_task() {
        let warn = |pid: u32, key: &str| -> Vec<String> {
            vec![
                format!("WARNING: CPU: 0 PID: {pid} at /build/modules-{key}/jool/src/mod/common/db/bib/db.c:300 bib_foreach+0x17d/0x190 [jool_common]"),
                "RIP: 0010:bib_foreach+0x17d/0x190 [jool_common]".into(),
                "Call Trace:".into(),
                " handle_bib_foreach+0x1ea/0x2e0 [jool_common]".into(),
            ]
        };
        let a = signature(&warn(203, "4c1f209ed2d7"));
        assert_eq!(a, signature(&warn(208, "eaf0c99a3653")));
        assert_eq!(a, "WARNING: | bib_foreach < handle_bib_foreach");
    }

    #[test]
    fn test_panic_seconds() {
        let log =
            "suite-start 7.2\nfuzz-kernel: fuzz loop starts at uptime 9.50\n";
        let lines =
            vec!["[   19.750000] BUG: kernel NULL pointer dereference"
                .to_owned()];
        assert_eq!(panic_seconds(log, &lines), Some(10.25));
        assert_eq!(panic_seconds("", &lines), None);
    }

    #[test]
    fn test_portable_maps_family_and_tag() {
        let d = Discovery {
            family_id: 0x23,
            netns_tag: 0x0305_7f00,
            ..Discovery::default()
        };
        let p = jool_sim::versions::Profile::get("4.1.9").unwrap();
        let mut req = super::super::request::request(
            p,
            0,
            1,
            b"",
            &super::super::request::foreach_offset(
                p,
                0x0305_7f00,
                4,
                b"default",
            ),
        );
        map_type(&mut req, FAMILY_PLACEHOLDER, 0x23);
        let e = portable(
            vec![Entry { exec: 1, ext_ack: false, request: req }],
            &d,
        );
        assert_eq!(
            super::super::request::kind_of(&e[0].request),
            Some(FAMILY_PLACEHOLDER)
        );
        assert!(e[0].request.windows(4).any(|w| w == TAG_PLACEHOLDER));
    }
}
