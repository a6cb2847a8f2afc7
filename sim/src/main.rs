//! `jool-sim`: the simulated kernel as a daemon (`serve`), around one
//! command (`exec`), and its control client (`ctl`).

use std::{
    ffi::OsString,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use jool_sim::{
    counters,
    daemon::{self, Daemon, Limits, Shared},
    identity::Identity,
    kernel::Kernel,
    setup::{self, InstanceSpec, Modules, Setup},
    supervise::{self, PrivateDir},
};
use serde_json::json;

/// A userspace simulator of Jool's kernel side (generic netlink "Jool").
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Environment: JOOL_SIM_SOCKET (ctl's default socket), JOOL_SIM_PRELOAD (path of libjool_sim_preload.so for exec)."
)]
struct Opts {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the simulated kernel on a Unix SOCK_SEQPACKET socket.
    Serve(ServeArgs),
    /// Run CMD against a private daemon, through the LD_PRELOAD shim.
    ///
    /// The socket is in a new folder (mkdtemp, search-only for others).
    /// SIGTERM, SIGINT and SIGHUP go to CMD; jool-sim waits for it, cleans
    /// up and exits as a shell would: CMD's status, 128+N if signal N
    /// killed it, 127 if it was not found, 126 if it cannot be executed.
    Exec(ExecArgs),
    /// Inspect or change a running daemon's state (needs CAP_NET_ADMIN).
    Ctl(CtlArgs),
}

/// What the simulated kernel looks like at start (a `jool_sim::setup`).
#[derive(Debug, Args)]
struct KernelArgs {
    /// Jool release the kernel runs (see `jool-harness versions list`).
    #[arg(long, default_value = "4.1.9")]
    kernel_version: String,
    /// Serve no "Jool" family (the module is not loaded).
    #[arg(long)]
    no_module: bool,
    /// Counters every instance starts with: what `stats display --csv
    /// --all` prints.
    #[arg(long, value_name = "FILE")]
    counters: Option<PathBuf>,
    /// Instances to create in the daemon's network namespace (repeatable).
    #[arg(long = "instance", value_name = "NAME:siit|nat64", default_values = ["default:siit", "default:nat64"])]
    instances: Vec<String>,
    /// Start with no instance at all (overrides --instance).
    #[arg(long, conflicts_with = "counters")]
    no_instance: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Socket path (a live daemon or anything but a dead socket there is
    /// an error; nothing is removed).
    #[arg(long)]
    socket: PathBuf,
    #[command(flatten)]
    kernel: KernelArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// What the daemon allows its callers.
#[derive(Debug, Args)]
struct LimitArgs {
    /// Connections at once, in total (a netlink socket through the shim
    /// is two); the last 64 are kept for root.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Connections at once per uid other than root.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_per_uid)]
    max_connections_per_uid: usize,
    /// Close a connection idle for SECONDS (0: never).
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    idle_timeout: f64,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        let idle = (self.idle_timeout > 0.0)
            .then(|| Duration::from_secs_f64(self.idle_timeout));
        Limits {
            max_connections: self.max_connections,
            max_per_uid: self.max_connections_per_uid,
            idle_timeout: idle,
            ..Limits::default()
        }
    }
}

#[derive(Debug, Args)]
struct ExecArgs {
    #[command(flatten)]
    kernel: KernelArgs,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
    cmd: Vec<OsString>,
}

#[derive(Debug, Args)]
struct CtlArgs {
    /// Socket path [default: $JOOL_SIM_SOCKET].
    #[arg(long)]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    what: CtlCmd,
}

#[derive(Debug, Subcommand)]
enum CtlCmd {
    /// Set, add to or reset an instance's counters.
    Counters(CountersArgs),
    /// List every instance of every namespace (JSON).
    Instances,
    /// Everything, counters included (JSON).
    Dump,
    /// The kernel's release (JSON).
    Version,
}

#[derive(Debug, Args)]
struct CountersArgs {
    /// set, add or reset.
    #[arg(value_parser = ["set", "add", "reset"])]
    action: String,
    /// Namespace by name (/run/netns/NAME) [default: the caller's].
    #[arg(long, conflicts_with = "pid")]
    netns: Option<String>,
    /// Namespace of process PID.
    #[arg(long)]
    pid: Option<u32>,
    /// Instance name.
    #[arg(short = 'i', long = "instance", default_value = "default")]
    instance: String,
    /// Translator of the instance.
    #[arg(long, default_value = "siit", value_parser = ["siit", "nat64"])]
    xlator: String,
    /// set, add: a counters file, or NAME=VALUE pairs (at least one);
    /// reset: the counter NAMEs to zero (none: every counter).
    values: Vec<String>,
}

/// Builds the kernel a `serve`/`exec` starts with, in the daemon's netns.
fn build_kernel(a: &KernelArgs) -> Result<Kernel> {
    let me = Identity::current().context("Failed to read /proc/self")?;
    let mut s = Setup::new(setup::release(&a.kernel_version)?, me.netns);
    s.instances = match a.no_instance {
        true => Vec::new(),
        false => a
            .instances
            .iter()
            .map(|i| InstanceSpec::parse(i))
            .collect::<Result<_, _>>()?,
    };
    if let Some(path) = &a.counters {
        s.counters = Some(setup::read_counters(path)?);
    }
    if a.no_module {
        s.modules = Modules::NONE;
    }
    Ok(s.build()?)
}

fn serve(a: ServeArgs) -> Result<ExitCode> {
    let k = build_kernel(&a.kernel)?;
    let limits = a.limits.limits();
    daemon::raise_fd_limit(&limits)
        .context("Failed to raise the open files limit")?;
    let d = Daemon::bind(&a.socket, Shared::new(k))
        .with_context(|| {
            format!("Failed to listen on {}", a.socket.display())
        })?
        .with_limits(limits);
    d.stop_handle()
        .on_signals()
        .context("Failed to install signal handlers")?;
    eprintln!(
        "jool-sim: serving Jool {} on {}",
        a.kernel.kernel_version,
        a.socket.display()
    );
    d.serve().context("Failed to serve")?;
    Ok(ExitCode::SUCCESS)
}

/// The shim: $JOOL_SIM_PRELOAD, or libjool_sim_preload.so beside us.
fn preload_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("JOOL_SIM_PRELOAD") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()
        .context("Failed to find the jool-sim executable")?;
    let dir = exe.parent().context("jool-sim has no parent folder")?;
    for cand in [
        dir.join("libjool_sim_preload.so"),
        dir.join("../libjool_sim_preload.so"),
    ] {
        if cand.exists() {
            return Ok(cand);
        }
    }
    bail!(
        "libjool_sim_preload.so not found beside {} (build it with `cargo build -p jool-sim-preload`, or set JOOL_SIM_PRELOAD)",
        exe.display()
    )
}

fn exec(a: ExecArgs) -> Result<ExitCode> {
    let preload = preload_path()?;
    let (program, args) = a.cmd.split_first().context("no command")?;
    let k = build_kernel(&a.kernel)?;
    // The open files limit is left as it is: the command inherits it.
    let limits = Limits::default();
    let dir = PrivateDir::new("jool-sim")
        .context("Failed to make a folder for the socket")?;
    let socket = dir.path().join("sock");
    // The command may drop privileges (setpriv) and the build may sit
    // under a folder only its owner reaches: a 0644 copy beside the
    // socket loads for anyone the folder (0711) lets through. A shim that
    // did not load would leave the client on the real kernel.
    let shim = dir.path().join("libjool_sim_preload.so");
    let served = copy_shim(&preload, &shim).and_then(|()| {
        daemon::spawn_with(&socket, Shared::new(k), limits).with_context(
            || format!("Failed to listen on {}", socket.display()),
        )
    });
    let running = match served {
        Ok(r) => r,
        Err(e) => {
            // Ours (copied above), if it got there.
            let _ = std::fs::remove_file(&shim);
            return Err(e);
        }
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("JOOL_SIM_SOCKET", &socket)
        .env("JOOL_SIM_KERNEL_VERSION", &a.kernel.kernel_version)
        .env("LD_PRELOAD", &shim);
    let status = supervise::run(&mut cmd);
    let stopped = running.stop();
    // Ours (copied above); the folder goes once it is empty.
    let _ = std::fs::remove_file(&shim);
    drop(dir);
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let code = e.shell_status().unwrap_or(exit::FAILURE);
            eprintln!("jool-sim: {e}");
            return Ok(ExitCode::from(code));
        }
    };
    stopped.context("The daemon failed")?;
    Ok(ExitCode::from(supervise::shell_status(status)))
}

/// `preload` copied to `to`, readable by everyone (0644).
fn copy_shim(preload: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(preload, to)
        .and_then(|_| {
            std::fs::set_permissions(to, PermissionsExt::from_mode(0o644))
        })
        .with_context(|| {
            format!("Failed to copy {} to {}", preload.display(), to.display())
        })
}

fn netns_of(a: &CountersArgs) -> Result<Option<u64>> {
    let path = match (&a.netns, a.pid) {
        (Some(name), _) => PathBuf::from(format!("/run/netns/{name}")),
        (None, Some(pid)) => PathBuf::from(format!("/proc/{pid}/ns/net")),
        (None, None) => return Ok(None),
    };
    let meta = std::fs::metadata(&path)
        .with_context(|| format!("Failed to find {}", path.display()))?;
    Ok(Some(meta.ino()))
}

/// NAME=VALUE pairs, or the rows of one counters file.
fn values_of(a: &CountersArgs) -> Result<Vec<(String, u64)>> {
    if let [file] = a.values.as_slice() {
        if !file.contains('=') {
            let f = std::fs::File::open(file)
                .with_context(|| format!("Failed to open {file}"))?;
            return Ok(counters::read(f)
                .with_context(|| file.clone())?
                .into_rows());
        }
    }
    let values: Vec<(String, u64)> = a
        .values
        .iter()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("expected NAME=VALUE, got {kv}"))?;
            Ok((
                k.to_owned(),
                v.parse().with_context(|| format!("bad value in {kv}"))?,
            ))
        })
        .collect::<Result<_>>()?;
    if values.is_empty() {
        bail!(
            "counters {} needs NAME=VALUE pairs or a counters file",
            a.action
        );
    }
    Ok(values)
}

/// The counters a reset names (none: all).
fn names_of(a: &CountersArgs) -> Result<Vec<String>> {
    a.values
        .iter()
        .map(|n| {
            if n.contains('=') {
                bail!(
                    "counters reset takes counter names, not NAME=VALUE ({n})"
                );
            }
            Ok(n.clone())
        })
        .collect()
}

fn ctl(a: CtlArgs) -> Result<ExitCode> {
    let Some(socket) = a
        .socket
        .or_else(|| std::env::var_os("JOOL_SIM_SOCKET").map(PathBuf::from))
    else {
        bail!("no --socket and no JOOL_SIM_SOCKET");
    };
    let request = match &a.what {
        CtlCmd::Instances => json!({ "op": "instances" }),
        CtlCmd::Dump => json!({ "op": "dump" }),
        CtlCmd::Version => json!({ "op": "version" }),
        CtlCmd::Counters(c) => {
            let mut r = json!({
                "op": "counters", "action": c.action, "netns": netns_of(c)?,
                "xlator": c.xlator, "instance": c.instance,
            });
            if c.action == "reset" {
                r["names"] = json!(names_of(c)?);
            } else {
                r["values"] = json!(values_of(c)?);
            }
            r
        }
    };
    let client = daemon::Client::connect(&socket).with_context(|| {
        format!("Failed to connect to {}", socket.display())
    })?;
    let answer = client
        .control(&request.to_string())
        .context("Control request failed")?;
    let v: serde_json::Value = serde_json::from_str(&answer)
        .context("The daemon answered invalid JSON")?;
    if let Some(e) = v.get("error") {
        bail!("{}", e.as_str().unwrap_or_default());
    }
    println!("{}", serde_json::to_string_pretty(&v["ok"])?);
    Ok(ExitCode::SUCCESS)
}

/// Exit statuses of `jool-sim` itself (`exec` exits with its command's,
/// as a shell: see `jool_sim::supervise`).
mod exit {
    /// Any error (as clap's usage errors).
    pub(crate) const FAILURE: u8 = 2;
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    let r = match opts.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::Exec(a) => exec(a),
        Cmd::Ctl(a) => ctl(a),
    };
    r.unwrap_or_else(|e| {
        eprintln!("jool-sim: {e:#}");
        ExitCode::from(exit::FAILURE)
    })
}
