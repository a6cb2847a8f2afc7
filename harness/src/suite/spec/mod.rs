//! The suite file format (`fixtures/suites/*.toml`), as parsed from TOML,
//! and the checks made when loading it. See `docs/suites.md`.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::Deserialize;

mod release;
mod validate;

pub use release::{release_matches, release_target_error};

/// One suite file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// `[suite]`: name, description and defaults.
    pub suite: SuiteMeta,
    /// `[[case]]`s, in order.
    #[serde(default, rename = "case")]
    pub cases: Vec<Case>,
    /// The file it came from (set by [`Suite::load`]).
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[suite]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteMeta {
    /// Name (JUnit `testsuite`).
    pub name: String,
    /// What the suite covers.
    #[serde(default)]
    pub description: String,
    /// Releases the cases target unless a case says otherwise.
    #[serde(default)]
    pub releases: Vec<String>,
}

/// Which Jool modules are loaded while a case runs.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Modules {
    /// `jool_siit` and `jool`.
    #[default]
    Both,
    /// Neither: the family does not exist.
    None,
    /// Only `jool` (NAT64).
    Nat64,
    /// Only `jool_siit`.
    Siit,
}

impl Modules {
    /// Whether (`jool_siit`, `jool`) are loaded.
    pub fn loaded(self) -> (bool, bool) {
        match self {
            Self::Both => (true, true),
            Self::None => (false, false),
            Self::Siit => (true, false),
            Self::Nat64 => (false, true),
        }
    }
}

/// `[[case]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Name, unique in its suite.
    pub name: String,
    /// What the case checks.
    #[serde(default)]
    pub description: String,
    /// Target releases (see [`release_matches`]: `4.1.9`, `4.1.1*`,
    /// `>=4.1.5,<4.2.0-rc1`); empty: the suite's, and if that is empty
    /// too, every release.
    #[serde(default)]
    pub releases: Vec<String>,
    /// Backends it runs on (`sim`, `kernel`); empty: all.
    #[serde(default)]
    pub backends: Vec<String>,
    /// Clients it runs with (`jool-stats`, `real`); empty: all.
    #[serde(default)]
    pub clients: Vec<String>,
    /// Modules loaded during the case.
    #[serde(default)]
    pub modules: Modules,
    /// Sim only: the reply budget in bytes (forces pagination).
    #[serde(default)]
    pub sim_msg_budget: Option<usize>,
    /// Steps, in order.
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
}

/// Who runs a command.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum User {
    /// uid 65534 with no capabilities (`setpriv ... --inh-caps=-all`).
    Nobody,
    /// root with every capability.
    #[default]
    Root,
    /// root of a new user namespace (`unshare -Ur`): no capability in the
    /// initial user namespace.
    UsernsRoot,
}

impl User {
    /// The name used in suite files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nobody => "nobody",
            Self::Root => "root",
            Self::UsernsRoot => "userns-root",
        }
    }
}

/// One step: exactly one of `run`, `topology`, `traffic`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A `jool`/`jool_siit` command line (words split as a shell would,
    /// with quotes; no expansions).
    pub run: Option<String>,
    /// A traffic topology to build (`siit`, `nat64`).
    pub topology: Option<String>,
    /// A traffic recipe to send (see `recipes`).
    pub traffic: Option<String>,
    /// The network namespace: `init` (default), a name (created for the
    /// case), or `new` (a fresh one for this step only).
    #[serde(default)]
    pub netns: Option<String>,
    /// Who runs it.
    #[serde(default, rename = "as")]
    pub user: User,
    /// Expected exit status (default 0 for `run` steps).
    pub status: Option<i32>,
    /// Expected stdout, exactly.
    pub stdout: Option<String>,
    /// Expected stdout, exactly, from a file beside the suite.
    pub stdout_file: Option<String>,
    /// Expected stdout where `{n}` matches any decimal number.
    pub stdout_pattern: Option<String>,
    /// Like `stdout_pattern`, from a file beside the suite.
    pub stdout_pattern_file: Option<String>,
    /// Strings stdout must contain.
    #[serde(default)]
    pub stdout_contains: Vec<String>,
    /// Expected stderr, exactly.
    pub stderr: Option<String>,
    /// Strings stderr must contain.
    #[serde(default)]
    pub stderr_contains: Vec<String>,
    /// Expected stdout in `snapshots/<suite>__<name>.snap` beside the
    /// suite (written by `--bless`).
    pub snapshot: Option<String>,
    /// Traffic steps: counter deltas (`"N"` or `"==N"` exact, `">=N"` at
    /// least), by stat name.
    #[serde(default)]
    pub deltas: BTreeMap<String, String>,
    /// Expectations for some releases only (`[[case.step.when]]`): the
    /// first whose `releases` select the kernel's release replaces what
    /// it sets ([`Step::for_release`]).
    #[serde(default)]
    pub when: Vec<When>,
}

/// A step's expectations on the releases `releases` selects, where a
/// release's client or kernel says something else (4.0.x's error texts,
/// a stat table without `JSTAT_RECEIVED6`). Each field set replaces the
/// step's own; `deltas`, when given, replaces all of them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Release selectors, as a case's `releases`.
    pub releases: Vec<String>,
    /// Expected exit status.
    pub status: Option<i32>,
    /// Expected stdout, exactly.
    pub stdout: Option<String>,
    /// Strings stdout must contain.
    pub stdout_contains: Option<Vec<String>>,
    /// Expected stderr, exactly.
    pub stderr: Option<String>,
    /// Traffic steps: the counter deltas.
    #[serde(default)]
    pub deltas: BTreeMap<String, String>,
}

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind<'a> {
    /// A client command.
    Run(&'a str),
    /// A topology.
    Topology(&'a str),
    /// A traffic recipe.
    Traffic(&'a str),
}

impl Step {
    /// The step's kind.
    ///
    /// # Panics
    /// If the step was not validated by [`Suite::load`].
    pub fn kind(&self) -> StepKind<'_> {
        match (&self.run, &self.topology, &self.traffic) {
            (Some(r), None, None) => StepKind::Run(r),
            (None, Some(t), None) => StepKind::Topology(t),
            (None, None, Some(t)) => StepKind::Traffic(t),
            // Suite::load rejects every other combination.
            _ => unreachable!("unvalidated step"),
        }
    }

    /// The step as it applies to `release`: the first of its `when`
    /// blocks that selects `release` laid over it, or the step itself.
    pub fn for_release(&self, release: &str) -> Cow<'_, Self> {
        let Some(w) =
            self.when.iter().find(|w| release_matches(&w.releases, release))
        else {
            return Cow::Borrowed(self);
        };
        let mut s = self.clone();
        s.when.clear();
        if let Some(v) = w.status {
            s.status = Some(v);
        }
        if let Some(v) = &w.stdout {
            s.stdout = Some(v.clone());
        }
        if let Some(v) = &w.stdout_contains {
            s.stdout_contains = v.clone();
        }
        if let Some(v) = &w.stderr {
            s.stderr = Some(v.clone());
        }
        if !w.deltas.is_empty() {
            s.deltas = w.deltas.clone();
        }
        Cow::Owned(s)
    }

    /// The namespace name (`init` when not given).
    pub fn netns(&self) -> &str {
        self.netns.as_deref().unwrap_or("init")
    }

    /// A one-line description for reports.
    pub fn describe(&self) -> String {
        let what = match self.kind() {
            StepKind::Run(r) => r.to_owned(),
            StepKind::Topology(t) => format!("topology {t}"),
            StepKind::Traffic(t) => format!("traffic {t}"),
        };
        let mut ctx = Vec::new();
        if self.netns() != "init" {
            ctx.push(format!("netns {}", self.netns()));
        }
        if self.user != User::Root {
            ctx.push(format!("as {}", self.user.name()));
        }
        if ctx.is_empty() {
            what
        } else {
            format!("({}) {what}", ctx.join(", "))
        }
    }
}

/// A counter delta bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delta {
    /// Exactly this much.
    Exact(u64),
    /// At least this much.
    AtLeast(u64),
}

impl Delta {
    /// Parses `N`, `==N` or `>=N`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Some(n) = s.strip_prefix(">=") {
            return n.trim().parse().ok().map(Self::AtLeast);
        }
        s.strip_prefix("==").unwrap_or(s).trim().parse().ok().map(Self::Exact)
    }

    /// The least change that satisfies it (what the sim applies).
    pub fn minimum(self) -> u64 {
        match self {
            Self::Exact(n) | Self::AtLeast(n) => n,
        }
    }

    /// Whether `got` satisfies it.
    pub fn accepts(self, got: u64) -> bool {
        match self {
            Self::Exact(n) => got == n,
            Self::AtLeast(n) => got >= n,
        }
    }
}

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(n) => write!(f, "== {n}"),
            Self::AtLeast(n) => write!(f, ">= {n}"),
        }
    }
}

/// A suite that cannot be used.
#[derive(Debug)]
pub struct SpecError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for SpecError {}

impl Suite {
    /// Reads, parses and checks one suite file.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let err =
            |message: String| SpecError { path: path.to_owned(), message };
        let text =
            std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut suite: Self =
            toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        suite.path = path.to_owned();
        suite.validate().map_err(err)?;
        Ok(suite)
    }

    /// The folder holding the suite (for `stdout_file` and snapshots).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The releases case `c` targets (empty: any).
    pub fn releases<'a>(&'a self, c: &'a Case) -> &'a [String] {
        if c.releases.is_empty() {
            &self.suite.releases
        } else {
            &c.releases
        }
    }
}

/// A quote a command line opens and does not close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnterminatedQuote {
    /// `'` or `"`.
    pub quote: char,
    /// The command line.
    pub line: String,
}

impl fmt::Display for UnterminatedQuote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unterminated {} in: {}", self.quote, self.line)
    }
}

impl std::error::Error for UnterminatedQuote {}

/// Splits a command line into words: whitespace separates, single and
/// double quotes group (no escapes inside single quotes, `\` escapes the
/// next character elsewhere). No expansions.
///
/// # Errors
/// [`UnterminatedQuote`] for a quote left open.
pub fn split_words(line: &str) -> Result<Vec<String>, UnterminatedQuote> {
    let open = |quote| UnterminatedQuote { quote, line: line.to_owned() };
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            c if c.is_whitespace() => words.extend(cur.take()),
            '\'' => loop {
                let w = cur.get_or_insert_with(String::new);
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => w.push(c),
                    None => return Err(open('\'')),
                }
            },
            '"' => loop {
                let w = cur.get_or_insert_with(String::new);
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => w.extend(chars.next()),
                    Some(c) => w.push(c),
                    None => return Err(open('"')),
                }
            },
            '\\' => cur.get_or_insert_with(String::new).extend(chars.next()),
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(cur);
    Ok(words)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_when_blocks_override_by_release() {
        let text = r#"
[suite]
name = "w"
[[case]]
name = "c"
[[case.step]]
run = "jool_siit stats display"
status = 3
stdout = "x"
stderr = "new\n"
[[case.step.when]]
releases = ["<4.0.2"]
stderr = "old\n"
status = 244
[[case.step.when]]
releases = ["<4.0.6"]
stderr = "middle\n"
"#;
        let s: Suite = toml::from_str(text).unwrap();
        s.validate().unwrap();
        let step = &s.cases[0].steps[0];
        let at = |r| step.for_release(r).into_owned();
        let (a, b, c) = (at("4.0.1"), at("4.0.5"), at("4.1.9"));
        assert_eq!(
            (a.status, a.stderr.as_deref()),
            (Some(244), Some("old\n"))
        );
        assert_eq!(
            (b.status, b.stderr.as_deref()),
            (Some(3), Some("middle\n"))
        );
        assert_eq!((c.status, c.stderr.as_deref()), (Some(3), Some("new\n")));
        assert_eq!(a.stdout.as_deref(), Some("x"), "what a block omits stays");
        let bad = text.replace("<4.0.2", "<4.0.99");
        let s: Suite = toml::from_str(&bad).unwrap();
        assert!(s.validate().unwrap_err().contains("when 1: releases"));
        let bad =
            text.replace("status = 244", "deltas = { JSTAT_SUCCESS = \"1\" }");
        let s: Suite = toml::from_str(&bad).unwrap();
        assert!(s.validate().unwrap_err().contains("deltas belong"));
    }

    #[test]
    fn test_split_words() {
        let w = split_words(r#"jool_siit -i 'a b' stats "dis\"play"  x\ y"#)
            .unwrap();
        assert_eq!(w, ["jool_siit", "-i", "a b", "stats", "dis\"play", "x y"]);
        assert_eq!(split_words("jool ''").unwrap(), ["jool", ""]);
        assert!(split_words("jool 'x").is_err());
    }

    #[test]
    fn test_delta_parse() {
        assert_eq!(Delta::parse(">= 3"), Some(Delta::AtLeast(3)));
        assert_eq!(Delta::parse("==2"), Some(Delta::Exact(2)));
        assert_eq!(Delta::parse("4"), Some(Delta::Exact(4)));
        assert_eq!(Delta::parse("x"), None);
        assert!(Delta::AtLeast(3).accepts(5) && !Delta::Exact(3).accepts(5));
    }
}
