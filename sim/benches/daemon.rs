//! `jool-sim serve` round trips per second: a `stats display --all`
//! request (4.1.9, 69 counters) sent over the daemon socket and its reply
//! read back, with one client thread and with two. The target is
//! 100,000 round trips/s on one core.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jool_sim::{
    daemon::{self, Client, Shared},
    identity::Identity,
    kernel::{Framework, Kernel, Xlator},
    versions::Profile,
};

/// `jool_siit stats display --all`'s request (4.1.9), family 0x20.
const STATS: [u8; 48] = [
    0x30, 0, 0, 0, 0x20, 0, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr
    7, 1, 0, 0, // genl: STATS_FOREACH v1
    b'j', b'o', b'o', b'l', 4, 1, 9, 0, 1, 0, 0, 0, // magic, version, xt
    b'd', b'e', b'f', b'a', b'u', b'l', b't', 0, 0, 0, 0, 0, 0, 0, 0,
    0, // iname
];

fn roundtrip(c: &Client) {
    let (e, n) = c.command(b'S', &STATS).unwrap();
    assert_eq!((e, n), (0, 1));
    let reply = c.recv(true).unwrap();
    assert_eq!(reply.len(), 876);
}

fn bench_daemon(c: &mut Criterion) {
    let me = Identity::current().unwrap();
    let mut k = Kernel::new(Profile::get("4.1.9").unwrap());
    k.add_instance(me.netns, Xlator::Siit, "default", Framework::Netfilter)
        .unwrap();
    let path = PathBuf::from(format!(
        "/tmp/jool-sim-bench-{}.sock",
        std::process::id()
    ));
    let _running = daemon::spawn(&path, Shared::new(k)).unwrap();
    let mut g = c.benchmark_group("daemon_roundtrip");
    g.throughput(Throughput::Elements(1));
    let one = Client::connect(&path).unwrap();
    g.bench_function("one_client", |b| b.iter(|| roundtrip(&one)));
    g.throughput(Throughput::Elements(2));
    g.bench_function("two_clients", |b| {
        b.iter_custom(|iters| {
            let clients: Vec<Client> =
                (0..2).map(|_| Client::connect(&path).unwrap()).collect();
            let start = Instant::now();
            std::thread::scope(|s| {
                for c in &clients {
                    s.spawn(move || (0..iters).for_each(|_| roundtrip(c)));
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench_daemon
}
criterion_main!(benches);
