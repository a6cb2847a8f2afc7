//! The guest side of `versions real` (`versions real-guest`): traffic,
//! frozen counters, and every client's `stats display`.

use std::{collections::BTreeMap, time::Duration};

use super::{
    super::{bail, Context, Error, Result},
    Capture, GuestOptions, Kind, Record, FLAG_SETS, INSTANCES,
};
use crate::{host, suite::recipes, vm};

const TIMEOUT: Duration = Duration::from_secs(30);

fn sh_ok(script: &str) -> Result<()> {
    let o = host::run(&["sh".into(), "-c".into(), script.into()], TIMEOUT)
        .map_err(Error::Command)?;
    if o.status != 0 {
        bail!("`{script}` failed ({}): {}{}", o.status, o.stdout, o.stderr);
    }
    Ok(())
}

fn run_in(netns: &str, argv: Vec<String>) -> Result<(i32, String, String)> {
    let mut full: Vec<String> =
        ["ip", "netns", "exec", netns].map(str::to_owned).to_vec();
    full.extend(argv);
    let o = host::run(&full, TIMEOUT).map_err(Error::Command)?;
    Ok((o.status, o.stdout, o.stderr))
}

/// Runs `jool-harness versions real-guest` (inside the guest, as root).
pub fn guest(args: &GuestOptions) -> Result<()> {
    if !host::is_root() {
        bail!("versions real-guest needs root (namespaces, modprobe)");
    }
    sh_ok("modprobe jool_siit && modprobe jool")?;
    let loaded = host::installed_release()
        .context("cannot read the loaded Jool's version")?;
    // The release the module is (4.2.0-rc3 says 4.1.255, main today
    // 4.1.15: `host::module_is` compares wire versions).
    let module = match &args.release {
        Some(r) if host::module_is(r) => r.clone(),
        Some(r) => {
            bail!("--release {r} asked, but this kernel runs Jool {loaded}")
        }
        None => loaded,
    };
    // Executables on 9p are read again at every exec: copy them.
    let tmp = host::TempDir::new("jool-harness-cross")?;
    let root = tmp.path().join("clients");
    sh_ok(&format!(
        "cp -a '{}' '{}'",
        args.clients.display(),
        root.display()
    ))?;
    let mut bundles: Vec<String> = std::fs::read_dir(&root)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    bundles.sort_by(|a, b| jool_sim::versions::cmp_releases(a, b));
    // jool-stats under the programs' names.
    let js = vm::jool_stats_binary()?;
    let js_dir = tmp.path().join("jool-stats");
    std::fs::create_dir_all(&js_dir)?;
    for (_, _, p) in INSTANCES {
        std::os::unix::fs::symlink(&js, js_dir.join(p))?;
    }

    let mut recipe = Vec::new();
    for t in ["siit", "nat64"] {
        let topo = recipes::topology(t).context("topology")?;
        for s in topo.setup {
            sh_ok(s)?;
            recipe.push((*s).to_owned());
        }
    }
    for t in recipes::all_traffic() {
        // Unanswered pings are the point of some recipes.
        let _ =
            host::run(&["sh".into(), "-c".into(), t.script.into()], TIMEOUT);
        recipe.push(t.script.to_owned());
    }
    // Freeze the counters: no interface but lo is left in the
    // translators' namespaces.
    let freeze = "ip -n siit link del s6a && ip -n siit link del s4a && ip -n nat link del n6a && ip -n nat link del n4a";
    sh_ok(freeze)?;
    recipe.push(freeze.to_owned());
    std::thread::sleep(Duration::from_millis(300));

    let counters = |who: &str| -> Result<BTreeMap<String, String>> {
        let mut m = BTreeMap::new();
        for (x, ns, p) in INSTANCES {
            let (st, out, err) = run_in(
                ns,
                vec![
                    (*p).to_owned(),
                    "stats".into(),
                    "display".into(),
                    "--all".into(),
                    "--csv".into(),
                ],
            )?;
            if st != 0 {
                bail!("{who}: {p} stats display --all --csv failed ({st}): {err}");
            }
            m.insert((*x).to_owned(), out);
        }
        Ok(m)
    };
    let before = counters("before")?;

    let mut runs = Vec::new();
    let mut record = |kind: Kind,
                      release: &str,
                      program: &str,
                      ns: &str,
                      flags: &[&str],
                      argv: Vec<String>|
     -> Result<()> {
        let mut argv = argv;
        argv.extend(["stats".to_owned(), "display".to_owned()]);
        argv.extend(flags.iter().map(|f| (*f).to_owned()));
        let (status, stdout, stderr) = run_in(ns, argv)?;
        runs.push(Record {
            kind,
            release: release.to_owned(),
            program: program.to_owned(),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            status,
            stdout,
            stderr,
        });
        Ok(())
    };
    for (_, ns, p) in INSTANCES {
        for flags in FLAG_SETS {
            for b in &bundles {
                let dir = root.join(b);
                let ld = dir.join("lib/ld-linux-x86-64.so.2");
                record(
                    Kind::Real,
                    b,
                    p,
                    ns,
                    flags,
                    vec![
                        ld.display().to_string(),
                        "--library-path".into(),
                        dir.join("lib").display().to_string(),
                        "--argv0".into(),
                        (*p).to_owned(),
                        dir.join("bin").join(p).display().to_string(),
                    ],
                )?;
                record(
                    Kind::JoolStats,
                    b,
                    p,
                    ns,
                    flags,
                    vec![
                        js_dir.join(p).display().to_string(),
                        "--client-version".into(),
                        b.clone(),
                    ],
                )?;
            }
            record(
                Kind::Native,
                &module,
                p,
                ns,
                flags,
                vec![(*p).to_owned()],
            )?;
            record(
                Kind::JoolStats,
                "auto",
                p,
                ns,
                flags,
                vec![js_dir.join(p).display().to_string()],
            )?;
        }
    }
    let after = counters("after")?;
    let uname = host::run(&["uname".into(), "-r".into()], TIMEOUT)
        .map(|o| o.stdout.trim().to_owned())
        .unwrap_or_default();
    let c = Capture {
        module,
        kernel: uname,
        recipe,
        image: Vec::new(),
        counters: before,
        counters_after: after,
        runs,
    };
    let _ = sh_ok("for n in siit s6 s4 nat n6 n4; do ip netns del $n; done");
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("cross.json"), serde_json::to_string(&c)?)?;
    eprintln!("versions real-guest: {} runs written", c.runs.len());
    Ok(())
}
