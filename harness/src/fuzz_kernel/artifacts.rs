//! What a run leaves in its output folder: divergence and crash samples
//! (`request.bin`, `request.hex`, `real.hex`, `sim.hex`, `info.txt`),
//! kept inputs (`corpus/<hash>`), the locations reached (`locs.txt`),
//! `progress.json` and the summary (`summary.json`, `summary.txt`).

use std::{collections::HashSet, path::PathBuf};

use jool_sim::wire::hex;

use super::{
    cover::{unloc, Loc},
    summary::{Progress, Summary},
    target::Exchange,
};

/// A stable name for a kept input: FNV-1a 64 of its bytes, in hex.
pub fn corpus_name(b: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in b {
        h = (h ^ u64::from(*x)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Writes a run's files (nothing when there is no output folder).
#[derive(Clone, Debug)]
pub struct Saver {
    out: Option<PathBuf>,
    seed: u64,
    real: String,
    sim: String,
    family_id: u16,
}

/// The text of one side's answer: `send errno E`, the reply datagrams in
/// hex, `recv errno E`.
pub fn show(ex: &Exchange) -> String {
    let mut t = String::new();
    if let Err(e) = ex.sent {
        t.push_str(&format!("send errno {e}\n"));
    }
    for x in &ex.replies {
        t.push_str(&hex::encode(x));
        t.push('\n');
    }
    if let Some(e) = ex.recv_error {
        t.push_str(&format!("recv errno {e}\n"));
    }
    t
}

impl Saver {
    /// A saver into `out` for the run `summary` starts.
    pub fn new(out: Option<PathBuf>, seed: u64, summary: &Summary) -> Self {
        if let Some(o) = &out {
            let _ = std::fs::create_dir_all(o);
        }
        Self {
            out,
            seed,
            real: summary.real.clone(),
            sim: summary.sim.clone(),
            family_id: summary.discovery.family_id,
        }
    }

    /// Saves a sample under `NAME/EXEC/`; returns that relative folder.
    pub fn save(
        &self,
        name: &str,
        exec: u64,
        d: &[u8],
        ext_ack: bool,
        (r, s): (&Exchange, &Exchange),
        lines: &[String],
    ) -> Option<String> {
        let out = self.out.as_ref()?;
        let rel = format!("{name}/{exec}");
        let dir = out.join(&rel);
        std::fs::create_dir_all(&dir).ok()?;
        let info = format!(
            "exec {exec}\nseed {}\next_ack {ext_ack}\nreal {}\nsim {}\nfamily_id 0x{:x}\n{}",
            self.seed,
            self.real,
            self.sim,
            self.family_id,
            lines.join("\n")
        );
        let files = [
            ("request.bin", d.to_vec()),
            ("request.hex", format!("{}\n", hex::encode(d)).into_bytes()),
            ("real.hex", show(r).into_bytes()),
            ("sim.hex", show(s).into_bytes()),
            ("info.txt", info.into_bytes()),
        ];
        for (f, bytes) in files {
            std::fs::write(dir.join(f), bytes).ok()?;
        }
        Some(rel)
    }

    /// Saves a kept input as `corpus/NAME`.
    pub fn corpus(&self, name: &str, bytes: &[u8]) {
        let Some(out) = &self.out else { return };
        let dir = out.join("corpus");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(name), bytes);
    }

    /// `progress.json`: the seed, the requests sent so far, the coverage.
    pub fn progress(&self, p: &Progress) {
        let Some(out) = &self.out else { return };
        if let Ok(text) = serde_json::to_string(p) {
            let _ = std::fs::write(out.join("progress.json"), text + "\n");
        }
    }

    /// `locs.txt`: every location reached, `MODULE OFFSET` (hex), sorted.
    pub fn locs(&self, locs: &HashSet<Loc>) {
        let Some(out) = &self.out else { return };
        let mut v: Vec<Loc> = locs.iter().copied().collect();
        v.sort_unstable();
        let text: String = v
            .into_iter()
            .map(|l| {
                let (m, off) = unloc(l);
                format!("{m} {off:x}\n")
            })
            .collect();
        let _ = std::fs::write(out.join("locs.txt"), text);
    }

    /// `edges.txt`: every edge hash reached, in hex, sorted.
    pub fn edges(&self, edges: &HashSet<u64>) {
        let Some(out) = &self.out else { return };
        let mut v: Vec<u64> = edges.iter().copied().collect();
        v.sort_unstable();
        let text: String =
            v.into_iter().map(|e| format!("{e:016x}\n")).collect();
        let _ = std::fs::write(out.join("edges.txt"), text);
    }

    /// `discovery.json`: what the kernel under test told (family id,
    /// namespace tag: the crash folders map requests back with it).
    pub fn discovery(&self, d: &super::discover::Discovery) {
        let Some(out) = &self.out else { return };
        if let Ok(text) = serde_json::to_string_pretty(d) {
            let _ = std::fs::write(out.join("discovery.json"), text + "\n");
        }
    }

    /// `summary.json` and `summary.txt`.
    pub fn summary(&self, s: &Summary) {
        let Some(out) = &self.out else { return };
        if let Ok(text) = serde_json::to_string_pretty(s) {
            let _ = std::fs::write(out.join("summary.json"), text + "\n");
        }
        let _ = std::fs::write(out.join("summary.txt"), s.render());
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_corpus_name_is_stable() {
        // FNV-1a 64 of the empty input and of "a" (published vectors).
        assert_eq!(corpus_name(b""), "cbf29ce484222325");
        assert_eq!(corpus_name(b"a"), "af63dc4c8601ec8c");
    }
}
