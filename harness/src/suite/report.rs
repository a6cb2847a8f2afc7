//! Results of a run and their renderings: the summary table, JUnit XML
//! (quick-junit) and JSON.

use std::{io::Write, time::Duration};

use quick_junit::{
    NonSuccessKind, Report as JUnit, TestCase, TestCaseStatus, TestSuite,
};
use serde::{Deserialize, Serialize};

/// How a case ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "kebab-case")]
pub enum Outcome {
    /// Every step met its expectations.
    Passed,
    /// At least one did not.
    Failed(String),
    /// Not run (release, backend or client not targeted, or not possible).
    Skipped(String),
}

/// One step's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepResult {
    /// 1-based.
    pub index: usize,
    /// What the step was.
    pub description: String,
    /// The exact command run, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// stdout of a `run` step.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    /// stderr of a `run` step.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    /// Counter changes seen by a traffic step (name, before, after).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counter_changes: Vec<(String, u64, u64)>,
    /// The client's process id (its netlink port id), kernel mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Failures, each with its diff.
    pub failures: Vec<String>,
    /// Seconds.
    pub seconds: f64,
}

/// One case's result, for one client on one backend.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseResult {
    /// Suite name.
    pub suite: String,
    /// Case name.
    pub case: String,
    /// `jool-stats` or `real`.
    pub client: String,
    /// `sim` or `kernel`.
    pub backend: String,
    /// Release of the kernel side.
    pub release: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Steps run.
    pub steps: Vec<StepResult>,
    /// Seconds.
    pub seconds: f64,
}

impl CaseResult {
    /// `suite/case [client]`.
    pub fn id(&self) -> String {
        format!("{}/{} [{}]", self.suite, self.case, self.client)
    }
}

/// A whole run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// Every case result, in run order.
    pub cases: Vec<CaseResult>,
    /// Seconds the suites took.
    pub seconds: f64,
    /// Extra timings (VM boot, ...), in seconds, by name.
    #[serde(default)]
    pub timings: Vec<(String, f64)>,
}

/// Counts of a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

impl Report {
    /// Passed/failed/skipped counts.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.cases {
            match r.outcome {
                Outcome::Passed => c.passed += 1,
                Outcome::Failed(_) => c.failed += 1,
                Outcome::Skipped(_) => c.skipped += 1,
            }
        }
        c
    }

    /// Whether nothing failed.
    pub fn success(&self) -> bool {
        self.counts().failed == 0
    }

    /// Every failure with its steps' diffs.
    pub fn write_failures<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        for r in &self.cases {
            let Outcome::Failed(why) = &r.outcome else { continue };
            writeln!(
                w,
                "\n--- FAIL {} ({} {}): {why}",
                r.id(),
                r.backend,
                r.release
            )?;
            for s in r.steps.iter().filter(|s| !s.failures.is_empty()) {
                writeln!(w, "  step {}: {}", s.index, s.description)?;
                for f in &s.failures {
                    for line in f.lines() {
                        writeln!(w, "    {line}")?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The summary table: one row per suite and client.
    pub fn write_summary<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let mut rows: Vec<(String, String, String, Counts, f64)> = Vec::new();
        for r in &self.cases {
            let key = (r.suite.clone(), r.client.clone(), r.backend.clone());
            let i = match rows
                .iter()
                .position(|x| (x.0.clone(), x.1.clone(), x.2.clone()) == key)
            {
                Some(i) => i,
                None => {
                    rows.push((key.0, key.1, key.2, Counts::default(), 0.0));
                    rows.len() - 1
                }
            };
            let row = &mut rows[i];
            match r.outcome {
                Outcome::Passed => row.3.passed += 1,
                Outcome::Failed(_) => row.3.failed += 1,
                Outcome::Skipped(_) => row.3.skipped += 1,
            }
            row.4 += r.seconds;
        }
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(5).max(5);
        writeln!(
            w,
            "\n{:width$}  {:10}  {:7}  {:>6}  {:>6}  {:>7}  {:>8}",
            "suite",
            "client",
            "backend",
            "passed",
            "failed",
            "skipped",
            "seconds"
        )?;
        for (s, c, b, n, secs) in &rows {
            writeln!(
                w,
                "{s:width$}  {c:10}  {b:7}  {:>6}  {:>6}  {:>7}  {secs:>8.2}",
                n.passed, n.failed, n.skipped
            )?;
        }
        let t = self.counts();
        writeln!(
            w,
            "{:width$}  {:10}  {:7}  {:>6}  {:>6}  {:>7}  {:>8.2}",
            "total", "", "", t.passed, t.failed, t.skipped, self.seconds
        )?;
        for (name, secs) in &self.timings {
            writeln!(w, "{name}: {secs:.1} s")?;
        }
        let skipped: std::collections::BTreeSet<(&str, &str)> = self
            .cases
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Skipped(why) if !why.starts_with("not targeted") => {
                    Some((r.client.as_str(), why.as_str()))
                }
                _ => None,
            })
            .collect();
        for (client, why) in skipped {
            writeln!(w, "skipped [{client}]: {why}")?;
        }
        Ok(())
    }

    /// JUnit XML: one `testsuite` per suite, one `testcase` per case and
    /// client (`case [client]`), classname `backend.suite`.
    pub fn to_junit(&self, name: &str) -> String {
        let mut report = JUnit::new(name);
        let mut suites: Vec<TestSuite> = Vec::new();
        for r in &self.cases {
            let sname = format!("{}.{}", r.backend, r.suite);
            let i = match suites.iter().position(|s| s.name.as_str() == sname)
            {
                Some(i) => i,
                None => {
                    suites.push(TestSuite::new(sname.clone()));
                    suites.len() - 1
                }
            };
            let status = match &r.outcome {
                Outcome::Passed => TestCaseStatus::success(),
                Outcome::Skipped(why) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(why.clone());
                    s
                }
                Outcome::Failed(why) => {
                    let mut s =
                        TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(why.clone());
                    let mut text = Vec::new();
                    let only =
                        Self { cases: vec![r.clone()], ..Self::default() };
                    let _ = only.write_failures(&mut text);
                    s.set_description(
                        String::from_utf8_lossy(&text).into_owned(),
                    );
                    s
                }
            };
            let mut tc =
                TestCase::new(format!("{} [{}]", r.case, r.client), status);
            tc.set_classname(sname);
            tc.set_time(Duration::from_secs_f64(r.seconds));
            suites[i].add_test_case(tc);
        }
        report.add_test_suites(suites);
        report.set_time(Duration::from_secs_f64(self.seconds));
        report.to_string().unwrap_or_default()
    }
}
