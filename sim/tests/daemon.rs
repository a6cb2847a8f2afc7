//! `jool-sim serve` over its socket: the protocol, and robustness against
//! malformed, oversized and abandoned requests and many clients at once.
//! The caller is this test process (root, initial namespaces); the
//! privilege and namespace matrix with real processes is in
//! harness/tests/daemon.rs.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicUsize, Ordering},
};

use jool_sim::{
    daemon::{self, Client, Shared},
    identity::Identity,
    kernel::{Framework, Kernel, Xlator, EINVAL, EMSGSIZE, ENODATA},
    versions::Profile,
};

fn socket_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir()
        .join(format!("jool-sim-test-{}-{n}.sock", std::process::id()))
}

fn start() -> (daemon::Running, PathBuf) {
    let me = Identity::current().unwrap();
    let mut k = Kernel::new(Profile::get("4.1.9").unwrap());
    k.add_instance(me.netns, Xlator::Siit, "default", Framework::Netfilter)
        .unwrap();
    let path = socket_path();
    (daemon::spawn(&path, Shared::new(k)).unwrap(), path)
}

/// `jool_siit stats display`'s request (4.1.9), family 0x20.
const STATS: &str = "30000000200001000400000000000000070100006a6f6f6c040109000100000064656661756c74000000000000000000";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn stats_roundtrip(c: &Client) -> usize {
    let (errno, n) = c.command(b'S', &unhex(STATS)).unwrap();
    assert_eq!((errno, n), (0, 1));
    c.recv(true).unwrap().len()
}

#[test]
fn test_stats_over_the_socket() {
    let (d, path) = start();
    let c = Client::connect(&path).unwrap();
    let (e, port) = c.command(b'B', &0u32.to_le_bytes()).unwrap();
    assert_eq!(
        (e, port),
        (0, std::process::id()),
        "first socket gets the pid"
    );
    assert_eq!(stats_roundtrip(&c), 48 + 69 * 12);
    let c2 = Client::connect(&path).unwrap();
    let (_, port2) = c2.command(b'B', &0u32.to_le_bytes()).unwrap();
    assert_eq!(port2, (-4096i32) as u32, "then Linux's rover");
    d.stop().unwrap();
    assert!(!path.exists(), "the socket file is removed");
}

#[test]
fn test_data_channel_is_filled_before_the_result() {
    let (_d, path) = start();
    let c = Client::connect(&path).unwrap();
    let (e, token) = c.command(b'P', &[]).unwrap();
    assert_eq!(e, 0);
    let data = Client::connect(&path).unwrap();
    assert_eq!(data.command(b'D', &token.to_le_bytes()).unwrap(), (0, 0));
    for _ in 0..50 {
        assert_eq!(c.command(b'S', &unhex(STATS)).unwrap(), (0, 1));
        // Already queued: a non-blocking read must find it.
        assert_eq!(data.recv(false).unwrap().len(), 876);
    }
}

#[test]
fn test_malformed_packets_get_errors_not_crashes() {
    let (_d, path) = start();
    let c = Client::connect(&path).unwrap();
    assert_eq!(c.command(b'S', &[]).unwrap().0, ENODATA);
    assert_eq!(c.command(b'?', b"garbage").unwrap().0, EINVAL);
    assert_eq!(c.command(b'B', &[1]).unwrap().0, EINVAL);
    // Past the socket buffer: EMSGSIZE, from the socket or the daemon.
    match c.command(b'S', &vec![0xff; 300 * 1024]) {
        Err(e) => assert_eq!(e.raw_os_error(), Some(EMSGSIZE)),
        Ok((e, _)) => assert_eq!(e, EMSGSIZE),
    }
    // Truncated netlink: the kernel answers nothing or NLMSG_ERROR.
    let req = unhex(STATS);
    for cut in [1, 12, 16, 20, 30, 47] {
        let (e, n) = c.command(b'S', &req[..cut]).unwrap();
        assert_eq!(e, 0);
        for _ in 0..n {
            c.recv(true).unwrap();
        }
    }
    assert_eq!(stats_roundtrip(&c), 876, "the connection still works");
}

#[test]
fn test_oversized_packet_closes_only_that_connection() {
    let (_d, path) = start();
    let big = Client::connect(&path).unwrap();
    let r = big.command(b'S', &vec![0; daemon::MAX_PACKET + 10]);
    assert!(r.is_err(), "the daemon hangs up: {r:?}");
    let c = Client::connect(&path).unwrap();
    assert_eq!(stats_roundtrip(&c), 876);
}

#[test]
fn test_disconnect_mid_request() {
    let (_d, path) = start();
    for _ in 0..20 {
        let c = Client::connect(&path).unwrap();
        let _ = c.command(b'S', &unhex(STATS));
        drop(c); // replies never read
    }
    let c = Client::connect(&path).unwrap();
    assert_eq!(stats_roundtrip(&c), 876);
}

#[test]
fn test_500_concurrent_clients() {
    let (_d, path) = start();
    let clients: Vec<Client> =
        (0..500).map(|_| Client::connect(&path).unwrap()).collect();
    let handles: Vec<_> = clients
        .into_iter()
        .map(|c| {
            std::thread::spawn(move || {
                (0..5).map(|_| stats_roundtrip(&c)).sum::<usize>()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 5 * 876);
    }
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap()
}

/// The daemon as its own process (`jool-sim serve`), so its resident
/// memory is measured alone, whatever the other tests of this binary do.
#[test]
fn test_memory_bounded_under_100k_malformed_requests() {
    let path = socket_path();
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_jool-sim"))
        .arg("serve")
        .arg("--socket")
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !path.exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "jool-sim serve did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let c = Client::connect(&path).unwrap();
    let req = unhex(STATS);
    // Warm up allocations, then measure.
    for _ in 0..1000 {
        assert_eq!(stats_roundtrip(&c), 876);
    }
    let before = rss_kib(serve.id());
    let mut garbage = req;
    for i in 0..100_000u32 {
        garbage[20 + (i as usize % 28)] ^= i as u8;
        garbage[0] = (i % 60) as u8;
        let (_, n) = c.command(b'S', &garbage).unwrap();
        for _ in 0..n {
            c.recv(true).unwrap();
        }
    }
    let after = rss_kib(serve.id());
    let _ = serve.kill();
    let _ = serve.wait();
    eprintln!("jool-sim serve RSS: {before} KiB before, {after} KiB after 100,000 malformed requests");
    assert!(
        after < before + 4 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
}
