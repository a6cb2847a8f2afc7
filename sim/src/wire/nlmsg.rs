//! `struct nlmsghdr` and `struct nlmsgerr`.
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+---------------+---------------+
//! |                         nlmsg_len (u32)                       |
//! +-------------------------------+-------------------------------+
//! |        nlmsg_type (u16)       |       nlmsg_flags (u16)       |
//! +-------------------------------+-------------------------------+
//! |                         nlmsg_seq (u32)                       |
//! +---------------------------------------------------------------+
//! |                         nlmsg_pid (u32)                       |
//! +---------------------------------------------------------------+
//! |                       payload ... (len - 16)                  |
//! ```

use super::{check, read_u16, read_u32, Error, Field, Result};

mod field {
    use super::Field;
    pub(crate) const LENGTH: Field = 0..4;
    pub(crate) const TYPE: Field = 4..6;
    pub(crate) const FLAGS: Field = 6..8;
    pub(crate) const SEQ: Field = 8..12;
    pub(crate) const PID: Field = 12..16;
}

/// Length of `struct nlmsghdr`.
pub const HEADER_LEN: usize = 16;
/// `NLMSG_NOOP`.
pub const NLMSG_NOOP: u16 = 0x1;
/// `NLMSG_ERROR`: an error or an ack.
pub const NLMSG_ERROR: u16 = 0x2;
/// `NLMSG_DONE`: end of a multipart message.
pub const NLMSG_DONE: u16 = 0x3;
/// `NLMSG_MIN_TYPE`: first type a protocol may use.
pub const NLMSG_MIN_TYPE: u16 = 0x10;
/// `GENL_ID_CTRL`: the nlctrl family.
pub const GENL_ID_CTRL: u16 = 0x10;

/// `NLM_F_REQUEST`.
pub const F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`.
pub const F_MULTI: u16 = 0x2;
/// `NLM_F_ACK`.
pub const F_ACK: u16 = 0x4;
/// `NLM_F_ECHO`.
pub const F_ECHO: u16 = 0x8;
/// `NLM_F_DUMP` (`ROOT | MATCH`).
pub const F_DUMP: u16 = 0x300;
/// `NLM_F_CAPPED` on an ack: the request was not echoed whole.
pub const F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS` on an ack: extended-ack attributes follow.
pub const F_ACK_TLVS: u16 = 0x200;

/// A read/write view of one netlink message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer and checks that every accessor is in bounds.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the header is present and `nlmsg_len` is within
    /// `HEADER_LEN ..= buffer length`.
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        check("nlmsghdr", have, HEADER_LEN)?;
        let len = self.len() as usize;
        if len < HEADER_LEN || len > have {
            return Err(Error::BadLength { what: "nlmsghdr", len, have });
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `nlmsg_len`.
    pub fn len(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Whether `nlmsg_len` is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `nlmsg_type`.
    pub fn kind(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::TYPE])
    }

    /// `nlmsg_flags`.
    pub fn flags(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::FLAGS])
    }

    /// `nlmsg_seq`.
    pub fn seq(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::SEQ])
    }

    /// `nlmsg_pid`.
    pub fn pid(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::PID])
    }

    /// The payload: bytes `16 .. nlmsg_len`.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len() as usize]
    }

    /// The whole message: bytes `0 .. nlmsg_len`.
    pub fn message(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets `nlmsg_len`.
    pub fn set_len(&mut self, v: u32) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_le_bytes());
    }

    /// Sets `nlmsg_type`.
    pub fn set_kind(&mut self, v: u16) {
        self.buffer.as_mut()[field::TYPE].copy_from_slice(&v.to_le_bytes());
    }

    /// Sets `nlmsg_flags`.
    pub fn set_flags(&mut self, v: u16) {
        self.buffer.as_mut()[field::FLAGS].copy_from_slice(&v.to_le_bytes());
    }

    /// Sets `nlmsg_seq`.
    pub fn set_seq(&mut self, v: u32) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&v.to_le_bytes());
    }

    /// Sets `nlmsg_pid`.
    pub fn set_pid(&mut self, v: u32) {
        self.buffer.as_mut()[field::PID].copy_from_slice(&v.to_le_bytes());
    }
}

/// The meaning of a `struct nlmsghdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// `nlmsg_len`: header plus payload.
    pub len: u32,
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub pid: u32,
}

impl Repr {
    /// Reads a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Self {
            len: p.len(),
            kind: p.kind(),
            flags: p.flags(),
            seq: p.seq(),
            pid: p.pid(),
        })
    }

    /// Bytes `emit` writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header (not the payload).
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_len(self.len);
        p.set_kind(self.kind);
        p.set_flags(self.flags);
        p.set_seq(self.seq);
        p.set_pid(self.pid);
    }
}

/// Splits a datagram into messages the way the kernel's
/// `netlink_rcv_skb` walks it: stop (silently) at the first header that is
/// short or whose length runs past the datagram. Each step yields the
/// message bytes (`nlmsg_len` long) and the offset of the next one
/// (`NLMSG_ALIGN(nlmsg_len)`).
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    /// Iterates the messages of `datagram`.
    pub fn new(datagram: &'a [u8]) -> Self {
        Self { rest: datagram }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Packet<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        let p = Packet::new_checked(self.rest).ok()?;
        let len = p.len() as usize;
        let adv = super::align4(len).min(self.rest.len());
        let msg = &self.rest[..len];
        self.rest = &self.rest[adv..];
        Some(Packet::new_unchecked(msg))
    }
}

/// Zeroes what depends on the socket and the moment in every message of
/// `datagram`, so that two kernels' answers compare byte for byte:
/// `nlmsg_seq` and `nlmsg_pid`, and those of the request header an
/// `NLMSG_ERROR` echoes. Walks every header that fits (even one whose
/// length runs past the datagram); stops at a length shorter than a
/// header.
pub fn mask_seq_pid(datagram: &mut [u8]) {
    let mut off = 0;
    while let Some(m) = datagram.get_mut(off..) {
        if m.len() < HEADER_LEN {
            break;
        }
        // The header is there; its length may be anything.
        let mut p = Packet::new_unchecked(&mut *m);
        let len = p.len() as usize;
        let is_error = p.kind() == NLMSG_ERROR;
        p.set_seq(0);
        p.set_pid(0);
        let echo = HEADER_LEN + ERROR_CODE_LEN;
        if is_error && len >= echo + HEADER_LEN {
            if let Some(e) = m.get_mut(echo..echo + HEADER_LEN) {
                let mut e = Packet::new_unchecked(e);
                e.set_seq(0);
                e.set_pid(0);
            }
        }
        if len < HEADER_LEN {
            break;
        }
        off = off.saturating_add(super::align4(len));
    }
}

/// [`mask_seq_pid`] of a copy.
pub fn masked(datagram: &[u8]) -> Vec<u8> {
    let mut v = datagram.to_vec();
    mask_seq_pid(&mut v);
    v
}

/// Length of `struct nlmsgerr` without the echoed header: the errno.
pub const ERROR_CODE_LEN: usize = 4;

/// A read view of an `NLMSG_ERROR` payload: errno then the echoed request.
#[derive(Debug, Clone)]
pub struct ErrorPayload<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ErrorPayload<T> {
    /// Wraps and checks: errno and the echoed `nlmsghdr` must be present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        check("nlmsgerr", buffer.as_ref().len(), ERROR_CODE_LEN + HEADER_LEN)?;
        Ok(Self { buffer })
    }

    /// The (negative) errno, 0 for an ack.
    pub fn error(&self) -> i32 {
        read_u32(&self.buffer.as_ref()[0..4]) as i32
    }

    /// The echoed request header and whatever of the request follows.
    pub fn echoed(&self) -> &[u8] {
        &self.buffer.as_ref()[ERROR_CODE_LEN..]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // A STATS_FOREACH request header captured from the real jool_siit
    // 4.1.9 client (fixtures/conformance-4.1.9/root.json, `stats_siit`).
    static HEADER: [u8; 16] = [
        0x30, 0x00, 0x00, 0x00, // nlmsg_len = 48
        0x20, 0x00, // nlmsg_type = 0x20 (the Jool family)
        0x01, 0x00, // nlmsg_flags = NLM_F_REQUEST
        0x04, 0x00, 0x00, 0x00, // nlmsg_seq = 4
        0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    ];

    fn repr() -> Repr {
        Repr { len: 48, kind: 0x20, flags: F_REQUEST, seq: 4, pid: 0 }
    }

    #[test]
    fn test_deconstruct() {
        let mut buf = HEADER.to_vec();
        buf.resize(48, 0);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr());
        assert_eq!(p.payload().len(), 32);
    }

    #[test]
    fn test_construct() {
        let mut buf = vec![0xa5; 16];
        repr().emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, HEADER);
    }

    #[test]
    fn test_impossible_len() {
        assert!(matches!(
            Packet::new_checked(&HEADER[..12]),
            Err(Error::Truncated { need: 16, have: 12, .. })
        ));
        // nlmsg_len 48 but only the 16-byte header present.
        assert!(matches!(
            Packet::new_checked(&HEADER[..]),
            Err(Error::BadLength { len: 48, have: 16, .. })
        ));
        let mut small = HEADER;
        small[0] = 8;
        assert!(matches!(
            Packet::new_checked(&small[..]),
            Err(Error::BadLength { len: 8, .. })
        ));
    }

    #[test]
    fn test_messages_split_and_stop() {
        let mut two = HEADER.to_vec();
        two[0] = 18; // 18 bytes, aligned to 20
        two.extend_from_slice(&[0; 4]);
        two.extend_from_slice(&HEADER);
        two[20] = 16;
        let lens: Vec<usize> =
            Messages::new(&two).map(|m| m.message().len()).collect();
        assert_eq!(lens, vec![18, 16]);
        // A header whose length runs past the datagram ends the walk.
        assert_eq!(Messages::new(&HEADER).count(), 0);
    }

    #[test]
    fn test_mask_seq_pid() {
        let mut d = vec![
            36, 0, 0, 0, // nlmsg_len
            2, 0, 0, 1, // NLMSG_ERROR, flags
            7, 0, 0, 0, // seq
            9, 0, 0, 0, // pid
            0, 0, 0, 0, // error 0 (an ack)
            16, 0, 0, 0, // echoed nlmsg_len
            32, 0, 5, 0, // echoed type, flags
            3, 0, 0, 0, // echoed seq
            4, 0, 0, 0, // echoed pid
            20, 0, 0, 0, // second message: nlmsg_len (past the end)
            16, 0, 0, 0, // type, flags
            8, 0, 0, 0, // seq
            8, 0, 0, 0, // pid
        ];
        mask_seq_pid(&mut d);
        assert_eq!(&d[8..16], [0; 8]);
        assert_eq!(&d[28..36], [0; 8]);
        assert_eq!(&d[24..28], [32, 0, 5, 0]);
        assert_eq!(&d[44..52], [0; 8]);
        // A length shorter than a header ends the walk.
        let mut short = vec![4, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0];
        mask_seq_pid(&mut short);
        assert_eq!(&short[8..16], [0; 8]);
        mask_seq_pid(&mut []);
    }
}
