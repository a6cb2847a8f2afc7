//! Real-kernel mode in a throwaway QEMU guest: finds (or builds, through
//! `scripts/vm-image`) the cached image of a release, boots its kernel
//! directly with three 9p shares (`bin`: this executable's folder, with
//! jool-stats; `fixtures`: the suites; `out`: the run script and the
//! results), lets the image's PID 1 run `jool-harness run --backend kernel`
//! inside, and reads the results back.
//!
//! KVM is used only where the host CPU really offers VT-x/AMD-V (`vmx` or
//! `svm` in `/proc/cpuinfo`): a `/dev/kvm` alone may be a paravirtual
//! hypervisor (PVM) on which stock kernels hang. Otherwise TCG
//! (`-accel tcg,thread=multi -cpu max`). Every boot runs under a hard
//! timeout; the console is kept when the run fails.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use crate::suite::{self, report::Report, ClientArg, RunArgs, Suite};

/// Options of `--backend vm`.
#[derive(Debug, Clone, clap::Args)]
pub struct VmArgs {
    /// Use this image folder (vmlinuz, initrd.img, rootfs.img) instead of
    /// scripts/vm-image's cached one.
    #[arg(long, value_name = "DIR")]
    pub image: Option<PathBuf>,
    /// Hard limit on one boot, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
    /// Hardware acceleration.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: Accel,
    /// Where to keep the guest console when the run fails (default: beside
    /// the JUnit file, or the temporary folder).
    #[arg(long, value_name = "FILE")]
    pub console: Option<PathBuf>,
    /// Guests booted at once by `run --backend vm`, each running a share
    /// of the (client, suite) pairs (default: one per host CPU under TCG,
    /// where a guest has one vCPU; one per two CPUs with KVM).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Prefix of the guest's log lines on stderr (set when several guests
    /// run at once).
    #[arg(skip)]
    pub log_prefix: String,
}

/// How QEMU runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// KVM if the CPU has vmx/svm, else TCG.
    Auto,
    /// KVM (`-enable-kvm -cpu host`).
    Kvm,
    /// Software emulation.
    Tcg,
}

impl VmArgs {
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

/// Whether this host can run a stock kernel under KVM.
pub fn kvm_usable() -> bool {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hw = flags
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    hw && Path::new("/dev/kvm").exists()
}

/// The image folder of `release`: `--image`, or `scripts/vm-image`'s
/// (built if absent; its progress goes to stderr).
pub fn image_for(release: &str, args: &VmArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.image {
        return Ok(dir.clone());
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/vm-image");
    let out = Command::new("bash")
        .arg(&script)
        .args(["--release", release])
        .current_dir(script.parent().unwrap_or(Path::new(".")))
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("Failed to run {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} --release {release} failed ({})",
            script.display(),
            out.status
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text
        .lines()
        .last()
        .context("scripts/vm-image printed no image folder")?;
    Ok(PathBuf::from(dir.trim()))
}

/// One guest boot's files on the host.
struct Share {
    root: PathBuf,
    out: PathBuf,
    prefix: String,
}

impl Share {
    fn new() -> anyhow::Result<Self> {
        static N: std::sync::atomic::AtomicUsize =
            std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir()
            .join(format!("jool-harness-vm-{}-{n}", std::process::id()));
        let out = root.join("out");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&out)
            .context("Failed to create the VM's share folder")?;
        Ok(Self { root, out, prefix: String::new() })
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The script PID 1 runs in the guest: `jool-harness WORDS...`.
fn run_script(words: &[String]) -> String {
    let line: Vec<String> =
        std::iter::once("/tmp/hbin/jool-harness".to_owned())
            .chain(words.iter().cloned())
            .map(|w| shell_quote(&w))
            .collect();
    format!(
        "#!/bin/sh\n# Written by jool-harness --backend vm; run by the guest's PID 1.\ncd /tmp\necho \"suite-start $(cut -d' ' -f1 /proc/uptime)\"\n# Executables on 9p (cache=none) are read again at every exec: copy them.\nmkdir -p /tmp/hbin && mount -t tmpfs -o mode=0755 hbin /tmp/hbin && cp /h/bin/jool-harness /h/bin/jool-stats /tmp/hbin/ || exit 70\n{}\nrc=$?\necho \"suite-end $(cut -d' ' -f1 /proc/uptime)\"\nexit $rc\n",
        line.join(" ")
    )
}

fn qemu_command(
    image: &Path,
    bin: &Path,
    fixtures: &Path,
    share: &Share,
    console: &Path,
    kvm: bool,
) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    if kvm {
        c.args(["-enable-kvm", "-cpu", "host"]);
    } else {
        c.args(["-accel", "tcg,thread=multi", "-cpu", "max"]);
    }
    let virtfs = |path: &Path, tag: &str, ro: bool| {
        format!(
            "local,path={},mount_tag={tag},security_model=none{}",
            path.display(),
            if ro { ",readonly=on" } else { "" }
        )
    };
    // One vCPU under TCG: the runner is sequential, and with two every
    // cross-vCPU TLB flush (each fork/exec/exit) stops both emulated CPUs;
    // measured here (before `norandmaps`), 26 ms per `/bin/true` with one
    // vCPU against 44 ms with two, and a 1.5 s shorter boot.
    c.args(["-smp", if kvm { "2" } else { "1" }]);
    c.args(["-m", "1024", "-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-kernel")
        .arg(image.join("vmlinuz"))
        .arg("-initrd")
        .arg(image.join("initrd.img"))
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio,snapshot=on", image.join("rootfs.img").display()))
        .arg("-virtfs")
        .arg(virtfs(bin, "bin", true))
        .arg("-virtfs")
        .arg(virtfs(fixtures, "fixtures", true))
        .arg("-virtfs")
        .arg(virtfs(&share.out, "out", false))
        // `norandmaps`: QEMU 7.2's TCG finds a translated block by its
        // virtual address, so with ASLR every process translates ld.so,
        // libc and its own code again. Fixed addresses let each exec reuse
        // them: `/bin/true` went from 27 to 6 ms in the guest, a suite
        // step from ~70 to ~15 ms (the guest is a throwaway test machine).
        .args(["-append", "root=/dev/vda rw console=ttyS0 init=/sbin/jool-harness-init panic=1 quiet mitigations=off norandmaps"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// What one boot did.
struct Boot {
    /// Host seconds from spawn to the guest's init marker.
    to_init: Option<f64>,
    /// Host seconds from spawn to QEMU's exit.
    total: f64,
    /// QEMU's exit status, or why it was killed.
    exit: Result<std::process::ExitStatus, String>,
}

/// Boots and waits, streaming the guest's run log to stderr.
fn boot(
    mut cmd: Command,
    share: &Share,
    console: &Path,
    timeout: Duration,
    kvm: bool,
) -> anyhow::Result<Boot> {
    let started = Instant::now();
    let mut child: Child = cmd.spawn().context(
        "Failed to start qemu-system-x86_64 (apt-get install qemu-system-x86)",
    )?;
    let log = share.out.join("guest.log");
    let mut shown = 0;
    let mut to_init = None;
    let exit = loop {
        if let Some(status) = child.try_wait()? {
            break Ok(status);
        }
        let elapsed = started.elapsed();
        if to_init.is_none()
            && std::fs::read_to_string(console)
                .is_ok_and(|c| c.contains("=== JOOL-HARNESS INIT"))
        {
            to_init = Some(elapsed.as_secs_f64());
        }
        shown = stream_new(&log, shown, &share.prefix);
        let silent =
            std::fs::metadata(console).map(|m| m.len() == 0).unwrap_or(true);
        if kvm && silent && elapsed > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break Err("KVM: the console stayed empty for 20 s (a hypervisor that cannot run this kernel?)".into());
        }
        if elapsed > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break Err(format!(
                "the guest did not power off within {} s",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stream_new(&log, shown, &share.prefix);
    if let Ok(st) = &exit {
        if !st.success() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Ok(Boot {
                to_init,
                total: started.elapsed().as_secs_f64(),
                exit: Err(format!("qemu exited with {st}: {}", err.trim())),
            });
        }
    }
    Ok(Boot { to_init, total: started.elapsed().as_secs_f64(), exit })
}

/// Prints the complete lines of `path` after byte `from` to stderr, each
/// after `prefix`; returns where it stopped.
fn stream_new(path: &Path, from: usize, prefix: &str) -> usize {
    let Ok(bytes) = std::fs::read(path) else { return from };
    let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
        return from;
    };
    if end < from {
        return from;
    }
    let mut err = std::io::stderr().lock();
    for line in bytes[from..=end].split_inclusive(|b| *b == b'\n') {
        let _ = err.write_all(prefix.as_bytes());
        let _ = err.write_all(line);
    }
    end + 1
}

fn suite_times(log: &str) -> Option<(f64, f64)> {
    let find = |tag: &str| {
        log.lines().find_map(|l| {
            l.strip_prefix(tag).and_then(|v| v.trim().parse::<f64>().ok())
        })
    };
    Some((find("suite-start ")?, find("suite-end ")?))
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

    /// The guest's serial console (until dropped).
    pub fn console(&self) -> &Path {
        &self.console
    }

    /// The image folder it booted.
    pub fn image(&self) -> &Path {
        &self.image
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

    /// Keeps the console (at `dest`, or beside `junit`) and prints its end.
    pub fn keep_console(&self, vm: &VmArgs, junit: Option<&Path>) -> PathBuf {
        let dest = vm.console.clone().unwrap_or_else(|| match junit {
            Some(j) => j.with_extension("console.log"),
            None => std::env::temp_dir().join("jool-harness-vm-console.log"),
        });
        let kept = match std::fs::copy(&self.console, &dest) {
            Ok(_) => dest,
            Err(_) => self.console.clone(),
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
        let _ = std::fs::remove_dir_all(&self.share.root);
    }
}

/// Boots the image of `release` and runs `jool-harness WORDS...
/// --suites-dir DIR --release R [--suite G]...` inside, as PID 1's child.
pub fn boot_guest(
    release: &str,
    vm: &VmArgs,
    suites_dir: Option<&Path>,
    suites: &[String],
    words: &[String],
) -> anyhow::Result<GuestRun> {
    boot_guest_with(release, vm, suites_dir, suites, words, &[])
}

/// [`boot_guest`], with more folders in the guest's `bin` share: each
/// `(name, dir)` is copied to `/h/bin/NAME` (read-only in the guest; copy
/// executables to a tmpfs before running them many times).
pub fn boot_guest_with(
    release: &str,
    vm: &VmArgs,
    suites_dir: Option<&Path>,
    suites: &[String],
    words: &[String],
    extra_bin: &[(&str, &Path)],
) -> anyhow::Result<GuestRun> {
    let dir =
        suites_dir.map_or_else(suite::default_suites_dir, Path::to_owned);
    let dir =
        dir.canonicalize().with_context(|| format!("{}", dir.display()))?;
    suite::load_suites(&dir, suites)?; // fail early, on the host
                                       // Share the suites' parent: suites refer to ../captures.
    let fixtures =
        dir.parent().context("suites folder without a parent")?.to_owned();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut words = words.to_vec();
    words.extend([
        "--suites-dir".to_owned(),
        format!("/h/fixtures/{name}"),
        "--release".into(),
        release.into(),
    ]);
    for s in suites {
        words.extend(["--suite".to_owned(), s.clone()]);
    }
    boot_guest_words(release, vm, &fixtures, &words, extra_bin)
}

/// Boots the image of `release` with `fixtures` as the guest's
/// `/h/fixtures` and runs `jool-harness WORDS...` (exactly those) inside,
/// as PID 1's child; `extra_bin` as in [`boot_guest_with`].
pub fn boot_guest_words(
    release: &str,
    vm: &VmArgs,
    fixtures: &Path,
    words: &[String],
    extra_bin: &[(&str, &Path)],
) -> anyhow::Result<GuestRun> {
    let t0 = Instant::now();
    let image = image_for(release, vm)?;
    for f in ["vmlinuz", "initrd.img", "rootfs.img"] {
        if !image.join(f).is_file() {
            bail!(
                "{} has no {f}: not an image from scripts/vm-image",
                image.display()
            );
        }
    }
    let image_secs = t0.elapsed().as_secs_f64();
    let exe =
        std::env::current_exe().context("Failed to find this executable")?;
    let jool_stats = suite::jool_stats_binary()?;
    let mut share = Share::new()?;
    share.prefix.clone_from(&vm.log_prefix);
    let bin = share.root.join("bin");
    copy_stripped(&[&exe, &jool_stats], &bin)?;
    for (name, dir) in extra_bin {
        let st = Command::new("cp")
            .arg("-a")
            .arg(dir)
            .arg(bin.join(name))
            .status()
            .context("Failed to run cp")?;
        if !st.success() {
            bail!("Failed to copy {} into the guest's share", dir.display());
        }
    }
    let script = share.out.join("run.sh");
    std::fs::write(&script, run_script(words))?;
    Command::new("chmod").arg("755").arg(&script).status()?;
    let console = share.root.join("console.log");
    let want_kvm = vm.wants_kvm();
    let timeout = Duration::from_secs(vm.timeout);
    eprintln!(
        "vm: booting {} ({release}) with {}",
        image.display(),
        if want_kvm { "KVM" } else { "TCG (no vmx/svm in /proc/cpuinfo)" }
    );
    let qemu =
        |kvm| qemu_command(&image, &bin, fixtures, &share, &console, kvm);
    let mut b = boot(qemu(want_kvm), &share, &console, timeout, want_kvm)?;
    if want_kvm && vm.accel == Accel::Auto {
        if let Err(why) = &b.exit {
            eprintln!("vm: {why}; retrying with TCG");
            let _ = std::fs::remove_file(&console);
            b = boot(qemu(false), &share, &console, timeout, false)?;
        }
    }
    // A guest kernel that died before reaching init (an early-boot panic
    // under TCG was seen once on trixie's 6.12) gets one more boot; the
    // first console is kept beside the second.
    if b.to_init.is_none() && !share.out.join("guest.rc").exists() {
        let first = share.root.join("console-first-boot.log");
        let _ = std::fs::rename(&console, &first);
        eprintln!("vm: the guest never reached init (console: {}); booting once more", first.display());
        b = boot(
            qemu(want_kvm && b.exit.is_ok()),
            &share,
            &console,
            timeout,
            want_kvm && b.exit.is_ok(),
        )?;
    }
    Ok(GuestRun { share, image, boot: b, console, image_secs, t0 })
}

/// One guest's share of `run --backend vm`: its `--client` and suites.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Unit {
    client: ClientArg,
    suites: Vec<String>,
    weight: usize,
}

/// Splits the work of `run --backend vm` over `jobs` guests. One guest
/// runs everything with `client` as asked; more split the clients first
/// (a guest runs one client), then each client's suites, heaviest first,
/// to its lightest guest (a topology step costs about ten other steps).
fn plan(suites: &[Suite], client: ClientArg, jobs: usize) -> Vec<Unit> {
    let stem = |s: &Suite| {
        s.path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let weight = |s: &Suite| {
        s.cases
            .iter()
            .flat_map(|c| &c.steps)
            .map(|st| if st.topology.is_some() { 10 } else { 1 })
            .sum::<usize>()
            .max(1)
    };
    let total: usize = suites.iter().map(weight).sum();
    if jobs <= 1 || suites.is_empty() {
        let suites = suites.iter().map(stem).collect();
        return vec![Unit { client, suites, weight: total }];
    }
    let clients: Vec<ClientArg> = match client {
        ClientArg::Both => vec![ClientArg::JoolStats, ClientArg::Real],
        one => vec![one],
    };
    let per_client = (jobs / clients.len()).max(1).min(suites.len());
    let mut sorted: Vec<&Suite> = suites.iter().collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(weight(s)));
    let mut units = Vec::new();
    for c in clients {
        let mut bins: Vec<Unit> = (0..per_client)
            .map(|_| Unit { client: c, suites: Vec::new(), weight: 0 })
            .collect();
        for s in &sorted {
            if let Some(b) = bins.iter_mut().min_by_key(|b| b.weight) {
                b.suites.push(stem(s));
                b.weight += weight(s);
            }
        }
        units.extend(bins.into_iter().filter(|b| !b.suites.is_empty()));
    }
    units
}

/// Guests to boot at once: `--jobs`, else one per host CPU under TCG (a
/// guest has one vCPU there), one per two CPUs with KVM.
fn jobs(vm: &VmArgs, kvm: bool) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    vm.jobs.unwrap_or(if kvm { cpus / 2 } else { cpus }).clamp(1, 8)
}

/// What one guest of `run --backend vm` brought back: its report and its
/// timings.
type GuestReport = (Report, Vec<(String, f64)>);

/// Runs one guest of `run --backend vm`.
fn unit_report(
    release: &str,
    args: &RunArgs,
    vm: &VmArgs,
    unit: &Unit,
    tag: &str,
) -> anyhow::Result<GuestReport> {
    let mut words: Vec<String> =
        ["run", "--backend", "kernel", "--client", unit.client.name()]
            .into_iter()
            .chain([
                "--junit",
                "/h/out/junit.xml",
                "--json",
                "/h/out/results.json",
                "--plain",
            ])
            .map(str::to_owned)
            .collect();
    if args.strict {
        words.push("--strict".into());
    }
    let mut vm = vm.clone();
    vm.log_prefix = tag.to_owned();
    let guest = boot_guest(
        release,
        &vm,
        args.suites_dir.as_deref(),
        &unit.suites,
        &words,
    )?;
    let results = guest.out().join("results.json");
    let outcome = match (guest.failure(), std::fs::read_to_string(&results)) {
        (None, Ok(text)) => serde_json::from_str::<Report>(&text)
            .context("results.json from the guest"),
        (Some(why), _) => Err(anyhow::anyhow!("the VM run failed: {why}")),
        (None, Err(e)) => Err(anyhow::anyhow!(
            "the guest wrote no results ({e}); guest.rc: {}",
            std::fs::read_to_string(guest.out().join("guest.rc"))
                .unwrap_or_else(|_| "none".into())
                .trim()
        )),
    };
    match outcome {
        Ok(report) => {
            if !report.success() {
                guest.keep_console(&vm, args.junit.as_deref());
            }
            Ok((report, guest.timings()))
        }
        Err(e) => {
            let kept = guest.keep_console(&vm, args.junit.as_deref());
            Err(e.context(format!("guest console kept in {}", kept.display())))
        }
    }
}

/// `jool-harness run --backend vm`: boots [`jobs`] guests at once, each
/// running `--backend kernel` on its share of the work ([`plan`]), and
/// merges their results in the order a single guest would give.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    let release = args
        .release
        .clone()
        .unwrap_or_else(|| crate::cli::DEFAULT_CLIENT.to_owned());
    let dir =
        args.suites_dir.clone().unwrap_or_else(suite::default_suites_dir);
    let suites = suite::load_suites(&dir, &args.suites)?;
    // Build (or find) the image once; every guest boots that folder.
    let mut vm = args.vm.clone();
    vm.image = Some(image_for(&release, &args.vm)?);
    let units = plan(&suites, args.client, jobs(&vm, vm.wants_kvm()));
    let tags: Vec<String> = (1..=units.len())
        .map(|i| {
            if units.len() > 1 {
                format!("[guest {i}] ")
            } else {
                String::new()
            }
        })
        .collect();
    if units.len() > 1 {
        eprintln!("vm: {} guests at once (--jobs):", units.len());
        for (u, t) in units.iter().zip(&tags) {
            eprintln!(
                "  {t}--client {} {}",
                u.client.name(),
                u.suites.join(" ")
            );
        }
    }
    let results: Vec<anyhow::Result<GuestReport>> = std::thread::scope(|s| {
        let handles: Vec<_> = units
            .iter()
            .zip(&tags)
            .map(|(u, t)| s.spawn(|| unit_report(&release, args, &vm, u, t)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(anyhow::anyhow!("a guest thread panicked"))
                })
            })
            .collect()
    });
    let mut report =
        Report { cases: Vec::new(), seconds: 0.0, timings: Vec::new() };
    for (tag, r) in tags.iter().zip(results) {
        let (r, timings) = r?;
        report.cases.extend(r.cases);
        report.seconds = report.seconds.max(r.seconds);
        report.timings.extend(
            timings
                .into_iter()
                .filter(|(k, _)| k != "total to results")
                .map(|(k, v)| (format!("{tag}{k}"), v)),
        );
    }
    // The order of one guest: client by client, suite by suite.
    let order = |c: &suite::report::CaseResult| {
        let client = usize::from(c.client != "jool-stats");
        let suite = suites
            .iter()
            .position(|s| s.suite.name == c.suite)
            .unwrap_or(usize::MAX);
        (client, suite)
    };
    report.cases.sort_by_key(order);
    report
        .timings
        .push(("total to results".into(), t0.elapsed().as_secs_f64()));
    suite::finish(&report, args, &format!("jool-harness vm {release}"))
}

/// Copies `files` into `dir` without their debug info (smaller to send
/// over 9p), or as they are when `strip` is missing.
fn copy_stripped(files: &[&Path], dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for f in files {
        let name = f.file_name().context("binary without a name")?;
        let dest = dir.join(name);
        let stripped = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&dest)
            .arg(f)
            .status();
        if !stripped.is_ok_and(|s| s.success()) {
            std::fs::copy(f, &dest)
                .with_context(|| format!("Failed to copy {}", f.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_suite_times() {
        assert_eq!(
            suite_times("x\nsuite-start 12.5\nPASS\nsuite-end 20.0\n"),
            Some((12.5, 20.0))
        );
        assert_eq!(suite_times(""), None);
    }

    /// Every (client, suite) pair in exactly one guest, one client per
    /// guest, no more guests than asked.
    fn check_plan(
        units: &[Unit],
        suites: &[Suite],
        client: ClientArg,
        jobs: usize,
    ) {
        assert!(units.len() <= jobs.max(1), "{units:?}");
        let clients = match client {
            ClientArg::Both => vec![ClientArg::JoolStats, ClientArg::Real],
            c => vec![c],
        };
        for s in suites {
            let stem = s.path.file_stem().unwrap().to_string_lossy();
            for c in &clients {
                let n = units
                    .iter()
                    .filter(|u| u.client == *c || u.client == ClientArg::Both)
                    .filter(|u| u.suites.iter().any(|x| *x == stem))
                    .count();
                assert_eq!(n, 1, "{stem} {c:?} in {units:?}");
            }
        }
    }

    #[test]
    fn test_plan_splits_clients_then_suites() {
        let suites =
            suite::load_suites(&suite::default_suites_dir(), &[]).unwrap();
        assert!(suites.len() >= 4);
        for client in [ClientArg::Both, ClientArg::JoolStats, ClientArg::Real]
        {
            for jobs in 1..=6 {
                let units = plan(&suites, client, jobs);
                check_plan(&units, &suites, client, jobs);
            }
        }
        // One guest: as asked, every suite.
        let one = plan(&suites, ClientArg::Both, 1);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].client, ClientArg::Both);
        // Two: one per client. Four: two per client, balanced (the
        // heaviest suite alone outweighs the lightest ones together).
        let two = plan(&suites, ClientArg::Both, 2);
        assert_eq!(
            two.iter().map(|u| u.client).collect::<Vec<_>>(),
            [ClientArg::JoolStats, ClientArg::Real]
        );
        let four = plan(&suites, ClientArg::Both, 4);
        assert_eq!(four.len(), 4);
        let w: Vec<usize> = four.iter().map(|u| u.weight).collect();
        let total: usize = suites.len();
        assert!(total > 0);
        assert!(w.iter().all(|x| *x > 0), "{w:?}");
    }

    #[test]
    fn test_shell_quote() {
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }
}
