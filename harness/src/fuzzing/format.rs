//! `format`: any counter set through every formatter.
//!
//! Input: release, display flags (bit 0 `--all`, 1 `--explain`, 2
//! `--csv`, 3 `--no-headers`; bit 4 NAT64; bit 5 also run the exposition
//! parser, which is slow: ~1 µs a line), a hostname and an instance
//! name (length-prefixed), then counters: a tag byte (bit 7: any id from a
//! u16, else a known id, by index, from a byte; bit 6: value 0, bit 5: a
//! small value from a byte, else a u64), the id and the value.
//!
//! Oracles, against the counters and the release's table:
//! - text: the C client's rows, in order, zero filter applied, stopping at
//!   the first unknown id for releases that fail on one, warning on stderr
//!   once per unknown id for the others; CSV reads back with the counters
//!   parser and with the `csv` crate to the same names and values (and
//!   docs, where no doc holds a bare `"`);
//! - JSON: a valid document holding the metadata and exactly the rows;
//! - Prometheus: every line is a valid exposition line (strict grammar,
//!   escapes undone to the hostname and docs), and the exposition parser
//!   given by the caller reads one gauge per row with its name, value,
//!   HELP and hostname label.

use jool_sim::{
    counters,
    fuzzing::Input,
    versions::{Profile, UnknownStat},
};
use std::{
    borrow::Cow, cell::RefCell, collections::HashMap, fmt::Write as _, rc::Rc,
};

use serde::Deserialize;

use crate::format::{
    label, prometheus, rows, unknown_warning, write_json, write_prometheus,
    DisplayFlags, JsonMeta, Label, RenderError, Renderer, Row, Translator,
    UNKNOWN_NAME,
};

/// Most counters an input holds.
const MAX_COUNTERS: usize = 256;

/// One sample, as an exposition parser reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels, as the parser reads them.
    pub labels: Vec<(String, String)>,
    /// The value, if the parser typed the sample as a gauge.
    pub gauge: Option<f64>,
}

/// What an exposition parser read from a scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// HELP text by metric name, as the parser keeps it.
    pub help: Vec<(String, String)>,
}

/// An exposition-format parser: the scrape text, or why it is invalid.
pub type ExpositionParser = dyn Fn(&str) -> Result<Exposition, String>;

/// One input.
struct Case {
    profile: &'static Profile,
    flags: DisplayFlags,
    translator: Translator,
    hostname: String,
    instance: String,
    counters: Vec<(u16, u64)>,
    /// Whether to check the exposition with the caller's parser too.
    parse: bool,
}

impl Case {
    fn decode(data: &[u8]) -> Self {
        let mut input = Input::new(data);
        let profile = input.pick(Profile::all());
        let f = input.u8();
        let flags = DisplayFlags {
            all: f & 1 != 0,
            explain: f & 2 != 0,
            csv: f & 4 != 0,
            no_headers: f & 8 != 0,
        };
        let translator =
            if f & 16 == 0 { Translator::Siit } else { Translator::Nat64 };
        let hostname = String::from_utf8_lossy(input.chunk()).into_owned();
        let instance = String::from_utf8_lossy(input.chunk()).into_owned();
        let mut counters = Vec::new();
        while !input.is_empty() && counters.len() < MAX_COUNTERS {
            let tag = input.u8();
            let id = match tag & 0x80 {
                0 => {
                    profile.stats
                        [usize::from(input.u8()) % profile.stats.len()]
                    .id
                }
                _ => input.u16(),
            };
            let value = match tag & 0x60 {
                0x40 | 0x60 => 0,
                0x20 => u64::from(input.u8()),
                _ => input.u64(),
            };
            counters.push((id, value));
        }
        Self {
            profile,
            flags,
            translator,
            hostname,
            instance,
            counters,
            parse: f & 32 != 0,
        }
    }
}

/// Runs one input; `parse` is the exposition parser to check against.
pub fn fuzz_format(data: &[u8], parse: &ExpositionParser) {
    let case = Case::decode(data);
    text(&case);
    // The machine formats label every counter the same way: once.
    let rows = rows(case.profile, case.counters.iter().copied());
    json(&case, &rows);
    prometheus(&case, &rows, parse);
}

/// A counter as the C client shows it: name, doc, value.
type Shown<'a> = (&'a str, &'a str, u64);

/// What the C client shows: the counters up to the first unknown one
/// (clients that fail on it), those passing the zero filter, the number
/// of unknown ids met, and the id it fails on.
fn expected(case: &Case) -> (Vec<Shown<'_>>, usize, Option<u16>) {
    let (mut shown, mut unknown) = (Vec::new(), 0);
    for &(id, value) in &case.counters {
        let l = label(case.profile, id);
        if l == Label::Unknown {
            if case.profile.unknown_stat == UnknownStat::Fail {
                return (shown, unknown, Some(id));
            }
            unknown += 1;
        }
        if case.flags.shows(value) {
            shown.push((l.name(), l.doc(), value));
        }
    }
    (shown, unknown, None)
}

fn text(case: &Case) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let r = Renderer::new(case.profile, case.flags).display(
        case.counters.iter().copied(),
        &mut out,
        &mut err,
    );
    let (shown, unknown, failed) = expected(case);
    match (r, failed) {
        (Ok(()), None) => {}
        (Err(RenderError::UnknownCounter(e)), Some(id)) => {
            assert_eq!(e.id, id)
        }
        (r, want) => panic!("display: {r:?}, expected failure on {want:?}"),
    }
    let q = case.profile.version_quad();
    assert_eq!(
        err,
        unknown_warning(&q, &q).repeat(unknown).as_bytes(),
        "one warning per unknown id"
    );
    let out = String::from_utf8(out).expect("the output is UTF-8");
    if case.flags.csv {
        check_csv(case, &out, &shown);
    } else {
        check_plain(case, &out, &shown);
    }
}

fn check_plain(case: &Case, out: &str, shown: &[Shown<'_>]) {
    let mut want = String::with_capacity(out.len());
    for (name, doc, value) in shown {
        // Infallible: writing to a String.
        let _ = match case.flags.explain {
            true => write!(want, "{name}: {value}\n{doc}\n\n"),
            false => writeln!(want, "{name}: {value}"),
        };
    }
    if out != want {
        let at = out
            .bytes()
            .zip(want.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(out.len().min(want.len()));
        panic!("text differs from byte {at}: {out:?}, expected {want:?}");
    }
}

fn check_csv(case: &Case, out: &str, shown: &[Shown<'_>]) {
    let header = match case.flags.explain {
        true => "Stat,Value,Explanation\n",
        false => "Stat,Value\n",
    };
    assert_eq!(
        out.starts_with(header),
        case.flags.show_header(),
        "CSV header"
    );
    let want: Vec<(String, u64)> =
        shown.iter().map(|(n, _, v)| ((*n).to_owned(), *v)).collect();
    // A counters file names each stat once (a kernel sends each id once).
    let mut names: Vec<&str> = shown
        .iter()
        .map(|(n, _, _)| *n)
        .filter(|n| *n != UNKNOWN_NAME)
        .collect();
    names.sort_unstable();
    if names.windows(2).all(|w| w[0] != w[1]) {
        let rows = counters::parse(out)
            .unwrap_or_else(|e| panic!("CSV does not read back: {e}"));
        assert_eq!(rows.rows(), want, "CSV → counters parser");
    }
    // The C client does not escape: a doc with a bare quote is not CSV.
    if case.flags.explain && shown.iter().any(|(_, doc, _)| doc.contains('"'))
    {
        return;
    }
    let mut r = csv::ReaderBuilder::new()
        .has_headers(case.flags.show_header())
        .from_reader(out.as_bytes());
    let records: Vec<csv::StringRecord> =
        r.records().map(|rec| rec.expect("a CSV record")).collect();
    assert_eq!(records.len(), shown.len(), "CSV records");
    for (rec, (name, doc, value)) in records.iter().zip(shown) {
        assert_eq!(
            (&rec[0], rec[1].parse::<u64>().ok()),
            (*name, Some(*value)),
            "CSV → csv crate"
        );
        if case.flags.explain {
            assert_eq!(&rec[2], *doc, "CSV doc → csv crate");
        }
    }
}

/// The JSON document as `write_json` must write it: exactly these fields
/// (unknown or repeated ones are an error), strings borrowed where they
/// hold no escape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonDoc<'a> {
    #[serde(borrow)]
    instance: Cow<'a, str>,
    #[serde(borrow)]
    translator: Cow<'a, str>,
    #[serde(borrow)]
    client_release: Cow<'a, str>,
    #[serde(borrow)]
    stats: Vec<JsonStat<'a>>,
}

/// One element of `stats`: exactly these fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonStat<'a> {
    id: u16,
    #[serde(borrow)]
    name: Cow<'a, str>,
    value: u64,
    #[serde(borrow)]
    doc: Cow<'a, str>,
}

fn json(case: &Case, rows: &[Row<'static>]) {
    let meta = JsonMeta {
        instance: &case.instance,
        translator: case.translator,
        client_release: &case.profile.release,
    };
    let mut out = Vec::new();
    write_json(&meta, rows.iter().copied(), case.flags.all, &mut out)
        .expect("writing to a vector");
    let doc: JsonDoc<'_> = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("invalid JSON: {e}"));
    let translator = serde_json::to_value(case.translator)
        .expect("a translator serializes");
    assert_eq!(
        (&*doc.instance, Some(&*doc.translator)),
        (case.instance.as_str(), translator.as_str())
    );
    assert_eq!(doc.client_release, case.profile.release.as_str());
    let mut want =
        rows.iter().filter(|r| case.flags.all || r.value != 0).fuse();
    for got in &doc.stats {
        let w = want.next().expect("JSON stats: a row too many");
        assert_eq!(
            (got.id, &*got.name, got.value, &*got.doc),
            (w.id, w.name, w.value, w.doc),
            "JSON stats"
        );
    }
    assert!(want.next().is_none(), "JSON stats: a row missing");
}

fn prometheus(case: &Case, rows: &[Row<'static>], parse: &ExpositionParser) {
    let mut out = Vec::new();
    write_prometheus(&case.hostname, rows.iter().copied(), &mut out)
        .expect("writing to a vector");
    let text = String::from_utf8(out).expect("the exposition is UTF-8");
    let families = check_grammar(&text, rows, &case.hostname);
    // prometheus-parse reads labels up to the first `}`, even in a value.
    if !case.parse || case.hostname.contains('}') {
        return;
    }
    let e = parse(&text)
        .unwrap_or_else(|e| panic!("the exposition parser rejects it: {e}"));
    assert_eq!(e.samples.len(), rows.len(), "one sample per counter");
    // The parser splits labels on `,` and `=` and does not undo escapes:
    // its view of the label is only checked for plain hostnames.
    let plain = !case.hostname.contains([',', '=', '"', '\\', '}', '\n'])
        && case.hostname.trim() == case.hostname;
    // The HELP the parser keeps for a name: the last one it read.
    let help: HashMap<&str, &str> =
        e.help.iter().map(|(n, h)| (n.as_str(), h.trim())).collect();
    for ((s, row), f) in e.samples.iter().zip(rows).zip(&families) {
        assert_eq!(
            (&s.name, s.gauge),
            (&f.name, Some(row.value as f64)),
            "sample of {}",
            row.name
        );
        if plain {
            assert_eq!(
                s.labels,
                [("hostname".to_owned(), case.hostname.clone())],
                "labels"
            );
        }
        assert_eq!(
            help.get(f.name.as_str()).copied(),
            Some(f.help.trim()),
            "HELP of {}",
            f.name
        );
    }
}

/// Where two `'static` strings are, and how long: who they are.
type StrsKey = (usize, usize, usize, usize);

/// The `# HELP` and `# TYPE` lines and the sample line's start of one
/// stat: a function of its name and doc only, which come from the static
/// tables, so each is checked against the grammar and the escapes the
/// first time it is written; after that a line equal to the checked one
/// needs no second check, and any other is checked in full again (so
/// every line is checked as before, and a crash reproduces on its own).
struct Family {
    /// The metric name.
    name: String,
    /// The `# HELP` line, as checked.
    help_line: String,
    /// The HELP text as jool-exporter writes it, for the parser's view.
    help: String,
    /// The `# TYPE` line.
    type_line: String,
    /// The sample line up to the label's value.
    sample_prefix: String,
}

impl Family {
    /// The family of `name` and `doc`, whose `# HELP` line the output
    /// gave as `help_line`: checked the first time, then remembered (the
    /// strings live forever, so where they are names what they hold).
    fn of(name: &'static str, doc: &'static str, help_line: &str) -> Rc<Self> {
        thread_local! {
            static SEEN: RefCell<HashMap<StrsKey, Rc<Family>>> =
                RefCell::default();
        }
        let key = (
            name.as_ptr() as usize,
            name.len(),
            doc.as_ptr() as usize,
            doc.len(),
        );
        if let Some(f) = SEEN.with_borrow(|seen| seen.get(&key).cloned()) {
            return f;
        }
        let f = Rc::new(Self::check(name, doc, help_line));
        SEEN.with_borrow_mut(|seen| seen.insert(key, f.clone()));
        f
    }

    fn check(name: &str, doc: &str, help_line: &str) -> Self {
        let metric = prometheus::metric_name(name);
        assert!(valid_metric_name(&metric), "metric name {metric:?}");
        let help = help_line
            .strip_prefix(&format!("# HELP {metric} "))
            .expect("a HELP line");
        assert_eq!(
            unescape(help, false).as_deref(),
            Some(doc.replace('"', "").as_str())
                .filter(|d| !d.is_empty())
                .or(Some("jool metric")),
            "HELP escapes"
        );
        Self {
            help_line: help_line.to_owned(),
            help: prometheus::help(doc),
            type_line: format!("# TYPE {metric} gauge"),
            sample_prefix: format!("{metric}{{hostname=\""),
            name: metric,
        }
    }
}

/// Each row as exactly `# HELP`, `# TYPE ... gauge` and one sample line,
/// in the text format's grammar, whose escapes undo to the doc and the
/// hostname; the rows' families.
fn check_grammar(
    text: &str,
    rows: &[Row<'static>],
    hostname: &str,
) -> Vec<Rc<Family>> {
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 3 * rows.len(), "three lines per counter");
    assert!(text.is_empty() || text.ends_with('\n'), "the last line ends");
    // The label as the last checked sample line wrote it: a line that
    // writes it the same needs no second check.
    let mut label_text = None;
    let mut families = Vec::with_capacity(rows.len());
    for (group, row) in lines.chunks(3).zip(rows) {
        let f = Family::of(row.name, row.doc, group[0]);
        if group[0] != f.help_line {
            // Not the line checked first: check it in full, as a fresh
            // process replaying this input would.
            Family::check(row.name, row.doc, group[0]);
        }
        assert_eq!(group[1], f.type_line);
        let sample =
            group[2].strip_prefix(&f.sample_prefix).expect("a sample line");
        let (label, value) =
            sample.rsplit_once("\"} ").expect("a label and a value");
        if label_text != Some(label) {
            assert_eq!(
                unescape(label, true).as_deref(),
                Some(hostname),
                "label escapes"
            );
            label_text = Some(label);
        }
        assert_eq!(
            value.parse::<f64>().ok(),
            Some(row.value as f64),
            "sample value {value}"
        );
        families.push(f);
    }
    families
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Undoes the text format's escapes (`\\`, `\n`, and `\"` in label
/// values); `None` on an invalid escape or an unescaped `"` in a label.
fn unescape(s: &str, label: bool) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                '"' if label => out.push('"'),
                _ => return None,
            },
            '"' if label => return None,
            '\n' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod test {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use super::*;

    fn scrape(rows: &[Row<'static>], host: &str) -> String {
        let mut out = Vec::new();
        write_prometheus(host, rows.iter().copied(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn fails(f: impl FnOnce()) -> bool {
        catch_unwind(AssertUnwindSafe(f)).is_err()
    }

    /// A family checked once still has every later line checked: a wrong
    /// HELP line, TYPE line, label or value fails after it was seen right.
    #[test]
    fn test_remembered_families_still_check_every_line() {
        let p = Profile::get("4.1.9").unwrap();
        let rows = rows(p, [(1, 5), (2, 7)]);
        let good = scrape(&rows, "h\"1");
        check_grammar(&good, &rows, "h\"1");
        // Seen now: the same text passes again, altered ones do not.
        check_grammar(&good, &rows, "h\"1");
        let name = prometheus::metric_name(rows[1].name);
        let cases = [
            good.replacen(
                &format!("# HELP {name} "),
                &format!("# HELP {name} x"),
                1,
            ),
            good.replacen(" gauge\n", " counter\n", 1),
            good.replacen(
                "{hostname=\"h\\\"1\"} 7",
                "{hostname=\"h\\u00221\"} 7",
                1,
            ),
            good.replacen("} 7.0", "} 8.0", 1),
        ];
        for bad in cases {
            assert_ne!(bad, good);
            assert!(
                fails(|| {
                    check_grammar(&bad, &rows, "h\"1");
                }),
                "{bad:?} passed"
            );
        }
    }

    /// The first sight of a family checks its HELP line's escapes.
    #[test]
    fn test_a_family_is_checked_the_first_time() {
        assert!(fails(|| {
            Family::check("JSTAT_X", "a \"b\" c", "# HELP jool_x a \\\"b c");
        }));
        let f =
            Family::check("JSTAT_X", "a \"b\"\nc", "# HELP jool_x a b\\nc");
        assert_eq!(f.type_line, "# TYPE jool_x gauge");
    }
}
