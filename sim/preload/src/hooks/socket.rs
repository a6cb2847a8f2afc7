//! Creating, binding, naming and configuring netlink sockets.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::{io, mem, ptr};

use libc::{c_int, c_void, sa_family_t, sockaddr, socklen_t};

use super::{emulate, warn_once, SockaddrNl, AF_NETLINK};
use crate::protocol;
use crate::real::{self, Descriptor};
use crate::table::{self, Socket, State, OPTION_BITS};

/// The environment variable naming the daemon's socket.
const SOCKET_ENV: &str = "JOOL_SIM_SOCKET";

const NETLINK_GENERIC: c_int = 16;
const SOL_NETLINK: c_int = 270;
const NETLINK_ADD_MEMBERSHIP: c_int = 1;
const NETLINK_DROP_MEMBERSHIP: c_int = 2;
const NETLINK_LIST_MEMBERSHIPS: c_int = 9;
const NETLINK_EXT_ACK: c_int = 11;
/// The on/off options, kept in `State::options`: `NETLINK_PKTINFO`,
/// `_BROADCAST_ERROR`, `_NO_ENOBUFS`, `_LISTEN_ALL_NSID`, `_CAP_ACK`,
/// `_EXT_ACK`, `_GET_STRICT_CHK`.
const FLAG_OPTIONS: [c_int; 7] = [3, 4, 5, 8, 10, NETLINK_EXT_ACK, 12];

/// `socket(2)`: `AF_NETLINK`/`NETLINK_GENERIC` becomes a pair of
/// connections to the daemon; everything else is the C library's.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn socket(
    domain: c_int,
    ty: c_int,
    protocol: c_int,
) -> c_int {
    if domain == AF_NETLINK && protocol == NETLINK_GENERIC {
        return emulate(|| open(ty));
    }
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real::socket(domain, ty, protocol) }
}

/// Opens a netlink socket of type `ty` (`SOCK_CLOEXEC` and
/// `SOCK_NONBLOCK` apply to the descriptor returned). A daemon that cannot
/// be reached is `ECONNREFUSED`, with one line on stderr saying why.
fn open(ty: c_int) -> Result<c_int, c_int> {
    let kind = ty & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK);
    if kind != libc::SOCK_RAW && kind != libc::SOCK_DGRAM {
        return Err(libc::ESOCKTNOSUPPORT);
    }
    let Some(path) = std::env::var_os(SOCKET_ENV) else {
        warn_once(&format!(
            "{SOCKET_ENV} is not set: NETLINK_GENERIC sockets fail with \
             ECONNREFUSED (start `jool-sim serve --socket PATH` and set \
             {SOCKET_ENV}=PATH)"
        ));
        return Err(libc::ECONNREFUSED);
    };
    // The data channel first: it gets the number a kernel socket would.
    let data = unix_socket(ty & libc::SOCK_CLOEXEC)?;
    let control = unix_socket(libc::SOCK_CLOEXEC)?;
    pair(&path, &data, &control).map_err(|e| {
        warn_once(&format!(
            "cannot connect to the jool-sim daemon at {} ({SOCKET_ENV}): \
             {}; NETLINK_GENERIC sockets fail with ECONNREFUSED",
            path.to_string_lossy(),
            io::Error::from_raw_os_error(e),
        ));
        libc::ECONNREFUSED
    })?;
    let nonblock = c_int::from(ty & libc::SOCK_NONBLOCK != 0);
    // SAFETY: `data` is open; FIONBIO reads one int.
    if unsafe { libc::ioctl(data.raw(), libc::FIONBIO, &nonblock) } != 0 {
        return Err(real::errno());
    }
    let socket = Socket::new(data.raw(), kind, control).ok_or(libc::EIO)?;
    let fd = data.into_raw();
    table::insert(fd, Arc::new(socket));
    Ok(fd)
}

/// A new, unconnected `SOCK_SEQPACKET` Unix socket.
fn unix_socket(flags: c_int) -> Result<Descriptor, c_int> {
    let ty = libc::SOCK_SEQPACKET | flags;
    // SAFETY: plain arguments.
    Descriptor::new(unsafe { real::socket(libc::AF_UNIX, ty, 0) })
}

/// Connects both sockets to the daemon at `path`, and makes `data` the
/// data channel of `control` (`'P'`, then `'D'`).
fn pair(
    path: &OsStr,
    data: &Descriptor,
    control: &Descriptor,
) -> Result<(), c_int> {
    // SAFETY: `sockaddr_un` is plain data; all-zero is valid.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    let bytes = path.as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(libc::ENAMETOOLONG);
    }
    addr.sun_family = libc::AF_UNIX as sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let len = (size_of::<sa_family_t>() + bytes.len() + 1) as socklen_t;
    let connect = |fd: &Descriptor| {
        let a = ptr::from_ref(&addr).cast::<sockaddr>();
        // SAFETY: `a` is a valid `sockaddr_un` of at least `len` bytes.
        match unsafe { real::connect(fd.raw(), a, len) } {
            0 => Ok(()),
            _ => Err(real::errno()),
        }
    };
    connect(control)?;
    let token = protocol::transact(control.raw(), &protocol::pair_packet())?;
    connect(data)?;
    protocol::transact(data.raw(), &protocol::data_packet(token)).map(drop)
}

/// Binds to `port` (0: any) as `netlink_bind` does: a bound socket
/// accepts only its own port again.
fn bind_port(
    socket: &Socket,
    state: &mut State,
    port: u32,
) -> Result<(), c_int> {
    match state.port {
        Some(bound) if bound == port => Ok(()),
        Some(_) => Err(libc::EINVAL),
        None => {
            let packet = protocol::bind_packet(port);
            let assigned = protocol::transact(socket.control.raw(), &packet)?;
            state.port = Some(assigned);
            Ok(())
        }
    }
}

/// Binds an unbound socket to a port the daemon chooses, as the kernel
/// does before the first send or connect.
pub(super) fn autobind(
    socket: &Socket,
    state: &mut State,
) -> Result<(), c_int> {
    match state.port {
        Some(_) => Ok(()),
        None => bind_port(socket, state, 0),
    }
}

/// `bind(2)`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn bind(
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> c_int {
    let Some(socket) = table::get(fd) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::bind(fd, addr, len) };
    };
    emulate(|| {
        // SAFETY: C's contract for `addr` and `len`.
        let nl = unsafe { SockaddrNl::read(addr.cast(), len) }?;
        bind_port(&socket, &mut socket.lock(), nl.pid).map(|()| 0)
    })
}

/// `connect(2)`: connecting autobinds; the destination is not kept (only
/// the kernel exists). `AF_UNSPEC` disconnects, which changes nothing.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn connect(
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> c_int {
    let Some(socket) = table::get(fd) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::connect(fd, addr, len) };
    };
    emulate(|| {
        if (len as usize) < size_of::<sa_family_t>() {
            return Err(libc::EINVAL);
        }
        if addr.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: `addr` holds at least a family (checked above).
        let family =
            unsafe { ptr::read_unaligned(addr.cast::<sa_family_t>()) };
        if c_int::from(family) == libc::AF_UNSPEC {
            return Ok(0);
        }
        // SAFETY: C's contract for `addr` and `len`.
        unsafe { SockaddrNl::read(addr.cast(), len) }?;
        autobind(&socket, &mut socket.lock()).map(|()| 0)
    })
}

/// `getsockname(2)`: `{AF_NETLINK, port id (0 before bind), groups 0}`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn getsockname(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> c_int {
    let Some(socket) = table::get(fd) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::getsockname(fd, addr, len) };
    };
    emulate(|| {
        let port = socket.lock().port.unwrap_or(0);
        // SAFETY: C's contract for `addr` and `len`.
        unsafe { SockaddrNl::port(port).write(addr.cast(), len) }.map(|()| 0)
    })
}

/// `getpeername(2)`: the kernel, port 0.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn getpeername(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> c_int {
    if table::get(fd).is_none() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::getpeername(fd, addr, len) };
    }
    emulate(|| {
        // SAFETY: C's contract for `addr` and `len`.
        unsafe { SockaddrNl::port(0).write(addr.cast(), len) }.map(|()| 0)
    })
}

/// `setsockopt(2)`. `SOL_SOCKET` options go to the data channel (buffer
/// sizes behave alike), failing only where netlink would; `SOL_NETLINK`
/// options are kept here, and `NETLINK_EXT_ACK` is forwarded to the
/// daemon; other levels are `ENOPROTOOPT`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    let Some(socket) = table::get(fd) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::setsockopt(fd, level, name, val, len) };
    };
    if level == libc::SOL_SOCKET {
        // SAFETY: the caller's arguments, unchanged.
        let r = unsafe { real::setsockopt(fd, level, name, val, len) };
        // What a Unix socket lacks and every socket family takes.
        let e = real::errno();
        let unsupported = e == libc::ENOPROTOOPT || e == libc::EOPNOTSUPP;
        return if r != 0 && unsupported { 0 } else { r };
    }
    emulate(|| {
        if level != SOL_NETLINK {
            return Err(libc::ENOPROTOOPT);
        }
        if (len as usize) < size_of::<c_int>() {
            return Err(libc::EINVAL);
        }
        if val.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: `val` holds at least an int (checked above).
        let on = unsafe { ptr::read_unaligned(val.cast::<c_int>()) } != 0;
        set_netlink_option(&socket, name, on).map(|()| 0)
    })
}

/// Sets one `SOL_NETLINK` option.
fn set_netlink_option(
    socket: &Socket,
    name: c_int,
    on: bool,
) -> Result<(), c_int> {
    if name == NETLINK_ADD_MEMBERSHIP || name == NETLINK_DROP_MEMBERSHIP {
        return Ok(()); // No multicast in the simulator; nothing to join.
    }
    if !FLAG_OPTIONS.contains(&name) {
        return Err(libc::ENOPROTOOPT);
    }
    let mut state = socket.lock();
    if name == NETLINK_EXT_ACK {
        let packet =
            protocol::setsockopt_packet(SOL_NETLINK, name, c_int::from(on));
        protocol::transact(socket.control.raw(), &packet)?;
    }
    let bit = 1u32 << (name % OPTION_BITS);
    if on {
        state.options |= bit;
    } else {
        state.options &= !bit;
    }
    Ok(())
}

/// `getsockopt(2)`: `SO_TYPE`, `SO_DOMAIN` and `SO_PROTOCOL` describe the
/// netlink socket, other `SOL_SOCKET` options the data channel;
/// `SOL_NETLINK` options are the stored ones.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    let socket = table::get(fd);
    let own = |s: &Arc<Socket>| match (level, name) {
        (libc::SOL_SOCKET, libc::SO_TYPE) => Some(s.kind),
        (libc::SOL_SOCKET, libc::SO_DOMAIN) => Some(AF_NETLINK),
        (libc::SOL_SOCKET, libc::SO_PROTOCOL) => Some(NETLINK_GENERIC),
        _ => None,
    };
    if let Some(value) = socket.as_ref().and_then(own) {
        // SAFETY: C's contract for `val` and `len`.
        return emulate(|| unsafe { put_int(val, len, value, false) });
    }
    let Some(socket) = socket.filter(|_| level != libc::SOL_SOCKET) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::getsockopt(fd, level, name, val, len) };
    };
    emulate(|| {
        if level != SOL_NETLINK {
            return Err(libc::ENOPROTOOPT);
        }
        if name == NETLINK_LIST_MEMBERSHIPS {
            // SAFETY: C's contract for `val` and `len`.
            return unsafe { put_int(val, len, 0, false) }; // Member of none.
        }
        if !FLAG_OPTIONS.contains(&name) {
            return Err(libc::ENOPROTOOPT);
        }
        let on = socket.lock().options & (1 << (name % OPTION_BITS)) != 0;
        // SAFETY: C's contract for `val` and `len`.
        unsafe { put_int(val, len, c_int::from(on), true) }
    })
}

/// Returns an int option: all of it with `*len` = 4; or, unless `whole`
/// (netlink's own options, which fail with `EINVAL`), as many bytes as
/// `*len` allows, as `SOL_SOCKET` does.
///
/// # Safety
/// `len` is null or valid for reads and writes; `val` is null or valid
/// for writes of `*len` bytes.
unsafe fn put_int(
    val: *mut c_void,
    len: *mut socklen_t,
    v: c_int,
    whole: bool,
) -> Result<c_int, c_int> {
    if len.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: `len` is valid (contract).
    let room = unsafe { *len } as i32;
    let size = size_of::<c_int>();
    if room < 0 || (whole && (room as usize) < size) {
        return Err(libc::EINVAL);
    }
    let n = size.min(room as usize);
    if n > 0 && val.is_null() {
        return Err(libc::EFAULT);
    }
    let from = ptr::from_ref(&v).cast::<u8>();
    // SAFETY: `val` has room for `n` bytes (contract); `v` has `size`.
    unsafe {
        ptr::copy_nonoverlapping(from, val.cast(), n);
        *len = n as socklen_t;
    }
    Ok(0)
}
