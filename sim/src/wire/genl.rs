//! `struct genlmsghdr`: the 4 bytes after `nlmsghdr` in a generic netlink
//! message.
//!
//! ```text
//! +---------------+---------------+-------------------------------+
//! |   cmd (u8)    | version (u8)  |        reserved (u16)         |
//! +---------------+---------------+-------------------------------+
//! |     family user header (hdrsize bytes), then attributes       |
//! ```

use super::{check, read_u16, Field, Result};

mod field {
    use super::Field;
    pub(crate) const CMD: usize = 0;
    pub(crate) const VERSION: usize = 1;
    pub(crate) const RESERVED: Field = 2..4;
}

/// `GENL_HDRLEN`.
pub const HEADER_LEN: usize = 4;

/// nlctrl `CTRL_CMD_NEWFAMILY`.
pub const CTRL_CMD_NEWFAMILY: u8 = 1;
/// nlctrl `CTRL_CMD_GETFAMILY`.
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// nlctrl attribute `CTRL_ATTR_FAMILY_ID` (u16).
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// nlctrl attribute `CTRL_ATTR_FAMILY_NAME` (string).
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// nlctrl attribute `CTRL_ATTR_VERSION` (u32).
pub const CTRL_ATTR_VERSION: u16 = 3;
/// nlctrl attribute `CTRL_ATTR_HDRSIZE` (u32).
pub const CTRL_ATTR_HDRSIZE: u16 = 4;
/// nlctrl attribute `CTRL_ATTR_MAXATTR` (u32).
pub const CTRL_ATTR_MAXATTR: u16 = 5;
/// nlctrl attribute `CTRL_ATTR_OPS` (nested).
pub const CTRL_ATTR_OPS: u16 = 6;
/// nlctrl attribute `CTRL_ATTR_MCAST_GROUPS` (nested).
pub const CTRL_ATTR_MCAST_GROUPS: u16 = 7;

/// A read/write view of a generic netlink header and what follows it.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer and checks the header is present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the 4 header bytes are present.
    pub fn check_len(&self) -> Result<()> {
        check("genlmsghdr", self.buffer.as_ref().len(), HEADER_LEN)
    }

    /// `cmd`.
    pub fn cmd(&self) -> u8 {
        self.buffer.as_ref()[field::CMD]
    }

    /// `version`.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// `reserved`.
    pub fn reserved(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::RESERVED])
    }

    /// Everything after the genl header (user header and attributes).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets `cmd`.
    pub fn set_cmd(&mut self, v: u8) {
        self.buffer.as_mut()[field::CMD] = v;
    }

    /// Sets `version`.
    pub fn set_version(&mut self, v: u8) {
        self.buffer.as_mut()[field::VERSION] = v;
    }

    /// Sets `reserved`.
    pub fn set_reserved(&mut self, v: u16) {
        self.buffer.as_mut()[field::RESERVED]
            .copy_from_slice(&v.to_le_bytes());
    }
}

/// The meaning of a `genlmsghdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Command.
    pub cmd: u8,
    /// Family protocol version.
    pub version: u8,
}

impl Repr {
    /// Reads a checked header (the reserved field is ignored, as the
    /// kernel does).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Self { cmd: p.cmd(), version: p.version() })
    }

    /// Bytes `emit` writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header with `reserved` = 0.
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_cmd(self.cmd);
        p.set_version(self.version);
        p.set_reserved(0);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static BYTES: [u8; 4] = [
        0x07, // cmd = JNLOP_STATS_FOREACH
        0x01, // version = 1 (what the client sends)
        0x00, 0x00, // reserved
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), Repr { cmd: 7, version: 1 });
        assert!(p.payload().is_empty());
    }

    #[test]
    fn test_construct() {
        let mut buf = [0xa5; 4];
        Repr { cmd: 7, version: 1 }
            .emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn test_impossible_len() {
        assert!(Packet::new_checked(&BYTES[..3]).is_err());
    }
}
