//! `jool-sim serve` round trips per second, next to the host kernel's own
//! generic-netlink round trip measured in the same run.
//!
//! - `kernel`: `CTRL_CMD_GETFAMILY "nlctrl"` on a real `NETLINK_GENERIC`
//!   socket of this process, reply read back (any Linux answers it, with
//!   or without Jool).
//! - `daemon, 1 client` / `2 clients`: `jool_siit stats display --all`'s
//!   request (4.1.9, 69 counters) over a daemon socket (`'S'`, its result,
//!   the 876-byte reply), the daemon serving in a thread of this process.
//!
//! The three are measured in turns (`ROUNDS` rounds of `WINDOW` each) so
//! that a change of load on the machine hits all of them; the medians
//! are printed, with the daemon's rate as a ratio to the kernel's. Twice:
//! with the daemon and its clients polling before they sleep (the
//! default, `jool_sim::daemon` `spin`), and without.
//!
//! ```text
//! cargo bench -p jool-sim --bench daemon            # 7 rounds of 1 s
//! cargo bench -p jool-sim --bench daemon -- 3 0.5   # ROUNDS WINDOW_SECONDS
//! ```

use std::{
    os::fd::{AsRawFd, OwnedFd},
    path::PathBuf,
    time::{Duration, Instant},
};

use jool_sim::{
    daemon::{self, Client, Limits, Shared},
    identity::Identity,
    kernel::{Framework, Kernel, Xlator},
    supervise::PrivateDir,
    versions::Profile,
};
use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

/// `jool_siit stats display --all`'s request (4.1.9), family 0x20.
const STATS: [u8; 48] = [
    0x30, 0, 0, 0, 0x20, 0, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr
    7, 1, 0, 0, // genl: STATS_FOREACH v1
    b'j', b'o', b'o', b'l', 4, 1, 9, 0, 1, 0, 0, 0, // magic, version, xt
    b'd', b'e', b'f', b'a', b'u', b'l', b't', 0, 0, 0, 0, 0, 0, 0, 0,
    0, // iname
];

/// `CTRL_CMD_GETFAMILY` for "nlctrl" (the generic-netlink controller).
const GETFAMILY: [u8; 32] = [
    32, 0, 0, 0, // nlmsg_len
    0x10, 0, // GENL_ID_CTRL
    1, 0, // NLM_F_REQUEST
    1, 0, 0, 0, // seq
    0, 0, 0, 0, // port id
    3, 1, 0, 0, // CTRL_CMD_GETFAMILY, version 1
    11, 0, 2, 0, // CTRL_ATTR_FAMILY_NAME, 11 bytes
    b'n', b'l', b'c', b't', b'r', b'l', 0, 0, // "nlctrl", NUL, pad
];

/// A bound `NETLINK_GENERIC` socket.
fn kernel_socket() -> OwnedFd {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkGeneric,
    )
    .expect("a NETLINK_GENERIC socket");
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).expect("bind");
    fd
}

/// One kernel round trip; the reply's length.
fn kernel_roundtrip(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    send(fd.as_raw_fd(), &GETFAMILY, MsgFlags::empty()).expect("send");
    recv(fd.as_raw_fd(), buf, MsgFlags::empty()).expect("recv")
}

/// One daemon round trip.
fn daemon_roundtrip(c: &Client) {
    let (e, n) = c.command(b'S', &STATS).expect("'S'");
    assert_eq!((e, n), (0, 1));
    let reply = c.recv(true).expect("the reply");
    assert_eq!(reply.len(), 876);
}

/// Round trips per second of `f` (called with a count, returns after that
/// many) over about `window`.
fn rate(window: Duration, mut f: impl FnMut(u64)) -> f64 {
    let (mut done, start) = (0u64, Instant::now());
    let mut batch = 64;
    while start.elapsed() < window {
        f(batch);
        done += batch;
        batch = (batch * 2).min(4096);
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; our own arguments are numbers.
    let nums: Vec<f64> =
        std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = nums.first().map_or(7, |&r| r as usize).max(1);
    let window = Duration::from_secs_f64(*nums.get(1).unwrap_or(&1.0));

    let spinning = measure(rounds, window, Client::SPIN);
    let sleeping = measure(rounds, window, Duration::ZERO);
    println!("median of {rounds} rounds of {window:?}:");
    for ((kern, one, two), how) in
        [(spinning, "spinning (default)"), (sleeping, "no spinning")]
    {
        println!(
            "{:<46} {kern:>9.0} /s {:>7.2} µs",
            "kernel: genl CTRL_CMD_GETFAMILY round trip",
            1e6 / kern
        );
        for (what, rate) in [("1 client", one), ("2 clients (total)", two)] {
            println!(
                "{:<46} {rate:>9.0} /s {:>7.2} µs   daemon/kernel {:.3}",
                format!("daemon, {what}, {how}"),
                1e6 / rate,
                rate / kern
            );
        }
    }
}

/// Medians of `(kernel, daemon with 1 client, with 2 clients)` round
/// trips per second, the daemon and its clients spinning up to `spin`.
fn measure(
    rounds: usize,
    window: Duration,
    spin: Duration,
) -> (f64, f64, f64) {
    let me = Identity::current().expect("/proc/self");
    let mut k = Kernel::new(Profile::get("4.1.9").expect("4.1.9"));
    k.add_instance(me.netns, Xlator::Siit, "default", Framework::Netfilter)
        .expect("an instance");
    let dir = PrivateDir::new("jool-sim-bench").expect("a private folder");
    let path: PathBuf = dir.path().join("sock");
    let limits = Limits { spin, ..Limits::default() };
    let running =
        daemon::spawn_with(&path, Shared::new(k), limits).expect("the daemon");
    let nl = kernel_socket();
    let mut buf = vec![0u8; 64 * 1024];
    let connect = || Client::connect(&path).expect("connect").with_spin(spin);
    let one = connect();
    let two: Vec<Client> = (0..2).map(|_| connect()).collect();
    let (mut kern, mut d1, mut d2) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        kern.push(rate(window, |n| {
            (0..n).for_each(|_| {
                kernel_roundtrip(&nl, &mut buf);
            })
        }));
        d1.push(rate(window, |n| (0..n).for_each(|_| daemon_roundtrip(&one))));
        d2.push(
            rate(window, |n| {
                std::thread::scope(|s| {
                    for c in &two {
                        s.spawn(move || {
                            (0..n).for_each(|_| daemon_roundtrip(c))
                        });
                    }
                })
            }) * 2.0,
        );
    }
    drop((one, two));
    running.stop().expect("the daemon stops");
    (median(kern), median(d1), median(d2))
}
