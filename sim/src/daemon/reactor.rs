//! The daemon's event loop: one thread, one epoll set, every connection
//! non-blocking.
//!
//! Bounded per caller: a connection limit (per uid, and in total with a
//! reserve that only root may use), an idle timeout, one receive buffer
//! for the whole daemon, and per connection only the output of its last
//! command. After each batch of events the loop polls without sleeping
//! for up to [`Limits::spin`] before it blocks (`spin`, adaptive): a client
//! that sends its next request within that time does not pay the wake-up
//! of a sleeping thread (tens of microseconds on a virtual machine whose
//! host is idle).

use std::{
    collections::HashMap,
    io::{self, Read},
    os::{
        fd::{AsFd, AsRawFd, OwnedFd},
        unix::net::UnixStream,
    },
    time::{Duration, Instant},
};

use nix::{
    poll::{poll, PollFd, PollFlags, PollTimeout},
    sys::{
        epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags},
        socket::{accept4, getsockopt, recv, sockopt, MsgFlags, SockFlag},
    },
};

use super::{
    conn::{try_send, Chan, Conn, Outcome},
    packet::result,
    spin::Spinner,
    Limits, MAX_PACKET,
};
use crate::{identity::Identity, kernel::EINVAL, shared::Shared};

/// `ENFILE`: the daemon holds its maximum of connections.
pub const ENFILE: i32 = 23;
/// `EUSERS`: this uid holds its maximum of connections.
pub const EUSERS: i32 = 87;

/// Event key of the listening socket.
const LISTENER: u64 = u64::MAX;
/// Event key of the stop request.
const WAKE: u64 = u64::MAX - 1;
/// Attempts at reading one packet (`EINTR`). One packet per readiness: a
/// client usually waits for its result, so a second `recv` would find
/// nothing (a wasted system call per round trip), and epoll reports the
/// connection again while packets are queued.
const READ_TRIES: usize = 4;
/// Connections accepted in one go.
const ACCEPT_BATCH: usize = 64;
/// How long accepting pauses when the process runs out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// A connection's place in the table; the generation tells a reused
/// place from the connection an old event was about.
#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// The event key of slot `index`'s control socket or data channel.
fn key(index: usize, generation: u32, data: bool) -> u64 {
    (u64::from(generation) << 32) | ((index as u64) << 1) | u64::from(data)
}

/// `(index, generation, data channel)` of an event key.
fn unkey(k: u64) -> (usize, u32, bool) {
    let index = ((k & 0xffff_ffff) >> 1) as usize;
    (index, (k >> 32) as u32, k & 1 == 1)
}

/// The loop's state.
#[derive(Debug)]
pub(super) struct Reactor<'a> {
    epoll: Epoll,
    listener: &'a OwnedFd,
    wake: &'a UnixStream,
    shared: &'a Shared,
    limits: &'a Limits,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Connections held, attached data channels included.
    live: usize,
    per_uid: HashMap<u32, usize>,
    /// Data channel tokens (`'P'`) and the slot that asked.
    tokens: HashMap<u32, usize>,
    next_token: u32,
    /// The one receive buffer (pages are touched only as large packets
    /// arrive).
    buf: Vec<u8>,
    accept_paused_until: Option<Instant>,
    next_sweep: Instant,
    spinner: Spinner,
    stop: bool,
}

impl<'a> Reactor<'a> {
    pub(super) fn new(
        listener: &'a OwnedFd,
        wake: &'a UnixStream,
        shared: &'a Shared,
        limits: &'a Limits,
    ) -> io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))?;
        epoll.add(wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        Ok(Self {
            epoll,
            listener,
            wake,
            shared,
            limits,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            per_uid: HashMap::new(),
            tokens: HashMap::new(),
            next_token: 1,
            buf: vec![0; MAX_PACKET],
            accept_paused_until: None,
            next_sweep: Instant::now() + limits.sweep_interval(),
            spinner: Spinner::new(limits.spin),
            stop: false,
        })
    }

    /// Serves until the stop request.
    pub(super) fn run(&mut self) -> io::Result<()> {
        let mut events = vec![EpollEvent::empty(); 256];
        while !self.stop {
            let n = self.wait(&mut events)?;
            for ev in &events[..n] {
                self.event(ev.data(), ev.events());
            }
            self.timers()?;
        }
        Ok(())
    }

    /// Polls without sleeping while the spin budget lasts, then blocks
    /// until an event or the next timer.
    fn wait(&mut self, events: &mut [EpollEvent]) -> io::Result<usize> {
        let epoll = &self.epoll;
        let found = self.spinner.spin(|| {
            match epoll.wait(events, PollTimeout::ZERO) {
                Ok(0) | Err(nix::Error::EINTR) => Ok(None),
                Ok(n) => Ok(Some(n)),
                Err(e) => Err(e.into()),
            }
        })?;
        if let Some(n) = found {
            return Ok(n);
        }
        let start = Instant::now();
        match self.epoll.wait(events, self.timeout()) {
            Ok(0) => Ok(0),
            Ok(n) => {
                self.spinner.slept(start.elapsed());
                Ok(n)
            }
            Err(nix::Error::EINTR) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Until the next timer (idle sweep, accepting again).
    fn timeout(&self) -> PollTimeout {
        let next = match self.accept_paused_until {
            Some(t) => t.min(self.next_sweep),
            None => self.next_sweep,
        };
        let ms = next.saturating_duration_since(Instant::now()).as_millis();
        PollTimeout::try_from(ms + 1).unwrap_or(PollTimeout::MAX)
    }

    fn timers(&mut self) -> io::Result<()> {
        let now = Instant::now();
        if self.accept_paused_until.is_some_and(|t| now >= t) {
            self.accept_paused_until = None;
            let ev = EpollEvent::new(EpollFlags::EPOLLIN, LISTENER);
            self.epoll.add(self.listener, ev)?;
        }
        if now >= self.next_sweep {
            self.next_sweep = now + self.limits.sweep_interval();
            self.sweep(now);
        }
        Ok(())
    }

    /// Closes the connections idle for the idle timeout.
    fn sweep(&mut self, now: Instant) {
        let Some(idle) = self.limits.idle_timeout else { return };
        let expired: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                self.slots[i].conn.as_ref().is_some_and(|c| {
                    now.saturating_duration_since(c.last_active) >= idle
                })
            })
            .collect();
        expired.into_iter().for_each(|i| self.close(i));
    }

    fn event(&mut self, k: u64, flags: EpollFlags) {
        match k {
            LISTENER => self.accept_all(),
            WAKE => {
                let _ = (&mut &*self.wake).read(&mut [0u8; 64]);
                self.stop = true;
            }
            k => {
                let (index, generation, data) = unkey(k);
                let slot = self.slots.get(index);
                if slot.is_some_and(|s| {
                    s.generation == generation && s.conn.is_some()
                }) {
                    self.ready(index, data, flags);
                }
            }
        }
    }

    /// A connection (or its data channel) can be read or written.
    fn ready(&mut self, index: usize, data: bool, flags: EpollFlags) {
        let broken = EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        if data && flags.intersects(broken) {
            return self.close(index);
        }
        let pending = self.conn(index).is_some_and(|c| !c.out.is_empty());
        if pending {
            let flushed = self.conn_mut(index).map(Conn::flush);
            match flushed {
                Some(Ok(true)) => {}
                Some(Ok(false)) if !flags.intersects(broken) => {
                    return self.interest(index);
                }
                _ => return self.close(index),
            }
        }
        if !data {
            self.read(index, flags.contains(EpollFlags::EPOLLRDHUP));
        }
        self.interest(index);
    }

    fn conn(&self, index: usize) -> Option<&Conn> {
        self.slots.get(index).and_then(|s| s.conn.as_ref())
    }

    fn conn_mut(&mut self, index: usize) -> Option<&mut Conn> {
        self.slots.get_mut(index).and_then(|s| s.conn.as_mut())
    }

    /// Reads and handles one packet, unless output waits.
    fn read(&mut self, index: usize, hung_up: bool) {
        for _ in 0..READ_TRIES {
            let Some(conn) = self.slots[index].conn.as_mut() else { return };
            if !conn.out.is_empty() {
                return;
            }
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC;
            let n = match recv(conn.fd.as_raw_fd(), &mut self.buf, flags) {
                Err(nix::Error::EAGAIN) => return,
                Err(nix::Error::EINTR) => continue,
                Ok(0) if hung_up || peer_closed(&conn.fd) => {
                    return self.close(index)
                }
                Ok(n) if n <= MAX_PACKET => n,
                Ok(_) | Err(_) => return self.close(index),
            };
            conn.last_active = Instant::now();
            match conn.packet(&self.buf[..n], self.shared) {
                Outcome::Done => {}
                Outcome::Close => self.close(index),
                Outcome::Pair => self.pair(index),
                Outcome::Attach(token) => self.attach(index, token),
            }
            return;
        }
    }

    /// `'P'`: a token for slot `index`.
    fn pair(&mut self, index: usize) {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1).max(1);
        self.tokens.insert(token, index);
        let Some(conn) = self.conn_mut(index) else { return };
        conn.token = Some(token);
        if conn.answer(0, token).is_err() {
            self.close(index);
        }
    }

    /// `'D'`: slot `index`'s socket becomes the data channel of the
    /// connection that got `token`.
    fn attach(&mut self, index: usize, token: u32) {
        let owner = self.tokens.get(&token).copied();
        let free = owner
            .and_then(|o| self.conn(o))
            .is_some_and(|c| c.data.is_none() && c.token == Some(token));
        let Some(owner) = owner.filter(|_| free) else {
            let refused = self.conn_mut(index).map(|c| c.answer(EINVAL, 0));
            if !matches!(refused, Some(Ok(()))) {
                self.close(index);
            }
            return;
        };
        self.tokens.remove(&token);
        let Some(conn) = self.slots[index].conn.take() else { return };
        self.release_slot(index);
        let _ = self.epoll.delete(&conn.fd);
        if !matches!(try_send(&conn.fd, &result(0, 0)), Ok(true)) {
            return self.forget(conn.uid, 1);
        }
        if let Some(o) = self.conn_mut(owner) {
            o.data = Some(conn.fd);
            o.data_uid = Some(conn.uid);
        }
    }

    /// Watches what slot `index` waits for: its next packet, or room for
    /// its queued output on the control socket or the data channel.
    fn interest(&mut self, index: usize) {
        let generation = self.slots[index].generation;
        let Some(conn) = self.slots[index].conn.as_mut() else { return };
        let want = match conn.out.front() {
            None => (EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, false),
            Some((Chan::Control, _)) => (EpollFlags::EPOLLOUT, false),
            Some((Chan::Data, _)) => (EpollFlags::empty(), true),
        };
        if want == conn.watching {
            return;
        }
        let mut ok = true;
        if want.0 != conn.watching.0 {
            let k = key(index, generation, false);
            let mut ev = EpollEvent::new(want.0, k);
            ok &= self.epoll.modify(&conn.fd, &mut ev).is_ok();
        }
        if let (Some(d), true) = (&conn.data, want.1 != conn.watching.1) {
            ok &= if want.1 {
                let k = key(index, generation, true);
                let ev = EpollEvent::new(EpollFlags::EPOLLOUT, k);
                self.epoll.add(d, ev).is_ok()
            } else {
                self.epoll.delete(d).is_ok()
            };
        }
        conn.watching = want;
        if !ok {
            self.close(index);
        }
    }

    /// Accepts waiting connections.
    fn accept_all(&mut self) {
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        for _ in 0..ACCEPT_BATCH {
            match accept4(self.listener, flags) {
                Ok(fd) => self.admit(fd),
                Err(nix::Error::EAGAIN) => return,
                Err(nix::Error::EINTR | nix::Error::ECONNABORTED) => {}
                Err(e) => {
                    // Out of descriptors or memory: stop accepting for a
                    // while rather than spin on a readable listener.
                    eprintln!(
                        "jool-sim: accept: {e}; pausing {ACCEPT_PAUSE:?}"
                    );
                    let _ = self.epoll.delete(self.listener);
                    let until = Instant::now() + ACCEPT_PAUSE;
                    self.accept_paused_until = Some(until);
                    return;
                }
            }
        }
    }

    /// Takes a new connection, or refuses it with one result (`ENFILE`,
    /// `EUSERS`) when its uid or the daemon is at its limit.
    fn admit(&mut self, fd: OwnedFd) {
        let Ok(creds) = getsockopt(&fd, sockopt::PeerCredentials) else {
            return;
        };
        let (pid, uid) = (creds.pid() as u32, creds.uid());
        if let Err(errno) = self.room_for(uid) {
            let _ = try_send(&fd, &result(errno, 0));
            return;
        }
        let Ok(who) = Identity::of(&pid.to_string()) else { return };
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::default());
            self.slots.len() - 1
        });
        let generation = self.slots[index].generation;
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        let ev = EpollEvent::new(flags, key(index, generation, false));
        if self.epoll.add(&fd, ev).is_err() {
            return self.release_slot(index);
        }
        self.slots[index].conn = Some(Conn::new(fd, pid, uid, &who));
        self.live += 1;
        *self.per_uid.entry(uid).or_default() += 1;
    }

    /// Whether `uid` may open one more connection.
    fn room_for(&self, uid: u32) -> Result<(), i32> {
        let l = self.limits;
        let total = if uid == 0 {
            l.max_connections
        } else {
            l.max_connections.saturating_sub(l.root_reserve)
        };
        if self.live >= total {
            return Err(ENFILE);
        }
        let mine = self.per_uid.get(&uid).copied().unwrap_or(0);
        if uid != 0 && mine >= l.max_per_uid {
            return Err(EUSERS);
        }
        Ok(())
    }

    /// Closes slot `index`'s connection and its data channel.
    fn close(&mut self, index: usize) {
        let Some(conn) = self.slots[index].conn.take() else { return };
        self.release_slot(index);
        if let Some(t) = conn.token {
            if self.tokens.get(&t) == Some(&index) {
                self.tokens.remove(&t);
            }
        }
        if let Some(port) = conn.port() {
            self.shared.release_port(port);
        }
        self.forget(conn.uid, 1);
        if let Some(uid) = conn.data_uid {
            self.forget(uid, 1);
        }
        // Dropping the descriptors takes them out of the epoll set.
    }

    /// Frees a slot for reuse under a new generation.
    fn release_slot(&mut self, index: usize) {
        let s = &mut self.slots[index];
        s.generation = s.generation.wrapping_add(1);
        self.free.push(index);
    }

    /// Counts `n` fewer connections of `uid`.
    fn forget(&mut self, uid: u32, n: usize) {
        self.live = self.live.saturating_sub(n);
        if let Some(c) = self.per_uid.get_mut(&uid) {
            *c = c.saturating_sub(n);
            if *c == 0 {
                self.per_uid.remove(&uid);
            }
        }
    }
}

/// After a zero-length read: whether the peer is gone (end of file) or
/// sent an empty packet (which the protocol answers with `EINVAL`). A
/// closed SEQPACKET peer leaves `POLLHUP`; a half-close (`EPOLLRDHUP`) is
/// seen by the caller in its epoll event.
fn peer_closed(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::empty())];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0].revents().is_none_or(|r| {
            r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
        }),
        Err(_) => true,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_keys_roundtrip() {
        for (i, g, d) in
            [(0, 0, false), (7, 3, true), (1 << 30, u32::MAX, true)]
        {
            assert_eq!(unkey(key(i, g, d)), (i, g, d));
        }
        assert_ne!(unkey(LISTENER).1, 0);
    }
}
