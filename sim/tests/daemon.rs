//! `jool-sim serve` over its socket: the protocol, and robustness against
//! malformed, oversized and abandoned requests and many clients at once.
//! The caller is this test process (root, initial namespaces); the
//! privilege and namespace matrix with real processes is in
//! harness/tests/daemon.rs.

use jool_sim::{
    daemon::{self, Client, Shared},
    identity::Identity,
    kernel::{Framework, Kernel, Xlator, EINVAL, EMSGSIZE, ENODATA},
    versions::Profile,
};

pub(crate) use crate::util::socket_path;

fn start() -> (daemon::Running, crate::util::SocketPath) {
    let me = Identity::current().unwrap();
    let mut k = Kernel::new(Profile::get("4.1.9").unwrap());
    k.add_instance(me.netns, Xlator::Siit, "default", Framework::Netfilter)
        .unwrap();
    let path = socket_path();
    (daemon::spawn(&path, Shared::new(k)).unwrap(), path)
}

/// `jool_siit stats display`'s request (4.1.9), family 0x20.
pub(crate) const STATS: &str = "30000000200001000400000000000000070100006a6f6f6c040109000100000064656661756c74000000000000000000";

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    jool_sim::wire::hex::decode(s).unwrap()
}

pub(crate) fn stats_roundtrip(c: &Client) -> usize {
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

pub(crate) fn rss_kib(pid: u32) -> u64 {
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
    let serve = ServeProcess::start(&[]);
    let path = &serve.path;
    let c = Client::connect(path).unwrap();
    let req = unhex(STATS);
    // Warm up allocations, then measure.
    for _ in 0..1000 {
        assert_eq!(stats_roundtrip(&c), 876);
    }
    let before = rss_kib(serve.child.id());
    let mut garbage = req;
    for i in 0..100_000u32 {
        garbage[20 + (i as usize % 28)] ^= i as u8;
        garbage[0] = (i % 60) as u8;
        let (_, n) = c.command(b'S', &garbage).unwrap();
        for _ in 0..n {
            c.recv(true).unwrap();
        }
    }
    let after = rss_kib(serve.child.id());
    eprintln!("jool-sim serve RSS: {before} KiB before, {after} KiB after 100,000 malformed requests");
    assert!(
        after < before + 4 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
}

/// A raw connection, for packets `Client` would not send.
fn raw_connect(path: &std::path::Path) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{
        connect, socket, AddressFamily, SockFlag, SockType, UnixAddr,
    };
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    connect(fd.as_raw_fd(), &UnixAddr::new(path).unwrap()).unwrap();
    fd
}

/// Sends `packet` as is; the result `(errno, value)`, or `None` if the
/// daemon closed the connection instead (or said nothing for 5 s).
fn raw_request(
    fd: &std::os::fd::OwnedFd,
    packet: &[u8],
) -> Option<(i32, u32)> {
    use nix::sys::socket::{recv, send, MsgFlags};
    use std::os::fd::AsRawFd;
    let timeout = nix::sys::time::TimeVal::new(5, 0);
    nix::sys::socket::setsockopt(
        fd,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &timeout,
    )
    .unwrap();
    send(fd.as_raw_fd(), packet, MsgFlags::MSG_NOSIGNAL).ok()?;
    let mut r = [0u8; 16];
    let n = recv(fd.as_raw_fd(), &mut r, MsgFlags::empty()).ok()?;
    if n != 9 || r[0] != b'R' {
        return None;
    }
    Some((
        i32::from_le_bytes([r[1], r[2], r[3], r[4]]),
        u32::from_le_bytes([r[5], r[6], r[7], r[8]]),
    ))
}

/// docs/daemon-protocol.md: EINVAL for a malformed packet, and the
/// connection goes on.
#[test]
fn test_every_malformed_packet_gets_einval() {
    let (_d, path) = start();
    let fd = raw_connect(&path);
    let malformed: [&[u8]; 9] = [
        b"",                                    // empty
        b"B\0\0\0\0\0",                         // 'B' with a trailing byte
        b"B\0\0",                               // 'B' too short
        b"Px",                                  // 'P' with a trailing byte
        b"Pxxxx",                               // 'P' with four
        b"O\x0e\x01\0\0\x0b\0\0\0\x01\0\0\0\0", // 'O' with a trailing byte
        b"O\x0e\x01\0\0",                       // 'O' too short
        b"D\x01\0\0\0",                         // 'D' not as the first packet
        b"?",                                   // unknown command
    ];
    // A first command, so that the 'D' above is not the first packet.
    assert_eq!(raw_request(&fd, b"B\0\0\0\0").map(|r| r.0), Some(0));
    for p in malformed {
        assert_eq!(raw_request(&fd, p), Some((EINVAL, 0)), "{p:?}");
    }
    let req = [&b"S"[..], &unhex(STATS)].concat();
    assert_eq!(raw_request(&fd, &req), Some((0, 1)), "the connection works");
}

/// The daemon's `Threads:`, `VmHWM:` (KiB) and open descriptors.
pub(crate) fn threads_hwm_fds(pid: u32) -> (u64, u64, usize) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .trim_end_matches(" kB")
            .parse()
            .unwrap()
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    (field("Threads:"), field("VmHWM:"), fds)
}

/// `jool-sim serve ARGS` as its own process, killed on drop.
pub(crate) struct ServeProcess {
    pub(crate) child: std::process::Child,
    pub(crate) path: crate::util::SocketPath,
}

impl ServeProcess {
    pub(crate) fn start(args: &[&str]) -> Self {
        let path = socket_path();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_jool-sim"))
            .arg("serve")
            .arg("--socket")
            .arg(&path)
            .args(args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Served (not only listening): its loop runs, every descriptor
        // it keeps is open.
        let served = || {
            let c = Client::connect(&path).ok()?;
            c.command(b'B', &0u32.to_le_bytes()).ok()
        };
        let t = std::time::Instant::now();
        while served().is_none() {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "jool-sim serve did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { child, path }
    }
}

impl Drop for ServeProcess {
    /// SIGTERM, so that the daemon removes its socket file.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// 500 clients at once, each with a round trip in flight: the daemon's
/// peak memory (the issue saw 489 MB with a thread and a 1 MiB buffer per
/// connection).
#[test]
fn test_500_concurrent_clients_cost_little_memory() {
    let serve = ServeProcess::start(&[]);
    let clients: Vec<Client> =
        (0..500).map(|_| Client::connect(&serve.path).unwrap()).collect();
    let barrier = std::sync::Barrier::new(clients.len());
    std::thread::scope(|s| {
        for c in &clients {
            let b = &barrier;
            s.spawn(move || {
                b.wait();
                assert_eq!(stats_roundtrip(c), 876);
            });
        }
    });
    let (threads, hwm, _) = threads_hwm_fds(serve.child.id());
    eprintln!(
        "jool-sim serve, 500 clients: {threads} threads, peak RSS {hwm} KiB"
    );
    assert!(threads <= 2, "{threads} threads");
    assert!(hwm < 64 * 1024, "peak RSS {hwm} KiB");
}

/// Python holding `n` connections to `path` as uid 65534 without
/// capabilities; prints "open N refused M" once all are made.
const HOLDER: &str = r#"
import resource, socket, sys, time
path, n, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
conns = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    conns.append(s)
time.sleep(0.5)
refused = 0
for s in conns:
    s.setblocking(False)
    try:
        r = s.recv(16)
        refused += r[:1] == b"R"
    except BlockingIOError:
        pass
print("open", len(conns) - refused, "refused", refused, flush=True)
time.sleep(hold)
"#;

/// Debian's interpreter: a per-user one (pyenv under /root) is not
/// executable by uid 65534.
fn python3() -> &'static str {
    ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("python3")
}

/// Why an unprivileged holder cannot run here, if it cannot.
pub(crate) fn holder_missing() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|u| u.split_whitespace().nth(1) == Some("0"));
    if !root {
        return Some("not root".into());
    }
    for tool in ["setpriv", "python3"] {
        let ok = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Some(format!("`{tool}` not installed"));
        }
    }
    None
}

/// Starts the holder; returns it and its "open N refused M" line.
pub(crate) fn hold(
    path: &std::path::Path,
    n: usize,
    secs: f64,
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .args([python3(), "-c", HOLDER])
        .arg(path)
        .args([n.to_string(), secs.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_owned())
}

/// Idle connections of an unprivileged user: at most its limit, no
/// thread each, closed after the idle timeout; root is served meanwhile.
#[test]
fn test_unprivileged_idle_connections_are_bounded() {
    if let Some(why) = holder_missing() {
        eprintln!("SKIP {}: {why}", module_path!());
        return;
    }
    let serve = ServeProcess::start(&[
        "--max-connections-per-uid",
        "100",
        "--idle-timeout",
        "2",
    ]);
    let pid = serve.child.id();
    let (_, _, fds_before) = threads_hwm_fds(pid);
    let (mut holder, line) = hold(&serve.path, 300, 30.0);
    assert_eq!(line, "open 100 refused 200");
    let (threads, _, fds) = threads_hwm_fds(pid);
    assert!(threads <= 2, "{threads} threads");
    // (fds_before may count a connection closed meanwhile.)
    assert!(fds <= fds_before + 100, "{fds} descriptors, {fds_before} before");
    let root = Client::connect(&serve.path).unwrap();
    assert_eq!(stats_roundtrip(&root), 876, "root is served");
    // The idle ones are closed after 2 s (root's too: it sent nothing).
    let t = std::time::Instant::now();
    while threads_hwm_fds(pid).2 > fds_before {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(15),
            "still open"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = holder.kill();
    let _ = holder.wait();
}
