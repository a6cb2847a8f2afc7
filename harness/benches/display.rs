//! A whole `stats display --all` in-process: request building (neli), the
//! simulated kernel, pagination, reply parsing, labelling with the
//! client's table and formatting, for 4.1.9 (69 counters) and main (83).
//!
//! Reported as counters per second (criterion's element throughput); the
//! issue's target is 1,000,000 labelled and formatted counters/s per core.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jool_harness::{
    client::Client,
    format::{DisplayFlags, Renderer},
    transport::InProcess,
};
use jool_sim::{
    kernel::{Caller, Framework, Kernel, Xlator, INIT_NETNS},
    versions::Profile,
};

fn kernel(p: &'static Profile) -> Kernel {
    let mut k = Kernel::new(p);
    k.add_instance(INIT_NETNS, Xlator::Siit, "default", Framework::Netfilter)
        .unwrap();
    for id in p.first_id()..=p.max_id {
        k.set_counter(
            INIT_NETNS,
            Xlator::Siit,
            "default",
            id,
            u64::from(id) * 7919,
        )
        .unwrap();
    }
    k
}

fn bench_display(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats_display_all");
    for release in ["4.1.9", "main"] {
        let p = Profile::get(release).unwrap();
        let flags = DisplayFlags {
            all: true,
            explain: false,
            csv: false,
            no_headers: false,
        };
        let mut client = Client::new(
            InProcess::new(kernel(p), Caller::root(INIT_NETNS)),
            p,
            Xlator::Siit,
        );
        let renderer = Renderer::new(p, flags);
        let mut out = Vec::with_capacity(8192);
        g.throughput(Throughput::Elements(p.stats.len() as u64));
        g.bench_function(release, |b| {
            b.iter(|| {
                out.clear();
                let mut err = std::io::sink();
                client
                    .stats_foreach(None, |id, v| {
                        renderer.counter(id, v, &mut out, &mut err).unwrap();
                        Ok(())
                    })
                    .unwrap();
                black_box(out.len())
            })
        });
        let explain = Renderer::new(
            p,
            DisplayFlags { explain: true, csv: true, ..flags },
        );
        g.bench_function(format!("{release}_csv_explain"), |b| {
            b.iter(|| {
                out.clear();
                let mut err = std::io::sink();
                client
                    .stats_foreach(None, |id, v| {
                        explain.counter(id, v, &mut out, &mut err).unwrap();
                        Ok(())
                    })
                    .unwrap();
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_display);
criterion_main!(benches);
