//! The whole loop, simulator against simulator: it must find nothing
//! between identical kernels, and must find the difference when one is
//! changed.

use jool_sim::wire::hex;

use super::*;

mod regressions;

fn p(release: &str) -> &'static Profile {
    Profile::get(release).unwrap()
}

fn seeds_of(tag: u32) -> Result<Vec<seeds::Seed>> {
    let mut s = seeds::built_seeds(p("4.1.9"), tag);
    let text = fs::read_to_string(&default_conformance().join("root.json"))?;
    s.extend(seeds::conformance_seeds("root.json", &text, tag)?);
    Ok(s)
}

fn opts(seed: u64, execs: u64) -> Options {
    Options {
        seed,
        max_execs: Some(execs),
        resync_every: 100,
        feedback: true,
        ..Options::default()
    }
}

#[test]
fn test_identical_sims_agree() {
    for seed in [1, 2, 3] {
        let mut real = SimKernel::new(p("4.1.9"));
        let s = campaign(
            &mut real,
            p("4.1.9"),
            p("4.1.9"),
            &seeds_of,
            Vec::new(),
            opts(seed, 400),
        )
        .unwrap();
        assert_eq!(s.execs, 400, "{}", s.render());
        assert!(s.classes.is_empty(), "{}", s.render());
        assert!(s.success());
        assert!(s.resyncs >= 4, "{}", s.render());
    }
}

#[test]
fn test_other_release_diverges() {
    let mut real = SimKernel::new(p("4.1.9"));
    let s = campaign(
        &mut real,
        p("4.1.9"),
        p("4.1.12"),
        &seeds_of,
        Vec::new(),
        opts(5, 300),
    )
    .unwrap();
    assert!(!s.success(), "{}", s.render());
    assert!(s.unknown().count() > 0, "{}", s.render());
}

#[test]
fn test_loop_finds_a_difference_the_checks_do_not_show() {
    // Only nlctrl's answer about Jool differs (its multicast group id):
    // the base state checks agree, the mutated requests must find it.
    let mut real = SimKernel::new(p("4.1.9"));
    let mut d = discover::discover_family(&mut real).unwrap();
    d.netns_tag =
        discover::discover_netns_tag(&mut real, p("4.1.9"), d.family_id)
            .unwrap();
    let mut sim = discover::sim_like(p("4.1.9"), &d);
    sim.kernel.set_mcast_group_id(0x42);
    let seeds = seeds_of(d.netns_tag).unwrap();
    let s = Engine::new(
        &mut real,
        &mut sim,
        p("4.1.9"),
        d,
        (seeds, Vec::new()),
        opts(3, 400),
    )
    .run();
    assert_eq!(s.execs, 400, "{}", s.render());
    assert!(!s.success(), "{}", s.render());
    assert!(
        s.unknown().any(|c| c.key.starts_with("ctrl/cmd3 | real ctrl")),
        "{}",
        s.render()
    );
}

#[test]
fn test_other_budget_diverges_and_is_saved() {
    let tmp = crate::host::TempDir::new("fuzz-kernel-test").unwrap();
    let dir = tmp.path().join("out");
    let mut real = SimKernel::new(p("4.1.9"));
    real.kernel.set_msg_budget(512);
    let o = Options { out: Some(dir.clone()), ..opts(9, 300) };
    let s =
        campaign(&mut real, p("4.1.9"), p("4.1.9"), &seeds_of, Vec::new(), o);
    let s = s.unwrap();
    // The base state's check already differs (stats pages): the loop
    // says so and stops.
    assert!(!s.success(), "{}", s.render());
    assert!(dir.join("summary.json").is_file());
    let back: Summary = serde_json::from_str(
        &std::fs::read_to_string(dir.join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(back.execs, s.execs);
}

#[test]
fn test_known_divergence_is_not_a_failure() {
    // A kernel with the SIIT instance's counter 5 set: stats differ, an
    // unknown class; ops the sim does not emulate would be known.
    let mut real = SimKernel::new(p("4.1.9"));
    let mut sim = SimKernel::new(p("4.1.9"));
    let d = discover::discover_family(&mut real).unwrap();
    assert_eq!(d.family_id, 0x20);
    assert!(d.foreign.is_empty());
    let r = request::request(p("4.1.9"), 20, 1, b"default", &[]);
    let (a, b) = (real.exchange(&r, false), sim.exchange(&r, false));
    let case = known::Case { request: &r, real: &a, sim: &b };
    // Both sims answer the same: no divergence to explain.
    assert!(answer::same(&a, &b));
    assert_eq!(
        known::explain(&case, 0x20).map(|k| k.id),
        Some("sim-op-not-emulated")
    );
}

#[test]
fn test_answer_kinds() {
    let mut k = SimKernel::new(p("4.1.9"));
    let ex = k.exchange(&[], false);
    assert_eq!(answer::answer_kind(&ex, 0x20), "send-errno61");
    let r = request::request(p("4.1.9"), 7, 1, b"default", &[]);
    let ex = k.exchange(&r, false);
    assert_eq!(answer::answer_kind(&ex, 0x20), "jool-err3");
    assert_eq!(answer::request_kind(&r, 0x20), "jool/cmd7");
}

/// An answer of the reply datagrams `hex`.
fn replies(hex: &[&str]) -> Exchange {
    Exchange {
        replies: hex.iter().map(|x| hex::decode(x).unwrap()).collect(),
        ..Exchange::default()
    }
}

/// The known divergence that explains the answers to `request`, if any.
fn explained(
    request: &[u8],
    real: &Exchange,
    sim: &Exchange,
) -> Option<&'static str> {
    let case = known::Case { request, real, sim };
    known::explain(&case, 0x20).map(|k| k.id)
}

/// INSTANCE_FOREACH from the offset "default": the real 4.1.9 lists what
/// follows it in hash order (here an iptables instance with an empty
/// name), the simulator what follows it by name (nothing): a known
/// divergence, unlike a foreach whose answers differ otherwise.
#[test]
fn test_foreach_from_offset_is_a_known_divergence() {
    let h = |s: &str| hex::decode(s).unwrap();
    let req = h("50000000200001000100000000000000000100006a6f6f6c040109000100000000000000000000000000000000000000200008800800010000007f0305000200040000000c00030064656661756c7400");
    let real = replies(&["4c0000002000000001000000af000000000200006a6f6f6c0401090001000000000000000000000000000000000000001c0001800800010000007f0305000200080000000500030000000000"]);
    let sim = replies(&["30000000200000000100000001000040000200006a6f6f6c040109000100000000000000000000000000000000000000"]);
    assert_eq!(
        explained(&req, &real, &sim),
        Some("instance-foreach-offset-order")
    );
    // Nor is a Jool error report in place of the simulator's listing
    // (ERROR flag, JNLAERR_CODE 22).
    let mut error = sim.clone();
    error.replies[0][29] |= 1;
    error.replies[0].extend_from_slice(&[6, 0, 1, 0, 22, 0, 0, 0]);
    let n = error.replies[0].len() as u32;
    error.replies[0][..4].copy_from_slice(&n.to_le_bytes());
    assert_eq!(answer::answer_kind(&error, 0x20), "jool-err22");
    assert_eq!(explained(&req, &real, &error), None);
    // Without the offset (a plain foreach), the same answers are not.
    let mut plain = req[..48].to_vec();
    plain[..4].copy_from_slice(&48u32.to_le_bytes());
    assert_eq!(explained(&plain, &real, &sim), None);
}

/// A plain INSTANCE_FOREACH with NLM_F_ACK (real 4.1.9, `fuzz-kernel
/// --seed 7`, request #164806): same two entries in another order, then
/// the same ack. Known, as long as the other datagrams match exactly.
#[test]
fn test_foreach_with_ack_reordered_is_a_known_divergence() {
    let h = |s: &str| hex::decode(s).unwrap();
    let req = h("30000000200005000300000000000000000100006a6f6f6c0401090001003c0f64656661756c74000000000000000000");
    let real = replies(&["700000002000000003000000af000000000200006a6f6f6c0401090001003c0f64656661756c74000000000000000000240001800800010000a37f0305000200040000000d000300636f6e6674657374000000001c0001800800010000a37f0305000200080000000500030000000000", "240000000200000103000000af0000000000000030000000200005000300000000000000"]);
    let sim = replies(&["70000000200000000300000001000040000200006a6f6f6c0401090001003c0f64656661756c740000000000000000001c0001800800010000a37f0305000200080000000500030000000000240001800800010000a37f0305000200040000000d000300636f6e667465737400000000", "240000000200000103000000010000400000000030000000200005000300000000000000"]);
    assert_eq!(explained(&req, &real, &sim), Some("instance-foreach-order"));
    // Another error in the ack is not a reordering.
    let mut other = sim.clone();
    other.replies[1][16] = 0xea;
    assert_eq!(explained(&req, &real, &other), None);
    // Nor are other entries.
    let mut other = sim;
    let n = other.replies[0].len();
    other.replies[0][n - 4] ^= 1;
    assert_eq!(explained(&req, &real, &other), None);
}

/// A batch of three requests whose last is an INSTANCE_FOREACH from an
/// offset (real 4.1.9, `fuzz-kernel --seed 8`, request #220563): the two
/// errors match, the foreach lists an instance on the real side and none
/// in the simulator. Known; a difference in the errors is not.
#[test]
fn test_foreach_from_offset_in_a_batch_is_a_known_divergence() {
    let h = |s: &str| hex::decode(s).unwrap();
    let req = h("150000002810010001000000000000000e010000920000005c0000000fea01000100000000000000670100006a6f6f6c040109000100000064656661756c740000000000000000002c000a80050001000000000020000280140001000064ff9b000000000000000000000000050002006000000050000000200001000100000000000000000100006a6f6f6c040109000200000064656661756c7400000000000000000020000880080001008057900305000200040000000c00030064656661756c7400");
    let real = replies(&["2c0000000200000001000000b0000000feffffff150000002810010001000000000000000e01000092000000", "700000000200000001000000b0000000feffffff5c0000000fea01000100000000000000670100006a6f6f6c040109000100000064656661756c740000000000000000002c000a80050001000000000020000280140001000064ff9b0000000000000000000000000500020060000000", "4c0000002000000001000000b0000000000200006a6f6f6c040109000200000064656661756c740000000000000000001c000180080001008057900305000200040000000500030000000000"]);
    let sim = replies(&["2c000000020000000100000001000040feffffff150000002810010001000000000000000e01000092000000", "70000000020000000100000001000040feffffff5c0000000fea01000100000000000000670100006a6f6f6c040109000100000064656661756c740000000000000000002c000a80050001000000000020000280140001000064ff9b0000000000000000000000000500020060000000", "30000000200000000100000001000040000200006a6f6f6c040109000200000064656661756c74000000000000000000"]);
    assert_eq!(
        explained(&req, &real, &sim),
        Some("instance-foreach-offset-order")
    );
    let mut other = sim;
    other.replies[0][16] = 0xea;
    assert_eq!(explained(&req, &real, &other), None);
}

/// Known divergences next to acks and other messages (real 4.1.9,
/// `fuzz-kernel --seed 9`): a foreach from an offset with NLM_F_ACK
/// (request #262553), and an INSTANCE_ADD collision after a refused
/// STATS_FOREACH (request #103710). The other datagrams must match.
#[test]
fn test_known_divergences_next_to_other_datagrams() {
    let h = |s: &str| hex::decode(s).unwrap();
    let cases = [
        (
            "5000000020000d000100000000000000000100006a6f6f6c0401090001000000616c7400000000000000000000000000200008800800010000e97fc305000200040000000c00030064656661756c7400",
            replies(&["4c0000002000000001000000b0000000000200006a6f6f6c0401090001000000616c74000000000000000000000000001c0001800800010000e97fc3050002000800000008000300616c7400", "240000000200000101000000b0000000000000005000000020000d000100000000000000"]),
            replies(&["30000000200000000100000001000040000200006a6f6f6c0401090001000000616c7400000000000000000000000000", "24000000020000010100000001000040000000005000000020000d000100000000000000"]),
            "instance-foreach-offset-order",
        ),
        (
            "20000000200005003900000000000000070120000c00090080000000000000005c000000200001000100000000000000010100006a6f6f6c0401010001000000000000000000000000000000000000002c000a80050001000400000020000280140001000064ff9b0000000000000000000000000500020060000000",
            replies(&["340000000200000039000000b0000000eaffffff20000000200005003900000000000000070120000c0009008000000000000000", "740000002000000001000000b0000000000200006a6f6f6c04010100010100000000000000000000000000000000000006000100110000003a00020054686973206e616d65737061636520616c7265616479206861732061204e657466696c746572204a6f6f6c20696e7374616e63652e000000"]),
            replies(&["34000000020000003900000001000040eaffffff20000000200005003900000000000000070120000c0009008000000000000000", "74000000200000000100000001000040000200006a6f6f6c04010100010100000000000000000000000000000000000006000100110000003900020054686973206e616d65737061636520616c7265616479206861732061204a6f6f6c20696e7374616e6365206e616d65642027272e00000000"]),
            "instance-add-collision-order",
        ),
    ];
    for (req, real, sim, id) in cases {
        let req = h(req);
        assert_eq!(explained(&req, &real, &sim), Some(id));
        // Another error code in the datagram that should match is not.
        let i = usize::from(id == "instance-foreach-offset-order");
        let mut other = sim.clone();
        other.replies[i][16] ^= 1;
        assert_eq!(explained(&req, &real, &other), None, "{id}");
    }
}

/// An operation the simulator does not emulate (POOL4_ADD) is not a
/// reason to resynchronise; GLOBAL_UPDATE and FILE_HANDLE are, and so is
/// anything under another numbering.
#[test]
fn test_not_emulated_changes_state_only_for_globals_and_atomic_config() {
    let req = |cmd| request::request(p("4.1.9"), cmd, 1, b"default", &[]);
    assert!(!known::not_emulated_changes_state(&req(19), 0x20, 30));
    assert!(known::not_emulated_changes_state(&req(9), 0x20, 30));
    assert!(known::not_emulated_changes_state(&req(26), 0x20, 30));
    assert!(known::not_emulated_changes_state(&req(19), 0x20, 34));
    let mut batch = req(19);
    batch.extend(req(9));
    assert!(known::not_emulated_changes_state(&batch, 0x20, 30));
}
