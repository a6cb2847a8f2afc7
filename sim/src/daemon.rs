//! `jool-sim serve`: the simulated kernel as a service on a Unix
//! `SOCK_SEQPACKET` socket, one connection per netlink socket, callers
//! identified by their real credentials (docs/daemon-protocol.md).
//!
//! One thread per connection; the kernel sits behind a mutex, held only
//! while a request is handled. Each connection's memory is bounded: one
//! receive buffer of [`MAX_PACKET`] bytes; larger packets close it.

use std::{
    collections::{BTreeSet, HashMap},
    io,
    os::fd::{AsRawFd, OwnedFd},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex, MutexGuard,
    },
    thread,
};

use nix::{
    poll::{poll, PollFd, PollFlags, PollTimeout},
    sys::socket::{
        self, accept, bind, getsockopt, listen, recv, send, socket, sockopt,
        AddressFamily, Backlog, MsgFlags, SockFlag, SockType, UnixAddr,
    },
};

use crate::{
    control,
    identity::Identity,
    kernel::{Caller, Kernel, EINVAL, EPERM},
};

/// Largest packet a client may send (1 MiB); larger ones close the
/// connection.
pub const MAX_PACKET: usize = 1 << 20;
/// `SOL_NETLINK`.
const SOL_NETLINK: i32 = 270;
/// `NETLINK_EXT_ACK`.
const NETLINK_EXT_ACK: i32 = 11;
/// First port id Linux hands out once a process's pid is taken.
const ROVER_START: u32 = (-4096i32) as u32;

/// State shared by all connections.
#[derive(Debug)]
pub struct Shared {
    kernel: Mutex<Kernel>,
    ports: Mutex<BTreeSet<u32>>,
    /// Data channels asked for (`'P'`) and, once connected (`'D'`), their
    /// descriptors, by token.
    channels: Mutex<HashMap<u32, Option<OwnedFd>>>,
    next_token: AtomicU32,
}

/// What the connection loop does after a packet.
enum Next {
    Continue,
    Handed,
}

/// A descriptor to leave in a connection whose socket moved elsewhere.
fn dup_placeholder() -> io::Result<OwnedFd> {
    Ok(std::fs::File::open("/dev/null")?.into())
}

impl Shared {
    /// Wraps a kernel.
    pub fn new(kernel: Kernel) -> Arc<Self> {
        Arc::new(Self {
            kernel: Mutex::new(kernel),
            ports: Mutex::new(BTreeSet::new()),
            channels: Mutex::new(HashMap::new()),
            next_token: AtomicU32::new(1),
        })
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<u32, Option<OwnedFd>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_channel(&self) -> u32 {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.channels().insert(token, None);
        token
    }

    /// The kernel, locked. A connection thread that panicked while
    /// holding it leaves the state as it was; it is used as is.
    pub fn kernel(&self) -> MutexGuard<'_, Kernel> {
        self.kernel.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ports(&self) -> MutexGuard<'_, BTreeSet<u32>> {
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `netlink_autobind`/`netlink_bind`: the requested port, or the
    /// peer's pid, or the next free id below -4096.
    fn assign_port(&self, requested: u32, pid: u32) -> Result<u32, i32> {
        let mut ports = self.ports();
        if requested != 0 {
            return if ports.insert(requested) {
                Ok(requested)
            } else {
                Err(98)
            };
        }
        if pid != 0 && ports.insert(pid) {
            return Ok(pid);
        }
        let mut id = ROVER_START;
        while !ports.insert(id) {
            id = id.wrapping_sub(1);
        }
        Ok(id)
    }

    fn release_port(&self, port: u32) {
        self.ports().remove(&port);
    }
}

/// A listening daemon.
#[derive(Debug)]
pub struct Daemon {
    listener: OwnedFd,
    path: PathBuf,
    shared: Arc<Shared>,
}

impl Daemon {
    /// Binds `path` (replacing a stale socket file) and listens.
    pub fn bind(path: &Path, shared: Arc<Shared>) -> io::Result<Self> {
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        let fd = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        // Anyone may open a netlink socket; the kernel decides per request.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            path,
            std::fs::Permissions::from_mode(0o666),
        )?;
        listen(&fd, Backlog::new(1024).unwrap_or(Backlog::MAXCONN))?;
        Ok(Self { listener: fd, path: path.to_owned(), shared })
    }

    /// The shared state (for control from the same process).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections until `stop` is set (checked every 100 ms),
    /// then removes the socket file. Connection threads finish on their
    /// own when their clients disconnect.
    pub fn serve(&self, stop: &AtomicBool) -> io::Result<()> {
        while !stop.load(Ordering::Relaxed) {
            let mut fds = [PollFd::new(self.listener_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let conn = match accept(&self.listener) {
                Ok(fd) => fd,
                Err(
                    nix::Error::EINTR
                    | nix::Error::ECONNABORTED
                    | nix::Error::EAGAIN,
                ) => continue,
                Err(e) => return Err(e.into()),
            };
            let shared = Arc::clone(&self.shared);
            let spawned = thread::Builder::new()
                .name("jool-sim-conn".into())
                .spawn(move || Connection::new(conn, shared).run());
            if let Err(e) = spawned {
                eprintln!("jool-sim: cannot start a connection thread: {e}");
            }
        }
        Ok(())
    }

    fn listener_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.listener.as_fd()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One client socket.
struct Connection {
    fd: OwnedFd,
    /// Where reply datagrams go when the client attached one.
    data: Option<OwnedFd>,
    /// The token of the data channel this connection asked for (`'P'`).
    token: Option<u32>,
    shared: Arc<Shared>,
    caller: Caller,
    pid: u32,
    bound: bool,
}

impl Connection {
    fn new(fd: OwnedFd, shared: Arc<Shared>) -> Self {
        let caller =
            Caller { netns: 0, net_admin: false, port_id: 0, ext_ack: false };
        Self {
            fd,
            data: None,
            token: None,
            shared,
            caller,
            pid: 0,
            bound: false,
        }
    }

    /// Receives one packet; returns its real length.
    fn recv_packet(&mut self, buf: &mut [u8]) -> nix::Result<usize> {
        recv(self.fd.as_raw_fd(), buf, MsgFlags::MSG_TRUNC)
    }

    /// The data channel, once the client attached it (`'P'` then `'D'`).
    fn data_channel(&mut self) -> Option<&OwnedFd> {
        if self.data.is_none() {
            if let Some(token) = self.token {
                self.data = self
                    .shared
                    .channels()
                    .get_mut(&token)
                    .and_then(Option::take);
            }
        }
        self.data.as_ref()
    }

    /// Identifies the peer, then serves packets until it disconnects.
    fn run(mut self) {
        let Ok(creds) = getsockopt(&self.fd, sockopt::PeerCredentials) else {
            return;
        };
        self.pid = creds.pid() as u32;
        let Ok(who) = Identity::of(&self.pid.to_string()) else { return };
        self.caller.netns = who.netns;
        self.caller.net_admin = who.net_admin();
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let n = match self.recv_packet(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            match self.packet(&buf[..n.min(MAX_PACKET)]) {
                _ if n > MAX_PACKET => break,
                Ok(Next::Continue) => {}
                // This connection became another's data channel.
                Ok(Next::Handed) => return,
                Err(_) => break,
            }
        }
        if let Some(token) = self.token {
            self.shared.channels().remove(&token);
        }
        if self.bound {
            self.shared.release_port(self.caller.port_id);
        }
    }

    fn result(&self, errno: i32, value: u32) -> io::Result<()> {
        let mut r = [0u8; 9];
        r[0] = b'R';
        r[1..5].copy_from_slice(&errno.to_le_bytes());
        r[5..9].copy_from_slice(&value.to_le_bytes());
        self.write(&r)
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        send(self.fd.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    fn bind(&mut self, requested: u32) -> Result<u32, i32> {
        if self.bound {
            return if requested == 0 || requested == self.caller.port_id {
                Ok(self.caller.port_id)
            } else {
                Err(EINVAL)
            };
        }
        let port = self.shared.assign_port(requested, self.pid)?;
        self.caller.port_id = port;
        self.bound = true;
        Ok(port)
    }

    fn packet(&mut self, p: &[u8]) -> io::Result<Next> {
        if let Some((b'D', token)) = p.split_first() {
            return self.attach(token);
        }
        self.command(p).map(|()| Next::Continue)
    }

    /// `'D'`: this connection becomes the data channel of the one that
    /// got `token` from `'P'`.
    fn attach(&mut self, token: &[u8]) -> io::Result<Next> {
        let Some(t) = token.get(..4) else {
            self.result(EINVAL, 0)?;
            return Ok(Next::Continue);
        };
        let t = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let mut channels = self.shared.channels();
        match channels.get_mut(&t) {
            Some(slot @ None) => {
                self.result(0, 0)?;
                let fd = std::mem::replace(&mut self.fd, dup_placeholder()?);
                *slot = Some(fd);
                Ok(Next::Handed)
            }
            _ => {
                drop(channels);
                self.result(EINVAL, 0)?;
                Ok(Next::Continue)
            }
        }
    }

    fn command(&mut self, p: &[u8]) -> io::Result<()> {
        let (cmd, body) = match p.split_first() {
            Some((c, b)) => (*c, b),
            None => return self.result(EINVAL, 0),
        };
        match cmd {
            b'B' => {
                let Some(req) = body.get(..4) else {
                    return self.result(EINVAL, 0);
                };
                let req = u32::from_le_bytes([req[0], req[1], req[2], req[3]]);
                match self.bind(req) {
                    Ok(port) => self.result(0, port),
                    Err(e) => self.result(e, 0),
                }
            }
            b'S' => {
                if let Err(e) = self.bind(0) {
                    return self.result(e, 0);
                }
                let sent = self.shared.kernel().sendmsg(&self.caller, body);
                match sent {
                    Err(e) => self.result(e, 0),
                    Ok(replies) => match self.data_channel() {
                        Some(data) => {
                            for r in &replies {
                                send(
                                    data.as_raw_fd(),
                                    r,
                                    MsgFlags::MSG_NOSIGNAL,
                                )?;
                            }
                            self.result(0, replies.len() as u32)
                        }
                        None => {
                            self.result(0, replies.len() as u32)?;
                            replies.iter().try_for_each(|r| self.write(r))
                        }
                    },
                }
            }
            b'P' => {
                let token = self.shared.new_channel();
                self.token = Some(token);
                self.result(0, token)
            }
            b'O' => {
                let Some(v) = body.get(..12) else {
                    return self.result(EINVAL, 0);
                };
                let word = |i: usize| {
                    i32::from_le_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]])
                };
                if (word(0), word(4)) == (SOL_NETLINK, NETLINK_EXT_ACK) {
                    self.caller.ext_ack = word(8) != 0;
                }
                self.result(0, 0)
            }
            b'C' => {
                let reply = control::handle(&self.shared, &self.caller, body);
                match reply {
                    Err(control::Denied) => self.result(EPERM, 0),
                    Ok(json) => {
                        self.result(0, 0)?;
                        self.write(json.as_bytes())
                    }
                }
            }
            _ => self.result(EINVAL, 0),
        }
    }
}

/// A blocking client of the daemon protocol (used by `jool-sim ctl`, our
/// own client's daemon transport, and tests).
#[derive(Debug)]
pub struct Client {
    fd: OwnedFd,
}

impl Client {
    /// Connects to a daemon.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let fd = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        socket::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        Ok(Self { fd })
    }

    /// Sends one command and reads its result: `(errno, value)`.
    pub fn command(&self, cmd: u8, body: &[u8]) -> io::Result<(i32, u32)> {
        let mut p = Vec::with_capacity(body.len() + 1);
        p.push(cmd);
        p.extend_from_slice(body);
        send(self.fd.as_raw_fd(), &p, MsgFlags::MSG_NOSIGNAL)?;
        let mut r = [0u8; 16];
        let n = recv(self.fd.as_raw_fd(), &mut r, MsgFlags::empty())?;
        if n != 9 || r[0] != b'R' {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad result packet from jool-sim",
            ));
        }
        let errno = i32::from_le_bytes([r[1], r[2], r[3], r[4]]);
        Ok((errno, u32::from_le_bytes([r[5], r[6], r[7], r[8]])))
    }

    /// Receives the next packet; with `wait` false, fails with
    /// `WouldBlock` when none is queued. Packets longer than
    /// [`MAX_PACKET`] are an error.
    pub fn recv(&self, wait: bool) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 64 * 1024];
        let flags = if wait {
            MsgFlags::MSG_TRUNC
        } else {
            MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT
        };
        let n = recv(self.fd.as_raw_fd(), &mut buf, flags)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "jool-sim closed the connection",
            ));
        }
        if n > buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a {n}-byte packet"),
            ));
        }
        buf.truncate(n);
        Ok(buf)
    }

    /// A control request (JSON in, JSON out).
    pub fn control(&self, request: &str) -> io::Result<String> {
        match self.command(b'C', request.as_bytes())? {
            (0, _) => {
                let answer = self.recv(true)?;
                Ok(String::from_utf8_lossy(&answer).into_owned())
            }
            (EPERM, _) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "jool-sim control needs CAP_NET_ADMIN",
            )),
            (e, _) => Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// Sets `stop` on SIGTERM or SIGINT.
pub fn stop_on_signals(stop: &Arc<AtomicBool>) -> io::Result<()> {
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(stop))?;
    }
    Ok(())
}

/// Runs a daemon on `path` in a background thread until the returned
/// guard is dropped (for `jool-sim exec` and tests).
pub fn spawn(path: &Path, shared: Arc<Shared>) -> io::Result<Running> {
    let daemon = Daemon::bind(path, shared)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = thread::spawn(move || {
        let r = daemon.serve(&flag);
        drop(daemon);
        r
    });
    Ok(Running { stop, handle: Some(handle) })
}

/// A daemon serving in a background thread.
#[derive(Debug)]
pub struct Running {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<io::Result<()>>>,
}

impl Running {
    /// Stops accepting, removes the socket, and returns the accept loop's
    /// result.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
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
