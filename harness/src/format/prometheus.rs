//! `--format prometheus`: the metrics that the PyPI `jool-exporter` serves.
//!
//! What `jool-exporter` 26.2.27.post3 (github.com/cooperlees/jool-exporter,
//! on top of `prometheus_client` 0.26.0) does, read from its sources:
//!
//! - Input: it runs `<cli> -i <instance> stats display --csv --no-headers
//!   --explain --all` and reads the rows with Python's `csv.reader`. So every
//!   stat is exported, zeros included, in kernel order.
//! - Name: `jool_` + the stat name with every `JSTAT_` removed, lowercased:
//!   `JSTAT_RECEIVED6` → `jool_received6`, `JSTAT_6056_F` → `jool_6056_f`,
//!   but `JSTAT64_SRC` → `jool_jstat64_src` (no `JSTAT_` in it). With the
//!   default (`underscores`) escaping, a character outside `[a-zA-Z0-9_:]`
//!   becomes `_`: `????` → `jool_____`.
//! - Type: every stat is a `GaugeMetricFamily`: `# TYPE <name> gauge`, even
//!   the monotonic counters.
//! - HELP: the explanation with every `"` removed, or `jool metric` if that
//!   leaves it empty (4.0.7's RECEIVED6/4 have empty docs). In the text
//!   format, `\` becomes `\\` and a newline `\n` (two characters).
//! - Labels: exactly one, `hostname`, set to Python's `socket.getfqdn()`.
//!   The instance is not a label: `-i` only picks which instance is read, so
//!   one exporter serves one instance (tell them apart by scrape target).
//!   Label values escape `\`, newline and `"`.
//! - Value: `float(row[1])` printed by `floatToGoString`: Python `repr`
//!   (`245.0`, `0.0`), but from 10^6 up a Go-style exponent (`7.9109475e+07`);
//!   from 10^16 up Python's own (`1.8446744073709552e+19`). Values above
//!   2^53 lose precision, as in the exporter.
//! - One family per row, as `# HELP`, `# TYPE`, then the sample line. The
//!   process/python metrics of the default registry are not reproduced.
//!
//! Format: text exposition 0.0.4, what `prometheus_client` answers to a
//! request without an OpenMetrics `Accept` header (e.g. `curl`).
//!
//! Checked: for 4.0.7, 4.1.9 and main tables (empty docs, `????`, values
//! up to `u64::MAX`), our output was byte-identical to the exporter's
//! `JoolCollector` fed the same CSV through a stub CLI and rendered by
//! `prometheus_client.generate_latest` (text 0.0.4).
//!
//! Known divergence: on 4.2.0-rc* the JSTAT_MAPT_BAD_PRPF doc holds a bare
//! `"`, so `csv.reader` splits the row and the real exporter's collection
//! fails (IndexError). We apply the rules above to the real doc instead.

use std::io;

use super::Row;

/// HELP text when the explanation is empty.
const DEFAULT_HELP: &str = "jool metric";

/// Writes `rows` as jool-exporter's gauges, labelled with `hostname`.
pub fn write_prometheus<'a, I, W>(
    hostname: &str,
    rows: I,
    out: &mut W,
) -> io::Result<()>
where
    I: IntoIterator<Item = Row<'a>>,
    W: io::Write,
{
    let host = escape_label_value(hostname);
    for row in rows {
        let name = metric_name(row.name);
        writeln!(out, "# HELP {name} {}", help(row.doc))?;
        writeln!(out, "# TYPE {name} gauge")?;
        writeln!(
            out,
            "{name}{{hostname=\"{host}\"}} {}",
            go_float(row.value)
        )?;
    }
    Ok(())
}

/// `jool_` + name without `JSTAT_`, lowercased, `underscores`-escaped.
pub fn metric_name(stat: &str) -> String {
    if !stat.is_ascii() {
        return metric_name_of_chars(stat);
    }
    // The same rules over bytes: `JSTAT_` removed left to right as
    // `str::replace` does, then each byte lowercased or escaped.
    let mut out = String::with_capacity("jool_".len() + stat.len());
    out.push_str("jool_");
    let mut rest = stat.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if rest.starts_with(b"JSTAT_") {
            rest = &rest["JSTAT_".len()..];
            continue;
        }
        let c = char::from(b.to_ascii_lowercase());
        // Past `jool_`: never the first place.
        out.push(if legacy_metric_char(c, 1) { c } else { '_' });
        rest = tail;
    }
    out
}

/// [`metric_name`] char by char, for names that are not ASCII (whose
/// lowercase may be longer, or ASCII: `K` U+212A is `k`).
fn metric_name_of_chars(stat: &str) -> String {
    let raw = format!("jool_{}", stat.replace("JSTAT_", "").to_lowercase());
    raw.chars()
        .enumerate()
        .map(|(i, c)| if legacy_metric_char(c, i) { c } else { '_' })
        .collect()
}

/// `_is_legacy_metric_rune`: `[a-zA-Z_:]`, digits past the first place.
fn legacy_metric_char(c: char, i: usize) -> bool {
    c.is_ascii_alphabetic()
        || c == '_'
        || c == ':'
        || (c.is_ascii_digit() && i > 0)
}

/// The HELP text: quotes dropped, default if empty, `\` and newline escaped.
pub fn help(doc: &str) -> String {
    // Most docs hold none of the three (one memchr each finds that fast).
    if !doc.contains('"') && !doc.contains('\\') && !doc.contains('\n') {
        return if doc.is_empty() { DEFAULT_HELP } else { doc }.to_owned();
    }
    let doc = doc.replace('"', "");
    let doc = if doc.is_empty() { DEFAULT_HELP } else { &doc };
    doc.replace('\\', r"\\").replace('\n', r"\n")
}

fn escape_label_value(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n").replace('"', "\\\"")
}

/// `floatToGoString(float(value))` of `prometheus_client`.
pub fn go_float(value: u64) -> String {
    // Rounds to nearest like Python's float(str).
    let f = value as f64;
    if f >= 1e16 {
        // Python repr switches to exponent form at 1e16: `1e+16`.
        return format!("{f:e}").replacen('e', "e+", 1);
    }
    let repr = format!("{f}.0");
    let dot = repr.len() - 2;
    if dot <= 6 {
        return repr;
    }
    let digits = &repr[..dot];
    let mantissa = format!("{}.{}", &digits[..1], &digits[1..]);
    let mantissa = mantissa.trim_end_matches(['0', '.']);
    format!("{mantissa}e+{:02}", dot - 1)
}

#[cfg(test)]
mod test {
    use jool_sim::versions::Profile;

    use super::*;
    use crate::format::rows;

    #[test]
    fn test_names_follow_exporter() {
        assert_eq!(metric_name("JSTAT_RECEIVED6"), "jool_received6");
        assert_eq!(metric_name("JSTAT_6056_F"), "jool_6056_f");
        assert_eq!(metric_name("JSTAT64_SRC"), "jool_jstat64_src");
        assert_eq!(metric_name("????"), "jool_____");
    }

    proptest::proptest! {
        /// The byte loop of [`metric_name`] and the fast path of [`help`]
        /// say what the char-by-char rules say, for any text.
        #[test]
        fn test_fast_paths_follow_the_rules(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("JSTAT_".to_owned()),
                    proptest::strategy::Just("JST".to_owned()),
                    proptest::strategy::Just("AT_".to_owned()),
                    "[A-Za-z0-9_:?. \"\\\\\n\u{212A}\u{130}é-]{0,4}",
                ],
                0..6,
            )
        ) {
            let s = parts.concat();
            proptest::prop_assert_eq!(metric_name(&s), metric_name_of_chars(&s));
            let slow = s.replace('"', "");
            let slow = if slow.is_empty() { DEFAULT_HELP } else { &slow };
            let slow = slow.replace('\\', r"\\").replace('\n', r"\n");
            proptest::prop_assert_eq!(help(&s), slow);
        }
    }

    #[test]
    fn test_values_like_float_to_go_string() {
        let cases = [
            (0, "0.0"),
            (245, "245.0"),
            (999_999, "999999.0"),
            (1_000_000, "1e+06"),
            (79_109_475, "7.9109475e+07"),
            (130_048_136, "1.30048136e+08"),
            (12_345_678_901, "1.2345678901e+10"),
            (9_007_199_254_740_993, "9.007199254740992e+15"),
            (9_999_999_999_999_999, "1e+16"),
            (12_345_678_901_234_567, "1.2345678901234568e+16"),
            (u64::MAX, "1.8446744073709552e+19"),
        ];
        for (v, want) in cases {
            assert_eq!(go_float(v), want, "{v}");
        }
    }

    #[test]
    fn test_help_escaping_and_default() {
        assert_eq!(help(""), "jool metric");
        assert_eq!(help("\"\""), "jool metric");
        assert_eq!(help("a \"b\"\nc\\d"), r"a b\nc\\d");
    }

    fn scrape(release: &str, host: &str, counters: &[(u16, u64)]) -> String {
        let p = Profile::get(release).unwrap();
        let mut out = Vec::new();
        write_prometheus(host, rows(p, counters.iter().copied()), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn test_exporter_lines_for_4_0_7_empty_doc() {
        let text = scrape("4.0.7", "h\"ost\\\n", &[(0, 79_109_475)]);
        assert_eq!(
            text,
            "# HELP jool_received6 jool metric\n\
             # TYPE jool_received6 gauge\n\
             jool_received6{hostname=\"h\\\"ost\\\\\\n\"} 7.9109475e+07\n"
        );
    }

    /// Every line is HELP, TYPE gauge, or one sample; no raw newline leaks.
    fn assert_line_shapes(text: &str, families: usize) {
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3 * families);
        for group in lines.chunks(3) {
            let name = group[0].strip_prefix("# HELP ").unwrap();
            let name = name.split(' ').next().unwrap();
            assert_eq!(group[1], format!("# TYPE {name} gauge"));
            assert!(group[2].starts_with(&format!("{name}{{hostname=")));
        }
    }

    #[test]
    fn test_exposition_parses() {
        let p = Profile::get("4.2.0-rc3").unwrap();
        let counters: Vec<_> =
            p.stats.iter().map(|s| (s.id, u64::from(s.id) * 3)).collect();
        let text = scrape("4.2.0-rc3", "router.example", &counters);
        assert_line_shapes(&text, p.stats.len());
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let parsed = prometheus_parse::Scrape::parse(lines).unwrap();
        assert_eq!(parsed.samples.len(), p.stats.len());
        assert_eq!(parsed.docs.len(), p.stats.len());
        let s = &parsed.samples[2];
        assert_eq!(s.metric, "jool_success");
        assert_eq!(s.labels.get("hostname"), Some("router.example"));
        assert_eq!(s.value, prometheus_parse::Value::Gauge(9.0));
        let doc = &parsed.docs["jool_mapt_bad_prpf"];
        assert!(doc.contains(r"length\n- Mapping Rule is"), "{doc}");
    }
}
