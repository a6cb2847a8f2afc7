//! `jool-stats`: a drop-in for `jool[_siit] [-i NAME] stats display ...`.
//!
//! One entry point, [`run_with`], with the kernel injected
//! ([`Connector`]): the binary decides from its options and environment
//! (real netlink, a `jool-sim` daemon, `--sim`); the suites pass their
//! simulated kernel; a replay passes a transport. The command line is
//! the real client's, release by release: getopt's global options
//! ([`options`]), the mode/operation tree ([`tree`]), argp in the
//! operation ([`argp`]), `-f` files ([`file`]); texts, exit statuses and
//! deaths by signal are its own (`fixtures/captures/cli` holds the
//! captures they are checked against). jool-stats' own options choose the
//! release, the format and the simulated kernel; see [`EXTRA_HELP`].

use std::{
    ffi::OsString,
    io::{self, Write},
    os::unix::ffi::OsStringExt,
};

use jool_sim::{kernel::iname_valid, versions::Profile};

pub mod argp;
mod connect;
mod display;
pub mod exit;
pub mod file;
mod fmtstream;
pub mod getopt;
pub mod labels;
pub mod options;
pub mod tree;

pub use connect::{ConnectError, Connector, SimOpts};
pub use exit::Outcome;
use labels::Labels;
use options::{Globals, Stop};
use tree::{Frontend, Walk};

/// The client release jool-stats emulates when nothing else says
/// (Debian bookworm's), and the release of a `--sim` kernel when neither
/// `--kernel-version` nor `--client-version` names one.
pub const DEFAULT_CLIENT: &str = "4.1.9";

/// `INAME_VALIDATE_ERRMSG`.
pub const INAME_ERROR: &str =
    "The instance name must be a null-terminated ascii string, 15 characters max.";

/// What `jool-stats --help` adds after the real client's help.
pub const EXTRA_HELP: &str = "
jool-stats
==========
jool-stats emulates the client of one Jool release, texts and exit
statuses included (-V prints its version): the --client-version's, else the
kernel module's own, else 4.1.9 (Debian bookworm's client). Its own options
come before the mode and are recognized only when spelled out whole:

  --client-version V    The client of release V (4.0.0 ... 4.2.0-rc3, main;
                        see `jool-harness versions list`), or `auto`, the
                        default: the kernel module's release
                        (/sys/module/jool*/version, JOOL_SIM_KERNEL_VERSION,
                        the JOOL_SIM_SOCKET daemon, --sim); when a loaded
                        module does not say, the newest table that fits its
                        reply, said on stderr. A V whose labels differ from
                        the kernel's gets a warning listing the mislabels
  --strict              Make that warning an error (exit status 65)
  --siit | --nat64      Translator type (default: from the program name)
  --format F            text (default, byte-identical to the real client),
                        json, or prometheus (as jool-exporter)
  --sim                 Use an in-process simulated kernel with a `default`
                        SIIT and NAT64 instance (pool6 64:ff9b::/96)
Only with --sim (they are errors without it):
  --kernel-version V    Release of the simulated kernel (default: the
                        --client-version, else 4.1.9)
  --counters FILE       Counters every simulated instance starts with: what
                        `stats display --csv --all` prints
  --no-module           Simulate a kernel without Jool loaded
  --no-instance         Simulate a kernel with no instance at all

Without --sim, jool-stats talks to the kernel over NETLINK_GENERIC, or to
the `jool-sim serve` daemon that JOOL_SIM_SOCKET names (--sim with
JOOL_SIM_SOCKET set is refused). It runs `stats display` (and `instance
add|remove`); other modes are refused with exit status 69. Exit statuses
are the real client's: 0, the kernel's errno (3: no such instance, 1:
permission), 253 (Jool not loaded), 234 (-EINVAL: the client's own errors),
64 (option errors), or death by SIGPIPE when the reader goes away.
";

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The real client's text/CSV.
    Text,
    /// `format::write_json`.
    Json,
    /// `format::write_prometheus`.
    Prometheus,
}

/// What a run needs besides its command line.
#[derive(Debug)]
pub struct Context<'k> {
    /// Where the kernel is.
    pub connector: Connector<'k>,
    /// The client release to emulate when `--client-version` is not
    /// given (`None`: `auto`).
    pub client: Option<&'static Profile>,
}

impl<'k> Context<'k> {
    /// What the binary uses: the options and the environment decide.
    pub fn from_options() -> Self {
        Self { connector: Connector::FromOptions, client: None }
    }

    fn labels(&self, g: &Globals) -> Labels {
        match (g.client_version, self.client) {
            (Some(labels::AUTO), _) | (None, None) => Labels::Auto,
            (Some(_), _) => g.forced().map_or(Labels::Auto, Labels::Forced),
            (None, Some(p)) => Labels::Forced(p),
        }
    }

    /// The release of `--sim`'s kernel, when there is one.
    fn sim_release(
        &self,
        g: &Globals,
    ) -> Result<Option<&'static Profile>, ConnectError> {
        if !g.sim || !matches!(self.connector, Connector::FromOptions) {
            return Ok(None);
        }
        let forced = match self.labels(g) {
            Labels::Forced(p) => Some(p),
            Labels::Auto => None,
        };
        connect::sim_release(&g.sim_opts, forced)
            .map(Some)
            .map_err(ConnectError::Setup)
    }

    /// The kernel's release, without asking it.
    fn detect(&self, g: &Globals) -> crate::compat::detect::Detection {
        use crate::compat::detect::{self, Detection, Source};
        match (&self.connector, self.sim_release(g)) {
            (Connector::FromOptions, Ok(Some(p))) => {
                Detection::Known(p, Source::Sim)
            }
            (Connector::FromOptions, _) => detect::kernel_release(),
            (Connector::Kernel(k, _), _) => {
                Detection::Known(k.profile(), Source::Sim)
            }
            (Connector::Transport(_), _) => Detection::Absent,
        }
    }

    /// Opens the connector (building `--sim`'s kernel).
    fn link(self, g: &Globals) -> Result<connect::Link<'k>, ConnectError> {
        let sim = self.sim_release(g)?;
        connect::Link::new(self.connector, sim.map(|p| (&g.sim_opts, p)))
    }
}

/// The client's `iname_validate(iname, true)`: `None` when the name is
/// not valid, else the name (`None` inside for the default). Userspace
/// `char` is signed on x86, so bytes of 128 and up are invalid too.
pub fn valid_iname(iname: Option<&[u8]>) -> Option<Option<&str>> {
    let Some(raw) = iname else { return Some(None) };
    let mut z = raw.to_vec();
    z.push(0);
    iname_valid(&z).then(|| std::str::from_utf8(raw).ok().map(Some)).flatten()
}

/// Writes `bytes`; a closed pipe is death by `SIGPIPE`, as for the real
/// client (other errors are ignored, as its `printf` ignores them).
pub(crate) fn write_or_die<W: Write>(
    w: &mut W,
    bytes: &[u8],
) -> Result<(), Outcome> {
    match w.write_all(bytes).and_then(|()| w.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            Err(Outcome::Signal(exit::SIGPIPE))
        }
        _ => Ok(()),
    }
}

fn printed<O: Write, E: Write>(
    out: &mut O,
    text: &[u8],
    err: &mut E,
    msg: &[u8],
) -> Outcome {
    let _ = err.write_all(msg);
    match write_or_die(out, text) {
        Err(o) => o,
        Ok(()) => Outcome::Exit(exit::SUCCESS),
    }
}

/// Runs one invocation: `args[0]` is the program name.
pub fn run_with<O: Write, E: Write>(
    args: &[Vec<u8>],
    ctx: Context<'_>,
    out: &mut O,
    err: &mut E,
) -> Outcome {
    let (g, stop) = options::parse(args);
    let fe = Frontend::of(labels::emulated(ctx.labels(&g), &ctx.detect(&g)));
    let prog = String::from_utf8_lossy(&g.program).into_owned();
    match stop {
        Stop::Help(complaint) => {
            let mut text = fe.help(&g.program, g.xlator);
            if g.own_name() {
                text.extend_from_slice(EXTRA_HELP.as_bytes());
            }
            printed(out, &text, err, &complaint)
        }
        Stop::Usage => printed(out, &fe.usage(&g.program), err, b""),
        Stop::Version => {
            printed(out, format!("{}\n", fe.version()).as_bytes(), err, b"")
        }
        Stop::File(file::Failure::Error { msg, status }) => {
            let _ = err.write_all(&[b"Error: ", &msg[..], b"\n"].concat());
            Outcome::Exit(status)
        }
        Stop::File(file::Failure::Crash(signal)) => Outcome::Signal(signal),
        Stop::Bad(why) => {
            let _ = writeln!(err, "{prog}: {why}");
            Outcome::Exit(exit::EX_USAGE)
        }
        Stop::Run(rest) => {
            let injected = !matches!(ctx.connector, Connector::FromOptions);
            if g.sim && injected {
                let _ = writeln!(err, "{prog}: --sim: this jool-stats runs on a kernel its caller gave it");
                return Outcome::Exit(exit::EX_USAGE);
            }
            if let Err(why) = options::check_sim_only(&g) {
                let _ = writeln!(err, "{prog}: {why}");
                return Outcome::Exit(exit::EX_USAGE);
            }
            match tree::walk(&fe.tree(g.xlator), &rest) {
                Walk::Failed(text) => {
                    let _ = err.write_all(&text);
                    Outcome::Exit(exit::NEG_EINVAL)
                }
                Walk::Handler(path, a) => {
                    dispatch(&g, fe, ctx, &path, &a, out, err)
                }
            }
        }
    }
}

fn dispatch<O: Write, E: Write>(
    g: &Globals,
    fe: Frontend,
    ctx: Context<'_>,
    path: &[&str],
    a: &[Vec<u8>],
    out: &mut O,
    err: &mut E,
) -> Outcome {
    match path {
        ["stats", "display"] => display::stats(g, fe, ctx, a, out, err),
        ["instance", op @ ("add" | "remove")] => {
            display::instance(g, fe, ctx, op, a, out, err)
        }
        _ => {
            let _ = writeln!(
                err,
                "{}: `{}` is not emulated; jool-stats runs `stats display`, `instance add` and `instance remove`.",
                String::from_utf8_lossy(&g.program),
                path.join(" ")
            );
            Outcome::Exit(exit::EX_UNAVAILABLE)
        }
    }
}

/// [`run_with`] deciding from the options, for UTF-8 arguments; returns
/// the shell's `$?` (128 + the signal for a death).
pub fn run<O: Write, E: Write>(
    args: &[String],
    out: &mut O,
    err: &mut E,
) -> u8 {
    let args: Vec<Vec<u8>> =
        args.iter().map(|a| a.as_bytes().to_vec()).collect();
    run_with(&args, Context::from_options(), out, err).shell_status()
}

/// The binary's `main`: real stdout/stderr, exit status, or death by the
/// signal the real client would die of.
pub fn main(
    args: impl IntoIterator<Item = OsString>,
) -> std::process::ExitCode {
    let args: Vec<Vec<u8>> =
        args.into_iter().map(OsString::into_vec).collect();
    let stdout = io::stdout();
    let stderr = io::stderr();
    let outcome = run_with(
        &args,
        Context::from_options(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    );
    match outcome {
        Outcome::Exit(code) => std::process::ExitCode::from(code),
        Outcome::Signal(signal) => {
            // Default disposition, then the signal: the process ends here.
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            std::process::ExitCode::from(outcome.shell_status())
        }
    }
}

#[cfg(test)]
mod test;
