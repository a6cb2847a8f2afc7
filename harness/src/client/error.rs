//! Client errors, each with the text and exit status the real C client
//! (`jool`, `jool_siit`) gives the same situation.

use std::{fmt, io};

use jool_sim::{versions::quad, wire};

/// libnl's `NLE_*` codes the client can meet, with `nl_geterror()` texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Nle {
    /// `NLE_FAILURE` (1).
    Failure,
    /// `NLE_AGAIN` (4).
    Again,
    /// `NLE_NOMEM` (5).
    NoMem,
    /// `NLE_EXIST` (6).
    Exist,
    /// `NLE_INVAL` (7).
    Inval,
    /// `NLE_RANGE` (8).
    Range,
    /// `NLE_OPNOTSUPP` (10).
    OpNotSupp,
    /// `NLE_OBJ_NOTFOUND` (12).
    ObjNotFound,
    /// `NLE_MSG_TOOSHORT` (21).
    MsgTooShort,
    /// `NLE_NOACCESS` (27).
    NoAccess,
    /// `NLE_PERM` (28).
    Perm,
}

impl Nle {
    /// libnl's `nl_syserr2nlerr()`.
    pub fn from_errno(errno: i32) -> Self {
        match errno {
            1 => Self::Perm,
            2 | 3 => Self::ObjNotFound,
            11 => Self::Again,
            12 | 105 => Self::NoMem,
            13 => Self::NoAccess,
            14 | 22 | 92 => Self::Inval,
            17 | 98 => Self::Exist,
            34 => Self::Range,
            95 => Self::OpNotSupp,
            _ => Self::Failure,
        }
    }

    /// The numeric code.
    pub fn code(self) -> i32 {
        match self {
            Self::Failure => 1,
            Self::Again => 4,
            Self::NoMem => 5,
            Self::Exist => 6,
            Self::Inval => 7,
            Self::Range => 8,
            Self::OpNotSupp => 10,
            Self::ObjNotFound => 12,
            Self::MsgTooShort => 21,
            Self::NoAccess => 27,
            Self::Perm => 28,
        }
    }

    /// `nl_geterror()`.
    pub fn text(self) -> &'static str {
        match self {
            Self::Failure => "Unspecific failure",
            Self::Again => "Try again",
            Self::NoMem => "Out of memory",
            Self::Exist => "Object exists",
            Self::Inval => "Invalid input data or parameter",
            Self::Range => "Input data out of range",
            Self::OpNotSupp => "Operation not supported",
            Self::ObjNotFound => "Object not found",
            Self::MsgTooShort => "Netlink message is too short",
            Self::NoAccess => "No Access",
            Self::Perm => "Operation not permitted",
        }
    }
}

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The "Jool" family is not registered (module not loaded).
    FamilyMissing(Nle),
    /// The kernel answered with a Jool error report.
    Kernel {
        /// `JNLAERR_CODE`.
        code: u16,
        /// `JNLAERR_MSG`, or `strerror(code)` when absent.
        msg: String,
    },
    /// An error report without `JNLAERR_CODE` (4.1.5+ clients).
    ErrorWithoutCode(Option<String>),
    /// A reply shorter than its headers.
    TooSmall,
    /// A reply whose magic is not `"jool"`.
    BadMagic,
    /// A reply whose version the client rejects.
    VersionMismatch {
        /// Version in the reply.
        theirs: u32,
        /// The client's.
        mine: u32,
    },
    /// A reply for another translator type.
    WrongTranslator {
        /// Type in the reply.
        theirs: u8,
        /// The client's.
        mine: u8,
    },
    /// A stat id outside the client's table (clients that fail on it).
    UnknownStat(u16),
    /// A netlink-level failure while receiving (libnl code).
    Receive(Nle),
    /// `sendmsg()` failed.
    Send(io::Error),
    /// No reply was queued, or the socket failed.
    Socket(io::Error),
    /// Bytes the client cannot parse at all.
    Malformed(wire::Error),
    /// A counter attribute that is not 8 bytes.
    BadCounter {
        /// Its id.
        id: u16,
        /// Its value length.
        len: usize,
    },
    /// The kernel kept setting the M flag without progress.
    Paging(String),
    /// A legacy (4.0.x) reply whose payload has the wrong size.
    BogusLength {
        /// Bytes the client expected.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// The instance name cannot be encoded.
    BadInstanceName(String),
}

/// A client error: its kind and the client release's wording.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    legacy_text: bool,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind) -> Self {
        Self { kind, legacy_text: false }
    }

    /// Uses the 4.0.x wording where it differs.
    pub(crate) fn legacy(mut self) -> Self {
        self.legacy_text = true;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Exit status of the real client (its `result.error` modulo 256).
    pub fn exit_code(&self) -> u8 {
        let code: i32 = match &self.kind {
            ErrorKind::FamilyMissing(_) => -3,
            ErrorKind::Kernel { code, .. } => i32::from(*code),
            ErrorKind::ErrorWithoutCode(_) => 22,
            ErrorKind::TooSmall => -Nle::MsgTooShort.code(),
            ErrorKind::Receive(nle) => -nle.code(),
            ErrorKind::Send(_) | ErrorKind::Socket(_) => -Nle::Failure.code(),
            _ => -22,
        };
        code.rem_euclid(256) as u8
    }
}

fn strerror(code: u16) -> String {
    let s = io::Error::from_raw_os_error(i32::from(code)).to_string();
    // std appends " (os error N)".
    s.split(" (os error").next().unwrap_or_default().to_owned()
}

pub(crate) fn kernel_error(code: u16, msg: Option<String>) -> Error {
    let msg = msg.unwrap_or_else(|| strerror(code));
    Error::new(ErrorKind::Kernel { code, msg })
}

fn xt_name(xt: u8) -> &'static str {
    match xt {
        1 => "SIIT",
        2 => "NAT64",
        _ => "unknown",
    }
}

impl fmt::Display for Error {
    /// The message the real client prints after `Error: `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::FamilyMissing(nle) => write!(
                f,
                "Jool's socket family doesn't seem to exist.\n(This probably means Jool hasn't been modprobed.)\nNetlink error message: {}",
                nle.text()
            ),
            ErrorKind::Kernel { code, msg } => {
                write!(f, "The kernel module returned error {code}: {msg}")
            }
            ErrorKind::ErrorWithoutCode(msg) => write!(
                f,
                "The kernel module returned an error packet, but it lacks an error code attribute. Message is '{}'",
                msg.as_deref().unwrap_or("(null)")
            ),
            ErrorKind::TooSmall if self.legacy_text => {
                f.write_str("The response of the module is too small.")
            }
            ErrorKind::TooSmall => f.write_str("The kernel module's response is too small."),
            ErrorKind::BadMagic => f.write_str(
                "Don't know what to do: The packet I just received does not follow Jool's protocol.",
            ),
            ErrorKind::VersionMismatch { theirs, mine } => write!(
                f,
                "Version mismatch. The kernel module's version is {},\nbut mine is {}.\nPlease update {}.",
                quad(*theirs),
                quad(*mine),
                if mine > theirs { "the kernel module" } else { "me" }
            ),
            ErrorKind::WrongTranslator { theirs, mine } => write!(
                f,
                "Packet is meant for {} translators, but I'm a {}.",
                xt_name(*theirs),
                xt_name(*mine)
            ),
            ErrorKind::UnknownStat(_) => {
                f.write_str("The kernel module returned an unknown stat counter.")
            }
            ErrorKind::Receive(nle) => {
                write!(f, "Error receiving the kernel module's response: {}", nle.text())
            }
            ErrorKind::Send(e) => {
                write!(f, "Could not dispatch the request to kernelspace: {e}")
            }
            ErrorKind::Socket(e) => write!(f, "Could not talk to the kernel: {e}"),
            ErrorKind::Malformed(e) => write!(f, "The kernel module's response is malformed: {e}"),
            ErrorKind::BadCounter { id, len } => {
                write!(f, "The kernel module sent stat {id} with a {len}-byte value (expected 8).")
            }
            ErrorKind::Paging(m) => f.write_str(m),
            ErrorKind::BogusLength { expected, got } => write!(
                f,
                "Jool's response has a bogus length. (expected {expected}, got {got})."
            ),
            ErrorKind::BadInstanceName(_) => f.write_str(
                "The instance name must be a null-terminated ascii string, 15 characters max.",
            ),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_exit_codes_match_the_real_client() {
        // fixtures/captures/4.1.9: premodprobe 253, no instance 3.
        assert_eq!(
            Error::new(ErrorKind::FamilyMissing(Nle::ObjNotFound)).exit_code(),
            253
        );
        assert_eq!(kernel_error(3, Some("x".into())).exit_code(), 3);
        assert_eq!(Error::new(ErrorKind::UnknownStat(70)).exit_code(), 234);
        assert_eq!(Error::new(ErrorKind::TooSmall).exit_code(), 235);
    }

    #[test]
    fn test_kernel_error_without_message_uses_strerror() {
        let e = kernel_error(22, None);
        assert_eq!(
            e.to_string(),
            "The kernel module returned error 22: Invalid argument"
        );
    }

    #[test]
    fn test_family_missing_text() {
        let e = Error::new(ErrorKind::FamilyMissing(Nle::ObjNotFound));
        assert_eq!(
            e.to_string(),
            "Jool's socket family doesn't seem to exist.\n(This probably means Jool hasn't been modprobed.)\nNetlink error message: Object not found"
        );
    }
}
