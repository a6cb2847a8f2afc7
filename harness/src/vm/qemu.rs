//! QEMU itself: the share, the command line, one boot watched to its end.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{Error, Event, Events, Result};

/// One guest boot's files on the host.
pub(super) struct Share {
    pub(super) root: PathBuf,
    pub(super) out: PathBuf,
}

impl Share {
    /// A fresh private folder (`mkdtemp`, mode 0700) under the temporary
    /// folder: nothing another user prepared is reused or removed.
    pub(super) fn new() -> Result<Self> {
        let root = crate::host::private_dir("jool-harness-vm")
            .map_err(|e| Error::io("make the share", e))?;
        let out = root.join("out");
        std::fs::create_dir(&out)
            .map_err(|e| Error::io(format!("create {}", out.display()), e))?;
        Ok(Self { root, out })
    }
}

pub(super) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The script PID 1 runs in the guest: `jool-harness WORDS...`.
pub(super) fn run_script(words: &[String]) -> String {
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

pub(super) fn qemu_command(
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
pub(super) struct Boot {
    /// Host seconds from spawn to the guest's init marker.
    pub(super) to_init: Option<f64>,
    /// Host seconds from spawn to QEMU's exit.
    pub(super) total: f64,
    /// QEMU's exit status, or why it was killed.
    pub(super) exit: std::result::Result<std::process::ExitStatus, String>,
}

/// Boots and waits, sending the guest's run log as events.
pub(super) fn boot(
    mut cmd: Command,
    share: &Share,
    console: &Path,
    timeout: Duration,
    kvm: bool,
    events: &Events,
) -> Result<Boot> {
    let started = Instant::now();
    let mut child: Child = cmd.spawn().map_err(Error::Qemu)?;
    let log = share.out.join("guest.log");
    let mut shown = 0;
    let mut to_init = None;
    let exit = loop {
        if let Some(status) =
            child.try_wait().map_err(|e| Error::io("wait for qemu", e))?
        {
            break Ok(status);
        }
        let elapsed = started.elapsed();
        if to_init.is_none()
            && std::fs::read_to_string(console)
                .is_ok_and(|c| c.contains("=== JOOL-HARNESS INIT"))
        {
            to_init = Some(elapsed.as_secs_f64());
        }
        shown = stream_new(&log, shown, events);
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
    stream_new(&log, shown, events);
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

/// Sends the complete lines of `path` after byte `from` as events;
/// returns where it stopped.
pub(super) fn stream_new(path: &Path, from: usize, events: &Events) -> usize {
    let Ok(bytes) = std::fs::read(path) else { return from };
    let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
        return from;
    };
    if end < from {
        return from;
    }
    for line in bytes[from..=end].split_inclusive(|b| *b == b'\n') {
        events.emit(&Event::Line(line));
    }
    end + 1
}

pub(super) fn suite_times(log: &str) -> Option<(f64, f64)> {
    uptimes(log, "suite-start ", "suite-end ")
}

/// The guest uptimes on the first lines of `log` starting with `start`
/// and `end`.
pub(super) fn uptimes(
    log: &str,
    start: &str,
    end: &str,
) -> Option<(f64, f64)> {
    let find = |tag: &str| {
        log.lines().find_map(|l| {
            l.strip_prefix(tag).and_then(|v| v.trim().parse::<f64>().ok())
        })
    };
    Some((find(start)?, find(end)?))
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

    #[test]
    fn test_shell_quote() {
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }

    #[test]
    fn test_share_is_private_and_fresh() {
        use std::os::unix::fs::PermissionsExt;
        let (a, b) = (Share::new().unwrap(), Share::new().unwrap());
        assert_ne!(a.root, b.root);
        let mode = std::fs::metadata(&a.root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(a.out.is_dir());
        for s in [a, b] {
            std::fs::remove_dir_all(&s.root).unwrap();
        }
    }
}
