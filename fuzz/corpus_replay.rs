//! Corpus replay shared by the `fuzz_corpus` tests of jool-sim and
//! jool-harness (included by both with `#[path]`): every file of a fuzz
//! target's corpus and regressions goes through the target's body.

use std::{
    collections::BTreeMap,
    fs,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
};

/// The repository's root (both crates sit one level below it).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file of the target's corpus and regressions, by name.
pub(crate) fn inputs(target: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for dir in [
        root().join("fuzz/corpus").join(target),
        root().join("fixtures/fuzz-regressions").join(target),
    ] {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for e in entries {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "md") {
                continue;
            }
            out.insert(path.display().to_string(), fs::read(&path).unwrap());
        }
    }
    out
}

/// Runs every input of `target` through `body`; fails naming each input
/// that panics.
pub(crate) fn replay(target: &str, body: &dyn Fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no corpus for {target}: run write_seeds");
    let failed: Vec<_> = inputs
        .iter()
        .filter(|(_, data)| {
            catch_unwind(AssertUnwindSafe(|| body(data))).is_err()
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs fail:\n{}",
        failed.len(),
        inputs.len(),
        failed.join("\n")
    );
}

/// Times `body` over every input of `target` (native, no libFuzzer, no
/// coverage instrumentation): `rounds` passes after one warm-up pass.
/// Prints the mean time per input and the slowest inputs; what
/// `fuzz_corpus::time_replay` runs (a profiling aid, never an assertion:
/// timings depend on the machine's load).
pub(crate) fn time_corpus(target: &str, body: &dyn Fn(&[u8]), rounds: u32) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no corpus for {target}");
    let mut each: Vec<(std::time::Duration, &str)> = inputs
        .iter()
        .map(|(name, data)| {
            body(data);
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                body(data);
            }
            (start.elapsed() / rounds.max(1), name.as_str())
        })
        .collect();
    let total: std::time::Duration = each.iter().map(|(d, _)| *d).sum();
    let mean = total / u32::try_from(each.len()).unwrap_or(u32::MAX);
    println!(
        "{target}: {} inputs, {:.1} µs per input ({:.0} inputs/s), {rounds} rounds",
        each.len(),
        mean.as_secs_f64() * 1e6,
        1.0 / mean.as_secs_f64()
    );
    each.sort_unstable_by(|a, b| b.cmp(a));
    for (d, name) in each.iter().take(5) {
        println!("  {:8.1} µs  {name}", d.as_secs_f64() * 1e6);
    }
}
