//! Release order: numeric parts, release candidates before their
//! release, `main` last.

use std::cmp::Ordering;

/// Sort key of a release name (see [`release_key`]).
pub(super) type ReleaseKey = (u32, u32, u32, u32);

/// Sort key of a release name: numeric parts, rc before final, main last.
pub(super) fn release_key(name: &str) -> ReleaseKey {
    if name == "main" {
        return (u32::MAX, 0, 0, 0);
    }
    if let Some(key) = plain_release_key(name.as_bytes()) {
        return key;
    }
    let (base, rc) = match name.split_once("-rc") {
        Some((b, rc)) => (b, rc.parse().unwrap_or(0)),
        None => (name, u32::MAX),
    };
    let mut it = base.split('.').map(|p| p.parse().unwrap_or(0));
    let mut next = || it.next().unwrap_or(0);
    (next() * 1000 + next(), next(), rc, 0)
}

/// [`release_key`] in one pass over the bytes, for the names every
/// release has: dot-separated numbers, then maybe `-rc` and a number,
/// each of 1 to 9 digits; `None` for any other name. (The kernel and the
/// fuzz bodies compare releases on every message.)
fn plain_release_key(name: &[u8]) -> Option<ReleaseKey> {
    let mut parts = [0u32; 3];
    let (mut part, mut n, mut digits) = (0, 0u32, 0);
    let mut rc = None;
    for &b in name {
        match b {
            b'0'..=b'9' if digits < 9 => {
                n = n * 10 + u32::from(b - b'0');
                digits += 1;
                continue;
            }
            b'.' if digits > 0 && rc.is_none() => {}
            b'-' if digits > 0 && rc.is_none() => rc = Some(0),
            b'r' if rc == Some(0) && digits == 0 => {
                rc = Some(1);
                continue;
            }
            b'c' if rc == Some(1) && digits == 0 => {
                rc = Some(2);
                continue;
            }
            _ => return None,
        }
        // A number ended: a part before `-rc` (only the first three
        // count, as in `release_key`).
        if let Some(p) = parts.get_mut(part) {
            *p = n;
        }
        part += 1;
        (n, digits) = (0, 0);
    }
    if digits == 0 {
        return None;
    }
    match rc {
        None => {
            if let Some(p) = parts.get_mut(part) {
                *p = n;
            }
            n = u32::MAX;
        }
        Some(2) => {}
        Some(_) => return None,
    }
    Some((parts[0] * 1000 + parts[1], parts[2], n, 0))
}

/// Compares two release names in release order.
pub fn cmp_releases(a: &str, b: &str) -> Ordering {
    release_key(a).cmp(&release_key(b))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::versions::Profile;

    #[test]
    fn test_release_order() {
        let names = Profile::names();
        assert_eq!(names.first(), Some(&"4.0.0"));
        assert_eq!(names.last(), Some(&"main"));
        let i9 = names.iter().position(|n| *n == "4.1.9").unwrap();
        let i10 = names.iter().position(|n| *n == "4.1.10").unwrap();
        let rc1 = names.iter().position(|n| *n == "4.2.0-rc1").unwrap();
        assert!(i9 < i10 && i10 < rc1);
    }

    /// `release_key` as it was before its one-pass path: the oracle.
    fn slow_key(name: &str) -> (u32, u32, u32, u32) {
        if name == "main" {
            return (u32::MAX, 0, 0, 0);
        }
        let (base, rc) = match name.split_once("-rc") {
            Some((b, rc)) => (b, rc.parse().unwrap_or(0)),
            None => (name, u32::MAX),
        };
        let mut it = base.split('.').map(|p| p.parse().unwrap_or(0));
        let mut next = || it.next().unwrap_or(0);
        (next() * 1000 + next(), next(), rc, 0)
    }

    #[test]
    fn test_release_key_one_pass_like_the_parser() {
        let names = [
            "4.2.0-rc3",
            "4.1.10",
            "4.0.0",
            "4",
            "4.1",
            "4.1.9.7",
            "10.20.30",
            "4.2.0-rc1-rc2",
            "-rc",
            "4.2.0-rc",
            "4.2.0-r1",
            "4.2.0-",
            "4..1",
            ".4.1",
            "4.1.",
            "4.1-rc2",
            "4.1.9-rc0",
            "+4.1.9",
            "4.1.9 ",
            "4294967.1.1",
            "4.123456789.1",
            "4.1234567890.1",
            "4.1.9-rc123456789",
            "4.1.9-rc1234567890",
            "main",
            "mainline",
            "",
            "٣.1.1",
        ];
        for n in names {
            assert_eq!(release_key(n), slow_key(n), "{n:?}");
        }
        for p in Profile::all() {
            let n = p.release.as_str();
            assert!(n == "main" || plain_release_key(n.as_bytes()).is_some());
            assert_eq!(release_key(n), slow_key(n), "{n}");
        }
    }
}
