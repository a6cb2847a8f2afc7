//! The protocol facts of a tree: its wire version, how the kernel
//! compares the client's version, whether `stats` needs CAP_NET_ADMIN,
//! and the release `configure.ac` names.

use jool_sim::versions::Compat;

use super::lex::{closing, is_ident, is_punct, split_commas, Tok, Token};
use super::{
    parse_int, ImportError, Tree, NL_COMMON, NL_HANDLER, STATS_HANDLER,
    VALIDATE_VERSION, XLAT_H,
};

/// `JOOL_VERSION_*` of xlat.h as a version word.
pub(super) fn wire_version(tree: &Tree<'_>) -> Result<u32, ImportError> {
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
pub(super) fn compat(
    tree: &Tree<'_>,
) -> Result<(Compat, &'static str), ImportError> {
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
pub(super) fn net_admin(tree: &Tree<'_>) -> Result<bool, ImportError> {
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
pub(super) fn configure_version(
    tree: &Tree<'_>,
) -> Result<String, ImportError> {
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

#[cfg(test)]
mod test {
    use super::*;

    fn toks(s: &str) -> Vec<Token> {
        super::super::lex::lex(s).unwrap()
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
}
