//! Boot check and build table of the release x suite matrix: reads the
//! cell folders given (from `scripts/vm-image`, usually through
//! `scripts/vm-matrix`), boots each built one and loads Jool
//! (`jool_harness::vm::cell::boot_check`; the result is kept in the cell
//! folder as `check.json` and reused unless `--recheck`), then writes
//! `OUT/builds.json` and the tables of `OUT/README.md` (below its
//! `<!-- table -->` line, the text above it is kept).
//!
//! ```sh
//! cargo run --release -p jool-harness --example vm_matrix -- \
//!     --out fixtures/matrix [--recheck] [--no-boot] [--timeout 120] CELL...
//! ```
//! Needs root and QEMU for the boots (as `run --backend vm`).

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context};
use jool_harness::vm::{
    builds::{self, BuildRow},
    cell::{self, BootCheck, Manifest},
    Accel, VmArgs,
};

struct Args {
    out: PathBuf,
    recheck: bool,
    boot: bool,
    timeout: u64,
    cells: Vec<PathBuf>,
}

fn parse() -> anyhow::Result<Args> {
    let mut a = Args {
        out: PathBuf::from("fixtures/matrix"),
        recheck: false,
        boot: true,
        timeout: 120,
        cells: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(w) = it.next() {
        match w.as_str() {
            "--out" => a.out = it.next().context("--out DIR")?.into(),
            "--recheck" => a.recheck = true,
            "--no-boot" => a.boot = false,
            "--timeout" => {
                a.timeout = it.next().context("--timeout SECS")?.parse()?
            }
            s if s.starts_with('-') => bail!("unknown option {s}"),
            _ => a.cells.push(w.into()),
        }
    }
    Ok(a)
}

/// The boot check of `dir`: kept from an earlier run, or booted now.
fn check(dir: &Path, args: &Args) -> anyhow::Result<Option<BootCheck>> {
    let kept = dir.join("check.json");
    if !args.recheck {
        if let Ok(text) = std::fs::read_to_string(&kept) {
            return Ok(Some(serde_json::from_str(&text)?));
        }
    }
    if !args.boot {
        return Ok(None);
    }
    let vm = VmArgs {
        image: Some(dir.to_owned()),
        timeout: args.timeout,
        accel: Accel::Auto,
        console: None,
        jobs: None,
        log_prefix: String::new(),
    };
    let c = cell::boot_check(dir, &vm)?;
    std::fs::write(&kept, serde_json::to_string_pretty(&c)? + "\n")?;
    Ok(Some(c))
}

fn run() -> anyhow::Result<()> {
    let args = parse()?;
    let mut rows = Vec::new();
    for dir in &args.cells {
        let m = Manifest::read(dir)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let c = if m.built() { check(dir, &args)? } else { None };
        if let Some(c) = &c {
            eprintln!(
                "vm_matrix: {name}: {} (init after {:.1} s)",
                c.verdict,
                c.boot_to_init.unwrap_or(f64::NAN)
            );
        }
        rows.push(BuildRow::new(&name, &m, c.as_ref()));
    }
    builds::sort_rows(&mut rows);
    std::fs::create_dir_all(&args.out)?;
    let json = args.out.join("builds.json");
    std::fs::write(&json, serde_json::to_string_pretty(&rows)? + "\n")?;
    let readme = args.out.join("README.md");
    let intro = std::fs::read_to_string(&readme).unwrap_or_default();
    let intro = match intro.find("<!-- table -->") {
        Some(i) => intro[..i].to_owned(),
        None => "# The release x suite matrix\n\n".to_owned(),
    };
    std::fs::write(
        &readme,
        format!("{intro}<!-- table -->\n\n{}", builds::markdown(&rows)),
    )?;
    eprintln!(
        "vm_matrix: {} cells: wrote {} and {}",
        rows.len(),
        json.display(),
        readme.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vm_matrix: {e:#}");
            ExitCode::from(2)
        }
    }
}
