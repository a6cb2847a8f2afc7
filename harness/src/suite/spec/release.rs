//! Release selectors of suites, cases and `when` blocks.

/// Whether `release` matches one of `targets` (none: every release).
/// A target is a release (`4.1.9`), `*` (every release), a glob whose
/// `*` stands for at least one character (`4.1.1*`: 4.1.10 to 4.1.19, not
/// 4.1.1), or comparisons joined by `,`, all of which must hold
/// (`>=4.1.5`, `>=4.1.0,<4.2`; releases ordered as `versions list`:
/// release candidates before their release, `main` last).
pub fn release_matches(targets: &[String], release: &str) -> bool {
    targets.is_empty() || targets.iter().any(|t| target_matches(t, release))
}

fn target_matches(target: &str, release: &str) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let t = target.trim();
    if t == "*" {
        return true;
    }
    if t.starts_with(['<', '>', '=']) {
        return t.split(',').all(|c| {
            let c = c.trim();
            let (op, v) = ["<=", ">=", "==", "<", ">"]
                .iter()
                .find_map(|op| c.strip_prefix(op).map(|v| (*op, v.trim())))
                .unwrap_or(("==", c));
            let o = jool_sim::versions::cmp_releases(release, v);
            match op {
                "<=" => o != Greater,
                ">=" => o != Less,
                "<" => o == Less,
                ">" => o == Greater,
                _ => o == Equal,
            }
        });
    }
    match t.strip_suffix('*') {
        Some(prefix) => {
            release.len() > prefix.len() && release.starts_with(prefix)
        }
        None => t == release,
    }
}

/// Why `target` is not a release selector (see [`release_matches`]), if
/// it is not: a comparison with an unknown release, or a `*` not at the
/// end.
pub fn release_target_error(target: &str) -> Option<String> {
    let t = target.trim();
    if t == "*" {
        return None;
    }
    let known = jool_sim::versions::Profile::names();
    if t.starts_with(['<', '>', '=']) {
        return t.split(',').find_map(|c| {
            let v = c.trim().trim_start_matches(['<', '>', '=']).trim();
            (!known.contains(&v)).then(|| {
                format!("'{c}' in '{target}' compares with an unknown release '{v}'")
            })
        });
    }
    match t.find('*') {
        Some(i) if i + 1 != t.len() => {
            Some(format!("'{target}': '*' may only end a release glob"))
        }
        Some(_) => None,
        None => (!known.contains(&t))
            .then(|| format!("'{target}' is not a known release")),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_release_selectors() {
        let m = |t: &str, r: &str| release_matches(&[t.to_owned()], r);
        assert!(m("4.1.1*", "4.1.10") && m("4.1.1*", "4.1.15"));
        assert!(!m("4.1.1*", "4.1.1"), "a glob's * is at least one char");
        assert!(m("4.1.*", "4.1.0") && !m("4.1.*", "4.2.0-rc1"));
        assert!(m(">=4.1.5", "4.1.5") && m(">=4.1.5", "main"));
        assert!(!m(">=4.1.5", "4.1.4") && !m(">=4.1.5", "4.0.9"));
        assert!(m(">=4.1.0,<4.2.0-rc1", "4.1.15"));
        assert!(!m(">=4.1.0,<4.2.0-rc1", "4.2.0-rc1"));
        assert!(m("<4.1.0", "4.0.9") && !m("<4.1.0", "4.1.0"));
        assert!(
            m("*", "4.0.0") && m("4.1.9", "4.1.9") && !m("4.1.9", "4.1.90")
        );
        assert!(release_matches(&[], "4.0.0"));
        assert_eq!(release_target_error(">=4.1.5,<4.2.0-rc1"), None);
        assert!(release_target_error(">=4.1.55").is_some());
        assert!(release_target_error("4.*.1").is_some());
        assert!(release_target_error("4.1.99").is_some());
    }

    #[test]
    fn test_release_matches() {
        let t = vec!["4.1.*".to_owned(), "4.0.9".to_owned()];
        assert!(release_matches(&t, "4.1.13") && release_matches(&t, "4.0.9"));
        assert!(!release_matches(&t, "4.0.8") && release_matches(&[], "x"));
    }
}
