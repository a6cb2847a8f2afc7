//! `--counters FILE`: a bad file is an error that names the file and line,
//! never a panic, and nothing is displayed.

use crate::util::{jool_stats, temp_file};

fn display_with(text: &str) -> crate::util::Output {
    let f = temp_file("bad.csv", text);
    let args =
        ["--sim", "--counters", &f.display().to_string(), "stats", "display"]
            .map(String::from);
    let out = jool_stats("jool", &args);
    let _ = std::fs::remove_file(&f);
    out
}

#[test]
fn test_bad_value_names_the_line() {
    let out = display_with(
        "Stat,Value\nJSTAT_RECEIVED6,12\nJSTAT_RECEIVED4,twelve\n",
    );
    assert_eq!(out.code, 234);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("line 3"), "{}", out.stderr);
}

#[test]
fn test_unknown_stat_name_names_the_line() {
    let out = display_with("JSTAT_RECEIVED6,1\nJSTAT_NO_SUCH_THING,2\n");
    assert_eq!(out.code, 234);
    assert!(
        out.stderr.contains("line 2")
            && out.stderr.contains("JSTAT_NO_SUCH_THING"),
        "{}",
        out.stderr
    );
}

#[test]
fn test_missing_file() {
    let args =
        ["--sim", "--counters", "/nonexistent/x.csv", "stats", "display"]
            .map(String::from);
    let out = jool_stats("jool", &args);
    assert_eq!(out.code, 234);
    assert!(out.stderr.contains("/nonexistent/x.csv"), "{}", out.stderr);
}

#[test]
fn test_counters_file_with_explanations_is_accepted() {
    // What `stats display --csv --all --explain` prints is a counters file.
    let text = "Stat,Value,Explanation\nJSTAT_RECEIVED6,5,\"Total IPv6 packets received by the instance so far.\"\n";
    let out = display_with(text);
    assert_eq!(
        (out.stdout.as_str(), out.code),
        ("JSTAT_RECEIVED6: 5\n", 0),
        "{}",
        out.stderr
    );
}
