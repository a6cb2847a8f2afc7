//! Jool's generic netlink family (4.0.8 and later) as types: its
//! operations ([`Op`], the genl `cmd`), its root attributes ([`Attr`]),
//! and the attributes nested in them. The numbers of operations and root
//! attributes depend on the release ([`Numbering`]): 4.2.0-rc inserted
//! the MAP-T ones in the middle. Nested attributes are numbered the same
//! in every release.
//!
//! Source: `enum joolnl_operation` and `enum joolnl_attr_*` of
//! `src/common/config.h` at each tag (fixtures/versions, protocol.md).
//!
//! The 4.0.0 – 4.0.7 protocol (one command, a `request_hdr` in an
//! attribute) is [`super::legacy`].

/// Numbering of [`Op`] and [`Attr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Numbering {
    /// 4.0.8 – 4.1.x and main: 30 operations, `JNLAR_OFFSET_U8` = 9,
    /// max attribute 13.
    Jool41,
    /// 4.2.0-rc*: the MAP-T operations and `JNLAR_FMRT_ENTRIES` inserted:
    /// 34 operations, `OFFSET_U8` = 10, max attribute 14.
    MapT,
}

/// `enum joolnl_operation`: what a request asks (the genl `cmd`). The
/// variants are in 4.2's order; [`Numbering::cmd`] gives each one's
/// number in a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Op {
    /// `JNLOP_INSTANCE_FOREACH`.
    InstanceForeach,
    /// `JNLOP_INSTANCE_ADD`.
    InstanceAdd,
    /// `JNLOP_INSTANCE_HELLO`.
    InstanceHello,
    /// `JNLOP_INSTANCE_RM`.
    InstanceRm,
    /// `JNLOP_INSTANCE_FLUSH`.
    InstanceFlush,
    /// `JNLOP_ADDRESS_QUERY64`.
    AddressQuery64,
    /// `JNLOP_ADDRESS_QUERY46`.
    AddressQuery46,
    /// `JNLOP_STATS_FOREACH`.
    StatsForeach,
    /// `JNLOP_GLOBAL_FOREACH`.
    GlobalForeach,
    /// `JNLOP_GLOBAL_UPDATE`.
    GlobalUpdate,
    /// `JNLOP_EAMT_FOREACH`.
    EamtForeach,
    /// `JNLOP_EAMT_ADD`.
    EamtAdd,
    /// `JNLOP_EAMT_RM`.
    EamtRm,
    /// `JNLOP_EAMT_FLUSH`.
    EamtFlush,
    /// `JNLOP_BL4_FOREACH` (denylist4).
    Bl4Foreach,
    /// `JNLOP_BL4_ADD`.
    Bl4Add,
    /// `JNLOP_BL4_RM`.
    Bl4Rm,
    /// `JNLOP_BL4_FLUSH`.
    Bl4Flush,
    /// `JNLOP_POOL4_FOREACH`.
    Pool4Foreach,
    /// `JNLOP_POOL4_ADD`.
    Pool4Add,
    /// `JNLOP_POOL4_RM`.
    Pool4Rm,
    /// `JNLOP_POOL4_FLUSH`.
    Pool4Flush,
    /// `JNLOP_BIB_FOREACH`.
    BibForeach,
    /// `JNLOP_BIB_ADD`.
    BibAdd,
    /// `JNLOP_BIB_RM`.
    BibRm,
    /// `JNLOP_SESSION_FOREACH`.
    SessionForeach,
    /// `JNLOP_FMRT_FOREACH` (4.2.0-rc only).
    FmrtForeach,
    /// `JNLOP_FMRT_ADD` (4.2.0-rc only).
    FmrtAdd,
    /// `JNLOP_FMRT_RM` (4.2.0-rc only).
    FmrtRm,
    /// `JNLOP_FMRT_FLUSH` (4.2.0-rc only).
    FmrtFlush,
    /// `JNLOP_FILE_HANDLE`.
    FileHandle,
    /// `JNLOP_JOOLD_ADD`.
    JooldAdd,
    /// `JNLOP_JOOLD_ADVERTISE`.
    JooldAdvertise,
    /// `JNLOP_JOOLD_ACK`.
    JooldAck,
}

impl Op {
    /// Every operation, in 4.2's order (the MAP-T ones included).
    pub const ALL: [Self; 34] = [
        Self::InstanceForeach,
        Self::InstanceAdd,
        Self::InstanceHello,
        Self::InstanceRm,
        Self::InstanceFlush,
        Self::AddressQuery64,
        Self::AddressQuery46,
        Self::StatsForeach,
        Self::GlobalForeach,
        Self::GlobalUpdate,
        Self::EamtForeach,
        Self::EamtAdd,
        Self::EamtRm,
        Self::EamtFlush,
        Self::Bl4Foreach,
        Self::Bl4Add,
        Self::Bl4Rm,
        Self::Bl4Flush,
        Self::Pool4Foreach,
        Self::Pool4Add,
        Self::Pool4Rm,
        Self::Pool4Flush,
        Self::BibForeach,
        Self::BibAdd,
        Self::BibRm,
        Self::SessionForeach,
        Self::FmrtForeach,
        Self::FmrtAdd,
        Self::FmrtRm,
        Self::FmrtFlush,
        Self::FileHandle,
        Self::JooldAdd,
        Self::JooldAdvertise,
        Self::JooldAck,
    ];

    /// Whether only 4.2.0-rc's numbering has it.
    pub const fn is_mapt(self) -> bool {
        matches!(
            self,
            Self::FmrtForeach | Self::FmrtAdd | Self::FmrtRm | Self::FmrtFlush
        )
    }

    /// The `JNLOP_*` name, without the prefix (`STATS_FOREACH`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::InstanceForeach => "INSTANCE_FOREACH",
            Self::InstanceAdd => "INSTANCE_ADD",
            Self::InstanceHello => "INSTANCE_HELLO",
            Self::InstanceRm => "INSTANCE_RM",
            Self::InstanceFlush => "INSTANCE_FLUSH",
            Self::AddressQuery64 => "ADDRESS_QUERY64",
            Self::AddressQuery46 => "ADDRESS_QUERY46",
            Self::StatsForeach => "STATS_FOREACH",
            Self::GlobalForeach => "GLOBAL_FOREACH",
            Self::GlobalUpdate => "GLOBAL_UPDATE",
            Self::EamtForeach => "EAMT_FOREACH",
            Self::EamtAdd => "EAMT_ADD",
            Self::EamtRm => "EAMT_RM",
            Self::EamtFlush => "EAMT_FLUSH",
            Self::Bl4Foreach => "BL4_FOREACH",
            Self::Bl4Add => "BL4_ADD",
            Self::Bl4Rm => "BL4_RM",
            Self::Bl4Flush => "BL4_FLUSH",
            Self::Pool4Foreach => "POOL4_FOREACH",
            Self::Pool4Add => "POOL4_ADD",
            Self::Pool4Rm => "POOL4_RM",
            Self::Pool4Flush => "POOL4_FLUSH",
            Self::BibForeach => "BIB_FOREACH",
            Self::BibAdd => "BIB_ADD",
            Self::BibRm => "BIB_RM",
            Self::SessionForeach => "SESSION_FOREACH",
            Self::FmrtForeach => "FMRT_FOREACH",
            Self::FmrtAdd => "FMRT_ADD",
            Self::FmrtRm => "FMRT_RM",
            Self::FmrtFlush => "FMRT_FLUSH",
            Self::FileHandle => "FILE_HANDLE",
            Self::JooldAdd => "JOOLD_ADD",
            Self::JooldAdvertise => "JOOLD_ADVERTISE",
            Self::JooldAck => "JOOLD_ACK",
        }
    }
}

/// The operation of 4.1's (and main's) numbering: the number every
/// released client but the 4.2.0-rc ones sends.
impl TryFrom<u8> for Op {
    type Error = super::Error;

    fn try_from(cmd: u8) -> Result<Self, super::Error> {
        Numbering::Jool41
            .op(cmd)
            .ok_or(super::Error::BadValue { what: "JNLOP", value: cmd.into() })
    }
}

/// `enum joolnl_attr_root`: the attributes of a request or reply's top
/// level (besides the stat counters of a STATS_FOREACH reply, whose types
/// are stat ids). In 4.2's order; [`Numbering::attr`] numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Attr {
    /// `JNLAR_ADDR_QUERY`.
    AddrQuery,
    /// `JNLAR_GLOBALS` (nested).
    Globals,
    /// `JNLAR_BL4_ENTRIES`.
    Bl4Entries,
    /// `JNLAR_EAMT_ENTRIES`.
    EamtEntries,
    /// `JNLAR_POOL4_ENTRIES`.
    Pool4Entries,
    /// `JNLAR_BIB_ENTRIES`.
    BibEntries,
    /// `JNLAR_SESSION_ENTRIES`.
    SessionEntries,
    /// `JNLAR_FMRT_ENTRIES` (4.2.0-rc only).
    FmrtEntries,
    /// `JNLAR_OFFSET` (nested: where a foreach resumes).
    Offset,
    /// `JNLAR_OFFSET_U8` (where a stats foreach resumes).
    OffsetU8,
    /// `JNLAR_OPERAND` (nested: e.g. instance add's framework and pool6).
    Operand,
    /// `JNLAR_PROTO`.
    Proto,
    /// `JNLAR_ATOMIC_INIT`.
    AtomicInit,
    /// `JNLAR_ATOMIC_END`.
    AtomicEnd,
}

impl Attr {
    /// Every root attribute, in 4.2's order.
    pub const ALL: [Self; 14] = [
        Self::AddrQuery,
        Self::Globals,
        Self::Bl4Entries,
        Self::EamtEntries,
        Self::Pool4Entries,
        Self::BibEntries,
        Self::SessionEntries,
        Self::FmrtEntries,
        Self::Offset,
        Self::OffsetU8,
        Self::Operand,
        Self::Proto,
        Self::AtomicInit,
        Self::AtomicEnd,
    ];
}

impl Numbering {
    /// The genl `cmd` of `op`, if this numbering has it.
    pub fn cmd(self, op: Op) -> Option<u8> {
        let i = Op::ALL.iter().position(|o| *o == op)?;
        let n = match self {
            Self::MapT => i,
            Self::Jool41 if op.is_mapt() => return None,
            // The four MAP-T operations sit at 26..=29 in 4.2's order.
            Self::Jool41 if i > 29 => i - 4,
            Self::Jool41 => i,
        };
        u8::try_from(n).ok()
    }

    /// The operation a genl `cmd` names, if any.
    pub fn op(self, cmd: u8) -> Option<Op> {
        Op::ALL.iter().copied().find(|o| self.cmd(*o) == Some(cmd))
    }

    /// How many operations (commands `0 .. n-1`) the family registers.
    pub fn op_count(self) -> u8 {
        match self {
            Self::Jool41 => 30,
            Self::MapT => 34,
        }
    }

    /// The attribute type of `attr`, if this numbering has it.
    pub fn attr(self, attr: Attr) -> Option<u16> {
        let i = Attr::ALL.iter().position(|a| *a == attr)?;
        // 1-based; FMRT_ENTRIES (index 7) only in MAP-T's numbering.
        let n = match self {
            Self::MapT => i + 1,
            Self::Jool41 if attr == Attr::FmrtEntries => return None,
            Self::Jool41 if i > 7 => i,
            Self::Jool41 => i + 1,
        };
        u16::try_from(n).ok()
    }

    /// The root attribute an attribute type names, if any.
    pub fn attr_of(self, kind: u16) -> Option<Attr> {
        Attr::ALL.iter().copied().find(|a| self.attr(*a) == Some(kind))
    }

    /// `JNLAR_MAX`: the family's `maxattr`.
    pub fn maxattr(self) -> u16 {
        match self {
            Self::Jool41 => 13,
            Self::MapT => 14,
        }
    }
}

numbered! {
    /// `enum joolnl_attr_error`: the attributes of an error report.
    pub enum ErrorAttr: u16 {
        /// `JNLAERR_CODE` (u16: a positive errno).
        Code = 1,
        /// `JNLAERR_MSG` (NUL-terminated string).
        Msg = 2,
    }
}

numbered! {
    /// `enum joolnl_attr_list`: the entries of a foreach reply.
    pub enum ListAttr: u16 {
        /// `JNLAL_ENTRY` (nested).
        Entry = 1,
    }
}

numbered! {
    /// `enum joolnl_attr_instance_entry`: one instance of an
    /// INSTANCE_FOREACH reply (also its `JNLAR_OFFSET`).
    pub enum InstanceEntryAttr: u16 {
        /// `JNLAIE_NS` (u32: the namespace's tag).
        Ns = 1,
        /// `JNLAIE_XF` (u8: framework and translator type).
        Xf = 2,
        /// `JNLAIE_INAME` (string).
        Iname = 3,
    }
}

numbered! {
    /// `enum joolnl_attr_instance_status`: INSTANCE_HELLO's reply.
    pub enum InstanceStatusAttr: u16 {
        /// `JNLAIS_STATUS` (u8: 0 alive, 1 dead).
        Status = 1,
    }
}

numbered! {
    /// `enum joolnl_attr_instance_add`: INSTANCE_ADD's operand.
    pub enum InstanceAddAttr: u16 {
        /// `JNLAIA_XF` (u8: framework and translator type).
        Xf = 1,
        /// `JNLAIA_POOL6` (nested prefix).
        Pool6 = 2,
    }
}

numbered! {
    /// `enum joolnl_attr_prefix`: an IPv6 or IPv4 prefix.
    pub enum PrefixAttr: u16 {
        /// `JNLAP_ADDR` (16 or 4 bytes).
        Addr = 1,
        /// `JNLAP_LEN` (u8).
        Len = 2,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_jool41_numbers_from_protocol_md() {
        let n = Numbering::Jool41;
        assert_eq!(n.cmd(Op::InstanceForeach), Some(0));
        assert_eq!(n.cmd(Op::StatsForeach), Some(7));
        assert_eq!(n.cmd(Op::GlobalForeach), Some(8));
        assert_eq!(n.cmd(Op::SessionForeach), Some(25));
        assert_eq!(n.cmd(Op::FileHandle), Some(26));
        assert_eq!(n.cmd(Op::JooldAck), Some(29));
        assert_eq!(n.cmd(Op::FmrtForeach), None);
        assert_eq!(n.op(30), None);
        assert_eq!(n.attr(Attr::Offset), Some(8));
        assert_eq!(n.attr(Attr::OffsetU8), Some(9));
        assert_eq!(n.attr(Attr::Operand), Some(10));
        assert_eq!(n.attr(Attr::AtomicEnd), Some(n.maxattr()));
        assert_eq!(n.attr(Attr::FmrtEntries), None);
    }

    #[test]
    fn test_mapt_numbers_from_protocol_md() {
        let n = Numbering::MapT;
        assert_eq!(n.cmd(Op::StatsForeach), Some(7));
        assert_eq!(n.cmd(Op::FmrtForeach), Some(26));
        assert_eq!(n.cmd(Op::FmrtFlush), Some(29));
        assert_eq!(n.cmd(Op::FileHandle), Some(30));
        assert_eq!(n.cmd(Op::JooldAck), Some(33));
        assert_eq!(n.attr(Attr::FmrtEntries), Some(8));
        assert_eq!(n.attr(Attr::Offset), Some(9));
        assert_eq!(n.attr(Attr::OffsetU8), Some(10));
        assert_eq!(n.attr(Attr::AtomicEnd), Some(n.maxattr()));
    }

    #[test]
    fn test_every_number_maps_back() {
        for n in [Numbering::Jool41, Numbering::MapT] {
            for cmd in 0..n.op_count() {
                let op = n.op(cmd).unwrap();
                assert_eq!(n.cmd(op), Some(cmd));
            }
            assert_eq!(n.op(n.op_count()), None);
            for kind in 1..=n.maxattr() {
                assert_eq!(n.attr(n.attr_of(kind).unwrap()), Some(kind));
            }
            assert_eq!(n.attr_of(0), None);
        }
        assert_eq!(Op::try_from(7), Ok(Op::StatsForeach));
        assert!(Op::try_from(30).is_err());
    }

    #[test]
    fn test_nested_attributes() {
        assert_eq!(u16::from(ErrorAttr::Msg), 2);
        assert_eq!(ErrorAttr::try_from(1), Ok(ErrorAttr::Code));
        assert!(ErrorAttr::try_from(3).is_err());
        assert_eq!(InstanceEntryAttr::ALL.len(), 3);
        assert_eq!(u16::from(PrefixAttr::Len), 2);
    }
}
