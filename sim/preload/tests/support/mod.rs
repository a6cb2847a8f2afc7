//! What the tests share: the daemon (the real `jool_sim::daemon`, in a
//! thread, with its command trace), the built library, and running a
//! program under the shim.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use jool_sim::daemon::{self, Running, Shared};
use jool_sim::identity::Identity;
use jool_sim::kernel::{Framework, Kernel, Xlator};
use jool_sim::supervise::PrivateDir;
use jool_sim::versions::Profile;

/// `jool-sim serve` in a thread of the test, on a socket in a private
/// folder; stops and removes both when dropped.
pub(crate) struct TestDaemon {
    shared: Arc<Shared>,
    path: PathBuf,
    // Dropped in this order: the daemon (and its socket), then the folder.
    _running: Running,
    _dir: PrivateDir,
}

impl TestDaemon {
    /// Serves `kernel`, tracing every command.
    pub(crate) fn start(kernel: Kernel) -> Self {
        let dir = PrivateDir::new("jool-sim-preload-test")
            .expect("a private folder");
        let path = dir.path().join("sock");
        let shared = Shared::new(kernel);
        shared.start_trace();
        let running = daemon::spawn(&path, Arc::clone(&shared))
            .expect("the daemon listens");
        Self { shared, path, _running: running, _dir: dir }
    }

    /// The socket's path (`JOOL_SIM_SOCKET`).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// One line per command received, in order (`Shared::start_trace`):
    /// `P`, `D`, `B <requested> <assigned>`, `S <len>`,
    /// `O <level> <name> <value>`.
    pub(crate) fn log(&self) -> Vec<String> {
        self.shared.trace()
    }
}

/// File name of the built shim.
const LIBRARY: &str = "libjool_sim_preload.so";

/// The built shim.
///
/// Cargo builds a package's library before its integration tests, even a
/// `cdylib` the tests cannot link: it sits next to the test executable
/// (`target/<profile>/deps/`) and is copied to `target/<profile>/`. If
/// neither exists (a test executable run by hand from elsewhere), it is
/// built with `cargo build -p jool-sim-preload`.
pub(crate) fn library() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let deps = exe.parent().expect("executable directory");
        let found = [deps.parent(), Some(deps)]
            .into_iter()
            .flatten()
            .map(|d| d.join(LIBRARY))
            .find(|p| p.is_file());
        found.unwrap_or_else(build_library)
    })
}

/// Builds the shim; returns its path.
fn build_library() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["build", "-p", "jool-sim-preload", "--message-format=short"])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "cargo build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
        });
    let path = target.join("debug").join(LIBRARY);
    assert!(path.is_file(), "{} missing after cargo build", path.display());
    path
}

/// Prints `message` where `cargo test` shows it even for a passing test
/// (its capture only takes `print!`/`eprint!`), so no skip goes unseen.
pub(crate) fn loud(message: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** {message}\n");
}

/// `program` found in the usual directories, or `None` after a loud SKIP
/// line naming what is missing and why it was wanted.
pub(crate) fn find_program(
    program: &str,
    wanted_for: &str,
) -> Option<PathBuf> {
    let dirs = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"];
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path_var)
        .chain(dirs.iter().map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file());
    if found.is_none() {
        loud(&format!(
            "SKIP {wanted_for}: `{program}` not found in PATH or {}",
            dirs.join(", ")
        ));
    }
    found
}

/// A command that runs `program` with the shim preloaded and
/// `JOOL_SIM_SOCKET` pointing at `daemon` (unset when `None`).
pub(crate) fn shimmed(program: &Path, daemon: Option<&Path>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("LD_PRELOAD", library())
        .env("LC_ALL", "C")
        .env_remove("JOOL_SIM_SOCKET");
    if let Some(socket) = daemon {
        cmd.env("JOOL_SIM_SOCKET", socket);
    }
    cmd
}

/// How long a client may take before the test kills it and fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// `cmd`'s output; panics if it cannot start or runs past [`TIMEOUT`]
/// (a client blocked for ever on a socket must fail the test, not hang
/// it).
pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child =
        cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(TIMEOUT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{cmd:?}: {e}")),
        Err(_) => {
            // SAFETY: plain arguments; `pid` is our unreaped child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{cmd:?} still running after {TIMEOUT:?}: killed");
        }
    }
}

/// A 4.1.9 kernel; with `instances`, a `default` instance of each
/// translator in the test's network namespace, where the clients it
/// starts are (as the captures' `siit/`, `nat64/`).
pub(crate) fn kernel_4_1_9(instances: bool) -> Kernel {
    let profile = Profile::get("4.1.9").expect("the 4.1.9 profile");
    let netns = Identity::current().expect("/proc/self").netns;
    let mut k = Kernel::new(profile);
    if instances {
        for x in [Xlator::Siit, Xlator::Nat64] {
            k.add_instance(netns, x, "default", Framework::Netfilter)
                .expect("add instance");
        }
    }
    k
}
