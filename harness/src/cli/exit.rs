//! How an invocation ends: an exit status, or death by a signal (as the
//! real client dies of `SIGPIPE` when its reader went away, or of
//! `SIGSEGV` on a `-f` file whose `instance` is not a string).
//!
//! The real client returns `-errno` from `main()` for its own errors, so
//! the shell sees `256 - errno`; its argp parsers exit with
//! `argp_err_exit_status`. The names below say which is which.

/// Everything went well.
pub const SUCCESS: u8 = 0;

/// `-EINVAL` from `main()`: the tree walk (`Unexpected token`, `More
/// arguments expected.`), a bad instance name, a bad `-f` file, an
/// unknown stat counter.
pub const NEG_EINVAL: u8 = neg_errno(22);

/// `-ENOMEM` from `main()` (`-f` of a folder: its size reads as huge).
pub const NEG_ENOMEM: u8 = neg_errno(12);

/// `argp_err_exit_status` (sysexits' `EX_USAGE`): an option error inside
/// an operation (`display: unrecognized option`...). jool-stats' own
/// option errors (an unknown `--client-version`, a `--sim`-only option
/// without `--sim`) use it too.
pub const EX_USAGE: u8 = 64;

/// `--strict` refused labels that differ from the kernel's (sysexits'
/// `EX_DATAERR`).
pub const EX_DATAERR: u8 = 65;

/// A mode jool-stats does not emulate (sysexits' `EX_UNAVAILABLE`).
pub const EX_UNAVAILABLE: u8 = 69;

/// The output could not be written for another reason than a closed
/// pipe (sysexits' `EX_IOERR`).
pub const EX_IOERR: u8 = 74;

/// `SIGSEGV`.
pub const SIGSEGV: i32 = 11;

/// `SIGPIPE`.
pub const SIGPIPE: i32 = 13;

/// The exit status of `return -errno` from `main()`.
pub const fn neg_errno(errno: u8) -> u8 {
    0u8.wrapping_sub(errno)
}

/// The exit status of `return code` from `main()` for any `int`.
pub fn status_of(code: i32) -> u8 {
    // The low byte, as exit(3) keeps it.
    code.to_le_bytes()[0]
}

/// How an invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `exit(N)`.
    Exit(u8),
    /// Killed by this signal: the binary raises it with its default
    /// disposition; in-process callers see [`Outcome::shell_status`].
    Signal(i32),
}

impl Outcome {
    /// What a shell's `$?` shows: the status, or 128 + the signal.
    pub fn shell_status(self) -> u8 {
        match self {
            Self::Exit(n) => n,
            Self::Signal(s) => status_of(128 + s),
        }
    }
}

impl From<u8> for Outcome {
    fn from(n: u8) -> Self {
        Self::Exit(n)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_statuses() {
        assert_eq!((NEG_EINVAL, NEG_ENOMEM), (234, 244));
        assert_eq!(status_of(-3), 253);
        assert_eq!(status_of(2), 2);
        assert_eq!(Outcome::Signal(SIGPIPE).shell_status(), 141);
    }
}
