//! The C functions this library exports in place of the C library's.
//!
//! Each hook first asks the `table` whether the descriptor is one of our
//! netlink sockets. If not, it calls the C library's function with the
//! same arguments and returns its result untouched. If so, it does what
//! the kernel's netlink socket would do, talking to the daemon through
//! `protocol` on the socket's control connection; the emulation runs
//! under `catch_unwind`, so a bug becomes `EIO` rather than an unwind
//! into C.
//!
//! - [`socket`]: creating, binding, naming and configuring sockets.
//! - [`io`]: sending and receiving.
//! - here: keeping the table in step with `close`, `dup*` and `fcntl`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use libc::{c_int, c_void, sa_family_t, socklen_t};

use crate::{real, table};

pub mod io;
pub mod socket;

const AF_NETLINK: c_int = 16;

/// `struct sockaddr_nl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct SockaddrNl {
    family: sa_family_t,
    pad: u16,
    pid: u32,
    groups: u32,
}

/// `sizeof(struct sockaddr_nl)`.
const SOCKADDR_NL_LEN: usize = size_of::<SockaddrNl>();

impl SockaddrNl {
    /// The address of port `pid` (0: the kernel), no multicast groups.
    fn port(pid: u32) -> Self {
        Self { family: AF_NETLINK as sa_family_t, pid, ..Self::default() }
    }

    /// Reads the caller's address as the kernel does: at least
    /// [`SOCKADDR_NL_LEN`] bytes (`EINVAL`) of family `AF_NETLINK`.
    ///
    /// # Safety
    /// `addr` is null or valid for reads of `len` bytes.
    unsafe fn read(
        addr: *const c_void,
        len: socklen_t,
    ) -> Result<Self, c_int> {
        if (len as usize) < SOCKADDR_NL_LEN {
            return Err(libc::EINVAL);
        }
        if addr.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: `addr` holds at least `SOCKADDR_NL_LEN` bytes, and every
        // bit pattern is a valid `SockaddrNl`.
        let nl = unsafe { ptr::read_unaligned(addr.cast::<Self>()) };
        if c_int::from(nl.family) != AF_NETLINK {
            return Err(libc::EINVAL);
        }
        Ok(nl)
    }

    /// Copies the address out as `getsockname` and `recvfrom` do: as much
    /// as fits in `*len`, and `*len` set to the full length.
    ///
    /// # Safety
    /// `len` is null or valid for reads and writes; `addr` is null or
    /// valid for writes of `*len` bytes.
    unsafe fn write(
        self,
        addr: *mut c_void,
        len: *mut socklen_t,
    ) -> Result<(), c_int> {
        if len.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: `len` is valid (contract).
        let room = unsafe { *len };
        let n = SOCKADDR_NL_LEN.min(room as usize);
        if n > 0 && addr.is_null() {
            return Err(libc::EFAULT);
        }
        let from = ptr::from_ref(&self).cast::<u8>();
        // SAFETY: `self` is `SOCKADDR_NL_LEN` bytes; `addr` has room for
        // `n` of them (contract); the two cannot overlap.
        unsafe {
            ptr::copy_nonoverlapping(from, addr.cast(), n);
            *len = SOCKADDR_NL_LEN as socklen_t;
        }
        Ok(())
    }
}

/// Runs the emulation of one call: `Ok(v)` is returned, `Err(errno)` sets
/// `errno` and returns -1, and a panic counts as `EIO`.
fn emulate<T: From<i8>>(f: impl FnOnce() -> Result<T, c_int>) -> T {
    let errno = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e,
        Err(_) => libc::EIO,
    };
    real::set_errno(errno);
    T::from(-1)
}

/// Prints `message` on stderr, the first time only.
fn warn_once(message: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    let line = format!("jool-sim-preload: {message}\n");
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        // SAFETY: `rest` is valid for reads of its length.
        let n = unsafe { real::write(2, rest.as_ptr().cast(), rest.len()) };
        match usize::try_from(n) {
            Ok(n) if n > 0 => rest = &rest[n..],
            _ => return,
        }
    }
}

/// `close(2)`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    // Forget it first: once closed, its number may be reused at once.
    table::remove(fd);
    // SAFETY: the caller's argument, unchanged.
    unsafe { real::close(fd) }
}

/// `dup(2)`: the copy of one of our sockets is ours too.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn dup(old: c_int) -> c_int {
    // SAFETY: the caller's argument, unchanged.
    let new = unsafe { real::dup(old) };
    if new >= 0 {
        table::duplicate(old, new);
    }
    new
}

/// `dup2(2)`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    // SAFETY: the caller's arguments, unchanged.
    let r = unsafe { real::dup2(old, new) };
    if r >= 0 {
        table::duplicate(old, r);
    }
    r
}

/// `dup3(2)`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments, unchanged.
    let r = unsafe { real::dup3(old, new, flags) };
    if r >= 0 {
        table::duplicate(old, r);
    }
    r
}

/// `fcntl(2)`, variadic in C. On x86_64 and aarch64 (Linux) a variadic
/// integer or pointer argument travels in the same register as a fixed
/// one, so taking the third argument as `c_ulong` and passing it on is
/// exact for every command (commands without one pass on an unused
/// register). `F_DUPFD` and `F_DUPFD_CLOEXEC` duplicate our sockets.
///
/// # Safety
/// None beyond C's.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[no_mangle]
pub unsafe extern "C" fn fcntl(
    fd: c_int,
    cmd: c_int,
    arg: libc::c_ulong,
) -> c_int {
    // SAFETY: the caller's arguments, unchanged.
    let r = unsafe { real::fcntl(fd, cmd, arg) };
    note_dupfd(fd, cmd, r)
}

/// `fcntl64`, glibc's name for `fcntl` under `_FILE_OFFSET_BITS=64`.
///
/// # Safety
/// None beyond C's.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[no_mangle]
pub unsafe extern "C" fn fcntl64(
    fd: c_int,
    cmd: c_int,
    arg: libc::c_ulong,
) -> c_int {
    // SAFETY: the caller's arguments, unchanged.
    let r = unsafe { real::fcntl64(fd, cmd, arg) };
    note_dupfd(fd, cmd, r)
}

/// Records the result `r` of a successful `F_DUPFD*`; returns `r`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn note_dupfd(fd: c_int, cmd: c_int, r: c_int) -> c_int {
    if r >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        table::duplicate(fd, r);
    }
    r
}
