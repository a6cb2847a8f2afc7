//! The C library's own versions of the functions this library shadows.
//!
//! Inside this library a call to `libc::recv` would bind to our own
//! exported `recv` (LD_PRELOAD puts us first in the lookup order), so
//! every shadowed function is called through the pointer that
//! `dlsym(RTLD_NEXT, name)` returns: the next definition after ours,
//! normally glibc's. Each pointer is resolved on first use and cached.
//! A symbol the C library lacks fails with `ENOSYS`.

use std::mem;
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{
    c_int, c_ulong, c_void, msghdr, size_t, sockaddr, socklen_t, ssize_t,
};

/// Looks `name` (which ends with a NUL byte) up after this library,
/// caching the answer in `slot`.
fn resolve(slot: &AtomicPtr<c_void>, name: &'static str) -> *mut c_void {
    let cached = slot.load(Ordering::Acquire);
    if !cached.is_null() {
        return cached;
    }
    if !name.ends_with('\0') {
        return std::ptr::null_mut();
    }
    // SAFETY: `name` is NUL-terminated; RTLD_NEXT is a valid pseudo
    // handle for a shared object that the dynamic linker loaded.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    slot.store(found, Ordering::Release);
    found
}

/// Sets `errno`.
pub(crate) fn set_errno(errno: c_int) {
    // SAFETY: `__errno_location` returns this thread's errno slot.
    unsafe { *libc::__errno_location() = errno };
}

/// This thread's `errno`.
pub(crate) fn errno() -> c_int {
    // SAFETY: as in `set_errno`.
    unsafe { *libc::__errno_location() }
}

/// Defines, for each C signature, a function of the same name that calls
/// the next definition of the symbol.
macro_rules! next {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
        #[doc = concat!("The C library's `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// The C function's contract.
        pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
            static SLOT: AtomicPtr<c_void> =
                AtomicPtr::new(std::ptr::null_mut());
            let f = resolve(&SLOT, concat!(stringify!($name), "\0"));
            if f.is_null() {
                set_errno(libc::ENOSYS);
                return -1;
            }
            type F = unsafe extern "C" fn($($ty),*) -> $ret;
            // SAFETY: `f` is the address of the C function `$name`, whose
            // prototype is the signature this macro was given.
            let f = unsafe { mem::transmute::<*mut c_void, F>(f) };
            // SAFETY: the caller upholds the C function's contract.
            unsafe { f($($arg),*) }
        }
    )*};
}

next! {
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t)
        -> c_int;
    fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t)
        -> c_int;
    fn setsockopt(
        fd: c_int, level: c_int, name: c_int, val: *const c_void,
        len: socklen_t
    ) -> c_int;
    fn getsockopt(
        fd: c_int, level: c_int, name: c_int, val: *mut c_void,
        len: *mut socklen_t
    ) -> c_int;
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    fn sendto(
        fd: c_int, buf: *const c_void, len: size_t, flags: c_int,
        addr: *const sockaddr, addrlen: socklen_t
    ) -> ssize_t;
    fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int)
        -> ssize_t;
    fn write(fd: c_int, buf: *const c_void, len: size_t) -> ssize_t;
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    fn recvfrom(
        fd: c_int, buf: *mut c_void, len: size_t, flags: c_int,
        addr: *mut sockaddr, addrlen: *mut socklen_t
    ) -> ssize_t;
    fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int)
        -> ssize_t;
    fn read(fd: c_int, buf: *mut c_void, len: size_t) -> ssize_t;
    fn __read_chk(fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t)
        -> ssize_t;
    fn __recv_chk(
        fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t,
        flags: c_int
    ) -> ssize_t;
    fn __recvfrom_chk(
        fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t,
        flags: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t
    ) -> ssize_t;
    fn close(fd: c_int) -> c_int;
    fn dup(fd: c_int) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
}

/// Defines `fcntl`-like functions: variadic in C, called here with the
/// one argument every command takes at most (an int or a pointer, both
/// passed in one integer register on the ABIs `hooks` supports).
macro_rules! next_fcntl {
    ($($name:ident)*) => {$(
        #[doc = concat!("The C library's `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// The C function's contract for `cmd`.
        pub(crate) unsafe fn $name(fd: c_int, cmd: c_int, arg: c_ulong)
            -> c_int {
            static SLOT: AtomicPtr<c_void> =
                AtomicPtr::new(std::ptr::null_mut());
            let f = resolve(&SLOT, concat!(stringify!($name), "\0"));
            if f.is_null() {
                set_errno(libc::ENOSYS);
                return -1;
            }
            type F = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;
            // SAFETY: `f` is the C function, `int (int, int, ...)`.
            let f = unsafe { mem::transmute::<*mut c_void, F>(f) };
            // SAFETY: the caller upholds the contract of `cmd`.
            unsafe { f(fd, cmd, arg) }
        }
    )*};
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
next_fcntl! { fcntl fcntl64 }

/// A descriptor this library owns; dropping it closes it with the C
/// library's `close` (never our hook, which may hold the table's lock).
#[derive(Debug)]
pub(crate) struct Descriptor(c_int);

impl Descriptor {
    /// Owns the result of a call that returns a descriptor or -1.
    pub(crate) fn new(fd: c_int) -> Result<Self, c_int> {
        if fd < 0 {
            return Err(errno());
        }
        Ok(Self(fd))
    }

    /// The descriptor's number.
    pub(crate) fn raw(&self) -> c_int {
        self.0
    }

    /// Gives the descriptor away without closing it.
    pub(crate) fn into_raw(self) -> c_int {
        let fd = self.0;
        mem::forget(self);
        fd
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor, and nothing uses it after this.
        unsafe { close(self.0) };
    }
}
