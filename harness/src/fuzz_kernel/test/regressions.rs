//! Regressions: `fixtures/fuzz-regressions/fuzz_kernel`, each a request
//! the loop once found answered differently by the simulator and the
//! real module, replayed on the simulator against the real answer.

use jool_sim::wire::{hex, nlmsg};

use super::*;

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
    for r in discover::base_requests(p("4.1.9")) {
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
        .map(|l| nlmsg::masked(&hex::decode(l).unwrap()))
        .collect();
    let ex = base_sim().exchange(&req, true);
    let sim: Vec<Vec<u8>> =
        ex.replies.iter().map(|r| nlmsg::masked(r)).collect();
    assert_eq!(
        sim.iter().map(|r| hex::encode(r)).collect::<Vec<_>>(),
        real.iter().map(|r| hex::encode(r)).collect::<Vec<_>>()
    );
    // The reserved genl bytes get the same check: flags REQUEST only,
    // reserved field 1.
    let mut bad = req;
    bad[6..8].copy_from_slice(&nlmsg_flags_request());
    bad[18] = 1;
    let ex = base_sim().exchange(&bad, true);
    assert_eq!(answer::answer_kind(&ex, 0x20), "nlerr22");
    assert!(String::from_utf8_lossy(&ex.replies[0])
        .contains("genlmsghdr.reserved field is not 0"));
}

fn nlmsg_flags_request() -> [u8; 2] {
    nlmsg::F_REQUEST.to_le_bytes()
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
    assert_eq!(answer::answer_kind(&ex, 0x20), "jool-err38");
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
    assert_eq!(answer::answer_kind(&ex, 0x20), "jool-err38");
}

/// Kernel bug (Jool 4.1.15, Debian sid's module on trixie's 6.12; the
/// same code from 4.0.8 to main): POOL4_FOREACH, SESSION_FOREACH and
/// BIB_FOREACH take JNLAR_PROTO's byte unchecked, and the protocol
/// switches end in `WARN(true, "Unsupported transport protocol")`
/// (`pool4/db.c` `get_tree`, `bib/db.c` `get_table`): a kernel warning
/// with a stack trace (a panic under `panic_on_warn`) from a request. The
/// simulator does not emulate them (ENOSYS, a known divergence).
#[test]
fn r_fuzz_kernel_foreach_proto_warn_4_1_15() {
    let p15 = p("4.1.15");
    for (name, handler) in [
        ("pool4-foreach-proto-warn-4.1.15", "pool4db_foreach_sample"),
        ("session-foreach-proto-warn-4.1.15", "bib_foreach_session"),
        ("bib-foreach-proto-warn-4.1.15", "bib_foreach+"),
    ] {
        let log = regression(&format!("{name}.real.txt"));
        let log = String::from_utf8(log).unwrap();
        assert!(log.contains(handler) && log.contains("WARNING"), "{name}");
        let mut k = SimKernel::new(p15);
        for r in discover::base_requests(p15) {
            k.exchange(&r, false);
        }
        let ex = k.exchange(&regression(&format!("{name}.bin")), false);
        assert_eq!(answer::answer_kind(&ex, 0x20), "jool-err38", "{name}");
    }
}

/// Replays `fuzz_kernel/NAME.bin` against the base simulator and checks
/// the replies equal `NAME.real.hex` (the real module's, one datagram
/// per line), masking only seq and port id.
fn assert_replays(name: &str, mut k: SimKernel, ext_ack: bool) {
    let req = regression(&format!("{name}.bin"));
    let real: Vec<String> =
        String::from_utf8(regression(&format!("{name}.real.hex")))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| hex::encode(&nlmsg::masked(&hex::decode(l).unwrap())))
            .collect();
    let ex = k.exchange(&req, ext_ack);
    let sim: Vec<String> =
        ex.replies.iter().map(|r| hex::encode(&nlmsg::masked(r))).collect();
    assert_eq!(sim, real, "{name}");
}

/// [`assert_replays`] against the base state of fuzz-kernel on 4.1.9.
fn assert_replays_as_real(name: &str, ext_ack: bool) {
    assert_replays(name, base_sim(), ext_ack);
}

/// Simulator bug found by fuzz-kernel on 4.1.9: nlctrl's commands from
/// its `resv_start_op` (11) on get `genl_header_check` before the command
/// lookup: flags REQUEST|ATOMIC on command 15 answer EINVAL "ambiguous or
/// reserved bits set in nlmsg_flags", not EOPNOTSUPP.
#[test]
fn r_fuzz_kernel_ctrl_new_cmd_flags() {
    assert_replays_as_real("ctrl-new-cmd-flags", true);
}

/// Simulator bug found by fuzz-kernel on 4.1.9: a CTRL_CMD_GETPOLICY
/// dump whose attributes do not parse (here a Jool header where nlctrl
/// expects attributes) answers EINVAL; the simulator did not know the
/// command (EOPNOTSUPP). It now runs `ctrl_dumppolicy_start`'s checks.
#[test]
fn r_fuzz_kernel_ctrl_getpolicy_bad_attrs() {
    assert_replays_as_real("ctrl-getpolicy-bad-attrs", false);
}

/// Simulator bug found by fuzz-kernel on 4.1.9: GETFAMILY is parsed
/// liberally, and bytes after the last attribute leave the extack
/// warning "bytes leftover after parsing attributes", which the ack
/// carries (here with EINVAL: no family id or name).
#[test]
fn r_fuzz_kernel_ctrl_leftover_warning() {
    assert_replays_as_real("ctrl-leftover-warning", true);
}

/// Simulator bug found by fuzz-kernel on 4.1.9: a CTRL_ATTR_FAMILY_NAME
/// longer than GENL_NAMSIZ - 1 whose first 16 bytes hold a NUL fails
/// NLA_STRING's length check (ERANGE); the simulator only ran
/// NLA_NUL_STRING's NUL check and answered ENOENT.
#[test]
fn r_fuzz_kernel_ctrl_name_too_long() {
    assert_replays_as_real("ctrl-name-too-long", false);
}

/// A 4.1.9 simulator whose only instance is SIIT `default` without pool6.
fn siit_without_pool6() -> SimKernel {
    let mut k = SimKernel::new(p("4.1.9"));
    k.kernel
        .add_instance(
            jool_sim::kernel::INIT_NETNS,
            jool_sim::kernel::Xlator::Siit,
            "default",
            jool_sim::kernel::Framework::Netfilter,
        )
        .unwrap();
    k
}

/// Simulator bug found by fuzz-kernel on 4.1.9: GLOBAL_FOREACH of a SIIT
/// instance whose pool6 is unset (a fuzzed INSTANCE_ADD made it) holds
/// pool6 as a nest with only JNLAP_LEN = 0 (`jnla_put_prefix6(NULL)`),
/// not an empty nest.
#[test]
fn r_fuzz_kernel_global_foreach_pool6_unset() {
    assert_replays("global-foreach-pool6-unset", siit_without_pool6(), false);
}

/// Simulator bug found by fuzz-kernel on 4.1.9: INSTANCE_ADD with a pool6
/// of length 129 fails `prefix6_validate` ("Prefix length 129 is too
/// high.") before the RFC 6052 length check the simulator ran first.
#[test]
fn r_fuzz_kernel_instance_add_prefix_len_129() {
    assert_replays_as_real("instance-add-prefix-len-129", false);
}

/// [`assert_replays_as_real`] against the base state of a 4.1.13
/// simulator built like Debian trixie's (family id 0x23, Linux 6.12:
/// unsigned `char`, no xtables).
fn assert_replays_as_trixie(name: &str, ext_ack: bool) {
    let mut k = SimKernel::new(p("4.1.13"));
    k.kernel.set_family_id(0x23);
    k.kernel.set_build(jool_sim::kernel::Build {
        unsigned_char: true,
        xtables: false,
        ctrl_dump_strict: true,
    });
    for mut r in discover::base_requests(p("4.1.13")) {
        r[4..6].copy_from_slice(&0x23u16.to_le_bytes());
        k.exchange(&r, false);
    }
    assert_replays(name, k, ext_ack);
}

/// Found by fuzz-kernel on Debian trixie (4.1.13 on Linux 6.12): an
/// instance name "\xff\x80bad" is valid there (Linux 6.2+ builds with
/// -funsigned-char, and `iname_validate()` only refuses chars below 32),
/// so STATS_FOREACH answers ESRCH "This namespace lacks an instance named
/// ..."; on 6.1 (signed char) the same bytes are EINVAL. The simulator
/// models it as `Build::unsigned_char`.
#[test]
fn r_fuzz_kernel_unsigned_char_iname_4_1_13() {
    assert_replays_as_trixie("unsigned-char-iname-4.1.13", true);
}

/// Found by fuzz-kernel on Debian trixie: its 4.1.13 module has no
/// iptables framework (`NETFILTER_XTABLES` unset), so INSTANCE_ADD with
/// the iptables framework answers "Netfilter is the only available
/// instance framework." (EINVAL) before the collision check. Modelled as
/// `Build::xtables`.
#[test]
fn r_fuzz_kernel_no_xtables_4_1_13() {
    assert_replays_as_trixie("no-xtables-4.1.13", true);
}

/// Simulator bug found by fuzz-kernel on 4.1.9: INSTANCE_ADD's framework
/// byte 0x05 (Netfilter plus the SIIT type bit) on a SIIT request is
/// accepted: the kernel adds `xf | hdr->xt` (0x05: Netfilter, SIIT); the
/// simulator refused any type bit in the byte.
#[test]
fn r_fuzz_kernel_instance_add_xf_with_type_bits() {
    let name = "instance-add-xf-with-type-bits";
    assert_replays(name, SimKernel::new(p("4.1.9")), false);
    let mut k = SimKernel::new(p("4.1.9"));
    k.exchange(&regression(&format!("{name}.bin")), false);
    let ns = &k.kernel.namespaces()[&jool_sim::kernel::INIT_NETNS];
    assert_eq!(ns.instances.len(), 1);
}

/// Simulator bug found by fuzz-kernel on 4.1.9: a pool6 address attribute
/// longer than 16 bytes fails nla_parse_nested with ERANGE, which Jool
/// passes on ("The 'pool6' attribute is malformed: ..."); the simulator
/// answered EINVAL. (Sent with a second, malformed message.)
#[test]
fn r_fuzz_kernel_pool6_addr_too_long_erange() {
    assert_replays_as_real("pool6-addr-too-long-erange", true);
}

/// Found by fuzz-kernel on trixie (Linux 6.12): a CTRL_CMD_GETFAMILY dump
/// carrying an attribute nlctrl's policy lacks is refused (EINVAL): 6.12
/// validates GETFAMILY dumps strictly, 6.1 ignores their attributes.
/// Modelled as `Build::ctrl_dump_strict`.
#[test]
fn r_fuzz_kernel_ctrl_dump_strict_4_1_13() {
    assert_replays_as_trixie("ctrl-dump-strict-4.1.13", false);
}

/// Simulator bug found by fuzz-kernel on 4.1.9: GLOBAL_FOREACH with
/// JNLAR_OFFSET_U8 = 0 lists every global (`globals_foreach` treats 0 as
/// no offset); the simulator looked for a global with id 0 and listed
/// none.
/// (The real SIIT `default` had no pool6 then, as in
/// `r_fuzz_kernel_global_foreach_pool6_unset`.)
#[test]
fn r_fuzz_kernel_global_foreach_offset_zero() {
    assert_replays("global-foreach-offset-zero", siit_without_pool6(), true);
}

/// Found by fuzz-kernel on 4.1.9 (`--seed 3`, request #3391): an
/// INSTANCE_FOREACH whose Jool header flags hold ERROR (0x41) is
/// answered with a listing whose header echoes those flags. With an
/// instance named "" the real module lists it after `conftest`, the
/// simulator before: the known reordering, which the matcher missed
/// because it took the ERROR flag for an error report (and the first
/// entry, attribute 1, for JNLAERR_CODE: "jool-err8").
#[test]
fn r_fuzz_kernel_instance_foreach_error_flag_reordered() {
    let h = |name: &str| {
        let t = String::from_utf8(regression(name)).unwrap();
        replies(&t.lines().collect::<Vec<_>>())
    };
    let req = regression("instance-foreach-error-flag-reordered.bin");
    let real = h("instance-foreach-error-flag-reordered.real.hex");
    let sim = h("instance-foreach-error-flag-reordered.sim.hex");
    assert_eq!(answer::answer_kind(&real, 0x20), "jool-ok");
    assert_eq!(explained(&req, &real, &sim), Some("instance-foreach-order"));
    // Another entry (not a reordering) is still a divergence.
    let mut other = sim;
    let n = other.replies[0].len();
    other.replies[0][n - 8] ^= 1;
    assert_eq!(explained(&req, &real, &other), None);
}

/// Simulator bug found by fuzz-kernel on 4.1.9 (`--seed 3`, request
/// #104323): an INSTANCE_FOREACH offset whose JNLAIE_INAME is longer
/// than 15 bytes (with a NUL in the first 16) fails NLA_STRING's length
/// check: ERANGE, which jnla_parse_nested passes on ("The 'instance'
/// attribute is malformed: ..."); the simulator answered EINVAL.
#[test]
fn r_fuzz_kernel_instance_offset_name_too_long_erange() {
    assert_replays_as_real("instance-offset-name-too-long-erange", true);
}
