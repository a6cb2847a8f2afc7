//! `jool-harness versions import PATH`: a release's profile, read from a
//! Jool source tree (a git checkout or a release tarball's folder) and
//! written exactly in the format of `fixtures/versions/<release>.toml`.
//!
//! What is read, and from where (the layouts of 4.0.0 – 4.0.1, 4.0.2 –
//! 4.0.7 and 4.0.8+ differ):
//!
//! | fact | source |
//! |---|---|
//! | release, tag | `git describe --tags --exact-match` (else the branch and the commit) in a checkout; `AC_INIT` of `configure.ac` in a tarball |
//! | `wire_version` | `JOOL_VERSION_MAJOR/MINOR/REV/DEV` of `src/common/xlat.h` |
//! | ids, names | `enum jool_stat_id` of `src/common/stats.h`, up to `JSTAT_UNKNOWN` |
//! | docs | `jstat_metadatas` of `src/usr/nl/stats.c` (4.0.2+) or `src/usr/common/nl/stats.c`: string literals, `TC`, and the `OPTNAME_*` of `src/common/config.h` |
//! | `compat` | the body of the kernel's `validate_version()`: a `0xFFFF0000` mask is major.minor, else `xlat_version() ==` is exact |
//! | `stats_requires_net_admin` | the `request_handle_start()`/`jnl_start()` call in `src/mod/common/nl/stats.c` (its `require_net_admin` argument; 3 arguments: the function always checks), or the legacy handler's `verify_superpriv()` |
//!
//! The kernel enum and the client table must agree id by id; the output
//! must load back as a [`Profile`].

use std::{
    fmt, fs,
    path::{Path, PathBuf},
    process::Command,
};

use jool_sim::versions::{quad, Compat, Profile, Stat};

use super::predict::compat_name;

mod lex;
mod protocol;
mod stats;

use protocol::{compat, configure_version, net_admin, wire_version};

use lex::Token;

/// The kernel's stat enum.
pub const STATS_H: &str = "src/common/stats.h";
/// The version numbers.
pub const XLAT_H: &str = "src/common/xlat.h";
/// The `OPTNAME_*` strings of 4.0.x docs.
pub const CONFIG_H: &str = "src/common/config.h";
/// The client table: 4.0.2+, then 4.0.0 – 4.0.1.
pub const TABLES: [&str; 2] =
    ["src/usr/nl/stats.c", "src/usr/common/nl/stats.c"];
/// Where the kernel's `validate_version()` lives: 4.0.8+, 4.0.2 – 4.0.7,
/// 4.0.0 – 4.0.1.
pub const VALIDATE_VERSION: [&str; 3] = [
    "src/mod/common/nl/nl_common.c",
    "src/mod/common/nl/nl_handler.c",
    "src/common/netlink/config.c",
];
/// The kernel's stats handler (4.0.8+).
pub const STATS_HANDLER: &str = "src/mod/common/nl/stats.c";
/// `request_handle_start()` (4.0.8+).
pub const NL_COMMON: &str = "src/mod/common/nl/nl_common.c";
/// The legacy request handler (4.0.0 – 4.0.7).
pub const NL_HANDLER: &str = "src/mod/common/nl/nl_handler.c";

/// What the importer could not read or make sense of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportError {
    /// The file, relative to the tree.
    pub file: Option<String>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl ImportError {
    fn new(
        file: &str,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self { file: Some(file.to_owned()), line, message: message.into() }
    }

    fn bare(message: impl Into<String>) -> Self {
        Self { file: None, line: None, message: message.into() }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => {
                write!(f, "{file}:{line}: {}", self.message)
            }
            (Some(file), None) => write!(f, "{file}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ImportError {}

/// Release name and tag to use instead of what the tree says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--release`.
    pub release: Option<String>,
    /// `--tag`.
    pub tag: Option<String>,
}

/// A release's profile as read from its sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// Release name.
    pub release: String,
    /// Git tag, or commit.
    pub tag: String,
    /// `xlat_version()`.
    pub wire_version: u32,
    /// Whether stats needs CAP_NET_ADMIN.
    pub stats_requires_net_admin: bool,
    /// The kernel's version check.
    pub compat: Compat,
    /// Where `validate_version()` was found.
    pub compat_file: &'static str,
    /// Where the client table was found.
    pub table_file: &'static str,
    /// `JSTAT_UNKNOWN`.
    pub max_id: u16,
    /// The stats, ascending by id.
    pub stats: Vec<Stat>,
}

/// A source tree.
struct Tree<'a> {
    root: &'a Path,
}

impl Tree<'_> {
    fn has(&self, rel: &str) -> bool {
        self.root.join(rel).is_file()
    }

    fn read(&self, rel: &str) -> Result<String, ImportError> {
        fs::read_to_string(self.root.join(rel))
            .map_err(|e| ImportError::new(rel, None, e.to_string()))
    }

    fn lex(&self, rel: &str) -> Result<Vec<Token>, ImportError> {
        lex::lex(&self.read(rel)?)
            .map_err(|e| ImportError::new(rel, Some(e.line), e.message))
    }
}

fn parse_int(text: &str) -> Option<u32> {
    let t = text.trim_end_matches(['u', 'U', 'l', 'L']);
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// Index of the first window of `toks` that `matches`.
fn find(
    toks: &[Token],
    len: usize,
    matches: impl Fn(&[Token]) -> bool,
) -> Option<usize> {
    toks.windows(len).position(matches)
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out =
        Command::new("git").arg("-C").arg(root).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status
        .success()
        .then(|| text.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Release name and tag: from git in a checkout, else configure.ac.
fn release_and_tag(
    tree: &Tree<'_>,
    ov: &Overrides,
) -> Result<(String, String), ImportError> {
    if let (Some(r), Some(t)) = (&ov.release, &ov.tag) {
        return Ok((r.clone(), t.clone()));
    }
    let (release, tag) = if tree.root.join(".git").exists() {
        match git(tree.root, &["describe", "--tags", "--exact-match", "HEAD"])
        {
            Some(tag) => {
                (tag.strip_prefix('v').unwrap_or(&tag).to_owned(), tag)
            }
            None => {
                let commit = git(tree.root, &["rev-parse", "HEAD"])
                    .ok_or_else(|| {
                        ImportError::bare("`git rev-parse HEAD` failed")
                    })?;
                let branch =
                    git(tree.root, &["rev-parse", "--abbrev-ref", "HEAD"])
                        .filter(|b| b != "HEAD");
                let branch = branch.or_else(|| ov.release.clone()).ok_or_else(|| {
                    ImportError::bare("HEAD is neither at a tag nor on a branch; pass --release")
                })?;
                (branch, commit)
            }
        }
    } else {
        let v = configure_version(tree)?;
        (v.clone(), format!("v{v}"))
    };
    Ok((ov.release.clone().unwrap_or(release), ov.tag.clone().unwrap_or(tag)))
}

/// Reads a release's profile from the tree at `root`.
pub fn read_tree(
    root: &Path,
    ov: &Overrides,
) -> Result<Imported, ImportError> {
    let tree = Tree { root };
    if !root.join(STATS_H).is_file() {
        return Err(ImportError::bare(format!(
            "{} has no {STATS_H}; is it a Jool source tree?",
            root.display()
        )));
    }
    let table_file =
        TABLES.into_iter().find(|f| tree.has(f)).ok_or_else(|| {
            ImportError::bare(format!("none of {} exists", TABLES.join(", ")))
        })?;
    let stats = stats::stats(&tree, table_file)?;
    let (compat, compat_file) = compat(&tree)?;
    let (release, tag) = release_and_tag(&tree, ov)?;
    Ok(Imported {
        release,
        tag,
        wire_version: wire_version(&tree)?,
        stats_requires_net_admin: net_admin(&tree)?,
        compat,
        compat_file,
        table_file,
        max_id: stats.last().map_or(0, |s| s.id),
        stats,
    })
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    format!("\"{}\"", escape(s).replace('\n', "\\n"))
}

/// Escapes for a TOML (multi-line) basic string; newlines stay.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out
}

/// The fixture text of `i`.
pub fn to_toml(i: &Imported) -> String {
    let mut s = format!(
        "# Jool {}: `stats` metadata as held by the userspace client\n",
        i.release
    );
    s.push_str(&format!(
        "# ({STATS_H} enum jool_stat_id + {} jstat_metadatas).\n",
        i.table_file
    ));
    s.push_str("# Generated by tools/extract-jool-versions.py from github.com/NICMx/Jool.\n");
    s.push_str(&format!(
        "version = {}\ntag = {}\n",
        toml_str(&i.release),
        toml_str(&i.tag)
    ));
    s.push_str(&format!(
        "wire_version = 0x{:08x}  # {}\n",
        i.wire_version,
        quad(i.wire_version)
    ));
    s.push_str(&format!(
        "stats_requires_net_admin = {}\n",
        i.stats_requires_net_admin
    ));
    s.push_str(&format!(
        "compat = \"{}\"  # kernel-side validate_version() in {}\n",
        compat_name(i.compat),
        i.compat_file
    ));
    s.push_str(&format!(
        "max_id = {}  # JSTAT_UNKNOWN: last id the kernel sends\n",
        i.max_id
    ));
    for st in &i.stats {
        s.push_str(&format!(
            "\n[[stat]]\nid = {}\nname = {}\ndoc = \"\"\"{}\"\"\"\n",
            st.id,
            toml_str(&st.name),
            escape(&st.doc)
        ));
    }
    s
}

/// File name of a release's fixture.
pub fn file_name(release: &str) -> String {
    format!("{release}.toml")
}

/// Reads the tree and returns the fixture text, checked to load back as
/// a [`Profile`] with the same table.
pub fn import_text(
    root: &Path,
    ov: &Overrides,
) -> Result<(String, String), ImportError> {
    let i = read_tree(root, ov)?;
    let text = to_toml(&i);
    let file = file_name(&i.release);
    let p = Profile::from_toml(&file, &text).map_err(|e| {
        ImportError::bare(format!("the output does not load back: {e}"))
    })?;
    if p.stats != i.stats || p.wire_version != i.wire_version || p.tag != i.tag
    {
        return Err(ImportError::bare(
            "the output does not load back to the same table",
        ));
    }
    Ok((file, text))
}

/// Imports the tree at `root` into `out_dir/<release>.toml`.
pub fn import(
    root: &Path,
    ov: &Overrides,
    out_dir: &Path,
) -> Result<PathBuf, ImportError> {
    let (file, text) = import_text(root, ov)?;
    fs::create_dir_all(out_dir).map_err(|e| {
        ImportError::bare(format!("{}: {e}", out_dir.display()))
    })?;
    let path = out_dir.join(file);
    fs::write(&path, text)
        .map_err(|e| ImportError::bare(format!("{}: {e}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_escape() {
        assert_eq!(escape("a \"b\"\nc\\"), "a \\\"b\\\"\nc\\\\");
        assert_eq!(toml_str("x\ny"), "\"x\\ny\"");
    }
}
