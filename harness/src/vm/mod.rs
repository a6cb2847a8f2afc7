//! Throwaway QEMU guests with the real module: finds (or builds, through
//! `scripts/vm-image`) the cached image of a release, boots its kernel
//! directly with three 9p shares (`bin`: this executable and jool-stats;
//! `fixtures`: a read-only folder of the caller's; `out`: the run script
//! and whatever the guest writes), lets the image's PID 1 run
//! `jool-harness ARGS...` inside, and hands the results folder back.
//! It knows nothing of what runs inside: suites, captures and fuzzing
//! build their own argument lists ([`Guest`]).
//!
//! KVM is used only where the host CPU really offers VT-x/AMD-V (`vmx` or
//! `svm` in `/proc/cpuinfo`): a `/dev/kvm` alone may be a paravirtual
//! hypervisor (PVM) on which stock kernels hang. Otherwise TCG
//! (`-accel tcg,thread=multi -cpu max`). Every boot runs under a hard
//! timeout; the console is kept when the run fails.

use std::{
    fmt,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

pub mod cell;
mod error;
mod qemu;

pub use error::Error;
use qemu::{
    boot, qemu_command, run_script, suite_times, uptimes, Boot, Share,
};

/// Result of the guest operations.
pub type Result<T> = std::result::Result<T, Error>;

/// How to boot guests.
#[derive(Clone, Debug)]
pub struct Config {
    /// This image folder (vmlinuz, initrd.img, rootfs.img) instead of
    /// scripts/vm-image's cached one.
    pub image: Option<PathBuf>,
    /// Hard limit on one boot.
    pub timeout: Duration,
    /// Hardware acceleration.
    pub accel: Accel,
    /// Where progress goes.
    pub events: Events,
    /// A folder with the `jool-harness` and `jool-stats` to copy into the
    /// guest instead of this executable and the jool-stats beside it (a
    /// static build, for guests with an older C library).
    pub guest_bin: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            image: None,
            timeout: Duration::from_secs(300),
            accel: Accel::Auto,
            events: Events::default(),
            guest_bin: None,
        }
    }
}

/// How QEMU runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// KVM if the CPU has vmx/svm, else TCG.
    Auto,
    /// KVM (`-enable-kvm -cpu host`).
    Kvm,
    /// Software emulation.
    Tcg,
}

impl Config {
    /// Whether to boot with KVM: `--accel kvm`, or `auto` on a host whose
    /// CPU offers it.
    pub fn wants_kvm(&self) -> bool {
        match self.accel {
            Accel::Auto => kvm_usable(),
            Accel::Kvm => true,
            Accel::Tcg => false,
        }
    }
}

/// Progress of a guest, as it happens.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// QEMU starts `image`, with KVM or TCG.
    Boot {
        /// The image folder.
        image: &'a Path,
        /// Whether KVM is used.
        kvm: bool,
    },
    /// A complete line of the guest's run log (`out/guest.log`).
    Line(&'a [u8]),
    /// The boot failed in a way another boot may not: why, and what
    /// happens next.
    Retry(&'a str),
}

/// Receives a guest's [`Event`]s; the default prints them on stderr.
#[derive(Clone)]
pub struct Events(Arc<dyn Fn(&Event<'_>) + Send + Sync>);

impl Events {
    /// Events as lines on stderr, each after `prefix` (e.g.
    /// `"[guest 2] "` when several guests run at once).
    pub fn stderr(prefix: &str) -> Self {
        let prefix = prefix.to_owned();
        Self(Arc::new(move |e| {
            let mut err = std::io::stderr().lock();
            let _ = match e {
                Event::Boot { image, kvm } => writeln!(
                    err,
                    "{prefix}vm: booting {} with {}",
                    image.display(),
                    if *kvm {
                        "KVM"
                    } else {
                        "TCG (no vmx/svm in /proc/cpuinfo)"
                    }
                ),
                Event::Line(l) => err
                    .write_all(prefix.as_bytes())
                    .and_then(|()| err.write_all(l)),
                Event::Retry(why) => writeln!(err, "{prefix}vm: {why}"),
            };
        }))
    }

    /// Events handed to `f`.
    pub fn to(f: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    fn emit(&self, e: &Event<'_>) {
        (self.0)(e);
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::stderr("")
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Events")
    }
}

/// What runs in a guest: `jool-harness ARGS...` as PID 1's child, with
/// `fixtures` shared read-only at `/h/fixtures` and each `(name, dir)` of
/// `extra_bin` at `/h/bin/NAME`.
#[derive(Clone, Debug, Default)]
pub struct Guest {
    /// The arguments of `jool-harness` in the guest.
    pub args: Vec<String>,
    /// The folder the guest sees as `/h/fixtures` (default: the
    /// repository's `fixtures/`).
    pub fixtures: Option<PathBuf>,
    /// More folders for the `bin` share (read-only in the guest; copy
    /// executables to a tmpfs before running them many times).
    pub extra_bin: Vec<(String, PathBuf)>,
    /// A shell script for PID 1 to run instead of `jool-harness ARGS...`
    /// (e.g. [`cell::boot_check`]'s; it writes under `/h/out`).
    pub script: Option<String>,
}

/// Whether this host can run a stock kernel under KVM.
pub fn kvm_usable() -> bool {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hw = flags
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    hw && Path::new("/dev/kvm").exists()
}

/// The image folder of `release`: `--image`, or `scripts/vm-image
/// --release R`'s (built if absent; its progress goes to stderr).
pub fn image_for(release: &str, config: &Config) -> Result<PathBuf> {
    if let Some(dir) = &config.image {
        return Ok(dir.clone());
    }
    let (dir, built) = cell::vm_image(&["--release", release])?;
    if !built {
        cell::check_bootable(&dir)?;
    }
    Ok(dir)
}

/// Checks that `image` holds what a boot needs.
pub fn check_image(image: &Path) -> Result<()> {
    for f in ["vmlinuz", "initrd.img", "rootfs.img"] {
        if !image.join(f).is_file() {
            return Err(Error::NotAnImage {
                dir: image.to_owned(),
                missing: f,
            });
        }
    }
    Ok(())
}

/// A finished guest boot: its files (until dropped) and timings.
pub struct GuestRun {
    share: Share,
    image: PathBuf,
    boot: Boot,
    console: PathBuf,
    image_secs: f64,
    t0: Instant,
}

impl GuestRun {
    /// The guest's `out` share (run.sh, guest.log, what the guest wrote).
    pub fn out(&self) -> &Path {
        &self.share.out
    }

    /// The image folder it booted.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// The guest's serial console (until dropped).
    pub fn console(&self) -> &Path {
        &self.console
    }

    /// Why the boot itself failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.boot.exit.as_ref().err().map(String::as_str)
    }

    /// The timings of the boot and of the guest's command.
    pub fn timings(&self) -> Vec<(String, f64)> {
        let guest_log =
            std::fs::read_to_string(self.share.out.join("guest.log"))
                .unwrap_or_default();
        let mut t =
            vec![("image (cached or built)".to_owned(), self.image_secs)];
        if let Some(s) = self.boot.to_init {
            t.push(("boot: qemu start to guest init (host clock)".into(), s));
        }
        if let Some((s, e)) = suite_times(&guest_log) {
            t.push(("guest uptime at suite start".into(), s));
            t.push(("suite in the guest (guest clock)".into(), e - s));
        }
        t.push(("qemu start to power-off".into(), self.boot.total));
        t.push(("total to results".into(), self.t0.elapsed().as_secs_f64()));
        t
    }

    /// Keeps the console at `dest` (when given and writable) and prints
    /// its end on stderr; returns where it is (the share's copy otherwise,
    /// gone once this run is dropped).
    pub fn keep_console(&self, dest: Option<&Path>) -> PathBuf {
        // The share goes away with this run: without `dest`, the console
        // is copied into a folder of its own (mkdtemp) that stays.
        let own = || {
            let dir = crate::host::private_dir("jool-harness-console").ok()?;
            let to = dir.join("console.log");
            std::fs::copy(&self.console, &to).ok().map(|_| to)
        };
        let kept = match dest {
            Some(d) if std::fs::copy(&self.console, d).is_ok() => d.to_owned(),
            _ => own().unwrap_or_else(|| self.console.clone()),
        };
        let text = std::fs::read_to_string(&self.console).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        eprintln!(
            "vm: console (last lines; all of it in {}):",
            kept.display()
        );
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
        kept
    }
}

impl Drop for GuestRun {
    fn drop(&mut self) {
        // The folder is ours: made by mkdtemp in `Share::new`.
        let _ = std::fs::remove_dir_all(&self.share.root);
    }
}

/// The repository's `fixtures/`, the default `/h/fixtures` of a guest.
pub fn default_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The jool-stats binary beside this executable.
pub fn jool_stats_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("find this executable", e))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    [dir.join("jool-stats"), dir.join("../jool-stats")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| Error::NoJoolStats(exe.clone()))
}

/// Boots the image of `release` (see [`image_for`]) and runs
/// `jool-harness ARGS...` of `guest` inside, as PID 1's child.
pub fn boot_guest(
    release: &str,
    config: &Config,
    guest: &Guest,
) -> Result<GuestRun> {
    let t0 = Instant::now();
    let image = image_for(release, config)?;
    cell::check_bootable(&image)?;
    let image_secs = t0.elapsed().as_secs_f64();
    let (exe, jool_stats) = match &config.guest_bin {
        Some(dir) => (dir.join("jool-harness"), dir.join("jool-stats")),
        None => (
            std::env::current_exe()
                .map_err(|e| Error::io("find this executable", e))?,
            jool_stats_binary()?,
        ),
    };
    // A guest script of its own (the boot check) runs none of our
    // executables: only `jool-harness ARGS` needs a C library they run on.
    if guest.script.is_none() {
        cell::check_glibc(&image, &exe)?;
    }
    let fixtures = guest.fixtures.clone().unwrap_or_else(default_fixtures);
    let fixtures = fixtures.canonicalize().map_err(|e| {
        Error::io(format!("find the fixtures {}", fixtures.display()), e)
    })?;
    let share = Share::new()?;
    let bin = share.root.join("bin");
    copy_stripped(&[&exe, &jool_stats], &bin)?;
    for (name, dir) in &guest.extra_bin {
        let st = Command::new("cp")
            .arg("-a")
            .arg(dir)
            .arg(bin.join(name))
            .status()
            .map_err(|e| Error::io("run cp", e))?;
        if !st.success() {
            return Err(Error::io(
                format!("copy {} into the guest's share", dir.display()),
                std::io::Error::other(st.to_string()),
            ));
        }
    }
    let script = share.out.join("run.sh");
    let io = |what: &str| {
        let what = format!("{what} {}", script.display());
        move |e| Error::io(what, e)
    };
    let text = guest.script.clone().unwrap_or_else(|| run_script(&guest.args));
    std::fs::write(&script, text).map_err(io("write"))?;
    std::fs::set_permissions(
        &script,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(io("chmod"))?;
    let console = share.root.join("console.log");
    let want_kvm = config.wants_kvm();
    let timeout = config.timeout;
    let events = &config.events;
    let qemu =
        |kvm| qemu_command(&image, &bin, &fixtures, &share, &console, kvm);
    events.emit(&Event::Boot { image: &image, kvm: want_kvm });
    let mut b =
        boot(qemu(want_kvm), &share, &console, timeout, want_kvm, events)?;
    if want_kvm && config.accel == Accel::Auto {
        if let Err(why) = &b.exit {
            events.emit(&Event::Retry(&format!("{why}; retrying with TCG")));
            let _ = std::fs::remove_file(&console);
            b = boot(qemu(false), &share, &console, timeout, false, events)?;
        }
    }
    // A guest kernel that died before reaching init (an early-boot panic
    // under TCG was seen once on trixie's 6.12) gets one more boot; the
    // first console is kept beside the second.
    if b.to_init.is_none() && !share.out.join("guest.rc").exists() {
        let first = share.root.join("console-first-boot.log");
        let _ = std::fs::rename(&console, &first);
        events.emit(&Event::Retry(&format!(
            "the guest never reached init (console: {}); booting once more",
            first.display()
        )));
        let kvm = want_kvm && b.exit.is_ok();
        b = boot(qemu(kvm), &share, &console, timeout, kvm, events)?;
    }
    Ok(GuestRun { share, image, boot: b, console, image_secs, t0 })
}

/// Copies `files` into `dir` without their debug info (smaller to send
/// over 9p), or as they are when `strip` is missing.
fn copy_stripped(files: &[&Path], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    for f in files {
        let dest = dir.join(f.file_name().unwrap_or(f.as_os_str()));
        let stripped = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&dest)
            .arg(f)
            .status();
        if !stripped.is_ok_and(|s| s.success()) {
            std::fs::copy(f, &dest)
                .map_err(|e| Error::io(format!("copy {}", f.display()), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_check_image_names_the_missing_file() {
        let e = check_image(Path::new("/nonexistent")).unwrap_err();
        assert!(e.to_string().contains("vmlinuz"), "{e}");
    }
}
