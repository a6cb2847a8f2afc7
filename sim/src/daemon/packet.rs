//! The daemon's packets (docs/daemon-protocol.md): one command per packet
//! from the client, one 9-byte result per command from the daemon.
//!
//! ```text
//!  'B' | port: u32 LE                                  bind
//!  'S' | netlink datagram (any length, may be empty)   send
//!  'P'                                                 ask for a data channel
//!  'D' | token: u32 LE                                 become a data channel
//!  'O' | level: i32 LE | name: i32 LE | value: i32 LE  setsockopt
//!  'C' | JSON request                                  control
//!  result: 'R' | errno: i32 LE | value: u32 LE
//! ```

use std::fmt;

/// Length of a result packet.
pub const RESULT_LEN: usize = 9;

/// A command, read from one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    /// `'B'`: bind to a port id (0: any).
    Bind(u32),
    /// `'C'`: a control request.
    Control(&'a [u8]),
    /// `'D'`: become the data channel of the connection given this token.
    Data(u32),
    /// `'P'`: ask for a data channel token.
    Pair,
    /// `'S'`: one netlink datagram.
    Send(&'a [u8]),
    /// `'O'`: a socket option.
    SetOpt { level: i32, name: i32, value: i32 },
}

/// Why a packet is not a command; the daemon answers `EINVAL`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// A zero-length packet.
    Empty,
    /// A command byte the protocol does not have.
    Unknown(u8),
    /// A fixed-size command with too few or too many bytes.
    Length {
        /// The command byte.
        command: u8,
        /// The packet's length.
        len: usize,
        /// The length the command has.
        want: usize,
    },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "an empty packet"),
            Self::Unknown(c) => write!(f, "unknown command {c:#04x}"),
            Self::Length { command, len, want } => write!(
                f,
                "a {len}-byte {:?} packet (it has {want})",
                char::from(*command)
            ),
        }
    }
}

impl std::error::Error for Malformed {}

/// `N` bytes from `body`, or `Malformed::Length` unless it has exactly
/// `N`.
fn exact<const N: usize>(
    command: u8,
    body: &[u8],
) -> Result<[u8; N], Malformed> {
    body.try_into().map_err(|_| Malformed::Length {
        command,
        len: body.len() + 1,
        want: N + 1,
    })
}

impl<'a> Command<'a> {
    /// Reads one packet.
    pub(crate) fn parse(packet: &'a [u8]) -> Result<Self, Malformed> {
        let (&c, body) = packet.split_first().ok_or(Malformed::Empty)?;
        Ok(match c {
            b'B' => Self::Bind(u32::from_le_bytes(exact(c, body)?)),
            b'C' => Self::Control(body),
            b'D' => Self::Data(u32::from_le_bytes(exact(c, body)?)),
            b'P' => {
                exact::<0>(c, body)?;
                Self::Pair
            }
            b'S' => Self::Send(body),
            b'O' => {
                let v: [u8; 12] = exact(c, body)?;
                let word = |i: usize| {
                    i32::from_le_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]])
                };
                Self::SetOpt { level: word(0), name: word(4), value: word(8) }
            }
            other => return Err(Malformed::Unknown(other)),
        })
    }
}

/// A result packet.
pub fn result(errno: i32, value: u32) -> [u8; RESULT_LEN] {
    let mut r = [0u8; RESULT_LEN];
    r[0] = b'R';
    r[1..5].copy_from_slice(&errno.to_le_bytes());
    r[5..9].copy_from_slice(&value.to_le_bytes());
    r
}

/// Reads a result packet: `(errno, value)`.
pub fn parse_result(packet: &[u8]) -> Option<(i32, u32)> {
    let [b'R', e0, e1, e2, e3, v0, v1, v2, v3] = *packet else {
        return None;
    };
    Some((
        i32::from_le_bytes([e0, e1, e2, e3]),
        u32::from_le_bytes([v0, v1, v2, v3]),
    ))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let bind = [
            b'B', // command
            0x01, 0x00, 0x00, 0xfb, // port id, LE
        ];
        assert_eq!(Command::parse(&bind), Ok(Command::Bind(0xfb00_0001)));
        let opt = [
            b'O', // command
            0x0e, 0x01, 0x00, 0x00, // level SOL_NETLINK
            0x0b, 0x00, 0x00, 0x00, // NETLINK_EXT_ACK
            0x01, 0x00, 0x00, 0x00, // value
        ];
        let want = Command::SetOpt { level: 270, name: 11, value: 1 };
        assert_eq!(Command::parse(&opt), Ok(want));
        assert_eq!(Command::parse(b"P"), Ok(Command::Pair));
        assert_eq!(Command::parse(b"S"), Ok(Command::Send(b"")));
        assert_eq!(Command::parse(b"C{}"), Ok(Command::Control(b"{}")));
        assert_eq!(Command::parse(b"D\x02\0\0\0"), Ok(Command::Data(2)));
    }

    #[test]
    fn test_impossible_len() {
        assert_eq!(Command::parse(b""), Err(Malformed::Empty));
        assert_eq!(Command::parse(b"?x"), Err(Malformed::Unknown(b'?')));
        let cases: [(&[u8], usize); 6] = [
            (b"B\0\0\0", 5),
            (b"B\0\0\0\0\0", 5),
            (b"Px", 1),
            (b"D", 5),
            (b"D\0\0\0\0\0", 5),
            (b"O\0\0\0\0", 13),
        ];
        for (p, want) in cases {
            let err = Command::parse(p).unwrap_err();
            let Malformed::Length { len, want: w, .. } = err else {
                panic!("{p:?}: {err:?}");
            };
            assert_eq!((len, w), (p.len(), want), "{p:?}");
        }
    }

    #[test]
    fn test_result_roundtrip() {
        let r = result(-90, 7);
        assert_eq!(
            r,
            [
                b'R', // result
                0xa6, 0xff, 0xff, 0xff, // errno -90
                0x07, 0x00, 0x00, 0x00, // value
            ]
        );
        assert_eq!(parse_result(&r), Some((-90, 7)));
        assert_eq!(parse_result(&r[..8]), None);
        assert_eq!(parse_result(b"S12345678"), None);
    }
}
