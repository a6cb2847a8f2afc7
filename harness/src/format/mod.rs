//! Output formatters for `stats display`, writing to any [`io::Write`].
//!
//! - [`text`]: the C client's own output (plain, `--explain`, `--csv`,
//!   header), byte for byte, for every release (`client-output.md`).
//! - [`render`]: one whole display as the C client does it: header,
//!   each counter, unknown-id warnings or failure.
//! - [`json`]: `--format json`, a document of our own.
//! - [`prometheus`]: `--format prometheus`, the text exposition that the
//!   PyPI `jool-exporter` serves.
//!
//! This module owns the labelling of kernel ids with a client's table
//! ([`label`], [`rows`]) that all formatters share.
//!
//! [`io::Write`]: std::io::Write

use jool_sim::versions::{Profile, Stat};

pub mod json;
pub mod prometheus;
pub mod render;
pub mod text;

#[cfg(test)]
mod captures;

pub use json::{write_json, JsonMeta, Translator};
pub use prometheus::write_prometheus;
pub use render::{RenderError, Renderer, UnknownCounter};
pub use text::{unknown_warning, write_header, write_stat, DisplayFlags};

/// Name the C client prints for an id outside its table (4.1.13+).
pub const UNKNOWN_NAME: &str = "????";

/// Doc the C client prints for an id outside its table (4.1.13+).
pub const UNKNOWN_DOC: &str = "This stat is unknown.";

/// How a client labels one stat id the kernel sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label<'a> {
    /// The id is in the client's table.
    Known(&'a Stat),
    /// The id is below the first id or above `max_id` of the client.
    Unknown,
}

impl<'a> Label<'a> {
    /// The printed name: the table's, or [`UNKNOWN_NAME`].
    pub fn name(&self) -> &'a str {
        match self {
            Self::Known(stat) => &stat.name,
            Self::Unknown => UNKNOWN_NAME,
        }
    }

    /// The printed explanation: the table's, or [`UNKNOWN_DOC`].
    pub fn doc(&self) -> &'a str {
        match self {
            Self::Known(stat) => &stat.doc,
            Self::Unknown => UNKNOWN_DOC,
        }
    }
}

/// How the client of `profile` labels the kernel's stat `id`.
///
/// The client knows ids `first_id ..= max_id` of its own table; anything
/// else is unknown (`t < 1 || t >= JSTAT_PADDING` in the C client).
pub fn label(profile: &Profile, id: u16) -> Label<'_> {
    profile.stat(id).map_or(Label::Unknown, Label::Known)
}

/// One counter, labelled by a client's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row<'a> {
    /// Attribute type (or array index before 4.0.8) the kernel sent.
    pub id: u16,
    /// Printed name (`????` when unknown).
    pub name: &'a str,
    /// Explanation (`This stat is unknown.` when unknown).
    pub doc: &'a str,
    /// Counter value.
    pub value: u64,
}

/// Labels `(id, value)` pairs, in kernel order, with `profile`'s table.
///
/// Unknown ids are kept, with the `????` label of 4.1.13+ clients, whatever
/// the profile's own [`UnknownStat`] rule: the machine formats never fail.
///
/// [`UnknownStat`]: jool_sim::versions::UnknownStat
pub fn rows<'a, I>(profile: &'a Profile, counters: I) -> Vec<Row<'a>>
where
    I: IntoIterator<Item = (u16, u64)>,
{
    let row = |(id, value)| {
        let l = label(profile, id);
        Row { id, name: l.name(), doc: l.doc(), value }
    };
    counters.into_iter().map(row).collect()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_label_bounds_follow_client_table() {
        let p = Profile::get("4.1.9").unwrap();
        assert_eq!(label(p, 0), Label::Unknown);
        assert_eq!(label(p, 1).name(), "JSTAT_RECEIVED6");
        assert_eq!(label(p, p.max_id).name(), "JSTAT_UNKNOWN");
        assert_eq!(label(p, p.max_id + 1), Label::Unknown);
        assert_eq!(label(p, u16::MAX).doc(), UNKNOWN_DOC);
    }

    #[test]
    fn test_legacy_ids_start_at_zero() {
        let p = Profile::get("4.0.7").unwrap();
        assert_eq!(label(p, 0).name(), "JSTAT_RECEIVED6");
    }

    #[test]
    fn test_rows_keep_kernel_order_and_unknowns() {
        let p = Profile::get("4.1.9").unwrap();
        let r = rows(p, [(3, 7), (900, 1), (1, 0)]);
        let names: Vec<_> =
            r.iter().map(|r| (r.id, r.name, r.value)).collect();
        assert_eq!(
            names,
            [
                (3, "JSTAT_SUCCESS", 7),
                (900, "????", 1),
                (1, "JSTAT_RECEIVED6", 0)
            ]
        );
    }
}
