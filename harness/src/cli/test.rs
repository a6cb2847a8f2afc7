//! `jool-stats` end to end, in-process.

use super::*;

fn run_args(args: &[&str]) -> (String, String, u8) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&args, &mut out, &mut err);
    (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap(), code)
}

#[test]
fn test_program_name_picks_the_translator() {
    use jool_sim::kernel::Xlator;
    use options::program_xlator;
    assert_eq!(program_xlator(b"/usr/bin/jool_siit"), Xlator::Siit);
    assert_eq!(program_xlator(b"jool"), Xlator::Nat64);
    assert_eq!(program_xlator(b"jool-stats"), Xlator::Nat64);
}

#[test]
fn test_sim_all_zero_prints_nothing() {
    let (out, err, code) =
        run_args(&["jool_siit", "--sim", "stats", "display"]);
    assert_eq!((out.as_str(), err.as_str(), code), ("", "", 0));
    let (out, _, _) =
        run_args(&["jool_siit", "--sim", "stats", "display", "--csv"]);
    assert_eq!(out, "Stat,Value\n");
}

#[test]
fn test_sim_no_module() {
    let (out, err, code) = run_args(&[
        "jool",
        "--sim",
        "--no-module",
        "stats",
        "display",
        "--csv",
    ]);
    assert_eq!(out, "", "no header when the module is missing");
    assert_eq!(err, "Error: Jool's socket family doesn't seem to exist.\n(This probably means Jool hasn't been modprobed.)\nNetlink error message: Object not found\n");
    assert_eq!(code, 253);
}

#[test]
fn test_sim_nonexistent_instance() {
    let (out, err, code) = run_args(&[
        "jool_siit",
        "--sim",
        "-i",
        "nonexistent",
        "stats",
        "display",
        "--csv",
    ]);
    assert_eq!(out, "Stat,Value\n", "the header comes before the request");
    assert_eq!(err, "Error: The kernel module returned error 3: This namespace lacks an instance named 'nonexistent'.\n");
    assert_eq!(code, 3);
}

#[test]
fn test_argument_errors() {
    let (_, err, code) = run_args(&["jool_siit", "stats"]);
    assert_eq!(
        (err.as_str(), code),
        ("More arguments expected.\nPossible follow-ups: display \n", 234)
    );
    let (_, err, code) =
        run_args(&["jool_siit", "stats", "display", "--bogus"]);
    assert_eq!(code, 64);
    assert!(err.starts_with("display: unrecognized option '--bogus'"));
    let (out, _, code) = run_args(&[
        "jool_siit",
        "--client-version",
        "4.1.9",
        "stats",
        "display",
        "--help",
    ]);
    let want = argp::help(b"display", &argp::DISPLAY, "jool@nic.mx");
    assert_eq!((out.as_bytes(), code), (&want[..], 0));
}

#[test]
fn test_unknown_client_version_is_a_usage_error() {
    let (_, err, code) = run_args(&[
        "jool",
        "--client-version",
        "9.9",
        "--sim",
        "stats",
        "display",
    ]);
    assert_eq!(code, 64);
    assert!(
        err.starts_with("jool: --client-version: unknown release '9.9'"),
        "{err}"
    );
    let (_, err2, code2) = run_args(&[
        "jool",
        "--sim",
        "--kernel-version",
        "9.9",
        "stats",
        "display",
    ]);
    assert_eq!(code2, 64, "{err2}");
}

#[test]
fn test_old_client_fails_on_newer_kernel_ids() {
    // 4.1.9 labels against a 4.1.12 kernel: id 69 printed as
    // JSTAT_UNKNOWN, then "unknown stat counter" on id 70; jool-stats
    // warns first, since it knows the kernel's release.
    let (out, err, code) = run_args(&[
        "jool",
        "--client-version",
        "4.1.9",
        "--sim",
        "--kernel-version",
        "4.1.12",
        "stats",
        "display",
        "--all",
        "--csv",
    ]);
    assert_eq!(code, 234);
    assert_eq!(err, "\
jool: warning: the kernel module is Jool 4.1.12 (--sim), but --client-version 4.1.9 labels its counters with 4.1.9's table:
  id 69: shown as JSTAT_UNKNOWN; the kernel means JSTAT_JOOLD_EMPTY
  ids 70..84: unknown to 4.1.9; the display fails at id 70
jool: --client-version auto (the default) labels with the kernel's own table.
Error: The kernel module returned an unknown stat counter.
");
    assert!(out.ends_with("JSTAT_UNKNOWN,0\n"), "{out}");
    assert_eq!(out.lines().count(), 1 + 69);
}

#[test]
fn test_default_labels_follow_the_sim_kernel() {
    let (out, err, code) = run_args(&[
        "jool",
        "--sim",
        "--kernel-version",
        "4.1.12",
        "stats",
        "display",
        "--all",
        "--csv",
    ]);
    assert_eq!((err.as_str(), code), ("", 0));
    assert_eq!(out.lines().count(), 1 + 84);
    assert!(
        out.contains("\nJSTAT_JOOLD_EMPTY,0\n")
            && out.ends_with("\nJSTAT_UNKNOWN,0\n"),
        "{out}"
    );
}

#[test]
fn test_strict_refuses_mislabels() {
    let (out, err, code) = run_args(&[
        "jool",
        "--strict",
        "--client-version",
        "4.1.9",
        "--sim",
        "--kernel-version",
        "4.1.12",
        "stats",
        "display",
        "--csv",
    ]);
    assert_eq!((out.as_str(), code), ("", labels::EXIT_MISMATCH));
    assert!(
        err.starts_with(
            "jool: error: the kernel module is Jool 4.1.12 (--sim)"
        ),
        "{err}"
    );
    let (_, err, code) = run_args(&[
        "jool",
        "--strict",
        "--sim",
        "--kernel-version",
        "4.1.12",
        "stats",
        "display",
    ]);
    assert_eq!(
        (err.as_str(), code),
        ("", 0),
        "auto labels match: nothing to refuse"
    );
}

#[test]
fn test_json_and_prometheus() {
    let (out, _, code) = run_args(&[
        "jool", "--sim", "--format", "json", "stats", "display", "--all",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stats"].as_array().unwrap().len(), 69);
    let (out, _, code) = run_args(&[
        "jool",
        "--sim",
        "--format",
        "prometheus",
        "stats",
        "display",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("# TYPE jool_received6 gauge\n"), "{out}");
}

mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::transport::Transport;

    /// A socket to nowhere: every send fails (no kernel).
    struct Nowhere;

    impl Transport for Nowhere {
        fn send(&mut self, _: &[u8]) -> io::Result<()> {
            Err(io::Error::from_raw_os_error(2))
        }

        fn recv(&mut self) -> io::Result<Vec<u8>> {
            Err(io::ErrorKind::WouldBlock.into())
        }

        fn port_id(&self) -> u32 {
            1
        }
    }

    /// Words made of what command lines are made of (no `H`: argp's
    /// `--HANG` sleeps an hour, as the real client's does).
    fn word() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::sample::select(vec![
                "stats",
                "display",
                "-i",
                "-f",
                "--",
                "-",
                "",
                "--all",
                "-ae",
                "--csv",
                "--help",
                "--usage",
                "-V",
                "-?",
                "--program-name=x",
                "--instance=",
                "--file",
                "--client-version",
                "4.1.13",
                "--sim",
                "s",
                "d",
                "--=",
                "-x",
                "--no-h",
                "instance",
                "add",
            ])
            .prop_map(|w| w.as_bytes().to_vec()),
            prop::collection::vec(
                any::<u8>().prop_filter("no H", |b| *b != b'H'),
                0..6
            ),
        ]
    }

    proptest! {
        #[test]
        fn prop_any_command_line_ends_cleanly(
            words in prop::collection::vec(word(), 0..7),
            siit in any::<bool>(),
        ) {
            let mut args = vec![if siit { b"jool_siit".to_vec() } else { b"jool".to_vec() }];
            args.extend(words);
            let ctx = Context {
                connector: Connector::Transport(Box::new(Nowhere)),
                client: Profile::get("4.1.9"),
            };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let o = run_with(&args, ctx, &mut out, &mut err);
            // Something says what happened, unless it succeeded.
            prop_assert!(o == Outcome::Exit(0) || !err.is_empty() || o == Outcome::Signal(exit::SIGSEGV), "{o:?}");
        }

        #[test]
        fn prop_any_json_file_ends_cleanly(text in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = file::iname_in(&text);
        }

        #[test]
        fn prop_json_like_text_ends_cleanly(
            text in "[{}\\[\\]\\\\\"a-z0-9:,. eEu+-]{0,80}"
        ) {
            let _ = file::iname_in(text.as_bytes());
        }

        #[test]
        fn prop_argp_wraps_any_name(
            // argv holds C strings: no NUL.
            name in prop::collection::vec(1u8.., 0..400)
        ) {
            // (Not always first: glibc's stream may emit the wrap margin's
            // blanks before the text it still buffers, as jool-stats does.)
            let u = argp::usage(&name, &argp::DISPLAY);
            prop_assert!(u.windows(6).any(|w| w == b"Usage:"));
            let h = argp::help(&name, &argp::DISPLAY, "x");
            prop_assert!(h.ends_with(b"Report bugs to x.\n"));
            let _ = argp::see(&name);
        }
    }
}
