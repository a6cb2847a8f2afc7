//! A small daemon speaking `docs/daemon-protocol.md` over a
//! [`Kernel`], for the shim's tests (the real one is `jool-sim serve`).
//!
//! Every peer is root in the initial netns. Port ids follow the kernel:
//! a requested id if free (`EADDRINUSE` if not), else the peer's pid for
//! its first socket, else ids counting down from -4096. A connection that
//! asked for a data channel (`'P'`) gets its replies there, queued before
//! the result of the `'S'` that produced them; otherwise after it.

use std::collections::{BTreeSet, HashMap};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::{io, mem, ptr};

use jool_sim::kernel::{Caller, Kernel, INIT_NETNS};

/// Largest packet read (the protocol's 1 MiB, plus one to notice more).
const MAX_PACKET: usize = (1 << 20) + 1;

/// What the daemon shares between connections.
struct Shared {
    kernel: Mutex<Kernel>,
    ports: Mutex<BTreeSet<u32>>,
    /// Data channels by token (`None` until `'D'` attaches one).
    channels: Mutex<HashMap<u32, Option<OwnedFd>>>,
    next_token: AtomicU32,
    log: Mutex<Vec<String>>,
}

/// A running test daemon; stops and removes its socket when dropped.
pub(crate) struct TestDaemon {
    path: PathBuf,
    listener: OwnedFd,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl TestDaemon {
    /// Serves `kernel` on a fresh socket in the temporary directory.
    pub(crate) fn start(kernel: Kernel) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("jool-sim-preload-{}-{n}.sock", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&path);
        let listener = listen(&path).expect("listen on the test socket");
        let shared = Arc::new(Shared {
            kernel: Mutex::new(kernel),
            ports: Mutex::default(),
            channels: Mutex::default(),
            next_token: AtomicU32::new(1),
            log: Mutex::default(),
        });
        let fd = listener.as_raw_fd();
        let s = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || accept_loop(fd, &s));
        Self { path, listener, shared, acceptor: Some(acceptor) }
    }

    /// The socket's path (`JOOL_SIM_SOCKET`).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// One line per command received, in order: `P`, `D`,
    /// `B <requested> <assigned>`, `S <len>`, `O <level> <name> <value>`.
    pub(crate) fn log(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().clone()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        // SAFETY: our listening socket; shutdown wakes the acceptor.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A listening `SOCK_SEQPACKET` socket at `path`.
fn listen(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let ty = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: plain arguments.
    let fd = unsafe { libc::socket(libc::AF_UNIX, ty, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain data; all-zero is valid.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len(), "socket path too long");
    for (d, &s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = s as libc::c_char;
    }
    let len = size_of::<libc::sockaddr_un>() as libc::socklen_t;
    let a = ptr::from_ref(&addr).cast::<libc::sockaddr>();
    // SAFETY: `a` is a valid sockaddr_un of `len` bytes.
    if unsafe { libc::bind(fd.as_raw_fd(), a, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain arguments.
    if unsafe { libc::listen(fd.as_raw_fd(), 64) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn accept_loop(listener: RawFd, shared: &Arc<Shared>) {
    let mut workers = Vec::new();
    loop {
        let flags = libc::SOCK_CLOEXEC;
        // SAFETY: no address wanted.
        let fd = unsafe {
            libc::accept4(listener, ptr::null_mut(), ptr::null_mut(), flags)
        };
        if fd < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
            {
                continue;
            }
            break; // Shut down.
        }
        // SAFETY: a new descriptor we own.
        let conn = unsafe { OwnedFd::from_raw_fd(fd) };
        let s = Arc::clone(shared);
        workers.push(std::thread::spawn(move || serve(conn, &s)));
    }
    // Connections end when their clients exit; do not wait for them.
    drop(workers);
}

/// The peer's pid (`SO_PEERCRED`).
fn peer_pid(fd: RawFd) -> u32 {
    // SAFETY: plain data; all-zero is valid.
    let mut cred: libc::ucred = unsafe { mem::zeroed() };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    let p = ptr::from_mut(&mut cred).cast();
    // SAFETY: `p` has room for `len` bytes.
    let r = unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, p, &mut len)
    };
    assert_eq!(r, 0, "SO_PEERCRED");
    cred.pid as u32
}

/// One connection: a netlink socket's control connection, or (if its
/// first packet is `'D'`) its data channel.
fn serve(conn: OwnedFd, shared: &Shared) {
    let fd = conn.as_raw_fd();
    let pid = peer_pid(fd);
    let mut caller = Caller { port_id: 0, ..Caller::root(INIT_NETNS) };
    let mut token = None;
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        let n =
            unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        let Ok(n) = usize::try_from(n) else {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
            {
                continue;
            }
            break;
        };
        if n == 0 || n == MAX_PACKET {
            break; // Closed, or over 1 MiB: close the connection.
        }
        if let (b'D', 5, None) = (buf[0], n, token) {
            let t = u32::from_le_bytes(buf[1..5].try_into().unwrap());
            shared.log.lock().unwrap().push("D".into());
            // Attached before the client can send on its control
            // connection (it waits for this result).
            let mut channels = shared.channels.lock().unwrap();
            put(fd, &result(0, 0));
            channels.insert(t, Some(conn));
            return;
        }
        if (buf[0], n) == (b'P', 1) {
            let t = shared.next_token.fetch_add(1, Ordering::Relaxed);
            shared.channels.lock().unwrap().insert(t, None);
            shared.log.lock().unwrap().push("P".into());
            token = Some(t);
            put(fd, &result(0, t));
            continue;
        }
        let (answer, replies) = command(&buf[..n], pid, &mut caller, shared);
        let mut channels = shared.channels.lock().unwrap();
        let data = token.and_then(|t| channels.get_mut(&t)?.as_ref());
        let ok = match data {
            Some(data) => {
                replies.iter().all(|r| put(data.as_raw_fd(), r))
                    && put(fd, &answer)
            }
            None => put(fd, &answer) && replies.iter().all(|r| put(fd, r)),
        };
        if !ok {
            break;
        }
    }
    if let Some(t) = token {
        shared.channels.lock().unwrap().remove(&t);
    }
    if caller.port_id != 0 {
        shared.ports.lock().unwrap().remove(&caller.port_id);
    }
}

/// A result packet.
fn result(errno: i32, value: u32) -> Vec<u8> {
    let mut out = vec![b'R'];
    out.extend_from_slice(&errno.to_le_bytes());
    out.extend_from_slice(&value.to_le_bytes());
    out
}

/// Handles one command; returns the result and the reply datagrams.
fn command(
    p: &[u8],
    pid: u32,
    caller: &mut Caller,
    shared: &Shared,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let le = |at: usize| u32::from_le_bytes(p[at..at + 4].try_into().unwrap());
    let (line, outcome) = match (p[0], p.len()) {
        (b'B', 5) => {
            let port = bind(le(1), pid, shared);
            if let Ok(port) = port {
                caller.port_id = port;
            }
            let assigned = port.unwrap_or(0) as i32;
            (
                format!("B {} {assigned}", le(1) as i32),
                port.map(|p| (p, vec![])),
            )
        }
        (b'S', len) => {
            let sent = shared.kernel.lock().unwrap().sendmsg(caller, &p[1..]);
            (format!("S {}", len - 1), sent.map(|r| (r.len() as u32, r)))
        }
        (b'O', 13) => {
            let (level, name, value) =
                (le(1) as i32, le(5) as i32, le(9) as i32);
            if (level, name) == (270, 11) {
                caller.ext_ack = value != 0;
            }
            (format!("O {level} {name} {value}"), Ok((0, vec![])))
        }
        (c, _) => (format!("? {c:#x}"), Err(libc::EINVAL)),
    };
    shared.log.lock().unwrap().push(line);
    match outcome {
        Ok((value, replies)) => (result(0, value), replies),
        Err(errno) => (result(errno, 0), vec![]),
    }
}

/// Assigns a port id.
fn bind(requested: u32, pid: u32, shared: &Shared) -> Result<u32, i32> {
    let mut ports = shared.ports.lock().unwrap();
    let port = if requested != 0 {
        if ports.contains(&requested) {
            return Err(libc::EADDRINUSE);
        }
        requested
    } else if !ports.contains(&pid) {
        pid
    } else {
        (4096..)
            .map(|n: i32| (-n) as u32)
            .find(|p| !ports.contains(p))
            .unwrap()
    };
    ports.insert(port);
    Ok(port)
}

/// Sends one packet; false if the client is gone.
fn put(fd: RawFd, packet: &[u8]) -> bool {
    let flags = libc::MSG_NOSIGNAL;
    // SAFETY: `packet` is valid for reads of its length.
    let n =
        unsafe { libc::send(fd, packet.as_ptr().cast(), packet.len(), flags) };
    n >= 0
}
