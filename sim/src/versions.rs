//! One [`Profile`] per Jool release: what the kernel module and the
//! userspace client of that release do on the `stats` path.
//!
//! The stat tables come from `fixtures/versions/*.toml` (embedded at build
//! time, so binaries carry them). The protocol facts that the fixtures do
//! not spell out (header layout, op and attribute numbering, client rules,
//! error texts) are derived from the release number here, following
//! `fixtures/versions/protocol.md`, `client-output.md` and
//! `kernel-errors.md`.

use std::{cmp::Ordering, fmt, sync::OnceLock};

use serde::Deserialize;

/// Every `fixtures/versions/*.toml`, as `(file name, contents)`.
const FIXTURES: &[(&str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

/// The same fixtures as JSON, converted by build.rs (`None`: the TOML did
/// not parse there; [`Profile::from_toml`] then reports why).
const FIXTURES_JSON: &[Option<&str>] =
    include!(concat!(env!("OUT_DIR"), "/fixtures_json.rs"));

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

/// The `[[stat]]`-table fixture as written on disk.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    version: String,
    tag: String,
    wire_version: u32,
    stats_requires_net_admin: bool,
    compat: String,
    max_id: u16,
    stat: Vec<Stat>,
}

/// A fixture that does not describe a consistent release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureError {
    /// File name under `fixtures/versions/`.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(
                f,
                "fixtures/versions/{}:{l}: {}",
                self.file, self.message
            ),
            None => {
                write!(f, "fixtures/versions/{}: {}", self.file, self.message)
            }
        }
    }
}

impl std::error::Error for FixtureError {}

/// Sort key of a release name (see [`release_key`]).
type ReleaseKey = (u32, u32, u32, u32);

/// Sort key of a release name: numeric parts, rc before final, main last.
fn release_key(name: &str) -> ReleaseKey {
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

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Line of the `[[stat]]` entry holding `id = N` (for error messages).
fn line_of_stat(text: &str, index: usize) -> Option<usize> {
    text.match_indices("[[stat]]").nth(index).map(|(o, _)| line_of(text, o))
}

impl Profile {
    /// Parses one fixture; `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, FixtureError> {
        let err = |line, message: String| FixtureError {
            file: file.to_owned(),
            line,
            message,
        };
        let fx: Fixture = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            err(line, e.message().to_owned())
        })?;
        Self::from_fixture(file, text, fx)
    }

    /// Embedded fixture `i`: from build.rs's JSON when it reads, else
    /// from the TOML (whose errors name a line).
    fn embedded(i: usize) -> Result<Self, FixtureError> {
        let (file, text) = FIXTURES[i];
        match FIXTURES_JSON[i].map(serde_json::from_str::<Fixture>) {
            Some(Ok(fx)) => Self::from_fixture(file, text, fx),
            _ => Self::from_toml(file, text),
        }
    }

    /// Checks a parsed fixture and derives the release's protocol facts;
    /// `text` (the TOML) locates errors.
    fn from_fixture(
        file: &str,
        text: &str,
        fx: Fixture,
    ) -> Result<Self, FixtureError> {
        let err = |line, message: String| FixtureError {
            file: file.to_owned(),
            line,
            message,
        };
        let compat = match fx.compat.as_str() {
            "exact" => Compat::Exact,
            "major.minor" => Compat::MajorMinor,
            other => {
                let line = text.find("compat").map(|o| line_of(text, o));
                return Err(err(
                    line,
                    format!("unknown compat rule {other:?}"),
                ));
            }
        };
        let legacy = release_key(&fx.version) < release_key("4.0.8");
        let first = if legacy { 0 } else { 1 };
        for (i, s) in fx.stat.iter().enumerate() {
            let want = first + i as u16;
            if s.id != want {
                return Err(err(
                    line_of_stat(text, i),
                    format!(
                        "stat {} has id {}, expected {want}",
                        s.name, s.id
                    ),
                ));
            }
            if s.name.is_empty() || !s.name.starts_with("JSTAT") {
                return Err(err(
                    line_of_stat(text, i),
                    format!("bad stat name {:?}", s.name),
                ));
            }
        }
        match fx.stat.last() {
            Some(s) if s.id == fx.max_id && s.name == "JSTAT_UNKNOWN" => {}
            _ => {
                let line = text.find("max_id").map(|o| line_of(text, o));
                return Err(err(
                    line,
                    format!("max_id {} is not the id of the last stat, JSTAT_UNKNOWN", fx.max_id),
                ));
            }
        }
        let expected = format!("{}.toml", fx.version);
        if file != expected && !file.is_empty() {
            return Err(err(
                Some(line_of(text, text.find("version").unwrap_or(0))),
                format!(
                    "version {:?} does not match the file name",
                    fx.version
                ),
            ));
        }
        Ok(Self::derive(fx, compat, file))
    }

    fn derive(fx: Fixture, compat: Compat, file: &str) -> Self {
        let v = fx.version.as_str();
        let k = release_key(v);
        let at_least = |r: &str| k >= release_key(r);
        let is_rc = v.contains("-rc");
        let protocol = if !at_least("4.0.8") {
            Protocol::Legacy(if !at_least("4.0.2") {
                LegacyLayout::TypeChar
            } else if !at_least("4.0.6") {
                LegacyLayout::NoType
            } else {
                LegacyLayout::Xt
            })
        } else if v == "4.2.0-rc1" || !at_least("4.1.5") {
            Protocol::Joolnl { header_len: 24 }
        } else {
            Protocol::Joolnl { header_len: 28 }
        };
        let magic = protocol == Protocol::Joolnl { header_len: 28 };
        let unknown_stat = if v == "main"
            || v == "4.2.0-rc3"
            || (!is_rc && at_least("4.1.13"))
        {
            UnknownStat::Warn
        } else {
            UnknownStat::Fail
        };
        let reply_check = if !magic {
            ReplyCheck::None
        } else if v == "4.2.0-rc3" || (!is_rc && at_least("4.1.10")) {
            ReplyCheck::Magic(Compat::MajorMinor)
        } else {
            ReplyCheck::Magic(Compat::Exact)
        };
        Self {
            key: k,
            numbering: if is_rc { Numbering::MapT } else { Numbering::Jool41 },
            unknown_stat,
            reply_check,
            error_style: if at_least("4.0.2") {
                ErrorStyle::Prefixed
            } else {
                ErrorStyle::Bare
            },
            always_error_msg: !(v == "4.2.0-rc2" || v == "4.2.0-rc3"),
            zero_reply_flags: v == "4.2.0-rc2" || v == "4.2.0-rc3",
            protocol,
            release: fx.version,
            tag: fx.tag,
            wire_version: fx.wire_version,
            stats_requires_net_admin: fx.stats_requires_net_admin,
            compat,
            max_id: fx.max_id,
            stats: fx.stat,
            file: file.to_owned(),
        }
    }

    /// Loads every embedded fixture, reporting every malformed one.
    pub fn load_all() -> Result<Vec<Self>, Vec<FixtureError>> {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for i in 0..FIXTURES.len() {
            match Self::embedded(i) {
                Ok(p) => ok.push(p),
                Err(e) => bad.push(e),
            }
        }
        if !bad.is_empty() {
            return Err(bad);
        }
        ok.sort_by(|a, b| cmp_releases(&a.release, &b.release));
        Ok(ok)
    }

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
    fn test_every_fixture_loads() {
        if let Err(errors) = Profile::load_all() {
            let text: Vec<String> =
                errors.iter().map(ToString::to_string).collect();
            panic!("{}", text.join("\n"));
        }
        assert_eq!(Profile::all().len(), FIXTURES.len());
        // build.rs's JSON reads to exactly what the TOML says.
        assert_eq!(FIXTURES_JSON.len(), FIXTURES.len());
        for (i, (file, text)) in FIXTURES.iter().enumerate() {
            assert!(FIXTURES_JSON[i].is_some(), "{file}: no JSON");
            assert_eq!(
                format!("{:?}", Profile::embedded(i).unwrap()),
                format!("{:?}", Profile::from_toml(file, text).unwrap()),
                "{file}"
            );
        }
    }

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
    fn test_malformed_fixture_names_file_and_line() {
        let text =
            "version = \"9.9.9\"\ntag = \"x\"\nwire_version = \"oops\"\n";
        let e = Profile::from_toml("9.9.9.toml", text).unwrap_err();
        assert_eq!(e.file, "9.9.9.toml");
        assert_eq!(e.line, Some(3));
        assert!(
            e.to_string().starts_with("fixtures/versions/9.9.9.toml:3:"),
            "{e}"
        );
    }

    #[test]
    fn test_bad_id_sequence_is_reported() {
        let good =
            FIXTURES.iter().find(|(f, _)| *f == "4.1.9.toml").unwrap().1;
        let bad = good.replacen("id = 2\n", "id = 7\n", 1);
        let e = Profile::from_toml("4.1.9.toml", &bad).unwrap_err();
        assert!(e.message.contains("expected 2"), "{e}");
        assert_eq!(
            e.line,
            Some(bad.find("id = 7").map(|o| line_of(&bad, o)).unwrap() - 1)
        );
    }

    #[test]
    fn test_compat() {
        assert!(Compat::MajorMinor.accepts(0x0401_0900, 0x0401_ff05));
        assert!(!Compat::MajorMinor.accepts(0x0401_0900, 0x0402_0000));
        assert!(!Compat::Exact.accepts(0x0401_0800, 0x0401_0900));
    }
}
