//! The fuzz targets of `jool-sim`, in the normal test run: every file of
//! `fuzz/corpus/<target>/` and `fixtures/fuzz-regressions/<target>/` goes
//! through the same body the target calls (`jool_sim::fuzzing`), each
//! fixed crash has a named test, and proptest checks the codec round trips
//! and stats pagination.
//!
//! `PROPTEST_CASES=N` sets the number of proptest cases (default 64).
//! The seed corpora are generated from `fixtures/` by an ignored test:
//! `cargo test -p jool-sim --test tests fuzz_corpus::write_seeds --
//! --ignored`.

use std::{fs, path::Path};

use jool_sim::{
    fuzzing::{
        add_operand, fuzz_differential, fuzz_request, fuzz_session, fuzz_wire,
        get_family, groups, jool_request, legacy_request, legacy_stats_mode,
        op, stats_pages, strict, Frame, Op, Setup, Who, BUDGETS, POOL6,
    },
    kernel::{Kernel, Xlator, EMSGSIZE, INIT_NETNS},
    versions::Profile,
    wire::{
        genl,
        jool::{self as jhdr, Layout},
        nla::{NlasIterator, Writer, F_NESTED},
        nlmsg,
    },
};
use proptest::prelude::*;
use serde_json::Value;

// Corpus replay shared with the other crate's fuzz_corpus tests.
#[path = "../../fuzz/corpus_replay.rs"]
mod corpus_replay;
use corpus_replay::{replay, root, time_corpus};

#[test]
fn test_replay_sim_request() {
    replay("sim_request", &fuzz_request);
}

#[test]
fn test_replay_sim_session() {
    replay("sim_session", &fuzz_session);
}

#[test]
fn test_replay_wire_roundtrip() {
    replay("wire_roundtrip", &fuzz_wire);
}

#[test]
fn test_replay_differential() {
    replay("differential", &fuzz_differential);
}

/// Runs one file through one body, with the panic message and backtrace:
/// `JOOL_FUZZ_TARGET=sim_request JOOL_FUZZ_INPUT=crash-... cargo test -p
/// jool-sim --test tests fuzz_corpus::run_one -- --ignored --nocapture`.
#[test]
#[ignore = "reproduces the input JOOL_FUZZ_TARGET, JOOL_FUZZ_INPUT name"]
fn run_one() {
    let target = std::env::var("JOOL_FUZZ_TARGET").expect("JOOL_FUZZ_TARGET");
    let data =
        fs::read(std::env::var("JOOL_FUZZ_INPUT").expect("JOOL_FUZZ_INPUT"))
            .unwrap();
    let body: fn(&[u8]) = match target.as_str() {
        "sim_request" => fuzz_request,
        "sim_session" => fuzz_session,
        "wire_roundtrip" => fuzz_wire,
        "differential" => fuzz_differential,
        other => panic!("{other} is not a jool-sim target"),
    };
    body(&data);
}

/// Times the body of `JOOL_FUZZ_TARGET` over its corpus, natively
/// (`JOOL_FUZZ_ROUNDS` passes, default 3): `JOOL_FUZZ_TARGET=sim_session
/// cargo test --release -p jool-sim --test tests fuzz_corpus::time_replay
/// -- --ignored --nocapture`. A profiling aid (run it under `perf record`
/// or `valgrind --tool=callgrind`); it asserts nothing about time.
#[test]
#[ignore = "times JOOL_FUZZ_TARGET's body over its corpus; a profiling aid"]
fn time_replay() {
    let target = std::env::var("JOOL_FUZZ_TARGET").expect("JOOL_FUZZ_TARGET");
    let rounds = std::env::var("JOOL_FUZZ_ROUNDS")
        .map_or(3, |r| r.parse().expect("JOOL_FUZZ_ROUNDS: a number"));
    let body: fn(&[u8]) = match target.as_str() {
        "sim_request" => fuzz_request,
        "sim_session" => fuzz_session,
        "wire_roundtrip" => fuzz_wire,
        "differential" => fuzz_differential,
        other => panic!("{other} is not a jool-sim target"),
    };
    time_corpus(&target, &body, rounds);
}

// Named regressions: one per crash the fuzzers found, input in
// fixtures/fuzz-regressions/<target>/, described in its README.md.

macro_rules! regression {
    ($target:literal, $name:literal) => {
        include_bytes!(concat!(
            "../../fixtures/fuzz-regressions/",
            $target,
            "/",
            $name,
            ".bin"
        ))
    };
}

/// A stats page whose request had the ERROR flag looked like an error
/// report to the differential normalization (oracle bug).
#[test]
fn r_differential_stats_error_flag_echo() {
    strict(|| {
        fuzz_differential(regression!("differential", "stats-error-flag-echo"))
    });
}

/// An empty stats page with an echoed M flag was not normalized like the
/// other release's page (oracle bug).
#[test]
fn r_differential_empty_page_echoed_m() {
    strict(|| {
        fuzz_differential(regression!("differential", "empty-page-echoed-m"))
    });
}

/// 4.0.8 and 4.1.1 were grouped although their GLOBAL_FOREACH replies
/// number the globals differently (no `lowest-ipv6-mtu` before 4.1.0):
/// the grouping did not follow the simulator's globals fix (oracle bug).
#[test]
fn r_differential_globals_numbering() {
    strict(|| {
        fuzz_differential(regression!(
            "differential",
            "globals-numbering-4.0.8-4.1.1"
        ))
    });
}

/// Simulator bug: INSTANCE_FOREACH is not paginated, its reply exceeds the
/// message budget (sim/src/kernel/jool/instance.rs `instance_foreach`).
#[test]
fn r_sim_session_instance_display_over_budget() {
    strict(|| {
        fuzz_session(regression!(
            "sim_session",
            "instance-display-over-budget"
        ))
    });
}

/// Simulator bug: GLOBAL_FOREACH is not paginated, its reply exceeds a
/// small budget (sim/src/kernel/jool/mod.rs `global_foreach`).
#[test]
fn r_sim_request_global_display_over_budget() {
    strict(|| {
        fuzz_request(regression!("sim_request", "global-display-over-budget"))
    });
}

/// Oracle bug: a datagram past the socket buffer (`MAX_DATAGRAM`) gets
/// EMSGSIZE from `sendmsg()`, which the oracle only allowed as ENODATA for
/// an empty datagram. The input (213,074 bytes: the setup bytes, then the
/// 48-byte stats request of seed `4.1.9-siit-stats` 4,439 times) is built
/// here rather than stored.
#[test]
fn r_sim_request_datagram_past_socket_buffer() {
    let seed = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus/sim_request/4.1.9-siit-stats.bin"),
    )
    .unwrap();
    assert_eq!(seed.len(), 2 + 48, "the seed changed");
    let mut data = seed[..2].to_vec();
    for _ in 0..4_439 {
        data.extend_from_slice(&seed[2..]);
    }
    assert!(data.len() - 2 > jool_sim::kernel::MAX_DATAGRAM);
    strict(|| fuzz_request(&data));
}

// ---- Seed corpora ----

fn unhex(s: &str) -> Vec<u8> {
    jool_sim::wire::hex::decode(s).unwrap()
}

/// Every request of a conformance run, by name, with its socket options.
fn conformance(file: &str) -> Vec<(String, bool, Vec<u8>)> {
    let text = fs::read_to_string(
        root().join("fixtures/conformance-4.1.9").join(file),
    )
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let requests = doc["requests"].as_array().unwrap();
    let ext = |r: &Value| r["netlink_ext_ack"].as_bool().unwrap_or(false);
    requests
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                ext(r),
                unhex(r["request_hex"].as_str().unwrap()),
            )
        })
        .collect()
}

/// Every reply of the root conformance run, by request name.
fn conformance_replies() -> Vec<(String, Vec<u8>)> {
    let text = fs::read_to_string(
        root().join("fixtures/conformance-4.1.9/root.json"),
    )
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for r in doc["requests"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        for (i, h) in r["replies_hex"].as_array().unwrap().iter().enumerate() {
            out.push((format!("{name}-{i}"), unhex(h.as_str().unwrap())));
        }
    }
    out
}

/// The netlink messages of the real client's captures (pcap, nlmon), by
/// capture and position: requests and replies.
fn captured() -> Vec<(String, Vec<u8>)> {
    let dir = root().join("fixtures/captures/4.1.9/netlink");
    let mut out = Vec::new();
    let mut files: Vec<_> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for path in
        files.iter().filter(|p| p.extension().is_some_and(|x| x == "pcap"))
    {
        let b = fs::read(path).unwrap();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut off = 24; // pcap file header
        while off + 16 <= b.len() {
            let incl =
                u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap())
                    as usize;
            // Each packet: 16-byte nlmon header, then the netlink message.
            let packet = &b[off + 16..off + 16 + incl];
            out.push((format!("{stem}-{}", out.len()), packet[16..].to_vec()));
            off += 16 + incl;
        }
    }
    out
}

fn iname(name: &str) -> [u8; 16] {
    jhdr::encode_iname(name).unwrap()
}

/// Requests a client of each release sends, by release and operation.
fn release_requests(p: &'static Profile) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let k = Kernel::new(p);
    for f in k.families() {
        out.push((
            format!("{}-getfamily-{}", p.release, f.name),
            get_family(f.name, 1),
        ));
    }
    let fam = |x: Xlator| {
        k.families()
            .iter()
            .find(|f| f.xlator.is_none_or(|fx| fx == x))
            .unwrap()
            .id
    };
    for x in [Xlator::Siit, Xlator::Nat64] {
        let r = |s: &str| format!("{}-{x}-{s}", p.release);
        if p.is_legacy() {
            let mode = (legacy_stats_mode(p), 0);
            out.push((
                r("stats"),
                legacy_request(p, fam(x), 2, x, mode, None, &[]),
            ));
            out.push((
                r("stats-iname"),
                legacy_request(p, fam(x), 2, x, mode, Some(b"alt\0"), &[]),
            ));
            let mut add = vec![0; 41];
            add[0] = Frame::Iptables.byte(p);
            add[1..17].copy_from_slice(&iname("new"));
            (add[20], add[40]) = (1, 96);
            out.push((
                r("add"),
                legacy_request(p, fam(x), 3, x, (0, 1), None, &add),
            ));
            out.push((
                r("remove"),
                legacy_request(
                    p,
                    fam(x),
                    4,
                    x,
                    (0, 3),
                    None,
                    &iname("default"),
                ),
            ));
            out.push((
                r("hello"),
                legacy_request(
                    p,
                    fam(x),
                    4,
                    x,
                    (0, 6),
                    None,
                    &iname("default"),
                ),
            ));
            continue;
        }
        let req = |cmd, name: &str, attrs: &[u8]| {
            jool_request(p, fam(x), 2, cmd, x.xt(), iname(name), attrs)
        };
        out.push((r("stats"), req(op::STATS_FOREACH, "default", &[])));
        let mut w = Writer::new();
        w.u8(p.offset_u8_attr(), 30);
        out.push((
            r("stats-offset-30"),
            req(op::STATS_FOREACH, "default", w.as_slice()),
        ));
        out.push((r("stats-alt"), req(op::STATS_FOREACH, "alt", &[])));
        let mut operand = Writer::new();
        operand.u8(1, 8);
        let at = operand.begin_nest(2 | F_NESTED);
        operand.attr(1, &POOL6.0).u8(2, POOL6.1);
        operand.end_nest(at);
        let mut w = Writer::new();
        w.attr((p.offset_u8_attr() + 1) | F_NESTED, operand.as_slice());
        out.push((r("add"), req(op::INSTANCE_ADD, "new", w.as_slice())));
        out.push((r("remove"), req(op::INSTANCE_RM, "default", &[])));
        out.push((r("hello"), req(op::INSTANCE_HELLO, "default", &[])));
        out.push((r("foreach"), req(op::INSTANCE_FOREACH, "", &[])));
        out.push((r("flush"), req(op::INSTANCE_FLUSH, "", &[])));
        out.push((r("globals"), req(8, "default", &[])));
    }
    out
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

fn prefixed(prefix: &[u8], data: &[u8]) -> Vec<u8> {
    [prefix, data].concat()
}

/// Regenerates the named seeds of every `jool-sim` target from
/// `fixtures/` (inputs the fuzzers added stay).
#[test]
#[ignore = "writes fuzz/corpus; run by hand after fixtures change"]
fn write_seeds() {
    let mut requests = Vec::new();
    for (file, modules) in [
        ("root.json", 0),
        ("premodprobe.json", 3 << 2),
        ("siitonly.json", 1 << 2),
    ] {
        for (name, ext, data) in conformance(file) {
            let run = file.trim_end_matches(".json");
            for admin in [true, false] {
                let [rel, flags] = Setup::encode("4.1.9", admin, ext);
                let who = if admin { "root" } else { "unpriv" };
                requests.push((
                    format!("conformance-{run}-{who}-{name}"),
                    prefixed(&[rel, flags | modules], &data),
                ));
            }
        }
    }
    for (name, data) in captured() {
        requests.push((
            format!("capture-{name}"),
            prefixed(&Setup::encode("4.1.9", true, false), &data),
        ));
    }
    for p in Profile::all() {
        for (name, data) in release_requests(p) {
            let setup = Setup::encode(&p.release, true, true);
            requests.push((name.clone(), prefixed(&setup, &data)));
            if name.contains("-stats") {
                requests.push((
                    format!("{name}-unpriv"),
                    prefixed(&[setup[0], 2], &data),
                ));
                requests.push((
                    format!("{name}-budget256"),
                    prefixed(&[setup[0], 1 | 3 << 6], &data),
                ));
            }
        }
    }
    write_corpus("sim_request", &requests);
    write_corpus("sim_request", &check_seeds());
    write_corpus("differential", &differential_seeds());
    write_corpus("sim_session", &session_seeds());
    write_corpus("wire_roundtrip", &wire_seeds(&requests));
}

/// The setup byte of a caller: bit 0 `CAP_NET_ADMIN`, bit 1
/// `NETLINK_EXT_ACK`, `netns` an index into `NETNS`, `budget` into
/// `BUDGETS` (both modules loaded).
fn flags(admin: bool, ext_ack: bool, netns: u8, budget: u8) -> u8 {
    u8::from(admin) | u8::from(ext_ack) << 1 | netns << 4 | budget << 6
}

/// Seeds written by hand for the kernel checks the fixtures' requests do
/// not reach (`seed-*`; see the Coverage section of docs/fuzzing.md).
fn check_seeds() -> Vec<(String, Vec<u8>)> {
    let p = Profile::get("4.1.9").unwrap();
    let rel = Setup::encode("4.1.9", true, false)[0];
    let k = Kernel::new(p);
    let fam = k.family_id().unwrap();
    let root = flags(true, true, 0, 0);
    let mut out = Vec::new();
    let mut push = |name: &str, setup: [u8; 2], data: Vec<u8>| {
        out.push((format!("seed-{name}"), prefixed(&setup, &data)));
    };
    let req = |cmd, name: &str, attrs: &[u8]| {
        jool_request(p, fam, 7, cmd, Xlator::Siit.xt(), iname(name), attrs)
    };

    // An operation the simulator does not emulate, unprivileged: the
    // privilege check comes first.
    push(
        "unemulated-op-unpriv",
        [rel, flags(false, true, 0, 0)],
        req(5, "default", &[]),
    );

    // INSTANCE_FOREACH's offset (JNLAR_OFFSET {NS, XF, INAME}).
    let entry = |ns: Option<u32>, xf: Option<u8>, name: Option<&[u8]>| {
        let mut w = Writer::new();
        let at = w.begin_nest(8 | F_NESTED);
        if let Some(ns) = ns {
            w.u32(1, ns);
        }
        if let Some(xf) = xf {
            w.u8(2, xf);
        }
        if let Some(name) = name {
            w.string(3, name);
        }
        w.end_nest(at);
        w.into_vec()
    };
    let tag = k.netns_tag(INIT_NETNS);
    let foreach = |attrs: &[u8]| req(op::INSTANCE_FOREACH, "", attrs);
    for (name, attrs) in [
        ("found", entry(Some(tag), Some(4), Some(b"default"))),
        ("unknown", entry(Some(tag), Some(4), Some(b"nosuch"))),
        ("no-ns", entry(None, Some(4), Some(b"default"))),
        ("no-framework", entry(Some(tag), None, Some(b"default"))),
        ("no-name", entry(Some(tag), Some(4), None)),
    ] {
        push(
            &format!("instance-foreach-offset-{name}"),
            [rel, root],
            foreach(&attrs),
        );
    }
    // Offsets whose entry is malformed: an attribute type the entry's
    // policy does not have; the name's NLA_NUL_STRING check (a NUL, then
    // more than 15 bytes); a namespace of two bytes (NLA_U32's exact
    // length).
    let offset = |fill: &dyn Fn(&mut Writer)| {
        let mut w = Writer::new();
        let at = w.begin_nest(8 | F_NESTED);
        fill(&mut w);
        w.end_nest(at);
        w.into_vec()
    };
    for (name, attrs) in [
        (
            "malformed",
            offset(&|w| {
                w.u8(9, 1);
            }),
        ),
        (
            "name-too-long",
            offset(&|w| {
                w.u32(1, tag).u8(2, 4).attr(3, b"abc\0xxxxxxxxxxxxxxx");
            }),
        ),
        (
            "ns-short",
            offset(&|w| {
                w.attr(1, &[1, 2]).u8(2, 4).string(3, b"default");
            }),
        ),
    ] {
        push(
            &format!("instance-foreach-offset-{name}"),
            [rel, root],
            foreach(&attrs),
        );
    }
    // MAP-T numbering: the offset is attribute 9. An offset that names no
    // instance is ESRCH with an empty text, which rc2 and rc3 send without
    // JNLAERR_MSG.
    let rc3 = Profile::get("4.2.0-rc3").unwrap();
    let rc3_fam = Kernel::new(rc3).family_id().unwrap();
    for (name, iname) in [("found", &b"default"[..]), ("unknown", b"nosuch")] {
        let mut w = Writer::new();
        let at = w.begin_nest(9 | F_NESTED);
        w.u32(1, tag).u8(2, 4).string(3, iname);
        w.end_nest(at);
        push(
            &format!("4.2.0-rc3-instance-foreach-offset-{name}"),
            [Setup::encode("4.2.0-rc3", true, true)[0], root],
            jool_request(
                rc3,
                rc3_fam,
                7,
                op::INSTANCE_FOREACH,
                1,
                [0; 16],
                w.as_slice(),
            ),
        );
    }
    // Eight more SIIT instances, then INSTANCE_FOREACH with a 256-byte
    // budget: a page with the M flag, then the next one from its offset.
    let mut datagram = Vec::new();
    for i in 0..8 {
        let name = format!("i{i}");
        datagram.extend(req(
            op::INSTANCE_ADD,
            &name,
            &add_operand(p, 8, None),
        ));
    }
    datagram.extend(foreach(&[]));
    datagram.extend(foreach(&entry(Some(tag), Some(8), Some(b"i5"))));
    push("instance-foreach-more", [rel, flags(true, false, 0, 3)], datagram);

    // INSTANCE_ADD's pool6 checks.
    let add = |pool6: &[u8]| {
        let mut operand = Writer::new();
        operand.u8(1, 4);
        operand.attr(2 | F_NESTED, pool6);
        let mut w = Writer::new();
        w.attr(10 | F_NESTED, operand.as_slice());
        req(op::INSTANCE_ADD, "new", w.as_slice())
    };
    let prefix = |addr: &[u8], len: u8| {
        let mut w = Writer::new();
        w.attr(1, addr).u8(2, len);
        w.into_vec()
    };
    let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    let mut len_only = Writer::new();
    len_only.u8(2, 0);
    for (name, pool6) in [
        ("len-too-high", prefix(&POOL6.0, 200)),
        ("no-address", len_only.into_vec()),
        ("address-4-bytes", prefix(&[0, 0x64, 0xff, 0x9b], 96)),
        ("address-17-bytes", prefix(&[1; 17], 96)),
        ("suffix-mapped", prefix(&v6("::ffff:192.0.2.1"), 96)),
        ("suffix-isatap", prefix(&v6("fe80::5efe:c000:201"), 64)),
        ("suffix-no-zero-run", prefix(&v6("2001:db8:1:2:3:4:5:6"), 32)),
        ("len-not-rfc6052", prefix(&v6("2001:db8::"), 33)),
    ] {
        push(&format!("instance-add-pool6-{name}"), [rel, root], add(&pool6));
    }

    // GLOBAL_FOREACH: offsets, a page that needs the M flag, an instance
    // without pool6 (`alt`, in the second namespace).
    for (name, offset) in [("3", 3), ("unknown", 200)] {
        let mut w = Writer::new();
        w.u8(p.offset_u8_attr(), offset);
        push(
            &format!("global-foreach-offset-{name}"),
            [rel, root],
            req(8, "default", w.as_slice()),
        );
    }
    push(
        "global-foreach-budget256",
        [rel, flags(true, false, 0, 3)],
        req(8, "default", &[]),
    );
    push(
        "global-foreach-no-pool6",
        [rel, flags(true, false, 1, 0)],
        req(8, "alt", &[]),
    );

    // 4.2.0-rc3: FILE_HANDLE (cmd 30 under the MAP-T numbering) without
    // ATOMIC_INIT answers ESRCH "Instance not found."; a translator type
    // that is none of SIIT, NAT64 and MAP-T gets rc's MAP-T text.
    let rc = Profile::get("4.2.0-rc3").unwrap();
    let rc_setup = Setup::encode("4.2.0-rc3", true, true)[0];
    let rc_fam = Kernel::new(rc).family_id().unwrap();
    let file_handle =
        rc.numbering.cmd(jool_sim::wire::family::Op::FileHandle).unwrap();
    push(
        "rc3-file-handle-without-atomic-init",
        [rc_setup, root],
        jool_request(
            rc,
            rc_fam,
            7,
            file_handle,
            Xlator::Siit.xt(),
            iname("default"),
            &[],
        ),
    );
    push(
        "rc3-bad-xlator-type",
        [rc_setup, root],
        jool_request(
            rc,
            rc_fam,
            7,
            op::STATS_FOREACH,
            0,
            iname("default"),
            &[],
        ),
    );

    // nlctrl: GETFAMILY's NLA_NUL_STRING length; GETPOLICY (dump only).
    let ctrl = |cmd, flags_: u16, attrs: &[u8]| {
        let mut m =
            jool_sim::fuzzing::message(nlmsg::GENL_ID_CTRL, 3, cmd, attrs);
        m[6..8].copy_from_slice(&(nlmsg::F_REQUEST | flags_).to_le_bytes());
        m
    };
    let mut w = Writer::new();
    w.attr(2, b"Jool\0xxxxxxxxxxxxxx");
    push(
        "ctrl-getfamily-name-too-long",
        [rel, root],
        ctrl(3, 0, w.as_slice()),
    );
    let dump = nlmsg::F_DUMP;
    let name = |n: &[u8]| {
        let mut w = Writer::new();
        w.string(2, n);
        w.into_vec()
    };
    let mut id = Writer::new();
    id.u16(1, fam);
    let mut op_short = Writer::new();
    op_short.string(2, b"Jool").attr(10, &[1, 0]);
    let mut op = Writer::new();
    op.string(2, b"Jool").u32(10, 7);
    let mut unspec = Writer::new();
    unspec.u32(3, 1);
    for (name, flags_, attrs) in [
        ("doit", 0, name(b"Jool")),
        ("no-family", dump, vec![]),
        ("id", dump, id.into_vec()),
        ("name", dump, name(b"Jool")),
        ("name-unknown", dump, name(b"nl80211")),
        ("op", dump, op.into_vec()),
        ("op-short", dump, op_short.into_vec()),
        ("unspec-attr", dump, unspec.into_vec()),
    ] {
        push(
            &format!("ctrl-getpolicy-{name}"),
            [rel, root],
            ctrl(10, flags_, &attrs),
        );
    }

    // 4.0.x: an invalid ATTR_INAME after 4.0.4 (no second line), and an
    // INSTANCE add whose body ends after pool6's "set" byte.
    for release in ["4.0.5", "4.0.7"] {
        let lp = Profile::get(release).unwrap();
        let lk = Kernel::new(lp);
        let lfam = lk.families()[0].id;
        let setup = Setup::encode(release, true, false);
        push(
            &format!("{release}-stats-iname-invalid"),
            setup,
            legacy_request(
                lp,
                lfam,
                2,
                Xlator::Siit,
                (legacy_stats_mode(lp), 0),
                Some(&[b'x'; 16]),
                &[],
            ),
        );
        let mut body = vec![0; 21];
        body[0] = Frame::Iptables.byte(lp);
        body[1..4].copy_from_slice(b"new");
        body[20] = 1;
        push(
            &format!("{release}-add-pool6-short-body"),
            setup,
            legacy_request(lp, lfam, 2, Xlator::Siit, (0, 1), None, &body),
        );
    }
    out
}

fn differential_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (g, members) in groups().iter().enumerate() {
        let first = &Profile::all()[members[0]];
        for (name, data) in release_requests(first) {
            for patch in [0, 1] {
                out.push((
                    format!("group{g}-{name}-patch{patch}"),
                    prefixed(&[g as u8, 0, 0, 1, patch], &data),
                ));
            }
        }
        if first.release.starts_with("4.1.")
            && first.compat == jool_sim::versions::Compat::MajorMinor
        {
            for (name, ext, data) in conformance("root.json") {
                out.push((
                    format!("group{g}-conformance-{name}"),
                    prefixed(
                        &[g as u8, 0, 0, 1 | u8::from(ext) << 1, 0],
                        &data,
                    ),
                ));
            }
        }
    }
    out
}

fn session_seeds() -> Vec<(String, Vec<u8>)> {
    let root = |x| Who { netns: INIT_NETNS, admin: true, xlator: x };
    let user = |x| Who { netns: INIT_NETNS, admin: false, xlator: x };
    let other = |x| Who { netns: 2, admin: true, xlator: x };
    let pool = Some(POOL6);
    let stats = jool_request(
        Profile::get("4.1.9").unwrap(),
        0x20,
        9,
        op::STATS_FOREACH,
        1,
        iname("default"),
        &[],
    );
    let ops = [
        Op::Add(root(Xlator::Siit), 0, Frame::Netfilter, None),
        Op::Add(root(Xlator::Nat64), 0, Frame::Netfilter, pool),
        Op::Add(root(Xlator::Siit), 2, Frame::Netfilter, None),
        Op::Add(root(Xlator::Siit), 2, Frame::Iptables, None),
        Op::Add(other(Xlator::Siit), 1, Frame::Iptables, pool),
        Op::Add(root(Xlator::Nat64), 3, Frame::Iptables, None),
        Op::Counter(root(Xlator::Siit), 0, 3, 1234),
        Op::Counter(root(Xlator::Siit), 0, 900, 1),
        Op::Stats(root(Xlator::Siit), 0),
        Op::Stats(user(Xlator::Siit), 1),
        Op::Budget(3),
        Op::Stats(root(Xlator::Nat64), 0),
        Op::Hello(root(Xlator::Siit), 2),
        Op::Hello(root(Xlator::Siit), 5),
        Op::Foreach(root(Xlator::Siit)),
        Op::Remove(user(Xlator::Siit), 2),
        Op::Remove(root(Xlator::Siit), 2),
        Op::Raw(root(Xlator::Siit), &stats),
        Op::Modules(true, false),
        Op::Stats(root(Xlator::Nat64), 0),
        Op::Flush(root(Xlator::Siit)),
        Op::Stats(root(Xlator::Siit), 0),
    ];
    let script: Vec<u8> = ops.iter().flat_map(Op::encode).collect();
    let mut out = Vec::new();
    for (i, p) in Profile::all().iter().enumerate() {
        for (b, _) in
            BUDGETS.iter().enumerate().filter(|(b, _)| *b == 0 || *b == 3)
        {
            out.push((
                format!("{}-budget{b}-script", p.release),
                prefixed(&[i as u8, b as u8], &script),
            ));
        }
        for (n, one) in ops.iter().enumerate() {
            let add = Op::Add(root(Xlator::Siit), 0, Frame::Netfilter, None)
                .encode();
            out.push((
                format!("{}-op{n}", p.release),
                [vec![i as u8, 0], add, one.encode()].concat(),
            ));
        }
    }
    out
}

fn wire_seeds(requests: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut messages: Vec<(String, Vec<u8>)> = conformance_replies();
    messages.extend(captured());
    // One release of each protocol variant.
    let variants = [
        "4.0.0-",
        "4.0.2-",
        "4.0.6-",
        "4.0.8-",
        "4.1.5-",
        "4.2.0-rc1-",
        "4.2.0-rc3-",
    ];
    let variant = |n: &str| {
        variants.iter().any(|v| n.starts_with(v))
            && !n.contains("-unpriv")
            && !n.contains("budget")
    };
    messages.extend(
        requests
            .iter()
            .filter(|(n, _)| variant(n))
            .map(|(n, d)| (n.clone(), d[2..].to_vec())),
    );
    for (name, m) in &messages {
        out.push((format!("mode5-{name}"), prefixed(&[5], m)));
        let Ok(p) = nlmsg::Packet::new_checked(&m[..]) else { continue };
        let payload = p.payload();
        match p.kind() {
            nlmsg::NLMSG_ERROR => {
                out.push((format!("mode6-{name}"), prefixed(&[6], payload)))
            }
            0x10 => out.push((
                format!("mode4-{name}"),
                prefixed(
                    &[4],
                    payload.get(genl::HEADER_LEN..).unwrap_or_default(),
                ),
            )),
            _ => {
                let jool = payload.get(genl::HEADER_LEN..).unwrap_or_default();
                for (mode, layout) in [(2u8, Layout::V1), (3, Layout::V2)] {
                    out.push((
                        format!("mode{mode}-{name}"),
                        prefixed(&[mode], jool),
                    ));
                    if let Some(attrs) = jool.get(layout.header_len()..) {
                        out.push((
                            format!("mode4-{name}-v{}", mode - 1),
                            prefixed(&[4], attrs),
                        ));
                    }
                    out.push((
                        format!("mode8-{name}-v{}", mode - 1),
                        prefixed(&[8, mode - 2], m),
                    ));
                }
                // 4.0.x: the request_hdr inside ATTR_DATA.
                for a in
                    NlasIterator::new(jool).flatten().filter(|a| a.kind() == 2)
                {
                    out.push((
                        format!("mode7-{name}"),
                        prefixed(&[7], a.value()),
                    ));
                }
            }
        }
    }
    out.push(("mode9-zeros".into(), vec![9; 64]));
    out.push(("mode9-ones".into(), prefixed(&[9], &[0xff; 96])));
    out
}

// ---- Properties ----

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// A release like `p` whose kernel sends counters `1 ..= max_id`.
fn with_max_id(p: &'static Profile, max_id: u16) -> &'static Profile {
    let mut q = p.clone();
    q.max_id = max_id;
    Box::leak(Box::new(q))
}

fn profile() -> impl Strategy<Value = &'static Profile> {
    prop::sample::select(Profile::all().iter().collect::<Vec<_>>())
}

/// Up to 100 counter values.
fn values() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(any::<u64>(), 1..100)
}

/// Up to 12 attributes of up to 40 bytes.
fn attrs() -> impl Strategy<Value = Vec<(u16, Vec<u8>)>> {
    let value = prop::collection::vec(any::<u8>(), 0..40);
    prop::collection::vec((any::<u16>(), value), 0..12)
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Every counter once, in order, with its value; or `EMSGSIZE` when the
/// budget holds not even one counter.
fn check_pagination(p: &'static Profile, budget: usize, values: &[u64]) {
    let got = stats_pages(p, budget, values);
    if p.is_legacy() || budget >= 16 + 4 + p.header_len() + 12 {
        let value = |id: u16| values[usize::from(id) % values.len()];
        let want = (p.first_id()..=p.max_id).map(|id| (id, value(id)));
        assert_eq!(got, Ok(want.collect()));
    } else {
        assert_eq!(got, Err(EMSGSIZE));
    }
}

/// With `max_id` counters and room for one more than the headers, plus
/// `extra` bytes: each id exactly once, in order.
fn check_any_count(p: &'static Profile, max_id: u16, extra: usize) {
    let p = with_max_id(p, max_id);
    let budget = 16 + 4 + p.header_len() + 12 + extra;
    let pages = stats_pages(p, budget, &[7]).unwrap();
    let ids: Vec<u16> = pages.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, (1..=max_id).collect::<Vec<_>>());
}

/// The header Reprs: any values emit and parse back.
fn check_headers(nl: nlmsg::Repr, g: genl::Repr, j: jhdr::Repr) {
    let mut buf = vec![0xa5; nl.len as usize];
    nl.emit(&mut nlmsg::Packet::new_unchecked(&mut buf[..]));
    let p = nlmsg::Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(nlmsg::Repr::parse(&p), Ok(nl));
    let mut buf = [0xa5; 4];
    g.emit(&mut genl::Packet::new_unchecked(&mut buf[..]));
    let p = genl::Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(genl::Repr::parse(&p), Ok(g));
    let v = j.to_vec();
    let h = jhdr::Header::new_checked(&v[..], j.layout).unwrap();
    assert_eq!(jhdr::Repr::parse(&h), Ok(j));
}

fn nlmsg_repr() -> impl Strategy<Value = nlmsg::Repr> {
    let fields = (0u32..64, any::<u16>(), any::<u16>(), any::<u32>());
    (fields, any::<u32>()).prop_map(|((payload, kind, flags, seq), pid)| {
        nlmsg::Repr { len: 16 + payload, kind, flags, seq, pid }
    })
}

fn jool_repr() -> impl Strategy<Value = jhdr::Repr> {
    let words = (any::<bool>(), any::<[u8; 4]>(), any::<u32>());
    let bytes =
        (any::<u8>(), any::<u8>(), any::<[u8; 2]>(), any::<[u8; 16]>());
    (words, bytes).prop_map(
        |((v2, magic, version), (xt, flags, reserved, iname))| {
            let layout = if v2 { Layout::V2 } else { Layout::V1 };
            // V1 has no magic on the wire: it parses as the right one.
            let magic = if v2 { magic } else { jhdr::MAGIC };
            jhdr::Repr { layout, magic, version, xt, flags, reserved, iname }
        },
    )
}

/// Attributes written with `Writer` come back from `NlasIterator`.
fn check_attributes(attrs: &[(u16, Vec<u8>)]) {
    let mut w = Writer::new();
    for (kind, value) in attrs {
        w.attr(*kind, value);
    }
    let got: Vec<(u16, Vec<u8>)> = NlasIterator::new(w.as_slice())
        .map(|a| a.map(|a| (a.raw_kind(), a.value().to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got, attrs);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Any budget, any release: stats pagination.
    #[test]
    fn prop_stats_pagination(
        p in profile(),
        budget in 0usize..5000,
        v in values(),
    ) {
        check_pagination(p, budget, &v);
    }

    /// Any number of counters (the offset attribute is one byte, so up to
    /// 255) and any budget that holds one: each id exactly once, in order.
    #[test]
    fn prop_stats_pagination_any_count(
        p in profile(),
        n in 1u16..=255,
        extra in 0usize..600,
    ) {
        prop_assume!(!p.is_legacy());
        check_any_count(p, n, extra);
    }

    /// nlmsghdr, genlmsghdr and joolnlhdr: values → emit → parse.
    #[test]
    fn prop_header_reprs_round_trip(
        nl in nlmsg_repr(),
        g in any::<(u8, u8)>(),
        j in jool_repr(),
    ) {
        check_headers(nl, genl::Repr { cmd: g.0, version: g.1 }, j);
    }

    /// Attributes: `Writer` → `NlasIterator`.
    #[test]
    fn prop_attributes_round_trip(a in attrs()) {
        check_attributes(&a);
    }

    /// Bytes → view → Repr → emit, for every layer (the wire_roundtrip
    /// body, on random bytes).
    #[test]
    fn prop_wire_bytes(data in bytes(160)) {
        fuzz_wire(&data);
    }

    /// Random datagrams to random kernels keep the sim_request oracles.
    #[test]
    fn prop_requests(setup in any::<[u8; 2]>(), data in bytes(120)) {
        fuzz_request(&[&setup[..], &data].concat());
    }
}
