//! The host side of `versions real`: the clients' bundles, one guest per
//! module, the captures written and checked.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use jool_sim::versions::Profile;

use super::{
    super::{bail, Context, Result},
    check, load, summary, Capture, Finding, RealOptions, BUNDLE_LIBS,
    DEBIAN_RELEASES,
};
use crate::{host, vm};

/// The folder of the real client of `release`: `bin/` and `lib/` taken
/// from its guest image with debugfs (cached beside the image).
pub fn client_bundle(release: &str, config: &vm::Config) -> Result<PathBuf> {
    let config = vm::Config { image: None, ..config.clone() };
    // Debian's packages where there are some; any other release's clients
    // from a cell built from its tag (`overlay/usr/bin`, the libraries
    // from the cell's base) on bookworm or trixie, whose glibc is one
    // file per library (bullseye's are links to libc-2.31.so and so on).
    let cell = (!DEBIAN_RELEASES.contains(&release))
        .then(|| {
            vm::cell::git_cells(release, &["bookworm", "trixie"])
                .into_iter()
                .next()
        })
        .flatten();
    let image = match &cell {
        Some(c) => c.clone(),
        None => vm::image_for(release, &config)?,
    };
    let key = image
        .file_name()
        .context("image folder without a name")?
        .to_string_lossy()
        .into_owned();
    let dir = image
        .parent()
        .and_then(Path::parent)
        .context("image folder without a cache folder")?
        .join("clients")
        .join(&key);
    if dir.join("complete").is_file() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin"))?;
    std::fs::create_dir_all(dir.join("lib"))?;
    let rootfs = image.join("rootfs.img");
    let debugfs = |req: &str| -> Result<String> {
        let o = Command::new("debugfs")
            .args(["-R", req])
            .arg(&rootfs)
            .output()
            .context("Failed to run debugfs (apt-get install e2fsprogs)")?;
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let dump = |from: &str, to: &Path| -> Result<()> {
        debugfs(&format!("dump {from} {}", to.display()))?;
        let len = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            bail!("{from} is not in {}", rootfs.display());
        }
        Command::new("chmod").arg("755").arg(to).status()?;
        Ok(())
    };
    for p in ["jool", "jool_siit"] {
        let to = dir.join("bin").join(p);
        match &cell {
            Some(c) => {
                std::fs::copy(c.join("overlay/usr/bin").join(p), &to)
                    .with_context(|| format!("{p} of {}", c.display()))?;
            }
            None => dump(&format!("/usr/bin/{p}"), &to)?,
        }
    }
    let libdir = "/usr/lib/x86_64-linux-gnu";
    let listing = debugfs(&format!("ls -l {libdir}"))?;
    for so in BUNDLE_LIBS {
        // A regular file named SONAME, or SONAME.x.y.z (SONAME a symlink).
        let file = listing
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let (mode, name) = (w.get(1)?, w.last()?);
                mode.starts_with("100").then_some(*name)
            })
            .find(|n| *n == *so || n.starts_with(&format!("{so}.")))
            .with_context(|| {
                format!("{so} is not in {libdir} of {}", rootfs.display())
            })?;
        dump(&format!("{libdir}/{file}"), &dir.join("lib").join(so))?;
    }
    std::fs::write(dir.join("complete"), format!("{release}\n"))?;
    Ok(dir)
}

/// What `versions real` found: every check, and a summary per module.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every check, in order.
    pub findings: Vec<Finding>,
    /// The per-module summaries, as text.
    pub summary: String,
}

/// Runs `jool-harness versions real`: captures each module (unless
/// `check_only`), writes `<module>.json` into `out`, and checks them.
pub fn run(opts: &RealOptions) -> Result<Outcome> {
    for r in opts.modules.iter().chain(&opts.clients) {
        if Profile::get(r).is_none() {
            bail!(
                "unknown release '{r}'; known releases: {}",
                Profile::names().join(" ")
            );
        }
    }
    let mut out = Outcome::default();
    for module in &opts.modules {
        let path = opts.out.join(format!("{module}.json"));
        if !opts.check_only {
            let c = capture(module, opts)?;
            std::fs::create_dir_all(&opts.out)?;
            std::fs::write(&path, serde_json::to_string_pretty(&c)? + "\n")?;
            eprintln!("versions real: wrote {}", path.display());
        }
        let c = load(&path)?;
        let f = check(&c)?;
        out.summary.push_str(&summary(&c, &f));
        out.findings.extend(f);
    }
    Ok(out)
}

fn capture(module: &str, args: &RealOptions) -> Result<Capture> {
    let share = host::TempDir::new("jool-harness-share")?;
    for c in &args.clients {
        let b = client_bundle(c, &args.vm)?;
        let st = Command::new("cp")
            .arg("-a")
            .arg(&b)
            .arg(share.path().join(c))
            .status()?;
        if !st.success() {
            bail!("Failed to copy {}", b.display());
        }
    }
    let guest = vm::Guest {
        args: [
            "versions",
            "real-guest",
            "--clients",
            "/h/bin/clients",
            "--out",
            "/h/out",
            "--release",
            module,
        ]
        .map(str::to_owned)
        .to_vec(),
        fixtures: None,
        extra_bin: vec![("clients".into(), share.path().to_owned())],
        script: None,
    };
    let guest = vm::boot_guest(module, &args.vm, &guest)?;
    let file = guest.out().join("cross.json");
    let text = match (guest.failure(), std::fs::read_to_string(&file)) {
        (None, Ok(t)) => t,
        (why, _) => {
            let kept = guest.keep_console(None);
            bail!(
                "the guest of {module} wrote no cross.json ({}); console in {}",
                why.unwrap_or("see guest.log above"),
                kept.display()
            );
        }
    };
    for (k, v) in guest.timings() {
        eprintln!("versions real: {module}: {k}: {v:.1} s");
    }
    let mut c: Capture =
        serde_json::from_str(&text).context("cross.json from the guest")?;
    if c.module != module {
        bail!("the {module} guest runs Jool {}", c.module);
    }
    let manifest = std::fs::read_to_string(guest.image().join("manifest"))
        .unwrap_or_default();
    c.image = manifest
        .lines()
        .filter(|l| {
            !l.starts_with("built=") && !l.starts_with("build_seconds=")
        })
        .map(str::to_owned)
        .collect();
    Ok(c)
}
