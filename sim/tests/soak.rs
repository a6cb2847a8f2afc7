//! Long checks of `jool-sim serve` (a separate process), `#[ignore]`d in
//! the default run; their numbers are in docs/daemon-protocol.md.
//!
//! ```text
//! cargo test --release -p jool-sim --test tests soak -- --ignored --nocapture --test-threads 1
//! ```

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use jool_sim::daemon::Client;

use crate::daemon::{
    hold, holder_missing, rss_kib, stats_roundtrip, threads_hwm_fds,
    ServeProcess,
};

/// Connections opened and closed in all.
const CONNECTIONS: usize = 10_000;
/// Round trips per connection (10^6 in all).
const PER_CONNECTION: usize = 100;
/// Client threads.
const WORKERS: usize = 4;

/// The `q`-quantile of sorted latencies, in microseconds.
fn quantile(sorted: &[u32], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// 10,000 connections, each opened, used for 100 stats round trips and
/// closed, by 4 threads at once: 10^6 requests. Reports the daemon's RSS,
/// threads and descriptors, and the round trips' latency.
#[test]
#[ignore = "soak: about a minute; see the module's documentation"]
fn test_soak_10k_connections_1m_requests() {
    let serve = ServeProcess::start(&[]);
    let pid = serve.child.id();
    let (_, _, fds_before) = threads_hwm_fds(pid);
    let rss_before = rss_kib(pid);
    let next = AtomicUsize::new(0);
    let (done, max_threads, max_rss) =
        (AtomicBool::new(false), AtomicU64::new(0), AtomicU64::new(0));
    let latencies =
        Mutex::new(Vec::with_capacity(CONNECTIONS * PER_CONNECTION));
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let (threads, _, _) = threads_hwm_fds(pid);
                max_threads.fetch_max(threads, Ordering::Relaxed);
                max_rss.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < CONNECTIONS {
                        let c = Client::connect(&serve.path).unwrap();
                        for _ in 0..PER_CONNECTION {
                            let t = Instant::now();
                            assert_eq!(stats_roundtrip(&c), 876);
                            mine.push(t.elapsed().as_nanos() as u32);
                        }
                    }
                    latencies.lock().unwrap().extend(mine);
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        done.store(true, Ordering::Relaxed);
    });
    let elapsed = start.elapsed();
    let mut l = latencies.into_inner().unwrap();
    l.sort_unstable();
    assert_eq!(l.len(), CONNECTIONS * PER_CONNECTION);
    // Closed connections are gone from the daemon.
    let t = Instant::now();
    while threads_hwm_fds(pid).2 > fds_before {
        assert!(t.elapsed() < Duration::from_secs(10), "descriptors left");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, hwm, fds) = threads_hwm_fds(pid);
    eprintln!(
        "soak: {} connections, {} requests in {:.1} s ({:.0}/s), {WORKERS} client threads\n\
         latency µs: p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}\n\
         daemon: RSS {rss_before} KiB before, max {} KiB during, {} KiB after; \
         peak (VmHWM) {hwm} KiB; max threads {}; descriptors {fds_before} before, {fds} after",
        CONNECTIONS,
        l.len(),
        elapsed.as_secs_f64(),
        l.len() as f64 / elapsed.as_secs_f64(),
        quantile(&l, 0.5),
        quantile(&l, 0.99),
        quantile(&l, 0.999),
        quantile(&l, 1.0),
        max_rss.load(Ordering::Relaxed),
        rss_kib(pid),
        max_threads.load(Ordering::Relaxed),
    );
    assert!(max_threads.load(Ordering::Relaxed) <= 2);
}

/// 3,000 idle connections of uid 65534 (its limit raised to allow them)
/// keep the daemon under 100 MB, and root is still served.
#[test]
#[ignore = "long: 3,000 connections; see the module's documentation"]
fn test_3000_idle_connections_of_an_unprivileged_user() {
    if let Some(why) = holder_missing() {
        eprintln!("SKIP {}: {why}", module_path!());
        return;
    }
    let serve = ServeProcess::start(&[
        "--max-connections-per-uid",
        "4000",
        "--max-connections",
        "8192",
    ]);
    let pid = serve.child.id();
    let rss_before = rss_kib(pid);
    let (mut holder, line) = hold(&serve.path, 3000, 60.0);
    assert_eq!(line, "open 3000 refused 0");
    let (threads, hwm, fds) = threads_hwm_fds(pid);
    let rss = rss_kib(pid);
    let root = Client::connect(&serve.path).unwrap();
    let mut l: Vec<u32> = (0..10_000)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(stats_roundtrip(&root), 876);
            t.elapsed().as_nanos() as u32
        })
        .collect();
    l.sort_unstable();
    eprintln!(
        "3,000 idle connections of uid 65534: daemon RSS {rss_before} -> {rss} KiB \
         (peak {hwm} KiB), {threads} thread(s), {fds} descriptors; \
         root's round trips meanwhile: p50 {:.1} µs, p99 {:.1} µs",
        quantile(&l, 0.5),
        quantile(&l, 0.99)
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(rss < 100 * 1024, "RSS {rss} KiB");
    assert!(threads <= 2);
}
