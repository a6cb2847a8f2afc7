//! Where an invocation's kernel is: the [`Connector`] a caller injects
//! (the binary: from the options and the environment; the suites: their
//! simulated kernel; a replay: one transport), opened as sockets when the
//! operation needs them.
//!
//! From the options: `--sim` builds an in-process kernel with
//! [`jool_sim::setup`]; without it, `JOOL_SIM_SOCKET` names a `jool-sim`
//! daemon; else a real `NETLINK_GENERIC` socket. `--sim` and
//! `JOOL_SIM_SOCKET` together are refused: one simulates a kernel in this
//! process, the other names a daemon's, and neither should win silently.

use std::{fmt, io, path::PathBuf};

use jool_sim::{
    identity::Identity,
    kernel::{Caller, Kernel},
    setup::{self, InstanceSpec, Modules, Setup, SetupError},
    versions::Profile,
};

use crate::{
    compat::detect::{self, Detection, Source},
    transport::{self, InProcess, NetlinkSocket, Transport},
};

/// Where the kernel is, as the caller of [`super::run_with`] says.
pub enum Connector<'k> {
    /// Decided by the options and the environment (what the binary does).
    FromOptions,
    /// This simulated kernel, as this caller (the suites: state outlives
    /// the invocation).
    Kernel(&'k mut Kernel, Caller),
    /// This one transport (a replayed exchange): the first socket opened
    /// gets it, and the client release must be given.
    Transport(Box<dyn Transport + 'k>),
}

impl fmt::Debug for Connector<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FromOptions => "FromOptions",
            Self::Kernel(..) => "Kernel",
            Self::Transport(_) => "Transport",
        })
    }
}

/// The simulated kernel `--sim` builds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimOpts {
    /// `--kernel-version`.
    pub kernel_version: Option<String>,
    /// `--counters`.
    pub counters: Option<PathBuf>,
    /// `--no-module`.
    pub no_module: bool,
    /// `--no-instance`.
    pub no_instance: bool,
}

/// Why no socket could be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// `--sim` with `JOOL_SIM_SOCKET` set.
    SimAndSocket(PathBuf),
    /// `/proc/self` could not be read (netns, capabilities).
    Identity(io::Error),
    /// The simulated kernel could not be built (its counters file).
    Setup(SetupError),
    /// The real socket could not be opened.
    Socket(io::Error),
    /// The daemon at this path could not be reached.
    Daemon(PathBuf, io::Error),
    /// A one-shot transport was asked for a second socket.
    Used,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SimAndSocket(p) => write!(f, "--sim simulates a kernel in this process, but JOOL_SIM_SOCKET={} names a jool-sim daemon's; unset one", p.display()),
            Self::Identity(e) => write!(f, "cannot read /proc/self: {e}"),
            Self::Setup(e) => e.fmt(f),
            Self::Socket(e) => write!(f, "Could not open the socket to kernelspace: {e}"),
            Self::Daemon(p, e) => write!(f, "Could not connect to jool-sim at {}: {e}", p.display()),
            Self::Used => f.write_str("the replayed transport was already used"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// An opened [`Connector`].
pub(crate) enum Link<'k> {
    Netlink,
    Daemon(PathBuf),
    Sim(Box<Kernel>, Caller),
    Borrowed(&'k mut Kernel, Caller),
    Once(Option<Box<dyn Transport + 'k>>),
}

/// The release the `--sim` kernel runs: `--kernel-version`, else the
/// forced client release, else [`super::DEFAULT_CLIENT`].
pub(crate) fn sim_release(
    sim: &SimOpts,
    forced: Option<&'static Profile>,
) -> Result<&'static Profile, SetupError> {
    match (&sim.kernel_version, forced) {
        (Some(v), _) => setup::release(v),
        (None, Some(p)) => Ok(p),
        (None, None) => setup::release(super::DEFAULT_CLIENT),
    }
}

fn build_sim(
    sim: &SimOpts,
    release: &'static Profile,
) -> Result<Link<'static>, ConnectError> {
    let me = Identity::current().map_err(ConnectError::Identity)?;
    let mut s = Setup::new(release, me.netns);
    if sim.no_instance {
        s.instances = Vec::new();
    } else {
        s.instances = InstanceSpec::defaults();
    }
    if let Some(path) = &sim.counters {
        s.counters =
            Some(setup::read_counters(path).map_err(ConnectError::Setup)?);
    }
    if sim.no_module {
        s.modules = Modules::NONE;
    }
    let k = s.build().map_err(ConnectError::Setup)?;
    let caller = Caller {
        netns: me.netns,
        net_admin: me.net_admin(),
        port_id: std::process::id(),
        ext_ack: false,
    };
    Ok(Link::Sim(Box::new(k), caller))
}

impl<'k> Link<'k> {
    /// Opens `c`: `sim` is `Some` for `--sim` (with the kernel's release).
    pub(crate) fn new(
        c: Connector<'k>,
        sim: Option<(&SimOpts, &'static Profile)>,
    ) -> Result<Self, ConnectError> {
        let socket = std::env::var_os(detect::ENV_SOCKET).map(PathBuf::from);
        match (c, sim) {
            (Connector::FromOptions, Some(_)) if socket.is_some() => {
                Err(ConnectError::SimAndSocket(socket.unwrap_or_default()))
            }
            (Connector::FromOptions, Some((opts, release))) => {
                build_sim(opts, release)
            }
            (Connector::FromOptions, None) => {
                Ok(socket.map_or(Self::Netlink, Self::Daemon))
            }
            (Connector::Kernel(k, caller), _) => Ok(Self::Borrowed(k, caller)),
            (Connector::Transport(t), _) => Ok(Self::Once(Some(t))),
        }
    }

    /// A socket.
    pub(crate) fn open(
        &mut self,
    ) -> Result<Box<dyn Transport + '_>, ConnectError> {
        match self {
            Self::Netlink => NetlinkSocket::open()
                .map(|s| Box::new(s) as Box<dyn Transport>)
                .map_err(ConnectError::Socket),
            Self::Daemon(path) => transport::Daemon::connect(path)
                .map(|s| Box::new(s) as Box<dyn Transport>)
                .map_err(|e| ConnectError::Daemon(path.clone(), e)),
            Self::Sim(k, caller) => {
                Ok(Box::new(InProcess::new(&mut **k, *caller)))
            }
            Self::Borrowed(k, caller) => {
                Ok(Box::new(InProcess::new(&mut **k, *caller)))
            }
            Self::Once(t) => t.take().ok_or(ConnectError::Used),
        }
    }

    /// The kernel's release, as far as can be told without a request.
    pub(crate) fn detect(&self) -> Detection {
        match self {
            Self::Netlink | Self::Daemon(_) => detect::kernel_release(),
            Self::Sim(k, _) => Detection::Known(k.profile(), Source::Sim),
            Self::Borrowed(k, _) => Detection::Known(k.profile(), Source::Sim),
            Self::Once(_) => Detection::Absent,
        }
    }
}
