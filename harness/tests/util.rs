//! Helpers shared by the integration tests.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The repository's fixtures folder.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A fresh path `NAME` in a folder of its own (made by mkdtemp, so no
/// other user can have prepared it; 0755, as some tests run programs as
/// uid 65534 on what is in it). The folder, with whatever was put there,
/// goes when this is dropped.
pub(crate) struct TempPath {
    path: PathBuf,
    dir: PathBuf,
}

impl Drop for TempPath {
    fn drop(&mut self) {
        // Made by mkdtemp (`host::shared_temp_dir`) in `temp_path`: ours.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl std::ops::Deref for TempPath {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for TempPath {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

/// A fresh [`TempPath`] named `name` (not created: a file or a folder may
/// be made there).
pub(crate) fn temp_path(name: &str) -> TempPath {
    let dir =
        jool_harness::host::shared_temp_dir("jool-harness-test", |_| Ok(()))
            .expect("a fresh folder");
    TempPath { path: dir.join(name), dir }
}

/// Writes `text` to a new temporary file; it goes when the result is
/// dropped.
pub(crate) fn temp_file(name: &str, text: &str) -> TempPath {
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
