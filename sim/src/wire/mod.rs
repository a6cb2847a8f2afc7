//! Zero-copy views and `Repr` types for everything on the `stats` path:
//! netlink message headers ([`nlmsg`]), generic netlink headers
//! ([`genl`]), Jool's `joolnlhdr` ([`jool`]), its operations and
//! attributes ([`family`]), attributes ([`nla`]) and the 4.0.0 – 4.0.7
//! `request_hdr` ([`legacy`]).
//!
//! Each view follows one contract: `new_unchecked` wraps any buffer,
//! `new_checked` = `new_unchecked` + `check_len()`, and once `check_len()`
//! is `Ok` no accessor panics. Untrusted bytes go through `new_checked`
//! only. `Repr` types `parse` a checked view and `emit` into one.
//!
//! All multi-byte netlink fields are host order (little-endian on every
//! platform Jool ships for; this crate encodes little-endian), except the
//! Jool version word, which is big-endian.

use core::{fmt, ops};

/// Declares a `#[repr(u8|u16)]` enum whose variants are numbered by the
/// spec, with `From<Enum>` for the number and `TryFrom<number>`.
macro_rules! numbered {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $ty:ty {
            $( $(#[$vmeta:meta])* $var:ident = $val:expr, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr($ty)]
        pub enum $name {
            $( $(#[$vmeta])* $var = $val, )+
        }

        impl $name {
            /// Every variant, in the spec's order.
            pub const ALL: &'static [Self] = &[$(Self::$var),+];
        }

        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                v as $ty
            }
        }

        impl TryFrom<$ty> for $name {
            type Error = $crate::wire::Error;

            fn try_from(v: $ty) -> core::result::Result<Self, $crate::wire::Error> {
                match v {
                    $( $val => Ok(Self::$var), )+
                    _ => Err($crate::wire::Error::BadValue {
                        what: stringify!($name),
                        value: u64::from(v),
                    }),
                }
            }
        }
    };
}

pub mod ctrl;
pub mod family;
pub mod genl;
pub mod hex;
pub mod jool;
pub mod legacy;
pub mod nla;
pub mod nlmsg;

/// A byte range inside a header.
pub(crate) type Field = ops::Range<usize>;

/// Round `len` up to the netlink 4-byte alignment.
pub const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// What was wrong with a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the fixed header of `what`.
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A length field is smaller than its header or larger than the
    /// bytes present.
    BadLength {
        /// The structure whose length field is wrong.
        what: &'static str,
        /// The length it claims.
        len: usize,
        /// Bytes present.
        have: usize,
    },
    /// Bytes left over after the last complete structure.
    TrailingData {
        /// Where they were found.
        what: &'static str,
        /// How many bytes.
        len: usize,
    },
    /// The Jool magic is not `"jool"`.
    BadMagic([u8; 4]),
    /// A field holds a value the reader does not accept.
    BadValue {
        /// The field.
        what: &'static str,
        /// Its value, widened.
        value: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { what, need, have } => {
                write!(f, "truncated {what}: need {need} bytes, have {have}")
            }
            Self::BadLength { what, len, have } => {
                write!(f, "bad {what} length {len} ({have} bytes present)")
            }
            Self::TrailingData { what, len } => {
                write!(f, "{len} trailing bytes after {what}")
            }
            Self::BadMagic(m) => write!(f, "bad Jool magic {:02x?}", m),
            Self::BadValue { what, value } => {
                write!(f, "bad {what} value {value:#x}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Result of every codec operation.
pub type Result<T> = core::result::Result<T, Error>;

pub(crate) fn read_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

pub(crate) fn read_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

pub(crate) fn check(
    what: &'static str,
    have: usize,
    need: usize,
) -> Result<()> {
    if have < need {
        return Err(Error::Truncated { what, need, have });
    }
    Ok(())
}
