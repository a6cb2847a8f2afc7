//! Checks a `run` step's output against its expectations; failures carry
//! a unified diff of expected vs actual.

use std::path::PathBuf;

use similar::TextDiff;

use super::{
    backend::Output,
    spec::{Step, Suite},
};

/// How snapshots are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Snapshots {
    /// Compare; a missing snapshot fails.
    #[default]
    Check,
    /// Write the actual output where it differs or is missing.
    Bless,
}

/// A unified diff of `expected` vs `actual`, labelled.
pub fn diff(what: &str, expected: &str, actual: &str) -> String {
    let d = TextDiff::from_lines(expected, actual);
    let mut s = format!("{what} differs (--- expected, +++ actual):\n");
    s.push_str(
        &d.unified_diff()
            .context_radius(3)
            .header("expected", "actual")
            .to_string(),
    );
    if !expected.ends_with('\n') || !actual.ends_with('\n') {
        s.push_str(&format!(
            "(expected {:?}, actual {:?})\n",
            tail(expected),
            tail(actual)
        ));
    }
    s
}

fn tail(s: &str) -> &str {
    let start = s.char_indices().rev().nth(40).map_or(0, |(i, _)| i);
    &s[start..]
}

/// Where snapshot `name` of `suite` lives.
pub fn snapshot_path(suite: &Suite, name: &str) -> PathBuf {
    suite
        .dir()
        .join("snapshots")
        .join(format!("{}__{name}.snap", suite.suite.name))
}

/// Whether `text` matches `pattern`, where `{n}` matches one or more
/// decimal digits and everything else is literal.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split("{n}");
    let Some(first) = parts.next() else { return text.is_empty() };
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    for lit in parts {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        match rest[digits..].strip_prefix(lit) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// `path` with `{release}` replaced (expected outputs that differ per
/// release live in per-release folders).
fn for_release(path: &str, release: &str) -> String {
    path.replace("{release}", release)
}

/// Every way `actual` misses `step`'s expectations on a kernel of
/// `release` (empty: it passed).
pub fn check(
    suite: &Suite,
    step: &Step,
    actual: &Output,
    snapshots: Snapshots,
    release: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    let status = step.status.unwrap_or(0);
    if actual.status != status {
        failures.push(format!(
            "exit status: expected {status}, got {}",
            actual.status
        ));
    }
    if let Some(e) = &step.stdout {
        if *e != actual.stdout {
            failures.push(diff("stdout", e, &actual.stdout));
        }
    }
    if let Some(f) = &step.stdout_file {
        let f = &for_release(f, release);
        let p = suite.dir().join(f);
        match std::fs::read_to_string(&p) {
            Ok(e) if e == actual.stdout => {}
            Ok(e) => failures.push(diff(
                &format!("stdout (vs {f})"),
                &e,
                &actual.stdout,
            )),
            Err(e) => failures.push(format!("{}: {e}", p.display())),
        }
    }
    if let Some(pat) = &step.stdout_pattern {
        if !pattern_matches(pat, &actual.stdout) {
            failures.push(diff(
                "stdout (pattern, {n} = any number)",
                pat,
                &actual.stdout,
            ));
        }
    }
    if let Some(f) = &step.stdout_pattern_file {
        let f = &for_release(f, release);
        let p = suite.dir().join(f);
        match std::fs::read_to_string(&p) {
            Ok(pat) if pattern_matches(&pat, &actual.stdout) => {}
            Ok(pat) => failures.push(diff(
                &format!("stdout (vs pattern {f}, {{n}} = any number)"),
                &pat,
                &actual.stdout,
            )),
            Err(e) => failures.push(format!("{}: {e}", p.display())),
        }
    }
    for c in &step.stdout_contains {
        if !actual.stdout.contains(c.as_str()) {
            failures.push(format!("stdout lacks {c:?}:\n{}", actual.stdout));
        }
    }
    if let Some(e) = &step.stderr {
        if *e != actual.stderr {
            failures.push(diff("stderr", e, &actual.stderr));
        }
    }
    for c in &step.stderr_contains {
        if !actual.stderr.contains(c.as_str()) {
            failures.push(format!("stderr lacks {c:?}:\n{}", actual.stderr));
        }
    }
    if let Some(name) = &step.snapshot {
        failures.extend(check_snapshot(
            &snapshot_path(suite, &for_release(name, release)),
            &actual.stdout,
            snapshots,
        ));
    }
    failures
}

fn check_snapshot(
    path: &std::path::Path,
    actual: &str,
    mode: Snapshots,
) -> Option<String> {
    let expected = std::fs::read_to_string(path).ok();
    if expected.as_deref() == Some(actual) {
        return None;
    }
    if mode == Snapshots::Bless {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, actual));
        return written
            .err()
            .map(|e| format!("cannot write {}: {e}", path.display()));
    }
    Some(match expected {
        None => format!(
            "snapshot {} is missing (run with --bless to write it)",
            path.display()
        ),
        Some(e) => diff(
            &format!("stdout (vs snapshot {})", path.display()),
            &e,
            actual,
        ),
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_pattern_matches() {
        assert!(pattern_matches("A: {n}\nB: {n}\n", "A: 12\nB: 0\n"));
        assert!(!pattern_matches("A: {n}\n", "A: x\n"));
        assert!(!pattern_matches("A: {n}\n", "A: 1\nB\n"));
        assert!(pattern_matches("", ""));
    }

    #[test]
    fn test_diff_shows_both_sides() {
        let d = diff("stdout", "a\nb\n", "a\nc\n");
        assert!(d.contains("-b\n") && d.contains("+c\n"), "{d}");
    }
}
