//! The seed requests: built like the clients build them, every request
//! of the conformance corpus, a sim_request corpus, and the inputs a
//! previous coverage-guided run kept (`corpus/`).

use std::path::{Path, PathBuf};

use jool_sim::{
    requests::op,
    versions::Profile,
    wire::{family::Op, genl, hex, nla::Writer, nlmsg},
};

use super::{
    error::{fs, Error, Result},
    request::{
        add_operand, foreach_offset, get_family, map_type, message,
        replace_all, request, FAMILY_PLACEHOLDER, POOL6,
    },
};

/// Largest request the mutator builds or a seed may be.
pub const MAX_REQUEST: usize = 8192;

/// One seed request.
#[derive(Clone, Debug)]
pub struct Seed {
    /// Where it came from (`built:stats-siit-default`,
    /// `conformance:root.json:stats_siit`, `corpus:<hash>`).
    pub name: String,
    /// The datagram, with [`FAMILY_PLACEHOLDER`] as Jool's family id.
    pub bytes: Vec<u8>,
}

/// The requests a client of `p` sends, on both translators and a few
/// instance names: every op (the simulated ones with their attributes),
/// nlctrl lookups, pagination offsets.
pub fn built_seeds(p: &Profile, netns_tag: u32) -> Vec<Seed> {
    let mut out = Vec::new();
    let mut push = |name: String, bytes: Vec<u8>| {
        out.push(Seed { name: format!("built:{name}"), bytes });
    };
    push("getfamily-jool".into(), get_family("Jool", 1));
    let mut byid = Writer::new();
    byid.u16(genl::CTRL_ATTR_FAMILY_ID, FAMILY_PLACEHOLDER);
    push(
        "getfamily-by-id".into(),
        message(
            nlmsg::GENL_ID_CTRL,
            1,
            genl::CTRL_CMD_GETFAMILY,
            byid.as_slice(),
        ),
    );
    let globals = p.numbering.cmd(Op::GlobalForeach).unwrap_or_default();
    for (xt, xname) in [(1u8, "siit"), (2, "nat64")] {
        for name in [&b"default"[..], b"alt", b""] {
            let n = String::from_utf8_lossy(name).into_owned();
            for cmd in 0..p.op_count() {
                push(
                    format!("op{cmd}-{xname}-{n}"),
                    request(p, cmd, xt, name, &[]),
                );
            }
            let pool6 = add_operand(p, 4, Some(POOL6));
            push(
                format!("add-{xname}-{n}-pool6"),
                request(p, op::INSTANCE_ADD, xt, name, &pool6),
            );
            let ipt = add_operand(p, 8, None);
            push(
                format!("add-{xname}-{n}-iptables"),
                request(p, op::INSTANCE_ADD, xt, name, &ipt),
            );
        }
        for offset in [1u8, 30, 68, 69, 80, 255] {
            let mut w = Writer::new();
            w.u8(p.offset_u8_attr(), offset);
            push(
                format!("stats-{xname}-offset{offset}"),
                request(p, op::STATS_FOREACH, xt, b"default", w.as_slice()),
            );
            push(
                format!("globals-{xname}-offset{offset}"),
                request(p, globals, xt, b"default", w.as_slice()),
            );
        }
        push(
            format!("foreach-{xname}-offset-default"),
            request(
                p,
                op::INSTANCE_FOREACH,
                xt,
                b"",
                &foreach_offset(p, netns_tag, 4, b"default"),
            ),
        );
    }
    out
}

/// The `JNLAIE_NS` of the conformance capture (its boot's `struct net`
/// pointer), replaced by the kernel under test's.
const CAPTURE_NETNS_TAG: [u8; 4] = [0xc0, 0xdc, 0x09, 0xb3];

/// Parses `root.json`-like conformance files (format
/// `jool-netlink-conformance/1`): every request, family id and namespace
/// tag of the capture mapped to the placeholder and `netns_tag`.
pub fn conformance_seeds(
    file: &str,
    text: &str,
    netns_tag: u32,
) -> Result<Vec<Seed>> {
    let doc: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::Seeds(format!("{file}: {e}")))?;
    let fam = doc["jool_family_id"].as_u64().map(|f| f as u16);
    let reqs = doc["requests"]
        .as_array()
        .ok_or_else(|| Error::Seeds(format!("{file}: no requests")))?;
    let mut out = Vec::new();
    for r in reqs {
        let (Some(name), Some(hex)) =
            (r["name"].as_str(), r["request_hex"].as_str())
        else {
            continue;
        };
        let Ok(mut bytes) = hex::decode(hex.trim()) else { continue };
        if let Some(f) = fam {
            map_type(&mut bytes, f, FAMILY_PLACEHOLDER);
        }
        replace_all(&mut bytes, &CAPTURE_NETNS_TAG, &netns_tag.to_le_bytes());
        out.push(Seed { name: format!("conformance:{file}:{name}"), bytes });
    }
    Ok(out)
}

/// Every request of the `*.json` conformance files of `dir`, in file
/// name order.
pub fn conformance_dir(dir: &Path, netns_tag: u32) -> Result<Vec<Seed>> {
    let mut files: Vec<PathBuf> = fs::entries(dir)?
        .into_iter()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f)?;
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        out.extend(conformance_seeds(&name, &text, netns_tag)?);
    }
    Ok(out)
}

/// The files of `dir` as seeds named `PREFIX:file`, in name order, each
/// after skipping `skip` leading bytes; at most `max`, none longer than
/// [`MAX_REQUEST`].
pub fn dir_seeds(
    dir: &Path,
    prefix: &str,
    skip: usize,
    max: usize,
) -> Vec<Seed> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .take(max)
        .filter_map(|p| {
            let b = std::fs::read(&p).ok()?;
            let d = b.get(skip..)?;
            let name = p.file_name()?.to_string_lossy().into_owned();
            (d.len() <= MAX_REQUEST).then(|| Seed {
                name: format!("{prefix}:{name}"),
                bytes: d.to_vec(),
            })
        })
        .collect()
}

/// Reads the named seeds of a sim_request corpus folder (two setup
/// bytes, then the datagram; family id 0x20), at most `max` files.
pub fn sim_request_seeds(dir: &Path, max: usize) -> Vec<Seed> {
    dir_seeds(dir, "sim_request", 2, max)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_conformance_requests_are_seeds() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/conformance-4.1.9");
        let seeds = conformance_dir(&dir, 0x1234_5678).unwrap();
        assert!(seeds.len() > 90, "{}", seeds.len());
        assert!(seeds
            .iter()
            .any(|s| s.name == "conformance:root.json:stats_siit"));
    }

    #[test]
    fn test_conformance_family_and_tag_are_mapped() {
        // A capture whose family id was 0x23 and whose request carries
        // the capture's JNLAIE_NS.
        let doc = r#"{"jool_family_id": 35, "requests": [{"name": "x",
            "request_hex": "1800000023000100010000000000000000010000c0dc09b3"}]}"#;
        let s = conformance_seeds("t.json", doc, 0x1234_5678).unwrap();
        assert_eq!(
            s[0].bytes,
            [
                0x18, 0, 0, 0, // nlmsg_len
                0x20, 0, 1, 0, // the placeholder family, NLM_F_REQUEST
                1, 0, 0, 0, 0, 0, 0, 0, // seq, pid
                0, 1, 0, 0, // genl cmd 0, version 1
                0x78, 0x56, 0x34, 0x12, // the tag given
            ]
        );
    }
}
