//! The whole loop, simulator against simulator: it must find nothing
//! between identical kernels, and must find the difference when one is
//! changed.

use super::*;

fn p(release: &str) -> &'static Profile {
    Profile::get(release).unwrap()
}

fn seeds_of(tag: u32) -> anyhow::Result<Vec<mutate::Seed>> {
    let mut s = mutate::built_seeds(p("4.1.9"), tag);
    let text =
        std::fs::read_to_string(default_conformance().join("root.json"))?;
    s.extend(
        mutate::conformance_seeds("root.json", &text, tag)
            .map_err(anyhow::Error::msg)?,
    );
    Ok(s)
}

fn opts(seed: u64, execs: u64) -> Options {
    Options {
        seed,
        duration: None,
        max_execs: Some(execs),
        resync_every: 100,
        progress: None,
        out: None,
        journal: None,
        avoid_cmds: Vec::new(),
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
    let s =
        campaign(&mut real, p("4.1.9"), p("4.1.12"), &seeds_of, opts(5, 300))
            .unwrap();
    assert!(!s.success(), "{}", s.render());
    assert!(s.unknown().count() > 0, "{}", s.render());
}

#[test]
fn test_loop_finds_a_difference_the_checks_do_not_show() {
    // Only nlctrl's answer about Jool differs (its multicast group id):
    // the base state checks agree, the mutated requests must find it.
    let mut real = SimKernel::new(p("4.1.9"));
    let mut d = engine::discover_family(&mut real).unwrap();
    d.netns_tag =
        engine::discover_netns_tag(&mut real, p("4.1.9"), d.family_id)
            .unwrap();
    let mut sim = engine::sim_like(p("4.1.9"), &d);
    sim.kernel.set_mcast_group_id(0x42);
    let seeds = seeds_of(d.netns_tag).unwrap();
    let s =
        Engine::new(&mut real, &mut sim, p("4.1.9"), d, seeds, opts(3, 400))
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
    let dir = std::env::temp_dir()
        .join(format!("fuzz-kernel-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut real = SimKernel::new(p("4.1.9"));
    real.kernel.set_msg_budget(512);
    let o = Options { out: Some(dir.clone()), ..opts(9, 300) };
    let s = campaign(&mut real, p("4.1.9"), p("4.1.9"), &seeds_of, o);
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
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn test_known_divergence_is_not_a_failure() {
    // A kernel with the SIIT instance's counter 5 set: stats differ, an
    // unknown class; ops the sim does not emulate would be known.
    let mut real = SimKernel::new(p("4.1.9"));
    let mut sim = SimKernel::new(p("4.1.9"));
    let d = engine::discover_family(&mut real).unwrap();
    assert_eq!(d.family_id, 0x20);
    assert!(d.foreign.is_empty());
    let r = mutate::request(p("4.1.9"), 20, 1, b"default", &[]);
    let (a, b) = (real.exchange(&r, false), sim.exchange(&r, false));
    let case = known::Case { request: &r, real: &a, sim: &b };
    // Both sims answer the same: no divergence to explain.
    assert!(engine::same(&a, &b));
    assert_eq!(
        known::explain(&case, 0x20).map(|k| k.id),
        Some("sim-op-not-emulated")
    );
}

#[test]
fn test_answer_kinds() {
    let mut k = SimKernel::new(p("4.1.9"));
    let ex = k.exchange(&[], false);
    assert_eq!(engine::answer_kind(&ex, 0x20), "send-errno61");
    let r = mutate::request(p("4.1.9"), 7, 1, b"default", &[]);
    let ex = k.exchange(&r, false);
    assert_eq!(engine::answer_kind(&ex, 0x20), "jool-err3");
    assert_eq!(engine::request_kind(&r, 0x20), "jool/cmd7");
}

// ---- Regressions: fixtures/fuzz-regressions/fuzz_kernel ----

fn regression(file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/fuzz-regressions/fuzz_kernel")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The 4.1.9 simulator in the base state of fuzz-kernel (SIIT and NAT64
/// `default`, netfilter, pool6 64:ff9b::/96).
fn base_sim() -> SimKernel {
    let mut k = SimKernel::new(p("4.1.9"));
    for r in engine::base_requests(p("4.1.9")) {
        k.exchange(&r, false);
    }
    k
}

/// Simulator bug found by fuzz-kernel on 4.1.9: Linux 6.0+ rejects a
/// Jool request whose nlmsg_flags hold more than REQUEST, ACK and ECHO
/// (`genl_header_check`: EINVAL, "ambiguous or reserved bits set in
/// nlmsg_flags"); the simulator went on to the Jool checks.
#[test]
fn r_fuzz_kernel_genl_flags_reserved() {
    let req = regression("genl-flags-reserved.bin");
    let text =
        String::from_utf8(regression("genl-flags-reserved.real.hex")).unwrap();
    let real: Vec<Vec<u8>> = text
        .lines()
        .map(|l| engine::mask(&mutate::unhex(l).unwrap()))
        .collect();
    let ex = base_sim().exchange(&req, true);
    let sim: Vec<Vec<u8>> =
        ex.replies.iter().map(|r| engine::mask(r)).collect();
    assert_eq!(
        sim.iter().map(|r| mutate::hex(r)).collect::<Vec<_>>(),
        real.iter().map(|r| mutate::hex(r)).collect::<Vec<_>>()
    );
    // The reserved genl bytes get the same check: flags REQUEST only,
    // reserved field 1.
    let mut bad = req;
    bad[6..8].copy_from_slice(&nlmsg_flags_request());
    bad[18] = 1;
    let ex = base_sim().exchange(&bad, true);
    assert_eq!(engine::answer_kind(&ex, 0x20), "nlerr22");
    assert!(String::from_utf8_lossy(&ex.replies[0])
        .contains("genlmsghdr.reserved field is not 0"));
}

fn nlmsg_flags_request() -> [u8; 2] {
    jool_sim::wire::nlmsg::F_REQUEST.to_le_bytes()
}

/// Kernel bug (Jool 4.1.9 on Debian's 6.1): ADDRESS_QUERY46 (cmd 6) for
/// a NAT64 instance named "alt" that does not exist, no attributes: NULL
/// pointer dereference in `jstat_put` from `xlator_put` in
/// `handle_address_query46`'s error path; the caller is killed in
/// sendmsg(). The simulator does not emulate the op (ENOSYS after the
/// common checks) and must keep answering.
#[test]
fn r_fuzz_kernel_address_query46_nat64_oops() {
    let req = regression("address-query46-nat64-oops.bin");
    assert!(String::from_utf8(regression(
        "address-query46-nat64-oops.real.txt"
    ))
    .unwrap()
    .contains("handle_address_query46"));
    let ex = base_sim().exchange(&req, false);
    assert_eq!(engine::answer_kind(&ex, 0x20), "jool-err38");
}

/// Kernel bug (Jool 4.1.9 on Debian's 6.1): POOL4_ADD (cmd 19) to SIIT
/// `default` without attributes: the same NULL dereference, from
/// `handle_pool4_add`.
#[test]
fn r_fuzz_kernel_pool4_add_siit_oops() {
    let req = regression("pool4-add-siit-oops.bin");
    assert!(String::from_utf8(regression("pool4-add-siit-oops.real.txt"))
        .unwrap()
        .contains("handle_pool4_add"));
    let ex = base_sim().exchange(&req, false);
    assert_eq!(engine::answer_kind(&ex, 0x20), "jool-err38");
}
