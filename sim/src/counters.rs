//! Counters files: what `stats display --csv --all` prints, read back.
//!
//! ```text
//! Stat,Value                      optional header (also ,Explanation)
//! # comment                       blank and `#` lines are skipped
//! JSTAT_RECEIVED6,12              NAME,VALUE
//! JSTAT_HAIRPIN_LOOP,0,"Line one  NAME,VALUE,"DOC" as `--explain` prints it:
//! line two"                       raw newlines, no escaping
//! ????,3                          unknown stat of a 4.1.13+ client
//! ```
//!
//! The C client does no CSV escaping, so a doc can hold raw newlines and,
//! in 4.2.0-rc, bare `"`. An explanation therefore runs until the next line
//! that starts a row (`^JSTAT[A-Z0-9_]*,\d` or `^\?\?\?\?,\d`) and ends at
//! the last line before it that ends with `"`; what follows that line is
//! read as ordinary lines. Doc lines are not checked.
//!
//! A UTF-8 byte order mark at the start is skipped (editors add one).
//! Parsing never panics and is bounded: [`MAX_FILE_LEN`] bytes,
//! [`MAX_ROWS`] rows; errors quote at most [`QUOTE_MAX`] bytes of the
//! input. Names may repeat only as `????`.

use std::{collections::HashMap, io};

use crate::versions::Profile;

mod error;

pub use error::{Error, ErrorKind, QUOTE_MAX};

/// Largest accepted file, in bytes (16 MiB).
pub const MAX_FILE_LEN: usize = 16 << 20;

/// Largest accepted number of rows.
pub const MAX_ROWS: usize = 100_000;

/// Rows of a counters file, in file order, with their line numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    rows: Vec<(String, u64)>,
    lines: Vec<usize>,
}

impl Counters {
    /// Rows as [`write_counters`] would print them (header on line 1).
    pub fn from_rows(rows: Vec<(String, u64)>) -> Self {
        let lines = (2..rows.len() + 2).collect();
        Self { rows, lines }
    }

    /// `(name, value)` pairs, in file order.
    pub fn rows(&self) -> &[(String, u64)] {
        &self.rows
    }

    /// The pairs, without line numbers.
    pub fn into_rows(self) -> Vec<(String, u64)> {
        self.rows
    }

    /// 1-based line where row `index` starts.
    pub fn line(&self, index: usize) -> Option<usize> {
        self.lines.get(index).copied()
    }

    fn push(
        &mut self,
        name: &str,
        value: u64,
        line: usize,
    ) -> Result<(), Error> {
        if self.rows.len() == MAX_ROWS {
            return Err(Error::at(line, ErrorKind::TooManyRows));
        }
        self.rows.push((name.to_owned(), value));
        self.lines.push(line);
        Ok(())
    }
}

/// Reads a counters file from `r`, at most [`MAX_FILE_LEN`] bytes of it.
pub fn read<R: io::Read>(r: R) -> Result<Counters, Error> {
    let mut bytes = Vec::new();
    let limit = MAX_FILE_LEN as u64 + 1;
    io::Read::read_to_end(&mut r.take(limit), &mut bytes).map_err(|e| {
        Error { line: None, kind: ErrorKind::Io(e.to_string()) }
    })?;
    check_len(bytes.len())?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        Error::at(line, ErrorKind::NotUtf8)
    })?;
    parse(text)
}

fn check_len(len: usize) -> Result<(), Error> {
    if len > MAX_FILE_LEN {
        return Err(Error { line: None, kind: ErrorKind::TooLarge(len) });
    }
    Ok(())
}

/// Parses the text of a counters file.
pub fn parse(text: &str) -> Result<Counters, Error> {
    check_len(text.len())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> =
        text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut parser = Parser {
        lines: &lines,
        out: Counters::default(),
        seen: HashMap::new(),
    };
    let mut i = 0;
    while i < lines.len() {
        i = parser.line(i)?;
    }
    Ok(parser.out)
}

struct Parser<'t> {
    lines: &'t [&'t str],
    out: Counters,
    seen: HashMap<&'t str, usize>,
}

impl<'t> Parser<'t> {
    /// Reads the line at index `i`; returns the index of the next one.
    fn line(&mut self, i: usize) -> Result<usize, Error> {
        // `parse` only calls this with `i < lines.len()`.
        let (text, n) = (self.lines[i], i + 1);
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(i + 1);
        }
        if text == "Stat,Value" || text == "Stat,Value,Explanation" {
            if !self.out.rows.is_empty() {
                return Err(Error::at(n, ErrorKind::MisplacedHeader));
            }
            return Ok(i + 1);
        }
        let row = parse_row(text).map_err(|kind| Error::at(n, kind))?;
        self.check_duplicate(row.name, n)?;
        self.out.push(row.name, row.value, n)?;
        match row.doc {
            Some(doc) => self.explanation_end(i, doc),
            None => Ok(i + 1),
        }
    }

    fn check_duplicate(
        &mut self,
        name: &'t str,
        line: usize,
    ) -> Result<(), Error> {
        if name == "????" {
            return Ok(());
        }
        if let Some(&first_line) = self.seen.get(name) {
            let name = name.to_owned();
            return Err(Error::at(
                line,
                ErrorKind::DuplicateName { name, first_line },
            ));
        }
        self.seen.insert(name, line);
        Ok(())
    }

    /// Index after the line that closes the explanation opened at `i`,
    /// whose text after the opening `"` is `first`.
    fn explanation_end(&self, i: usize, first: &str) -> Result<usize, Error> {
        let span_end = (i + 1..self.lines.len())
            .find(|&j| starts_row(self.lines[j]))
            .unwrap_or(self.lines.len());
        let closes = |j: usize| match j {
            _ if j == i => first.ends_with('"'),
            _ => self.lines[j].ends_with('"'),
        };
        match (i..span_end).rev().find(|&j| closes(j)) {
            Some(j) => Ok(j + 1),
            None => Err(Error::at(i + 1, ErrorKind::UnterminatedExplanation)),
        }
    }
}

/// One row's first line.
struct RowStart<'t> {
    name: &'t str,
    value: u64,
    /// Text after `,"`, when there is an explanation.
    doc: Option<&'t str>,
}

fn parse_row(text: &str) -> Result<RowStart<'_>, ErrorKind> {
    let (name, rest) = text.split_once(',').ok_or(ErrorKind::MissingComma)?;
    if !valid_name(name) {
        return Err(ErrorKind::BadName(name.to_owned()));
    }
    let (value, doc) = match rest.split_once(',') {
        Some((v, d)) => (v, Some(d)),
        None => (rest, None),
    };
    let doc = match doc {
        Some(d) => {
            Some(d.strip_prefix('"').ok_or(ErrorKind::UnquotedExplanation)?)
        }
        None => None,
    };
    Ok(RowStart { name, value: parse_value(value)?, doc })
}

fn parse_value(v: &str) -> Result<u64, ErrorKind> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ErrorKind::BadValue(v.to_owned()));
    }
    v.parse().map_err(|_| ErrorKind::ValueOverflow(v.to_owned()))
}

/// `JSTAT[A-Z0-9_]*` or `????`.
fn valid_name(name: &str) -> bool {
    let upper =
        |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
    name == "????"
        || name.strip_prefix("JSTAT").is_some_and(|t| t.bytes().all(upper))
}

/// Whether `line` starts a row even inside an explanation: `NAME,\d`.
fn starts_row(line: &str) -> bool {
    line.split_once(',').is_some_and(|(name, rest)| {
        valid_name(name)
            && rest.bytes().next().is_some_and(|b| b.is_ascii_digit())
    })
}

/// Maps names to ids through the table of `profile` (a kernel's).
///
/// A name the table lacks (including `????`) is an error naming its line.
pub fn to_ids(
    counters: &Counters,
    profile: &Profile,
) -> Result<Vec<(u16, u64)>, Error> {
    let ids: HashMap<&str, u16> =
        profile.stats.iter().map(|s| (s.name.as_str(), s.id)).collect();
    let mut out = Vec::with_capacity(counters.rows.len());
    for ((name, value), &line) in counters.rows.iter().zip(&counters.lines) {
        let Some(&id) = ids.get(name.as_str()) else {
            let kind = ErrorKind::UnknownName(name.clone());
            return Err(Error::at(line, kind));
        };
        out.push((id, *value));
    }
    Ok(out)
}

/// Writes rows as `stats display --csv --all` prints them.
pub fn write_counters<W: io::Write>(
    rows: &[(String, u64)],
    out: &mut W,
) -> io::Result<()> {
    out.write_all(b"Stat,Value\n")?;
    for (name, value) in rows {
        writeln!(out, "{name},{value}")?;
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use proptest::prelude::*;

    use super::*;

    fn err(text: &str) -> (Option<usize>, ErrorKind) {
        let e = parse(text).unwrap_err();
        (e.line(), e.kind().clone())
    }

    fn names(text: &str) -> Vec<(String, u64)> {
        parse(text).unwrap().into_rows()
    }

    fn fixture(path: &str) -> String {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/captures/4.1.9/"
        );
        std::fs::read_to_string(format!("{dir}{path}")).unwrap()
    }

    #[test]
    fn test_byte_order_mark_is_skipped() {
        let c = parse("\u{feff}Stat,Value\nJSTAT_A,1\n").unwrap();
        assert_eq!(c.rows(), [("JSTAT_A".into(), 1)]);
        assert_eq!(c.line(0), Some(2));
        let e = parse("JSTAT_A,1\n\u{feff}JSTAT_B,2\n").unwrap_err();
        assert_eq!(e.line(), Some(2), "only at the start");
    }

    #[test]
    fn test_errors_quote_a_bounded_piece() {
        let long = "x".repeat(2 << 20);
        let e = parse(&format!("JSTAT_A,{long}\n")).unwrap_err();
        let text = e.to_string();
        assert!(text.len() < 200, "{} bytes", text.len());
        assert!(
            text.ends_with(&format!("... ({} bytes)", long.len())),
            "{text}"
        );
        let e = parse("JSTAT_A,ñ\n").unwrap_err().to_string();
        assert_eq!(e, "line 1: bad value \"ñ\"");
    }

    #[test]
    fn test_header_comments_and_blank_lines() {
        let text = "# taken at boot\n\nStat,Value\n\
                    JSTAT_RECEIVED6,12\n\n# x\n????,3\n";
        let c = parse(text).unwrap();
        assert_eq!(
            c.rows(),
            [("JSTAT_RECEIVED6".into(), 12), ("????".into(), 3)]
        );
        assert_eq!(
            (c.line(0), c.line(1), c.line(2)),
            (Some(4), Some(7), None)
        );
        assert_eq!(
            names("JSTAT_A,1"),
            [("JSTAT_A".into(), 1)],
            "no header, no newline"
        );
        assert_eq!(
            names("Stat,Value\r\nJSTAT_A,1\r\n"),
            [("JSTAT_A".into(), 1)]
        );
    }

    #[test]
    fn test_explanations_with_newlines_and_bare_quotes() {
        let text = "Stat,Value,Explanation\n\
                    JSTAT_A,1,\"one\nJSTAT_B is cited\n\
                    - \"Mapping Rule\" is\nend.\"\n\
                    JSTAT_C,2,\"\"\n\
                    # a comment\n\
                    ????,0,\"This stat is unknown.\"\n";
        let c = parse(text).unwrap();
        let want =
            [("JSTAT_A".into(), 1), ("JSTAT_C".into(), 2), ("????".into(), 0)];
        assert_eq!(c.rows(), want);
        assert_eq!(c.line(1), Some(6));
    }

    #[test]
    fn test_real_4_1_9_explained_csv() {
        let c = parse(&fixture("siit/display-csv-explain-all.out")).unwrap();
        assert_eq!(c.rows().len(), 69);
        assert_eq!(c.rows()[68].0, "JSTAT_UNKNOWN");
    }

    #[test]
    fn test_error_kinds_name_their_line() {
        use ErrorKind::*;
        let cases: &[(&str, usize, ErrorKind)] = &[
            ("JSTAT_A,1\nJSTAT_B: 2\n", 2, MissingComma),
            ("\n\njstat_a,1\n", 3, BadName("jstat_a".into())),
            ("JSTAT_A,\n", 1, BadValue(String::new())),
            ("JSTAT_A,-1\n", 1, BadValue("-1".into())),
            ("JSTAT_A,+1\n", 1, BadValue("+1".into())),
            ("JSTAT_A,1x\n", 1, BadValue("1x".into())),
            (
                "#\nJSTAT_A,18446744073709551616\n",
                2,
                ValueOverflow("18446744073709551616".into()),
            ),
            (
                "JSTAT_A,1\nJSTAT_B,2\nJSTAT_A,3\n",
                3,
                DuplicateName { name: "JSTAT_A".into(), first_line: 1 },
            ),
            ("JSTAT_A,1\nStat,Value\n", 2, MisplacedHeader),
            ("JSTAT_A,1,doc\n", 1, UnquotedExplanation),
            (
                "JSTAT_A,1\nJSTAT_B,2,\"doc\nmore\nJSTAT_C,3\n",
                2,
                UnterminatedExplanation,
            ),
            ("JSTAT_A,1,\"doc\"\nstray text\nJSTAT_C,3\n", 2, MissingComma),
        ];
        for (text, line, kind) in cases {
            assert_eq!(err(text), (Some(*line), kind.clone()), "{text:?}");
        }
    }

    #[test]
    fn test_bounds() {
        let big = "#".repeat(MAX_FILE_LEN + 1);
        assert_eq!(err(&big), (None, ErrorKind::TooLarge(MAX_FILE_LEN + 1)));
        let e = read(big.as_bytes()).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::TooLarge(MAX_FILE_LEN + 1));
        let rows: String =
            (0..=MAX_ROWS).map(|i| format!("JSTAT_{i},1\n")).collect();
        assert_eq!(err(&rows), (Some(MAX_ROWS + 1), ErrorKind::TooManyRows));
        let e = read(&b"JSTAT_A,1\nJSTAT_\xff,2\n"[..]).unwrap_err();
        assert_eq!((e.line(), e.kind()), (Some(2), &ErrorKind::NotUtf8));
    }

    #[test]
    fn test_error_display() {
        let e = parse("JSTAT_A,1\nJSTAT_A,2").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: duplicate stat JSTAT_A (first on line 1)"
        );
    }

    #[test]
    fn test_to_ids_maps_names_and_names_unknown_line() {
        let p = Profile::get("4.1.9").unwrap();
        let c =
            parse("Stat,Value\nJSTAT_SUCCESS,4\nJSTAT_RECEIVED6,9\n").unwrap();
        assert_eq!(to_ids(&c, p).unwrap(), [(3, 4), (1, 9)]);
        let c = parse("JSTAT_SUCCESS,4\n\nJSTAT_MAPT_FMR4,1\n").unwrap();
        let e = to_ids(&c, p).unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert_eq!(
            e.kind(),
            &ErrorKind::UnknownName("JSTAT_MAPT_FMR4".into())
        );
        let c = parse("????,1\n").unwrap();
        assert!(to_ids(&c, p).is_err());
    }

    #[test]
    fn test_round_trip_real_capture() {
        let text = fixture("siit-traffic/display-all-csv.out");
        let c = parse(&text).unwrap();
        let mut out = Vec::new();
        write_counters(c.rows(), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), text);
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof!["JSTAT[A-Z0-9_]{0,12}", Just("????".to_owned())]
    }

    proptest! {
        #[test]
        fn test_round_trip(
            rows in prop::collection::vec((name(), any::<u64>()), 0..40),
        ) {
            let mut seen = std::collections::HashSet::new();
            let rows: Vec<_> = rows
                .into_iter()
                .filter(|(n, _)| n == "????" || seen.insert(n.clone()))
                .collect();
            let mut out = Vec::new();
            write_counters(&rows, &mut out).unwrap();
            let c = read(&out[..]).unwrap();
            prop_assert_eq!(&c, &Counters::from_rows(rows));
        }

        #[test]
        fn test_never_panics(text in "(JSTAT_A|,|\"|\n|1|#| |\\?)*") {
            let _ = parse(&text);
        }
    }
}
