//! `struct nlattr` and attribute streams.
//!
//! ```text
//! +-------------------------------+-------------------------------+
//! |        nla_len (u16)          | N | O |  nla_type (14 bits)   |
//! +-------------------------------+-------------------------------+
//! |        value (nla_len - 4 bytes), padded to 4 bytes           |
//! ```
//! `N` = `NLA_F_NESTED` (0x8000), `O` = `NLA_F_NET_BYTEORDER` (0x4000).

use super::{align4, check, read_u16, Error, Field, Result};

mod field {
    use super::Field;
    pub(crate) const LENGTH: Field = 0..2;
    pub(crate) const TYPE: Field = 2..4;
}

/// `NLA_HDRLEN`.
pub const HEADER_LEN: usize = 4;
/// `NLA_F_NESTED`.
pub const F_NESTED: u16 = 0x8000;
/// `NLA_F_NET_BYTEORDER`.
pub const F_NET_BYTEORDER: u16 = 0x4000;
/// `NLA_TYPE_MASK`.
pub const TYPE_MASK: u16 = !(F_NESTED | F_NET_BYTEORDER);

/// A read/write view of one attribute.
#[derive(Debug, Clone)]
pub struct NlaBuffer<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NlaBuffer<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer and checks `HEADER_LEN <= nla_len <= buffer length`.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let a = Self::new_unchecked(buffer);
        a.check_len()?;
        Ok(a)
    }

    /// Checks the header is present and the length fits.
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        check("nlattr", have, HEADER_LEN)?;
        let len = usize::from(self.length());
        if len < HEADER_LEN || len > have {
            return Err(Error::BadLength { what: "nlattr", len, have });
        }
        Ok(())
    }

    /// `nla_len`: header plus value, without padding.
    pub fn length(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The raw `nla_type`, flags included.
    pub fn raw_kind(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::TYPE])
    }

    /// `nla_type` without the flag bits.
    pub fn kind(&self) -> u16 {
        self.raw_kind() & TYPE_MASK
    }

    /// Whether `NLA_F_NESTED` is set.
    pub fn nested_flag(&self) -> bool {
        self.raw_kind() & F_NESTED != 0
    }

    /// The value: bytes `4 .. nla_len`.
    pub fn value(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.length())]
    }
}

/// Walks a stream of attributes, yielding errors. Stops for good after the
/// first error (it is fused), like netlink-packet-core's `NlasIterator`.
///
/// The kernel's `nla_for_each_attr` stops at the first attribute that does
/// not fit and calls the rest "leftover": here that is an error.
#[derive(Debug, Clone)]
pub struct NlasIterator<'a> {
    rest: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> NlasIterator<'a> {
    /// Iterates the attributes in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf, offset: 0, failed: false }
    }

    /// Offset of the next attribute from the start of the stream.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for NlasIterator<'a> {
    type Item = Result<NlaBuffer<&'a [u8]>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match NlaBuffer::new_checked(self.rest) {
            Ok(a) => {
                let len = usize::from(a.length());
                let nla = NlaBuffer::new_unchecked(&self.rest[..len]);
                let adv = align4(len).min(self.rest.len());
                self.rest = &self.rest[adv..];
                self.offset += adv;
                Some(Ok(nla))
            }
            Err(_) => {
                self.failed = true;
                Some(Err(Error::TrailingData {
                    what: "attributes",
                    len: self.rest.len(),
                }))
            }
        }
    }
}

impl core::iter::FusedIterator for NlasIterator<'_> {}

/// Appends netlink structures to a byte vector, with the kernel's padding
/// rules (zeroed pad bytes, lengths without trailing padding).
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from existing bytes.
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Pads with zeros to the 4-byte alignment.
    pub fn pad(&mut self) -> &mut Self {
        let n = align4(self.buf.len());
        self.buf.resize(n, 0);
        self
    }

    /// Appends an attribute (header, value, zero padding).
    pub fn attr(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = (HEADER_LEN + value.len()) as u16;
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&kind.to_le_bytes());
        self.buf.extend_from_slice(value);
        self.pad()
    }

    /// Appends a u8 attribute.
    pub fn u8(&mut self, kind: u16, v: u8) -> &mut Self {
        self.attr(kind, &[v])
    }

    /// Appends a u16 attribute.
    pub fn u16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.attr(kind, &v.to_le_bytes())
    }

    /// Appends a u32 attribute.
    pub fn u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_le_bytes())
    }

    /// Appends a u64 attribute.
    pub fn u64(&mut self, kind: u16, v: u64) -> &mut Self {
        self.attr(kind, &v.to_le_bytes())
    }

    /// Appends a NUL-terminated string attribute.
    pub fn string(&mut self, kind: u16, s: &[u8]) -> &mut Self {
        let mut v = s.to_vec();
        v.push(0);
        self.attr(kind, &v)
    }

    /// Opens a nested attribute; close it with [`Self::end_nest`].
    pub fn begin_nest(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_le_bytes());
        at
    }

    /// Closes the nested attribute opened at `at`.
    pub fn end_nest(&mut self, at: usize) -> &mut Self {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_le_bytes());
        self
    }

    /// Overwrites a little-endian u32 at `at` (for `nlmsg_len`).
    pub fn set_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// ORs `bits` into the byte at `at` (for flags fixed up late).
    ///
    /// # Panics
    /// If `at` is past the bytes written.
    pub fn or_byte(&mut self, at: usize, bits: u8) {
        self.buf[at] |= bits;
    }

    /// The bytes written.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // Two counters of a real 4.1.9 stats reply.
    static TWO: [u8; 24] = [
        0x0c, 0x00, // nla_len = 12
        0x01, 0x00, // nla_type = 1 (JSTAT_RECEIVED6)
        0x2a, 0, 0, 0, 0, 0, 0, 0, // u64 42
        0x0c, 0x00, // nla_len = 12
        0x02, 0x00, // nla_type = 2
        0, 0, 0, 0, 0, 0, 0, 0, // u64 0
    ];

    #[test]
    fn test_deconstruct() {
        let attrs: Vec<_> =
            NlasIterator::new(&TWO).collect::<Result<_>>().unwrap();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0].kind(), 1);
        assert_eq!(attrs[0].value(), &42u64.to_le_bytes());
        assert!(!attrs[1].nested_flag());
    }

    #[test]
    fn test_construct() {
        let mut w = Writer::from_vec(vec![]);
        w.u64(1, 42).u64(2, 0);
        assert_eq!(w.as_slice(), &TWO);
        let mut w = Writer::new();
        w.u8(9, 30);
        assert_eq!(w.as_slice(), &[5, 0, 9, 0, 30, 0, 0, 0]);
    }

    #[test]
    fn test_iterator_is_fused_after_error() {
        let mut bad = TWO.to_vec();
        bad[12] = 40; // second attribute claims 40 bytes
        let mut it = NlasIterator::new(&bad);
        assert!(it.next().unwrap().is_ok());
        assert!(matches!(
            it.next(),
            Some(Err(Error::TrailingData { len: 12, .. }))
        ));
        assert!(it.next().is_none());
    }

    #[test]
    fn test_impossible_len() {
        assert!(NlaBuffer::new_checked(&[3u8, 0, 9, 0][..]).is_err());
        assert!(NlaBuffer::new_checked(&[5u8, 0, 9][..]).is_err());
    }
}
