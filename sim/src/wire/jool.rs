//! `struct joolnlhdr`: Jool's generic netlink user header (4.0.8+).
//!
//! 4.1.5+, 4.2.0-rc2, rc3, main (28 bytes):
//! ```text
//! +---------------+---------------+---------------+---------------+
//! |                     magic "jool" (4 bytes)                    |
//! +---------------------------------------------------------------+
//! |                 version (u32, big-endian)                     |
//! +---------------+---------------+---------------+---------------+
//! |    xt (u8)    |  flags (u8)   | reserved1 (u8)| reserved2 (u8)|
//! +---------------+---------------+---------------+---------------+
//! |          iname: 16 bytes, NUL padded ("default")              |
//! ```
//! 4.0.8 – 4.1.4 and 4.2.0-rc1 (24 bytes): the same without the magic.

use super::{check, Error, Result};

/// `JOOLNL_HDR_MAGIC`.
pub const MAGIC: [u8; 4] = *b"jool";
/// `XT_SIIT`.
pub const XT_SIIT: u8 = 1;
/// `XT_NAT64`.
pub const XT_NAT64: u8 = 2;
/// `XT_MAPT` (4.2.0-rc2+).
pub const XT_MAPT: u8 = 4;
/// `JOOLNLHDR_FLAGS_ERROR`: the message is an error report.
pub const FLAG_ERROR: u8 = 1 << 0;
/// `JOOLNLHDR_FLAGS_FORCE`.
pub const FLAG_FORCE: u8 = 1 << 1;
/// `JOOLNLHDR_FLAGS_QUICK`.
pub const FLAG_QUICK: u8 = 1 << 2;
/// `JOOLNLHDR_FLAGS_M`: more data; request it with an offset.
pub const FLAG_M: u8 = 1 << 3;
/// `INAME_MAX_SIZE`.
pub const INAME_LEN: usize = 16;
/// `JNLAERR_CODE` (u16 errno): [`ErrorAttr::Code`](super::family::ErrorAttr).
pub const JNLAERR_CODE: u16 = super::family::ErrorAttr::Code as u16;
/// `JNLAERR_MSG` (NUL-terminated string): [`ErrorAttr::Msg`](super::family::ErrorAttr).
pub const JNLAERR_MSG: u16 = super::family::ErrorAttr::Msg as u16;

/// Which of the two header layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 24 bytes, no magic.
    V1,
    /// 28 bytes, magic first.
    V2,
}

impl Layout {
    /// The layout of a `header_len`-byte header, if it is one of the two.
    pub fn from_len(len: usize) -> Option<Self> {
        match len {
            24 => Some(Self::V1),
            28 => Some(Self::V2),
            _ => None,
        }
    }

    /// Header length in bytes.
    pub const fn header_len(self) -> usize {
        match self {
            Self::V1 => 24,
            Self::V2 => 28,
        }
    }

    /// Offset of the flags byte from the start of the header.
    pub const fn flags_offset(self) -> usize {
        self.base() + 5
    }

    const fn base(self) -> usize {
        match self {
            Self::V1 => 0,
            Self::V2 => 4,
        }
    }
}

/// A read/write view of a Jool header in one of the two layouts.
#[derive(Debug, Clone)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
    layout: Layout,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T, layout: Layout) -> Self {
        Self { buffer, layout }
    }

    /// Wraps a buffer and checks the whole header is present.
    pub fn new_checked(buffer: T, layout: Layout) -> Result<Self> {
        let h = Self::new_unchecked(buffer, layout);
        h.check_len()?;
        Ok(h)
    }

    /// Checks the header fits in the buffer.
    pub fn check_len(&self) -> Result<()> {
        check(
            "joolnlhdr",
            self.buffer.as_ref().len(),
            self.layout.header_len(),
        )
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    fn at(&self, i: usize) -> u8 {
        self.buffer.as_ref()[self.layout.base() + i]
    }

    /// The magic bytes (V2 only).
    pub fn magic(&self) -> Option<[u8; 4]> {
        let b = self.buffer.as_ref();
        match self.layout {
            Layout::V1 => None,
            Layout::V2 => Some([b[0], b[1], b[2], b[3]]),
        }
    }

    /// The version word.
    pub fn version(&self) -> u32 {
        let b = self.layout.base();
        let s = &self.buffer.as_ref()[b..b + 4];
        u32::from_be_bytes([s[0], s[1], s[2], s[3]])
    }

    /// Translator type.
    pub fn xt(&self) -> u8 {
        self.at(4)
    }

    /// Flags.
    pub fn flags(&self) -> u8 {
        self.at(5)
    }

    /// `reserved1`, `reserved2`.
    pub fn reserved(&self) -> [u8; 2] {
        [self.at(6), self.at(7)]
    }

    /// The 16 instance-name bytes, as sent.
    pub fn iname(&self) -> &[u8] {
        let b = self.layout.base() + 8;
        &self.buffer.as_ref()[b..b + INAME_LEN]
    }

    /// The header bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.layout.header_len()]
    }

    /// What follows the header (attributes).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.layout.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    fn at_mut(&mut self, i: usize) -> &mut u8 {
        let b = self.layout.base();
        &mut self.buffer.as_mut()[b + i]
    }

    /// Sets the magic (no-op for V1).
    pub fn set_magic(&mut self, m: [u8; 4]) {
        if self.layout == Layout::V2 {
            self.buffer.as_mut()[..4].copy_from_slice(&m);
        }
    }

    /// Sets the version word.
    pub fn set_version(&mut self, v: u32) {
        let b = self.layout.base();
        self.buffer.as_mut()[b..b + 4].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the translator type.
    pub fn set_xt(&mut self, v: u8) {
        *self.at_mut(4) = v;
    }

    /// Sets the flags.
    pub fn set_flags(&mut self, v: u8) {
        *self.at_mut(5) = v;
    }

    /// Sets both reserved bytes.
    pub fn set_reserved(&mut self, v: [u8; 2]) {
        *self.at_mut(6) = v[0];
        *self.at_mut(7) = v[1];
    }

    /// Sets the 16 instance-name bytes.
    pub fn set_iname(&mut self, v: &[u8; INAME_LEN]) {
        let b = self.layout.base() + 8;
        self.buffer.as_mut()[b..b + INAME_LEN].copy_from_slice(v);
    }
}

/// The meaning of a Jool header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Layout (24 or 28 bytes).
    pub layout: Layout,
    /// Magic as sent (V2); [`MAGIC`] for a valid one.
    pub magic: [u8; 4],
    /// Version word.
    pub version: u32,
    /// Translator type.
    pub xt: u8,
    /// Flags.
    pub flags: u8,
    /// Reserved bytes, kept so a reply can echo them.
    pub reserved: [u8; 2],
    /// Instance name bytes, kept whole (junk after the NUL included).
    pub iname: [u8; INAME_LEN],
}

impl Repr {
    /// A request header as the client builds it.
    pub fn request(
        layout: Layout,
        version: u32,
        xt: u8,
        iname: &str,
    ) -> Result<Self> {
        Ok(Self {
            layout,
            magic: MAGIC,
            version,
            xt,
            flags: 0,
            reserved: [0; 2],
            iname: encode_iname(iname)?,
        })
    }

    /// Reads a checked header; the magic is kept as is (checking it is
    /// the reader's business, with its own error text).
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Result<Self> {
        h.check_len()?;
        let mut iname = [0; INAME_LEN];
        iname.copy_from_slice(h.iname());
        Ok(Self {
            layout: h.layout(),
            magic: h.magic().unwrap_or(MAGIC),
            version: h.version(),
            xt: h.xt(),
            flags: h.flags(),
            reserved: h.reserved(),
            iname,
        })
    }

    /// Bytes `emit` writes.
    pub const fn buffer_len(&self) -> usize {
        self.layout.header_len()
    }

    /// Writes the header.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Self::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Header<T>) {
        h.set_magic(self.magic);
        h.set_version(self.version);
        h.set_xt(self.xt);
        h.set_flags(self.flags);
        h.set_reserved(self.reserved);
        h.set_iname(&self.iname);
    }

    /// Emits into a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(&mut Header::new_unchecked(&mut v[..], self.layout));
        v
    }

    /// Whether the magic is `"jool"` (always true for V1).
    pub fn magic_ok(&self) -> bool {
        self.layout == Layout::V1 || self.magic == MAGIC
    }

    /// The instance name up to the first NUL, if there is one.
    pub fn iname_str(&self) -> Option<&[u8]> {
        let end = self.iname.iter().position(|&b| b == 0)?;
        Some(&self.iname[..end])
    }
}

/// Encodes an instance name into its 16 NUL-padded bytes.
pub fn encode_iname(name: &str) -> Result<[u8; INAME_LEN]> {
    let b = name.as_bytes();
    if b.len() >= INAME_LEN {
        return Err(Error::BadValue {
            what: "instance name length",
            value: b.len() as u64,
        });
    }
    let mut out = [0; INAME_LEN];
    out[..b.len()].copy_from_slice(b);
    Ok(out)
}

#[cfg(test)]
mod test {
    use super::*;

    // The header of `jool_siit stats display` 4.1.9
    // (fixtures/conformance-4.1.9/root.json, `stats_siit`).
    static V2: [u8; 28] = [
        0x6a, 0x6f, 0x6f, 0x6c, // magic "jool"
        0x04, 0x01, 0x09, 0x00, // version 4.1.9.0, big-endian
        0x01, // xt = SIIT
        0x00, // flags
        0x00, 0x00, // reserved1, reserved2
        b'd', b'e', b'f', b'a', b'u', b'l', b't', 0, 0, 0, 0, 0, 0, 0, 0,
        0, // iname
    ];

    fn repr() -> Repr {
        Repr::request(Layout::V2, 0x0401_0900, XT_SIIT, "default").unwrap()
    }

    #[test]
    fn test_deconstruct() {
        let h = Header::new_checked(&V2[..], Layout::V2).unwrap();
        assert_eq!(Repr::parse(&h).unwrap(), repr());
        assert_eq!(repr().iname_str(), Some(&b"default"[..]));
    }

    #[test]
    fn test_construct() {
        let mut buf = [0xa5; 28];
        repr().emit(&mut Header::new_unchecked(&mut buf[..], Layout::V2));
        assert_eq!(buf, V2);
    }

    #[test]
    fn test_v1_layout() {
        let r = Repr { layout: Layout::V1, ..repr() };
        let v = r.to_vec();
        assert_eq!(v.len(), 24);
        assert_eq!(v[..], V2[4..]);
        let h = Header::new_checked(&v[..], Layout::V1).unwrap();
        assert_eq!(Repr::parse(&h).unwrap(), r);
    }

    #[test]
    fn test_impossible_len() {
        assert!(Header::new_checked(&V2[..27], Layout::V2).is_err());
        assert!(encode_iname("0123456789abcdef").is_err());
    }
}
