//! `stats display` of every release in fixtures/versions, with every flag
//! combination, against a kernel of the same release: one insta snapshot
//! per release. Adding a fixture without its snapshot fails here.
//!
//! Counters: id `i` holds `i * 1001` except every third id (0, to exercise
//! the zero filter) and the last id (`u64::MAX`).

use jool_sim::versions::Profile;

use crate::util::{run_in_process, temp_file};

/// `--all`, `--explain`, `--csv`, `--no-headers`, in every combination.
const FLAGS: [&str; 4] = ["--all", "--explain", "--csv", "--no-headers"];

fn counters_for(p: &Profile) -> String {
    p.stats
        .iter()
        .map(|s| {
            let v = match s.id {
                id if id == p.max_id => u64::MAX,
                id if id % 3 == 0 => 0,
                id => u64::from(id) * 1001,
            };
            format!("{},{v}\n", s.name)
        })
        .collect()
}

/// Every flag combination's output, one section each.
fn display_all_flags(
    client: &str,
    kernel: &str,
    counters: &str,
    argv0: &str,
) -> String {
    let file = temp_file("counters.csv", counters);
    let mut text = String::new();
    for mask in 0..16u8 {
        let flags: Vec<&str> = (0..4)
            .filter(|b| mask & (1 << b) != 0)
            .map(|b| FLAGS[b])
            .collect();
        let mut args: Vec<String> =
            vec![argv0.into(), "--client-version".into(), client.into()];
        args.extend(
            ["--sim", "--kernel-version", kernel, "--counters"]
                .map(String::from),
        );
        args.push(file.display().to_string());
        args.extend(["stats", "display"].map(String::from));
        args.extend(flags.iter().map(|f| f.to_string()));
        let out = run_in_process(&args);
        text.push_str(&format!("### stats display {}\n", flags.join(" ")));
        text.push_str(&out.stdout);
        if !out.stderr.is_empty() {
            text.push_str(&format!("--- stderr\n{}", out.stderr));
        }
        text.push_str(&format!("--- exit {}\n", out.code));
    }
    let _ = std::fs::remove_file(&file);
    text
}

#[test]
fn test_every_release_every_flag_combination() {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for p in Profile::all() {
            let counters = counters_for(p);
            let nat64 =
                display_all_flags(&p.release, &p.release, &counters, "jool");
            let siit = display_all_flags(
                &p.release,
                &p.release,
                &counters,
                "jool_siit",
            );
            assert_eq!(
                nat64, siit,
                "{}: jool and jool_siit print the same stats",
                p.release
            );
            insta::assert_snapshot!(format!("display__{}", p.release), nat64);
        }
    });
}

#[test]
fn test_cross_release_labels() {
    // Client and kernel of different releases that the kernel accepts:
    // names printed from the client's table next to the kernel's ids.
    let pairs = [
        ("4.1.9", "4.1.12"),
        ("4.1.13", "4.1.12"),
        ("4.1.12", "4.1.13"),
        ("4.1.8", "4.1.9"),
        ("4.2.0-rc3", "4.1.15"),
    ];
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for (client, kernel) in pairs {
            let p = Profile::get(kernel).unwrap();
            let mut args: Vec<String> =
                vec!["jool".into(), "--client-version".into(), client.into()];
            let file = temp_file("counters.csv", &counters_for(p));
            args.extend(
                ["--sim", "--kernel-version", kernel, "--counters"]
                    .map(String::from),
            );
            args.push(file.display().to_string());
            args.extend(
                ["stats", "display", "--all", "--csv"].map(String::from),
            );
            let out = run_in_process(&args);
            let _ = std::fs::remove_file(&file);
            let text = format!(
                "{}--- stderr\n{}--- exit {}\n",
                out.stdout, out.stderr, out.code
            );
            insta::assert_snapshot!(
                format!("cross__client-{client}__kernel-{kernel}"),
                text
            );
        }
    });
}
