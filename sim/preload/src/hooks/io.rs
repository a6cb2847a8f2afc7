//! Sending and receiving on netlink sockets.
//!
//! A send is one `'S'` command on the control connection; when it
//! returns, the daemon has already queued every reply on the data channel.
//! Receives read the data channel with the C library's functions, which
//! keeps datagram boundaries, `MSG_PEEK`, `MSG_TRUNC`, `MSG_DONTWAIT` and
//! readiness for `poll`/`select`/`epoll` as netlink has them; the hooks
//! only give the sender as the kernel's `sockaddr_nl` and report no
//! control data.

use std::{mem, ptr, slice};

use libc::{
    c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t,
};

use super::socket::autobind;
use super::{emulate, warn_once, SockaddrNl};
use crate::table::{self, Socket};
use crate::{protocol, real};

/// Most iovecs in one call (`UIO_MAXIOV`).
const UIO_MAXIOV: usize = 1024;

/// The caller's buffers as slices (`EMSGSIZE` past `UIO_MAXIOV`).
///
/// # Safety
/// `iov` is null or points to `n` iovecs whose buffers stay valid for
/// reads for `'a`.
unsafe fn iov_slices<'a>(
    iov: *const iovec,
    n: usize,
) -> Result<Vec<&'a [u8]>, c_int> {
    if n > UIO_MAXIOV {
        return Err(libc::EMSGSIZE);
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    if iov.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: `iov` points to `n` iovecs (contract).
    let iov = unsafe { slice::from_raw_parts(iov, n) };
    let part = |v: &iovec| match (v.iov_base.is_null(), v.iov_len) {
        (_, 0) => Ok(&[][..]),
        (true, _) => Err(libc::EFAULT),
        (false, len) => {
            let base = v.iov_base.cast::<u8>();
            // SAFETY: a caller's buffer, valid for reads (contract).
            Ok(unsafe { slice::from_raw_parts(base, len) })
        }
    };
    iov.iter().map(part).collect()
}

/// Checks a send's destination as `netlink_sendmsg` does. Only the kernel
/// (port 0) exists in the simulation; multicast groups are ignored.
///
/// # Safety
/// `name` is null or valid for reads of `len` bytes.
unsafe fn check_destination(
    name: *const c_void,
    len: socklen_t,
) -> Result<(), c_int> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: contract.
    let nl = unsafe { SockaddrNl::read(name, len) }?;
    if nl.pid != 0 {
        return Err(libc::ECONNREFUSED);
    }
    Ok(())
}

/// `EMSGSIZE` if `len` exceeds what the socket's `SO_SNDBUF` allows, as
/// `netlink_sendmsg` checks (`len > sk_sndbuf - 32`).
fn check_sndbuf(fd: c_int, len: usize) -> Result<(), c_int> {
    let mut sndbuf: c_int = 0;
    let mut size = size_of::<c_int>() as socklen_t;
    let val = ptr::from_mut(&mut sndbuf).cast();
    // SAFETY: `val` has room for `size` bytes.
    let r = unsafe {
        real::getsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, val, &mut size)
    };
    let limit = usize::try_from(sndbuf.saturating_sub(32)).unwrap_or(0);
    if r == 0 && len > limit {
        return Err(libc::EMSGSIZE);
    }
    Ok(())
}

/// Sends one datagram made of `parts`; returns its length.
fn send_datagram(
    fd: c_int,
    socket: &Socket,
    parts: &[&[u8]],
    flags: c_int,
) -> Result<ssize_t, c_int> {
    if flags & libc::MSG_OOB != 0 {
        return Err(libc::EOPNOTSUPP);
    }
    let mut state = socket.lock();
    autobind(socket, &mut state)?;
    let len: usize = parts.iter().map(|p| p.len()).sum();
    check_sndbuf(fd, len)?;
    let packet = protocol::send_packet(parts.iter().copied())?;
    protocol::transact(socket.control.raw(), &packet)?;
    ssize_t::try_from(len).map_err(|_| libc::EMSGSIZE)
}

/// `sendmsg(2)`. Control data (`SCM_CREDENTIALS`) is ignored.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(
    fd: c_int,
    msg: *const msghdr,
    flags: c_int,
) -> ssize_t {
    let Some(socket) = table::get(fd) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::sendmsg(fd, msg, flags) };
    };
    emulate(|| {
        // SAFETY: C's contract: `msg` is null or a valid msghdr.
        let msg = unsafe { msg.as_ref() }.ok_or(libc::EFAULT)?;
        // SAFETY: C's contract for the name and buffers.
        let parts = unsafe {
            check_destination(msg.msg_name, msg.msg_namelen)?;
            iov_slices(msg.msg_iov, msg.msg_iovlen)?
        };
        send_datagram(fd, &socket, &parts, flags)
    })
}

/// `sendto(2)`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    let Some(socket) = table::get(fd) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::sendto(fd, buf, len, flags, addr, addrlen) };
    };
    emulate(|| {
        let iov = iovec { iov_base: buf.cast_mut(), iov_len: len };
        // SAFETY: C's contract for the name and the buffer.
        let parts = unsafe {
            check_destination(addr.cast(), addrlen)?;
            iov_slices(&iov, 1)?
        };
        send_datagram(fd, &socket, &parts, flags)
    })
}

/// `send(2)`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn send(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
) -> ssize_t {
    if table::get(fd).is_none() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::send(fd, buf, len, flags) };
    }
    // SAFETY: the caller's arguments, no address.
    unsafe { sendto(fd, buf, len, flags, ptr::null(), 0) }
}

/// `write(2)`: a send without flags on our sockets.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn write(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
) -> ssize_t {
    if table::get(fd).is_none() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::write(fd, buf, len) };
    }
    // SAFETY: the caller's arguments, no address.
    unsafe { sendto(fd, buf, len, 0, ptr::null(), 0) }
}

/// Receives one datagram from the data channel `fd` into `iov`; returns
/// the length (with `MSG_TRUNC`: the full length) and the `msg_flags`.
///
/// # Safety
/// `iov` is null or points to `n` iovecs whose buffers are valid for
/// writes.
unsafe fn receive(
    fd: c_int,
    iov: *mut iovec,
    n: usize,
    flags: c_int,
) -> Result<(ssize_t, c_int), c_int> {
    if flags & libc::MSG_OOB != 0 {
        return Err(libc::EOPNOTSUPP);
    }
    // SAFETY: `msghdr` is plain data; all-zero is an empty header.
    let mut msg: msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    // SAFETY: `msg` is valid; its iovecs are the caller's (contract).
    let got = unsafe { real::recvmsg(fd, &mut msg, flags) };
    if got < 0 {
        return Err(real::errno());
    }
    // No room for control data was given: drop the Unix socket's flag.
    Ok((got, msg.msg_flags & !libc::MSG_CTRUNC))
}

/// `recvmsg(2)`: the sender is the kernel, and there is no control data.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn recvmsg(
    fd: c_int,
    msg: *mut msghdr,
    flags: c_int,
) -> ssize_t {
    if table::get(fd).is_none() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::recvmsg(fd, msg, flags) };
    }
    emulate(|| {
        // SAFETY: C's contract: `msg` is null or a valid msghdr.
        let msg = unsafe { msg.as_mut() }.ok_or(libc::EFAULT)?;
        // SAFETY: C's contract for the buffers.
        let (got, msg_flags) =
            unsafe { receive(fd, msg.msg_iov, msg.msg_iovlen, flags) }?;
        if !msg.msg_name.is_null() {
            let name = msg.msg_name;
            // SAFETY: `msg_name` has room for `msg_namelen` bytes (C's
            // contract), and `msg_namelen` is a valid place.
            unsafe { SockaddrNl::port(0).write(name, &mut msg.msg_namelen) }?;
        }
        msg.msg_controllen = 0;
        msg.msg_flags = msg_flags;
        Ok(got)
    })
}

/// `recvfrom(2)`: the sender is the kernel.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    if table::get(fd).is_none() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::recvfrom(fd, buf, len, flags, addr, addrlen) };
    }
    emulate(|| {
        let mut iov = iovec { iov_base: buf, iov_len: len };
        // SAFETY: C's contract: `buf` has room for `len` bytes.
        let (got, _) = unsafe { receive(fd, &mut iov, 1, flags) }?;
        if !addr.is_null() {
            // SAFETY: C's contract for `addr` and `addrlen`.
            unsafe { SockaddrNl::port(0).write(addr.cast(), addrlen) }?;
        }
        Ok(got)
    })
}

/// `recv(2)`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn recv(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
) -> ssize_t {
    if table::get(fd).is_none() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::recv(fd, buf, len, flags) };
    }
    // SAFETY: the caller's arguments, no address.
    unsafe { recvfrom(fd, buf, len, flags, ptr::null_mut(), ptr::null_mut()) }
}

/// `read(2)`: a receive without flags on our sockets.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn read(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
) -> ssize_t {
    if table::get(fd).is_none() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::read(fd, buf, len) };
    }
    // SAFETY: the caller's arguments, no address.
    unsafe { recvfrom(fd, buf, len, 0, ptr::null_mut(), ptr::null_mut()) }
}

/// `_FORTIFY_SOURCE`'s checked `read` (glibc's calls its internal `read`,
/// which we would not see).
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
) -> ssize_t {
    if table::get(fd).is_none() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::__read_chk(fd, buf, len, buflen) };
    }
    overflow_check(len, buflen);
    // SAFETY: the caller's arguments; `len` fits in the buffer.
    unsafe { read(fd, buf, len) }
}

/// `_FORTIFY_SOURCE`'s checked `recv`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if table::get(fd).is_none() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::__recv_chk(fd, buf, len, buflen, flags) };
    }
    overflow_check(len, buflen);
    // SAFETY: the caller's arguments; `len` fits in the buffer.
    unsafe { recv(fd, buf, len, flags) }
}

/// `_FORTIFY_SOURCE`'s checked `recvfrom`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    if table::get(fd).is_none() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe {
            real::__recvfrom_chk(fd, buf, len, buflen, flags, addr, addrlen)
        };
    }
    overflow_check(len, buflen);
    // SAFETY: the caller's arguments; `len` fits in the buffer.
    unsafe { recvfrom(fd, buf, len, flags, addr, addrlen) }
}

/// Aborts as glibc's `__chk_fail` does when a fortified call would
/// overflow its buffer.
fn overflow_check(len: size_t, buflen: size_t) {
    if len > buflen {
        warn_once("*** buffer overflow detected ***: terminated");
        std::process::abort();
    }
}
