//! The differential loop: the same mutated request to the kernel under
//! test and to the simulator, replies compared with seq and port id
//! masked, divergences deduplicated by class, crashes from the kernel
//! log, both sides resynchronised after a divergence that may have
//! changed state (and every `resync_every` requests).
//!
//! With an instrumented module, each request's trace is read after it
//! ([`cover`]): a request that reaches new edges joins the corpus the
//! mutator draws from (libFuzzer's rule), and is saved under `corpus/`.

use std::{
    collections::{BTreeMap, VecDeque},
    path::PathBuf,
    time::{Duration, Instant},
};

use jool_sim::{
    requests::op,
    versions::Profile,
    wire::{genl, hex, nlmsg},
};

use super::{
    answer::{answer_kind, changes_instances, request_kind, same},
    artifacts::{corpus_name, Saver},
    cover::{Coverage, Loc},
    discover::{base_requests, check_requests, Discovery},
    journal::{Entry, Journal, Marker},
    known::{self, Case},
    mutate::{mutate, Dict, Pool},
    request::{
        self, cmd_of, kind_of, map_type, message_offsets, replace_all,
        FAMILY_PLACEHOLDER, TAG_PLACEHOLDER,
    },
    rng::Rng,
    seeds::Seed,
    summary::{Class, CoverStats, Crash, Progress, Summary},
    target::{Exchange, KernelUnderTest},
};

/// How long and how the loop runs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// PRNG seed.
    pub seed: u64,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many requests.
    pub max_execs: Option<u64>,
    /// Resynchronise both sides every this many requests (0: never).
    pub resync_every: u64,
    /// A progress line on stderr this often (None: silent).
    pub progress: Option<Duration>,
    /// Where divergences, crashes, kept inputs and the summary are saved
    /// (None: not saved).
    pub out: Option<PathBuf>,
    /// Where every request is written before it is sent ([`Journal`]),
    /// in batches of [`JOURNAL_BATCH`].
    pub journal: Option<PathBuf>,
    /// Where the index of the request being sent is written ([`Marker`]).
    pub marker: Option<PathBuf>,
    /// Jool commands never sent (known crashers), replaced by
    /// `STATS_FOREACH`.
    pub avoid_cmds: Vec<u8>,
    /// Keep the inputs that reach new edges and mutate them (needs an
    /// instrumented module; without one it changes nothing).
    pub feedback: bool,
    /// Stop when this file appears (another guest found a crash).
    pub stop_file: Option<PathBuf>,
}

/// Requests generated, journaled (one write) and then sent, at a time.
pub const JOURNAL_BATCH: usize = 512;

/// The loop's state.
pub struct Engine<'a> {
    real: &'a mut dyn KernelUnderTest,
    sim: &'a mut dyn KernelUnderTest,
    profile: &'static Profile,
    seeds: Vec<Seed>,
    corpus: Vec<Seed>,
    dict: Dict,
    rng: Rng,
    opts: Options,
    summary: Summary,
    classes: BTreeMap<String, Class>,
    saver: Saver,
    journal: Option<Journal>,
    marker: Option<Marker>,
    /// Requests journaled and not sent yet.
    batch: VecDeque<Entry>,
    coverage: Option<Coverage>,
    trace: Vec<Loc>,
    kept: usize,
}

impl<'a> Engine<'a> {
    /// A loop between `real` (configured as `d` says) and `sim`, for
    /// requests of `profile`'s clients, mutating `seeds` and the inputs of
    /// an earlier run (`corpus`).
    pub fn new(
        real: &'a mut dyn KernelUnderTest,
        sim: &'a mut dyn KernelUnderTest,
        profile: &'static Profile,
        d: Discovery,
        (seeds, corpus): (Vec<Seed>, Vec<Seed>),
        opts: Options,
    ) -> Self {
        let mut by_source = BTreeMap::new();
        for s in seeds.iter().chain(&corpus) {
            let src = s.name.split_once(':').map_or("", |(a, _)| a);
            *by_source.entry(src.to_owned()).or_insert(0) += 1;
        }
        let summary = Summary {
            real: real.name(),
            sim: sim.name(),
            seed: opts.seed,
            seeds: by_source,
            discovery: d.clone(),
            ..Summary::default()
        };
        let mut trace = Vec::new();
        let coverage = real.take_trace(&mut trace).then(Coverage::default);
        let saver = Saver::new(opts.out.clone(), opts.seed, &summary);
        saver.discovery(&d);
        Self {
            dict: Dict::new(profile, d.netns_tag),
            rng: Rng::new(opts.seed),
            saver,
            journal: opts
                .journal
                .as_deref()
                .and_then(|p| Journal::create(p).ok()),
            marker: opts
                .marker
                .as_deref()
                .and_then(|p| Marker::create(p).ok()),
            batch: VecDeque::new(),
            real,
            sim,
            profile,
            summary,
            seeds,
            corpus,
            opts,
            classes: BTreeMap::new(),
            coverage,
            trace,
            kept: 0,
        }
    }

    /// Maps the placeholder (and other families' ids) to Jool's id, and
    /// replaces avoided commands by STATS_FOREACH.
    fn prepare(&self, mut d: Vec<u8>) -> Vec<u8> {
        let fam = self.summary.discovery.family_id;
        map_type(&mut d, FAMILY_PLACEHOLDER, fam);
        for f in &self.summary.discovery.foreign {
            map_type(&mut d, *f, fam);
        }
        if !self.opts.avoid_cmds.is_empty() {
            for (off, len) in message_offsets(&d) {
                let m = &mut d[off..off + len];
                let avoided = cmd_of(m)
                    .is_some_and(|c| self.opts.avoid_cmds.contains(&c));
                if kind_of(m) == Some(fam) && avoided {
                    genl::Packet::new_unchecked(&mut m[nlmsg::HEADER_LEN..])
                        .set_cmd(op::STATS_FOREACH);
                }
            }
        }
        d
    }

    fn both(&mut self, d: &[u8], ext_ack: bool) -> (Exchange, Exchange) {
        let t = Instant::now();
        let r = self.real.exchange(d, ext_ack);
        let t2 = Instant::now();
        let s = self.sim.exchange(d, ext_ack);
        self.summary.real_seconds += (t2 - t).as_secs_f64();
        self.summary.sim_seconds += t2.elapsed().as_secs_f64();
        (r, s)
    }

    /// Puts both sides in the base state and checks that they agree.
    fn resync(&mut self) -> Result<(), String> {
        self.summary.resyncs += 1;
        for r in base_requests(self.profile) {
            let r = self.prepare(r);
            self.both(&r, false);
        }
        if let Some(j) = &mut self.journal {
            // The rest of the batch follows the base state now.
            let t = Instant::now();
            let _ = j.restart(self.batch.make_contiguous());
            self.summary.journal_seconds += t.elapsed().as_secs_f64();
        }
        let fam = self.summary.discovery.family_id;
        for r in check_requests(self.profile) {
            let r = self.prepare(r);
            let (a, b) = self.both(&r, false);
            let case = Case { request: &r, real: &a, sim: &b };
            if !same(&a, &b) && known::explain(&case, fam).is_none() {
                return Err(format!(
                    "after resynchronising, {} differs:\n  real {:?}\n  sim  {:?}",
                    request_kind(&r, fam),
                    a.replies.iter().map(|x| hex::encode(x)).collect::<Vec<_>>(),
                    b.replies.iter().map(|x| hex::encode(x)).collect::<Vec<_>>(),
                ));
            }
        }
        self.take_trace(None);
        Ok(())
    }

    /// [`Self::resync`]; a failure is recorded as a class. Whether it
    /// worked.
    fn resync_or_record(&mut self, exec: u64) -> bool {
        match self.resync() {
            Ok(()) => true,
            Err(e) => {
                self.record(exec, format!("resync | {e}"), None, None);
                false
            }
        }
    }

    /// INSTANCE_FOREACH of both translators on both sides; the first
    /// pair of answers that differs other than in a known way (order).
    fn state_differs(&mut self) -> Option<(Vec<u8>, Exchange, Exchange)> {
        let fam = self.summary.discovery.family_id;
        for xt in [1, 2] {
            let q = request::request(
                self.profile,
                op::INSTANCE_FOREACH,
                xt,
                b"",
                &[],
            );
            let q = self.prepare(q);
            let (a, b) = self.both(&q, false);
            let case = Case { request: &q, real: &a, sim: &b };
            if !same(&a, &b) && known::explain(&case, fam).is_none() {
                return Some((q, a, b));
            }
        }
        None
    }

    /// Reads the real side's trace since the last call; with `kept`, the
    /// request that produced it joins the corpus if it reached new edges.
    fn take_trace(&mut self, kept: Option<&[u8]>) {
        let Some(cov) = &mut self.coverage else { return };
        let t = Instant::now();
        self.trace.clear();
        self.real.take_trace(&mut self.trace);
        let new = cov.add(&self.trace);
        if let (Some(d), true) = (kept, new > 0 && self.opts.feedback) {
            let mut bytes = d.to_vec();
            let disc = &self.summary.discovery;
            map_type(&mut bytes, disc.family_id, FAMILY_PLACEHOLDER);
            replace_all(
                &mut bytes,
                &disc.netns_tag.to_le_bytes(),
                &TAG_PLACEHOLDER,
            );
            let name = corpus_name(&bytes);
            self.saver.corpus(&name, &bytes);
            self.corpus.push(Seed { name: format!("corpus:{name}"), bytes });
            self.kept += 1;
        }
        self.summary.cover.get_or_insert_with(CoverStats::default).seconds +=
            t.elapsed().as_secs_f64();
    }

    /// The next request to send: from the batch, refilled (and
    /// journaled in one write) when empty. Each is a mutation of a seed
    /// or of a kept input ([`Pool`]).
    fn next_request(&mut self, exec: u64) -> Entry {
        if self.batch.is_empty() {
            for i in 0..JOURNAL_BATCH as u64 {
                let pool = Pool { seeds: &self.seeds, kept: &self.corpus };
                let d = mutate(&mut self.rng, &pool, &self.dict);
                let request = self.prepare(d);
                let ext_ack = self.rng.chance(1, 4);
                self.batch.push_back(Entry {
                    exec: exec + i,
                    ext_ack,
                    request,
                });
            }
            if let Some(j) = &mut self.journal {
                let t = Instant::now();
                let _ = j.append_all(self.batch.make_contiguous());
                self.summary.journal_seconds += t.elapsed().as_secs_f64();
            }
        }
        // Entries are numbered as the loop counts: one per step.
        self.batch.pop_front().unwrap_or(Entry {
            exec,
            ext_ack: false,
            request: Vec::new(),
        })
    }

    /// Whether the loop must stop now, and why.
    fn must_stop(&self, exec: u64, start: Instant) -> Option<&'static str> {
        if self.opts.max_execs.is_some_and(|m| exec >= m) {
            return Some("max execs");
        }
        if self.opts.duration.is_some_and(|d| start.elapsed() >= d) {
            return Some("time");
        }
        None
    }

    /// Runs the loop; returns what it found.
    pub fn run(mut self) -> Summary {
        if self.opts.out.is_some() {
            // The host dates a guest's panic from this line (guest.log).
            let up =
                std::fs::read_to_string("/proc/uptime").unwrap_or_default();
            eprintln!(
                "fuzz-kernel: fuzz loop starts at uptime {}",
                up.split(' ').next().unwrap_or("?")
            );
        }
        let start = Instant::now();
        let mut last_progress = Instant::now();
        if let Err(e) = self.resync() {
            self.record(0, format!("initial state | {e}"), None, None);
            self.summary.stopped = "the initial states differ".into();
            return self.finish(start);
        }
        let mut exec = 0u64;
        self.summary.stopped = loop {
            if let Some(why) = self.must_stop(exec, start) {
                break why.into();
            }
            let resync_due = self.opts.resync_every > 0
                && exec > 0
                && exec % self.opts.resync_every == 0;
            if resync_due && !self.resync_or_record(exec) {
                break "resynchronisation failed".into();
            }
            match self.step(exec + 1, start) {
                Ok(()) => exec += 1,
                Err(why) => {
                    exec += 1;
                    break why;
                }
            }
            if exec.is_power_of_two() && exec < 4096 {
                // Early on, where a seed may oops: what a killed process
                // leaves (a dozen small writes).
                self.save_progress(exec, start);
            }
            if self.opts.progress.is_some_and(|p| last_progress.elapsed() >= p)
            {
                last_progress = Instant::now();
                self.progress(exec, start);
                if self.opts.stop_file.as_ref().is_some_and(|f| f.exists()) {
                    break "stopped (another guest crashed)".into();
                }
            }
        };
        self.summary.execs = exec;
        self.finish(start)
    }

    /// One request to both sides; `Err(why)` ends the loop.
    fn step(&mut self, exec: u64, start: Instant) -> Result<(), String> {
        let fam = self.summary.discovery.family_id;
        let Entry { request: d, ext_ack, .. } = self.next_request(exec);
        if let Some(m) = &self.marker {
            let t = Instant::now();
            let _ = m.set(exec);
            self.summary.journal_seconds += t.elapsed().as_secs_f64();
        }
        let (r, s) = self.both(&d, ext_ack);
        self.take_trace(Some(&d));
        let t = Instant::now();
        let crash = self.real.crash_lines();
        self.summary.real_seconds += t.elapsed().as_secs_f64();
        if !crash.is_empty() {
            let dir =
                self.saver.save("crash", exec, &d, ext_ack, (&r, &s), &crash);
            self.summary.first_crash_seconds =
                Some(start.elapsed().as_secs_f64());
            self.summary.crashes.push(Crash {
                exec,
                request_hex: hex::encode(&d),
                lines: crash,
                dir,
            });
            return Err("kernel crash".into());
        }
        if !same(&r, &s) {
            let case = Case { request: &d, real: &r, sim: &s };
            let known = known::explain(&case, fam);
            // A known explanation is part of the class: the same answers
            // may be a known reorder once and a real divergence another
            // time.
            let key = format!(
                "{} | real {} | sim {}{}",
                request_kind(&d, fam),
                answer_kind(&r, fam),
                answer_kind(&s, fam),
                known.map_or(String::new(), |k| format!(" @{}", k.id))
            );
            let resync = known.is_none_or(|k| {
                k.may_change_state
                    && (k.id != "sim-op-not-emulated"
                        || known::not_emulated_changes_state(
                            &d,
                            fam,
                            self.profile.op_count(),
                        ))
            });
            self.record(
                exec,
                key,
                known.map(|k| k.id),
                Some((&d, ext_ack, &r, &s)),
            );
            if resync && !self.resync_or_record(exec) {
                return Err("resynchronisation failed".into());
            }
        } else if changes_instances(&d, fam) {
            // Same answers, but did both change the instances alike?
            if let Some((_, a, b)) = self.state_differs() {
                let key = format!(
                    "state after {} | foreach real {} | sim {}",
                    request_kind(&d, fam),
                    answer_kind(&a, fam),
                    answer_kind(&b, fam)
                );
                self.record(exec, key, None, Some((&d, ext_ack, &a, &b)));
                if !self.resync_or_record(exec) {
                    return Err("resynchronisation failed".into());
                }
            }
            self.take_trace(None);
        }
        Ok(())
    }

    fn progress(&self, exec: u64, start: Instant) {
        let secs = start.elapsed().as_secs_f64();
        let div: u64 = self.classes.values().map(|c| c.count).sum();
        let unknown = self.classes.values().filter(|c| c.known.is_none());
        let cover = self.coverage.as_ref().map_or(String::new(), |c| {
            format!(
                ", {} edges, {} PCs, corpus {}",
                c.edges.len(),
                c.locs.len(),
                self.corpus.len()
            )
        });
        eprintln!(
            "fuzz-kernel: {exec} execs, {:.0} exec/s, {div} divergences in {} classes ({} unknown), {} crashes{cover}, {:.0} s",
            exec as f64 / secs.max(1e-9),
            self.classes.len(),
            unknown.count(),
            self.summary.crashes.len(),
            secs
        );
        self.save_progress(exec, start);
    }

    /// `progress.json` ([`Progress`]).
    fn save_progress(&self, exec: u64, start: Instant) {
        self.saver.progress(&Progress {
            seed: self.opts.seed,
            execs: exec,
            seconds: start.elapsed().as_secs_f64(),
            real_seconds: self.summary.real_seconds,
            sim_seconds: self.summary.sim_seconds,
            journal_seconds: self.summary.journal_seconds,
            resyncs: self.summary.resyncs,
            seeds: self.summary.seeds.clone(),
            cover: self.cover_stats(),
        });
    }

    /// The coverage so far, if measured.
    fn cover_stats(&self) -> Option<CoverStats> {
        let c = self.coverage.as_ref()?;
        let mut stats = self.summary.cover.clone().unwrap_or_default();
        stats.edges = c.edges.len();
        stats.pcs = c.locs.len();
        stats.kept = self.kept;
        stats.loaded = self.summary.seeds.get("corpus").copied().unwrap_or(0);
        stats.feedback = self.opts.feedback;
        Some(stats)
    }

    /// Counts a divergence in its class (a new class past 500 counts as
    /// `other`), saving up to three samples of an unknown class, one of a
    /// known one.
    #[allow(clippy::type_complexity)]
    fn record(
        &mut self,
        exec: u64,
        key: String,
        known: Option<&'static str>,
        sample: Option<(&[u8], bool, &Exchange, &Exchange)>,
    ) {
        const MAX_CLASSES: usize = 500;
        // Samples of a known class serve as examples only; each costs a
        // few 9p round trips (--all-cmds meets hundreds of classes).
        let samples = if known.is_some() { 1 } else { 3 };
        let key = if self.classes.len() >= MAX_CLASSES
            && !self.classes.contains_key(&key)
        {
            "other (too many classes)".to_owned()
        } else {
            key
        };
        let c = self.classes.entry(key.clone()).or_insert_with(|| Class {
            key: key.clone(),
            count: 0,
            known: known.map(str::to_owned),
            first_exec: exec,
            samples: Vec::new(),
        });
        c.count += 1;
        let Some((d, ext_ack, r, s)) = sample else { return };
        if c.samples.len() >= samples {
            return;
        }
        let slug: Vec<&str> = key
            .split(|ch: char| !ch.is_ascii_alphanumeric())
            .filter(|p| !p.is_empty())
            .collect();
        let name = format!("divergence/{}", slug.join("-"));
        if let Some(dir) =
            self.saver.save(&name, exec, d, ext_ack, (r, s), &[])
        {
            c.samples.push(dir);
        }
    }

    fn finish(mut self, start: Instant) -> Summary {
        self.summary.seconds = start.elapsed().as_secs_f64();
        self.summary.cover = self.cover_stats();
        let mut classes: Vec<Class> =
            std::mem::take(&mut self.classes).into_values().collect();
        classes.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
        self.summary.classes = classes;
        if let Some(c) = &self.coverage {
            self.saver.locs(&c.locs);
            self.saver.edges(&c.edges);
        }
        self.saver.summary(&self.summary);
        self.summary
    }
}
