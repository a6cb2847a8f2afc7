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
    collections::BTreeMap,
    fmt, fs,
    path::{Path, PathBuf},
    process::Command,
};

use jool_sim::versions::{quad, Compat, Profile, Stat};

use super::predict::compat_name;

mod lex;

use lex::{closing, is_ident, is_punct, split_commas, Tok, Token};

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

/// `enum jool_stat_id`: names and values, in order.
fn stat_enum(toks: &[Token]) -> Result<Vec<(String, u32)>, ImportError> {
    let err = |line, m: &str| ImportError::new(STATS_H, line, m);
    let at = find(toks, 3, |w| {
        is_ident(&w[0], "enum")
            && is_ident(&w[1], "jool_stat_id")
            && is_punct(&w[2], '{')
    })
    .ok_or_else(|| err(None, "no `enum jool_stat_id {`"))?;
    let close = closing(toks, at + 2)
        .ok_or_else(|| err(Some(toks[at].line), "unclosed enum"))?;
    let body: Vec<Token> = toks[at + 3..close]
        .iter()
        .filter(|t| !matches!(t.tok, Tok::Directive(_)))
        .cloned()
        .collect();
    let mut out = Vec::new();
    let mut next = 0;
    for entry in split_commas(&body) {
        let line = entry.first().map(|t| t.line);
        match entry.iter().map(|t| &t.tok).collect::<Vec<_>>()[..] {
            [] => continue,
            [Tok::Ident(name)] => out.push((name.clone(), next)),
            [Tok::Ident(name), Tok::Punct('='), Tok::Num(n)] => {
                next =
                    parse_int(n).ok_or_else(|| err(line, "bad enum value"))?;
                out.push((name.clone(), next));
            }
            _ => return Err(err(line, "unsupported enum entry")),
        }
        next += 1;
    }
    Ok(out)
}

/// Object-like `#define NAME "..."` macros of some files.
#[derive(Default)]
struct Macros(BTreeMap<String, (String, String)>);

impl Macros {
    fn add(&mut self, file: &str, toks: &[Token]) {
        for t in toks {
            let Tok::Directive(d) = &t.tok else { continue };
            let Some(rest) = d.strip_prefix("define") else { continue };
            let rest = rest.trim_start();
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (name, body) = rest.split_at(end);
            if !name.is_empty() && !body.starts_with('(') {
                self.0.insert(
                    name.to_owned(),
                    (file.to_owned(), body.trim().to_owned()),
                );
            }
        }
    }

    /// The string a macro expands to (string literals and other macros).
    fn string(&self, name: &str, depth: usize) -> Result<String, String> {
        let (file, body) =
            self.0.get(name).ok_or_else(|| format!("unknown macro {name}"))?;
        let toks = lex::lex(body)
            .map_err(|e| format!("{file}: macro {name}: {}", e.message))?;
        self.concat(&toks, depth + 1)
            .map_err(|e| format!("{file}: macro {name}: {e}"))
    }

    /// Adjacent string literals and macros, concatenated.
    fn concat(&self, toks: &[Token], depth: usize) -> Result<String, String> {
        if depth > 8 {
            return Err("macros nest too deep".into());
        }
        let mut s = String::new();
        for t in toks {
            match &t.tok {
                Tok::Str(text) => s.push_str(text),
                Tok::Ident(m) => s.push_str(&self.string(m, depth)?),
                other => {
                    return Err(format!("unexpected {other:?} in a string"))
                }
            }
        }
        Ok(s)
    }
}

/// Whether `DEFINE_STAT` puts entries at `[_id]` (4.0.8+) or in order.
fn designated(toks: &[Token]) -> bool {
    toks.iter().any(|t| match &t.tok {
        Tok::Directive(d) => d
            .strip_prefix("define")
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix("DEFINE_STAT("))
            .and_then(|r| r.split_once(')'))
            .is_some_and(|(_, body)| body.trim_start().starts_with('[')),
        _ => false,
    })
}

/// `jstat_metadatas`: `index -> (name, doc)` as the client indexes it.
fn table(
    toks: &[Token],
    file: &str,
    macros: &Macros,
    ids: &BTreeMap<String, u32>,
) -> Result<BTreeMap<u32, (String, String)>, ImportError> {
    let err = |line, m: String| ImportError::new(file, line, m);
    let at = find(toks, 4, |w| {
        is_ident(&w[0], "jstat_metadatas")
            && is_punct(&w[1], '[')
            && is_punct(&w[2], ']')
            && is_punct(&w[3], '=')
    })
    .ok_or_else(|| err(None, "no `jstat_metadatas[] =`".into()))?;
    let open = at + 4;
    let close = toks
        .get(open)
        .filter(|t| is_punct(t, '{'))
        .and_then(|_| closing(toks, open));
    let close = close
        .ok_or_else(|| err(Some(toks[at].line), "no table body".into()))?;
    let by_id = designated(toks);
    let mut out = BTreeMap::new();
    for (pos, entry) in
        split_commas(&toks[open + 1..close]).into_iter().enumerate()
    {
        let line = entry.first().map(|t| t.line);
        let ok = entry.len() >= 3
            && is_ident(&entry[0], "DEFINE_STAT")
            && is_punct(&entry[1], '(');
        if !ok || closing(entry, 1) != Some(entry.len() - 1) {
            return Err(err(line, "expected DEFINE_STAT(NAME, DOC)".into()));
        }
        let args = split_commas(&entry[2..entry.len() - 1]);
        let [[name_tok], doc] = args[..] else {
            return Err(err(line, "DEFINE_STAT takes 2 arguments".into()));
        };
        let Tok::Ident(name) = &name_tok.tok else {
            return Err(err(
                line,
                "DEFINE_STAT's first argument is not a name".into(),
            ));
        };
        let doc = macros.concat(doc, 0).map_err(|m| err(line, m))?;
        let index = match by_id {
            true => *ids.get(name).ok_or_else(|| {
                err(line, format!("{name} is not in enum jool_stat_id"))
            })?,
            false => pos as u32,
        };
        out.insert(index, (name.clone(), doc));
    }
    Ok(out)
}

/// The stats `first ..= JSTAT_UNKNOWN`, checking enum and table agree.
fn stats(
    tree: &Tree<'_>,
    table_file: &'static str,
) -> Result<Vec<Stat>, ImportError> {
    let enum_ = stat_enum(&tree.lex(STATS_H)?)?;
    let ids: BTreeMap<String, u32> = enum_.iter().cloned().collect();
    let names: BTreeMap<u32, String> =
        enum_.iter().map(|(n, v)| (*v, n.clone())).collect();
    let toks = tree.lex(table_file)?;
    let mut macros = Macros::default();
    if tree.has(CONFIG_H) {
        macros.add(CONFIG_H, &tree.lex(CONFIG_H)?);
    }
    macros.add(table_file, &toks);
    let table = table(&toks, table_file, &macros, &ids)?;
    let max = *ids
        .get("JSTAT_UNKNOWN")
        .ok_or_else(|| ImportError::new(STATS_H, None, "no JSTAT_UNKNOWN"))?;
    let first = enum_.iter().map(|(_, v)| *v).min().unwrap_or(0);
    let mut out = Vec::new();
    for id in first..=max {
        let kernel = names.get(&id).ok_or_else(|| {
            ImportError::new(STATS_H, None, format!("no stat has id {id}"))
        })?;
        let (name, doc) = table.get(&id).ok_or_else(|| {
            ImportError::new(
                table_file,
                None,
                format!("no entry for {kernel} (id {id})"),
            )
        })?;
        if name != kernel {
            let m = format!("id {id} is {kernel} in {STATS_H} but {name} in the client table");
            return Err(ImportError::new(table_file, None, m));
        }
        let id = u16::try_from(id)
            .map_err(|_| ImportError::new(STATS_H, None, "id out of range"))?;
        out.push(Stat { id, name: name.clone(), doc: doc.clone() });
    }
    Ok(out)
}

/// `JOOL_VERSION_*` of xlat.h as a version word.
fn wire_version(tree: &Tree<'_>) -> Result<u32, ImportError> {
    let toks = tree.lex(XLAT_H)?;
    let part = |name: &str| {
        toks.iter()
            .find_map(|t| match &t.tok {
                Tok::Directive(d) => d
                    .strip_prefix("define")?
                    .trim()
                    .strip_prefix(name)?
                    .trim()
                    .parse::<u8>()
                    .ok(),
                _ => None,
            })
            .ok_or_else(|| {
                ImportError::new(
                    XLAT_H,
                    None,
                    format!("no `#define {name} N`"),
                )
            })
    };
    let parts = [
        part("JOOL_VERSION_MAJOR")?,
        part("JOOL_VERSION_MINOR")?,
        part("JOOL_VERSION_REV")?,
        part("JOOL_VERSION_DEV")?,
    ];
    Ok(u32::from_be_bytes(parts))
}

/// The body of the function *defined* as `name(...) {...}`.
fn definition<'t>(toks: &'t [Token], name: &str) -> Option<&'t [Token]> {
    (0..toks.len()).find_map(|i| {
        if !is_ident(&toks[i], name)
            || !toks.get(i + 1).is_some_and(|t| is_punct(t, '('))
        {
            return None;
        }
        let params_end = closing(toks, i + 1)?;
        let open = params_end + 1;
        toks.get(open).filter(|t| is_punct(t, '{'))?;
        Some(&toks[open..=closing(toks, open)?])
    })
}

/// Whether `body` calls `name(args...)` with exactly these identifier
/// arguments.
fn calls(body: &[Token], name: &str, args: &[&str]) -> bool {
    let len = if args.is_empty() { 3 } else { 2 + 2 * args.len() };
    body.windows(len).any(|w| {
        let arg_ok = |(i, a): (usize, &&str)| {
            is_ident(&w[2 + 2 * i], a)
                && (i + 1 == args.len() || is_punct(&w[3 + 2 * i], ','))
        };
        is_ident(&w[0], name)
            && is_punct(&w[1], '(')
            && args.iter().enumerate().all(arg_ok)
            && is_punct(&w[len - 1], ')')
    })
}

/// The kernel's version check and the file it is in.
fn compat(tree: &Tree<'_>) -> Result<(Compat, &'static str), ImportError> {
    for file in VALIDATE_VERSION.into_iter().filter(|f| tree.has(f)) {
        let toks = tree.lex(file)?;
        let Some(body) = definition(&toks, "validate_version") else {
            continue;
        };
        let mask = body.iter().any(|t| matches!(&t.tok, Tok::Num(n) if parse_int(n) == Some(0xFFFF_0000)));
        let exact = body.windows(5).any(|w| {
            is_ident(&w[0], "xlat_version")
                && is_punct(&w[1], '(')
                && is_punct(&w[2], ')')
                && is_punct(&w[3], '=')
                && is_punct(&w[4], '=')
        });
        return match (mask, exact) {
            (true, _) => Ok((Compat::MajorMinor, file)),
            (false, true) => Ok((Compat::Exact, file)),
            _ => Err(ImportError::new(file, Some(body[0].line), "validate_version() compares versions in a way the importer does not know")),
        };
    }
    Err(ImportError::bare(format!(
        "no validate_version() definition in {}",
        VALIDATE_VERSION.join(", ")
    )))
}

/// The legacy handler (4.0.0 – 4.0.7) checks CAP_NET_ADMIN for every
/// request, before dispatching on the mode.
fn legacy_net_admin(tree: &Tree<'_>) -> Result<bool, ImportError> {
    let toks = tree.lex(NL_HANDLER)?;
    match calls(&toks, "verify_superpriv", &[]) {
        true => Ok(true),
        false => Err(ImportError::new(
            NL_HANDLER,
            None,
            "no verify_superpriv() call",
        )),
    }
}

/// Whether the stats handler checks CAP_NET_ADMIN.
fn net_admin(tree: &Tree<'_>) -> Result<bool, ImportError> {
    if !tree.has(STATS_HANDLER) {
        return legacy_net_admin(tree);
    }
    let toks = tree.lex(STATS_HANDLER)?;
    let err = |line, m: &str| ImportError::new(STATS_HANDLER, line, m);
    let start = |i: usize| {
        (is_ident(&toks[i], "request_handle_start")
            || is_ident(&toks[i], "jnl_start"))
            && toks.get(i + 1).is_some_and(|t| is_punct(t, '('))
    };
    // 4.0.x also has a stats.c, whose handler the legacy one calls.
    let Some(at) = (0..toks.len()).find(|&i| start(i)) else {
        return legacy_net_admin(tree);
    };
    let line = Some(toks[at].line);
    let close =
        closing(&toks, at + 1).ok_or_else(|| err(line, "unclosed call"))?;
    let args = split_commas(&toks[at + 2..close]);
    match (args.len(), args.last().map(|a| &a[..])) {
        (4, Some([t])) if is_ident(t, "true") => Ok(true),
        (4, Some([t])) if is_ident(t, "false") => Ok(false),
        (3, _) if is_ident(&toks[at], "request_handle_start") => {
            let common = tree.lex(NL_COMMON)?;
            let body = definition(&common, "request_handle_start")
                .ok_or_else(|| {
                    ImportError::new(
                        NL_COMMON,
                        None,
                        "no request_handle_start() definition",
                    )
                })?;
            Ok(calls(body, "capable", &["CAP_NET_ADMIN"]))
        }
        _ => Err(err(
            line,
            "cannot tell whether the call requires CAP_NET_ADMIN",
        )),
    }
}

/// `AC_INIT([Jool], [4.1.9], ...)`'s version.
fn configure_version(tree: &Tree<'_>) -> Result<String, ImportError> {
    let text = tree.read("configure.ac")?;
    let args = text.split("AC_INIT(").nth(1).and_then(|r| r.split(')').next());
    let version = args
        .and_then(|a| a.split(',').nth(1))
        .map(|v| v.trim().trim_matches(['[', ']']).trim());
    version.filter(|v| !v.is_empty()).map(str::to_owned).ok_or_else(|| {
        ImportError::new(
            "configure.ac",
            None,
            "no AC_INIT([Jool], [VERSION], ...)",
        )
    })
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
    let stats = stats(&tree, table_file)?;
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

    fn toks(s: &str) -> Vec<Token> {
        lex::lex(s).unwrap()
    }

    #[test]
    fn test_enum_values_and_directives() {
        let t = toks("enum jool_stat_id {\n\tJSTAT_A = 1,\n\tJSTAT_B, /* c */\n#define X 1\n\tJSTAT_C,\n};");
        assert_eq!(
            stat_enum(&t).unwrap(),
            [
                ("JSTAT_A".into(), 1),
                ("JSTAT_B".into(), 2),
                ("JSTAT_C".into(), 3)
            ]
        );
        let bad = toks("enum jool_stat_id { JSTAT_A = 1 + 1, };");
        assert_eq!(stat_enum(&bad).unwrap_err().line, Some(1));
    }

    #[test]
    fn test_macros_concatenate() {
        let mut m = Macros::default();
        m.add(
            "x.h",
            &toks("#define A \"a\" B\n#define B \"b\"\n#define F(x) x\n"),
        );
        assert_eq!(m.concat(&toks("\"<\" A \">\""), 0).unwrap(), "<ab>");
        assert!(m
            .concat(&toks("F"), 0)
            .unwrap_err()
            .contains("unknown macro F"));
    }

    #[test]
    fn test_definition_is_not_a_call() {
        let t = toks("x = validate_version(h);\nstatic int validate_version(struct h *h)\n{ return xlat_version() == 1; }");
        let body = definition(&t, "validate_version").unwrap();
        assert!(is_ident(&body[2], "xlat_version"));
        assert!(calls(
            &toks("if (verify_superpriv()) return;"),
            "verify_superpriv",
            &[]
        ));
        assert!(calls(
            &toks("if (!capable(CAP_NET_ADMIN))"),
            "capable",
            &["CAP_NET_ADMIN"]
        ));
    }

    #[test]
    fn test_escape() {
        assert_eq!(escape("a \"b\"\nc\\"), "a \\\"b\\\"\nc\\\\");
        assert_eq!(toml_str("x\ny"), "\"x\\ny\"");
    }
}
