//! What the simulated kernel remembers: network namespaces, the Jool
//! instances in each, and their counters.

use std::{collections::BTreeMap, fmt};

/// A network namespace, identified as the daemon identifies callers: by
/// the inode of `/proc/PID/ns/net` (any stable number in-process).
pub type NetnsId = u64;

/// Translator type of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Xlator {
    /// Stateless IP/ICMP translation (`jool_siit`).
    Siit,
    /// Stateful NAT64 (`jool`).
    Nat64,
}

impl Xlator {
    /// The `XT_*` value on the wire.
    pub fn xt(self) -> u8 {
        match self {
            Self::Siit => crate::wire::jool::XT_SIIT,
            Self::Nat64 => crate::wire::jool::XT_NAT64,
        }
    }

    /// The translator of an `XT_*` value.
    pub fn from_xt(xt: u8) -> Option<Self> {
        match xt {
            crate::wire::jool::XT_SIIT => Some(Self::Siit),
            crate::wire::jool::XT_NAT64 => Some(Self::Nat64),
            _ => None,
        }
    }

    /// `SIIT` or `NAT64`, as the kernel's messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Siit => "SIIT",
            Self::Nat64 => "NAT64",
        }
    }
}

impl fmt::Display for Xlator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Siit => "siit",
            Self::Nat64 => "nat64",
        })
    }
}

/// Where an instance hooks into the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Framework {
    /// `--netfilter`: `XF_NETFILTER` (4); one per translator type per netns.
    Netfilter,
    /// `--iptables`: `XF_IPTABLES` (8).
    Iptables,
}

impl Framework {
    /// The `XF_*` value on the wire.
    pub fn xf(self) -> u8 {
        match self {
            Self::Netfilter => 4,
            Self::Iptables => 8,
        }
    }

    /// The `XF_*` value on the wire under `numbering`: 4.2.0-rc's MAP-T
    /// bit (`XT_MAPT` = 4) moved the frameworks up one bit
    /// (`XF_NETFILTER` = 8, `XF_IPTABLES` = 16; v4.2.0-rc1
    /// src/common/types.h, seen in the real 4.2.0-rc modules' listings).
    pub fn xf_in(self, numbering: crate::versions::Numbering) -> u8 {
        match numbering {
            crate::versions::Numbering::MapT => self.xf() << 1,
            _ => self.xf(),
        }
    }

    /// The framework byte of `p`'s instance requests and listings: `xf`
    /// under its numbering, but `fw` (`FW_NETFILTER` 1, `FW_IPTABLES` 2)
    /// in 4.0.0 – 4.0.5 (their `union request_instance` and
    /// `struct instance_entry_usr`).
    pub fn listed_by(self, p: &crate::versions::Profile) -> u8 {
        if p.is_before("4.0.6") {
            match self {
                Self::Netfilter => 1,
                Self::Iptables => 2,
            }
        } else {
            self.xf_in(p.numbering)
        }
    }

    /// The framework bits of `flags` under `numbering` (`XF_MASK`), and
    /// the framework they name, if one.
    pub fn from_flags_in(
        flags: u8,
        numbering: crate::versions::Numbering,
    ) -> Option<Self> {
        match numbering {
            crate::versions::Numbering::MapT => {
                Self::from_xf((flags & 0x18) >> 1)
            }
            _ => Self::from_xf(flags & 0x0c),
        }
    }

    /// The framework of an `XF_*` value.
    pub fn from_xf(xf: u8) -> Option<Self> {
        match xf {
            4 => Some(Self::Netfilter),
            8 => Some(Self::Iptables),
            _ => None,
        }
    }
}

/// One Jool instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Name (at most 15 bytes).
    pub name: String,
    /// Translator type.
    pub xlator: Xlator,
    /// Framework.
    pub framework: Framework,
    /// `pool6` prefix (address, length), if configured.
    pub pool6: Option<Prefix6>,
    /// Counters, indexed by the kernel's stat id (0 .. max_id).
    pub counters: Vec<u64>,
}

/// An IPv6 prefix: address and length (pool6).
pub type Prefix6 = ([u8; 16], u8);

/// Instances of one network namespace, by (translator, name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Netns {
    /// The instances.
    pub instances: BTreeMap<(Xlator, String), Instance>,
}

/// A state operation that cannot be done.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// No such instance in that namespace.
    NoSuchInstance {
        /// Namespace searched.
        netns: NetnsId,
        /// Translator.
        xlator: Xlator,
        /// Name.
        name: String,
    },
    /// An instance of that name (or a second netfilter one) exists.
    Exists(String),
    /// The stat id is outside the kernel's table.
    UnknownStat(u16),
    /// The translator's module is not loaded.
    ModuleNotLoaded(Xlator),
    /// The name is not a valid instance name.
    BadName(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchInstance { netns, xlator, name } => {
                write!(
                    f,
                    "netns {netns} has no {xlator} instance named '{name}'"
                )
            }
            Self::Exists(m) => f.write_str(m),
            Self::UnknownStat(id) => {
                write!(f, "stat id {id} is not in the kernel's table")
            }
            Self::ModuleNotLoaded(x) => {
                write!(f, "the {x} module is not loaded")
            }
            Self::BadName(n) => write!(f, "bad instance name {n:?}"),
        }
    }
}

impl std::error::Error for StateError {}

/// Instance-name bytes as a `String`, one char per byte (Latin-1), so
/// that names with bytes of 128 and up (valid with an unsigned `char`)
/// survive the round trip through the state and the messages exactly;
/// ASCII names are unchanged.
pub(crate) fn name_from_bytes(raw: &[u8]) -> String {
    raw.iter().map(|&b| char::from(b)).collect()
}

/// The bytes a kernel message or name holds: [`name_from_bytes`] undone
/// (chars below 256 are one byte each; others, which Jool's texts never
/// hold, as UTF-8).
pub(crate) fn text_bytes(s: &str) -> Vec<u8> {
    if s.is_ascii() {
        // Every char one byte, as below (the kernel's texts are ASCII).
        return s.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(b) => out.push(b),
            Err(_) => {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes())
            }
        }
    }
    out
}

/// Validates instance-name bytes as the kernel's `iname_validate()` does:
/// a NUL within the first 16 bytes, and before it no byte below 32 (bytes
/// of 128 and up count too: `char` is signed on x86 before Linux 6.2).
pub fn iname_valid(raw: &[u8]) -> bool {
    iname_valid_for(raw, false)
}

/// [`iname_valid`] on a kernel built with `unsigned_char` (Linux 6.2 and
/// later build with `-funsigned-char`: bytes of 128 and up are then not
/// "below 32", and such names are valid).
pub fn iname_valid_for(raw: &[u8], unsigned_char: bool) -> bool {
    for &c in raw.iter().take(crate::wire::jool::INAME_LEN) {
        if c == 0 {
            return true;
        }
        if c < 32 || (c >= 128 && !unsigned_char) {
            return false;
        }
    }
    false
}
