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
use serde_json::Value;

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
    json(&case);
    prometheus(&case, parse);
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
    let mut rest = out;
    for (name, doc, value) in shown {
        let group = match case.flags.explain {
            true => format!("{name}: {value}\n{doc}\n\n"),
            false => format!("{name}: {value}\n"),
        };
        rest = rest
            .strip_prefix(group.as_str())
            .unwrap_or_else(|| panic!("missing {group:?} in {out:?}"));
    }
    assert_eq!(rest, "", "text after the last counter");
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

fn json(case: &Case) {
    let meta = JsonMeta {
        instance: &case.instance,
        translator: case.translator,
        client_release: &case.profile.release,
    };
    let mut out = Vec::new();
    write_json(
        &meta,
        rows(case.profile, case.counters.iter().copied()),
        case.flags.all,
        &mut out,
    )
    .expect("writing to a vector");
    let v: Value = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("invalid JSON: {e}"));
    let translator = serde_json::to_value(case.translator)
        .expect("a translator serializes");
    assert_eq!(
        (&v["instance"], &v["translator"]),
        (&Value::from(case.instance.as_str()), &translator)
    );
    assert_eq!(v["client_release"], case.profile.release.as_str());
    let want: Vec<Value> = rows(case.profile, case.counters.iter().copied())
        .into_iter()
        .filter(|r| case.flags.all || r.value != 0)
        .map(|r| {
            let (id, name, value, doc) = (r.id, r.name, r.value, r.doc);
            serde_json::json!({
                "id": id, "name": name, "value": value, "doc": doc,
            })
        })
        .collect();
    assert_eq!(v["stats"], Value::Array(want), "JSON stats");
}

fn prometheus(case: &Case, parse: &ExpositionParser) {
    let rows: Vec<Row<'_>> = rows(case.profile, case.counters.iter().copied());
    let mut out = Vec::new();
    write_prometheus(&case.hostname, rows.iter().copied(), &mut out)
        .expect("writing to a vector");
    let text = String::from_utf8(out).expect("the exposition is UTF-8");
    check_grammar(&text, &rows, &case.hostname);
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
    for (s, row) in e.samples.iter().zip(&rows) {
        let name = prometheus::metric_name(row.name);
        assert_eq!(
            (&s.name, s.gauge),
            (&name, Some(row.value as f64)),
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
        let help = e
            .help
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| h.trim());
        assert_eq!(
            help,
            Some(prometheus::help(row.doc).trim()),
            "HELP of {name}"
        );
    }
}

/// Each row as exactly `# HELP`, `# TYPE ... gauge` and one sample line,
/// in the text format's grammar, whose escapes undo to the doc and the
/// hostname.
fn check_grammar(text: &str, rows: &[Row<'_>], hostname: &str) {
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 3 * rows.len(), "three lines per counter");
    assert!(text.is_empty() || text.ends_with('\n'), "the last line ends");
    for (group, row) in lines.chunks(3).zip(rows) {
        let name = prometheus::metric_name(row.name);
        assert!(valid_metric_name(&name), "metric name {name:?}");
        let help = group[0]
            .strip_prefix(&format!("# HELP {name} "))
            .expect("a HELP line");
        assert_eq!(
            unescape(help, false).as_deref(),
            Some(row.doc.replace('"', "").as_str())
                .filter(|d| !d.is_empty())
                .or(Some("jool metric")),
            "HELP escapes"
        );
        assert_eq!(group[1], format!("# TYPE {name} gauge"));
        let sample = group[2]
            .strip_prefix(&format!("{name}{{hostname=\""))
            .expect("a sample line");
        let (label, value) =
            sample.rsplit_once("\"} ").expect("a label and a value");
        assert_eq!(
            unescape(label, true).as_deref(),
            Some(hostname),
            "label escapes"
        );
        assert_eq!(
            value.parse::<f64>().ok(),
            Some(row.value as f64),
            "sample value {value}"
        );
    }
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
