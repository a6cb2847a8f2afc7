//! Running one command around a private daemon (`jool-sim exec`), safely
//! as root on a shared host: the socket in a folder no one else can
//! touch, the command's signals forwarded and its end reported as a
//! shell would (`$?`).

use std::{
    fmt, fs, io,
    os::unix::{
        fs::{MetadataExt, PermissionsExt},
        process::ExitStatusExt,
    },
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
};

use nix::{
    sys::signal::{kill, Signal},
    unistd::{geteuid, mkdtemp, Pid},
};
use signal_hook::{
    consts::{SIGHUP, SIGINT, SIGTERM},
    iterator::Signals,
};

/// `ENOEXEC`: not an executable format.
const ENOEXEC: i32 = 8;

/// `$?` of a command that could not be executed (found, not runnable).
pub const EXIT_CANNOT_EXECUTE: u8 = 126;
/// `$?` of a command that was not found.
pub const EXIT_NOT_FOUND: u8 = 127;
/// `$?` of a command killed by signal N is this plus N.
pub const EXIT_SIGNAL_BASE: u8 = 128;

/// Why a private folder or a command failed.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// The folder `mkdtemp` made is not what it must be (owner, mode,
    /// kind): someone interfered.
    Unsafe(PathBuf, String),
    /// The command does not exist.
    NotFound(PathBuf),
    /// The command exists but cannot be executed.
    CannotExecute(PathBuf, io::Error),
    /// A system call failed.
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsafe(p, why) => {
                write!(f, "refusing to use {}: {why}", p.display())
            }
            Self::NotFound(p) => {
                write!(f, "{}: command not found", p.display())
            }
            Self::CannotExecute(p, e) => write!(f, "{}: {e}", p.display()),
            Self::Io { what, source } => write!(f, "cannot {what}: {source}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// What a shell exits with for this error (126, 127), if anything
    /// particular.
    pub fn shell_status(&self) -> Option<u8> {
        match self {
            Self::NotFound(_) => Some(EXIT_NOT_FOUND),
            Self::CannotExecute(..) => Some(EXIT_CANNOT_EXECUTE),
            _ => None,
        }
    }
}

/// A folder made by `mkdtemp` in the temporary folder, removed (if
/// empty) on drop.
///
/// Checked after creation: a directory (not a symlink), owned by the
/// effective uid, mode 0700. It is then opened to search (0711), never to
/// listing or writing, so that a child that drops privileges (`setpriv`)
/// still reaches the socket whose path it is given.
#[derive(Debug)]
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    /// `$TMPDIR/PREFIX-XXXXXX`.
    pub fn new(prefix: &str) -> Result<Self, Error> {
        let template = std::env::temp_dir().join(format!("{prefix}-XXXXXX"));
        let path = mkdtemp(&template).map_err(|e| Error::Io {
            what: "create a private folder",
            source: e.into(),
        })?;
        let dir = Self(path);
        dir.check()?;
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o711))
            .map_err(|source| Error::Io { what: "chmod a folder", source })?;
        Ok(dir)
    }

    fn check(&self) -> Result<(), Error> {
        let m = fs::symlink_metadata(&self.0)
            .map_err(|source| Error::Io { what: "stat a folder", source })?;
        let unsafe_dir = |why: String| Error::Unsafe(self.0.clone(), why);
        if !m.file_type().is_dir() {
            return Err(unsafe_dir("not a directory".into()));
        }
        if m.uid() != geteuid().as_raw() {
            return Err(unsafe_dir(format!("owned by uid {}", m.uid())));
        }
        if m.mode() & 0o7777 != 0o700 {
            return Err(unsafe_dir(format!("mode {:o}", m.mode() & 0o7777)));
        }
        Ok(())
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // Only if empty: what is inside was removed by its owner.
        let _ = fs::remove_dir(&self.0);
    }
}

/// Runs `cmd` to its end. SIGTERM, SIGINT and SIGHUP received meanwhile
/// are passed on to it (and do not stop this process).
pub fn run(cmd: &mut Command) -> Result<ExitStatus, Error> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|source| Error::Io { what: "catch signals", source })?;
    let program = PathBuf::from(cmd.get_program());
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::NotFound(program.clone()),
        // No execute permission, not an executable format, a folder.
        io::ErrorKind::PermissionDenied | io::ErrorKind::IsADirectory => {
            Error::CannotExecute(program.clone(), e)
        }
        _ if e.raw_os_error() == Some(ENOEXEC) => {
            Error::CannotExecute(program.clone(), e)
        }
        _ => Error::Io { what: "start the command", source: e },
    })?;
    // A pid fits in an i32 (pid_max is at most 2^22).
    let pid = Pid::from_raw(child.id() as i32);
    let handle = signals.handle();
    let forward = std::thread::spawn(move || {
        for sig in signals.forever() {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = kill(pid, s);
            }
        }
    });
    let status = child.wait();
    handle.close();
    let _ = forward.join();
    status.map_err(|source| Error::Io { what: "wait for the command", source })
}

/// `$?` for `status`: the exit code, or 128 + the signal that killed it.
pub fn shell_status(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        // Exit codes are 0-255 (the low byte of the wait status).
        (Some(code), _) => code as u8,
        (None, Some(sig)) => EXIT_SIGNAL_BASE.saturating_add(sig as u8),
        (None, None) => EXIT_SIGNAL_BASE,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_private_dir_is_fresh_and_searchable_only() {
        let a = PrivateDir::new("jool-sim-test").unwrap();
        let b = PrivateDir::new("jool-sim-test").unwrap();
        assert_ne!(a.path(), b.path());
        let m = fs::symlink_metadata(a.path()).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o711);
        let path = a.path().to_owned();
        drop(a);
        assert!(!path.exists(), "removed when empty");
    }

    #[test]
    fn test_shell_statuses() {
        let sh = |script: &str| {
            run(Command::new("sh").args(["-c", script])).map(shell_status)
        };
        assert_eq!(sh("exit 3").unwrap(), 3);
        assert_eq!(sh("kill -TERM $$").unwrap(), 128 + 15);
        let missing = run(&mut Command::new("/nonexistent/jool-sim-test"));
        assert_eq!(missing.unwrap_err().shell_status(), Some(127));
        let dir = PrivateDir::new("jool-sim-test").unwrap();
        let plain = dir.path().join("plain");
        fs::write(&plain, "not a program\n").unwrap();
        let not_exec = run(&mut Command::new(&plain));
        assert_eq!(not_exec.unwrap_err().shell_status(), Some(126));
        assert_eq!(
            run(&mut Command::new(dir.path())).unwrap_err().shell_status(),
            Some(126),
            "a folder"
        );
        fs::remove_file(&plain).unwrap();
    }
}
