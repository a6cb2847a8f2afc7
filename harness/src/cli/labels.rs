//! Labels follow the kernel: `--client-version auto` (the default) and
//! `--strict`.
//!
//! - `auto`: label with the kernel module's own release, found by
//!   [`crate::compat::detect`] (`/sys/module/jool*/version`, or
//!   `JOOL_SIM_KERNEL_VERSION` under `jool-sim exec`; `--sim` knows its
//!   kernel). When nothing says, ask the kernel: a stats request as the
//!   newest stable client, then the newest table whose ids match the
//!   reply (or the release the kernel names when it rejects the request),
//!   and say so on stderr.
//! - `--client-version V`: label with V; when the kernel's release is
//!   known and V's labels would differ, warn with the counters that would
//!   be mislabeled. `--strict` turns that warning into an error
//!   ([`EXIT_MISMATCH`]) and prints no counters.

use std::io::Write;

use jool_sim::versions::Profile;

use super::{connect::Link, exit, options::Globals, valid_iname};
use crate::{
    client::{Client, ErrorKind},
    compat::{
        detect::{self, Detection, Source},
        predict::{self, UnknownEffect, Verdict},
    },
};

/// `--client-version auto`.
pub const AUTO: &str = "auto";

/// Exit status of `--strict` when the labels would be wrong.
pub const EXIT_MISMATCH: u8 = exit::EX_DATAERR;

/// Which table labels the counters.
#[derive(Clone, Copy, Debug)]
pub enum Labels {
    /// This release's (`--client-version R`, or the caller's release).
    Forced(&'static Profile),
    /// The kernel's own (`--client-version auto`, the default).
    Auto,
}

fn stable(p: &&Profile) -> bool {
    p.release != "main" && !p.release.contains("-rc")
}

/// The newest stable release: what `auto` asks the kernel with when
/// nothing tells its release.
pub fn probe_release() -> &'static Profile {
    // Invariant: the embedded fixtures include stable releases (checked by
    // the versions tests); fall back to the newest of all otherwise.
    Profile::all()
        .iter()
        .rev()
        .find(stable)
        .or(Profile::all().last())
        .expect("no version fixtures")
}

/// [`probe_release`], then the newest stable release with the other
/// joolnl header length (a 24-byte-header kernel misreads a 28-byte
/// header before it can name its version, and vice versa).
fn probe_releases() -> Vec<&'static Profile> {
    let first = probe_release();
    let other = Profile::all()
        .iter()
        .rev()
        .filter(stable)
        .find(|p| !p.is_legacy() && p.header_len() != first.header_len());
    std::iter::once(first).chain(other).collect()
}

/// The client release an invocation emulates before it asks the kernel
/// anything: the forced one, else the kernel's when it is known, else
/// [`super::DEFAULT_CLIENT`] (Debian stable's client).
pub fn emulated(labels: Labels, kernel: &Detection) -> &'static Profile {
    match (labels, kernel.profile()) {
        (Labels::Forced(p), _) | (Labels::Auto, Some(p)) => p,
        (Labels::Auto, None) => {
            Profile::get(super::DEFAULT_CLIENT).unwrap_or_else(probe_release)
        }
    }
}

/// Before a `stats display`: the release whose table labels the counters
/// (`client` is [`emulated`]'s). `Err(status)` when `--strict` refuses.
pub(super) fn settle<E: Write>(
    g: &Globals,
    labels: Labels,
    client: &'static Profile,
    kernel: Detection,
    link: &mut Link<'_>,
    err: &mut E,
) -> Result<&'static Profile, u8> {
    match (labels, kernel) {
        (Labels::Auto, Detection::Known(k, _)) => Ok(k),
        (Labels::Auto, other) => probe(g, client, &other, link, err),
        (Labels::Forced(_), Detection::Known(k, source)) => {
            check_forced(g, client, k, &source, err).map(|()| client)
        }
        (Labels::Forced(_), _) => Ok(client),
    }
}

fn check_forced<E: Write>(
    g: &Globals,
    client: &'static Profile,
    kernel: &'static Profile,
    source: &Source,
    err: &mut E,
) -> Result<(), u8> {
    let verdict = Verdict::predicted(client, kernel);
    if verdict.is_exact() {
        return Ok(());
    }
    let text = mismatch_text(g, client, kernel, source, &verdict);
    let _ = err.write_all(text.as_bytes());
    if g.strict {
        Err(EXIT_MISMATCH)
    } else {
        Ok(())
    }
}

/// The warning (or `--strict` error) for labels that differ from the
/// kernel's.
pub fn mismatch_text(
    g: &Globals,
    client: &Profile,
    kernel: &Profile,
    source: &Source,
    v: &Verdict,
) -> String {
    let prog = String::from_utf8_lossy(&g.program);
    let (c, k) = (&client.release, &kernel.release);
    let level = if g.strict { "error" } else { "warning" };
    let Verdict::Accepted { mislabels, unknown, effect, .. } = v else {
        let why =
            predict::acceptance(client, kernel).err().unwrap_or_default();
        return format!("{prog}: {level}: the kernel module is Jool {k} ({source}), which rejects {c} clients: {why}\n");
    };
    let mut s = format!(
        "{prog}: {level}: the kernel module is Jool {k} ({source}), but --client-version {c} labels its counters with {c}'s table:\n"
    );
    for m in mislabels {
        s.push_str(&format!(
            "  id {}: shown as {}; the kernel means {}\n",
            m.id, m.printed, m.meant
        ));
    }
    for r in unknown {
        let then = match effect {
            Some(UnknownEffect::FailsAt(id)) => {
                format!("the display fails at id {id}")
            }
            _ => "shown as ????".to_owned(),
        };
        s.push_str(&format!("  {r}: unknown to {c}; {then}\n"));
    }
    if g.strict {
        s.push_str(&format!("{prog}: --strict: no counters shown; --client-version auto labels with the kernel's own table.\n"));
    } else {
        s.push_str(&format!("{prog}: --client-version auto (the default) labels with the kernel's own table.\n"));
    }
    s
}

/// The newest release (not `main`) whose ids are those of `counters`, of
/// `asked`'s major.minor and header: the kernel that answered `asked`
/// would answer its client too.
pub fn pick_for_reply(
    asked: &Profile,
    counters: &[(u16, u64)],
) -> Option<&'static Profile> {
    let (first, last) = (counters.first()?.0, counters.last()?.0);
    Profile::all().iter().rev().filter(|p| p.release != "main").find(|p| {
        p.first_id() == first
            && p.max_id == last
            && p.wire_version >> 16 == asked.wire_version >> 16
            && p.header_len() == asked.header_len()
    })
}

/// What one probe learned.
enum Probed {
    /// The kernel's counters.
    Reply(Vec<(u16, u64)>),
    /// The kernel named its release in a version mismatch error.
    Named(&'static Profile),
    /// Nothing.
    Failed,
}

fn probe_as(
    g: &Globals,
    asked: &'static Profile,
    link: &mut Link<'_>,
) -> Probed {
    // The real client sends nothing with a bad name: neither does a probe.
    let Some(iname) = valid_iname(g.iname.as_deref()) else {
        return Probed::Failed;
    };
    let Ok(t) = link.open() else { return Probed::Failed };
    let mut client = Client::new(t, asked, g.xlator);
    let e = match client.stats(iname) {
        Ok(counters) => return Probed::Reply(counters),
        Err(e) => e,
    };
    let ErrorKind::Kernel { msg, .. } = e.kind() else {
        return Probed::Failed;
    };
    match detect::from_version_mismatch(msg) {
        Some(Detection::Known(k, _)) => Probed::Named(k),
        _ => Probed::Failed,
    }
}

/// `auto` without a known kernel release: ask the kernel.
fn probe<E: Write>(
    g: &Globals,
    fallback: &'static Profile,
    found: &Detection,
    link: &mut Link<'_>,
    err: &mut E,
) -> Result<&'static Profile, u8> {
    let prog = String::from_utf8_lossy(&g.program);
    let why = match found {
        Detection::Unrecognized(v, source) => {
            format!("{source} says {v}, a release no fixture describes")
        }
        _ => format!(
            "no {}, no {} daemon to ask, no {}/jool*/version",
            detect::ENV_KERNEL_VERSION,
            detect::ENV_SOCKET,
            detect::SYS_MODULE
        ),
    };
    let mut reply = None;
    for asked in probe_releases() {
        match probe_as(g, asked, link) {
            Probed::Reply(counters) => {
                reply = Some((asked, counters));
                break;
            }
            Probed::Named(k) => {
                let _ = writeln!(
                    err,
                    "{prog}: cannot tell the kernel module's release ({why}); it rejected a {} client and says it is {}, so labelling as {}.",
                    asked.release,
                    k.version_quad(),
                    k.release
                );
                return Ok(k);
            }
            Probed::Failed => {}
        }
    }
    // Failures to connect or query show up again, as the client of
    // `asked` reports them, when the display runs.
    let Some((asked, counters)) = reply else { return Ok(fallback) };
    let (first, last) = (
        counters.first().map_or(0, |c| c.0),
        counters.last().map_or(0, |c| c.0),
    );
    match pick_for_reply(asked, &counters) {
        Some(p) => {
            let _ = writeln!(
                err,
                "{prog}: cannot tell the kernel module's release ({why}); labelling with {}'s table, the newest whose ids {first}..{last} match the kernel's reply.",
                p.release
            );
            Ok(p)
        }
        None => {
            let level = if g.strict { "error" } else { "warning" };
            let _ = writeln!(
                err,
                "{prog}: {level}: cannot tell the kernel module's release ({why}), and no release's table has ids {first}..{last}; labelling with {}'s.",
                asked.release
            );
            if g.strict {
                Err(EXIT_MISMATCH)
            } else {
                Ok(asked)
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use jool_sim::{identity::Identity, kernel::Caller, setup::Setup};

    fn globals(strict: bool) -> Globals {
        Globals { strict, ..Globals::new(b"jool") }
    }

    fn p(r: &str) -> &'static Profile {
        Profile::get(r).unwrap()
    }

    /// A `--sim` kernel of `release` with its default instances.
    fn link(release: &str) -> Link<'static> {
        let me = Identity::current().unwrap();
        let k = Setup::new(p(release), me.netns).build().unwrap();
        let caller = Caller {
            netns: me.netns,
            net_admin: me.net_admin(),
            port_id: 7,
            ext_ack: false,
        };
        Link::Sim(Box::new(k), caller)
    }

    fn settle_with(
        g: &Globals,
        client: &'static Profile,
        forced: bool,
        kernel: Detection,
        link: &mut Link<'_>,
        err: &mut Vec<u8>,
    ) -> Result<&'static Profile, u8> {
        let labels =
            if forced { Labels::Forced(client) } else { Labels::Auto };
        settle(g, labels, client, kernel, link, err)
    }

    #[test]
    fn test_probe_release_is_the_newest_stable() {
        assert_eq!(probe_release().release, "4.1.15");
    }

    #[test]
    fn test_emulated_release() {
        let known = Detection::Known(p("4.1.12"), Source::Sim);
        assert_eq!(emulated(Labels::Auto, &known).release, "4.1.12");
        assert_eq!(
            emulated(Labels::Auto, &Detection::Absent).release,
            super::super::DEFAULT_CLIENT
        );
        assert_eq!(
            emulated(Labels::Forced(p("4.1.13")), &known).release,
            "4.1.13"
        );
    }

    #[test]
    fn test_forced_mismatch_warns_or_fails() {
        let (c, k) =
            (Profile::get("4.1.9").unwrap(), Profile::get("4.1.12").unwrap());
        let mut err = Vec::new();
        let g = globals(false);
        let mut l = link("4.1.12");
        assert_eq!(
            settle_with(
                &g,
                c,
                true,
                Detection::Known(k, Source::Sim),
                &mut l,
                &mut err
            )
            .unwrap()
            .release,
            "4.1.9"
        );
        let text = String::from_utf8(err).unwrap();
        assert_eq!(text, "\
jool: warning: the kernel module is Jool 4.1.12 (--sim), but --client-version 4.1.9 labels its counters with 4.1.9's table:
  id 69: shown as JSTAT_UNKNOWN; the kernel means JSTAT_JOOLD_EMPTY
  ids 70..84: unknown to 4.1.9; the display fails at id 70
jool: --client-version auto (the default) labels with the kernel's own table.
");
        let g = globals(true);
        let mut err = Vec::new();
        assert_eq!(
            settle_with(
                &g,
                c,
                true,
                Detection::Known(k, Source::Sim),
                &mut l,
                &mut err
            )
            .err(),
            Some(EXIT_MISMATCH)
        );
        assert!(String::from_utf8(err)
            .unwrap()
            .starts_with("jool: error: the kernel module is Jool 4.1.12"));
    }

    #[test]
    fn test_forced_same_table_is_silent() {
        let (c, k) =
            (Profile::get("4.1.9").unwrap(), Profile::get("4.1.11").unwrap());
        let g = globals(true);
        let mut err = Vec::new();
        assert!(settle_with(
            &g,
            c,
            true,
            Detection::Known(k, Source::Sim),
            &mut link("4.1.11"),
            &mut err
        )
        .is_ok());
        assert!(err.is_empty());
    }

    #[test]
    fn test_rejecting_kernel() {
        let (c, k) =
            (Profile::get("4.1.9").unwrap(), Profile::get("4.1.4").unwrap());
        let g = globals(false);
        let v = Verdict::predicted(c, k);
        let text = mismatch_text(&g, c, k, &Source::Env, &v);
        assert!(text.starts_with("jool: warning: the kernel module is Jool 4.1.4 (JOOL_SIM_KERNEL_VERSION), which rejects 4.1.9 clients: "), "{text}");
    }

    #[test]
    fn test_auto_unknown_kernel_picks_from_the_reply() {
        // A 4.1.4 kernel misreads the 4.1.15 probe; the 4.1.4 one gets in
        // (as root: 4.0.8 – 4.1.4 want CAP_NET_ADMIN for stats).
        let root = Identity::current().unwrap().net_admin();
        let privileged: &[(&str, &str)] =
            if root { &[("4.1.4", "4.1.4")] } else { &[] };
        let cases = [
            ("4.1.12", "4.1.12"),
            ("4.1.10", "4.1.11"),
            ("main", "4.1.15"),
            ("4.2.0-rc3", "4.2.0-rc3"),
        ];
        for &(kernel, want) in cases.iter().chain(privileged) {
            let g = globals(false);
            let mut err = Vec::new();
            let p = settle_with(
                &g,
                probe_release(),
                false,
                Detection::Absent,
                &mut link(kernel),
                &mut err,
            )
            .unwrap();
            assert_eq!(p.release, want, "kernel {kernel}");
            let text = String::from_utf8(err).unwrap();
            assert!(
                text.contains(&format!("labelling with {want}'s table")),
                "{text}"
            );
        }
    }

    #[test]
    fn test_auto_unknown_kernel_that_rejects_names_itself() {
        // 4.0.8 – 4.1.4 want CAP_NET_ADMIN before they check versions.
        let root = Identity::current().unwrap().net_admin();
        let privileged: &[&str] = if root { &["4.0.9"] } else { &[] };
        for kernel in
            ["4.1.8", "4.2.0-rc2", "4.2.0-rc1"].iter().chain(privileged)
        {
            let g = globals(false);
            let mut err = Vec::new();
            let p = settle_with(
                &g,
                probe_release(),
                false,
                Detection::Absent,
                &mut link(kernel),
                &mut err,
            )
            .unwrap();
            assert_eq!(p.release, *kernel);
            assert!(String::from_utf8(err)
                .unwrap()
                .contains(&format!("labelling as {kernel}.")));
        }
    }

    #[test]
    fn test_pick_for_reply() {
        let asked = probe_release();
        let ids = |n: u16| (1..=n).map(|i| (i, 0)).collect::<Vec<_>>();
        assert_eq!(pick_for_reply(asked, &ids(84)).unwrap().release, "4.1.12");
        assert_eq!(
            pick_for_reply(asked, &ids(92)).unwrap().release,
            "4.2.0-rc3"
        );
        assert!(pick_for_reply(asked, &ids(95)).is_none());
        assert!(pick_for_reply(asked, &[]).is_none());
    }
}
