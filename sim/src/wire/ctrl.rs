//! nlctrl's `CTRL_CMD_NEWFAMILY`: what the kernel answers a
//! `CTRL_CMD_GETFAMILY`, read into a [`Family`] (id, name, version,
//! header size, max attribute, operations, multicast groups).
//!
//! ```text
//! nlmsghdr (type GENL_ID_CTRL) | genlmsghdr (cmd NEWFAMILY) |
//!   CTRL_ATTR_FAMILY_ID u16 | CTRL_ATTR_FAMILY_NAME string |
//!   CTRL_ATTR_VERSION u32 | CTRL_ATTR_HDRSIZE u32 | CTRL_ATTR_MAXATTR u32 |
//!   CTRL_ATTR_OPS { {CTRL_ATTR_OP_ID u32, CTRL_ATTR_OP_FLAGS u32}... } |
//!   CTRL_ATTR_MCAST_GROUPS { {CTRL_ATTR_MCAST_GRP_ID u32,
//!                             CTRL_ATTR_MCAST_GRP_NAME string}... }
//! ```

use super::{
    genl::{
        self, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_HDRSIZE,
        CTRL_ATTR_MAXATTR, CTRL_ATTR_MCAST_GROUPS, CTRL_ATTR_OPS,
        CTRL_ATTR_VERSION, CTRL_CMD_NEWFAMILY,
    },
    nla::{NlaBuffer, NlasIterator},
    nlmsg::{self, Packet, GENL_ID_CTRL},
    Error, Result,
};

/// `CTRL_ATTR_OP_ID` inside an operation.
const CTRL_ATTR_OP_ID: u16 = 1;
/// `CTRL_ATTR_OP_FLAGS` inside an operation.
const CTRL_ATTR_OP_FLAGS: u16 = 2;
/// `CTRL_ATTR_MCAST_GRP_NAME` inside a multicast group.
const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
/// `CTRL_ATTR_MCAST_GRP_ID` inside a multicast group.
const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;

/// A generic netlink family as nlctrl describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Family {
    /// `CTRL_ATTR_FAMILY_ID`: the `nlmsg_type` of its messages.
    pub id: u16,
    /// `CTRL_ATTR_FAMILY_NAME`.
    pub name: String,
    /// `CTRL_ATTR_VERSION`.
    pub version: u32,
    /// `CTRL_ATTR_HDRSIZE`: the family's user header length.
    pub hdrsize: u32,
    /// `CTRL_ATTR_MAXATTR`.
    pub maxattr: u32,
    /// `CTRL_ATTR_OPS`: (command, `GENL_*` flags) of each operation.
    pub ops: Vec<(u32, u32)>,
    /// `CTRL_ATTR_MCAST_GROUPS`: (name, id) of each group.
    pub mcast_groups: Vec<(String, u32)>,
}

impl Family {
    /// Reads a `CTRL_CMD_NEWFAMILY` message (one netlink message, headers
    /// included). Unknown attributes are skipped, as libnl does.
    ///
    /// # Errors
    /// A message of another type or command, a malformed attribute
    /// stream, or a family without an id.
    pub fn parse(msg: &[u8]) -> Result<Self> {
        let p = Packet::new_checked(msg)?;
        if p.kind() != GENL_ID_CTRL {
            return Err(Error::BadValue {
                what: "nlctrl message type",
                value: p.kind().into(),
            });
        }
        let g = genl::Packet::new_checked(p.payload())?;
        if g.cmd() != CTRL_CMD_NEWFAMILY {
            return Err(Error::BadValue {
                what: "nlctrl command",
                value: g.cmd().into(),
            });
        }
        let mut f = Self::default();
        let mut id = None;
        for a in NlasIterator::new(g.payload()) {
            let a = a?;
            let v = a.value();
            match a.kind() {
                CTRL_ATTR_FAMILY_ID => id = Some(u16_of(v)?),
                CTRL_ATTR_FAMILY_NAME => f.name = string_of(v),
                CTRL_ATTR_VERSION => f.version = u32_of(v)?,
                CTRL_ATTR_HDRSIZE => f.hdrsize = u32_of(v)?,
                CTRL_ATTR_MAXATTR => f.maxattr = u32_of(v)?,
                CTRL_ATTR_OPS => f.ops = nests(v, op)?,
                CTRL_ATTR_MCAST_GROUPS => f.mcast_groups = nests(v, group)?,
                _ => {}
            }
        }
        f.id = id.ok_or(Error::BadValue {
            what: "nlctrl reply without CTRL_ATTR_FAMILY_ID",
            value: 0,
        })?;
        Ok(f)
    }

    /// [`Family::parse`] of the first message of a datagram that is one.
    pub fn find(datagram: &[u8]) -> Option<Self> {
        nlmsg::Messages::new(datagram)
            .find_map(|m| Self::parse(m.message()).ok())
    }

    /// The id of multicast group `name`.
    pub fn mcast_group(&self, name: &str) -> Option<u32> {
        self.mcast_groups.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }
}

/// The entries of a nest of nests (ops, groups), each read by `f`.
fn nests<T>(v: &[u8], f: fn(&[u8]) -> Result<T>) -> Result<Vec<T>> {
    NlasIterator::new(v).map(|e| f(e?.value())).collect()
}

fn op(v: &[u8]) -> Result<(u32, u32)> {
    let (mut id, mut flags) = (0, 0);
    for a in NlasIterator::new(v) {
        let a: NlaBuffer<&[u8]> = a?;
        match a.kind() {
            CTRL_ATTR_OP_ID => id = u32_of(a.value())?,
            CTRL_ATTR_OP_FLAGS => flags = u32_of(a.value())?,
            _ => {}
        }
    }
    Ok((id, flags))
}

fn group(v: &[u8]) -> Result<(String, u32)> {
    let (mut name, mut id) = (String::new(), 0);
    for a in NlasIterator::new(v) {
        let a = a?;
        match a.kind() {
            CTRL_ATTR_MCAST_GRP_NAME => name = string_of(a.value()),
            CTRL_ATTR_MCAST_GRP_ID => id = u32_of(a.value())?,
            _ => {}
        }
    }
    Ok((name, id))
}

fn u16_of(v: &[u8]) -> Result<u16> {
    let b: [u8; 2] = v.get(..2).and_then(|b| b.try_into().ok()).ok_or(
        Error::Truncated { what: "u16 attribute", need: 2, have: v.len() },
    )?;
    Ok(u16::from_le_bytes(b))
}

fn u32_of(v: &[u8]) -> Result<u32> {
    let b: [u8; 4] = v.get(..4).and_then(|b| b.try_into().ok()).ok_or(
        Error::Truncated { what: "u32 attribute", need: 4, have: v.len() },
    )?;
    Ok(u32::from_le_bytes(b))
}

/// A NUL-terminated string attribute, lossily decoded.
fn string_of(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::hex;

    /// The real 4.1.9 module's answer to `CTRL_CMD_GETFAMILY "Jool"`
    /// (fixtures/captures/4.1.9/netlink, Debian 12's 6.1): id 0x20,
    /// version 2, hdrsize 28, maxattr 13, 30 ops, group "joold" 5.
    const NEWFAMILY: &str = concat!(
        "c0010000100000000100000000000000", // nlmsghdr
        "01020000",                         // NEWFAMILY, version 2
        "0600010020000000",                 // FAMILY_ID 0x20
        "090002004a6f6f6c00000000",         // FAMILY_NAME "Jool"
        "0800030002000000",                 // VERSION 2
        "080004001c000000",                 // HDRSIZE 28
        "080005000d000000",                 // MAXATTR 13
    );

    #[test]
    fn test_deconstruct_header_attributes() {
        let mut m = hex::decode(NEWFAMILY).unwrap();
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_le_bytes());
        let f = Family::parse(&m).unwrap();
        assert_eq!((f.id, f.name.as_str()), (0x20, "Jool"));
        assert_eq!((f.version, f.hdrsize, f.maxattr), (2, 28, 13));
        assert!(f.ops.is_empty() && f.mcast_groups.is_empty());
        assert_eq!(Family::find(&m), Some(f));
    }

    #[test]
    fn test_round_trip_through_the_simulator() {
        use crate::{
            kernel::{Caller, Kernel},
            versions::Profile,
        };
        let mut k = Kernel::new(Profile::get("4.1.9").unwrap());
        let req = crate::requests::get_family("Jool", 1);
        let replies =
            k.sendmsg(&Caller::root(crate::kernel::INIT_NETNS), &req).unwrap();
        let f = Family::find(&replies[0]).unwrap();
        assert_eq!(f.name, "Jool");
        assert_eq!(f.ops.len(), 30);
        assert!(f.mcast_group("joold").is_some());
    }

    #[test]
    fn test_not_newfamily() {
        let mut m = hex::decode(NEWFAMILY).unwrap();
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_le_bytes());
        m[4] = 0x20; // another family's message
        assert!(Family::parse(&m).is_err());
        assert!(Family::parse(&m[..10]).is_err());
    }
}
