//! The protocol facts of a release that matter on the `stats` path, as
//! `(aspect, value)` pairs a diff can compare: wire protocol, family,
//! header, ops, attributes, version checks, unknown-id handling,
//! privilege rules and error texts.
//!
//! Everything comes from [`Profile`] (which derives it from
//! `fixtures/versions/protocol.md`, `client-output.md` and
//! `kernel-errors.md`); this module only names it.

use jool_sim::versions::{
    ErrorStyle, LegacyLayout, Numbering, Profile, Protocol, ReplyCheck,
    UnknownStat,
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
        let mode = if p.is_before("4.0.5") { 1 } else { 2 };
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

fn globals(p: &Profile) -> String {
    if p.is_legacy() {
        return "struct globals in request_hdr payloads (no JNLAG_* numbers)"
            .into();
    }
    match p.lowest_ipv6_mtu_global() {
        None => {
            "no JNLAG_LOWEST_IPV6_MTU (every later global one lower)".into()
        }
        Some(7) => "JNLAG_LOWEST_IPV6_MTU=7 (after JNLAG_TOS)".into(),
        Some(n) => format!("JNLAG_LOWEST_IPV6_MTU={n} (before the booleans)"),
    }
}

fn frameworks(p: &Profile) -> String {
    if p.is_before("4.0.6") {
        "FW_NETFILTER=1, FW_IPTABLES=2".into()
    } else if p.numbering == Numbering::MapT {
        "XF_NETFILTER=8, XF_IPTABLES=16 (XT_MAPT took bit 2)".into()
    } else {
        "XF_NETFILTER=4, XF_IPTABLES=8".into()
    }
}

fn pool6_address(p: &Profile) -> String {
    if p.is_legacy() {
        "struct config_prefix6 in the request".into()
    } else if p.prefix_address_unspec() {
        "NLA_UNSPEC: refused by Linux 5.2+ validation, no instance add with pool6 works (Jool #326)".into()
    } else {
        "binary, 16 bytes".into()
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
    let list: [(&'static str, String); 20] = [
        ("protocol", protocol.into()),
        ("genl family", family),
        ("Jool header", header(p)),
        ("stats request", stats_request(p)),
        ("ops", ops(p)),
        ("attributes", attributes(p)),
        ("stat ids", ids),
        ("translator types", translators(p)),
        ("instance frameworks", frameworks(p)),
        ("globals", globals(p)),
        ("pool6 address attribute", pool6_address(p)),
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

/// The facts that differ between `a` and `b`, then the commands that
/// name different operations in the two (what a client of one asks the
/// kernel of the other).
pub fn diff(a: &Profile, b: &Profile) -> Vec<FactDiff> {
    let mut out: Vec<FactDiff> = facts(a)
        .into_iter()
        .zip(facts(b))
        .filter(|(x, y)| x.value != y.value)
        .map(|(x, y)| FactDiff { aspect: x.aspect, a: x.value, b: y.value })
        .collect();
    out.extend(op_meanings(a, b));
    out
}

/// The genl commands both joolnl releases may receive whose operation
/// differs (`cmd NAME`, `-` where a release has none).
fn op_meanings(a: &Profile, b: &Profile) -> Option<FactDiff> {
    if a.is_legacy() || b.is_legacy() || a.numbering == b.numbering {
        return None;
    }
    let name =
        |p: &Profile, cmd| p.numbering.op(cmd).map_or("-", |o| o.name());
    let cmds: Vec<u8> = (0..a.op_count().max(b.op_count()))
        .filter(|&c| name(a, c) != name(b, c))
        .collect();
    let list = |p: &Profile| {
        cmds.iter()
            .map(|&c| format!("{c} {}", name(p, c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(FactDiff {
        aspect: "commands that mean something else",
        a: list(a),
        b: list(b),
    })
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
        let cmds = d
            .iter()
            .find(|f| f.aspect == "commands that mean something else")
            .unwrap();
        assert!(cmds.a.starts_with("26 FILE_HANDLE,"), "{}", cmds.a);
        assert!(cmds.b.starts_with("26 FMRT_FOREACH,"), "{}", cmds.b);
        assert!(cmds.a.ends_with("33 -") && cmds.b.ends_with("33 JOOLD_ACK"));
        let fw = d.iter().find(|f| f.aspect == "instance frameworks").unwrap();
        assert!(fw.b.starts_with("XF_NETFILTER=8"));
    }

    #[test]
    fn test_globals_and_4_0_8_pool6() {
        let d = diff(g("4.1.1"), g("4.1.2"));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].aspect, "globals");
        assert!(d[0].a.contains("=7") && d[0].b.contains("=3"));
        let d = diff(g("4.0.8"), g("4.0.9"));
        assert!(d.iter().any(|f| f.aspect == "pool6 address attribute"
            && f.a.contains("Jool #326")));
        assert!(diff(g("4.1.9"), g("4.1.15"))
            .iter()
            .all(|f| f.aspect != "commands that mean something else"));
    }
}
