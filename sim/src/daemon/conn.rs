//! One client connection of the daemon: its caller identity, its netlink
//! state (port id, extended acks, data channel) and its output queue.
//!
//! Sends never block. What a socket cannot take now waits in the queue,
//! in order, and the event loop stops reading the connection until the
//! queue is empty: a connection holds at most the output of one command.

use std::{
    collections::VecDeque,
    io::{self, IoSlice},
    os::fd::{AsRawFd, OwnedFd},
    time::Instant,
};

use nix::sys::{
    epoll::EpollFlags,
    socket::{
        send, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, UnixAddr,
    },
};

use super::packet::{result, Command, Malformed};
use crate::{
    control,
    identity::Identity,
    kernel::{Caller, EINVAL, EPERM},
    shared::Shared,
};

/// `SOL_NETLINK`.
const SOL_NETLINK: i32 = 270;
/// `NETLINK_EXT_ACK`.
const NETLINK_EXT_ACK: i32 = 11;

/// Which socket a queued packet goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Chan {
    /// The connection itself (results, control answers, replies when no
    /// data channel is attached).
    Control,
    /// The attached data channel (reply datagrams).
    Data,
}

/// What the event loop does after a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Nothing more.
    Done,
    /// `'P'`: give the connection a token.
    Pair,
    /// `'D'` as the first packet: make it the data channel of `token`.
    Attach(u32),
    /// A socket failed: close the connection.
    Close,
}

/// A client connection.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) fd: OwnedFd,
    /// The attached data channel (`'P'`, then `'D'` on another
    /// connection).
    pub(super) data: Option<OwnedFd>,
    /// The uid the data channel was counted for.
    pub(super) data_uid: Option<u32>,
    /// Packets the sockets could not take yet, in order.
    pub(super) out: VecDeque<(Chan, Vec<u8>)>,
    /// The peer's uid (`SO_PEERCRED`).
    pub(super) uid: u32,
    /// The token this connection got from `'P'`.
    pub(super) token: Option<u32>,
    /// When the last packet arrived.
    pub(super) last_active: Instant,
    /// What the event loop watches on `fd`, and whether it watches the
    /// data channel (for room to write).
    pub(super) watching: (EpollFlags, bool),
    caller: Caller,
    pid: u32,
    bound: bool,
    /// No packet received yet (`'D'` is only valid first).
    fresh: bool,
}

impl Conn {
    /// A connection from process `pid` of user `uid`.
    pub(super) fn new(
        fd: OwnedFd,
        pid: u32,
        uid: u32,
        who: &Identity,
    ) -> Self {
        let caller = Caller {
            netns: who.netns,
            net_admin: who.net_admin(),
            port_id: 0,
            ext_ack: false,
        };
        Self {
            fd,
            data: None,
            data_uid: None,
            out: VecDeque::new(),
            uid,
            token: None,
            last_active: Instant::now(),
            watching: (EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, false),
            caller,
            pid,
            bound: false,
            fresh: true,
        }
    }

    /// The port id to release when the connection closes.
    pub(super) fn port(&self) -> Option<u32> {
        self.bound.then_some(self.caller.port_id)
    }

    /// Handles one packet.
    pub(super) fn packet(&mut self, p: &[u8], shared: &Shared) -> Outcome {
        let fresh = std::mem::replace(&mut self.fresh, false);
        let command = Command::parse(p);
        if !matches!(command, Ok(Command::Bind(_))) {
            shared.note(|| trace_line(&command));
        }
        let done = match command {
            Err(_) => self.answer(EINVAL, 0),
            Ok(Command::Data(token)) if fresh => {
                return Outcome::Attach(token)
            }
            Ok(Command::Pair) if self.token.is_none() => return Outcome::Pair,
            Ok(Command::Data(_) | Command::Pair) => self.answer(EINVAL, 0),
            Ok(Command::Bind(port)) => {
                let r = self.bind(port, shared);
                let got = r.unwrap_or(0);
                shared.note(|| format!("B {} {}", port as i32, got as i32));
                self.answer(r.err().unwrap_or(0), got)
            }
            Ok(Command::Send(datagram)) => self.send(datagram, shared),
            Ok(Command::SetOpt { level, name, value }) => {
                if (level, name) == (SOL_NETLINK, NETLINK_EXT_ACK) {
                    self.caller.ext_ack = value != 0;
                }
                self.answer(0, 0)
            }
            Ok(Command::Control(body)) => self.control(body, shared),
        };
        match done {
            Ok(()) => Outcome::Done,
            Err(_) => Outcome::Close,
        }
    }

    /// Queues (or sends at once) a result.
    pub(super) fn answer(&mut self, errno: i32, value: u32) -> io::Result<()> {
        self.emit(Chan::Control, &result(errno, value))
    }

    fn bind(&mut self, requested: u32, shared: &Shared) -> Result<u32, i32> {
        if self.bound {
            return if requested == 0 || requested == self.caller.port_id {
                Ok(self.caller.port_id)
            } else {
                Err(EINVAL)
            };
        }
        let port = shared.assign_port(requested, self.pid)?;
        self.caller.port_id = port;
        self.bound = true;
        Ok(port)
    }

    /// `'S'`: the replies on the data channel, then the result; or the
    /// result, then the replies, without one.
    fn send(&mut self, datagram: &[u8], shared: &Shared) -> io::Result<()> {
        if let Err(e) = self.bind(0, shared) {
            return self.answer(e, 0);
        }
        let sent = shared.kernel().sendmsg(&self.caller, datagram);
        let replies = match sent {
            Err(e) => return self.answer(e, 0),
            Ok(replies) => replies,
        };
        // A reply count always fits: the kernel answers a datagram of at
        // most MAX_PACKET bytes with fewer than 2^32 messages.
        let n = u32::try_from(replies.len()).unwrap_or(u32::MAX);
        let replies: Vec<&[u8]> = replies.iter().map(Vec::as_slice).collect();
        if self.data.is_some() {
            self.emit_all(Chan::Data, &replies)?;
            self.answer(0, n)
        } else {
            let r = result(0, n);
            let packets = [&[&r[..]][..], &replies].concat();
            self.emit_all(Chan::Control, &packets)
        }
    }

    /// `'C'`: the result, then the JSON answer.
    fn control(&mut self, body: &[u8], shared: &Shared) -> io::Result<()> {
        match control::handle(shared, &self.caller, body) {
            Err(control::Denied) => self.answer(EPERM, 0),
            Ok(json) => {
                self.answer(0, 0)?;
                self.emit(Chan::Control, json.as_bytes())
            }
        }
    }

    fn socket(&self, chan: Chan) -> io::Result<&OwnedFd> {
        match chan {
            Chan::Control => Ok(&self.fd),
            Chan::Data => self.data.as_ref().ok_or_else(|| {
                io::Error::other("a reply for a data channel that is gone")
            }),
        }
    }

    /// Sends `bytes` now if nothing waits before it and the socket takes
    /// it, else queues it. An error means the connection is broken.
    fn emit(&mut self, chan: Chan, bytes: &[u8]) -> io::Result<()> {
        if self.out.is_empty() && try_send(self.socket(chan)?, bytes)? {
            return Ok(());
        }
        self.out.push_back((chan, bytes.to_vec()));
        Ok(())
    }

    /// [`Conn::emit`] for several packets to one socket, sent with one
    /// system call when nothing waits before them.
    fn emit_all(&mut self, chan: Chan, packets: &[&[u8]]) -> io::Result<()> {
        let sent = if self.out.is_empty() {
            try_send_all(self.socket(chan)?, packets)?
        } else {
            0
        };
        for p in &packets[sent..] {
            self.out.push_back((chan, p.to_vec()));
        }
        Ok(())
    }

    /// Sends what is queued, in order, until a socket is full; `true`
    /// when the queue is empty.
    pub(super) fn flush(&mut self) -> io::Result<bool> {
        while let Some((chan, bytes)) = self.out.front() {
            if !try_send(self.socket(*chan)?, bytes)? {
                return Ok(false);
            }
            self.out.pop_front();
        }
        Ok(true)
    }
}

/// Sends packets without blocking, in one system call (`sendmmsg`); how
/// many the socket took (the first ones).
fn try_send_all(fd: &OwnedFd, packets: &[&[u8]]) -> io::Result<usize> {
    if let [one] = packets {
        return try_send(fd, one).map(usize::from);
    }
    let slices: Vec<[IoSlice<'_>; 1]> =
        packets.iter().map(|p| [IoSlice::new(p)]).collect();
    let mut headers =
        MultiHeaders::<UnixAddr>::preallocate(slices.len(), None);
    let addrs = vec![None; slices.len()];
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    loop {
        let no_cmsgs: [ControlMessage<'_>; 0] = [];
        let fd = fd.as_raw_fd();
        match sendmmsg(fd, &mut headers, &slices, &addrs, no_cmsgs, flags) {
            Ok(sent) => return Ok(sent.count()),
            Err(nix::Error::EAGAIN) => return Ok(0),
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// A command's line in the trace (`Shared::start_trace`).
fn trace_line(command: &Result<Command<'_>, Malformed>) -> String {
    match command {
        Err(_) => "?".into(),
        Ok(Command::Bind(port)) => format!("B {}", *port as i32),
        Ok(Command::Control(_)) => "C".into(),
        Ok(Command::Data(_)) => "D".into(),
        Ok(Command::Pair) => "P".into(),
        Ok(Command::Send(d)) => format!("S {}", d.len()),
        Ok(Command::SetOpt { level, name, value }) => {
            format!("O {level} {name} {value}")
        }
    }
}

/// One packet without blocking: `Ok(false)` when the socket is full.
pub(super) fn try_send(fd: &OwnedFd, bytes: &[u8]) -> io::Result<bool> {
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    loop {
        match send(fd.as_raw_fd(), bytes, flags) {
            Ok(_) => return Ok(true),
            Err(nix::Error::EAGAIN) => return Ok(false),
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
