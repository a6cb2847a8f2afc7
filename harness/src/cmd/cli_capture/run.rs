//! Runs one command line with exact argv bytes, a clean environment and a
//! hard timeout; keeps both outputs as bytes and how the process ended.

use std::{
    ffi::OsStr,
    io::Read,
    os::unix::{
        ffi::OsStrExt,
        process::{CommandExt, ExitStatusExt},
    },
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use super::{Bytes, Status, StdoutKind};

/// What a run printed and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ran {
    /// Standard output (empty for a closed pipe).
    pub stdout: Bytes,
    /// Standard error.
    pub stderr: Bytes,
    /// Exit status or signal.
    pub status: Status,
}

fn reader<R: Read + Send + 'static>(
    r: Option<R>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// The standard output of a child.
fn stdout_of(kind: StdoutKind) -> anyhow::Result<Stdio> {
    Ok(match kind {
        StdoutKind::Pipe => Stdio::piped(),
        StdoutKind::ClosedPipe => {
            // O_CLOEXEC: a child another thread starts meanwhile must not
            // inherit the read end (it would keep the pipe open).
            let (read, write) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                    .context("Failed to make a pipe")?;
            drop(read);
            Stdio::from(write)
        }
    })
}

/// How to start a client: `program PRE... ARGS...` in `cwd` with only
/// `env` in its environment, stdin `/dev/null`, under a hard timeout.
#[derive(Clone, Debug)]
pub struct Runner<'a> {
    /// The executable (or a loader).
    pub program: &'a Path,
    /// Words before the arguments (for a loader: `--argv0 NAME BIN`).
    pub pre: Vec<&'a OsStr>,
    /// Working folder.
    pub cwd: &'a Path,
    /// The whole environment.
    pub env: Vec<(&'a str, &'a OsStr)>,
    /// Longest run.
    pub timeout: Duration,
}

/// Runs `args` through `r` with `argv[0]` set to `argv0`.
pub fn run_one(
    r: &Runner<'_>,
    argv0: &[u8],
    args: &[Bytes],
    stdout: StdoutKind,
) -> anyhow::Result<Ran> {
    let (program, timeout) = (r.program, r.timeout);
    let mut cmd = Command::new(program);
    cmd.arg0(OsStr::from_bytes(argv0))
        .args(&r.pre)
        .args(args.iter().map(|a| OsStr::from_bytes(&a.0)))
        .current_dir(r.cwd)
        .env_clear()
        .envs(r.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout_of(stdout)?)
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("Failed to run {}", program.display()))?;
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} timed out after {timeout:?}", program.display());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let status = match (status.code(), status.signal()) {
        (Some(c), _) => Status::Exit(c),
        (None, Some(s)) => Status::Signal(s),
        (None, None) => bail!("{} ended without a status", program.display()),
    };
    Ok(Ran {
        stdout: Bytes(out.join().unwrap_or_default()),
        stderr: Bytes(err.join().unwrap_or_default()),
        status,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    fn sh(script: &str, stdout: StdoutKind) -> Ran {
        let r = Runner {
            program: Path::new("/bin/sh"),
            pre: Vec::new(),
            cwd: Path::new("/"),
            env: Vec::new(),
            timeout: Duration::from_secs(10),
        };
        let args = [Bytes::from("-c"), Bytes::from(script)];
        run_one(&r, b"sh", &args, stdout).unwrap()
    }

    #[test]
    fn test_outputs_and_status() {
        let r = sh("printf 'a\\377'; echo b >&2; exit 3", StdoutKind::Pipe);
        assert_eq!(r.stdout.0, b"a\xff");
        assert_eq!(r.stderr.0, b"b\n");
        assert_eq!(r.status, Status::Exit(3));
    }

    #[test]
    fn test_closed_pipe_kills_a_writer() {
        // sh's builtin echo: the write fails with EPIPE and SIGPIPE
        // (default disposition: run_one does not inherit ours).
        let r = sh("echo x; echo after >&2", StdoutKind::ClosedPipe);
        assert_eq!(r.status, Status::Signal(13), "{r:?}");
    }

    #[test]
    fn test_environment_is_clean() {
        let r = sh("env", StdoutKind::Pipe);
        let text = String::from_utf8_lossy(&r.stdout.0).into_owned();
        assert!(!text.contains("CARGO"), "{text}");
    }
}
