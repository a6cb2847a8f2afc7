//! Just enough of a C lexer for Jool's headers and tables: identifiers,
//! numbers, string literals (decoded), punctuation, and preprocessor
//! directives kept whole. Comments are dropped.

use std::fmt;

/// One token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    /// An identifier or keyword.
    Ident(String),
    /// A number or character literal, as written (`0xFFFF0000u`, `'s'`).
    Num(String),
    /// A string literal, escapes decoded.
    Str(String),
    /// Any other single character.
    Punct(char),
    /// A preprocessor line without its `#`, continuation lines joined.
    Directive(String),
}

/// A token and the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) line: usize,
}

/// Something the lexer cannot read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct LexError {
    pub(super) line: usize,
    pub(super) message: String,
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    at_line_start: bool,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.i + ahead).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn err(&self, message: impl Into<String>) -> LexError {
        LexError { line: self.line, message: message.into() }
    }

    fn skip_block_comment(&mut self) -> Result<(), LexError> {
        let start = self.line;
        self.i += 2;
        while self.peek(0).is_some() {
            if self.peek(0) == Some(b'*') && self.peek(1) == Some(b'/') {
                self.i += 2;
                return Ok(());
            }
            self.bump();
        }
        Err(LexError { line: start, message: "unterminated comment".into() })
    }

    fn skip_line_comment(&mut self) {
        while self.peek(0).is_some_and(|c| c != b'\n') {
            self.i += 1;
        }
    }

    /// The rest of a `#` line, with `\`-newline continuations joined and
    /// comments dropped.
    fn directive(&mut self) -> Result<String, LexError> {
        self.i += 1;
        let mut text = Vec::new();
        loop {
            match (self.peek(0), self.peek(1)) {
                (None | Some(b'\n'), _) => break,
                (Some(b'\\'), Some(b'\n')) => {
                    self.bump();
                    self.bump();
                    text.push(b' ');
                }
                (Some(b'/'), Some(b'*')) => {
                    self.skip_block_comment()?;
                    text.push(b' ');
                }
                (Some(b'/'), Some(b'/')) => self.skip_line_comment(),
                (Some(b'"'), _) => {
                    let start = self.i;
                    self.string()?;
                    text.extend_from_slice(&self.s[start..self.i]);
                }
                (Some(c), _) => {
                    self.bump();
                    text.push(c);
                }
            }
        }
        Ok(String::from_utf8_lossy(&text).trim().to_owned())
    }

    fn escape(&mut self) -> Result<char, LexError> {
        let c = self.bump().ok_or_else(|| self.err("unterminated escape"))?;
        Ok(match c {
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'0' => '\0',
            b'\\' => '\\',
            b'"' => '"',
            b'\'' => '\'',
            b'?' => '?',
            other => {
                return Err(self
                    .err(format!("unsupported escape \\{}", other as char)))
            }
        })
    }

    fn string(&mut self) -> Result<String, LexError> {
        let start = self.line;
        self.i += 1;
        let mut bytes = Vec::new();
        loop {
            match self.bump() {
                None | Some(b'\n') => {
                    return Err(LexError {
                        line: start,
                        message: "unterminated string".into(),
                    })
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(
                        self.escape()?.encode_utf8(&mut buf).as_bytes(),
                    );
                }
                Some(c) => bytes.push(c),
            }
        }
        String::from_utf8(bytes).map_err(|_| LexError {
            line: start,
            message: "string is not UTF-8".into(),
        })
    }

    /// An identifier, or a number when `dots` (`1.5`, `0x10u`).
    fn word(&mut self, dots: bool) -> String {
        let start = self.i;
        while self.peek(0).is_some_and(|c| {
            c.is_ascii_alphanumeric() || c == b'_' || (dots && c == b'.')
        }) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn char_literal(&mut self) -> Result<String, LexError> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.bump() {
                None | Some(b'\n') => {
                    return Err(self.err("unterminated character literal"))
                }
                Some(b'\\') => {
                    self.bump();
                }
                Some(b'\'') => break,
                Some(_) => {}
            }
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn next(&mut self) -> Result<Option<Token>, LexError> {
        loop {
            let Some(c) = self.peek(0) else { return Ok(None) };
            let line = self.line;
            let tok = match (c, self.peek(1)) {
                (b'\n', _) => {
                    self.bump();
                    self.at_line_start = true;
                    continue;
                }
                (c, _) if c.is_ascii_whitespace() => {
                    self.bump();
                    continue;
                }
                (b'/', Some(b'*')) => {
                    self.skip_block_comment()?;
                    continue;
                }
                (b'/', Some(b'/')) => {
                    self.skip_line_comment();
                    continue;
                }
                (b'#', _) if self.at_line_start => {
                    Tok::Directive(self.directive()?)
                }
                (b'"', _) => Tok::Str(self.string()?),
                (b'\'', _) => Tok::Num(self.char_literal()?),
                (c, _) if c.is_ascii_digit() => Tok::Num(self.word(true)),
                (c, _) if c.is_ascii_alphabetic() || c == b'_' => {
                    Tok::Ident(self.word(false))
                }
                (c, _) => {
                    self.bump();
                    Tok::Punct(char::from(c))
                }
            };
            self.at_line_start = false;
            return Ok(Some(Token { tok, line }));
        }
    }
}

/// Tokenizes C source.
pub(super) fn lex(source: &str) -> Result<Vec<Token>, LexError> {
    let mut l =
        Lexer { s: source.as_bytes(), i: 0, line: 1, at_line_start: true };
    let mut out = Vec::new();
    while let Some(t) = l.next()? {
        out.push(t);
    }
    Ok(out)
}

/// The index of the bracket closing the one at `open`.
pub(super) fn closing(toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits `toks` at the commas that are not inside brackets.
pub(super) fn split_commas(toks: &[Token]) -> Vec<&[Token]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => depth = depth.saturating_sub(1),
            Tok::Punct(',') if depth == 0 => {
                out.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < toks.len() {
        out.push(&toks[start..]);
    }
    out
}

/// Whether `t` is the identifier `name`.
pub(super) fn is_ident(t: &Token, name: &str) -> bool {
    matches!(&t.tok, Tok::Ident(n) if n == name)
}

/// Whether `t` is the punctuation `c`.
pub(super) fn is_punct(t: &Token, c: char) -> bool {
    t.tok == Tok::Punct(c)
}

#[cfg(test)]
mod test {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn test_tokens() {
        let t =
            toks("a = 0xFFFF0000u; /* c */ b(\"x\\n\\\"y\\\"\", 'c') // d\n");
        assert_eq!(
            t,
            [
                Tok::Ident("a".into()),
                Tok::Punct('='),
                Tok::Num("0xFFFF0000u".into()),
                Tok::Punct(';'),
                Tok::Ident("b".into()),
                Tok::Punct('('),
                Tok::Str("x\n\"y\"".into()),
                Tok::Punct(','),
                Tok::Num("'c'".into()),
                Tok::Punct(')'),
            ]
        );
    }

    #[test]
    fn test_directives_join_continuations_and_drop_comments() {
        let t = toks("#define X(_a) \\\n\t[_a] = 1 /* c */\nint y;\n  # define TC \"T: \"\n");
        assert_eq!(t[0], Tok::Directive("define X(_a)  \t[_a] = 1".into()));
        assert_eq!(t[1], Tok::Ident("int".into()));
        assert_eq!(t[4], Tok::Directive("define TC \"T: \"".into()));
    }

    #[test]
    fn test_errors_name_the_line() {
        assert_eq!(lex("\n\"abc\n").unwrap_err().line, 2);
        assert_eq!(lex("a /* b").unwrap_err().message, "unterminated comment");
        assert!(lex("\"\\q\"").unwrap_err().message.contains("\\q"));
    }

    #[test]
    fn test_closing_and_split() {
        let t = lex("f(a, g(b, c), {d, e})").unwrap();
        assert_eq!(closing(&t, 1), Some(t.len() - 1));
        let args = split_commas(&t[2..t.len() - 1]);
        assert_eq!(args.len(), 3);
    }
}
