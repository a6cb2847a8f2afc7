//! `jool-sim`: the simulated kernel as a daemon (`serve`), around one
//! command (`exec`), and its control client (`ctl`).

use std::{
    ffi::OsString,
    os::unix::{fs::MetadataExt, process::ExitStatusExt},
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    sync::{atomic::AtomicBool, Arc},
};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use jool_sim::{
    counters,
    daemon::{self, Daemon, Shared},
    identity::Identity,
    kernel::Kernel,
    setup::{self, InstanceSpec, Modules, Setup},
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
    /// Socket path.
    #[arg(long)]
    socket: PathBuf,
    #[command(flatten)]
    kernel: KernelArgs,
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
    /// A counters file, or NAME=VALUE pairs.
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
    let d = Daemon::bind(&a.socket, Shared::new(k)).with_context(|| {
        format!("Failed to listen on {}", a.socket.display())
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    daemon::stop_on_signals(&stop)
        .context("Failed to install signal handlers")?;
    eprintln!(
        "jool-sim: serving Jool {} on {}",
        a.kernel.kernel_version,
        a.socket.display()
    );
    d.serve(&stop).context("Failed to accept connections")?;
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
    let k = build_kernel(&a.kernel)?;
    let dir =
        std::env::temp_dir().join(format!("jool-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("Failed to create {}", dir.display()))?;
    let socket = dir.join("sock");
    let running =
        daemon::spawn(&socket, Shared::new(k)).with_context(|| {
            format!("Failed to listen on {}", socket.display())
        })?;
    let (program, args) = a.cmd.split_first().context("no command")?;
    let status = Command::new(program)
        .args(args)
        .env("JOOL_SIM_SOCKET", &socket)
        .env("JOOL_SIM_KERNEL_VERSION", &a.kernel.kernel_version)
        .env("LD_PRELOAD", &preload)
        .status()
        .with_context(|| {
            format!("Failed to run {}", Path::new(program).display())
        });
    let stopped = running.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let status = status?;
    stopped.context("The daemon failed")?;
    let code =
        status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(ExitCode::from(code as u8))
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
    a.values
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
            let values =
                if c.action == "reset" { vec![] } else { values_of(c)? };
            json!({
                "op": "counters", "action": c.action, "netns": netns_of(c)?,
                "xlator": c.xlator, "instance": c.instance, "values": values,
            })
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

fn main() -> ExitCode {
    let opts = Opts::parse();
    let r = match opts.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::Exec(a) => exec(a),
        Cmd::Ctl(a) => ctl(a),
    };
    r.unwrap_or_else(|e| {
        eprintln!("jool-sim: {e:#}");
        ExitCode::from(2)
    })
}
