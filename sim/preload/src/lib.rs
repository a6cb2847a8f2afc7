//! `jool-sim-preload`: an `LD_PRELOAD` shim that makes unmodified netlink
//! clients (Debian's C `jool`/`jool_siit` over libnl, or anything else
//! that opens a `NETLINK_GENERIC` socket) talk to the `jool-sim serve`
//! daemon instead of the kernel.
//!
//! ```text
//! jool-sim serve --socket /tmp/jool-sim.sock &
//! JOOL_SIM_SOCKET=/tmp/jool-sim.sock \
//!     LD_PRELOAD=target/debug/libjool_sim_preload.so \
//!     jool_siit stats display --all
//! ```
//!
//! `socket(AF_NETLINK, SOCK_RAW or SOCK_DGRAM, NETLINK_GENERIC)` opens two
//! Unix `SOCK_SEQPACKET` connections to `$JOOL_SIM_SOCKET`
//! (`docs/daemon-protocol.md`): the application gets the daemon's *data
//! channel*, on which reply datagrams are queued, so reading, peeking and
//! polling it behave as on netlink with no help from us; the shim keeps the
//! *control* connection (one extra close-on-exec descriptor per socket),
//! on which `bind`, `sendmsg` and `NETLINK_EXT_ACK` become commands. Every
//! other socket, and every call on another descriptor, goes to the C
//! library untouched. Without a reachable daemon, `socket()` fails with
//! `ECONNREFUSED` and one line on stderr says why.
//!
//! - `table`: which descriptors are ours, and their netlink state.
//! - `protocol`: the daemon's packets, and one command's round trip.
//! - [`hooks`]: the exported C functions.
//! - `real`: the C library's versions of those functions.
//!
//! Not emulated: multicast (joining a group is accepted, nothing is ever
//! delivered), sending to other user ports (`ECONNREFUSED`), control
//! messages (no `SCM_CREDENTIALS` or `NETLINK_PKTINFO` cmsg is returned;
//! those sent are ignored), `sendmmsg`/`recvmmsg`, `readv`/`writev`, and a
//! netlink descriptor inherited across `exec` (its control connection is
//! close-on-exec, and the new program's table is empty). The control
//! connection is an ordinary descriptor: a program that closes
//! descriptors it did not open (`closefrom`) breaks its netlink sockets.
#![cfg_attr(test, allow(dead_code))]

#[cfg(not(test))]
pub mod hooks;
mod protocol;
mod real;
mod table;
