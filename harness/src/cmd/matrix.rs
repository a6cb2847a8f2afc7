//! `jool-harness matrix ...`: the conformance probe of a release on the
//! real module (in a guest, or on this machine), and its check against
//! the simulator ([`crate::matrix::probe`]).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use jool_sim::kernel::Build;

use super::VmArgs;
use crate::{
    compat,
    matrix::{builds, probe},
    vm,
};

/// `jool-harness matrix`.
#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    #[command(subcommand)]
    cmd: MatrixCmd,
}

#[derive(Debug, clap::Subcommand)]
enum MatrixCmd {
    /// Probe the real module of `--release` with the crafted requests
    /// (every run: before modprobe, SIIT only, root, uid 65534, user
    /// namespace root, empty network namespace), in its guest or on this
    /// machine, and check the simulator gives the same answers.
    Probe(ProbeArgs),
    /// Check committed probe runs against the simulator, offline.
    Check(CheckArgs),
    /// Write the build table (`builds.json`, `README.md`) of cells made by
    /// `scripts/vm-image`, boot-checking each built cell once (its
    /// `check.json`): `scripts/vm-matrix` runs this after its builds.
    Builds(BuildsArgs),
    /// One run of the probe in this process (used by `probe` for the runs
    /// under setpriv/unshare).
    #[command(hide = true)]
    ProbeRun {
        /// The module's release.
        #[arg(long)]
        release: String,
        /// The run's name.
        #[arg(long)]
        run: String,
        /// Where to write its JSON (`-`: standard output).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Where the probe runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeBackend {
    /// This machine's kernel (root, Jool installed, not loaded yet).
    Kernel,
    /// A QEMU guest of `--release`.
    Vm,
}

/// `jool-harness matrix probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Where the module runs.
    #[arg(long, value_enum, default_value = "vm")]
    backend: ProbeBackend,
    /// The module's release.
    #[arg(long, value_name = "R")]
    release: String,
    /// Folder for the runs' JSON files.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The kernel build the simulator emulates for the check.
    #[command(flatten)]
    build: BuildArgs,
    /// VM options.
    #[command(flatten)]
    vm: VmArgs,
}

/// `jool-harness matrix check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A folder of runs (`<run>.json`) made by `matrix probe`.
    dir: PathBuf,
    /// The release, for runs that do not record it (the 4.1.9 corpus).
    #[arg(long, value_name = "R")]
    release: Option<String>,
    /// The kernel build the simulator emulates.
    #[command(flatten)]
    build: BuildArgs,
}

/// `jool-harness matrix builds`.
#[derive(Debug, clap::Args)]
pub struct BuildsArgs {
    /// The cell folders (`scripts/vm-image` prints each one's path).
    #[arg(required = true, value_name = "CELL")]
    cells: Vec<PathBuf>,
    /// Where to write builds.json and README.md.
    #[arg(long, value_name = "DIR", default_value = "fixtures/matrix")]
    out: PathBuf,
    /// Boot every built cell again, even where check.json exists.
    #[arg(long)]
    recheck: bool,
    /// Boot no cell: the table says `built` where no check.json exists.
    #[arg(long, conflicts_with = "recheck")]
    no_boot: bool,
    /// VM options (`--image` is ignored: each cell is its own image).
    #[command(flatten)]
    vm: VmArgs,
}

/// What differs between kernel builds (`jool_sim::kernel::Build`).
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    /// The kernel builds with unsigned `char` (Linux 6.2 and later).
    #[arg(long)]
    unsigned_char: bool,
    /// The module was built without the iptables framework.
    #[arg(long)]
    no_xtables: bool,
    /// nlctrl validates GETFAMILY dumps strictly (6.12).
    #[arg(long)]
    ctrl_dump_strict: bool,
}

impl BuildArgs {
    fn build(&self) -> Build {
        Build {
            unsigned_char: self.unsigned_char,
            xtables: !self.no_xtables,
            ctrl_dump_strict: self.ctrl_dump_strict,
        }
    }
}

/// Runs `jool-harness matrix`.
pub fn run(args: MatrixArgs) -> anyhow::Result<ExitCode> {
    match args.cmd {
        MatrixCmd::Probe(a) => probe_cmd(&a),
        MatrixCmd::Builds(a) => {
            let opts = builds::Options {
                boot: !a.no_boot,
                recheck: a.recheck,
                config: a.vm.config(),
            };
            let rows = builds::collect(&a.cells, &opts)?;
            builds::write(&a.out, &rows)?;
            eprintln!(
                "matrix builds: {} cells: wrote {}/builds.json and README.md",
                rows.len(),
                a.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        MatrixCmd::Check(a) => {
            check(&a.dir, a.build.build(), a.release.as_deref())
        }
        MatrixCmd::ProbeRun { release, run, out } => {
            let p = compat::release(&release)?;
            let doc = probe::runs::probe(p, &run);
            let text = serde_json::to_string_pretty(&doc)? + "\n";
            if out.as_os_str() == "-" {
                print!("{text}");
            } else {
                std::fs::write(&out, text).with_context(|| {
                    format!("Failed to write {}", out.display())
                })?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn probe_cmd(a: &ProbeArgs) -> anyhow::Result<ExitCode> {
    let p = compat::release(&a.release)?;
    match a.backend {
        ProbeBackend::Kernel => {
            let exe = std::env::current_exe()?;
            probe::runs::all_runs(p, &exe, &a.out)?;
        }
        ProbeBackend::Vm => {
            let guest = vm::Guest {
                args: [
                    "matrix",
                    "probe",
                    "--backend",
                    "kernel",
                    "--release",
                    &a.release,
                    "--out",
                    "/h/out/probe",
                ]
                .map(str::to_owned)
                .to_vec(),
                ..vm::Guest::default()
            };
            let mut config = a.vm.config();
            config.timeout = config.timeout.max(Duration::from_secs(120));
            let run = vm::boot_guest(&a.release, &config, &guest)?;
            let got = run.out().join("probe");
            let rc = std::fs::read_to_string(run.out().join("guest.rc"))
                .unwrap_or_default();
            // The guest checks its runs too and exits 1 on a difference:
            // what matters here is whether the runs came back (the host
            // checks them below, with this cell's kernel build).
            if run.failure().is_some() || !got.is_dir() {
                let console = run.keep_console(a.vm.console.as_deref());
                anyhow::bail!(
                    "the guest made no probe ({}; guest.rc {}); console in {}",
                    run.failure().unwrap_or("see its log above"),
                    rc.trim(),
                    console.display()
                );
            }
            std::fs::create_dir_all(&a.out)?;
            for e in std::fs::read_dir(&got)?.flatten() {
                std::fs::copy(e.path(), a.out.join(e.file_name()))?;
            }
            for (k, v) in run.timings() {
                eprintln!("matrix probe: {k}: {v:.1} s");
            }
        }
    }
    check(&a.out, a.build.build(), None)
}

fn check(
    dir: &std::path::Path,
    build: Build,
    release: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let runs = probe::runs::simulate(dir, build, release)?;
    anyhow::ensure!(!runs.is_empty(), "no probe run in {}", dir.display());
    let mut bad = 0;
    for (name, n, mismatches) in &runs {
        println!("{name}: {} of {n} answers identical", n - mismatches.len());
        for m in mismatches {
            bad += 1;
            println!(
                "  DIFFERS {}\n    real: {:?}\n    sim:  {:?}",
                m.name, m.real, m.sim
            );
        }
    }
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
