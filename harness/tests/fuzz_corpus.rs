//! The fuzz targets of `jool-harness`, in the normal test run: every file
//! of `fuzz/corpus/<target>/` and `fixtures/fuzz-regressions/<target>/`
//! goes through the same body the target calls (`jool_harness::fuzzing`),
//! each fixed crash has a named test, and proptest checks the client's
//! pagination against the simulated kernel.
//!
//! `PROPTEST_CASES=N` sets the number of proptest cases (default 64).
//! The seed corpora are generated from `fixtures/` by an ignored test:
//! `cargo test -p jool-harness --test tests fuzz_corpus::write_seeds --
//! --ignored`.

use std::{fs, io, path::PathBuf};

use jool_harness::{
    client::Client,
    fuzzing::{fuzz_client_reply, fuzz_counters_file, fuzz_format},
    transport::{InProcess, Transport},
};
use jool_sim::{
    kernel::{Caller, Framework, Kernel, Xlator, INIT_NETNS},
    versions::Profile,
};
use proptest::prelude::*;
use serde_json::Value;

// The exposition parser the `format` target uses (prometheus-parse).
#[allow(unreachable_pub)]
#[path = "../../fuzz/src/exposition.rs"]
mod exposition;

// Corpus replay shared with the other crate's fuzz_corpus tests.
#[path = "../../fuzz/corpus_replay.rs"]
mod corpus_replay;
use corpus_replay::{replay, root, time_corpus};

fn format(data: &[u8]) {
    fuzz_format(data, &exposition::parse);
}

#[test]
fn test_replay_client_reply() {
    replay("client_reply", &fuzz_client_reply);
}

#[test]
fn test_replay_counters_file() {
    replay("counters_file", &fuzz_counters_file);
}

#[test]
fn test_replay_format() {
    replay("format", &format);
}

/// Runs one file through one body, with the panic message:
/// `JOOL_FUZZ_TARGET=format JOOL_FUZZ_INPUT=/abs/crash-... cargo test -p
/// jool-harness --test tests fuzz_corpus::run_one -- --ignored --nocapture`.
#[test]
#[ignore = "reproduces the input JOOL_FUZZ_TARGET, JOOL_FUZZ_INPUT name"]
fn run_one() {
    let target = std::env::var("JOOL_FUZZ_TARGET").expect("JOOL_FUZZ_TARGET");
    let data =
        fs::read(std::env::var("JOOL_FUZZ_INPUT").expect("JOOL_FUZZ_INPUT"))
            .unwrap();
    match target.as_str() {
        "client_reply" => fuzz_client_reply(&data),
        "counters_file" => fuzz_counters_file(&data),
        "format" => format(&data),
        other => panic!("{other} is not a jool-harness target"),
    }
}

/// Times the body of `JOOL_FUZZ_TARGET` over its corpus, natively
/// (`JOOL_FUZZ_ROUNDS` passes, default 3): `JOOL_FUZZ_TARGET=format cargo
/// test --release -p jool-harness --test tests fuzz_corpus::time_replay
/// -- --ignored --nocapture`. A profiling aid (run it under `perf record`
/// or `valgrind --tool=callgrind`); it asserts nothing about time.
#[test]
#[ignore = "times JOOL_FUZZ_TARGET's body over its corpus; a profiling aid"]
fn time_replay() {
    let target = std::env::var("JOOL_FUZZ_TARGET").expect("JOOL_FUZZ_TARGET");
    let rounds = std::env::var("JOOL_FUZZ_ROUNDS")
        .map_or(3, |r| r.parse().expect("JOOL_FUZZ_ROUNDS: a number"));
    let body: fn(&[u8]) = match target.as_str() {
        "client_reply" => fuzz_client_reply,
        "counters_file" => fuzz_counters_file,
        "format" => format,
        other => panic!("{other} is not a jool-harness target"),
    };
    time_corpus(&target, &body, rounds);
}

// Named regressions: one per crash the fuzzers found, input in
// fixtures/fuzz-regressions/<target>/, described in its README.md.

/// Client bug: an NLMSG_ERROR carrying `i32::MIN` made the client's
/// `-e.error()` overflow (panic with debug assertions).
#[test]
fn r_client_reply_nlmsgerr_int_min() {
    fuzz_client_reply(include_bytes!(
        "../../fixtures/fuzz-regressions/client_reply/nlmsgerr-int-min.bin"
    ));
}

/// A 4.0.x client whose request got no reply was expected to succeed
/// (oracle bug).
#[test]
fn r_client_reply_legacy_no_reply() {
    fuzz_client_reply(include_bytes!(
        "../../fixtures/fuzz-regressions/client_reply/legacy-no-reply.bin"
    ));
}

// ---- Seed corpora ----

fn unhex(s: &str) -> Vec<u8> {
    jool_sim::wire::hex::decode(s).unwrap()
}

fn release_index(name: &str) -> u8 {
    Profile::all().iter().position(|p| p.release == name).unwrap() as u8
}

/// Length-prefixed datagrams, as the raw mode reads them.
fn chunks<'a>(datagrams: impl IntoIterator<Item = &'a Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for d in datagrams {
        out.extend_from_slice(&(d.len() as u16).to_le_bytes());
        out.extend_from_slice(d);
    }
    out
}

/// A transport that keeps what the kernel answered.
struct Recorder {
    inner: InProcess<Kernel>,
    replies: Vec<Vec<u8>>,
}

impl Transport for Recorder {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        self.inner.send(datagram)
    }

    fn recv(&mut self) -> io::Result<Vec<u8>> {
        let r = self.inner.recv()?;
        self.replies.push(r.clone());
        Ok(r)
    }

    fn port_id(&self) -> u32 {
        self.inner.port_id()
    }
}

/// The simulated kernel's replies to a `stats display` of `p`'s client,
/// the family lookup's first (the target answers that itself).
fn sim_replies(
    p: &'static Profile,
    x: Xlator,
    budget: usize,
    instance: bool,
) -> Vec<Vec<u8>> {
    let mut k = Kernel::new(p);
    k.set_msg_budget(budget);
    if instance {
        k.add_instance(INIT_NETNS, x, "default", Framework::Netfilter)
            .unwrap();
        let values: Vec<_> = (p.first_id()..=p.max_id)
            .map(|id| (id, u64::from(id) * 1000))
            .collect();
        k.set_counters(INIT_NETNS, x, "default", &values).unwrap();
    }
    let t = Recorder {
        inner: InProcess::new(k, Caller::root(INIT_NETNS)),
        replies: Vec::new(),
    };
    let mut c = Client::new(t, p, x);
    let _ = c.stats(None);
    c.transport().replies.split_off(1)
}

fn write_corpus(target: &str, seeds: &[(String, Vec<u8>)]) {
    let dir = root().join("fuzz/corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    for (name, data) in seeds {
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        fs::write(dir.join(format!("{name}.bin")), data).unwrap();
    }
}

/// Regenerates the named seeds of every `jool-harness` target from
/// `fixtures/` (inputs the fuzzers added stay).
#[test]
#[ignore = "writes fuzz/corpus; run by hand after fixtures change"]
fn write_seeds() {
    write_corpus("client_reply", &client_reply_seeds());
    write_corpus("counters_file", &counters_file_seeds());
    write_corpus("format", &format_seeds());
}

fn client_reply_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let v419 = release_index("4.1.9");
    // Every reply of the real 4.1.9 module, as the reply to a stats request.
    let text = fs::read_to_string(
        root().join("fixtures/conformance-4.1.9/root.json"),
    )
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    for r in doc["requests"].as_array().unwrap() {
        let replies: Vec<Vec<u8>> = r["replies_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| unhex(h.as_str().unwrap()))
            .collect();
        let name = r["name"].as_str().unwrap();
        let xlator = u8::from(name.contains("nat64"));
        out.push((
            format!("raw-conformance-{name}"),
            [vec![v419, xlator], chunks(&replies)].concat(),
        ));
    }
    for (i, p) in Profile::all().iter().enumerate() {
        for (x, bit) in [(Xlator::Siit, 0), (Xlator::Nat64, 1)] {
            for budget in [3776, 256] {
                let replies = sim_replies(p, x, budget, true);
                out.push((
                    format!("raw-sim-{}-{x}-budget{budget}", p.release),
                    [vec![i as u8, bit], chunks(&replies)].concat(),
                ));
            }
            let replies = sim_replies(p, x, 3776, false);
            out.push((
                format!("raw-sim-{}-{x}-noinstance", p.release),
                [vec![i as u8, bit], chunks(&replies)].concat(),
            ));
        }
        out.push((
            format!("pages-{}", p.release),
            [vec![i as u8, 2], pages(p)].concat(),
        ));
    }
    out
}

/// Mode "pages": the release's counters in pages of 20, the last without
/// the M flag.
fn pages(p: &Profile) -> Vec<u8> {
    let ids: Vec<u16> = p.stats.iter().map(|s| s.id).collect();
    let mut out = Vec::new();
    let per_page = if p.is_legacy() { ids.len() } else { 20 };
    let pages: Vec<&[u16]> = ids.chunks(per_page).collect();
    for (n, page) in pages.iter().enumerate() {
        out.push(u8::from(n + 1 < pages.len()));
        out.push(page.len() as u8);
        for &id in *page {
            out.push(id as u8);
            out.extend_from_slice(&(u64::from(id) * 3).to_le_bytes());
        }
    }
    out
}

fn counters_file_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let captures = root().join("fixtures/captures/4.1.9");
    for dir in ["siit", "nat64", "siit-traffic"] {
        let Ok(entries) = fs::read_dir(captures.join(dir)) else { continue };
        let mut files: Vec<PathBuf> =
            entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.iter().filter(|f| {
            f.to_string_lossy().contains("csv")
                && f.extension().is_some_and(|x| x == "out")
        }) {
            let name =
                format!("{dir}-{}", f.file_stem().unwrap().to_string_lossy());
            out.push((name, fs::read(f).unwrap()));
        }
    }
    let cases: &[(&str, &str)] = &[
        (
            "comments",
            "# taken at boot\n\nStat,Value\nJSTAT_RECEIVED6,12\n\n\
             # x\n????,3\n",
        ),
        ("crlf", "Stat,Value\r\nJSTAT_RECEIVED6,1\r\n"),
        (
            "explained",
            "Stat,Value,Explanation\nJSTAT_A,1,\"one\nJSTAT_B is cited\n\
             - \"Mapping Rule\" is\nend.\"\nJSTAT_C,2,\"\"\n",
        ),
        ("missing-comma", "JSTAT_A,1\nJSTAT_B: 2\n"),
        ("bad-name", "jstat_a,1\n"),
        ("bad-value", "JSTAT_A,-1\n"),
        ("overflow", "JSTAT_A,18446744073709551616\n"),
        ("duplicate", "JSTAT_A,1\nJSTAT_B,2\nJSTAT_A,3\n"),
        ("misplaced-header", "JSTAT_A,1\nStat,Value\n"),
        ("unquoted", "JSTAT_A,1,doc\n"),
        ("unterminated", "JSTAT_A,1\nJSTAT_B,2,\"doc\nmore\nJSTAT_C,3\n"),
        ("not-utf8", "JSTAT_A,1\nJSTAT_\u{fffd},2\n"),
        ("unknown-name", "JSTAT_SUCCESS,4\n\nJSTAT_MAPT_FMR4,1\n"),
    ];
    for (name, text) in cases {
        out.push(((*name).to_owned(), text.as_bytes().to_vec()));
    }
    out.push(("not-utf8-raw".into(), b"JSTAT_A,1\nJSTAT_\xff,2\n".to_vec()));
    out
}

fn format_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, p) in Profile::all().iter().enumerate() {
        // Every known counter (value = id, every tenth 0), then unknown ids.
        let mut counters = Vec::new();
        for n in 0..p.stats.len() {
            match n % 10 {
                0 => counters.extend_from_slice(&[0x40, n as u8]),
                9 => counters.extend_from_slice(
                    &[
                        [0, n as u8].as_slice(),
                        &(n as u64 * 1_000_003).to_le_bytes(),
                    ]
                    .concat(),
                ),
                _ => counters.extend_from_slice(&[0x20, n as u8, n as u8]),
            }
        }
        counters.extend_from_slice(&[
            0x80 | 0x20,
            0xff,
            0xff,
            5,
            0x80 | 0x40,
            0,
            0,
        ]);
        for flags in
            [0u8, 1, 2, 3, 4, 5, 6, 7, 12, 15, 16 | 5, 32, 32 | 5, 32 | 16 | 7]
        {
            let host: &[u8] = if flags & 1 == 0 {
                b"router.example"
            } else {
                b"h\"o\\s\nt,}="
            };
            let instance: &[u8] = b"default";
            let data = [
                vec![i as u8, flags, host.len() as u8],
                host.to_vec(),
                vec![instance.len() as u8],
                instance.to_vec(),
                counters.clone(),
            ]
            .concat();
            out.push((format!("{}-flags{flags}", p.release), data));
        }
    }
    out
}

// ---- Properties ----

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn profile() -> impl Strategy<Value = &'static Profile> {
    prop::sample::select(Profile::all().iter().collect::<Vec<_>>())
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Lines of counters files, and pieces of them.
const COUNTERS_TEXT: &str =
    "(JSTAT_[A-Z]{1,3}|Stat,Value|,|\"|\n|\r|[0-9]{1,3}|#| |\\?{4}|x)*";

/// The client of `p` against the simulator of `p` with a budget of
/// `extra` bytes more than one counter needs: every counter, in order.
fn check_client_pagination(
    p: &'static Profile,
    x: Xlator,
    extra: usize,
    values: &[u64],
) {
    let mut k = Kernel::new(p);
    k.set_msg_budget(16 + 4 + p.header_len() + 12 + extra);
    k.add_instance(INIT_NETNS, x, "default", Framework::Iptables).unwrap();
    let value = |id: u16| values[usize::from(id) % values.len()];
    let want: Vec<_> =
        (p.first_id()..=p.max_id).map(|id| (id, value(id))).collect();
    k.set_counters(INIT_NETNS, x, "default", &want).unwrap();
    let t = InProcess::new(k, Caller::root(INIT_NETNS));
    assert_eq!(Client::new(t, p, x).stats(None).unwrap(), want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// The client against the simulated kernel of its release, any budget
    /// that holds a counter, any values: every counter exactly once, in
    /// order.
    #[test]
    fn prop_client_pagination(
        p in profile(),
        nat64 in any::<bool>(),
        extra in 0usize..4000,
        v in prop::collection::vec(any::<u64>(), 1..100),
    ) {
        let x = if nat64 { Xlator::Nat64 } else { Xlator::Siit };
        check_client_pagination(p, x, extra, &v);
    }

    /// Random replies never make the client panic, loop or overrun.
    #[test]
    fn prop_client_replies(head in any::<[u8; 2]>(), data in bytes(400)) {
        fuzz_client_reply(&[&head[..], &data].concat());
    }

    /// Random counter sets through every formatter.
    #[test]
    fn prop_formats(data in bytes(300)) {
        format(&data);
    }

    /// Random text as a counters file.
    #[test]
    fn prop_counters_files(text in COUNTERS_TEXT) {
        fuzz_counters_file(text.as_bytes());
    }
}
