//! `jool-harness versions list`: every release the project emulates.

use std::io;

use jool_sim::versions::Profile;
use serde::Serialize;

use super::{
    predict::compat_name,
    protocol::{self},
    Format,
};

/// One release, as `versions list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Release name.
    pub release: String,
    /// Git tag, or commit for `main`.
    pub tag: String,
    /// Version word on the wire.
    pub wire_version: String,
    /// Number of stats (JSTAT_UNKNOWN included).
    pub stats: usize,
    /// First and last id the kernel sends.
    pub ids: (u16, u16),
    /// The kernel's version check.
    pub compat: &'static str,
    /// Whether `stats display` needs CAP_NET_ADMIN.
    pub stats_requires_net_admin: bool,
    /// The Jool header.
    pub header: String,
}

/// The entry of `p`.
pub fn entry(p: &Profile) -> Entry {
    let header =
        protocol::facts(p).into_iter().find(|f| f.aspect == "Jool header");
    Entry {
        release: p.release.clone(),
        tag: p.tag.clone(),
        wire_version: format!("0x{:08x}", p.wire_version),
        stats: p.stats.len(),
        ids: (p.first_id(), p.max_id),
        compat: compat_name(p.compat),
        stats_requires_net_admin: p.stats_requires_net_admin,
        header: header.map(|f| f.value).unwrap_or_default(),
    }
}

fn short_header(p: &Profile) -> String {
    match (p.is_legacy(), p.has_magic()) {
        (true, _) => "request_hdr (16)".into(),
        (false, true) => "joolnlhdr (28, magic)".into(),
        (false, false) => "joolnlhdr (24)".into(),
    }
}

fn rows(profiles: &[Profile]) -> Vec<[String; 8]> {
    let mut rows = vec![[
        "release",
        "tag",
        "wire",
        "stats",
        "ids",
        "compat",
        "CAP_NET_ADMIN",
        "header",
    ]
    .map(String::from)];
    for p in profiles {
        let e = entry(p);
        let tag =
            if e.tag.len() == 40 { e.tag[..12].to_owned() } else { e.tag };
        rows.push([
            e.release,
            tag,
            format!("{} ({})", e.wire_version, p.version_quad()),
            e.stats.to_string(),
            format!("{}..{}", e.ids.0, e.ids.1),
            e.compat.into(),
            if e.stats_requires_net_admin { "yes" } else { "no" }.into(),
            short_header(p),
        ]);
    }
    rows
}

/// Writes the list of `profiles` in `format`.
pub fn write<W: io::Write>(
    profiles: &[Profile],
    format: Format,
    out: &mut W,
) -> io::Result<()> {
    match format {
        Format::Json => {
            let entries: Vec<Entry> = profiles.iter().map(entry).collect();
            serde_json::to_writer_pretty(&mut *out, &entries)?;
            out.write_all(b"\n")
        }
        Format::Markdown => {
            out.write_all(markdown(&rows(profiles)).as_bytes())
        }
        Format::Text => out.write_all(text(&rows(profiles)).as_bytes()),
    }
}

fn text(rows: &[[String; 8]]) -> String {
    let mut widths = [0; 8];
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut s = String::new();
    for r in rows {
        let cells: Vec<String> =
            r.iter().zip(widths).map(|(c, w)| format!("{c:w$}")).collect();
        s.push_str(cells.join("  ").trim_end());
        s.push('\n');
    }
    s
}

fn markdown(rows: &[[String; 8]]) -> String {
    let mut s = String::new();
    for (i, r) in rows.iter().enumerate() {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
        if i == 0 {
            s.push_str(&format!("|{}\n", "---|".repeat(8)));
        }
    }
    s
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_text_lists_every_release() {
        let mut out = Vec::new();
        write(Profile::all(), Format::Text, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1 + Profile::all().len());
        let line = text.lines().find(|l| l.starts_with("4.1.12 ")).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            words,
            [
                "4.1.12",
                "v4.1.12",
                "0x04010c00",
                "(4.1.12.0)",
                "84",
                "1..84",
                "major.minor",
                "no",
                "joolnlhdr",
                "(28,",
                "magic)"
            ]
        );
    }

    #[test]
    fn test_json_entry() {
        let e = entry(Profile::get("4.0.0").unwrap());
        assert_eq!(
            (e.stats, e.ids, e.compat, e.stats_requires_net_admin),
            (63, (0, 62), "exact", true)
        );
    }
}
