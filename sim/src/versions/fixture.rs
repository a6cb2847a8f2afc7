//! `fixtures/versions/*.toml`, embedded at build time: parsed, checked,
//! and turned into [`Profile`]s.

use std::fmt;

use serde::Deserialize;

use super::{
    cmp_releases, release_key, Compat, ErrorStyle, LegacyLayout, Numbering,
    Profile, Protocol, ReplyCheck, Stat, UnknownStat,
};

/// Every `fixtures/versions/*.toml`, as `(file name, contents)`.
pub(super) const FIXTURES: &[(&str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

/// The same fixtures as JSON, converted by build.rs (`None`: the TOML did
/// not parse there; [`Profile::from_toml`] then reports why).
const FIXTURES_JSON: &[Option<&str>] =
    include!(concat!(env!("OUT_DIR"), "/fixtures_json.rs"));

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
    pub(super) fn embedded(i: usize) -> Result<Self, FixtureError> {
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
}
