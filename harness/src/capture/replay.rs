//! [`compare`]: the captured requests replayed on the simulator, its
//! replies checked against the real kernel's byte for byte; and
//! [`Replay`], a transport that answers with the captured replies.

use std::{collections::BTreeMap, path::Path};

use jool_sim::{
    kernel::{Caller, Framework, Kernel, NetnsId, Xlator, INIT_NETNS},
    versions::Profile,
    wire::{ctrl::Family, genl, hex, nla::NlasIterator, nlmsg},
};

use super::port_of;
use crate::suite::{
    recipes,
    spec::{Case, StepKind, Suite, User},
};

/// The captured messages of one step: (request, replies) pairs.
fn exchanges(text: &str) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut ex: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    for line in text.lines() {
        let (dir, h) = line.split_at(1.min(line.len()));
        let Ok(bytes) = hex::decode(h.trim()) else { continue };
        match (dir, ex.last_mut()) {
            (">", _) => ex.push((bytes, Vec::new())),
            ("<", Some(last)) => last.1.push(bytes),
            _ => {}
        }
    }
    ex
}

/// A transport that answers each request with the replies the real
/// kernel gave to the captured request at the same position, with the
/// sequence number and port id rewritten to the new request's (also in
/// the request an `NLMSG_ERROR` echoes).
#[derive(Debug)]
pub struct Replay {
    exchanges: std::collections::VecDeque<Vec<Vec<u8>>>,
    queue: std::collections::VecDeque<Vec<u8>>,
}

impl Replay {
    /// The replay of one captured step (`NN.netlink`).
    pub fn new(netlink: &str) -> Self {
        let exchanges =
            exchanges(netlink).into_iter().map(|(_, r)| r).collect();
        Self { exchanges, queue: Default::default() }
    }

    /// Requests the client did not send.
    pub fn left(&self) -> usize {
        self.exchanges.len()
    }
}

impl crate::transport::Transport for Replay {
    fn send(&mut self, datagram: &[u8]) -> std::io::Result<()> {
        let replies = self.exchanges.pop_front().ok_or_else(|| {
            std::io::Error::other(format!(
                "request {} was not captured",
                hex::encode(datagram)
            ))
        })?;
        let (seq, port) = (
            datagram.get(8..12).unwrap_or(&[0; 4]),
            datagram.get(12..16).unwrap_or(&[0; 4]),
        );
        for mut r in replies {
            for at in [8, 28] {
                let is_echo = at == 28;
                if is_echo
                    && !(r.get(4..6) == Some(&2u16.to_ne_bytes()[..])
                        && r.len() >= 36)
                {
                    continue;
                }
                r[at..at + 4].copy_from_slice(seq);
                r[at + 4..at + 8].copy_from_slice(port);
            }
            self.queue.push_back(r);
        }
        Ok(())
    }

    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        self.queue.pop_front().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "no reply queued",
            )
        })
    }

    fn port_id(&self) -> u32 {
        0x4242
    }
}

impl crate::transport::Transport for &mut Replay {
    fn send(&mut self, datagram: &[u8]) -> std::io::Result<()> {
        (**self).send(datagram)
    }

    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        (**self).recv()
    }

    fn port_id(&self) -> u32 {
        (**self).port_id()
    }
}

/// The counters of a Jool stats reply (`u64` attributes after the genl
/// and Jool headers).
fn reply_counters(reply: &[u8], header_len: usize) -> Vec<(u16, u64)> {
    let Ok(p) = nlmsg::Packet::new_checked(reply) else { return vec![] };
    let attrs = p.payload().get(genl::HEADER_LEN + header_len..);
    NlasIterator::new(attrs.unwrap_or_default())
        .map_while(Result::ok)
        .filter_map(|a| {
            let v: [u8; 8] = a.value().try_into().ok()?;
            Some((a.kind(), u64::from_le_bytes(v)))
        })
        .collect()
}

/// What [`compare`] found.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Requests replayed.
    pub requests: usize,
    /// Every difference (empty: byte-identical after masking).
    pub diffs: Vec<String>,
}

/// Replays the captured requests of `dir` on the simulator of `release`.
///
/// # Panics
/// If `release` is not a known release.
pub fn compare(dir: &Path, suites: &[Suite], release: &str) -> Comparison {
    let profile = Profile::get(release).expect("known release");
    let mut c = Comparison::default();
    let commands: BTreeMap<String, String> =
        std::fs::read_to_string(dir.join("COMMANDS.tsv"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                Some((f.first()?.to_string(), f.get(3)?.to_string()))
            })
            .collect();
    for suite in suites {
        for case in &suite.cases {
            let cdir = dir.join(&suite.suite.name).join(&case.name);
            if !cdir.is_dir() {
                continue;
            }
            // A capture of older suite files is stale, not a mismatch.
            let stale = case.steps.iter().enumerate().find(|(i, s)| {
                let name =
                    format!("{}/{}/{:02}", suite.suite.name, case.name, i + 1);
                let got = commands.get(&name).map(String::as_str);
                s.run.is_some()
                    && s.netns() != "new"
                    && got != s.run.as_deref()
            });
            match stale {
                Some((i, _)) => c.diffs.push(format!(
                    "{}: step {} differs from the captured command: the capture is stale (jool-harness capture --backend vm --release {release})",
                    cdir.display(),
                    i + 1
                )),
                None => compare_case(&cdir, case, profile, &mut c),
            }
        }
    }
    c
}

fn compare_case(
    cdir: &Path,
    case: &Case,
    profile: &'static Profile,
    c: &mut Comparison,
) {
    let diffs = &mut c.diffs;
    let mut k = Kernel::new(profile);
    let (siit, nat64) = case.modules.loaded();
    k.set_modules(siit, nat64);
    let mut ns: BTreeMap<String, NetnsId> = BTreeMap::new();
    let mut moving: Vec<NetnsId> = Vec::new();
    let mut next: NetnsId = 0x1000;
    let mut id_of = |name: &str| -> NetnsId {
        if name == "init" {
            return INIT_NETNS;
        }
        next += 1;
        if name == "new" {
            return next;
        }
        *ns.entry(name.to_owned()).or_insert(next)
    };
    for (i, step) in case.steps.iter().enumerate() {
        let netns = id_of(step.netns());
        match step.kind() {
            StepKind::Topology(t) => {
                let Some(t) = recipes::topology(t) else { continue };
                let n = id_of(t.netns);
                let _ = k.add_instance(
                    n,
                    t.xlator,
                    "default",
                    Framework::Netfilter,
                );
                moving.push(n);
            }
            StepKind::Traffic(_) => {}
            // A fresh `unshare -n` namespace has no nlmon device.
            StepKind::Run(_) if step.netns() == "new" => {}
            StepKind::Run(_) => {
                let base = cdir.join(format!("{:02}", i + 1));
                let Ok(text) =
                    std::fs::read_to_string(base.with_extension("netlink"))
                else {
                    diffs.push(format!("{}: not captured", base.display()));
                    continue;
                };
                for (req, want) in exchanges(&text) {
                    c.requests += 1;
                    let family = want.iter().find_map(|r| Family::find(r));
                    if let Some(f) = &family {
                        k.set_family_id(f.id);
                    }
                    if let Some((_, id)) =
                        family.and_then(|f| f.mcast_groups.first().cloned())
                    {
                        k.set_mcast_group_id(id);
                    }
                    if moving.contains(&netns) {
                        sync_counters(&mut k, netns, &req, &want, profile);
                    }
                    let caller = Caller {
                        netns,
                        net_admin: step.user == User::Root,
                        port_id: port_of(&req),
                        ext_ack: false,
                    };
                    let got: Vec<Vec<u8>> = k.handle(&caller, &req);
                    let g: Vec<Vec<u8>> =
                        got.iter().map(|m| nlmsg::masked(m)).collect();
                    let w: Vec<Vec<u8>> =
                        want.iter().map(|m| nlmsg::masked(m)).collect();
                    if g != w {
                        diffs.push(format!(
                            "{} ({}): request {}\n  real: {}\n  sim:  {}",
                            base.display(),
                            step.run.as_deref().unwrap_or_default(),
                            hex::encode(&req),
                            w.iter()
                                .map(|m| hex::encode(m))
                                .collect::<Vec<_>>()
                                .join(" "),
                            g.iter()
                                .map(|m| hex::encode(m))
                                .collect::<Vec<_>>()
                                .join(" "),
                        ));
                    }
                }
            }
        }
    }
}

/// Before a stats request in a namespace that saw real traffic: sets the
/// sim's counters to the ones the real reply shows.
fn sync_counters(
    k: &mut Kernel,
    netns: NetnsId,
    req: &[u8],
    want: &[Vec<u8>],
    p: &Profile,
) {
    // Jool header after nlmsghdr (16) and genl (4): magic, version, xt, flags, reserved, iname.
    let Some(hdr) = req.get(20..20 + p.header_len()) else { return };
    if req.get(16) != Some(&7) || hdr.len() < 28 {
        return;
    }
    let Some(x) = Xlator::from_xt(hdr[8]) else { return };
    let iname = hdr[12..28]
        .split(|b| *b == 0)
        .next()
        .map(|n| String::from_utf8_lossy(n).into_owned());
    let iname =
        iname.filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
    let values: Vec<(u16, u64)> =
        want.iter().flat_map(|r| reply_counters(r, p.header_len())).collect();
    let _ = k.set_counters(netns, x, &iname, &values);
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_exchanges_pairs_requests_and_replies() {
        let ex = exchanges("> 0102\n< 03\n< 04\n> 05\n");
        assert_eq!(
            ex,
            vec![(vec![1, 2], vec![vec![3], vec![4]]), (vec![5], vec![])]
        );
    }
}
