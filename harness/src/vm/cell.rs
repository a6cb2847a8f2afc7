//! Cells of the release x suite matrix: what `scripts/vm-image --release R
//! --suite S (--jool-repo D | --jool-src T | --debian)` builds, one Jool
//! release on one Debian suite's kernel. A cell folder has the boot files
//! (links to its suite's base, and an initramfs carrying the cell's
//! modules and clients) and a `manifest` of `key=value` lines saying what
//! was built and whether it built (`result=built`, or `module does not
//! build` / `clients do not build` with `first_error=`).
//!
//! [`boot_check`] boots a built cell and loads it: both modules, both
//! clients' `--version`, an instance of each and `stats display`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    boot_guest, check_image, uptimes, Config, Error, Guest, GuestRun, Result,
};

/// A cell's (or an older image's) `manifest`: `key=value` lines, in order;
/// a key may repeat (`package=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    lines: Vec<(String, String)>,
}

impl Manifest {
    /// Parses `key=value` lines; other lines are ignored.
    pub fn parse(text: &str) -> Self {
        let lines = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Self { lines }
    }

    /// Reads `DIR/manifest`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        Ok(Self::parse(&text))
    }

    /// The first value of `key` (`None` when absent or empty).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.lines
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether Jool built there: `result=built`, or an image from before
    /// cells (no `result=` line: only built images were kept).
    pub fn built(&self) -> bool {
        self.get("result").is_none_or(|r| r == "built")
    }
}

/// Runs `scripts/vm-image ARGS` (its progress goes to stderr): the folder
/// it printed last, and whether Jool built there (exit 0) or the cell only
/// records that it does not (exit 3).
pub fn vm_image(args: &[&str]) -> Result<(PathBuf, bool)> {
    let (status, dir) = crate::host::script_folder("vm-image", args)
        .map_err(|e| Error::io("run scripts/vm-image", e))?;
    let failed =
        |status: String| Error::ImageScript { args: args.join(" "), status };
    let built = match status.code() {
        Some(0) => true,
        Some(3) => false,
        _ => return Err(failed(status.to_string())),
    };
    let dir = dir.ok_or_else(|| failed("printed no image folder".into()))?;
    Ok((dir, built))
}

/// The image cache of `scripts/vm-image`:
/// `${XDG_CACHE_HOME:-~/.cache}/jool-harness/images`.
pub fn images_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_default()
        .join("jool-harness/images")
}

/// The built cells of `release` made from Jool's repository
/// (`jool-R_SUITE-KERNEL_git-KEY`, `result=built`) on `suites`, in that
/// order.
pub fn git_cells(release: &str, suites: &[&str]) -> Vec<PathBuf> {
    let prefix = format!("jool-{release}_");
    let rank = |p: &Path| {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        suites.iter().position(|s| name.starts_with(&format!("{prefix}{s}-")))
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(images_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&prefix)
                && name.contains("_git-")
                && rank(p).is_some()
                && Manifest::read(p).is_ok_and(|m| {
                    m.get("result") == Some("built")
                        && m.get("release") == Some(release)
                })
        })
        .collect();
    v.sort_by_key(|p| (rank(p), p.clone()));
    v
}

/// The Jool release of an image folder, from its manifest.
pub fn image_release(dir: &Path) -> Option<String> {
    Manifest::read(dir).ok()?.get("release").map(str::to_owned)
}

/// Fails unless `image` can boot: Jool built there and the three boot
/// files exist (a cell's are links to its base's, which must still exist).
pub fn check_bootable(image: &Path) -> Result<()> {
    if let Ok(m) = Manifest::read(image) {
        if !m.built() {
            let get = |k: &str| m.get(k).unwrap_or("?").to_owned();
            return Err(Error::NotBuilt {
                dir: image.to_owned(),
                release: get("release"),
                result: get("result"),
                first_error: m
                    .get("first_error")
                    .unwrap_or("(no error line)")
                    .to_owned(),
            });
        }
    }
    check_image(image)
}

/// The steps of the boot check, as the guest runs them: (name, command).
pub const CHECK_STEPS: &[(&str, &str)] = &[
    ("modprobe-siit", "modprobe jool_siit"),
    ("modprobe-nat64", "modprobe jool"),
    ("version-siit", "jool_siit --version"),
    ("version-nat64", "jool --version"),
    (
        "instance-siit",
        "jool_siit instance add --netfilter --pool6 64:ff9b::/96",
    ),
    ("instance-nat64", "jool instance add --netfilter --pool6 64:ff9b::/96"),
    ("stats-siit", "jool_siit stats display --all"),
    ("stats-nat64", "jool stats display --all"),
];

/// The guest's script: every step (each one even after a failure), its
/// output and status in `/h/out/check/NAME.out|rc`, then `dmesg`.
fn check_script() -> String {
    let mut s = String::from(
        "#!/bin/sh\n# Written by jool-harness (vm::cell::boot_check); run by the guest's PID 1.\n\
         o=/h/out/check\nmkdir -p $o\necho \"check-start $(cut -d' ' -f1 /proc/uptime)\"\n\
         uname -r > $o/uname\ncat /etc/jool-cell > $o/cell 2>&1\n",
    );
    for (name, cmd) in CHECK_STEPS {
        s.push_str(&format!(
            "timeout 30 {cmd} < /dev/null > $o/{name}.out 2>&1; echo $? > $o/{name}.rc\n"
        ));
    }
    s.push_str(
        "lsmod > $o/lsmod 2>&1\ndmesg > $o/dmesg 2>&1\n\
         echo \"check-end $(cut -d' ' -f1 /proc/uptime)\"\n",
    );
    s
}

/// One step of the boot check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Its name in [`CHECK_STEPS`].
    pub name: String,
    /// Exit status (`None`: the guest did not get there).
    pub status: Option<i32>,
    /// Its stdout and stderr (at most 2000 bytes).
    pub output: String,
}

/// What booting a cell and loading Jool did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootCheck {
    /// `loads`, or what failed first (with the kernel's message).
    pub verdict: String,
    /// The guest's kernel (`uname -r`).
    pub kernel: Option<String>,
    /// Every step.
    pub steps: Vec<Step>,
    /// Kernel messages about Jool, and any warning or oops.
    pub dmesg: Vec<String>,
    /// Host seconds from QEMU's start to the guest's init.
    pub boot_to_init: Option<f64>,
    /// Host seconds from QEMU's start to its exit.
    pub boot_total: f64,
    /// Guest uptime when the check started, and the check's guest seconds.
    #[serde(default)]
    pub guest_times: Option<(f64, f64)>,
}

impl BootCheck {
    /// The name of the first step that did not exit 0 (`None`: it loads,
    /// or the guest never got to the steps: see `verdict`).
    pub fn failed_step(&self) -> Option<&str> {
        if self.verdict.starts_with("boot failed") {
            return None;
        }
        self.steps
            .iter()
            .find(|s| s.status != Some(0))
            .map(|s| s.name.as_str())
    }
}

/// Checks that the guest of `image` can run `exe`: the newest `GLIBC_x.y`
/// symbol version named in `exe` (none: a static build) is not newer than
/// the cell's `libc6` package (from its manifest; images without one are
/// not checked).
pub fn check_glibc(image: &Path, exe: &Path) -> Result<()> {
    let Some(guest) = Manifest::read(image).ok().and_then(|m| {
        m.all("package")
            .find_map(|p| p.strip_prefix("libc6:amd64"))
            .and_then(|v| glibc_version(v.trim()))
    }) else {
        return Ok(());
    };
    let bytes = std::fs::read(exe)
        .map_err(|e| Error::io(format!("read {}", exe.display()), e))?;
    let needs = max_glibc_symbol(&bytes);
    match needs {
        Some(n) if n > guest => Err(Error::OldGlibc {
            dir: image.to_owned(),
            guest: format!("{}.{}", guest.0, guest.1),
            needs: format!("{}.{}", n.0, n.1),
        }),
        _ => Ok(()),
    }
}

/// `2.31` of a Debian version like `2.31-13+deb11u14`.
fn glibc_version(v: &str) -> Option<(u32, u32)> {
    let (major, rest) = v.split_once('.')?;
    let minor: String =
        rest.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The newest `GLIBC_x.y` named in an executable's bytes.
fn max_glibc_symbol(bytes: &[u8]) -> Option<(u32, u32)> {
    const TAG: &[u8] = b"GLIBC_";
    bytes
        .windows(TAG.len())
        .enumerate()
        .filter(|(_, w)| *w == TAG)
        .filter_map(|(i, _)| {
            let rest = &bytes[i + TAG.len()..];
            let end = rest
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                .unwrap_or(rest.len());
            glibc_version(std::str::from_utf8(&rest[..end]).ok()?)
        })
        .max()
}

/// Boots the cell folder `image` (one vCPU, as `run --backend vm` does)
/// and runs [`CHECK_STEPS`].
pub fn boot_check(image: &Path, config: &Config) -> Result<BootCheck> {
    let mut config = config.clone();
    config.image = Some(image.to_owned());
    let guest = Guest { script: Some(check_script()), ..Guest::default() };
    let release = image_release(image).unwrap_or_default();
    let run = boot_guest(&release, &config, &guest)?;
    Ok(read_check(&run))
}

fn read_check(guest: &GuestRun) -> BootCheck {
    let dir = guest.out().join("check");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let steps: Vec<Step> = CHECK_STEPS
        .iter()
        .map(|(name, _)| Step {
            name: (*name).to_owned(),
            status: read(&format!("{name}.rc"))
                .and_then(|s| s.trim().parse().ok()),
            output: truncate(
                &read(&format!("{name}.out")).unwrap_or_default(),
                2000,
            ),
        })
        .collect();
    let dmesg = dmesg_notes(&read("dmesg").unwrap_or_default());
    let verdict = match guest.failure() {
        Some(why) => format!("boot failed: {why}"),
        None => verdict(&steps, &dmesg),
    };
    let log = std::fs::read_to_string(guest.out().join("guest.log"))
        .unwrap_or_default();
    let guest_times =
        uptimes(&log, "check-start ", "check-end ").map(|(a, b)| (a, b - a));
    BootCheck {
        guest_times,
        verdict,
        kernel: read("uname").map(|s| s.trim().to_owned()),
        steps,
        dmesg,
        boot_to_init: guest.boot.to_init,
        boot_total: guest.boot.total,
    }
}

/// `loads` when every step exited 0; otherwise the first failing step's
/// command, its first output line and the first kernel message about it.
fn verdict(steps: &[Step], dmesg: &[String]) -> String {
    let Some((step, cmd)) = steps
        .iter()
        .zip(CHECK_STEPS)
        .find(|(s, _)| s.status != Some(0))
        .map(|(s, (_, cmd))| (s, cmd))
    else {
        return "loads".into();
    };
    let what = match step.status {
        None => "not run (the guest stopped before)".to_owned(),
        Some(rc) => format!(
            "exit {rc}: {}",
            step.output.lines().next().unwrap_or("(no output)")
        ),
    };
    let kernel = if step.name.starts_with("modprobe") {
        dmesg_error(dmesg).map(|d| format!("; dmesg: {d}")).unwrap_or_default()
    } else {
        String::new()
    };
    format!("{cmd}: {what}{kernel}")
}

/// The kernel messages worth keeping: Jool's own, symbol errors, and any
/// warning, bug or oops (at most 20 lines, timestamps removed).
fn dmesg_notes(dmesg: &str) -> Vec<String> {
    const MARKS: &[&str] = &[
        "Unknown symbol",
        "disagrees about version",
        "WARNING:",
        "BUG:",
        "Oops",
        "Call Trace",
    ];
    dmesg
        .lines()
        .map(|l| match l.strip_prefix('[').and_then(|r| r.split_once("] ")) {
            Some((_, rest)) => rest,
            None => l,
        })
        .filter(|l| {
            l.to_ascii_lowercase().contains("jool")
                || MARKS.iter().any(|m| l.contains(m))
        })
        .filter(|l| !l.contains("loading out-of-tree module taints kernel"))
        .filter(|l| !l.contains("module verification failed"))
        .filter(|l| !l.to_ascii_lowercase().contains("command line"))
        .take(20)
        .map(str::to_owned)
        .collect()
}

/// The kernel message that explains a failed `modprobe`: the first that
/// reads as an error, else the first.
fn dmesg_error(dmesg: &[String]) -> Option<&str> {
    const ERRORS: &[&str] = &[
        "Unknown symbol",
        "disagrees",
        "rror",
        "fail",
        "nvalid",
        "BUG",
        "WARNING",
    ];
    dmesg
        .iter()
        .find(|l| ERRORS.iter().any(|e| l.contains(e)))
        .or(dmesg.first())
        .map(String::as_str)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_glibc_versions() {
        assert_eq!(glibc_version("2.31-13+deb11u14"), Some((2, 31)));
        assert_eq!(glibc_version("2.36-9+deb12u10"), Some((2, 36)));
        let exe = b"..GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.9\0GLIBC_PRIVATE\0";
        assert_eq!(max_glibc_symbol(exe), Some((2, 34)));
        assert_eq!(max_glibc_symbol(b"static"), None);
    }

    #[test]
    fn test_manifest_parse() {
        let m = Manifest::parse(
            "release=4.1.9\nsuite=bookworm\nfirst_error=\nfirst=a=b\npackage=x 1\npackage=y 2\nnot a line\n",
        );
        assert_eq!(m.get("release"), Some("4.1.9"));
        assert_eq!(m.get("first_error"), None);
        assert_eq!(m.get("first"), Some("a=b"));
        assert_eq!(m.all("package").collect::<Vec<_>>(), ["x 1", "y 2"]);
        assert!(m.built());
        assert!(!Manifest::parse("result=module does not build\n").built());
    }

    fn step(name: &str, status: Option<i32>, output: &str) -> Step {
        Step { name: name.into(), status, output: output.into() }
    }

    #[test]
    fn test_verdict() {
        let ok: Vec<Step> =
            CHECK_STEPS.iter().map(|(n, _)| step(n, Some(0), "")).collect();
        assert_eq!(verdict(&ok, &[]), "loads");
        let mut bad = ok.clone();
        bad[0] = step("modprobe-siit", Some(1), "modprobe: ERROR: could not insert 'jool_siit': Unknown symbol in module, or unknown parameter (see dmesg)\n");
        let dmesg = dmesg_notes("[    3.1] jool_common: Unknown symbol snmp_fold_field (err -2)\n[    3.2] other\n");
        assert_eq!(
            verdict(&bad, &dmesg),
            "modprobe jool_siit: exit 1: modprobe: ERROR: could not insert 'jool_siit': Unknown symbol in module, or unknown parameter (see dmesg); dmesg: jool_common: Unknown symbol snmp_fold_field (err -2)"
        );
        let mut unrun = ok;
        unrun[6] = step("stats-siit", None, "");
        assert_eq!(
            verdict(&unrun, &[]),
            "jool_siit stats display --all: not run (the guest stopped before)"
        );
    }

    #[test]
    fn test_failed_step() {
        let mut c = BootCheck {
            verdict: "x".into(),
            kernel: None,
            steps: vec![
                step("modprobe-siit", Some(0), ""),
                step("instance-siit", Some(249), "Error"),
                step("stats-siit", None, ""),
            ],
            dmesg: Vec::new(),
            boot_to_init: None,
            boot_total: 1.0,
            guest_times: None,
        };
        assert_eq!(c.failed_step(), Some("instance-siit"));
        c.verdict = "boot failed: qemu exited with 1".into();
        assert_eq!(c.failed_step(), None);
    }

    #[test]
    fn test_dmesg_notes() {
        let d = "[ 1.0] jool_common: loading out-of-tree module taints kernel.\n[ 1.1] Jool: Core Jool v4.1.9.0 module inserted.\n[ 1.2] eth0: up\n";
        assert_eq!(
            dmesg_notes(d),
            ["Jool: Core Jool v4.1.9.0 module inserted."]
        );
        let d = dmesg_notes("[ 1.0] Jool: Core Jool v4.1.9.0 module inserted.\n[ 1.1] jool_siit: disagrees about version of symbol x\n");
        assert_eq!(
            dmesg_error(&d),
            Some("jool_siit: disagrees about version of symbol x")
        );
        assert_eq!(
            dmesg_error(&d[..1]),
            Some("Jool: Core Jool v4.1.9.0 module inserted.")
        );
    }

    #[test]
    fn test_check_script_runs_every_step() {
        let s = check_script();
        for (name, cmd) in CHECK_STEPS {
            assert!(
                s.contains(&format!(
                    "timeout 30 {cmd} < /dev/null > $o/{name}.out"
                )),
                "{name}"
            );
        }
    }
}
