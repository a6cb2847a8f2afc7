//! The netlink messages of an nlmon pcap file.

use std::fmt;

use jool_sim::wire::nlmsg;

/// One netlink message of a pcap record, with its direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Sent to the kernel (a request), else to userspace (a reply).
    pub to_kernel: bool,
    /// The netlink message bytes.
    pub bytes: Vec<u8>,
}

/// Why a pcap file could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcapError {
    /// Shorter than the 24-byte global header.
    TooShort(usize),
    /// The magic number is none of the four pcap magics.
    NotPcap,
    /// The link type is not `LINKTYPE_NETLINK` (253).
    NotNetlink(Option<u32>),
    /// A record header or its data runs past the end of the file.
    Truncated {
        /// Where the record starts.
        at: usize,
    },
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort(n) => write!(f, "pcap too short ({n} bytes)"),
            Self::NotPcap => f.write_str("not a pcap file"),
            Self::NotNetlink(Some(t)) => {
                write!(f, "not a NETLINK (253) capture: link type {t}")
            }
            Self::NotNetlink(None) => {
                f.write_str("not a NETLINK (253) capture: no link type")
            }
            Self::Truncated { at } => {
                write!(f, "truncated record at byte {at}")
            }
        }
    }
}

impl std::error::Error for PcapError {}

/// `NETLINK_GENERIC`.
const NETLINK_GENERIC: u16 = 16;

/// Size of the global header.
const GLOBAL_HEADER: usize = 24;

/// The NETLINK_GENERIC messages of a pcap (link type 253: a 16-byte cooked
/// header, then the netlink messages of one skb).
///
/// # Errors
/// [`PcapError`] saying what is wrong with the file.
pub fn read_pcap(bytes: &[u8]) -> Result<Vec<Message>, PcapError> {
    if bytes.len() < GLOBAL_HEADER {
        return Err(PcapError::TooShort(bytes.len()));
    }
    let le = match &bytes[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err(PcapError::NotPcap),
    };
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(v) } else { u32::from_be_bytes(v) })
    };
    match u32_at(bytes, 20) {
        Some(253) => {}
        other => return Err(PcapError::NotNetlink(other)),
    }
    let mut out = Vec::new();
    let mut at = GLOBAL_HEADER;
    while at < bytes.len() {
        let len = u32_at(bytes, at + 8).ok_or(PcapError::Truncated { at })?;
        let data = usize::try_from(len)
            .ok()
            .and_then(|len| bytes.get(at + 16..(at + 16).checked_add(len)?))
            .ok_or(PcapError::Truncated { at })?;
        at += 16 + data.len();
        let Some(cooked) = data.get(..16) else { continue };
        let proto = u16::from_be_bytes([cooked[14], cooked[15]]);
        if proto != NETLINK_GENERIC {
            continue;
        }
        for m in nlmsg::Messages::new(&data[16..]) {
            // nlmon marks every message outgoing: requests are those with
            // NLM_F_REQUEST.
            let to_kernel = m.flags() & nlmsg::F_REQUEST != 0;
            out.push(Message { to_kernel, bytes: m.message().to_vec() });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod test {
    use jool_sim::wire::hex;

    use super::*;

    /// Every message a step's `.netlink` file holds was read from the
    /// case's nlmon pcap (the file is made from the pcap by `write_steps`).
    #[test]
    fn test_read_pcap_finds_the_captured_messages() {
        let dir =
            crate::suite::default_suites_dir().join("../captures/4.1.9-vm");
        let pcap = dir.join("pcap/errors__abbreviations__init.pcap");
        let msgs = read_pcap(&std::fs::read(pcap).unwrap()).unwrap();
        assert!(msgs.iter().any(|m| m.to_kernel));
        assert!(msgs.iter().any(|m| !m.to_kernel));
        let text = std::fs::read_to_string(
            dir.join("errors/abbreviations/01.netlink"),
        )
        .unwrap();
        let mut n = 0;
        for line in text.lines() {
            let (dir, h) = line.split_at(1);
            let bytes = hex::decode(h.trim()).unwrap();
            let found = msgs
                .iter()
                .any(|m| m.bytes == bytes && m.to_kernel == (dir == ">"));
            assert!(found, "{line}");
            n += 1;
        }
        assert!(n >= 2, "{n}");
    }

    /// Each way a file can be wrong has its error, and no prefix of a
    /// real capture panics.
    #[test]
    fn test_read_pcap_rejects_bad_files_with_what_is_wrong() {
        assert_eq!(read_pcap(b"not a pcap"), Err(PcapError::TooShort(10)));
        assert_eq!(read_pcap(&[0u8; 24]), Err(PcapError::NotPcap));
        let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1];
        h.resize(20, 0);
        h.extend(1u32.to_le_bytes());
        assert_eq!(read_pcap(&h), Err(PcapError::NotNetlink(Some(1))));
        let dir =
            crate::suite::default_suites_dir().join("../captures/4.1.9-vm");
        let real =
            std::fs::read(dir.join("pcap/errors__abbreviations__init.pcap"))
                .unwrap();
        let mut truncated = 0;
        for n in GLOBAL_HEADER..real.len() {
            if let Err(e) = read_pcap(&real[..n]) {
                assert!(matches!(e, PcapError::Truncated { .. }), "{e}");
                truncated += 1;
            }
        }
        assert!(truncated > 0);
    }
}
