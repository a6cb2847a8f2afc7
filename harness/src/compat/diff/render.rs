//! A [`Diff`] as text, Markdown or JSON.

use std::io;

use super::{Crossing, Diff};
use crate::{
    compat::{
        predict::{self, Mislabel, UnknownEffect, Verdict},
        Format,
    },
    format::UnknownCounter,
};

/// Writes `d` in `format`.
pub fn write<W: io::Write>(
    d: &Diff,
    format: Format,
    out: &mut W,
) -> io::Result<()> {
    match format {
        Format::Text => out.write_all(text(d).as_bytes()),
        Format::Markdown => out.write_all(markdown(d).as_bytes()),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, d)?;
            out.write_all(b"\n")
        }
    }
}

fn count(items: usize, what: &str) -> String {
    match items {
        0 => format!("{what}: none"),
        n => format!("{what} ({n}):"),
    }
}

fn stat_lines(d: &Diff) -> Vec<String> {
    let mut l = vec![count(d.added.len(), "added")];
    l.extend(d.added.iter().map(|s| format!("  {} (id {})", s.name, s.id)));
    l.push(count(d.removed.len(), "removed"));
    l.extend(
        d.removed.iter().map(|s| format!("  {} (was id {})", s.name, s.id)),
    );
    l.push(count(d.renamed.len(), "renamed"));
    l.extend(d.renamed.iter().map(|r| {
        format!("  {} (id {}) -> {} (id {})", r.from, r.id_a, r.to, r.id_b)
    }));
    l.push(count(d.redocumented.len(), "re-documented"));
    for k in &d.redocumented {
        l.push(format!("  {}:", k.name));
        l.push(format!("    {}: {}", d.a, k.doc_a.replace('\n', "\\n")));
        l.push(format!("    {}: {}", d.b, k.doc_b.replace('\n', "\\n")));
    }
    l.push(count(d.moved.len(), "moved"));
    l.extend(
        d.moved
            .iter()
            .map(|k| format!("  {}: id {} -> {}", k.name, k.id_a, k.id_b)),
    );
    l.push(count(d.meanings.len(), "ids that mean different things"));
    l.extend(
        d.meanings.iter().map(|m| {
            format!("  id {}: {} {}, {} {}", m.id, d.a, m.a, d.b, m.b)
        }),
    );
    l
}

/// What a crossing's labels come to, besides the mislabels.
fn summary_lines(c: &Crossing) -> Vec<String> {
    let Verdict::Accepted { unknown, effect, redocumented, .. } = &c.verdict
    else {
        return vec![];
    };
    let mut l = Vec::new();
    if c.verdict.is_exact() {
        l.push(format!(
            "every counter is shown under {}'s own name",
            c.kernel
        ));
    }
    for r in unknown {
        let then = match effect {
            Some(UnknownEffect::FailsAt(id)) => {
                format!(
                    "the display fails at id {id} (\"{}\")",
                    UnknownCounter::MESSAGE
                )
            }
            _ => "each is printed as ???? with a warning on stderr".to_owned(),
        };
        l.push(format!("{r} unknown to {}: {then}", c.client));
    }
    if !redocumented.is_empty() {
        let ids = predict::ranges(redocumented.iter().copied());
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        l.push(format!("same name, other --explain text: {}", ids.join(", ")));
    }
    l
}

fn mislabels(c: &Crossing) -> &[Mislabel] {
    match &c.verdict {
        Verdict::Accepted { mislabels, .. } => mislabels,
        Verdict::Rejected => &[],
    }
}

fn mislabel_line(c: &Crossing, m: &Mislabel) -> String {
    format!(
        "  id {}: {} prints {}; {} means {}",
        m.id, c.client, m.printed, c.kernel, m.meant
    )
}

fn crossing_text(c: &Crossing) -> String {
    let accepted = if matches!(c.verdict, Verdict::Rejected) {
        "rejected"
    } else {
        "accepted"
    };
    let mut s = format!(
        "Client {} against kernel {}: {accepted}\n",
        c.client, c.kernel
    );
    s.push_str(&format!("  {}\n", c.reason));
    s.push_str(&format!(
        "  (kernel {} version check: {}; client {} reply check: {})\n",
        c.kernel, c.kernel_compat, c.client, c.client_reply_check
    ));
    if !mislabels(c).is_empty() {
        let n = mislabels(c).len();
        let what = if n == 1 { "counter" } else { "counters" };
        s.push_str(&format!("  {n} {what} mislabeled:\n"));
    }
    for m in mislabels(c) {
        s.push_str(&format!("  {}\n", mislabel_line(c, m)));
    }
    for line in summary_lines(c) {
        s.push_str(&format!("  {line}\n"));
    }
    s.push_str(&format!(
        "  verified: the {} client against the simulated {} kernel, in-process, shows the same{}\n",
        c.client,
        c.kernel,
        c.observed_error.as_ref().map(|e| format!(" (error: {})", e.replace('\n', " "))).unwrap_or_default()
    ));
    s
}

/// The text format.
pub fn text(d: &Diff) -> String {
    let mut s = format!("Jool {} -> {}\n\nStats\n", d.a, d.b);
    for line in stat_lines(d) {
        s.push_str(&format!("  {line}\n"));
    }
    s.push_str("\nProtocol\n");
    if d.protocol.is_empty() {
        s.push_str("  no differences\n");
    }
    for f in &d.protocol {
        s.push_str(&format!(
            "  {}:\n    {}: {}\n    {}: {}\n",
            f.aspect, d.a, f.a, d.b, f.b
        ));
    }
    s.push('\n');
    s.push_str(&crossing_text(&d.a_on_b));
    s.push('\n');
    s.push_str(&crossing_text(&d.b_on_a));
    s
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

fn md_stats(d: &Diff) -> String {
    let mut s = String::from("## Stats\n\n| change | name | ");
    s.push_str(&format!("{} | {} |\n|---|---|---|---|\n", d.a, d.b));
    let mut row = |what: &str, name: &str, a: String, b: String| {
        s.push_str(&format!(
            "| {what} | `{name}` | {} | {} |\n",
            md_escape(&a),
            md_escape(&b)
        ));
    };
    for p in &d.added {
        row("added", &p.name, String::new(), format!("id {}", p.id));
    }
    for p in &d.removed {
        row("removed", &p.name, format!("id {}", p.id), String::new());
    }
    for r in &d.renamed {
        row(
            "renamed",
            &format!("{} → {}", r.from, r.to),
            format!("id {}", r.id_a),
            format!("id {}", r.id_b),
        );
    }
    for k in &d.moved {
        row(
            "moved",
            &k.name,
            format!("id {}", k.id_a),
            format!("id {}", k.id_b),
        );
    }
    for k in &d.redocumented {
        row("re-documented", &k.name, k.doc_a.clone(), k.doc_b.clone());
    }
    s.push_str("\n### Ids that mean different things\n\n");
    if d.meanings.is_empty() {
        s.push_str("None.\n");
        return s;
    }
    s.push_str(&format!("| id | {} | {} |\n|---|---|---|\n", d.a, d.b));
    for m in &d.meanings {
        s.push_str(&format!("| {} | `{}` | `{}` |\n", m.id, m.a, m.b));
    }
    s
}

fn md_crossing(c: &Crossing) -> String {
    let mut s = format!(
        "## Client {} against kernel {}: {}\n\n",
        c.client,
        c.kernel,
        c.verdict.words()
    );
    s.push_str(&format!("{}.\n\n", md_escape(&c.reason)));
    s.push_str(&format!(
        "Kernel {} version check: {}; client {} reply check: {}.\n\n",
        c.kernel, c.kernel_compat, c.client, c.client_reply_check
    ));
    if matches!(c.verdict, Verdict::Rejected) {
        return s;
    }
    if !mislabels(c).is_empty() {
        s.push_str(&format!(
            "| id | {} prints | {} means |\n|---|---|---|\n",
            c.client, c.kernel
        ));
        for m in mislabels(c) {
            s.push_str(&format!(
                "| {} | `{}` | `{}` |\n",
                m.id, m.printed, m.meant
            ));
        }
        s.push('\n');
    }
    for line in summary_lines(c) {
        s.push_str(&format!("- {}\n", md_escape(&line)));
    }
    s.push_str("- verified in-process against the simulated kernel\n\n");
    s
}

/// The markdown format.
pub fn markdown(d: &Diff) -> String {
    let mut s = format!("# Jool {} → {}\n\n", d.a, d.b);
    s.push_str(&md_stats(d));
    s.push_str("\n## Protocol\n\n");
    if d.protocol.is_empty() {
        s.push_str("No differences.\n");
    } else {
        s.push_str(&format!(
            "| aspect | {} | {} |\n|---|---|---|\n",
            d.a, d.b
        ));
        for f in &d.protocol {
            s.push_str(&format!(
                "| {} | {} | {} |\n",
                f.aspect,
                md_escape(&f.a),
                md_escape(&f.b)
            ));
        }
    }
    s.push('\n');
    s.push_str(&md_crossing(&d.a_on_b));
    s.push_str(&md_crossing(&d.b_on_a));
    s.truncate(s.trim_end().len());
    s.push('\n');
    s
}
