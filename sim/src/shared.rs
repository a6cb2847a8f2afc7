//! The simulated kernel as a service shares it: one [`Kernel`] and its
//! netlink port ids, behind locks, for the daemon's connections, its
//! control requests and an in-process client of the same kernel; and,
//! when asked for, a trace of the commands the daemon received (for tests
//! and debugging).

use std::{
    collections::{BTreeSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use crate::kernel::Kernel;

/// `EADDRINUSE`: a port id already bound.
const EADDRINUSE: i32 = 98;
/// First port id Linux hands out once a process's pid is taken.
const ROVER_START: u32 = (-4096i32) as u32;

/// Lines a trace keeps at most (the oldest go first).
pub const TRACE_MAX: usize = 100_000;

/// A kernel and its bound port ids.
#[derive(Debug)]
pub struct Shared {
    kernel: Mutex<Kernel>,
    ports: Mutex<BTreeSet<u32>>,
    trace: Mutex<Option<VecDeque<String>>>,
}

impl Shared {
    /// Wraps a kernel.
    pub fn new(kernel: Kernel) -> Arc<Self> {
        Arc::new(Self {
            kernel: Mutex::new(kernel),
            ports: Mutex::new(BTreeSet::new()),
            trace: Mutex::new(None),
        })
    }

    fn trace_lock(&self) -> MutexGuard<'_, Option<VecDeque<String>>> {
        self.trace.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts keeping one line per command the daemon receives, in order
    /// (at most [`TRACE_MAX`]): `P`, `D`, `B <requested> <assigned>`,
    /// `S <datagram length>`, `O <level> <name> <value>`, `C`, and `?`
    /// for a malformed packet; numbers in decimal, port ids signed.
    pub fn start_trace(&self) {
        self.trace_lock().get_or_insert_with(VecDeque::new);
    }

    /// The trace so far (empty when not started).
    pub fn trace(&self) -> Vec<String> {
        self.trace_lock().iter().flatten().cloned().collect()
    }

    /// Adds a line to the trace, if one is kept.
    pub(crate) fn note(&self, line: impl FnOnce() -> String) {
        if let Some(t) = self.trace_lock().as_mut() {
            if t.len() == TRACE_MAX {
                t.pop_front();
            }
            t.push_back(line());
        }
    }

    /// The kernel, locked. A thread that panicked while holding it leaves
    /// the state as it was; it is used as is.
    pub fn kernel(&self) -> MutexGuard<'_, Kernel> {
        self.kernel.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ports(&self) -> MutexGuard<'_, BTreeSet<u32>> {
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `netlink_bind`/`netlink_autobind`: the requested port (`Err` with
    /// `EADDRINUSE` if taken), or the peer's pid, or the next free id
    /// below -4096.
    pub fn assign_port(&self, requested: u32, pid: u32) -> Result<u32, i32> {
        let mut ports = self.ports();
        if requested != 0 {
            return if ports.insert(requested) {
                Ok(requested)
            } else {
                Err(EADDRINUSE)
            };
        }
        if pid != 0 && ports.insert(pid) {
            return Ok(pid);
        }
        let mut id = ROVER_START;
        while !ports.insert(id) {
            id = id.wrapping_sub(1);
        }
        Ok(id)
    }

    /// Frees a port id.
    pub fn release_port(&self, port: u32) {
        self.ports().remove(&port);
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::versions::Profile;

    fn shared() -> Arc<Shared> {
        Shared::new(Kernel::new(Profile::get("4.1.9").unwrap()))
    }

    #[test]
    fn test_ports_as_linux_assigns_them() {
        let s = shared();
        assert_eq!(s.assign_port(0, 77), Ok(77), "the pid first");
        assert_eq!(s.assign_port(0, 77), Ok(ROVER_START), "then the rover");
        assert_eq!(s.assign_port(0, 77), Ok(ROVER_START - 1));
        assert_eq!(s.assign_port(77, 1), Err(EADDRINUSE));
        s.release_port(77);
        assert_eq!(s.assign_port(77, 1), Ok(77));
    }
}
