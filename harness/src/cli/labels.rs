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

use super::{transport, Globals, DEFAULT_CLIENT};
use crate::{
    client::{Client, ErrorKind},
    compat::{
        detect::{self, Detection, Source},
        predict::{self, UnknownEffect, Verdict},
    },
};

/// `--client-version auto`.
pub const AUTO: &str = "auto";

/// Exit status of `--strict` when the labels would be wrong (sysexits'
/// `EX_DATAERR`).
pub const EXIT_MISMATCH: u8 = 65;

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

/// The kernel side's release, as far as this invocation can tell.
pub(super) fn kernel_of(g: &Globals) -> Detection {
    let Some(sim) = &g.sim else { return detect::kernel_release() };
    let forced =
        (g.client_version != AUTO).then_some(g.client_version.as_str());
    let name =
        sim.kernel_version.as_deref().or(forced).unwrap_or(DEFAULT_CLIENT);
    Profile::get(name)
        .map_or(Detection::Absent, |p| Detection::Known(p, Source::Sim))
}

/// The release an invocation starts as: the forced one, or for `auto` the
/// kernel's (else [`probe_release`]). `None` for an unknown release name.
pub(super) fn initial(g: &Globals) -> Option<&'static Profile> {
    if g.client_version != AUTO {
        return Profile::get(&g.client_version);
    }
    Some(kernel_of(g).profile().unwrap_or_else(probe_release))
}

/// What `-V` prints for `--client-version` `name`.
pub(super) fn version_quad(name: &str) -> Option<String> {
    let p = match name {
        AUTO => {
            detect::kernel_release().profile().unwrap_or_else(probe_release)
        }
        _ => Profile::get(name)?,
    };
    Some(p.version_quad())
}

/// Before a `stats display`: the release whose table labels the counters.
/// `Err(status)` when `--strict` refuses.
pub(super) fn settle<E: Write>(
    g: &Globals,
    profile: &'static Profile,
    err: &mut E,
) -> Result<&'static Profile, u8> {
    settle_with(g, profile, kernel_of(g), err)
}

/// [`settle`] with the kernel's release already looked up.
pub(super) fn settle_with<E: Write>(
    g: &Globals,
    profile: &'static Profile,
    kernel: Detection,
    err: &mut E,
) -> Result<&'static Profile, u8> {
    match (g.client_version == AUTO, kernel) {
        (true, Detection::Known(k, _)) => Ok(k),
        (true, other) => probe(g, &other, err),
        (false, Detection::Known(k, source)) => {
            check_forced(g, profile, k, &source, err).map(|()| profile)
        }
        (false, _) => Ok(profile),
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
    let (prog, c, k) = (&g.program, &client.release, &kernel.release);
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

fn probe_as(g: &Globals, asked: &'static Profile) -> Probed {
    let Ok(t) = transport(g, asked) else { return Probed::Failed };
    let mut client = Client::new(t, asked, g.xlator);
    let e = match client.stats(g.iname.as_deref()) {
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
    found: &Detection,
    err: &mut E,
) -> Result<&'static Profile, u8> {
    let prog = &g.program;
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
        match probe_as(g, asked) {
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
    let Some((asked, counters)) = reply else { return Ok(probe_release()) };
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
    use crate::cli::SimOpts;

    fn globals(client: &str, kernel: Option<&str>, strict: bool) -> Globals {
        let sim = SimOpts {
            kernel_version: kernel.map(str::to_owned),
            ..SimOpts::default()
        };
        Globals {
            program: "jool".into(),
            xlator: jool_sim::kernel::Xlator::Nat64,
            iname: None,
            client_version: client.into(),
            format: super::super::Format::Text,
            sim: Some(sim),
            strict,
        }
    }

    #[test]
    fn test_probe_release_is_the_newest_stable() {
        assert_eq!(probe_release().release, "4.1.15");
    }

    #[test]
    fn test_auto_follows_the_sim_kernel() {
        let g = globals(AUTO, Some("4.1.12"), false);
        assert_eq!(initial(&g).unwrap().release, "4.1.12");
        let g = globals(AUTO, None, false);
        assert_eq!(initial(&g).unwrap().release, DEFAULT_CLIENT);
        let g = globals("4.1.13", None, false);
        assert_eq!(kernel_of(&g).profile().unwrap().release, "4.1.13");
    }

    #[test]
    fn test_forced_mismatch_warns_or_fails() {
        let (c, k) =
            (Profile::get("4.1.9").unwrap(), Profile::get("4.1.12").unwrap());
        let mut err = Vec::new();
        let g = globals("4.1.9", Some("4.1.12"), false);
        assert_eq!(
            settle_with(&g, c, Detection::Known(k, Source::Sim), &mut err)
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
        let g = globals("4.1.9", Some("4.1.12"), true);
        let mut err = Vec::new();
        assert_eq!(
            settle_with(&g, c, Detection::Known(k, Source::Sim), &mut err)
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
        let g = globals("4.1.9", Some("4.1.11"), true);
        let mut err = Vec::new();
        assert!(settle_with(
            &g,
            c,
            Detection::Known(k, Source::Sim),
            &mut err
        )
        .is_ok());
        assert!(err.is_empty());
    }

    #[test]
    fn test_rejecting_kernel() {
        let (c, k) =
            (Profile::get("4.1.9").unwrap(), Profile::get("4.1.4").unwrap());
        let g = globals("4.1.9", Some("4.1.4"), false);
        let v = Verdict::predicted(c, k);
        let text = mismatch_text(&g, c, k, &Source::Env, &v);
        assert!(text.starts_with("jool: warning: the kernel module is Jool 4.1.4 (JOOL_SIM_KERNEL_VERSION), which rejects 4.1.9 clients: "), "{text}");
    }

    #[test]
    fn test_auto_unknown_kernel_picks_from_the_reply() {
        // A 4.1.4 kernel misreads the 4.1.15 probe; the 4.1.4 one gets in
        // (as root: 4.0.8 – 4.1.4 want CAP_NET_ADMIN for stats).
        let root =
            jool_sim::identity::Identity::current().unwrap().net_admin();
        let privileged: &[(&str, &str)] =
            if root { &[("4.1.4", "4.1.4")] } else { &[] };
        let cases = [
            ("4.1.12", "4.1.12"),
            ("4.1.10", "4.1.11"),
            ("main", "4.1.15"),
            ("4.2.0-rc3", "4.2.0-rc3"),
        ];
        for &(kernel, want) in cases.iter().chain(privileged) {
            let g = globals(AUTO, Some(kernel), false);
            let mut err = Vec::new();
            let p =
                settle_with(&g, probe_release(), Detection::Absent, &mut err)
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
        let root =
            jool_sim::identity::Identity::current().unwrap().net_admin();
        let privileged: &[&str] = if root { &["4.0.9"] } else { &[] };
        for kernel in
            ["4.1.8", "4.2.0-rc2", "4.2.0-rc1"].iter().chain(privileged)
        {
            let g = globals(AUTO, Some(kernel), false);
            let mut err = Vec::new();
            let p =
                settle_with(&g, probe_release(), Detection::Absent, &mut err)
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
