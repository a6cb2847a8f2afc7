//! A blocking client of the daemon protocol (used by `jool-sim ctl`, our
//! own client's daemon transport, benchmarks and tests).
//!
//! A reply usually arrives within microseconds of the request: the
//! client polls for up to [`Client::SPIN`] (adaptive, see `spin`) before it
//! sleeps in `recv`, so that a round trip costs no thread wake-up on
//! either side when both are running.

use std::{
    io,
    os::fd::{AsRawFd, OwnedFd},
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use nix::sys::socket::{
    self, recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockType,
    UnixAddr,
};

use super::{
    packet::{parse_result, RESULT_LEN},
    spin::Spinner,
    MAX_PACKET,
};
use crate::kernel::EPERM;

/// A connection to a daemon.
#[derive(Debug)]
pub struct Client {
    fd: OwnedFd,
    /// The largest spin budget.
    spin_max: Duration,
    /// The spin budget, in nanoseconds (see `spin`).
    spin_ns: AtomicU64,
    /// Where packets are read (empty until the first).
    buf: Mutex<Vec<u8>>,
}

impl Client {
    /// How long a read polls before it blocks.
    pub const SPIN: Duration = Duration::from_micros(50);

    /// Polls for up to `max` (zero: never) before sleeping in `recv`.
    pub fn with_spin(mut self, max: Duration) -> Self {
        self.spin_max = max;
        self.spin_ns = AtomicU64::new(max.as_nanos() as u64);
        self
    }

    /// Connects to a daemon.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let fd = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        socket::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        let spin_ns = AtomicU64::new(Self::SPIN.as_nanos() as u64);
        Ok(Self {
            fd,
            spin_max: Self::SPIN,
            spin_ns,
            buf: Mutex::new(Vec::new()),
        })
    }

    /// Sends one command and reads its result: `(errno, value)`.
    pub fn command(&self, cmd: u8, body: &[u8]) -> io::Result<(i32, u32)> {
        let mut p = Vec::with_capacity(body.len() + 1);
        p.push(cmd);
        p.extend_from_slice(body);
        self.request(&p)
    }

    /// Sends one raw packet (any bytes, even none) and reads the result.
    pub fn request(&self, packet: &[u8]) -> io::Result<(i32, u32)> {
        self.send(packet)?;
        let mut r = [0u8; RESULT_LEN + 1];
        let n = self.recv_spin(&mut r, MsgFlags::empty(), true)?;
        if n == 0 {
            return Err(closed());
        }
        r.get(..n).and_then(parse_result).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "bad result packet from jool-sim",
            )
        })
    }

    /// Sends one raw packet.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        send(self.fd.as_raw_fd(), packet, MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// Receives the next packet; with `wait` false, fails with
    /// `WouldBlock` when none is queued. Packets longer than
    /// [`MAX_PACKET`] are an error, and so is the end of the connection.
    pub fn recv(&self, wait: bool) -> io::Result<Vec<u8>> {
        // Into the connection's buffer of MAX_PACKET bytes (allocated at
        // the first read; its pages are touched only as packets fill
        // them): one system call per packet.
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        if buf.is_empty() {
            buf.resize(MAX_PACKET, 0);
        }
        let n = self.recv_spin(&mut buf, MsgFlags::empty(), wait)?;
        if n == 0 {
            return Err(closed());
        }
        if n > buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a {n}-byte packet"),
            ));
        }
        Ok(buf[..n].to_vec())
    }

    /// `recv(MSG_TRUNC | flags)` into `buf`: polls while the spin budget
    /// lasts, then blocks (when `wait`).
    fn recv_spin(
        &self,
        buf: &mut [u8],
        flags: MsgFlags,
        wait: bool,
    ) -> io::Result<usize> {
        let fd = self.fd.as_raw_fd();
        let flags = flags | MsgFlags::MSG_TRUNC;
        let nowait = flags | MsgFlags::MSG_DONTWAIT;
        let budget = self.spin_ns.load(Ordering::Relaxed);
        let mut spinner =
            Spinner::resume(self.spin_max, Duration::from_nanos(budget));
        let found = spinner.spin(|| match recv(fd, buf, nowait) {
            Ok(n) => Ok(Some(n)),
            Err(nix::Error::EAGAIN | nix::Error::EINTR) => Ok(None),
            Err(e) => Err(e.into()),
        });
        let r = match found {
            Ok(Some(n)) => Ok(n),
            Err(e) => Err(e),
            Ok(None) if !wait => match recv(fd, buf, nowait) {
                Ok(n) => Ok(n),
                Err(e) => Err(e.into()),
            },
            Ok(None) => {
                let start = Instant::now();
                let r = loop {
                    match recv(fd, buf, flags) {
                        Err(nix::Error::EINTR) => {}
                        r => break r,
                    }
                };
                spinner.slept(start.elapsed());
                r.map_err(Into::into)
            }
        };
        let budget = spinner.budget().as_nanos() as u64;
        self.spin_ns.store(budget, Ordering::Relaxed);
        r
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

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "jool-sim closed the connection",
    )
}
