//! The probe's runs on a machine with the real module, as the corpus
//! `fixtures/conformance-4.1.9` was made (its `capture.sh`): before any
//! `modprobe` (`premodprobe`), with `jool_siit` only (`siitonly`), then
//! with both modules and both `default` instances as root (`root`), as
//! uid 65534 without capabilities (`unpriv`), as root of a new user
//! namespace (`userns`) and as root of a new, empty network namespace
//! with the two removal requests (`emptyns`). The unprivileged and
//! namespaced runs are this program again, under `setpriv` and `unshare`.
//! [`simulate`] replays each run on the simulator set up the same way.

use std::{path::Path, time::Duration};

use jool_sim::{
    kernel::{Build, Caller, Framework, Kernel, Xlator, INIT_NETNS},
    versions::Profile,
};

use super::{replay, run, Doc, Mismatch, Request};
use crate::{client::Client, host, matrix::Error, transport::InProcess};

/// The runs, in order: name, and how this program is started for it.
pub const RUNS: [(&str, &[&str]); 6] = [
    ("premodprobe", &[]),
    ("siitonly", &[]),
    ("root", &[]),
    (
        "unpriv",
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ],
    ),
    ("userns", &["unshare", "-Ur"]),
    ("emptyns", &["unshare", "-n"]),
];

const TIMEOUT: Duration = Duration::from_secs(120);

/// The requests of the two small runs, as in the corpus.
fn only(run: &str, r: &Request) -> bool {
    match run {
        "premodprobe" => {
            r.name.starts_with("ctrl_getfamily_")
                && r.name != "ctrl_getfamily_nosuchfamily"
                || r.name == "stats_siit"
        }
        "siitonly" => matches!(
            r.name.as_str(),
            "stats_siit"
                | "stats_nat64"
                | "instance_foreach_siit"
                | "instance_foreach_nat64"
        ),
        _ => true,
    }
}

/// One run in this process (`run` names it; `emptyns` adds group z).
pub fn probe(p: &Profile, run_name: &str) -> Doc {
    let fam = super::resolve(p);
    let names: Vec<String> =
        super::requests::requests(p, fam, run_name == "emptyns")
            .iter()
            .filter(|r| only(run_name, r))
            .map(|r| r.name.clone())
            .collect();
    let mut doc = run(p, run_name, run_name == "emptyns", &names);
    doc.run = Some(run_name.to_owned());
    doc
}

/// Every run, on this machine (root, Jool installed, modules not loaded
/// yet), into `out/<run>.json`; `exe` is this program (re-executed for
/// the runs under another identity).
pub fn all_runs(p: &Profile, exe: &Path, out: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(out)?;
    let sh = |s: &str| host::sh(s, TIMEOUT).map(drop).map_err(Error::Command);
    for (name, wrapper) in RUNS {
        match name {
            "siitonly" => sh("modprobe jool_siit")?,
            "root" => {
                sh("modprobe jool")?;
                for prog in ["jool_siit", "jool"] {
                    // Both default instances, as the corpus had them; a
                    // release whose client cannot is probed without.
                    let add = format!(
                        "{prog} instance add --netfilter --pool6 64:ff9b::/96"
                    );
                    if let Err(e) = sh(&add) {
                        eprintln!("probe: {e}");
                    }
                }
            }
            _ => {}
        }
        let file = out.join(format!("{name}.json"));
        let doc = if wrapper.is_empty() {
            probe(p, name)
        } else {
            let mut argv: Vec<String> =
                wrapper.iter().map(|w| (*w).to_owned()).collect();
            argv.push(exe.display().to_string());
            argv.extend(
                [
                    "matrix",
                    "probe-run",
                    "--release",
                    &p.release,
                    "--run",
                    name,
                ]
                .map(str::to_owned),
            );
            // The run prints its JSON: an unprivileged run cannot write
            // into root's folder.
            argv.extend(["--out".into(), "-".into()]);
            let o = host::run(&argv, TIMEOUT).map_err(Error::Command)?;
            if o.status != 0 {
                return Err(Error::Failed(format!(
                    "probe {name}: {}{}",
                    o.stdout, o.stderr
                )));
            }
            std::fs::write(&file, o.stdout)?;
            continue;
        };
        std::fs::write(&file, serde_json::to_string_pretty(&doc)? + "\n")?;
    }
    Ok(())
}

/// The simulated kernel a run met: the release with `build`, the modules
/// and instances present at that point, Jool's family id as resolved.
pub fn kernel_for(p: &'static Profile, build: Build, doc: &Doc) -> Kernel {
    let run = doc.run.as_deref().unwrap_or("root");
    let mut k = Kernel::new(p);
    k.set_build(build);
    if let Some(id) = doc.jool_family_id {
        k.set_family_id(id);
    }
    match run {
        "premodprobe" => k.set_modules(false, false),
        "siitonly" => k.set_modules(true, false),
        _ => {
            // As `all_runs` did before the root run: `jool_siit`, then
            // `jool instance add --netfilter --pool6 64:ff9b::/96`, with
            // the release's client, whatever the kernel answers (4.0.8
            // refuses every pool6 with an address, Jool #326).
            let mut pool6 = [0u8; 16];
            pool6[..4].copy_from_slice(&[0x00, 0x64, 0xff, 0x9b]);
            for x in [Xlator::Siit, Xlator::Nat64] {
                let t = InProcess::new(&mut k, Caller::root(INIT_NETNS));
                let mut client = Client::new(t, p, x);
                let added = client.instance_add(
                    None,
                    Framework::Netfilter,
                    Some((pool6, 96)),
                );
                drop(added);
            }
        }
    }
    k
}

/// The namespace tag (`JNLAIE_NS`, the low bits of a kernel pointer) in
/// the first instance listing a run recorded (4.0.0 – 4.0.7: the low half
/// of the first entry's `ns` pointer).
fn netns_tag(doc: &Doc, p: &Profile) -> Option<u32> {
    use jool_sim::wire::{
        family::{InstanceEntryAttr, ListAttr},
        genl,
        legacy::{ResponseHdr, ATTR_DATA},
        nla::NlasIterator,
        nlmsg::Messages,
    };
    let listing =
        doc.requests.iter().filter(|r| r.name.starts_with("instance_foreach"));
    listing.flat_map(|r| r.replies()).find_map(|d| {
        let m = Messages::new(&d).next()?;
        let attrs = m.payload().get(genl::HEADER_LEN + p.header_len()..)?;
        if p.is_legacy() {
            let data = NlasIterator::new(attrs).next()?.ok()?;
            let r = ResponseHdr::new_checked(data.value()).ok()?;
            if data.kind() != ATTR_DATA || r.error_code() != 0 {
                return None;
            }
            let ns = r.payload().get(..4)?;
            return Some(u32::from_le_bytes(ns.try_into().ok()?));
        }
        let entry = NlasIterator::new(attrs)
            .map_while(Result::ok)
            .find(|a| a.kind() == u16::from(ListAttr::Entry))?;
        let ns = NlasIterator::new(entry.value())
            .map_while(Result::ok)
            .find(|a| a.kind() == u16::from(InstanceEntryAttr::Ns))?;
        Some(u32::from_le_bytes(ns.value().get(..4)?.try_into().ok()?))
    })
}

/// Who a run was, to the simulator.
pub fn caller_for(doc: &Doc) -> Caller {
    let run = doc.run.as_deref().unwrap_or("root");
    let netns = if run == "emptyns" { INIT_NETNS + 1 } else { INIT_NETNS };
    Caller {
        net_admin: matches!(
            run,
            "root" | "emptyns" | "premodprobe" | "siitonly"
        ),
        ..Caller::root(netns)
    }
}

/// Replays every run of `dir` (`<run>.json`) on the simulator of the
/// same release and `build`: the mismatches of each run.
pub fn simulate(
    dir: &Path,
    build: Build,
    release: Option<&str>,
) -> Result<Vec<(String, usize, Vec<Mismatch>)>, Error> {
    let mut out = Vec::new();
    let mut kernel: Option<Kernel> = None;
    for (name, _) in RUNS {
        let file = dir.join(format!("{name}.json"));
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let mut doc: Doc = serde_json::from_str(&text)?;
        doc.run.get_or_insert_with(|| name.to_owned());
        let release = match (&doc.release, release) {
            (Some(r), _) => r.clone(),
            (None, Some(r)) => r.to_owned(),
            (None, None) => {
                return Err(Error::Failed(format!(
                    "{}: no release recorded (give it)",
                    file.display()
                )))
            }
        };
        let p = super::super::release(&release)?;
        // The root, unpriv, userns and emptyns runs follow one another on
        // one kernel (the root run adds and removes instances); the two
        // small runs start from their own state.
        let k = match (name, kernel.as_mut()) {
            ("unpriv" | "userns" | "emptyns", Some(k)) => k,
            _ => kernel.insert(kernel_for(p, build, &doc)),
        };
        let caller = caller_for(&doc);
        // Assigned at registration, in the order families came: taken
        // from the capture, as the family id is (the first family's: in
        // 4.0.0 – 4.0.5 "NAT64_Jool" has its own, the next one).
        let group =
            doc.requests.iter().flat_map(|r| r.replies()).find_map(|d| {
                let f = jool_sim::wire::ctrl::Family::find(&d)?;
                let first = doc.jool_family_id.is_none_or(|id| id == f.id);
                first.then(|| f.mcast_group("joold")).flatten()
            });
        if let Some(g) = group {
            k.set_mcast_group_id(g);
        }
        // An empty namespace lists the other namespaces' instances,
        // whose tags the earlier runs gave.
        let tag = (name != "emptyns").then(|| netns_tag(&doc, p));
        if let Some(tag) = tag.flatten() {
            // A kernel pointer's bits: taken from the capture, not predicted.
            k.set_netns_tag(caller.netns, tag);
        }
        let m = replay(&doc, k, caller);
        out.push((name.to_owned(), doc.requests.len(), m));
    }
    Ok(out)
}

#[cfg(test)]
mod test {
    use super::*;

    /// The committed probe runs of real modules (fixtures/matrix/probe),
    /// replayed on the simulator of the same release and kernel build:
    /// every answer identical.
    #[test]
    fn test_real_probe_runs_match_the_simulator() {
        let dir = crate::vm::default_fixtures().join("matrix/probe");
        let trixie = Build {
            unsigned_char: true,
            xtables: true,
            ctrl_dump_strict: true,
        };
        for (release, build) in [
            ("4.1.9", Build::default()),
            ("4.1.13", trixie),
            ("4.1.15", trixie),
        ] {
            let runs = simulate(&dir.join(release), build, None).unwrap();
            assert_eq!(runs.len(), RUNS.len(), "{release}");
            for (name, n, m) in runs {
                assert!(n >= 3, "{release} {name}");
                assert_eq!(m, vec![], "{release} {name}");
            }
        }
        // The cells of the release x suite matrix: RELEASE@SUITE, built
        // from the release's tag for that suite's kernel.
        let known = std::fs::read_to_string(dir.join("divergences.txt"))
            .unwrap_or_default();
        let known: std::collections::BTreeSet<&str> = known
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        let mut cells = 0;
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((release, suite)) = name.split_once('@') else {
                continue;
            };
            let build = match suite {
                "trixie" | "sid" => trixie,
                _ => Build::default(),
            };
            let runs = simulate(&e.path(), build, Some(release)).unwrap();
            assert_eq!(runs.len(), RUNS.len(), "{name}");
            for (run, n, m) in runs {
                // (The legacy set, 4.0.0-4.0.7, asks 2 things before modprobe.)
                assert!(n >= 2, "{name} {run}");
                seen.extend(
                    m.iter().map(|d| format!("{name} {run} {}", d.name)),
                );
            }
            cells += 1;
        }
        assert!(cells >= 10, "only {cells} cells probed");
        let seen: std::collections::BTreeSet<&str> =
            seen.iter().map(String::as_str).collect();
        let new: Vec<_> = seen.difference(&known).collect();
        let fixed: Vec<_> = known.difference(&seen).collect();
        assert!(
            new.is_empty() && fixed.is_empty(),
            "probe/divergences.txt is out of date:\nnew differences {new:#?}\nno longer differ {fixed:#?}"
        );
    }

    /// The same runs on the simulator of another kernel build differ:
    /// the check can fail (trixie's 6.12 lists instances with unsigned
    /// `char` names and validates nlctrl dumps strictly).
    #[test]
    fn test_a_wrong_release_is_caught() {
        let dir = crate::vm::default_fixtures().join("matrix/probe/4.1.9");
        let tmp = host::TempDir::new("probe-wrong").unwrap();
        let text = std::fs::read_to_string(dir.join("root.json")).unwrap();
        std::fs::write(
            tmp.path().join("root.json"),
            text.replace("\"release\": \"4.1.9\"", "\"release\": \"4.1.8\""),
        )
        .unwrap();
        let runs = simulate(tmp.path(), Build::default(), None).unwrap();
        assert!(
            !runs[0].2.is_empty(),
            "a 4.1.8 simulator answered 4.1.9's requests alike"
        );
    }
}
