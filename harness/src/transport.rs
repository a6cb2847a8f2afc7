//! How the client reaches a kernel: one trait, three backends.
//!
//! - [`NetlinkSocket`]: a real `NETLINK_GENERIC` socket (neli), the
//!   default of the CLI.
//! - [`InProcess`]: the simulated kernel of `jool-sim`, in this process.
//! - the daemon transport (`jool-sim serve`) plugs in the same way.

use std::{
    borrow::BorrowMut,
    collections::VecDeque,
    io::{self, ErrorKind},
};

use jool_sim::kernel::{Caller, Kernel};
use neli::{
    consts::socket::{Msg, NlFamily},
    socket::NlSocket,
    utils::Groups,
};

/// Largest datagram a transport returns; longer ones are an error.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// A netlink socket, as the client uses it: send a datagram, receive the
/// next one.
pub trait Transport {
    /// Sends one datagram.
    fn send(&mut self, datagram: &[u8]) -> io::Result<()>;

    /// Receives the next datagram. Generic netlink answers inside
    /// `sendmsg()`, so a transport does not wait for replies that were
    /// never queued: it fails with [`ErrorKind::WouldBlock`] instead.
    fn recv(&mut self) -> io::Result<Vec<u8>>;

    /// The socket's port id (`nlmsg_pid` of requests).
    fn port_id(&self) -> u32;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        (**self).send(datagram)
    }

    fn recv(&mut self) -> io::Result<Vec<u8>> {
        (**self).recv()
    }

    fn port_id(&self) -> u32 {
        (**self).port_id()
    }
}

/// The simulated kernel, called directly.
#[derive(Debug)]
pub struct InProcess<K: BorrowMut<Kernel>> {
    kernel: K,
    caller: Caller,
    queue: VecDeque<Vec<u8>>,
}

impl<K: BorrowMut<Kernel>> InProcess<K> {
    /// A socket of `caller` on `kernel`.
    pub fn new(kernel: K, caller: Caller) -> Self {
        Self { kernel, caller, queue: VecDeque::new() }
    }

    /// The kernel behind the socket.
    pub fn kernel(&mut self) -> &mut Kernel {
        self.kernel.borrow_mut()
    }

    /// Gives the kernel back.
    pub fn into_kernel(self) -> K {
        self.kernel
    }
}

impl<K: BorrowMut<Kernel>> Transport for InProcess<K> {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        let replies = self
            .kernel
            .borrow_mut()
            .sendmsg(&self.caller, datagram)
            .map_err(io::Error::from_raw_os_error)?;
        self.queue.extend(replies);
        Ok(())
    }

    fn recv(&mut self) -> io::Result<Vec<u8>> {
        self.queue.pop_front().ok_or_else(|| {
            io::Error::new(ErrorKind::WouldBlock, "the kernel queued no reply")
        })
    }

    fn port_id(&self) -> u32 {
        self.caller.port_id
    }
}

/// A connection to a `jool-sim serve` daemon (docs/daemon-protocol.md):
/// one netlink socket of this process, identified by its credentials.
#[derive(Debug)]
pub struct Daemon {
    client: jool_sim::daemon::Client,
    port_id: u32,
    /// Reply datagrams announced by the last result and not read yet.
    pending: u32,
}

impl Daemon {
    /// Connects to the daemon at `path` and binds a port id.
    pub fn connect(path: &std::path::Path) -> io::Result<Self> {
        let client = jool_sim::daemon::Client::connect(path)?;
        match client.command(b'B', &0u32.to_le_bytes())? {
            (0, port_id) => Ok(Self { client, port_id, pending: 0 }),
            (e, _) => Err(io::Error::from_raw_os_error(e)),
        }
    }
}

impl Transport for Daemon {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        // Replies not read from an earlier request are dropped, as a
        // fresh request would not see them either.
        while self.pending > 0 {
            self.pending -= 1;
            self.client.recv(true)?;
        }
        match self.client.command(b'S', datagram)? {
            (0, n) => {
                self.pending = n;
                Ok(())
            }
            (e, _) => Err(io::Error::from_raw_os_error(e)),
        }
    }

    fn recv(&mut self) -> io::Result<Vec<u8>> {
        if self.pending == 0 {
            return Err(io::Error::new(
                ErrorKind::WouldBlock,
                "the kernel queued no reply",
            ));
        }
        self.pending -= 1;
        self.client.recv(true)
    }

    fn port_id(&self) -> u32 {
        self.port_id
    }
}

/// A real `NETLINK_GENERIC` socket.
pub struct NetlinkSocket {
    socket: NlSocket,
    port_id: u32,
}

impl std::fmt::Debug for NetlinkSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetlinkSocket")
            .field("port_id", &self.port_id)
            .finish()
    }
}

impl NetlinkSocket {
    /// Opens and binds a socket (the kernel picks the port id).
    pub fn open() -> io::Result<Self> {
        let socket =
            NlSocket::connect(NlFamily::Generic, None, Groups::empty())?;
        let port_id = socket.pid()?;
        // Replies are queued during sendmsg(); never block for more.
        socket.nonblock()?;
        Ok(Self { socket, port_id })
    }
}

impl Transport for NetlinkSocket {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        self.socket.send(datagram, Msg::empty()).map(drop)
    }

    fn recv(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let (n, _) = self.socket.recv(&mut buf[..], Msg::TRUNC)?;
        if n > MAX_DATAGRAM {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!("a {n}-byte datagram exceeds the {MAX_DATAGRAM}-byte limit"),
            ));
        }
        buf.truncate(n);
        Ok(buf)
    }

    fn port_id(&self) -> u32 {
        self.port_id
    }
}

/// What one datagram sent from a fresh socket got back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The port id the kernel gave the socket (0 if it never got one).
    pub port_id: u32,
    /// `Err(errno)` when opening the socket or `sendmsg()` failed.
    pub sent: Result<(), i32>,
    /// Reply datagrams, in order (each cut at [`MAX_DATAGRAM`]; its
    /// `nlmsg_len` tells).
    pub replies: Vec<Vec<u8>>,
    /// errno of a `recv()` that failed other than with `EAGAIN`.
    pub recv_error: Option<i32>,
}

impl Default for Exchange {
    fn default() -> Self {
        Self {
            port_id: 0,
            sent: Ok(()),
            replies: Vec::new(),
            recv_error: None,
        }
    }
}

/// Most reply datagrams [`exchange_once`] reads.
pub const MAX_REPLIES: usize = 512;

/// Sends `datagram` from a fresh `NETLINK_GENERIC` socket of this process
/// (`NETLINK_EXT_ACK` set if `ext_ack`) and reads every reply it queued,
/// then closes the socket. Generic netlink runs the family's handler
/// inside `sendmsg()` (and a dump continues inside each `recvmsg()`), so
/// replies are read until `EAGAIN`, never waited for.
pub fn exchange_once(datagram: &[u8], ext_ack: bool) -> Exchange {
    let errno = |e: &io::Error| e.raw_os_error().unwrap_or(-1);
    let failed =
        |e: &io::Error| Exchange { sent: Err(errno(e)), ..Default::default() };
    let sock =
        match NlSocket::connect(NlFamily::Generic, None, Groups::empty()) {
            Ok(s) => s,
            Err(e) => return failed(&e),
        };
    if ext_ack {
        if let Err(e) = sock.enable_ext_ack(true) {
            return failed(&e);
        }
    }
    let mut ex =
        Exchange { port_id: sock.pid().unwrap_or(0), ..Default::default() };
    if let Err(e) = sock.send(datagram, Msg::DONTWAIT) {
        ex.sent = Err(errno(&e));
        return ex;
    }
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while ex.replies.len() < MAX_REPLIES {
        match sock.recv(&mut buf[..], Msg::TRUNC | Msg::DONTWAIT) {
            Ok((n, _)) => ex.replies.push(buf[..n.min(MAX_DATAGRAM)].to_vec()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                ex.recv_error = Some(errno(&e));
                break;
            }
        }
    }
    ex
}

#[cfg(test)]
mod test {
    use super::*;
    use jool_sim::{kernel::INIT_NETNS, versions::Profile};

    /// This host has no Jool, but nlctrl answers for the "nlctrl" family
    /// itself on any kernel: a real round trip.
    #[test]
    fn test_exchange_once_on_the_real_kernel() {
        let req = jool_sim::requests::get_family("nlctrl", 1);
        let ex = exchange_once(&req, true);
        assert_eq!(ex.sent, Ok(()));
        assert_ne!(ex.port_id, 0);
        let f = jool_sim::wire::ctrl::Family::find(&ex.replies[0]).unwrap();
        assert_eq!((f.id, f.name.as_str()), (0x10, "nlctrl"));
        // A datagram too short for a header: nothing, not even an ack.
        let ex = exchange_once(&[0; 12], false);
        assert_eq!((ex.sent, ex.replies.len()), (Ok(()), 0));
    }

    #[test]
    fn test_in_process_queues_replies() {
        let kernel = Kernel::new(Profile::get("4.1.9").unwrap());
        let mut t = InProcess::new(kernel, Caller::root(INIT_NETNS));
        // A GETFAMILY "Jool" request.
        let req = [
            0x20, 0, 0, 0, 0x10, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0,
            0, // nlmsghdr
            3, 1, 0, 0, // genl: GETFAMILY v1
            9, 0, 2, 0, b'J', b'o', b'o', b'l', 0, 0, 0,
            0, // FAMILY_NAME
        ];
        t.send(&req).unwrap();
        assert_eq!(t.recv().unwrap().len(), 696);
        assert_eq!(t.recv().unwrap_err().kind(), ErrorKind::WouldBlock);
        assert_eq!(t.send(&[]).unwrap_err().raw_os_error(), Some(61));
    }
}
