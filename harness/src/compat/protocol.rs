//! The protocol facts of a release that matter on the `stats` path, as
//! `(aspect, value)` pairs a diff can compare: wire protocol, family,
//! header, ops, attributes, version checks, unknown-id handling,
//! privilege rules and error texts.
//!
//! Everything comes from [`Profile`] (which derives it from
//! `fixtures/versions/protocol.md`, `client-output.md` and
//! `kernel-errors.md`); this module only names it.

use jool_sim::versions::{
    cmp_releases, ErrorStyle, LegacyLayout, Numbering, Profile, Protocol,
    ReplyCheck, UnknownStat,
};
use serde::Serialize;

use super::predict::{compat_name, family_name};
use crate::format::UnknownCounter;

/// One protocol fact of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fact {
    /// What it is about (`Jool header`, `kernel version check`, ...).
    pub aspect: &'static str,
    /// Its value in this release.
    pub value: String,
}

/// A fact that differs between two releases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FactDiff {
    /// What it is about.
    pub aspect: &'static str,
    /// The first release's value.
    pub a: String,
    /// The second release's value.
    pub b: String,
}

fn header(p: &Profile) -> String {
    match p.protocol {
        Protocol::Legacy(LegacyLayout::TypeChar) => {
            "16-byte request_hdr in ATTR_DATA: magic \"jool\", type 's'/'n' at 4, version at 8".into()
        }
        Protocol::Legacy(LegacyLayout::NoType) => {
            "16-byte request_hdr in ATTR_DATA: magic \"jool\", no translator type, version at 8".into()
        }
        Protocol::Legacy(LegacyLayout::Xt) => {
            "16-byte request_hdr in ATTR_DATA: magic \"jool\", xt at 4, version at 8".into()
        }
        Protocol::Joolnl { header_len: 28 } => "28-byte joolnlhdr, magic \"jool\"".into(),
        Protocol::Joolnl { header_len } => format!("{header_len}-byte joolnlhdr, no magic"),
    }
}

fn stats_request(p: &Profile) -> String {
    if p.is_legacy() {
        let mode =
            if cmp_releases(&p.release, "4.0.5").is_lt() { 1 } else { 2 };
        return format!("JOOL_COMMAND=0, MODE_STATS={mode}, OP_FOREACH=0");
    }
    "JNLOP_STATS_FOREACH=7".into()
}

fn ops(p: &Profile) -> String {
    match (p.is_legacy(), p.numbering) {
        (true, _) => "1 (JOOL_COMMAND)".into(),
        (false, Numbering::Jool41) => {
            format!("{} (4.0.8 – 4.1 numbering)", p.op_count())
        }
        (false, Numbering::MapT) => {
            format!("{} (MAP-T FMRT ops inserted at 26)", p.op_count())
        }
    }
}

fn attributes(p: &Profile) -> String {
    if p.is_legacy() {
        return format!("ATTR_INAME=1, ATTR_DATA=2 (maxattr {})", p.maxattr());
    }
    format!("JNLAR_OFFSET_U8={} (maxattr {})", p.offset_u8_attr(), p.maxattr())
}

fn reply_check(p: &Profile) -> String {
    match p.reply_check {
        ReplyCheck::None => "none".into(),
        ReplyCheck::Magic(rule) => {
            format!("magic, translator type, version ({})", compat_name(rule))
        }
    }
}

fn unknown_stat(p: &Profile) -> String {
    match p.unknown_stat {
        UnknownStat::Fail => format!("fail: \"{}\"", UnknownCounter::MESSAGE),
        UnknownStat::Warn => "warn on stderr, print ????".into(),
    }
}

fn magic_error(p: &Profile) -> String {
    let text = match p.protocol {
        Protocol::Legacy(_) if p.error_style == ErrorStyle::Bare => {
            "The userspace client sent a message that lacks the Jool magic text."
        }
        Protocol::Legacy(_) => "The userspace client's request lacks the Jool magic text.",
        Protocol::Joolnl { header_len: 28 } => {
            "Don't know what to do: The packet I just received does not follow Jool's protocol."
        }
        Protocol::Joolnl { .. } => return "(no magic check)".into(),
    };
    format!("\"{text}\"")
}

fn error_reply(p: &Profile) -> String {
    if p.is_legacy() {
        return "response_hdr error_code + NUL-terminated message".into();
    }
    if p.always_error_msg {
        "JNLAERR_CODE + JNLAERR_MSG (always, maybe empty)".into()
    } else {
        "JNLAERR_CODE + JNLAERR_MSG (only when a message was logged)".into()
    }
}

fn translators(p: &Profile) -> String {
    if p.header_len() == 28 && p.numbering == Numbering::MapT {
        "SIIT, NAT64, MAP-T (XT_MAPT=4)".into()
    } else {
        "SIIT, NAT64".into()
    }
}

/// Every fact of `p`, in a fixed order.
pub fn facts(p: &Profile) -> Vec<Fact> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let ids = format!("{}..{}", p.first_id(), p.max_id);
    let family =
        format!("{}, genl version {}", family_name(p), p.genl_version());
    let protocol = if p.is_legacy() {
        "4.0.0 – 4.0.7 (request_hdr)"
    } else {
        "joolnl (4.0.8+)"
    };
    let error_prefix = match p.error_style {
        ErrorStyle::Bare => "none (bare text)",
        ErrorStyle::Prefixed => "\"Error: \"",
    };
    let flags =
        if p.zero_reply_flags { "zeroed" } else { "copied from the request" };
    let list: [(&'static str, String); 17] = [
        ("protocol", protocol.into()),
        ("genl family", family),
        ("Jool header", header(p)),
        ("stats request", stats_request(p)),
        ("ops", ops(p)),
        ("attributes", attributes(p)),
        ("stat ids", ids),
        ("translator types", translators(p)),
        ("kernel version check", compat_name(p.compat).into()),
        ("client reply check", reply_check(p)),
        ("reply header flags", flags.into()),
        ("client on unknown ids", unknown_stat(p)),
        ("CAP_NET_ADMIN for stats", yes_no(p.stats_requires_net_admin)),
        ("capability error text", format!("\"{}\"", p.cap_error_text())),
        ("magic error text", magic_error(p)),
        ("error reply", error_reply(p)),
        ("client error prefix", error_prefix.into()),
    ];
    list.into_iter().map(|(aspect, value)| Fact { aspect, value }).collect()
}

/// The facts that differ between `a` and `b`.
pub fn diff(a: &Profile, b: &Profile) -> Vec<FactDiff> {
    facts(a)
        .into_iter()
        .zip(facts(b))
        .filter(|(x, y)| x.value != y.value)
        .map(|(x, y)| FactDiff { aspect: x.aspect, a: x.value, b: y.value })
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;

    fn g(name: &str) -> &'static Profile {
        Profile::get(name).unwrap()
    }

    #[test]
    fn test_4_1_9_to_4_1_12() {
        let d = diff(g("4.1.9"), g("4.1.12"));
        assert_eq!(
            d[0],
            FactDiff {
                aspect: "stat ids",
                a: "1..69".into(),
                b: "1..84".into()
            }
        );
        assert_eq!(d[1].aspect, "client reply check");
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn test_4_1_4_to_4_1_5() {
        let d = diff(g("4.1.4"), g("4.1.5"));
        let aspects: Vec<&str> = d.iter().map(|f| f.aspect).collect();
        assert_eq!(
            aspects,
            [
                "Jool header",
                "client reply check",
                "CAP_NET_ADMIN for stats",
                "magic error text"
            ]
        );
    }

    #[test]
    fn test_mapt_numbering() {
        let d = diff(g("4.1.15"), g("4.2.0-rc3"));
        assert!(d.iter().any(|f| f.aspect == "attributes"
            && f.b.starts_with("JNLAR_OFFSET_U8=10")));
        assert!(d.iter().any(|f| f.aspect == "ops" && f.b.starts_with("34")));
    }
}
