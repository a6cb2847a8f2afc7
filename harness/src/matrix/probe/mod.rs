//! The conformance probe: crafted requests, valid and malformed, sent to
//! a kernel (the real module in a guest, or the simulator), and every
//! reply recorded byte for byte, in the format of
//! `fixtures/conformance-4.1.9` (`jool-netlink-conformance/1`).
//!
//! - [`requests`]: what is asked, per release;
//! - [`run`]: asks the kernel of this machine ([`transport::exchange_once`]:
//!   a fresh socket per request, every queued reply read);
//! - [`replay`]: asks the simulator the recorded requests and lists where
//!   its answers differ (sequence numbers and port ids masked, nothing
//!   else).

use jool_sim::{
    kernel::{Caller, Kernel},
    versions::Profile,
    wire::{ctrl::Family, hex, nlmsg},
};
use serde::{Deserialize, Serialize};

use crate::transport::{self, Exchange};

pub mod requests;
pub mod runs;

pub use requests::{Families, Request, FAMILY_PLACEHOLDER};

/// The format tag of a probe document.
pub const FORMAT: &str = "jool-netlink-conformance/1";

/// One run of the probe: who asked, and every request with its answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Doc {
    /// [`FORMAT`].
    pub format: String,
    /// The module's release (what the probe built its requests for).
    #[serde(default)]
    pub release: Option<String>,
    /// `uname -r` of the kernel.
    #[serde(default)]
    pub kernel: Option<String>,
    /// Which run: `root`, `unpriv`, `userns`, `emptyns`, `premodprobe`,
    /// `siitonly`.
    #[serde(default)]
    pub run: Option<String>,
    /// Real user id of the prober.
    pub uid: u32,
    /// `CapEff` of the prober (hex, from `/proc/self/status`).
    #[serde(default)]
    pub cap_eff: String,
    /// The prober's user namespace (`/proc/self/ns/user` link).
    #[serde(default)]
    pub user_ns: String,
    /// The prober's network namespace (`/proc/self/ns/net` link).
    #[serde(default)]
    pub net_ns: String,
    /// Jool's family id ("Jool", or "SIIT_Jool" in 4.0.0 – 4.0.5), if
    /// the family exists.
    pub jool_family_id: Option<u16>,
    /// "NAT64_Jool"'s id in 4.0.0 – 4.0.5.
    #[serde(default)]
    pub nat64_family_id: Option<u16>,
    /// Every request, in send order.
    pub requests: Vec<Record>,
}

/// One request and what the kernel did with it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// Position in the request list.
    pub index: usize,
    /// Group letter.
    pub group: String,
    /// Stable name.
    pub name: String,
    /// What was sent, in words.
    pub description: String,
    /// The datagram, hex.
    pub request_hex: String,
    /// Its sequence numbers.
    pub seqs: Vec<u32>,
    /// Whether `NETLINK_EXT_ACK` was set.
    #[serde(default)]
    pub netlink_ext_ack: bool,
    /// The socket's port id.
    #[serde(default)]
    pub port_id: u32,
    /// errno of `sendmsg()`, if it failed.
    #[serde(default)]
    pub errno_on_send: Option<i32>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_on_send_name: Option<String>,
    /// The replies up to the first datagram holding `NLMSG_DONE` or
    /// `NLMSG_ERROR`, hex.
    pub replies_hex: Vec<String>,
    /// The replies after it (still queued), hex.
    #[serde(default)]
    pub late_replies_hex: Vec<String>,
}

impl Record {
    /// Every reply datagram, in order.
    pub fn replies(&self) -> Vec<Vec<u8>> {
        self.replies_hex
            .iter()
            .chain(&self.late_replies_hex)
            .filter_map(|h| hex::decode(h).ok())
            .collect()
    }
}

/// The families of Jool on this kernel: resolved with GETFAMILY on a
/// throwaway socket, the placeholder where absent.
pub fn resolve(p: &Profile) -> Families {
    let id = |name: &str| {
        let ex = transport::exchange_once(
            &jool_sim::requests::get_family(name, 100_000),
            false,
        );
        ex.replies.iter().find_map(|d| Family::find(d)).map(|f| f.id)
    };
    if split_families(p) {
        Families {
            siit: id("SIIT_Jool").unwrap_or(FAMILY_PLACEHOLDER),
            nat64: id("NAT64_Jool").unwrap_or(FAMILY_PLACEHOLDER),
        }
    } else {
        Families::one(id("Jool").unwrap_or(FAMILY_PLACEHOLDER))
    }
}

/// Whether `p` registers one family per translator (4.0.0 – 4.0.5).
pub fn split_families(p: &Profile) -> bool {
    use jool_sim::versions::{LegacyLayout, Protocol};
    matches!(
        p.protocol,
        Protocol::Legacy(LegacyLayout::TypeChar | LegacyLayout::NoType)
    )
}

/// Asks this machine's kernel every request of `p` (only those named in
/// `only`, when given) as the `run` run, and records the answers.
pub fn run(p: &Profile, run: &str, with_rm: bool, only: &[String]) -> Doc {
    let fam = resolve(p);
    let present = |id: u16| (id != FAMILY_PLACEHOLDER).then_some(id);
    let mut doc = Doc {
        format: FORMAT.into(),
        release: Some(p.release.clone()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_owned()),
        run: Some(run.to_owned()),
        uid: status_field("Uid:")
            .and_then(|u| u.split_whitespace().next()?.parse().ok())
            .unwrap_or(u32::MAX),
        cap_eff: status_field("CapEff:").unwrap_or_default(),
        user_ns: link("/proc/self/ns/user"),
        net_ns: link("/proc/self/ns/net"),
        jool_family_id: present(fam.siit),
        nat64_family_id: split_families(p)
            .then(|| present(fam.nat64))
            .flatten(),
        requests: Vec::new(),
    };
    for (index, r) in
        requests::requests(p, fam, with_rm).into_iter().enumerate()
    {
        if !only.is_empty() && !only.contains(&r.name) {
            continue;
        }
        let ex = transport::exchange_once(&r.datagram, r.ext_ack);
        doc.requests.push(record(index, r, ex));
    }
    doc
}

fn record(index: usize, r: Request, ex: Exchange) -> Record {
    let (replies, late) = split_at_end(&ex.replies);
    Record {
        index,
        group: r.group.to_string(),
        name: r.name,
        description: r.description,
        request_hex: hex::encode(&r.datagram),
        seqs: r.seqs,
        netlink_ext_ack: r.ext_ack,
        port_id: ex.port_id,
        errno_on_send: ex.sent.err(),
        errno_on_send_name: ex.sent.err().map(errno_name),
        replies_hex: replies.iter().map(|d| hex::encode(d)).collect(),
        late_replies_hex: late.iter().map(|d| hex::encode(d)).collect(),
    }
}

/// The replies up to (and with) the first datagram that holds
/// `NLMSG_DONE` or `NLMSG_ERROR`, and the rest: what `conformance.py`
/// read before it stopped waiting, and what it drained afterwards.
fn split_at_end(replies: &[Vec<u8>]) -> (&[Vec<u8>], &[Vec<u8>]) {
    let ends = |d: &Vec<u8>| {
        nlmsg::Messages::new(d).any(|m| {
            matches!(m.kind(), nlmsg::NLMSG_DONE | nlmsg::NLMSG_ERROR)
        })
    };
    let n = replies.iter().position(ends).map_or(replies.len(), |i| i + 1);
    replies.split_at(n)
}

/// The names of the errnos a `sendmsg()` of the probe meets.
fn errno_name(e: i32) -> String {
    match e {
        1 => "EPERM",
        2 => "ENOENT",
        22 => "EINVAL",
        61 => "ENODATA",
        90 => "EMSGSIZE",
        95 => "EOPNOTSUPP",
        111 => "ECONNREFUSED",
        _ => return e.to_string(),
    }
    .into()
}

/// A field of `/proc/self/status` (after its `Name:`), trimmed.
fn status_field(name: &str) -> Option<String> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
}

fn link(path: &str) -> String {
    std::fs::read_link(path)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Where the simulator's answer to a recorded request differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The request's name.
    pub name: String,
    /// The real kernel's answer (masked, hex; or the send errno).
    pub real: Vec<String>,
    /// The simulator's.
    pub sim: Vec<String>,
}

/// Asks `kernel` every request of `doc` as `caller` (its port id taken
/// from each record) and lists the answers that differ from the recorded
/// ones, with sequence numbers and port ids masked.
pub fn replay(
    doc: &Doc,
    kernel: &mut Kernel,
    caller: Caller,
) -> Vec<Mismatch> {
    // Legacy (4.0.0-4.0.7) replies also carry a byte of kernel stack,
    // and their instance listings kernel pointers and stack bytes: see
    // `legacy::mask_response_padding` and `mask_instance_entries`.
    let legacy = kernel.profile().is_legacy();
    let masked = |d: &[u8]| {
        let mut v = nlmsg::masked(d);
        if legacy {
            jool_sim::wire::legacy::mask_response_padding(&mut v);
            jool_sim::wire::legacy::mask_instance_entries(&mut v);
        }
        hex::encode(&v)
    };
    let mut out = Vec::new();
    for r in &doc.requests {
        let Ok(request) = hex::decode(&r.request_hex) else {
            out.push(Mismatch {
                name: r.name.clone(),
                real: vec!["bad request_hex".into()],
                sim: vec![],
            });
            continue;
        };
        let c = Caller {
            port_id: r.port_id.max(1),
            ext_ack: r.netlink_ext_ack,
            ..caller
        };
        let real: Vec<String> = match r.errno_on_send {
            Some(e) => vec![format!("sendmsg: errno {e}")],
            None => r.replies().iter().map(|d| masked(d)).collect(),
        };
        let sim: Vec<String> = match kernel.sendmsg(&c, &request) {
            Err(e) => vec![format!("sendmsg: errno {e}")],
            Ok(replies) => replies.iter().map(|d| masked(d)).collect(),
        };
        if real != sim {
            out.push(Mismatch { name: r.name.clone(), real, sim });
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;
    use jool_sim::kernel::{Framework, Xlator, INIT_NETNS};

    /// The kernel of the corpus's main runs: both `default` instances
    /// with pool6 64:ff9b::/96.
    fn corpus_kernel(p: &'static Profile, family: u16) -> Kernel {
        let mut k = Kernel::new(p);
        k.set_family_id(family);
        let mut pool6 = [0u8; 16];
        pool6[..4].copy_from_slice(&[0x00, 0x64, 0xff, 0x9b]);
        for x in [Xlator::Siit, Xlator::Nat64] {
            k.add_instance(INIT_NETNS, x, "default", Framework::Netfilter)
                .unwrap();
            k.set_pool6(INIT_NETNS, x, "default", Some((pool6, 96))).unwrap();
        }
        k
    }

    fn corpus() -> Doc {
        let p =
            crate::vm::default_fixtures().join("conformance-4.1.9/root.json");
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    /// The real 4.1.9 module's recorded answers, replayed on the
    /// simulator: no mismatch (what sim/tests/conformance.rs checks too,
    /// here through the probe's own reader and replay).
    #[test]
    fn test_replay_of_the_4_1_9_corpus_matches() {
        let doc = corpus();
        let p = Profile::get("4.1.9").unwrap();
        let mut k = corpus_kernel(p, doc.jool_family_id.unwrap());
        let m = replay(&doc, &mut k, Caller::root(INIT_NETNS));
        assert_eq!(m, vec![]);
        assert_eq!(doc.requests.len(), 91);
    }

    /// A reply changed by one byte is a mismatch.
    #[test]
    fn test_replay_finds_a_changed_reply() {
        let mut doc = corpus();
        let r =
            doc.requests.iter_mut().find(|r| r.name == "stats_siit").unwrap();
        let mut d = hex::decode(&r.replies_hex[0]).unwrap();
        let n = d.len();
        d[n - 1] ^= 1;
        r.replies_hex[0] = hex::encode(&d);
        let p = Profile::get("4.1.9").unwrap();
        let mut k = corpus_kernel(p, doc.jool_family_id.unwrap());
        let m = replay(&doc, &mut k, Caller::root(INIT_NETNS));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "stats_siit");
    }

    #[test]
    fn test_split_at_end() {
        let ack = {
            let mut m = vec![0u8; 36];
            m[..4].copy_from_slice(&36u32.to_le_bytes());
            m[4] = nlmsg::NLMSG_ERROR as u8;
            m
        };
        let data = vec![0u8; 20];
        let replies = vec![data.clone(), ack, data];
        let (a, b) = split_at_end(&replies);
        assert_eq!((a.len(), b.len()), (2, 1));
        let (a, b) = split_at_end(&replies[..1]);
        assert_eq!((a.len(), b.len()), (1, 0));
    }
}
