//! `jool-sim serve`: the simulated kernel as a service on a Unix
//! `SOCK_SEQPACKET` socket, one connection per netlink socket, callers
//! identified by their real credentials (docs/daemon-protocol.md).
//!
//! - `listen`: taking the socket path without removing anything that is
//!   not a dead socket, and never from a live daemon.
//! - `reactor`: the event loop (one thread, epoll), its limits and its
//!   idle timeout.
//! - `conn`: one connection's netlink state and output queue.
//! - `spin`: polling before sleeping, on both ends, while it pays.
//! - [`packet`]: the protocol's packets.
//! - [`Client`]: a blocking client.

use std::{
    fmt, io,
    io::Write,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    sync::Arc,
    thread,
    time::Duration,
};

mod client;
mod conn;
mod listen;
pub mod packet;
mod reactor;
mod spin;

pub use client::Client;
pub use reactor::{ENFILE, EUSERS};

pub use crate::shared::Shared;

/// Largest packet a client may send (1 MiB); larger ones close the
/// connection.
pub const MAX_PACKET: usize = 1 << 20;

/// What one daemon allows its callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections at once, in total (a netlink socket through the
    /// LD_PRELOAD shim is two).
    pub max_connections: usize,
    /// Connections at once per uid other than 0.
    pub max_per_uid: usize,
    /// The last connections of `max_connections` that only uid 0 gets.
    pub root_reserve: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Option<Duration>,
    /// How long the loop polls for more work before it sleeps.
    pub spin: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_per_uid: 1024,
            root_reserve: 64,
            idle_timeout: Some(Duration::from_secs(600)),
            spin: Duration::from_micros(50),
        }
    }
}

impl Limits {
    /// How often idle connections are looked for.
    fn sweep_interval(&self) -> Duration {
        let every =
            self.idle_timeout.map_or(Duration::from_secs(1), |t| t / 4);
        every.clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// Why a daemon could not start or serve.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// Another daemon answers on the path.
    Live(PathBuf),
    /// Something that is not a socket is on the path; it is left alone.
    NotASocket(PathBuf),
    /// Other processes kept changing the path while it was being taken.
    Contended(PathBuf),
    /// A system call failed.
    Io {
        /// What the daemon was doing.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Live(p) => write!(
                f,
                "a jool-sim daemon is already serving on {} (stop it first)",
                p.display()
            ),
            Self::NotASocket(p) => write!(
                f,
                "{} exists and is not a socket; not replacing it",
                p.display()
            ),
            Self::Contended(p) => {
                write!(f, "{} kept changing while being taken", p.display())
            }
            Self::Io { what, source } => write!(f, "cannot {what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A listening daemon.
#[derive(Debug)]
pub struct Daemon {
    listener: listen::Listener,
    shared: Arc<Shared>,
    limits: Limits,
    /// Written to stop [`Daemon::serve`].
    stop_write: Arc<UnixStream>,
    stop_read: UnixStream,
}

/// Stops a daemon's loop from another thread or a signal handler.
#[derive(Clone, Debug)]
pub struct StopHandle(Arc<UnixStream>);

impl StopHandle {
    /// Asks the loop to stop (it closes every connection and returns).
    pub fn stop(&self) {
        let _ = (&*self.0).write(&[1]);
    }

    /// Stops the loop on SIGTERM, SIGINT and SIGHUP.
    pub fn on_signals(&self) -> io::Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            let pipe = self.0.try_clone()?;
            signal_hook::low_level::pipe::register(sig, pipe)?;
        }
        Ok(())
    }
}

impl Daemon {
    /// Takes `path` (see `listen`: a live daemon or anything that is not
    /// a socket there is an error) and listens, with default [`Limits`].
    pub fn bind(path: &Path, shared: Arc<Shared>) -> Result<Self, Error> {
        let listener = listen::Listener::bind(path)?;
        let (read, write) = UnixStream::pair()
            .map_err(|source| Error::Io { what: "create a pipe", source })?;
        for s in [&read, &write] {
            s.set_nonblocking(true).map_err(|source| Error::Io {
                what: "create a pipe",
                source,
            })?;
        }
        Ok(Self {
            listener,
            shared,
            limits: Limits::default(),
            stop_write: Arc::new(write),
            stop_read: read,
        })
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The shared state (for control from the same process).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.listener.path
    }

    /// What stops [`Daemon::serve`].
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.stop_write))
    }

    /// Serves until stopped, then closes every connection. The socket
    /// file is removed when the daemon is dropped.
    pub fn serve(&self) -> io::Result<()> {
        let mut r = reactor::Reactor::new(
            &self.listener.fd,
            &self.stop_read,
            &self.shared,
            &self.limits,
        )?;
        r.run()
    }
}

/// Raises this process's soft limit on open files to what `limits` can
/// use (at most the hard limit): the usual soft limit, 1024, is below the
/// default connection limit.
pub fn raise_fd_limit(limits: &Limits) -> io::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let want = (limits.max_connections as u64).saturating_add(64).min(hard);
    if want > soft {
        setrlimit(Resource::RLIMIT_NOFILE, want, hard)?;
    }
    Ok(())
}

/// Runs a daemon on `path` in a background thread until the returned
/// guard is dropped (for `jool-sim exec` and tests).
pub fn spawn(path: &Path, shared: Arc<Shared>) -> Result<Running, Error> {
    spawn_with(path, shared, Limits::default())
}

/// [`spawn`] with the given limits.
pub fn spawn_with(
    path: &Path,
    shared: Arc<Shared>,
    limits: Limits,
) -> Result<Running, Error> {
    let daemon = Daemon::bind(path, shared)?.with_limits(limits);
    let stop = daemon.stop_handle();
    let handle = thread::Builder::new()
        .name("jool-sim-daemon".into())
        .spawn(move || daemon.serve())
        .map_err(|source| Error::Io { what: "start a thread", source })?;
    Ok(Running { stop, handle: Some(handle) })
}

/// A daemon serving in a background thread.
#[derive(Debug)]
pub struct Running {
    stop: StopHandle,
    handle: Option<thread::JoinHandle<io::Result<()>>>,
}

impl Running {
    /// Stops serving, closes every connection, removes the socket, and
    /// returns the loop's result.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.stop.stop();
        match self.handle.take().map(thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => {
                Err(io::Error::other("the daemon thread panicked"))
            }
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
