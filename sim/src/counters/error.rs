//! Errors of the counters-file parser: a line number and a kind.

use std::fmt;

use super::{MAX_FILE_LEN, MAX_ROWS};

/// A counters file that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub(super) line: Option<usize>,
    pub(super) kind: ErrorKind,
}

/// What was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The name is neither `JSTAT[A-Z0-9_]*` nor `????`.
    BadName(String),
    /// The value is not an unsigned decimal number.
    BadValue(String),
    /// A name other than `????` appears twice.
    DuplicateName {
        /// The repeated name.
        name: String,
        /// Where it first appeared.
        first_line: usize,
    },
    /// Reading the input failed.
    Io(String),
    /// A `Stat,Value` header after the first row.
    MisplacedHeader,
    /// A line that is not blank, a comment or a header, and has no comma.
    MissingComma,
    /// The input is not UTF-8.
    NotUtf8,
    /// The input exceeds [`MAX_FILE_LEN`]; holds its length (or more).
    TooLarge(usize),
    /// The input has more than [`MAX_ROWS`] rows.
    TooManyRows,
    /// A profile's table has no stat with this name
    /// ([`to_ids`](super::to_ids)).
    UnknownName(String),
    /// The third column does not start with `"`.
    UnquotedExplanation,
    /// No line ends an explanation with `"`.
    UnterminatedExplanation,
    /// The value does not fit in 64 bits.
    ValueOverflow(String),
}

impl Error {
    pub(super) fn at(line: usize, kind: ErrorKind) -> Self {
        Self { line: Some(line), kind }
    }

    /// A read error (opening or reading the file).
    pub fn io(e: &std::io::Error) -> Self {
        Self { line: None, kind: ErrorKind::Io(e.to_string()) }
    }

    /// 1-based line of the problem, if it has one.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What was wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

/// Longest piece of the input an error quotes, in bytes.
pub const QUOTE_MAX: usize = 64;

/// `text` as an error quotes it (`{:?}`, or as is for a stat name, whose
/// bytes the parser checked): whole when short, else its first
/// [`QUOTE_MAX`] bytes (cut on a char boundary) and its length.
struct Quote<'a>(&'a str, bool);

impl fmt::Display for Quote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (t, debug) = (self.0, self.1);
        let mut end = t.len().min(QUOTE_MAX);
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        match debug {
            true => write!(f, "{:?}", &t[..end])?,
            false => f.write_str(&t[..end])?,
        }
        if end < t.len() {
            write!(f, "... ({} bytes)", t.len())?;
        }
        Ok(())
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName(n) => write!(f, "bad stat name {}", Quote(n, true)),
            Self::BadValue(v) => write!(f, "bad value {}", Quote(v, true)),
            Self::DuplicateName { name, first_line } => write!(
                f,
                "duplicate stat {} (first on line {first_line})",
                Quote(name, false)
            ),
            Self::Io(e) => write!(f, "read error: {e}"),
            Self::MisplacedHeader => f.write_str("header after the first row"),
            Self::MissingComma => f.write_str("expected NAME,VALUE"),
            Self::NotUtf8 => f.write_str("not UTF-8"),
            Self::TooLarge(n) => {
                write!(f, "file too large ({n} bytes, max {MAX_FILE_LEN})")
            }
            Self::TooManyRows => write!(f, "more than {MAX_ROWS} rows"),
            Self::UnknownName(n) => {
                write!(
                    f,
                    "stat {} is not in the profile's table",
                    Quote(n, false)
                )
            }
            Self::UnquotedExplanation => {
                f.write_str("explanation must start with '\"'")
            }
            Self::UnterminatedExplanation => {
                f.write_str("explanation has no closing '\"'")
            }
            Self::ValueOverflow(v) => {
                write!(f, "value {} does not fit in 64 bits", Quote(v, false))
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.kind),
            None => self.kind.fmt(f),
        }
    }
}

impl std::error::Error for Error {}
