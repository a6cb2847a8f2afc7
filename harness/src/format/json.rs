//! `--format json`: one JSON document per display (our own format; the
//! C client has no JSON output).
//!
//! ```json
//! {
//!   "instance": "default",
//!   "translator": "siit",
//!   "client_release": "4.1.9",
//!   "stats": [
//!     { "id": 1, "name": "JSTAT_RECEIVED6", "value": 27,
//!       "doc": "Total IPv6 packets received by the instance so far." }
//!   ]
//! }
//! ```
//!
//! Choices:
//! - `stats` follows the `--all` flag like the text output: without it,
//!   zero counters are left out; with it, every counter the kernel sent.
//! - `doc` is always present, whatever `--explain` says.
//! - Unknown ids are kept, as `????` / `This stat is unknown.` with their
//!   real `id`, even for releases whose C client fails on them.
//! - Values are exact JSON integers (up to `u64::MAX`).
//!
//! Serialization types stay private to this file.

use std::io;

use serde::Serialize;

use super::Row;

/// Translator type of the instance (`jool` or `jool_siit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Translator {
    /// Stateful NAT64 (`jool`).
    Nat64,
    /// SIIT (`jool_siit`).
    Siit,
}

/// What the document says about where the counters come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonMeta<'a> {
    /// Instance name (`-i`, default `default`).
    pub instance: &'a str,
    /// Translator type.
    pub translator: Translator,
    /// Release whose client table labelled the counters.
    pub client_release: &'a str,
}

#[derive(Serialize)]
struct Document<'a> {
    instance: &'a str,
    translator: Translator,
    client_release: &'a str,
    stats: Vec<JsonStat<'a>>,
}

#[derive(Serialize)]
struct JsonStat<'a> {
    id: u16,
    name: &'a str,
    value: u64,
    doc: &'a str,
}

impl<'a> From<&Row<'a>> for JsonStat<'a> {
    fn from(r: &Row<'a>) -> Self {
        Self { id: r.id, name: r.name, value: r.value, doc: r.doc }
    }
}

/// Writes `rows` as one pretty-printed JSON document and a newline.
///
/// With `all` false, rows whose value is 0 are left out.
pub fn write_json<'a, I, W>(
    meta: &JsonMeta<'a>,
    rows: I,
    all: bool,
    out: &mut W,
) -> io::Result<()>
where
    I: IntoIterator<Item = Row<'a>>,
    W: io::Write,
{
    let stats = rows
        .into_iter()
        .filter(|r| all || r.value != 0)
        .map(|r| JsonStat::from(&r))
        .collect();
    let doc = Document {
        instance: meta.instance,
        translator: meta.translator,
        client_release: meta.client_release,
        stats,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod test {
    use jool_sim::versions::Profile;
    use serde_json::Value;

    use super::*;
    use crate::format::rows;

    fn render(release: &str, counters: &[(u16, u64)], all: bool) -> Value {
        let p = Profile::get(release).unwrap();
        let meta = JsonMeta {
            instance: "a \"quoted\"\ninstance",
            translator: Translator::Nat64,
            client_release: &p.release,
        };
        let mut out = Vec::new();
        let r = rows(p, counters.iter().copied());
        write_json(&meta, r, all, &mut out).unwrap();
        assert!(out.ends_with(b"}\n"));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn test_json_parses_and_keeps_metadata() {
        let v = render("4.1.9", &[(1, 3)], false);
        assert_eq!(v["instance"], "a \"quoted\"\ninstance");
        assert_eq!(v["translator"], "nat64");
        assert_eq!(v["client_release"], "4.1.9");
        assert_eq!(v["stats"][0]["name"], "JSTAT_RECEIVED6");
        assert_eq!(v["stats"][0]["id"], 1);
        assert_eq!(v["stats"][0]["value"], 3);
    }

    #[test]
    fn test_json_zero_filter_follows_all() {
        let counters = [(1, 0), (2, 5), (3, 0)];
        assert_eq!(
            render("4.1.9", &counters, false)["stats"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            render("4.1.9", &counters, true)["stats"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn test_json_escapes_rc_quote_and_newlines() {
        let p = Profile::get("4.2.0-rc3").unwrap();
        let s =
            p.stats.iter().find(|s| s.name == "JSTAT_MAPT_BAD_PRPF").unwrap();
        let v = render("4.2.0-rc3", &[(s.id, u64::MAX), (999, 1)], false);
        assert_eq!(v["stats"][0]["doc"], s.doc.as_str());
        assert_eq!(v["stats"][0]["value"].as_u64(), Some(u64::MAX));
        assert_eq!(v["stats"][1]["name"], "????");
        assert_eq!(v["stats"][1]["id"], 999);
    }

    #[test]
    fn test_json_translator_names() {
        let s = |t| serde_json::to_string(&t).unwrap();
        assert_eq!(s(Translator::Siit), "\"siit\"");
        assert_eq!(s(Translator::Nat64), "\"nat64\"");
    }
}
