//! One [`Profile`] per Jool release: what the kernel module and the
//! userspace client of that release do on the `stats` path.
//!
//! The stat tables come from `fixtures/versions/*.toml` (embedded at build
//! time, so binaries carry them). The protocol facts that the fixtures do
//! not spell out (header layout, op and attribute numbering, client rules,
//! error texts) are derived from the release number here, following
//! `fixtures/versions/protocol.md`, `client-output.md` and
//! `kernel-errors.md`.

use std::sync::OnceLock;

use serde::Deserialize;

mod fixture;
mod order;

pub use fixture::FixtureError;
use fixture::FIXTURES;
pub use order::cmp_releases;
use order::{release_key, ReleaseKey};

/// How a kernel compares the client's version word with its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compat {
    /// The whole 32-bit word must match.
    Exact,
    /// Only `major.minor` (`& 0xFFFF0000`) must match.
    MajorMinor,
}

impl Compat {
    /// Whether a side with this rule and version `own` accepts `other`.
    pub fn accepts(self, own: u32, other: u32) -> bool {
        match self {
            Self::Exact => own == other,
            Self::MajorMinor => own & 0xFFFF_0000 == other & 0xFFFF_0000,
        }
    }
}

/// One counter of a release's stat table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stat {
    /// Attribute type (4.0.8+) or array index (4.0.0 – 4.0.7).
    pub id: u16,
    /// `JSTAT_*` name, as the client prints it.
    pub name: String,
    /// The client's explanation, printed by `--explain`.
    pub doc: String,
}

/// Wire protocol family of a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// 4.0.0 – 4.0.7: one genl command; `request_hdr` inside `ATTR_DATA`.
    Legacy(LegacyLayout),
    /// 4.0.8 and later: `joolnlhdr` as the genl user header, one genl
    /// command per operation.
    Joolnl {
        /// 24 (no magic) or 28 bytes (magic `"jool"`).
        header_len: usize,
    },
}

/// Layout of the legacy 16-byte `request_hdr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegacyLayout {
    /// 4.0.0 – 4.0.1: translator type as `'s'`/`'n'` at byte 4.
    TypeChar,
    /// 4.0.2 – 4.0.5: no translator type in the header.
    NoType,
    /// 4.0.6 – 4.0.7: `xt` byte at 4.
    Xt,
}

pub use crate::wire::family::Numbering;

/// What the client does with a stat id outside its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownStat {
    /// ≤ 4.1.12, rc1, rc2: fail with "unknown stat counter".
    Fail,
    /// 4.1.13+, main, rc3: warn on stderr and print `????`.
    Warn,
}

/// Checks the client makes on the reply's Jool header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyCheck {
    /// 4.0.x – 4.1.4, rc1: none.
    None,
    /// Magic, translator type, and the version with this rule.
    Magic(Compat),
}

/// How the client prints its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStyle {
    /// 4.0.0 – 4.0.1: raw text on stderr, no `Error: ` prefix.
    Bare,
    /// 4.0.2 and later: `Error: ` + message.
    Prefixed,
}

/// A Jool release's behaviour on the stats path.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Release name: `4.1.9`, `4.2.0-rc3`, `main`.
    pub release: String,
    /// Git tag, or commit id for `main`.
    pub tag: String,
    /// `xlat_version()` as sent on the wire (big-endian).
    pub wire_version: u32,
    /// Whether the kernel checks `CAP_NET_ADMIN` for stats.
    pub stats_requires_net_admin: bool,
    /// The kernel's version check.
    pub compat: Compat,
    /// `JSTAT_UNKNOWN`: the last id the kernel sends.
    pub max_id: u16,
    /// The client's table, ascending by id.
    pub stats: Vec<Stat>,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Op/attribute numbering (joolnl protocol).
    pub numbering: Numbering,
    /// Client handling of unknown ids.
    pub unknown_stat: UnknownStat,
    /// Client checks on the reply header.
    pub reply_check: ReplyCheck,
    /// Client error printing.
    pub error_style: ErrorStyle,
    /// Error replies carry `JNLAERR_MSG` even when empty (4.0.8 – 4.1.x,
    /// rc1), or only when a message was logged (rc2, rc3).
    pub always_error_msg: bool,
    /// Reply header flags are zeroed before the reply is built (rc2, rc3).
    pub zero_reply_flags: bool,
    /// Fixture file it was loaded from.
    pub file: String,
    /// [`release_key`] of `release`, for [`Profile::is_before`].
    key: ReleaseKey,
}

impl Profile {
    /// Every release, in release order (4.0.0 first, main last).
    ///
    /// # Panics
    /// If an embedded fixture is malformed; the `versions` tests name the
    /// file and line, so such a build never passes CI.
    pub fn all() -> &'static [Self] {
        static ALL: OnceLock<Vec<Profile>> = OnceLock::new();
        ALL.get_or_init(|| match Self::load_all() {
            Ok(v) => v,
            Err(errors) => {
                let text: Vec<String> =
                    errors.iter().map(ToString::to_string).collect();
                panic!("malformed version fixtures:\n{}", text.join("\n"))
            }
        })
    }

    /// The release named `name` (`4.1.9`, `4.2.0-rc3`, `main`). Parses
    /// only that release's fixture (a CLI that knows its release starts
    /// without reading the other tables).
    ///
    /// # Panics
    /// If that embedded fixture is malformed (the `versions` tests name
    /// the file and line, so such a build never passes CI).
    pub fn get(name: &str) -> Option<&'static Self> {
        static ONE: OnceLock<Vec<OnceLock<Profile>>> = OnceLock::new();
        let cells = ONE.get_or_init(|| {
            FIXTURES.iter().map(|_| OnceLock::new()).collect()
        });
        let i = FIXTURES
            .iter()
            .position(|(file, _)| file.strip_suffix(".toml") == Some(name))?;
        Some(cells[i].get_or_init(|| match Self::embedded(i) {
            Ok(p) => p,
            Err(e) => panic!("malformed version fixture: {e}"),
        }))
    }

    /// Release names, in order, for error messages and `--help`.
    pub fn names() -> Vec<&'static str> {
        Self::all().iter().map(|p| p.release.as_str()).collect()
    }

    /// The stat the client labels `id` with, if its table has it.
    pub fn stat(&self, id: u16) -> Option<&Stat> {
        let first = self.first_id();
        if id < first {
            return None;
        }
        self.stats.get(usize::from(id - first))
    }

    /// First stat id: 0 for the legacy protocol, else 1.
    pub fn first_id(&self) -> u16 {
        match self.protocol {
            Protocol::Legacy(_) => 0,
            Protocol::Joolnl { .. } => 1,
        }
    }

    /// Length of the genl user header (0 for legacy).
    pub fn header_len(&self) -> usize {
        match self.protocol {
            Protocol::Legacy(_) => 0,
            Protocol::Joolnl { header_len } => header_len,
        }
    }

    /// Whether the Jool header starts with the magic `"jool"`.
    pub fn has_magic(&self) -> bool {
        self.header_len() == 28
    }

    /// Whether this release comes before `release` in release order
    /// ([`cmp_releases`], with this side's key computed once).
    pub fn is_before(&self, release: &str) -> bool {
        self.key < release_key(release)
    }

    /// Whether this is the 4.0.0 – 4.0.7 protocol.
    pub fn is_legacy(&self) -> bool {
        matches!(self.protocol, Protocol::Legacy(_))
    }

    /// `xlat_version()` as a dotted quad: `4.1.9.0`.
    pub fn version_quad(&self) -> String {
        quad(self.wire_version)
    }

    /// Whether this kernel accepts a request carrying version `client`.
    pub fn kernel_accepts(&self, client: u32) -> bool {
        self.compat.accepts(self.wire_version, client)
    }

    /// genl family version the kernel registers.
    pub fn genl_version(&self) -> u8 {
        if self.is_legacy() {
            1
        } else {
            2
        }
    }

    /// `maxattr` of the genl family.
    pub fn maxattr(&self) -> u16 {
        if self.is_legacy() {
            3
        } else {
            self.numbering.maxattr()
        }
    }

    /// Whether the family's genl ops carry an attribute policy (nlctrl
    /// then reports `GENL_CMD_CAP_HASPOL`). 4.0.0 – 4.0.7 register their
    /// one op with `.doit` only, no `.policy` and no family policy
    /// (src/mod/common/nl/nl_handler.c); 4.0.8 and later give every op
    /// `JOOL_POLICY`. No release sets `GENL_ADMIN_PERM`.
    pub fn genl_ops_have_policy(&self) -> bool {
        !self.is_legacy()
    }

    /// Number of genl ops (commands 0 .. n-1) the family registers.
    pub fn op_count(&self) -> u8 {
        if self.is_legacy() {
            1
        } else {
            self.numbering.op_count()
        }
    }

    /// Attribute type of `JNLAR_OFFSET_U8`.
    pub fn offset_u8_attr(&self) -> u16 {
        self.numbering
            .attr(crate::wire::family::Attr::OffsetU8)
            .expect("every numbering has JNLAR_OFFSET_U8")
    }

    /// `JNLAG_LOWEST_IPV6_MTU`'s number, `None` before 4.1.0 (where every
    /// later global is numbered one lower). It arrived in 4.1.0 after
    /// `JNLAG_TOS` (7) and moved to 3 in 4.1.2, before the booleans
    /// (src/common/config.h of v4.0.9, v4.1.0, v4.1.2; seen in the real
    /// 4.0.9, 4.1.0 and 4.1.4 modules' replies, fixtures/matrix/cells/).
    pub fn lowest_ipv6_mtu_global(&self) -> Option<u16> {
        if self.is_before("4.1.0") {
            None
        } else if self.is_before("4.1.2") {
            Some(7)
        } else {
            Some(3)
        }
    }

    /// Whether the module types a prefix's address `NLA_UNSPEC` (4.0.8
    /// only; fixed in 4.0.9 by commit fad9dc98), which strict validation
    /// (Linux 5.2 and later) refuses: no pool6 with an address parses,
    /// Jool #326.
    pub fn prefix_address_unspec(&self) -> bool {
        self.release == "4.0.8"
    }

    /// Text of the capability error the kernel logs.
    pub fn cap_error_text(&self) -> &'static str {
        if !self.is_legacy() {
            "CAP_NET_ADMIN capability required. (Maybe try su or sudo?)"
        } else if self.error_style == ErrorStyle::Bare {
            "Administrative privileges required."
        } else {
            "CAP_NET_ADMIN capability required. (Maybe try using su or sudo?)"
        }
    }
}

/// A version word as `A.B.C.D`.
pub fn quad(v: u32) -> String {
    let b = v.to_be_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_is_before_is_cmp_releases() {
        let all = Profile::all();
        for p in all {
            for q in all {
                let want = cmp_releases(&p.release, &q.release).is_lt();
                assert_eq!(
                    p.is_before(&q.release),
                    want,
                    "{} {}",
                    p.release,
                    q.release
                );
            }
            for r in ["4.0.4", "4.2.0-rc2", "main", "9.9.9", "4.1.9-rc1", "x"]
            {
                let want = cmp_releases(&p.release, r).is_lt();
                assert_eq!(p.is_before(r), want, "{} {r}", p.release);
            }
        }
    }

    #[test]
    fn test_get_4_1_9() {
        let p = Profile::get("4.1.9").unwrap();
        assert_eq!(p.wire_version, 0x0401_0900);
        assert_eq!(p.compat, Compat::MajorMinor);
        assert_eq!(p.stats.len(), 69);
        assert_eq!(p.stat(1).unwrap().name, "JSTAT_RECEIVED6");
        assert_eq!(p.stat(69).unwrap().name, "JSTAT_UNKNOWN");
        assert!(p.stat(0).is_none() && p.stat(70).is_none());
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.version_quad(), "4.1.9.0");
        assert_eq!(p.unknown_stat, UnknownStat::Fail);
        assert_eq!(p.reply_check, ReplyCheck::Magic(Compat::Exact));
    }

    #[test]
    fn test_ranges() {
        let g = |n| Profile::get(n).unwrap();
        assert_eq!(
            g("4.0.0").protocol,
            Protocol::Legacy(LegacyLayout::TypeChar)
        );
        assert_eq!(
            g("4.0.5").protocol,
            Protocol::Legacy(LegacyLayout::NoType)
        );
        assert_eq!(g("4.0.7").protocol, Protocol::Legacy(LegacyLayout::Xt));
        assert_eq!(g("4.0.8").header_len(), 24);
        assert_eq!(g("4.1.4").header_len(), 24);
        assert_eq!(g("4.1.5").header_len(), 28);
        assert_eq!(g("4.2.0-rc1").header_len(), 24);
        assert_eq!(g("4.2.0-rc2").header_len(), 28);
        assert_eq!(g("4.1.13").unknown_stat, UnknownStat::Warn);
        assert_eq!(g("4.1.12").unknown_stat, UnknownStat::Fail);
        assert_eq!(g("4.2.0-rc3").unknown_stat, UnknownStat::Warn);
        assert_eq!(g("4.2.0-rc3").offset_u8_attr(), 10);
        assert_eq!(
            g("4.1.10").reply_check,
            ReplyCheck::Magic(Compat::MajorMinor)
        );
        assert!(g("4.1.4").stats_requires_net_admin);
        assert!(!g("4.1.5").stats_requires_net_admin);
        assert_eq!(g("4.0.0").first_id(), 0);
    }

    #[test]
    fn test_compat() {
        assert!(Compat::MajorMinor.accepts(0x0401_0900, 0x0401_ff05));
        assert!(!Compat::MajorMinor.accepts(0x0401_0900, 0x0402_0000));
        assert!(!Compat::Exact.accepts(0x0401_0800, 0x0401_0900));
    }
}
