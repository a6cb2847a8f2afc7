//! Helpers shared by the integration tests.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicUsize, Ordering},
        OnceLock,
    },
};

/// The repository's fixtures folder.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A fresh path, unique to this call, in this test process's own folder
/// (made by mkdtemp, so no other user can have prepared it; 0755, as some
/// tests run programs as uid 65534 on what is in it).
pub(crate) fn temp_path(name: &str) -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = BASE.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let template = std::env::temp_dir().join("jool-harness-test-XXXXXX");
        let dir = nix::unistd::mkdtemp(&template).expect("mkdtemp");
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755))
            .expect("chmod 0755");
        dir
    });
    let n = N.fetch_add(1, Ordering::Relaxed);
    base.join(format!("{n}-{name}"))
}

/// Writes `text` to a new temporary file and returns its path.
pub(crate) fn temp_file(name: &str, text: &str) -> PathBuf {
    let p = temp_path(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// What a command printed and returned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Output {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) code: i32,
}

/// Runs the jool-stats binary as `argv0` with `args`.
pub(crate) fn jool_stats(argv0: &str, args: &[String]) -> Output {
    use std::os::unix::process::CommandExt;
    let out = Command::new(env!("CARGO_BIN_EXE_jool-stats"))
        .arg0(argv0)
        .args(args)
        .env_remove("JOOL_SIM_SOCKET")
        .output()
        .expect("jool-stats runs");
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Runs jool-stats in this process (no fork), for bulk tests.
pub(crate) fn run_in_process(args: &[String]) -> Output {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = jool_harness::cli::run(args, &mut out, &mut err);
    Output {
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
        code: i32::from(code),
    }
}
