//! What a client of one release shows for the counters a kernel of another
//! release sends, predicted from the two releases' tables and protocol
//! facts alone.
//!
//! [`predict`] gives the [`Run`] of one `stats display --all`;
//! [`crossrun`](super::crossrun) produces the same type by running that
//! client against the simulated kernel, and the two must agree.
//! [`Verdict`] turns a run into what a reader wants: rejected, exact, or
//! the list of mislabelled counters.
//!
//! The rules (see `fixtures/versions/README.md`, "Which pairs are
//! possible"): the 4.0.0 – 4.0.7 protocol never meets the joolnl one; a
//! legacy kernel wants its own family name and exact version; a joolnl
//! kernel wants a Jool header as long as its own, and applies its
//! [`Compat`] rule to the client's version word. The kernel then sends ids
//! `first_id ..= max_id` of its own table; the client labels each with its
//! own table and, on an id it lacks, fails or prints `????`
//! ([`UnknownStat`]).
//!
//! [`Compat`]: jool_sim::versions::Compat

use jool_sim::versions::{
    quad, Compat, LegacyLayout, Profile, Protocol, UnknownStat,
};
use serde::Serialize;

/// The version word a 24-byte-header kernel reads from a 28-byte header:
/// the magic `"jool"`.
const MAGIC_AS_VERSION: u32 = u32::from_be_bytes(*b"jool");

/// One `stats display --all`, id by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Run {
    /// Refused before any counter was shown.
    Rejected,
    /// Counters were shown.
    Shown(Shown),
}

/// What the client printed, in the kernel's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shown {
    /// Each id the client printed, with the name it printed (`None` for
    /// `????`).
    pub labels: Vec<(u16, Option<String>)>,
    /// The id at which the client gave up with "The kernel module
    /// returned an unknown stat counter.".
    pub failed_at: Option<u16>,
}

/// Name of the genl family(ies) a release uses.
pub fn family_name(p: &Profile) -> &'static str {
    match p.protocol {
        Protocol::Legacy(LegacyLayout::TypeChar | LegacyLayout::NoType) => {
            "SIIT_Jool / NAT64_Jool"
        }
        _ => "Jool",
    }
}

/// The rule's name as the fixtures spell it.
pub fn compat_name(c: Compat) -> &'static str {
    match c {
        Compat::Exact => "exact",
        Compat::MajorMinor => "major.minor",
    }
}

/// Whether the kernel of `kernel` serves a `stats display` of the client
/// of `client`: `Ok(why)` or `Err(why not)`.
pub fn acceptance(
    client: &Profile,
    kernel: &Profile,
) -> Result<String, String> {
    let (c, k) = (&client.release, &kernel.release);
    match (client.is_legacy(), kernel.is_legacy()) {
        (true, true) => legacy_acceptance(client, kernel),
        (false, false) => joolnl_acceptance(client, kernel),
        _ => Err(format!(
            "{c} and {k} speak different protocols (4.0.0 – 4.0.7: request_hdr in \
             ATTR_DATA; 4.0.8+: joolnlhdr); they never interoperate"
        )),
    }
}

fn legacy_acceptance(
    client: &Profile,
    kernel: &Profile,
) -> Result<String, String> {
    let (cf, kf) = (family_name(client), family_name(kernel));
    if cf != kf {
        return Err(format!(
            "the client looks for the {cf} family; the kernel registers {kf}"
        ));
    }
    let (cq, kq) = (client.version_quad(), kernel.version_quad());
    if client.wire_version != kernel.wire_version {
        return Err(format!(
            "kernel {} checks the version exactly: client {cq}, kernel {kq}",
            kernel.release
        ));
    }
    Ok(format!("same version {kq}"))
}

fn joolnl_acceptance(
    client: &Profile,
    kernel: &Profile,
) -> Result<String, String> {
    let (ch, kh) = (client.header_len(), kernel.header_len());
    let k = &kernel.release;
    if ch < kh {
        return Err(format!(
            "the client's {ch}-byte Jool header is shorter than kernel {k}'s {kh} \
             bytes: genetlink rejects the request (EINVAL)"
        ));
    }
    let rule = match kernel.compat {
        Compat::Exact => "exact version check",
        Compat::MajorMinor => "major.minor version check",
    };
    if ch > kh {
        debug_assert!(!kernel.kernel_accepts(MAGIC_AS_VERSION));
        return Err(format!(
            "kernel {k} reads the client's magic \"jool\" as version {} and its \
             {rule} rejects it",
            quad(MAGIC_AS_VERSION)
        ));
    }
    let (cq, kq) = (client.version_quad(), kernel.version_quad());
    if !kernel.kernel_accepts(client.wire_version) {
        return Err(format!(
            "kernel {k}'s {rule} rejects it: client {cq}, kernel {kq}"
        ));
    }
    Ok(format!("kernel {k}'s {rule} passes: client {cq}, kernel {kq}; both headers are {kh} bytes"))
}

/// The run of `stats display --all` of the `client` release's client
/// against the `kernel` release's kernel, from the tables.
pub fn predict(client: &Profile, kernel: &Profile) -> Run {
    if acceptance(client, kernel).is_err() {
        return Run::Rejected;
    }
    let mut shown = Shown::default();
    for id in kernel.first_id()..=kernel.max_id {
        match (client.stat(id), client.unknown_stat) {
            (Some(s), _) => shown.labels.push((id, Some(s.name.clone()))),
            (None, UnknownStat::Warn) => shown.labels.push((id, None)),
            (None, UnknownStat::Fail) => {
                shown.failed_at = Some(id);
                break;
            }
        }
    }
    Run::Shown(shown)
}

/// A counter printed under another counter's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mislabel {
    /// The id the kernel sent.
    pub id: u16,
    /// The name the client printed.
    pub printed: String,
    /// The name the kernel's release gives that id.
    pub meant: String,
}

/// Consecutive ids `first ..= last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct IdRange {
    /// First id.
    pub first: u16,
    /// Last id (inclusive).
    pub last: u16,
}

impl std::fmt::Display for IdRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "id {}", self.first)
        } else {
            write!(f, "ids {}..{}", self.first, self.last)
        }
    }
}

/// Groups sorted ids into ranges.
pub fn ranges(ids: impl IntoIterator<Item = u16>) -> Vec<IdRange> {
    let mut out: Vec<IdRange> = Vec::new();
    for id in ids {
        match out.last_mut() {
            Some(r) if r.last.checked_add(1) == Some(id) => r.last = id,
            _ => out.push(IdRange { first: id, last: id }),
        }
    }
    out
}

/// What happens to the kernel's ids a client does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownEffect {
    /// The display stops at this id with "The kernel module returned an
    /// unknown stat counter." (≤ 4.1.12, rc1, rc2).
    FailsAt(u16),
    /// Each is printed as `????`, with a warning (4.1.13+, main, rc3).
    Shown(usize),
}

/// How a client labels what a kernel sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing is shown: the kernel (or genetlink) refuses the request.
    Rejected,
    /// Counters are shown.
    Accepted {
        /// Counters printed under another counter's name.
        mislabels: Vec<Mislabel>,
        /// Kernel ids outside the client's table.
        unknown: Vec<IdRange>,
        /// What the client does with them.
        effect: Option<UnknownEffect>,
        /// Ids printed under the right name but with another
        /// `--explain` text.
        redocumented: Vec<u16>,
    },
}

impl Verdict {
    /// Reads a run of `client` against `kernel`.
    pub fn from_run(client: &Profile, kernel: &Profile, run: &Run) -> Self {
        let Run::Shown(shown) = run else { return Self::Rejected };
        let mut mislabels = Vec::new();
        let mut redocumented = Vec::new();
        let mut unknown_shown = 0;
        for (id, printed) in &shown.labels {
            let meant = kernel.stat(*id);
            match (printed, meant) {
                (None, _) => unknown_shown += 1,
                (Some(p), Some(m)) if *p != m.name => {
                    mislabels.push(Mislabel {
                        id: *id,
                        printed: p.clone(),
                        meant: m.name.clone(),
                    })
                }
                (Some(_), Some(m)) => {
                    if client.stat(*id).is_some_and(|c| c.doc != m.doc) {
                        redocumented.push(*id);
                    }
                }
                (Some(p), None) => mislabels.push(Mislabel {
                    id: *id,
                    printed: p.clone(),
                    meant: String::new(),
                }),
            }
        }
        let unknown_ids = (kernel.first_id()..=kernel.max_id)
            .filter(|id| client.stat(*id).is_none());
        let effect = match shown.failed_at {
            Some(id) => Some(UnknownEffect::FailsAt(id)),
            None if unknown_shown > 0 => {
                Some(UnknownEffect::Shown(unknown_shown))
            }
            None => None,
        };
        Self::Accepted {
            mislabels,
            unknown: ranges(unknown_ids),
            effect,
            redocumented,
        }
    }

    /// The verdict of [`predict`].
    pub fn predicted(client: &Profile, kernel: &Profile) -> Self {
        Self::from_run(client, kernel, &predict(client, kernel))
    }

    /// Accepted, and every id shown under the kernel's name.
    pub fn is_exact(&self) -> bool {
        matches!(self, Self::Accepted { mislabels, unknown, .. } if mislabels.is_empty() && unknown.is_empty())
    }

    /// Counters printed under another counter's name (0 when rejected).
    pub fn mislabel_count(&self) -> usize {
        match self {
            Self::Rejected => 0,
            Self::Accepted { mislabels, .. } => mislabels.len(),
        }
    }

    /// A matrix cell: `·` rejected, `✓` exact, else the mislabel count,
    /// then `✗I` (fails at id I) or `?M` (M ids shown as `????`).
    pub fn code(&self) -> String {
        let Self::Accepted { mislabels, effect, .. } = self else {
            return "·".to_owned();
        };
        if self.is_exact() {
            return "✓".to_owned();
        }
        match effect {
            None => mislabels.len().to_string(),
            Some(UnknownEffect::FailsAt(id)) => {
                format!("{} ✗{id}", mislabels.len())
            }
            Some(UnknownEffect::Shown(n)) => {
                format!("{} ?{n}", mislabels.len())
            }
        }
    }

    /// The cell in words: `rejected`, `exact`, `58 mislabeled`,
    /// `1 mislabeled; fails at id 70`, `11 mislabeled; 1 shown as ????`.
    pub fn words(&self) -> String {
        let Self::Accepted { mislabels, effect, .. } = self else {
            return "rejected".to_owned();
        };
        if self.is_exact() {
            return "exact".to_owned();
        }
        let n = mislabels.len();
        match effect {
            None => format!("{n} mislabeled"),
            Some(UnknownEffect::FailsAt(id)) => {
                format!("{n} mislabeled; fails at id {id}")
            }
            Some(UnknownEffect::Shown(m)) => {
                format!("{n} mislabeled; {m} shown as ????")
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn g(name: &str) -> &'static Profile {
        Profile::get(name).unwrap()
    }

    #[test]
    fn test_4_1_9_client_on_4_1_12_kernel() {
        let v = Verdict::predicted(g("4.1.9"), g("4.1.12"));
        let Verdict::Accepted { mislabels, unknown, effect, .. } = &v else {
            panic!("{v:?}")
        };
        assert_eq!(
            mislabels,
            &[Mislabel {
                id: 69,
                printed: "JSTAT_UNKNOWN".into(),
                meant: "JSTAT_JOOLD_EMPTY".into()
            }]
        );
        assert_eq!(unknown, &[IdRange { first: 70, last: 84 }]);
        assert_eq!(effect, &Some(UnknownEffect::FailsAt(70)));
        assert_eq!(v.code(), "1 ✗70");
        assert_eq!(v.words(), "1 mislabeled; fails at id 70");
    }

    #[test]
    fn test_4_1_13_client_on_4_1_12_kernel_shows_unknowns() {
        let v = Verdict::predicted(g("4.1.13"), g("4.1.12"));
        assert_eq!(v.mislabel_count(), 11);
        assert_eq!(v.code(), "11 ?1");
    }

    #[test]
    fn test_rejections() {
        // 24-byte header client, 28-byte kernel.
        assert!(acceptance(g("4.1.4"), g("4.1.9"))
            .unwrap_err()
            .contains("shorter"));
        // 28-byte header client, 24-byte kernel.
        assert!(acceptance(g("4.1.9"), g("4.1.4"))
            .unwrap_err()
            .contains("106.111.111.108"));
        // Exact kernels.
        assert!(acceptance(g("4.1.9"), g("4.1.8"))
            .unwrap_err()
            .contains("exact version check rejects"));
        assert!(acceptance(g("4.0.7"), g("4.0.8"))
            .unwrap_err()
            .contains("protocols"));
        assert!(acceptance(g("4.0.5"), g("4.0.6"))
            .unwrap_err()
            .contains("family"));
        assert_eq!(predict(g("4.0.6"), g("4.0.7")), Run::Rejected);
    }

    #[test]
    fn test_same_release_is_exact() {
        for p in Profile::all() {
            assert!(Verdict::predicted(p, p).is_exact(), "{}", p.release);
        }
    }

    #[test]
    fn test_identical_tables_are_exact_across_releases() {
        assert!(Verdict::predicted(g("4.1.9"), g("4.1.11")).is_exact());
        assert_eq!(Verdict::predicted(g("4.1.9"), g("4.1.11")).code(), "✓");
    }

    #[test]
    fn test_ranges() {
        let r = ranges([1, 2, 3, 7, 9, 10]);
        let text: Vec<String> = r.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["ids 1..3", "id 7", "ids 9..10"]);
    }
}
