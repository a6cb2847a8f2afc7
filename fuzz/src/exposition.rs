//! `prometheus-parse` as the exposition parser of the `format` target
//! (also compiled into jool-harness's tests, which replay its corpus).

use jool_harness::fuzzing::{Exposition, Sample};

/// Parses a scrape with `prometheus-parse`.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape =
        prometheus_parse::Scrape::parse(lines).map_err(|e| e.to_string())?;
    let samples = scrape
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<(String, String)> =
                s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            labels.sort();
            let gauge = match s.value {
                prometheus_parse::Value::Gauge(v) => Some(v),
                _ => None,
            };
            Sample { name: s.metric, labels, gauge }
        })
        .collect();
    Ok(Exposition { samples, help: scrape.docs.into_iter().collect() })
}
