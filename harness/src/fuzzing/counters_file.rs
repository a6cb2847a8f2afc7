//! `counters_file`: any bytes as a counters file (`--counters FILE`).
//!
//! Oracles: reading never panics; an error names a line of the file (or
//! none, for I/O, size and encoding limits) and has a text; a file that
//! reads prints back with [`write_counters`] to a file that reads to the
//! same rows, and that the `csv` crate reads to the same names and values;
//! names map to ids of a release's table exactly when the table has them.

use jool_sim::{
    counters::{read, to_ids, write_counters, Counters, MAX_ROWS},
    versions::Profile,
};

/// Runs one input.
pub fn fuzz_counters_file(data: &[u8]) {
    let lines = data.split(|&b| b == b'\n').count();
    let c = match read(data) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "an error without text");
            assert!(
                e.line().is_none_or(|l| (1..=lines).contains(&l)),
                "line {:?} of {lines}",
                e.line()
            );
            return;
        }
    };
    let rows = c.rows();
    assert!(rows.len() <= MAX_ROWS);
    let at: Vec<usize> =
        (0..rows.len()).map(|i| c.line(i).expect("a line per row")).collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1])
            && at.last().is_none_or(|&l| l <= lines),
        "lines {at:?}"
    );

    let mut out = Vec::new();
    write_counters(rows, &mut out).expect("writing to a vector");
    let again = read(&out[..])
        .unwrap_or_else(|e| panic!("printed counters do not read: {e}"));
    assert_eq!(
        again,
        Counters::from_rows(rows.to_vec()),
        "counters print → read"
    );
    assert_eq!(csv_rows(&out), rows, "counters print → csv crate");

    // A fixed release keeps inputs meaningful to the fuzzer.
    let p = Profile::get("4.1.9").expect("4.1.9 is a release");
    match to_ids(&c, p) {
        Ok(ids) => {
            for ((name, value), (id, v)) in rows.iter().zip(&ids) {
                assert_eq!(
                    (p.stat(*id).map(|s| s.name.as_str()), v),
                    (Some(name.as_str()), value)
                );
            }
        }
        Err(e) => {
            let row = at
                .iter()
                .position(|&l| Some(l) == e.line())
                .expect("the error names a row's line");
            assert!(
                p.stats.iter().all(|s| s.name != rows[row].0),
                "{} is in the table",
                rows[row].0
            );
        }
    }
}

/// What the `csv` crate reads from a printed counters file.
fn csv_rows(text: &[u8]) -> Vec<(String, u64)> {
    let mut r = csv::ReaderBuilder::new().has_headers(true).from_reader(text);
    let headers = r.headers().expect("a header").clone();
    assert_eq!(headers.iter().collect::<Vec<_>>(), ["Stat", "Value"]);
    r.records()
        .map(|rec| {
            let rec = rec.expect("a CSV record");
            assert_eq!(rec.len(), 2, "{rec:?}");
            (rec[0].to_owned(), rec[1].parse().expect("a u64 value"))
        })
        .collect()
}
