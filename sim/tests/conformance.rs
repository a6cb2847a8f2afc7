//! Replays `fixtures/conformance-4.1.9` (the real Jool 4.1.9 module's
//! byte-exact answers to crafted valid and malformed requests, captured in
//! a QEMU guest; see its README) through the in-process simulator.
//!
//! Masked in every reply message, as the corpus README prescribes:
//! `nlmsg_seq` and `nlmsg_pid` (bytes 8..16). The family id needs no mask:
//! the simulator is given the id the real kernel assigned (0x20).

use jool_sim::{
    kernel::{Caller, Framework, Kernel, Xlator, INIT_NETNS},
    versions::Profile,
    wire::{hex, nlmsg},
};
use serde_json::Value;

fn corpus(name: &str) -> Value {
    let path = format!(
        "{}/../fixtures/conformance-4.1.9/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Zeroes seq and pid of every message in a reply datagram (and of the
/// header an NLMSG_ERROR echoes).
fn mask(datagram: Vec<u8>) -> String {
    hex::encode(&nlmsg::masked(&datagram))
}

/// The 4.1.9 kernel of the corpus's main runs: both modules, both
/// `default` instances (`instance add --netfilter --pool6 64:ff9b::/96`).
fn kernel_with_instances() -> Kernel {
    let mut k = Kernel::new(Profile::get("4.1.9").unwrap());
    for x in [Xlator::Siit, Xlator::Nat64] {
        k.add_instance(INIT_NETNS, x, "default", Framework::Netfilter)
            .unwrap();
    }
    let mut pool6 = [0u8; 16];
    pool6[..4].copy_from_slice(&[0x00, 0x64, 0xff, 0x9b]);
    k.set_pool6(INIT_NETNS, Xlator::Siit, "default", Some((pool6, 96)))
        .unwrap();
    k.set_pool6(INIT_NETNS, Xlator::Nat64, "default", Some((pool6, 96)))
        .unwrap();
    k
}

/// Replays every request of a corpus file; returns the mismatches.
fn replay(k: &mut Kernel, file: &str) -> Vec<String> {
    let doc = corpus(file);
    let privileged = doc["uid"] == 0;
    let mut failures = Vec::new();
    let mut count = 0;
    for r in doc["requests"].as_array().unwrap() {
        count += 1;
        let name = r["name"].as_str().unwrap();
        let caller = Caller {
            netns: INIT_NETNS,
            net_admin: privileged,
            port_id: r["port_id"].as_u64().unwrap_or(1) as u32,
            ext_ack: r["netlink_ext_ack"].as_bool().unwrap_or(false),
        };
        let request = unhex(r["request_hex"].as_str().unwrap());
        let expected: Vec<String> = r["replies_hex"]
            .as_array()
            .unwrap()
            .iter()
            .chain(r["late_replies_hex"].as_array().unwrap())
            .map(|h| mask(unhex(h.as_str().unwrap())))
            .collect();
        match (k.sendmsg(&caller, &request), r["errno_on_send_name"].as_str())
        {
            (Err(e), Some(want)) => {
                if !(want == "ENODATA" && e == jool_sim::kernel::ENODATA) {
                    failures.push(format!(
                        "{name}: send failed with {e}, real kernel {want}"
                    ));
                }
            }
            (Ok(replies), None) => {
                let got: Vec<String> = replies.into_iter().map(mask).collect();
                if got != expected {
                    failures.push(format!(
                        "{name}:\n  real: {expected:?}\n  sim:  {got:?}"
                    ));
                }
            }
            (got, want) => failures.push(format!(
                "{name}: sim {got:?}, real send error {want:?}"
            )),
        }
    }
    assert!(count > 0, "{file} has no requests");
    failures
}

fn assert_replay(k: &mut Kernel, file: &str) {
    let failures = replay(k, file);
    assert!(
        failures.is_empty(),
        "{} of the {file} answers differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn test_root_run_byte_exact() {
    let doc = corpus("root.json");
    assert_eq!(doc["requests"].as_array().unwrap().len(), 91);
    assert_replay(&mut kernel_with_instances(), "root.json");
}

#[test]
fn test_premodprobe_run_byte_exact() {
    let mut k = Kernel::new(Profile::get("4.1.9").unwrap());
    k.set_modules(false, false);
    assert_replay(&mut k, "premodprobe.json");
}

#[test]
fn test_siit_only_run_byte_exact() {
    let mut k = Kernel::new(Profile::get("4.1.9").unwrap());
    k.set_modules(true, false);
    assert_replay(&mut k, "siitonly.json");
}
