//! Who a process is, as the kernel sees it for Jool's checks: its network
//! namespace and whether `capable(CAP_NET_ADMIN)` holds (the capability
//! in the *initial* user namespace). Read from `/proc`.

use std::{fs, io, os::unix::fs::MetadataExt};

use crate::kernel::NetnsId;

/// `CAP_NET_ADMIN`'s bit.
const CAP_NET_ADMIN: u32 = 12;
/// `PROC_USER_INIT_INO`: inode of the initial user namespace.
pub const INIT_USER_NS: u64 = 0xEFFF_FFFD;

/// A process's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Inode of `/proc/PID/ns/net`.
    pub netns: NetnsId,
    /// Inode of `/proc/PID/ns/user`.
    pub userns: u64,
    /// `CapEff` of `/proc/PID/status`.
    pub cap_eff: u64,
}

impl Identity {
    /// The identity of process `pid` (`"self"` for this one).
    pub fn of(pid: &str) -> io::Result<Self> {
        let netns = fs::metadata(format!("/proc/{pid}/ns/net"))?.ino();
        let userns = fs::metadata(format!("/proc/{pid}/ns/user"))?.ino();
        let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
        let cap_eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "no CapEff line")
            })?;
        Ok(Self { netns, userns, cap_eff })
    }

    /// This process.
    pub fn current() -> io::Result<Self> {
        Self::of("self")
    }

    /// `capable(CAP_NET_ADMIN)`: the capability, in the initial user
    /// namespace.
    pub fn net_admin(&self) -> bool {
        self.userns == INIT_USER_NS && self.cap_eff & (1 << CAP_NET_ADMIN) != 0
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_current_identity_reads_proc() {
        let me = Identity::current().unwrap();
        assert_ne!(me.netns, 0);
        let again = Identity::of(&std::process::id().to_string()).unwrap();
        assert_eq!(me, again);
    }

    #[test]
    fn test_net_admin_needs_the_initial_user_namespace() {
        let root = Identity {
            netns: 1,
            userns: INIT_USER_NS,
            cap_eff: 0x1ff_ffff_ffff,
        };
        assert!(root.net_admin());
        assert!(!Identity { userns: 4026532000, ..root }.net_admin());
        assert!(!Identity { cap_eff: 0, ..root }.net_admin());
    }
}
