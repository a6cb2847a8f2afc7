//! This machine: commands run with a hard timeout (optionally inside a
//! named network namespace), whether we are root, and which Jool module
//! is installed. Used by every part that runs real programs: the suite's
//! kernel and sim backends, captures, `fuzz-kernel`, `versions real`.

use std::{
    fmt,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// What a command printed and returned.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Output {
    /// stdout, lossily decoded.
    pub stdout: String,
    /// stderr, lossily decoded.
    pub stderr: String,
    /// Exit status (-1: killed by a signal or timed out).
    pub status: i32,
    /// The process id (its netlink port id), when it was a child process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// Why a command did not run to its end.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// No program was given.
    Empty,
    /// The program could not be started.
    Spawn {
        /// The program.
        program: String,
        /// What `exec` said.
        source: std::io::Error,
    },
    /// Waiting for the child failed.
    Wait(std::io::Error),
    /// The command outlived its timeout and was killed.
    TimedOut {
        /// The whole command line.
        command: String,
        /// The limit.
        after: Duration,
    },
    /// The named network namespace could not be entered.
    Netns {
        /// `/run/netns/NAME`.
        path: PathBuf,
        /// What `open` or `setns(2)` said.
        source: std::io::Error,
    },
    /// A shell script ran but failed.
    Failed {
        /// The script.
        script: String,
        /// What it printed and returned.
        output: Output,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty command"),
            Self::Spawn { program, source } => {
                write!(f, "cannot run {program}: {source}")
            }
            Self::Wait(e) => write!(f, "waiting for a child failed: {e}"),
            Self::TimedOut { command, after } => {
                write!(f, "timed out after {after:?}: {command}")
            }
            Self::Netns { path, source } => {
                write!(f, "cannot enter netns {}: {source}", path.display())
            }
            Self::Failed { script, output } => write!(
                f,
                "`{script}` failed (exit {}): {}{}",
                output.status, output.stdout, output.stderr
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn { source, .. } | Self::Netns { source, .. } => {
                Some(source)
            }
            Self::Wait(e) => Some(e),
            _ => None,
        }
    }
}

/// Whether this process runs as uid 0.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|u| u.split_whitespace().nth(1) == Some("0"))
            })
        })
        .unwrap_or(false)
}

/// The running module's release (`/sys/module/jool_common/version`, or
/// `modinfo`), e.g. `4.1.9`.
pub fn installed_release() -> Option<String> {
    let v = installed_version()?;
    // "4.1.9" or "4.1.9.0": keep three parts.
    let parts: Vec<&str> = v.trim().split('.').collect();
    Some(parts[..parts.len().min(3)].join("."))
}

/// Whether the loaded module is `release`: its version (`4.1.255.5`) is
/// the release's wire version (4.2.0-rc3 says 4.1.255.5; main, today,
/// 4.1.15.0), or its first three parts are the release's name.
pub fn module_is(release: &str) -> bool {
    installed_version().is_some_and(|v| version_is(release, &v))
}

/// Whether a version string (`4.1.9.0`, `4.1.255.5`, as modules and
/// clients print it) is `release`'s (see [`module_is`]).
pub fn version_is(release: &str, version: &str) -> bool {
    let parts: Vec<u32> =
        version.trim().split('.').filter_map(|p| p.parse().ok()).collect();
    let wire = match parts[..] {
        [a, b, c, d] => Some(a << 24 | b << 16 | c << 8 | d),
        [a, b, c] => Some(a << 24 | b << 16 | c << 8),
        _ => None,
    };
    let by_wire = jool_sim::versions::Profile::get(release)
        .zip(wire)
        .is_some_and(|(p, w)| p.wire_version == w);
    let three: Vec<&str> = version.trim().split('.').take(3).collect();
    by_wire || three.join(".") == release
}

/// The loaded (or installed) Jool's version string, as its module says
/// it (`4.1.9.0`): `jool_common`'s, or (4.0.0 - 4.0.5) `jool_siit`'s or
/// `jool`'s.
pub fn installed_version() -> Option<String> {
    // 4.0.0 - 4.0.5 have no jool_common: each module carries the version.
    let v = ["jool_common", "jool_siit", "jool"].iter().find_map(|m| {
        std::fs::read_to_string(format!("/sys/module/{m}/version"))
            .ok()
            .or_else(|| {
                let o = Command::new("modinfo")
                    .args(["-F", "version", m])
                    .output()
                    .ok()?;
                (o.status.success() && !o.stdout.trim_ascii().is_empty())
                    .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
            })
    })?;
    Some(v.trim().to_owned())
}

/// A fresh private folder `PREFIX-XXXXXX` (mkdtemp, mode 0700) in the
/// temporary folder: nothing another user prepared is reused. It stays
/// when the caller is done (see [`TempDir`] for one that goes).
///
/// # Errors
/// mkdtemp's, naming the template.
pub fn private_dir(prefix: &str) -> std::io::Result<PathBuf> {
    private_dir_in(&std::env::temp_dir(), prefix)
}

/// [`private_dir`] under `base`.
///
/// # Errors
/// mkdtemp's, naming the template.
pub fn private_dir_in(base: &Path, prefix: &str) -> std::io::Result<PathBuf> {
    let template = base.join(format!("{prefix}-XXXXXX"));
    nix::unistd::mkdtemp(&template).map_err(|e| {
        std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("cannot create {}: {e}", template.display()),
        )
    })
}

/// A [`private_dir`] removed (with what it holds) when dropped: it was
/// made by mkdtemp, so it is ours to remove.
#[derive(Debug)]
pub struct TempDir(Option<PathBuf>);

impl TempDir {
    /// A fresh `PREFIX-XXXXXX` in the temporary folder.
    ///
    /// # Errors
    /// mkdtemp's, naming the template.
    pub fn new(prefix: &str) -> std::io::Result<Self> {
        private_dir(prefix).map(|d| Self(Some(d)))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// The folder, no longer removed on drop.
    pub fn keep(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A fresh folder `PREFIX-XXXXXX` made by mkdtemp in the temporary
/// folder, opened to 0755 (for what uid 65534 must reach in it), then
/// filled by `fill`. On any error the folder is removed (it is ours) and
/// the error names it.
///
/// # Errors
/// The first failing step's, naming the folder.
pub fn shared_temp_dir(
    prefix: &str,
    fill: impl FnOnce(&Path) -> std::io::Result<()>,
) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new(prefix)?;
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755))
        .and_then(|()| fill(dir.path()))
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot fill {}: {e}", dir.path().display()),
            )
        })?;
    Ok(dir.keep())
}

/// Runs the repository's `scripts/NAME ARGS...` with bash (its progress
/// on stderr) and returns its exit status and the folder it printed on
/// its last line of stdout, if any (`scripts/vm-image`,
/// `scripts/fuzz-kernel-build`).
pub fn script_folder(
    name: &str,
    args: &[&str],
) -> std::io::Result<(std::process::ExitStatus, Option<PathBuf>)> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(name);
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .current_dir(script.parent().unwrap_or(Path::new(".")))
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text.lines().last().map(|l| PathBuf::from(l.trim()));
    Ok((out.status, dir))
}

/// Runs `argv` with a hard timeout (`LC_ALL=C`, stdin from /dev/null);
/// returns its output.
pub fn run(argv: &[String], timeout: Duration) -> Result<Output, Error> {
    run_env(argv, &[], timeout)
}

/// [`run`] with extra environment variables.
pub fn run_env(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Output, Error> {
    let (prog, args) = argv.split_first().ok_or(Error::Empty)?;
    let mut child = Command::new(prog)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .spawn()
        .map_err(|source| Error::Spawn { program: prog.clone(), source })?;
    let pid = child.id();
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(Error::Wait)? {
            Some(s) => break s.code().unwrap_or(-1),
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::TimedOut {
                    command: argv.join(" "),
                    after: timeout,
                });
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    Ok(Output {
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        status,
        pid: Some(pid),
    })
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain(r: Option<Box<dyn Read + Send>>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// [`run`] inside the named network namespace `netns`
/// (`/run/netns/NAME`): the thread that spawns the command enters it
/// with `setns(2)`, instead of one more exec through `ip netns exec`
/// (under TCG ~6 ms a command; `ip netns exec` also remounts /sys and
/// binds /etc/netns/NAME, which Jool's clients do not use).
pub fn run_in_netns(
    netns: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<Output, Error> {
    let path = Path::new("/run/netns").join(netns);
    let ns = std::fs::File::open(&path)
        .map_err(|source| Error::Netns { path: path.clone(), source })?;
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::Netns {
                    path: path.clone(),
                    source: e.into(),
                })?;
            run(argv, timeout)
        })
        .join()
        // The closure returns every error it meets; a panic there is a
        // bug in `run`, reported as a wait failure rather than re-raised.
        .unwrap_or_else(|_| {
            Err(Error::Wait(std::io::Error::other("setns thread panicked")))
        })
    })
}

/// Runs `sh -c SCRIPT` with a hard timeout; an exit status other than 0
/// is [`Error::Failed`].
pub fn sh(script: &str, timeout: Duration) -> Result<Output, Error> {
    let o = run(&["sh".into(), "-c".into(), script.into()], timeout)?;
    if o.status == 0 {
        Ok(o)
    } else {
        Err(Error::Failed { script: script.to_owned(), output: o })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// Fresh, private, gone on drop unless kept; `shared_temp_dir` is
    /// 0755 and removes itself when `fill` fails.
    #[test]
    fn test_temp_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| {
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        };
        let (a, b) =
            (TempDir::new("jh-t").unwrap(), TempDir::new("jh-t").unwrap());
        assert_ne!(a.path(), b.path());
        assert_eq!(mode(a.path()), 0o700);
        let gone = a.path().to_owned();
        std::fs::write(gone.join("f"), "x").unwrap();
        drop(a);
        assert!(!gone.exists());
        let kept = b.keep();
        assert!(kept.is_dir());
        std::fs::remove_dir(&kept).unwrap();
        let shared = shared_temp_dir("jh-t", |_| Ok(())).unwrap();
        assert_eq!(mode(&shared), 0o755);
        std::fs::remove_dir(&shared).unwrap();
        let mut failed = None;
        let e = shared_temp_dir("jh-t", |d| {
            failed = Some(d.to_owned());
            Err(std::io::Error::other("no"))
        })
        .unwrap_err();
        let failed = failed.unwrap();
        assert!(e.to_string().contains(&failed.display().to_string()), "{e}");
        assert!(!failed.exists());
    }

    #[test]
    fn test_version_is() {
        assert!(version_is("4.2.0-rc3", "4.1.255.5"));
        assert!(!version_is("4.2.0-rc2", "4.1.255.5"));
        assert!(
            version_is("main", "4.1.15.0") && version_is("4.1.15", "4.1.15.0")
        );
        assert!(
            version_is("4.1.9", "4.1.9.0") && version_is("4.1.9", "4.1.9")
        );
        assert!(
            !version_is("4.1.9", "4.1.10.0")
                && !version_is("4.1.1", "4.1.10.0")
        );
    }

    #[test]
    fn test_run_captures_output_and_status() {
        let o = run(
            &[
                "sh".into(),
                "-c".into(),
                "echo out; echo err >&2; exit 3".into(),
            ],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("out\n", "err\n"));
        assert_eq!(o.status, 3);
    }

    #[test]
    fn test_run_times_out() {
        let e = run(&["sleep".into(), "5".into()], Duration::from_millis(50))
            .unwrap_err();
        assert!(matches!(e, Error::TimedOut { .. }), "{e}");
    }

    #[test]
    fn test_sh_fails_with_the_output() {
        let e = sh("echo no; exit 1", Duration::from_secs(10)).unwrap_err();
        assert_eq!(e.to_string(), "`echo no; exit 1` failed (exit 1): no\n");
    }

    #[test]
    fn test_missing_program() {
        let e = run(&["/nonexistent/x".into()], Duration::from_secs(1))
            .unwrap_err();
        assert!(matches!(e, Error::Spawn { .. }), "{e}");
        assert!(matches!(run(&[], Duration::from_secs(1)), Err(Error::Empty)));
    }
}
