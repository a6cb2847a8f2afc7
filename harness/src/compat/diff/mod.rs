//! `jool-harness versions diff A B`: what changed between two releases
//! and what that does to a client of one talking to a kernel of the other.
//!
//! - stats: added, removed, renamed (a removed and an added name with the
//!   same explanation), re-documented, moved to another id, and every id
//!   both releases have that means different things;
//! - protocol: the [`protocol`] facts that differ;
//! - both crossings (A client on a B kernel, B client on an A kernel):
//!   accepted or not and why, and the exact mislabels, each verified by
//!   running the client against the simulated kernel in-process.

use std::collections::BTreeMap;

use jool_sim::versions::{Profile, Stat};
use serde::Serialize;

use super::{
    crossrun::Disagreement,
    predict::{self, compat_name, Verdict},
    protocol::{self, FactDiff},
};

mod render;

pub use render::{markdown, text, write};

/// A stat of one release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Placed {
    /// Its name.
    pub name: String,
    /// Its id in that release.
    pub id: u16,
}

/// A stat whose name changed but whose explanation did not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Renamed {
    /// Name in A.
    pub from: String,
    /// Name in B.
    pub to: String,
    /// Id in A.
    pub id_a: u16,
    /// Id in B.
    pub id_b: u16,
}

/// A stat with the same name in both releases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kept {
    /// Its name.
    pub name: String,
    /// Id in A.
    pub id_a: u16,
    /// Id in B.
    pub id_b: u16,
    /// Explanation in A.
    pub doc_a: String,
    /// Explanation in B.
    pub doc_b: String,
}

/// An id both releases have, under different names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Meaning {
    /// The id.
    pub id: u16,
    /// Its name in A.
    pub a: String,
    /// Its name in B.
    pub b: String,
}

/// A client of one release against a kernel of another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Crossing {
    /// The client's release (its labels).
    pub client: String,
    /// The kernel's release (what its ids mean).
    pub kernel: String,
    /// The kernel's check of the client's version.
    pub kernel_compat: &'static str,
    /// The client's checks of the reply header.
    pub client_reply_check: String,
    /// Why the kernel serves the request, or why not.
    pub reason: String,
    /// What the client shows.
    pub verdict: Verdict,
    /// The client's error, as observed in-process.
    pub observed_error: Option<String>,
}

/// Everything `versions diff A B` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// Release A.
    pub a: String,
    /// Release B.
    pub b: String,
    /// Stats only B has.
    pub added: Vec<Placed>,
    /// Stats only A has.
    pub removed: Vec<Placed>,
    /// Renamed stats.
    pub renamed: Vec<Renamed>,
    /// Same name, other explanation.
    pub redocumented: Vec<Kept>,
    /// Same name, other id.
    pub moved: Vec<Kept>,
    /// Ids both releases have, under different names.
    pub meanings: Vec<Meaning>,
    /// Protocol facts that differ.
    pub protocol: Vec<FactDiff>,
    /// An A client on a B kernel.
    pub a_on_b: Crossing,
    /// A B client on an A kernel.
    pub b_on_a: Crossing,
}

fn by_name(p: &Profile) -> BTreeMap<&str, &Stat> {
    p.stats.iter().map(|s| (s.name.as_str(), s)).collect()
}

fn placed(s: &Stat) -> Placed {
    Placed { name: s.name.clone(), id: s.id }
}

/// Stats of `from` whose name `to` lacks.
fn only_in<'p>(from: &'p Profile, to: &Profile) -> Vec<&'p Stat> {
    let names = by_name(to);
    from.stats
        .iter()
        .filter(|s| !names.contains_key(s.name.as_str()))
        .collect()
}

/// Pairs a removed and an added stat with the same explanation.
fn renames(removed: &mut Vec<&Stat>, added: &mut Vec<&Stat>) -> Vec<Renamed> {
    let mut out = Vec::new();
    removed.retain(|r| {
        let Some(at) = added.iter().position(|a| a.doc == r.doc) else {
            return true;
        };
        let a = added.remove(at);
        out.push(Renamed {
            from: r.name.clone(),
            to: a.name.clone(),
            id_a: r.id,
            id_b: a.id,
        });
        false
    });
    out
}

fn kept(a: &Profile, b: &Profile) -> Vec<Kept> {
    let names = by_name(b);
    let pair = |s: &Stat| {
        names.get(s.name.as_str()).map(|t| (s.clone(), (*t).clone()))
    };
    a.stats
        .iter()
        .filter_map(pair)
        .map(|(s, t)| Kept {
            name: s.name,
            id_a: s.id,
            id_b: t.id,
            doc_a: s.doc,
            doc_b: t.doc,
        })
        .collect()
}

fn meanings(a: &Profile, b: &Profile) -> Vec<Meaning> {
    a.stats
        .iter()
        .filter_map(|s| {
            b.stat(s.id).filter(|t| t.name != s.name).map(|t| (s, t))
        })
        .map(|(s, t)| Meaning {
            id: s.id,
            a: s.name.clone(),
            b: t.name.clone(),
        })
        .collect()
}

fn crossing(
    client: &'static Profile,
    kernel: &'static Profile,
) -> Result<Crossing, Disagreement> {
    let reason = match predict::acceptance(client, kernel) {
        Ok(why) | Err(why) => why,
    };
    let predicted = predict::predict(client, kernel);
    let observed = Disagreement::check(client, kernel, &predicted)?;
    let check = protocol::facts(client)
        .into_iter()
        .find(|f| f.aspect == "client reply check");
    Ok(Crossing {
        client: client.release.clone(),
        kernel: kernel.release.clone(),
        kernel_compat: compat_name(kernel.compat),
        client_reply_check: check.map(|f| f.value).unwrap_or_default(),
        reason,
        verdict: Verdict::from_run(client, kernel, &predicted),
        observed_error: observed.error,
    })
}

/// Compares releases `a` and `b`. `Err` if a crossing's in-process run
/// disagrees with the tables (a bug in the simulator or the prediction).
pub fn diff(
    a: &'static Profile,
    b: &'static Profile,
) -> Result<Diff, Disagreement> {
    let (mut removed, mut added) = (only_in(a, b), only_in(b, a));
    let renamed = renames(&mut removed, &mut added);
    let kept = kept(a, b);
    Ok(Diff {
        a: a.release.clone(),
        b: b.release.clone(),
        added: added.into_iter().map(placed).collect(),
        removed: removed.into_iter().map(placed).collect(),
        renamed,
        redocumented: kept
            .iter()
            .filter(|k| k.doc_a != k.doc_b)
            .cloned()
            .collect(),
        moved: kept.into_iter().filter(|k| k.id_a != k.id_b).collect(),
        meanings: meanings(a, b),
        protocol: protocol::diff(a, b),
        a_on_b: crossing(a, b)?,
        b_on_a: crossing(b, a)?,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    fn g(name: &str) -> &'static Profile {
        Profile::get(name).unwrap()
    }

    #[test]
    fn test_4_1_9_to_4_1_12() {
        let d = diff(g("4.1.9"), g("4.1.12")).unwrap();
        assert_eq!(d.added.len(), 15);
        assert!(
            d.removed.is_empty()
                && d.renamed.is_empty()
                && d.redocumented.is_empty()
        );
        assert_eq!(d.moved.len(), 1);
        assert_eq!(
            d.meanings,
            [Meaning {
                id: 69,
                a: "JSTAT_UNKNOWN".into(),
                b: "JSTAT_JOOLD_EMPTY".into()
            }]
        );
        let t = text(&d);
        assert!(t.contains("  id 69: 4.1.9 prints JSTAT_UNKNOWN; 4.1.12 means JSTAT_JOOLD_EMPTY\n"), "{t}");
        assert!(t.contains("  id 69: 4.1.12 prints JSTAT_JOOLD_EMPTY; 4.1.9 means JSTAT_UNKNOWN\n"), "{t}");
        assert!(
            t.contains(
                "ids 70..84 unknown to 4.1.9: the display fails at id 70"
            ),
            "{t}"
        );
    }

    #[test]
    fn test_redocumented_4_0_0_to_4_0_1() {
        let d = diff(g("4.0.0"), g("4.0.1")).unwrap();
        let names: Vec<&str> =
            d.redocumented.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["JSTAT_POOL4_MISMATCH"]);
        assert!(matches!(d.a_on_b.verdict, Verdict::Rejected));
    }

    #[test]
    fn test_rename_needs_the_same_doc() {
        let a = Stat { id: 1, name: "JSTAT_A".into(), doc: "same".into() };
        let b = Stat { id: 2, name: "JSTAT_B".into(), doc: "same".into() };
        let c = Stat { id: 3, name: "JSTAT_C".into(), doc: "other".into() };
        let (mut removed, mut added) = (vec![&a], vec![&c, &b]);
        let r = renames(&mut removed, &mut added);
        assert_eq!(
            r,
            [Renamed {
                from: "JSTAT_A".into(),
                to: "JSTAT_B".into(),
                id_a: 1,
                id_b: 2
            }]
        );
        assert!(removed.is_empty());
        assert_eq!(added.len(), 1);
    }

    #[test]
    fn test_json_and_markdown() {
        let d = diff(g("4.1.12"), g("4.1.13")).unwrap();
        let mut out = Vec::new();
        write(&d, super::super::Format::Json, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["a_on_b"]["verdict"]["result"], "accepted");
        assert_eq!(
            v["a_on_b"]["verdict"]["mislabels"].as_array().unwrap().len(),
            11
        );
        let md = markdown(&d);
        assert!(
            md.contains(
                "| 73 | `JSTAT_JOOLD_FLUSH_ASAP` | `JSTAT_JOOLD_PKT_FULL` |"
            ),
            "{md}"
        );
    }
}
