//! What a campaign found: divergence classes, crashes, timings and
//! coverage, as JSON (`summary.json`) and as text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::discover::Discovery;

/// One class of divergence.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Class {
    /// `request kind/cmd | real answer | sim answer`.
    pub key: String,
    /// How many requests fell in it.
    pub count: u64,
    /// The known-divergence entry that explains it, if any.
    pub known: Option<String>,
    /// Index of the first request.
    pub first_exec: u64,
    /// Folders of the saved samples (relative to the output folder).
    pub samples: Vec<String>,
}

/// A request after which the kernel logged a crash.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Crash {
    /// Its index.
    pub exec: u64,
    /// The request, in hex.
    pub request_hex: String,
    /// The kernel log lines.
    pub lines: Vec<String>,
    /// Where it was saved.
    pub dir: Option<String>,
}

/// What a campaign did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// The kernel under test.
    pub real: String,
    /// The simulator.
    pub sim: String,
    /// PRNG seed.
    pub seed: u64,
    /// How many seed requests, by source.
    pub seeds: BTreeMap<String, usize>,
    /// What the kernel under test told.
    pub discovery: Discovery,
    /// Requests sent (to each side).
    pub execs: u64,
    /// Wall seconds of the loop.
    pub seconds: f64,
    /// Seconds in the kernel under test's exchanges (socket, sendmsg,
    /// recv, close) and kernel log reads.
    pub real_seconds: f64,
    /// Seconds in the simulator's exchanges.
    pub sim_seconds: f64,
    /// Resynchronisations.
    pub resyncs: u64,
    /// Divergence classes, most frequent first.
    pub classes: Vec<Class>,
    /// Crashes.
    pub crashes: Vec<Crash>,
    /// Why the loop stopped.
    pub stopped: String,
    /// Seconds writing the journal before each request.
    #[serde(default)]
    pub journal_seconds: f64,
    /// Coverage of the real module, when it is instrumented.
    #[serde(default)]
    pub cover: Option<CoverStats>,
    /// Seconds from the loop's start to the first crash.
    #[serde(default)]
    pub first_crash_seconds: Option<f64>,
    /// What the kernel under test runs: release, kernel, modules.
    #[serde(default)]
    pub target: BTreeMap<String, String>,
    /// Guests merged into this summary (0 or 1: one run); their
    /// `exec_per_sec` rates add up, their time split is summed.
    #[serde(default)]
    pub guests: usize,
    /// With several guests: the sum of their exec/s.
    #[serde(default)]
    pub total_exec_per_sec: f64,
}

/// Coverage of the real module during a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CoverStats {
    /// Distinct edges (pairs of consecutive PCs) reached.
    pub edges: usize,
    /// Distinct PCs (basic blocks) reached.
    pub pcs: usize,
    /// Inputs kept because they reached new edges (this run).
    pub kept: usize,
    /// Inputs of earlier runs loaded from the corpus.
    pub loaded: usize,
    /// Whether new edges decided which inputs were kept (`false`: blind
    /// mutation, coverage only measured).
    pub feedback: bool,
    /// Seconds reading and hashing the traces.
    pub seconds: f64,
}

/// What a running fuzzer last reported (`progress.json`, every progress
/// interval): what is known of a run whose process an oops killed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// The run's seed.
    pub seed: u64,
    /// Requests sent so far.
    pub execs: u64,
    /// Seconds since the loop started.
    pub seconds: f64,
    /// Of which in the real kernel's exchanges.
    pub real_seconds: f64,
    /// Of which in the simulator's.
    pub sim_seconds: f64,
    /// Of which writing the journal.
    pub journal_seconds: f64,
    /// Resynchronisations so far.
    pub resyncs: u64,
    /// The seed requests by origin.
    pub seeds: BTreeMap<String, usize>,
    /// Coverage so far, if measured.
    pub cover: Option<CoverStats>,
}

impl Summary {
    /// Requests per second (of all guests together when merged).
    pub fn exec_per_sec(&self) -> f64 {
        if self.guests > 1 {
            self.total_exec_per_sec
        } else if self.seconds > 0.0 {
            self.execs as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Divergences not explained by the known list.
    pub fn unknown(&self) -> impl Iterator<Item = &Class> {
        self.classes.iter().filter(|c| c.known.is_none())
    }

    /// Whether the run found nothing to fail on.
    pub fn success(&self) -> bool {
        self.crashes.is_empty() && self.unknown().next().is_none()
    }

    /// The summary as text.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "fuzz-kernel: {} vs {}", self.real, self.sim);
        let seeds: Vec<String> =
            self.seeds.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let _ = writeln!(
            s,
            "  seed {} ({} seed requests: {}); family id 0x{:x}, JNLAIE_NS {:08x}, char {}, xtables {}, strict nlctrl dumps {}",
            self.seed,
            self.seeds.values().sum::<usize>(),
            seeds.join(", "),
            self.discovery.family_id,
            self.discovery.netns_tag,
            if self.discovery.unsigned_char { "unsigned" } else { "signed" },
            if self.discovery.xtables { "yes" } else { "no" },
            if self.discovery.ctrl_dump_strict { "yes" } else { "no" },
        );
        let cover_secs = self.cover.as_ref().map_or(0.0, |c| c.seconds);
        let guests = if self.guests > 1 {
            format!(" of guest time in {} guests (summed)", self.guests)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  {} execs in {:.1} s{guests}: {:.0} exec/s (real side {:.1} s, sim {:.1} s, journal {:.1} s, coverage {:.1} s, mutation/compare {:.1} s); {} resyncs; stopped: {}",
            self.execs,
            self.seconds,
            self.exec_per_sec(),
            self.real_seconds,
            self.sim_seconds,
            self.journal_seconds,
            cover_secs,
            (self.seconds
                - self.real_seconds
                - self.sim_seconds
                - self.journal_seconds
                - cover_secs)
                .max(0.0),
            self.resyncs,
            self.stopped
        );
        if let Some(c) = &self.cover {
            let _ = writeln!(
                s,
                "  coverage: {} edges, {} PCs of Jool; {} inputs kept ({} loaded from the corpus); feedback {}",
                c.edges,
                c.pcs,
                c.kept,
                c.loaded,
                if c.feedback { "on" } else { "off" },
            );
        }
        if let Some(t) = self.first_crash_seconds {
            let _ = writeln!(s, "  first crash after {t:.1} s");
        }
        let total: u64 = self.classes.iter().map(|c| c.count).sum();
        let _ = writeln!(
            s,
            "  divergences: {total} in {} classes ({} unknown)",
            self.classes.len(),
            self.unknown().count()
        );
        for c in &self.classes {
            let _ = writeln!(
                s,
                "    {:>8}  {}  [{}] first #{}{}",
                c.count,
                c.key,
                c.known.as_deref().unwrap_or("UNKNOWN"),
                c.first_exec,
                c.samples
                    .first()
                    .map(|d| format!(", sample {d}"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(s, "  crashes: {}", self.crashes.len());
        for c in &self.crashes {
            let _ = writeln!(
                s,
                "    #{}: {}",
                c.exec,
                c.lines.first().map_or("", String::as_str)
            );
        }
        s
    }
}
