//! What `fuzz-kernel` talks to: [`KernelUnderTest`], with the real module
//! behind a fresh `NETLINK_GENERIC` socket per request ([`RealKernel`],
//! which also watches `/dev/kmsg`) and the in-process simulator
//! ([`SimKernel`]).

use std::{
    fs::File,
    io::{self, ErrorKind, Read, Seek, SeekFrom},
};

use super::cover::{Kcov, Loc, DEVICE};
use jool_sim::{
    kernel::{Caller, Kernel, INIT_NETNS},
    versions::Profile,
};
use neli::{
    consts::socket::{Msg, NlFamily},
    socket::NlSocket,
};

/// Most reply datagrams read for one request.
pub const MAX_REPLIES: usize = 512;

/// Largest reply datagram kept (longer ones are cut, and flagged by
/// their `nlmsg_len`).
const RECV_BUF: usize = 64 * 1024;

/// What one request got: `sendmsg()`'s result, the reply datagrams and
/// the error that ended the reading, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// `Err(errno)` when `sendmsg()` (or opening the socket) failed.
    pub sent: Result<(), i32>,
    /// Reply datagrams, in order.
    pub replies: Vec<Vec<u8>>,
    /// errno of a `recv()` that failed other than with `EAGAIN`.
    pub recv_error: Option<i32>,
}

impl Default for Exchange {
    fn default() -> Self {
        Self { sent: Ok(()), replies: Vec::new(), recv_error: None }
    }
}

/// A kernel with Jool that answers netlink requests.
pub trait KernelUnderTest {
    /// A short name for reports ("real 4.1.9", "sim 4.1.9").
    fn name(&self) -> String;

    /// Sends one datagram from a fresh socket of root in the fuzzing
    /// namespace (`NETLINK_EXT_ACK` set if `ext_ack`) and reads every
    /// reply it queued.
    fn exchange(&mut self, datagram: &[u8], ext_ack: bool) -> Exchange;

    /// Kernel log lines that look like a crash (BUG, WARNING, Oops, ...)
    /// logged since the last call.
    fn crash_lines(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// Appends to `out` the module locations the kernel's code reached
    /// since the last call; false when it is not instrumented.
    fn take_trace(&mut self, _out: &mut Vec<Loc>) -> bool {
        false
    }
}

/// The simulator, as root in its initial namespace.
#[derive(Clone, Debug)]
pub struct SimKernel {
    /// The simulated kernel (public so tests and setup can shape it).
    pub kernel: Kernel,
    caller: Caller,
}

impl SimKernel {
    /// A simulated kernel of `profile` with both modules loaded and no
    /// instances.
    pub fn new(profile: &'static Profile) -> Self {
        Self {
            kernel: Kernel::new(profile),
            caller: Caller {
                port_id: 0x4000_0001,
                ..Caller::root(INIT_NETNS)
            },
        }
    }
}

impl KernelUnderTest for SimKernel {
    fn name(&self) -> String {
        format!("sim {}", self.kernel.profile().release)
    }

    fn exchange(&mut self, datagram: &[u8], ext_ack: bool) -> Exchange {
        let caller = Caller { ext_ack, ..self.caller };
        match self.kernel.sendmsg(&caller, datagram) {
            Ok(mut replies) => {
                replies.truncate(MAX_REPLIES);
                Exchange { sent: Ok(()), replies, recv_error: None }
            }
            Err(e) => Exchange { sent: Err(e), ..Exchange::default() },
        }
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// The real kernel through a `NETLINK_GENERIC` socket. Generic netlink
/// runs the family's handler inside `sendmsg()`, so every reply is
/// queued when it returns: the replies are read until `EAGAIN`, never
/// waited for (a dump goes on at each `recv()` and ends there too).
///
/// The socket is kept from one request to the next (under TCG, creating
/// and closing one costs about as much as Jool's handler), and dropped
/// after anything unusual: a failed send, a receive error, or a request
/// that left more than [`MAX_REPLIES`] replies (a dump may still run).
/// `fresh_sockets` makes it one socket per request, as the clients do.
pub struct RealKernel {
    release: String,
    kmsg: Option<Kmsg>,
    kcov: Option<Kcov>,
    buf: Vec<u8>,
    /// The socket and whether it has `NETLINK_EXT_ACK`.
    sock: Option<(NlSocket, bool)>,
    fresh_sockets: bool,
}

impl std::fmt::Debug for RealKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealKernel").field("release", &self.release).finish()
    }
}

impl RealKernel {
    /// The kernel of this machine running Jool `release`; `kmsg`: watch
    /// the kernel log from now on; `kcov`: this task's coverage trace.
    pub fn new(release: &str, kmsg: Option<Kmsg>, kcov: Option<Kcov>) -> Self {
        Self {
            release: release.to_owned(),
            kmsg,
            kcov,
            buf: vec![0; RECV_BUF],
            sock: None,
            fresh_sockets: false,
        }
    }

    /// One socket per request (true) or one kept across requests.
    pub fn fresh_sockets(mut self, fresh: bool) -> Self {
        self.fresh_sockets = fresh;
        self
    }
}

/// The socket in `slot` to send from (created if missing), with
/// `NETLINK_EXT_ACK` as asked.
fn socket(
    slot: &mut Option<(NlSocket, bool)>,
    ext_ack: bool,
) -> io::Result<&NlSocket> {
    if let Some((s, on)) = slot.as_mut().filter(|(_, on)| *on != ext_ack) {
        s.enable_ext_ack(ext_ack)?;
        *on = ext_ack;
    }
    if slot.is_none() {
        let s = NlSocket::new(NlFamily::Generic)?;
        // MSG_DONTWAIT on every recv instead of O_NONBLOCK: two syscalls
        // (fcntl get and set) less, ~10% under TCG.
        if ext_ack {
            s.enable_ext_ack(true)?;
        }
        *slot = Some((s, ext_ack));
    }
    // Just set above when it was missing.
    slot.as_ref()
        .map(|(s, _)| s)
        .ok_or_else(|| io::Error::from(ErrorKind::NotConnected))
}

impl KernelUnderTest for RealKernel {
    fn name(&self) -> String {
        format!("real {}", self.release)
    }

    fn exchange(&mut self, datagram: &[u8], ext_ack: bool) -> Exchange {
        let failed = |e: io::Error| Exchange {
            sent: Err(errno(&e)),
            ..Default::default()
        };
        let sock = match socket(&mut self.sock, ext_ack) {
            Ok(s) => s,
            Err(e) => {
                self.sock = None;
                return failed(e);
            }
        };
        let mut ex = Exchange::default();
        if let Err(e) = sock.send(datagram, Msg::DONTWAIT) {
            ex = failed(e);
        }
        while ex.sent.is_ok() && ex.replies.len() < MAX_REPLIES {
            match sock.recv(&mut self.buf[..], Msg::TRUNC | Msg::DONTWAIT) {
                Ok((n, _)) => {
                    ex.replies.push(self.buf[..n.min(RECV_BUF)].to_vec())
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    ex.recv_error = Some(errno(&e));
                    break;
                }
            }
        }
        let unusual = ex.sent.is_err()
            || ex.recv_error.is_some()
            || ex.replies.len() >= MAX_REPLIES;
        if unusual || self.fresh_sockets {
            self.sock = None;
        }
        ex
    }

    fn crash_lines(&mut self) -> Vec<String> {
        self.kmsg.as_mut().map(Kmsg::crash_lines).unwrap_or_default()
    }

    fn take_trace(&mut self, out: &mut Vec<Loc>) -> bool {
        let Some(k) = &mut self.kcov else { return false };
        if let Err(e) = k.take(out) {
            eprintln!("fuzz-kernel: reading {DEVICE}: {e}; coverage off");
            self.kcov = None;
            return false;
        }
        true
    }
}

/// What a kernel log line must contain to count as a crash.
pub const CRASH_PATTERNS: [&str; 8] = [
    "BUG:",
    "BUG at",
    "WARNING:",
    "Oops",
    "KASAN",
    "general protection",
    "RIP:",
    "Call Trace",
];

/// Whether a kernel log message looks like a crash.
pub fn is_crash_line(msg: &str) -> bool {
    CRASH_PATTERNS.iter().any(|p| msg.contains(p))
}

/// `/dev/kmsg`, read without blocking from the position at open.
#[derive(Debug)]
pub struct Kmsg {
    file: File,
    buf: Vec<u8>,
}

/// `O_NONBLOCK` on Linux (x86, arm, riscv).
const O_NONBLOCK: i32 = 0o4000;

impl Kmsg {
    /// Opens `/dev/kmsg` at its end.
    pub fn open() -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_NONBLOCK)
            .open("/dev/kmsg")?;
        file.seek(SeekFrom::End(0))?;
        Ok(Self { file, buf: vec![0; 8192] })
    }

    /// Every record logged since the last call (at most `max`).
    pub fn records(&mut self, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&self.buf[..n]);
                    let msg = rec.split_once(';').map_or(&*rec, |(_, m)| m);
                    out.push(msg.trim_end().to_owned());
                }
                Err(e) if e.raw_os_error() == Some(32) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        out
    }

    /// The records logged since the last call from the first crash-like
    /// one on (the whole report: the frames of a stack match no pattern
    /// by themselves); none if no record looks like a crash. At most 64
    /// records are read before a crash is seen (the rest next time), 512
    /// after.
    pub fn crash_lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut read = 0;
        while read < if out.is_empty() { 64 } else { 512 } {
            read += 1;
            match self.file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&self.buf[..n]);
                    // "prio,seq,usec,flags;message\n continuation..."
                    let msg = rec.split_once(';').map_or(&*rec, |(_, m)| m);
                    if !out.is_empty() || is_crash_line(msg) {
                        out.push(msg.trim_end().to_owned());
                    }
                }
                // EPIPE: records were overwritten; go on from the next.
                Err(e) if e.raw_os_error() == Some(32) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_crash_patterns() {
        assert!(is_crash_line("BUG: kernel NULL pointer dereference"));
        assert!(is_crash_line("WARNING: CPU: 1 PID: 42 at net/x.c:1"));
        assert!(is_crash_line("general protection fault, probably ..."));
        assert!(!is_crash_line(
            "Jool error: This namespace lacks an instance named 'default'."
        ));
        assert!(!is_crash_line(
            "netlink: 4 bytes leftover after parsing attributes."
        ));
    }

    #[test]
    fn test_sim_exchange() {
        let mut k = SimKernel::new(Profile::get("4.1.9").unwrap());
        let ex = k.exchange(&[], false);
        assert_eq!(ex.sent, Err(jool_sim::kernel::ENODATA));
        let ex = k.exchange(&jool_sim::requests::get_family("Jool", 1), false);
        assert_eq!(ex.sent, Ok(()));
        assert_eq!(ex.replies.len(), 1);
    }
}
