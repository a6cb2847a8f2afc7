//! The client side of the `jool-sim serve` socket protocol
//! (`docs/daemon-protocol.md`).
//!
//! A netlink socket is two `SOCK_SEQPACKET` connections to the daemon. On
//! the *control* connection, which the shim keeps to itself, each command
//! is one packet and the daemon answers each with one 9-byte result. The
//! *data* channel, which the application gets as its socket, carries only
//! reply datagrams; the daemon queues them there before it answers the
//! `'S'` that produced them, so they are readable the moment `sendmsg()`
//! returns, as on netlink.
//!
//! ```text
//!  control:  'P'                                    -> 'R' | 0 | token
//!  data:     'D' | token: u32 LE  (first packet)    -> 'R' | 0 | 0
//!  control:  'B' | port: u32 LE                     -> 'R' | errno | port
//!            'O' | level: i32 | name: i32 | value: i32  -> 'R' | errno | 0
//!            'S' | netlink datagram                 -> 'R' | errno | replies
//!  result:   'R' | errno: i32 LE | value: u32 LE
//! ```

use libc::c_int;

use crate::real;

/// Command: bind to a port id (0: let the daemon choose).
const BIND: u8 = b'B';
/// Command: send one netlink datagram.
const SEND: u8 = b'S';
/// Command: set a socket option.
const SETSOCKOPT: u8 = b'O';
/// Command: ask for a data channel token.
const PAIR: u8 = b'P';
/// Command: become the data channel of `token`.
const DATA: u8 = b'D';
/// First byte of a result.
const RESULT: u8 = b'R';
/// Length of a result.
const RESULT_LEN: usize = 9;

/// Largest packet the daemon accepts; it closes the connection past it.
pub(crate) const MAX_PACKET: usize = 1 << 20;

/// A `'B'` packet.
pub(crate) fn bind_packet(port: u32) -> [u8; 5] {
    let [a, b, c, d] = port.to_le_bytes();
    [BIND, a, b, c, d]
}

/// A `'P'` packet.
pub(crate) fn pair_packet() -> [u8; 1] {
    [PAIR]
}

/// A `'D'` packet.
pub(crate) fn data_packet(token: u32) -> [u8; 5] {
    let [a, b, c, d] = token.to_le_bytes();
    [DATA, a, b, c, d]
}

/// An `'O'` packet.
pub(crate) fn setsockopt_packet(
    level: i32,
    name: i32,
    value: i32,
) -> [u8; 13] {
    let mut out = [0; 13];
    out[0] = SETSOCKOPT;
    out[1..5].copy_from_slice(&level.to_le_bytes());
    out[5..9].copy_from_slice(&name.to_le_bytes());
    out[9..13].copy_from_slice(&value.to_le_bytes());
    out
}

/// An `'S'` packet carrying the concatenation of `parts`, or `EMSGSIZE`
/// when it would exceed [`MAX_PACKET`].
pub(crate) fn send_packet<'a>(
    parts: impl Iterator<Item = &'a [u8]> + Clone,
) -> Result<Vec<u8>, c_int> {
    let len = parts.clone().try_fold(1usize, |n, p| n.checked_add(p.len()));
    let len = len.filter(|&n| n <= MAX_PACKET).ok_or(libc::EMSGSIZE)?;
    let mut out = Vec::with_capacity(len);
    out.push(SEND);
    parts.for_each(|p| out.extend_from_slice(p));
    Ok(out)
}

/// Parses a result packet: `Ok(value)`, `Err(errno)`, or `Err(EIO)` for
/// anything that is not a result.
fn parse_result(packet: &[u8]) -> Result<u32, c_int> {
    let [RESULT, e0, e1, e2, e3, v0, v1, v2, v3] = *packet else {
        return Err(libc::EIO);
    };
    match i32::from_le_bytes([e0, e1, e2, e3]) {
        0 => Ok(u32::from_le_bytes([v0, v1, v2, v3])),
        e => Err(e.saturating_abs()),
    }
}

/// Sends `packet` on the blocking connection `fd` and reads the daemon's
/// result: `Ok(value)` or `Err(errno)`. Signals do not interrupt it (the
/// command may already have run). A daemon that went away gives
/// `ECONNREFUSED`.
pub(crate) fn transact(fd: c_int, packet: &[u8]) -> Result<u32, c_int> {
    loop {
        let flags = libc::MSG_NOSIGNAL;
        // SAFETY: `packet` is valid for reads of its length.
        let n = unsafe {
            real::send(fd, packet.as_ptr().cast(), packet.len(), flags)
        };
        if n >= 0 {
            break; // SEQPACKET sends all of it or nothing.
        }
        match real::errno() {
            libc::EINTR => {}
            libc::EPIPE | libc::ECONNRESET => return Err(libc::ECONNREFUSED),
            e => return Err(e),
        }
    }
    let mut result = [0; RESULT_LEN + 1];
    loop {
        let (ptr, len) = (result.as_mut_ptr().cast(), result.len());
        // SAFETY: `result` is valid for writes of `len` bytes.
        let n = unsafe { real::recv(fd, ptr, len, 0) };
        match usize::try_from(n) {
            Ok(0) => return Err(libc::ECONNREFUSED),
            Ok(n) => return parse_result(&result[..n]),
            Err(_) if real::errno() == libc::EINTR => {}
            Err(_) => return Err(real::errno()),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_bind_packet() {
        assert_eq!(
            bind_packet(0xfb00_0001),
            [
                b'B', // command
                0x01, 0x00, 0x00, 0xfb, // port id, LE
            ]
        );
    }

    #[test]
    fn test_pair_packets() {
        assert_eq!(pair_packet(), [b'P']);
        assert_eq!(
            data_packet(0x0102_0304),
            [
                b'D', // command
                0x04, 0x03, 0x02, 0x01, // token, LE
            ]
        );
    }

    #[test]
    fn test_setsockopt_packet() {
        assert_eq!(
            setsockopt_packet(270, 11, 1),
            [
                b'O', // command
                0x0e, 0x01, 0x00, 0x00, // level SOL_NETLINK
                0x0b, 0x00, 0x00, 0x00, // NETLINK_EXT_ACK
                0x01, 0x00, 0x00, 0x00, // value
            ]
        );
    }

    #[test]
    fn test_send_packet() {
        let parts = [&b"ab"[..], b"", b"c"];
        assert_eq!(send_packet(parts.into_iter()).unwrap(), b"Sabc");
        assert_eq!(send_packet([].into_iter()).unwrap(), b"S");
    }

    #[test]
    fn test_send_packet_too_big() {
        let big = vec![0; MAX_PACKET - 1];
        let packet = send_packet([&big[..]].into_iter()).unwrap();
        assert_eq!(packet.len(), MAX_PACKET);
        let parts = [&big[..], b"x"];
        assert_eq!(send_packet(parts.into_iter()), Err(libc::EMSGSIZE));
    }

    #[test]
    fn test_parse_result() {
        let ok = [
            b'R', // result
            0x00, 0x00, 0x00, 0x00, // errno: none
            0x02, 0x00, 0x00, 0x00, // value: 2 replies
        ];
        assert_eq!(parse_result(&ok), Ok(2));
        let err = [
            b'R', // result
            0x5a, 0x00, 0x00, 0x00, // errno: EMSGSIZE
            0x00, 0x00, 0x00, 0x00, // value
        ];
        assert_eq!(parse_result(&err), Err(libc::EMSGSIZE));
        assert_eq!(parse_result(&ok[..8]), Err(libc::EIO));
        assert_eq!(parse_result(b"S12345678"), Err(libc::EIO));
        assert_eq!(parse_result(&[0; 20]), Err(libc::EIO));
    }

    /// A connected SEQPACKET pair: (client, daemon).
    fn pair() -> (c_int, c_int) {
        let mut fds = [0; 2];
        let (af, ty) = (libc::AF_UNIX, libc::SOCK_SEQPACKET);
        // SAFETY: `fds` has room for two descriptors.
        let r = unsafe { libc::socketpair(af, ty, 0, fds.as_mut_ptr()) };
        assert_eq!(r, 0);
        (fds[0], fds[1])
    }

    fn close(fds: &[c_int]) {
        for &fd in fds {
            // SAFETY: the test owns `fd`.
            unsafe { libc::close(fd) };
        }
    }

    #[test]
    fn test_transact() {
        let (client, daemon) = pair();
        let t = std::thread::spawn(move || {
            let mut got = [0; 64];
            let buf = got.as_mut_ptr().cast();
            // SAFETY: `got` is valid for writes of 64 bytes.
            let n = unsafe { libc::recv(daemon, buf, 64, 0) };
            let result = [b'R', 0, 0, 0, 0, 3, 0, 0, 0];
            // SAFETY: `result` is valid for reads.
            unsafe { libc::send(daemon, result.as_ptr().cast(), 9, 0) };
            (got[..n as usize].to_vec(), daemon)
        });
        assert_eq!(transact(client, b"Sxyz"), Ok(3));
        let (got, daemon) = t.join().unwrap();
        assert_eq!(got, b"Sxyz");
        close(&[client, daemon]);
    }

    #[test]
    fn test_transact_daemon_gone() {
        let (client, daemon) = pair();
        close(&[daemon]);
        let packet = bind_packet(0);
        assert_eq!(transact(client, &packet), Err(libc::ECONNREFUSED));
        close(&[client]);
    }
}
