//! Byte-exact replay of the real 4.1.9 client's `stats display` outputs.
//!
//! For each capture in `fixtures/captures/4.1.9/{siit,nat64}{,-traffic}/`,
//! the flags come from `COMMANDS.tsv`, the values from the capture itself
//! (stats a zero filter left out are 0), and the re-rendered stdout must
//! equal the file byte for byte. `--help` and `--usage` are skipped.

use std::{collections::HashMap, fs, path::PathBuf};

use jool_sim::versions::Profile;

use super::{DisplayFlags, Renderer};
use crate::counters;

const DIRS: [&str; 4] = ["siit/", "nat64/", "siit-traffic/", "nat64-traffic/"];

fn capture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/captures/4.1.9")
}

/// Flags of a `stats display` command line, or `None` for help/usage.
fn flags_of(command: &str) -> Option<DisplayFlags> {
    let (_, args) = command.split_once("stats display")?;
    let mut f = DisplayFlags::default();
    for arg in args.split_whitespace() {
        match arg {
            "--all" => f.all = true,
            "--explain" => f.explain = true,
            "--csv" => f.csv = true,
            "--no-headers" => f.no_headers = true,
            "--help" | "--usage" => return None,
            short if short.starts_with('-') && !short.starts_with("--") => {
                f.all |= short.contains('a');
                f.explain |= short.contains('e');
            }
            other => panic!("unexpected argument {other:?} in {command:?}"),
        }
    }
    Some(f)
}

/// A `NAME: VALUE` line of plain output (doc lines never look like that).
fn plain_stat(line: &str) -> Option<(String, u64)> {
    let (name, value) = line.split_once(": ")?;
    if !name.starts_with("JSTAT") || name.contains(' ') {
        return None;
    }
    Some((name.to_owned(), value.parse().ok()?))
}

fn values(flags: &DisplayFlags, text: &str) -> Vec<(String, u64)> {
    if flags.csv {
        counters::parse(text).unwrap().into_rows()
    } else {
        text.lines().filter_map(plain_stat).collect()
    }
}

/// The kernel's reply: every id of the table, in order, with the
/// capture's values (missing ones are zero).
fn reply(profile: &Profile, found: &[(String, u64)]) -> Vec<(u16, u64)> {
    let map: HashMap<&str, u64> =
        found.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let known = counters::to_ids(
        &counters::Counters::from_rows(found.to_vec()),
        profile,
    );
    known.unwrap();
    let value = |name: &str| map.get(name).copied().unwrap_or(0);
    profile.stats.iter().map(|s| (s.id, value(&s.name))).collect()
}

fn replay(profile: &Profile, name: &str, flags: DisplayFlags) -> bool {
    let path = capture_dir().join(format!("{name}.out"));
    let Ok(want) = fs::read(&path) else { return false };
    let text = String::from_utf8(want.clone()).unwrap();
    let counters = reply(profile, &values(&flags, &text));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    Renderer::new(profile, flags)
        .display(counters, &mut out, &mut err)
        .unwrap();
    assert!(
        out == want,
        "{name}: {flags:?}\n--- real\n{text}\n--- ours\n{}",
        String::from_utf8_lossy(&out)
    );
    let want_err =
        fs::read(capture_dir().join(format!("{name}.err"))).unwrap();
    assert_eq!(err, want_err, "{name} stderr");
    true
}

#[test]
fn test_real_4_1_9_outputs_reproduced_byte_for_byte() {
    let profile = Profile::get("4.1.9").unwrap();
    let tsv = fs::read_to_string(capture_dir().join("COMMANDS.tsv")).unwrap();
    let mut replayed = Vec::new();
    for line in tsv.lines() {
        let (name, command) = line.split_once('\t').unwrap();
        if !DIRS.iter().any(|d| name.starts_with(d)) {
            continue;
        }
        let Some(flags) = flags_of(command) else { continue };
        if replay(profile, name, flags) {
            replayed.push(name);
        }
    }
    // 15 idle commands per translator, 4 after SIIT traffic in this copy.
    assert!(replayed.len() >= 34, "{replayed:?}");
    assert!(replayed.contains(&"siit-traffic/display-explain"));
}

#[test]
fn test_flags_of_command_lines() {
    let f =
        flags_of("ip netns exec siit jool_siit stats display -ae ").unwrap();
    assert!(f.all && f.explain && !f.csv);
    let f =
        flags_of("jool -i default stats display --csv --no-headers").unwrap();
    assert!(f.csv && f.no_headers && !f.all);
    assert_eq!(flags_of("jool stats display --usage "), None);
}
