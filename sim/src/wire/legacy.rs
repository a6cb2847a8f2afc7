//! The 4.0.0 – 4.0.7 protocol: `struct request_hdr` (16 bytes) inside
//! attribute `ATTR_DATA`, and `struct response_hdr` (20 bytes) in replies.
//!
//! ```text
//!  0       4       5       6       7       8              12      13      14    16
//! +-------+-------+-------+-------+-------+--------------+-------+-------+------+
//! | magic | b4    | b5    | b6    | b7    | version (BE) | mode  | oper. | slop2|
//! +-------+-------+-------+-------+-------+--------------+-------+-------+------+
//! ```
//! Bytes 4 – 7 depend on the release: 4.0.0 – 4.0.1 `type` ('s'/'n'),
//! castness, force, slop1; 4.0.2 – 4.0.5 castness, force, slop1 (u16);
//! 4.0.6 – 4.0.7 `xt`, castness, force, slop1.
//! A response appends `error_code` (u16), `pending_data` (u8) and a pad
//! byte to the echoed request header.

use super::{check, read_u16, read_u32, Result};

/// `ATTR_INAME` (string).
pub const ATTR_INAME: u16 = 1;
/// `ATTR_DATA` (binary: request_hdr + payload).
pub const ATTR_DATA: u16 = 2;
/// The only genl command, `JOOL_COMMAND`.
pub const JOOL_COMMAND: u8 = 0;
/// `struct request_hdr` length.
pub const REQUEST_LEN: usize = 16;
/// `struct response_hdr` length.
pub const RESPONSE_LEN: usize = 20;
/// `OP_FOREACH`: [`ConfigOp::Foreach`].
pub const OP_FOREACH: u8 = ConfigOp::Foreach as u8;

numbered! {
    /// `enum config_operation` (4.0.0 – 4.0.7): what a request does to
    /// the `config_mode` its header names.
    pub enum ConfigOp: u8 {
        /// `OP_FOREACH`.
        Foreach = 0,
        /// `OP_ADD`.
        Add = 1,
        /// `OP_UPDATE`.
        Update = 2,
        /// `OP_REMOVE`.
        Remove = 3,
        /// `OP_FLUSH`.
        Flush = 4,
        /// `OP_ADVERTISE`.
        Advertise = 5,
        /// `OP_TEST`.
        Test = 6,
        /// `OP_ACK`.
        Ack = 7,
    }
}

/// A read view of a request (or the start of a response) header.
#[derive(Debug, Clone)]
pub struct RequestHdr<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RequestHdr<T> {
    /// Wraps and checks the 16 bytes are present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        check("request_hdr", buffer.as_ref().len(), REQUEST_LEN)?;
        Ok(Self { buffer })
    }

    /// The 4 magic bytes.
    pub fn magic(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [b[0], b[1], b[2], b[3]]
    }

    /// Byte 4 (`type` or `xt` or castness, by release).
    pub fn byte4(&self) -> u8 {
        self.buffer.as_ref()[4]
    }

    /// Version word (big-endian on the wire).
    pub fn version(&self) -> u32 {
        let b = &self.buffer.as_ref()[8..12];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// `mode`.
    pub fn mode(&self) -> u8 {
        self.buffer.as_ref()[12]
    }

    /// `operation`.
    pub fn operation(&self) -> u8 {
        self.buffer.as_ref()[13]
    }

    /// The 16 header bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..REQUEST_LEN]
    }

    /// What follows the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[REQUEST_LEN..]
    }
}

/// Zeroes the padding byte after `pending_data` in each legacy reply of
/// `datagram` (a genl message whose first attribute is `ATTR_DATA`
/// holding a `response_hdr`). 4.0.x builds the header on the stack and
/// sets its fields one by one (`nlbuffer_init_response`, v4.0.7
/// src/mod/common/nl/nl_core.c), so that byte is whatever the kernel
/// stack held: 0xff in one real 4.0.7 reply, 0 in the simulator's. A
/// comparison must not read it. Anything else is left as it is.
pub fn mask_response_padding(datagram: &mut [u8]) {
    for_each_response(datagram, |value| value[RESPONSE_LEN - 1] = 0);
}

/// `sizeof(struct instance_entry_usr)` (4.0.0 – 4.0.7, x86_64).
pub const INSTANCE_ENTRY_LEN: usize = 32;

/// Zeroes what a real kernel cannot answer alike twice in each entry of
/// a successful `MODE_INSTANCE`/`OP_FOREACH` reply of `datagram` (a
/// legacy reply whose `response_hdr` echoes mode 0, operation 0, error
/// 0). `xlator_entry_to_userspace` (v4.0.0 – v4.0.7
/// src/mod/common/nl/instance.c) fills a `struct instance_entry_usr` on
/// its stack and copies all 32 bytes of it:
/// - bytes 0 – 7, `ns`: the namespace's `struct net *`, a kernel address
///   (KASLR);
/// - bytes 9 – 24, `iname`: set with `strcpy`, so the bytes after the
///   name's NUL are the stack's (the name and its NUL are compared);
/// - bytes 25 – 31: padding (4.0.0 – 4.0.6) or `slop[7]` (4.0.7), never
///   written: the stack's (nonzero in every real capture).
///
/// Byte 8 (`fw`/`xf`), the entry count, the header and `pending_data`
/// are left as they are.
pub fn mask_instance_entries(datagram: &mut [u8]) {
    for_each_response(datagram, |value| {
        let (hdr, entries) = value.split_at_mut(RESPONSE_LEN);
        if hdr[12] != 0 || hdr[13] != OP_FOREACH || hdr[16..18] != [0, 0] {
            return;
        }
        for e in entries.chunks_exact_mut(INSTANCE_ENTRY_LEN) {
            e[..8].fill(0);
            let name = &mut e[9..25];
            if let Some(nul) = name.iter().position(|&b| b == 0) {
                name[nul + 1..].fill(0);
            }
            e[25..].fill(0);
        }
    });
}

/// Calls `f` with the `ATTR_DATA` value (at least a `response_hdr`) of
/// each legacy reply in `datagram`: a message of a genl family (not an
/// error) whose first attribute is `ATTR_DATA`. Stops at a message
/// whose length is impossible.
fn for_each_response(datagram: &mut [u8], mut f: impl FnMut(&mut [u8])) {
    use super::nlmsg::{HEADER_LEN, NLMSG_ERROR};
    let data = HEADER_LEN + 4 + 4; // genl header, then the attribute's
    let mut off = 0usize;
    while let Some(m) = datagram.get_mut(off..) {
        if m.len() < HEADER_LEN {
            break;
        }
        let len = read_u32(&m[..4]) as usize;
        let kind = read_u16(&m[4..6]);
        if kind != NLMSG_ERROR && kind >= 0x10 && m.len().min(len) >= data {
            let nla_len = usize::from(read_u16(&m[HEADER_LEN + 4..]));
            let nla_kind = read_u16(&m[HEADER_LEN + 6..]) & 0x3fff;
            let end = (HEADER_LEN + 4 + nla_len).min(len).min(m.len());
            if nla_kind == ATTR_DATA && end >= data + RESPONSE_LEN {
                f(&mut m[data..end]);
            }
        }
        if len < HEADER_LEN {
            break;
        }
        off = off.saturating_add((len + 3) & !3);
    }
}

/// A read view of a `response_hdr`.
#[derive(Debug, Clone)]
pub struct ResponseHdr<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ResponseHdr<T> {
    /// Wraps and checks the 20 bytes are present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        check("response_hdr", buffer.as_ref().len(), RESPONSE_LEN)?;
        Ok(Self { buffer })
    }

    /// The echoed request header.
    pub fn request(&self) -> RequestHdr<&[u8]> {
        RequestHdr { buffer: &self.buffer.as_ref()[..REQUEST_LEN] }
    }

    /// `error_code` (positive errno, 0 on success).
    pub fn error_code(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[16..18])
    }

    /// `pending_data`.
    pub fn pending_data(&self) -> u8 {
        self.buffer.as_ref()[18]
    }

    /// The payload after the 20 bytes.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[RESPONSE_LEN..]
    }
}

/// Builds a 16-byte request header.
pub fn request_bytes(
    b4_7: [u8; 4],
    version: u32,
    mode: u8,
    operation: u8,
) -> [u8; REQUEST_LEN] {
    let mut h = [0; REQUEST_LEN];
    h[..4].copy_from_slice(b"jool");
    h[4..8].copy_from_slice(&b4_7);
    h[8..12].copy_from_slice(&version.to_be_bytes());
    h[12] = mode;
    h[13] = operation;
    h
}

/// `MODE_INSTANCE`, the first configuration mode of every 4.0.x release.
pub const MODE_INSTANCE: u8 = 0;

/// `sizeof(union request_instance)`: what the 4.0.x client sends after
/// the request header for every instance operation (its `foreach` arm,
/// a flag and a pointer-aligned `instance_entry_usr`, is the largest).
pub const INSTANCE_BODY_LEN: usize = 48;

/// The body of a 4.0.x `instance add`: `union request_instance`'s `add`
/// arm (v4.0.0 to v4.0.7 src/common/config.h): the framework byte (`FW_*`
/// before 4.0.6, `XF_*` after), the NUL-padded name at 1, then
/// `struct config_prefix6` at 20 (`set`, the address at 24, the length
/// at 40). The C client leaves the bytes it does not set as its stack
/// held them; these are zero.
pub fn instance_add_body(
    framework: u8,
    iname: &[u8],
    pool6: Option<([u8; 16], u8)>,
) -> [u8; INSTANCE_BODY_LEN] {
    let mut b = [0; INSTANCE_BODY_LEN];
    b[0] = framework;
    let n = iname.len().min(15);
    b[1..1 + n].copy_from_slice(&iname[..n]);
    if let Some((addr, len)) = pool6 {
        b[20] = 1;
        b[24..40].copy_from_slice(&addr);
        b[40] = len;
    }
    b
}

/// The body of a 4.0.x `instance remove` (`rm` arm: the name at 0) or
/// hello (`hello` arm, the same layout).
pub fn instance_name_body(iname: &[u8]) -> [u8; INSTANCE_BODY_LEN] {
    let mut b = [0; INSTANCE_BODY_LEN];
    let n = iname.len().min(15);
    b[..n].copy_from_slice(&iname[..n]);
    b
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_request_roundtrip() {
        let h = request_bytes([1, 0, 0, 0], 0x0400_0700, 2, OP_FOREACH);
        let v = RequestHdr::new_checked(&h[..]).unwrap();
        assert_eq!(v.magic(), *b"jool");
        assert_eq!(v.byte4(), 1);
        assert_eq!(v.version(), 0x0400_0700);
        assert_eq!((v.mode(), v.operation()), (2, 0));
    }

    #[test]
    fn test_impossible_len() {
        assert!(RequestHdr::new_checked(&[0u8; 15][..]).is_err());
        assert!(ResponseHdr::new_checked(&[0u8; 19][..]).is_err());
    }

    /// The real 4.0.7 listing (probe, root run): the pointer, the name's
    /// bytes after its NUL (stack bytes; zero in that capture, 0xaa here)
    /// and `slop` are zeroed; `xf`, the name and the headers are not.
    #[test]
    fn test_mask_instance_entries() {
        let real = "4c0000001d000000140000007800000000010000380002006a6f6f6c017500000400070000000000000000664068c193ffffffff0464656661756c74000000000000000000c2fe781843cc59";
        let mut d = super::super::hex::decode(real).unwrap();
        d[44 + 9 + 8..44 + 25].fill(0xaa);
        let before = d.clone();
        mask_instance_entries(&mut d);
        let e = &d[44..76];
        assert_eq!(e[..8], [0; 8], "ns");
        assert_eq!(e[8], 4, "XF_NETFILTER");
        assert_eq!(&e[9..25], b"default\0\0\0\0\0\0\0\0\0");
        assert_eq!(e[25..], [0; 7], "slop");
        assert_eq!(d[..44], before[..44], "headers, pad byte 0x66 too");
        // A reply of another operation, or an error: as is.
        for (at, v) in [(24 + 13, 6u8), (24 + 16, 3)] {
            let mut other = before.clone();
            other[at] = v;
            let copy = other.clone();
            mask_instance_entries(&mut other);
            assert_eq!(other, copy);
        }
    }

    #[test]
    fn test_mask_response_padding() {
        // nlmsghdr (len 48, type 0x1d), genl header, ATTR_DATA of 24:
        // response_hdr with the padding byte 0xff.
        let mut m = vec![0u8; 48];
        m[..4].copy_from_slice(&48u32.to_ne_bytes());
        m[4..6].copy_from_slice(&0x1du16.to_ne_bytes());
        m[20..22].copy_from_slice(&24u16.to_ne_bytes());
        m[22..24].copy_from_slice(&ATTR_DATA.to_ne_bytes());
        m[24 + 16] = 3; // error_code
        m[24 + 19] = 0xff;
        let mut masked = m.clone();
        mask_response_padding(&mut masked);
        assert_eq!(masked[43], 0);
        assert_eq!(masked[40], 3, "only the padding byte");
        // Another attribute first, an error message, a short one: as is.
        let mut other = m.clone();
        other[22] = 1;
        mask_response_padding(&mut other);
        assert_eq!(other[43], 0xff);
        let mut err = m.clone();
        err[4] = 2;
        mask_response_padding(&mut err);
        assert_eq!(err[43], 0xff);
        let mut short = m[..40].to_vec();
        mask_response_padding(&mut short);
        assert_eq!(short, m[..40]);
    }
}
