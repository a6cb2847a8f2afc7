//! Which file descriptors are "our" netlink sockets, and their state.
//!
//! A [`Socket`] is one open netlink socket: the application holds the
//! daemon's data channel, and the socket holds the control connection.
//! It is shared through an `Arc` by every descriptor that refers to it,
//! so that `dup`'d descriptors see one port id and one set of options, as
//! they would share one kernel socket; the control connection closes with
//! the last of them.
//!
//! Entries are removed by our `close`, but a descriptor can also be closed
//! behind our back (`close_range`, or glibc closing it internally). Each
//! entry therefore remembers the inode of its Unix socket, and a lookup
//! whose descriptor now names another file drops the stale entry.
//!
//! A signal handler that interrupts a table operation and calls a hooked
//! function itself (a self-pipe `write`) must not wait for the lock its
//! own thread holds: such nested calls see no sockets at all, which is
//! right for the descriptors signal handlers use.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use libc::c_int;

use crate::real::Descriptor;

/// The `SOL_NETLINK` flag options (`NETLINK_PKTINFO` ..
/// `NETLINK_GET_STRICT_CHK`) live in bits 0..32 of [`State::options`].
pub(crate) const OPTION_BITS: c_int = 32;

/// One netlink socket: the application's descriptor is the daemon's data
/// channel; the control connection is ours.
#[derive(Debug)]
pub(crate) struct Socket {
    /// `SOCK_RAW` or `SOCK_DGRAM`, as created (what `SO_TYPE` reports).
    pub(crate) kind: c_int,
    /// `(st_dev, st_ino)` of the data channel.
    identity: (u64, u64),
    /// The control connection, closed with the last descriptor.
    pub(crate) control: Descriptor,
    /// What changes, behind one lock: a thread that talks to the daemon
    /// holds it until the daemon has answered.
    state: Mutex<State>,
}

/// The mutable part of a [`Socket`].
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The port id the daemon assigned, once bound.
    pub(crate) port: Option<u32>,
    /// Bit `n` set: `SOL_NETLINK` option `n` is on.
    pub(crate) options: u32,
}

impl Socket {
    /// A new, unbound socket of `kind` whose data channel is `fd`, or
    /// `None` if `fd` cannot be `fstat`ed.
    pub(crate) fn new(
        fd: c_int,
        kind: c_int,
        control: Descriptor,
    ) -> Option<Self> {
        let identity = identity(fd)?;
        Some(Self { kind, identity, control, state: Mutex::default() })
    }

    /// Locks the state (a panic elsewhere never poisons it for us).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `(st_dev, st_ino)` of `fd`.
fn identity(fd: c_int) -> Option<(u64, u64)> {
    // SAFETY: `stat` is plain data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable `stat`. `fstat` is not shadowed.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some((st.st_dev, st.st_ino))
}

/// fd -> socket.
static TABLE: Mutex<BTreeMap<c_int, Arc<Socket>>> =
    Mutex::new(BTreeMap::new());

/// Entries in [`TABLE`], so that calls on other descriptors (every
/// `read`, `write` and `close` of the process) skip the lock while there
/// are none.
static ENTRIES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread holds [`TABLE`]'s lock.
    static LOCKED: Cell<bool> = const { Cell::new(false) };
}

/// Whether there is a table to look at: entries exist, and this is not a
/// signal handler interrupting this thread's own use of the table.
fn in_use() -> bool {
    ENTRIES.load(Ordering::Acquire) != 0 && !LOCKED.get()
}

/// Runs `f` on the locked table and refreshes [`ENTRIES`].
fn with_table<R>(f: impl FnOnce(&mut BTreeMap<c_int, Arc<Socket>>) -> R) -> R {
    let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
    LOCKED.set(true);
    let r = f(&mut table);
    ENTRIES.store(table.len(), Ordering::Release);
    LOCKED.set(false);
    r
}

/// Records `fd` as `socket`, replacing whatever it was.
pub(crate) fn insert(fd: c_int, socket: Arc<Socket>) {
    if LOCKED.get() {
        return; // In a signal handler: `fd` stays a plain Unix socket.
    }
    // A replaced socket is dropped (maybe closed) after the unlock.
    drop(with_table(|t| t.insert(fd, socket)));
}

/// Forgets `fd`.
pub(crate) fn remove(fd: c_int) {
    if in_use() {
        drop(with_table(|t| t.remove(&fd)));
    }
}

/// The socket `fd` refers to, if it is one of ours.
pub(crate) fn get(fd: c_int) -> Option<Arc<Socket>> {
    if !in_use() {
        return None;
    }
    let socket = with_table(|t| t.get(&fd).cloned())?;
    if identity(fd) == Some(socket.identity) {
        return Some(socket);
    }
    // Closed behind our back, and the number reused (or not).
    let stale = with_table(|t| {
        let same = t.get(&fd).is_some_and(|s| Arc::ptr_eq(s, &socket));
        if same {
            t.remove(&fd)
        } else {
            None
        }
    });
    drop(stale);
    None
}

/// `new` is now a duplicate of `old` (`dup2`, `F_DUPFD`...): ours if
/// `old` is, and no longer ours otherwise.
pub(crate) fn duplicate(old: c_int, new: c_int) {
    if old == new || !in_use() {
        return;
    }
    match get(old) {
        Some(socket) => insert(new, socket),
        None => remove(new),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// The table is global: one test at a time may change it.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A real descriptor to record (the table checks inodes).
    fn pipe() -> [c_int; 2] {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        fds
    }

    /// A socket over `fd`, with a spare pipe end as its control.
    fn socket(fd: c_int, kind: c_int) -> Arc<Socket> {
        let [r, w] = pipe();
        close(w);
        Arc::new(Socket::new(fd, kind, Descriptor::new(r).unwrap()).unwrap())
    }

    fn close(fd: c_int) {
        // SAFETY: the test owns `fd`.
        unsafe { libc::close(fd) };
    }

    #[test]
    fn test_insert_get_remove() {
        let _serial = serial();
        let [r, w] = pipe();
        let s = socket(r, libc::SOCK_RAW);
        insert(r, Arc::clone(&s));
        assert!(Arc::ptr_eq(&get(r).unwrap(), &s));
        assert!(get(w).is_none());
        remove(r);
        assert!(get(r).is_none());
        close(r);
        close(w);
    }

    #[test]
    fn test_duplicate_shares_state() {
        let _serial = serial();
        let [r, w] = pipe();
        insert(r, socket(r, libc::SOCK_DGRAM));
        // SAFETY: `r` is open.
        let d = unsafe { libc::dup(r) };
        duplicate(r, d);
        get(r).unwrap().lock().port = Some(7);
        assert_eq!(get(d).unwrap().lock().port, Some(7));
        // `w` is not ours: a dup2 of it over `d` makes `d` not ours.
        duplicate(w, d);
        assert!(get(d).is_none());
        remove(r);
        for fd in [r, w, d] {
            close(fd);
        }
    }

    #[test]
    fn test_stale_entry_dropped() {
        let _serial = serial();
        let [r, w] = pipe();
        insert(r, socket(r, libc::SOCK_RAW));
        close(r);
        // `r`'s number now names another file (or nothing).
        let [r2, w2] = pipe();
        assert!(get(r).is_none());
        for fd in [w, r2, w2] {
            close(fd);
        }
    }
}
