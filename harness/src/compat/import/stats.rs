//! The stats of a tree: the kernel's `enum jool_stat_id` and the
//! client's `jstat_metadatas`, checked against each other id by id.

use std::collections::BTreeMap;

use jool_sim::versions::Stat;

use super::lex::{closing, is_ident, is_punct, split_commas, Tok, Token};
use super::{find, lex, parse_int, ImportError, Tree, CONFIG_H, STATS_H};

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
pub(super) fn stats(
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
}
