//! The C client's own `stats display` output, byte for byte.
//!
//! Mirrors `handle_jstat()` and the CSV header of
//! `src/usr/argp/wargp/stats.c` (identical format strings in every release
//! from 4.0.0 to main, see `fixtures/versions/client-output.md`):
//!
//! ```text
//! plain:            NAME: VALUE\n          (+ DOC\n\n with --explain)
//! --csv:            NAME,VALUE             (+ ,"DOC" with --explain) \n
//! header (csv only) Stat,Value             (+ ,Explanation)          \n
//! ```
//!
//! Nothing is escaped: docs with newlines span several lines, and a `"` in
//! a doc (4.2.0-rc MAP-T docs) is written bare, as the C client does.

use std::io::{self, Write};

/// The four flags of `stats display` that change its output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DisplayFlags {
    /// `--all`/`-a`: do not filter out zero stats.
    pub all: bool,
    /// `--explain`/`-e`: print each stat's description.
    pub explain: bool,
    /// `--csv`: comma-separated output.
    pub csv: bool,
    /// `--no-headers`: no CSV header (no effect without `--csv`).
    pub no_headers: bool,
}

impl DisplayFlags {
    /// Whether the CSV header is printed: `show_csv_header()`.
    pub fn show_header(&self) -> bool {
        self.csv && !self.no_headers
    }

    /// Whether a counter with this value is printed (the zero filter).
    pub fn shows(&self, value: u64) -> bool {
        self.all || value != 0
    }
}

/// Writes the CSV header line, if `flags` ask for one.
pub fn write_header<W: Write>(
    flags: &DisplayFlags,
    out: &mut W,
) -> io::Result<()> {
    if !flags.show_header() {
        return Ok(());
    }
    out.write_all(b"Stat,Value")?;
    if flags.explain {
        out.write_all(b",Explanation")?;
    }
    out.write_all(b"\n")
}

/// Writes one counter as `handle_jstat()` does, zero filter included.
pub fn write_stat<W: Write>(
    flags: &DisplayFlags,
    name: &str,
    doc: &str,
    value: u64,
    out: &mut W,
) -> io::Result<()> {
    if !flags.shows(value) {
        return Ok(());
    }
    if flags.csv {
        write!(out, "{name},{value}")?;
        if flags.explain {
            write!(out, ",\"{doc}\"")?;
        }
        return out.write_all(b"\n");
    }
    writeln!(out, "{name}: {value}")?;
    if flags.explain {
        writeln!(out, "{doc}\n")?;
    }
    Ok(())
}

/// The two stderr lines a 4.1.13+ client prints for each unknown id.
///
/// `kernel_reported_quad` comes from the reply's Jool header, which the
/// kernel copies from the request: in practice it equals `client_quad`.
pub fn unknown_warning(
    kernel_reported_quad: &str,
    client_quad: &str,
) -> String {
    format!(
        "Warning: Unknown stat. Other stats might be mislabeled.\n\
         Kernel module version is {kernel_reported_quad}, \
         userspace client is {client_quad}.\n"
    )
}

#[cfg(test)]
mod test {
    use super::*;

    fn flags(s: &str) -> DisplayFlags {
        DisplayFlags {
            all: s.contains('a'),
            explain: s.contains('e'),
            csv: s.contains('c'),
            no_headers: s.contains('n'),
        }
    }

    fn stat(f: &str, name: &str, doc: &str, value: u64) -> String {
        let mut out = Vec::new();
        write_stat(&flags(f), name, doc, value, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn header(f: &str) -> String {
        let mut out = Vec::new();
        write_header(&flags(f), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn test_header_only_in_csv_without_no_headers() {
        assert_eq!(header("c"), "Stat,Value\n");
        assert_eq!(header("ce"), "Stat,Value,Explanation\n");
        assert_eq!(header("cn"), "");
        assert_eq!(header("ae"), "");
        assert_eq!(header("n"), "");
    }

    #[test]
    fn test_zero_filter() {
        assert_eq!(stat("", "JSTAT_X", "d", 0), "");
        assert_eq!(stat("ce", "JSTAT_X", "d", 0), "");
        assert_eq!(stat("a", "JSTAT_X", "d", 0), "JSTAT_X: 0\n");
    }

    #[test]
    fn test_plain_and_explain() {
        assert_eq!(stat("", "JSTAT_X", "d", 12), "JSTAT_X: 12\n");
        assert_eq!(stat("e", "JSTAT_X", "d", 12), "JSTAT_X: 12\nd\n\n");
    }

    #[test]
    fn test_csv_value_is_unpadded_u64() {
        let max = stat("c", "JSTAT_X", "d", u64::MAX);
        assert_eq!(max, "JSTAT_X,18446744073709551615\n");
    }

    #[test]
    fn test_doc_with_newlines_is_raw() {
        let doc = "line one.\nline two.";
        assert_eq!(stat("ce", "J", doc, 3), "J,3,\"line one.\nline two.\"\n");
        assert_eq!(stat("e", "J", doc, 3), "J: 3\nline one.\nline two.\n\n");
    }

    #[test]
    fn test_rc_doc_with_bare_quote_is_not_escaped() {
        let p = jool_sim::versions::Profile::get("4.2.0-rc3").unwrap();
        let s = p.stats.iter().find(|s| s.name == "JSTAT_MAPT_BAD_PRPF");
        let s = s.unwrap();
        let out = stat("ce", &s.name, &s.doc, 2);
        assert!(out.contains("\n- \"Mapping Rule\" is the BMR"), "{out}");
        assert!(out.ends_with("16 - a - k.\"\n"), "{out}");
        assert!(!out.contains("\"\""));
    }

    #[test]
    fn test_unknown_warning_text() {
        assert_eq!(
            unknown_warning("4.1.13.0", "4.1.13.0"),
            "Warning: Unknown stat. Other stats might be mislabeled.\n\
             Kernel module version is 4.1.13.0, \
             userspace client is 4.1.13.0.\n"
        );
    }
}
