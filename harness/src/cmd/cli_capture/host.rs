//! `jool-harness capture-cli` (this machine, then one guest per release)
//! and `capture-cli-guest` (what runs inside the guest).

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Duration,
};

use anyhow::{bail, Context};

use super::{run_one, Bytes, CaptureFile, CommandList, Place, Record, Runner};
use crate::{
    cmd::VmArgs,
    host as machine,
    matrix::cross::{client_bundle, DEBIAN_RELEASES},
    vm,
};

/// The command list's default place.
const COMMANDS: &str = "fixtures/captures/cli/commands.json";

/// The environment of every run: a `PATH` and nothing else (no locale,
/// no `POSIXLY_CORRECT`, no `ARGP_HELP_FMT`).
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Longest single run (argp's hidden `--HANG` is not in the list).
const TIMEOUT: Duration = Duration::from_secs(20);

/// `jool-harness capture-cli`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Client releases (each needs scripts/vm-image's image; built when
    /// absent).
    #[arg(long = "release", value_delimiter = ',', value_name = "R",
          default_values_t = DEBIAN_RELEASES.iter().map(|s| s.to_string()))]
    pub releases: Vec<String>,
    /// Where to run: `host` (no module here), `guest` (a booted image).
    #[arg(long = "place", value_delimiter = ',', value_name = "P",
          default_values = ["host", "guest"])]
    pub places: Vec<String>,
    /// The command lines.
    #[arg(long, value_name = "FILE", default_value = COMMANDS)]
    pub commands: PathBuf,
    /// Folder of the captures (`<release>/<place>.json`).
    #[arg(long, value_name = "DIR", default_value = "fixtures/captures/cli")]
    pub out: PathBuf,
    /// VM options.
    #[command(flatten)]
    pub vm: VmArgs,
}

/// `jool-harness capture-cli-guest` (run by `capture-cli` in the guest).
#[derive(Debug, Clone, clap::Args)]
pub struct GuestArgs {
    /// The command list.
    #[arg(long, value_name = "FILE")]
    pub commands: PathBuf,
    /// Where to write `capture.json`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The release the host expects the guest to run.
    #[arg(long, value_name = "R")]
    pub release: Option<String>,
}

/// Runs every command of `list` as each of its programs.
fn run_all<'a>(
    list: &CommandList,
    place: Place,
    runner: &dyn Fn(&str) -> anyhow::Result<Runner<'a>>,
) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    for c in &list.commands {
        if c.place.is_some_and(|p| p != place) {
            continue;
        }
        for program in c.programs() {
            let r = runner(program)?;
            let ran = run_one(&r, program.as_bytes(), &c.args, c.stdout)
                .with_context(|| format!("{program} {:?}", c.args))?;
            let mut argv = vec![Bytes::from(program)];
            argv.extend(c.args.iter().cloned());
            records.push(Record {
                argv,
                stdout_kind: c.stdout,
                stdout: ran.stdout,
                stderr: ran.stderr,
                status: ran.status,
            });
        }
    }
    Ok(records)
}

fn uname() -> String {
    Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A fresh folder holding the list's files.
fn work_dir(list: &CommandList) -> anyhow::Result<crate::host::TempDir> {
    let dir = crate::host::TempDir::new("jool-clicap")?;
    list.write_files(dir.path())?;
    Ok(dir)
}

/// The host capture of `release`: its client bundle through its loader.
fn host(
    release: &str,
    list: &CommandList,
    vm: &VmArgs,
) -> anyhow::Result<CaptureFile> {
    if Path::new("/sys/module/jool_common").exists() {
        bail!("Jool's module is loaded here: the host capture needs a machine without it");
    }
    let bundle = client_bundle(release, &vm.config())?;
    let ld = bundle.join("lib/ld-linux-x86-64.so.2");
    let lib = bundle.join("lib");
    let bins: BTreeMap<&str, PathBuf> = ["jool", "jool_siit"]
        .into_iter()
        .map(|p| (p, bundle.join("bin").join(p)))
        .collect();
    let dir = work_dir(list)?;
    let runner = |program: &str| -> anyhow::Result<Runner<'_>> {
        let (name, bin) =
            bins.get_key_value(program).context("unknown program")?;
        Ok(Runner {
            program: &ld,
            pre: vec![
                OsStr::new("--library-path"),
                lib.as_os_str(),
                OsStr::new("--argv0"),
                OsStr::new(*name),
                bin.as_os_str(),
            ],
            cwd: dir.path(),
            env: vec![("PATH", OsStr::new(PATH))],
            timeout: TIMEOUT,
        })
    };
    let records = run_all(list, Place::Host, &runner)?;
    Ok(CaptureFile {
        release: release.to_owned(),
        place: Place::Host,
        client: format!(
            "/usr/bin/jool and /usr/bin/jool_siit of {release}'s guest image with its ld-linux, libc, libm and libnl (debugfs dump), run as `ld-linux-x86-64.so.2 --library-path lib --argv0 PROGRAM bin/PROGRAM ARGS`; {}",
            image_packages(&bundle)
        ),
        state: "no Jool module loaded (generic netlink has no \"Jool\" family)"
            .into(),
        kernel: uname(),
        module: None,
        counters: BTreeMap::new(),
        files: list.files.clone(),
        records,
    })
}

/// The image's Jool packages, from the manifest beside the bundle's image.
fn image_packages(bundle: &Path) -> String {
    let key = bundle.file_name().map(|k| k.to_owned()).unwrap_or_default();
    let manifest = bundle
        .parent()
        .and_then(Path::parent)
        .map(|c| c.join("images").join(key).join("manifest"));
    let text = manifest
        .and_then(|m| std::fs::read_to_string(m).ok())
        .unwrap_or_default();
    let pkgs: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("package="))
        .filter(|l| l.starts_with("jool") || l.starts_with("linux-image"))
        .map(|l| l.replace('\t', " "))
        .collect();
    format!("image packages: {}", pkgs.join(", "))
}

/// The guest capture of `release`: boots its image and runs
/// `capture-cli-guest` there.
fn guest_capture(
    release: &str,
    list_path: &Path,
    vm: &VmArgs,
) -> anyhow::Result<CaptureFile> {
    let share = crate::host::TempDir::new("jool-clicap-share")?;
    std::fs::copy(list_path, share.path().join("commands.json"))?;
    let words: Vec<String> = [
        "capture-cli-guest",
        "--commands",
        "/h/bin/clicap/commands.json",
        "--out",
        "/h/out",
    ]
    .map(str::to_owned)
    .to_vec();
    let guest = vm::Guest {
        args: words,
        fixtures: None,
        extra_bin: vec![("clicap".into(), share.path().to_owned())],
        script: None,
    };
    let g = vm::boot_guest(release, &vm.config(), &guest)?;
    let file = g.out().join("capture.json");
    let text = match (g.failure(), std::fs::read_to_string(&file)) {
        (None, Ok(t)) => t,
        (why, _) => {
            let kept = g.keep_console(vm.console.as_deref());
            bail!(
                "the {release} guest wrote no capture.json ({}); console in {}",
                why.unwrap_or("see guest.log above"),
                kept.display()
            );
        }
    };
    for (k, v) in g.timings() {
        eprintln!("capture-cli: {release} guest: {k}: {v:.1} s");
    }
    let c: CaptureFile =
        serde_json::from_str(&text).context("capture.json from the guest")?;
    if c.release != release {
        bail!("the {release} guest runs Jool {}", c.release);
    }
    Ok(c)
}

fn write(out: &Path, c: &CaptureFile) -> anyhow::Result<()> {
    let dir = out.join(&c.release);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}.json", c.place.name()));
    std::fs::write(&path, serde_json::to_string_pretty(c)? + "\n")?;
    eprintln!(
        "capture-cli: {} records in {}",
        c.records.len(),
        path.display()
    );
    Ok(())
}

/// Runs `jool-harness capture-cli`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let list = CommandList::load(&args.commands)?;
    for release in &args.releases {
        for place in &args.places {
            let c = match place.as_str() {
                "host" => host(release, &list, &args.vm)?,
                "guest" => guest_capture(release, &args.commands, &args.vm)?,
                other => bail!("unknown --place {other} (host, guest)"),
            };
            write(&args.out, &c)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sh_ok(script: &str) -> anyhow::Result<String> {
    let o = machine::run(&["sh".into(), "-c".into(), script.into()], TIMEOUT)?;
    if o.status != 0 {
        bail!("`{script}` failed ({}): {}{}", o.status, o.stdout, o.stderr);
    }
    Ok(o.stdout)
}

/// Runs `jool-harness capture-cli-guest` (inside the guest, as root).
pub fn guest(args: GuestArgs) -> anyhow::Result<ExitCode> {
    let list = CommandList::load(&args.commands)?;
    sh_ok("modprobe jool_siit && modprobe jool")?;
    let module = machine::installed_release()
        .context("cannot read the loaded Jool's version")?;
    if let Some(r) = args.release.as_ref().filter(|r| !machine::module_is(r)) {
        bail!("--release {r} asked, but this kernel runs Jool {module}");
    }
    let setup = [
        "jool_siit instance add --netfilter --pool6 64:ff9b::/96",
        "jool instance add --netfilter --pool6 64:ff9b::/96",
    ];
    for s in setup {
        sh_ok(s)?;
    }
    let counters = |suffix: &str| -> anyhow::Result<Vec<(String, String)>> {
        [("siit", "jool_siit"), ("nat64", "jool")]
            .into_iter()
            .map(|(x, p)| {
                let out = sh_ok(&format!("{p} stats display --all --csv"))?;
                Ok((format!("{x}{suffix}"), out))
            })
            .collect()
    };
    let mut all = counters("")?;
    let dir = work_dir(&list)?;
    let bins: BTreeMap<&str, PathBuf> = ["jool", "jool_siit"]
        .into_iter()
        .map(|p| (p, Path::new("/usr/bin").join(p)))
        .collect();
    let runner = |program: &str| -> anyhow::Result<Runner<'_>> {
        Ok(Runner {
            program: bins.get(program).context("unknown program")?,
            pre: Vec::new(),
            cwd: dir.path(),
            env: vec![("PATH", OsStr::new(PATH))],
            timeout: TIMEOUT,
        })
    };
    let records = run_all(&list, Place::Guest, &runner)?;
    all.extend(counters("-after")?);
    let tools = sh_ok("dpkg-query -W jool-tools jool-dkms")
        .unwrap_or_default()
        .replace('\t', " ");
    let c = CaptureFile {
        release: module.clone(),
        place: Place::Guest,
        client: format!(
            "the guest's installed /usr/bin/jool and /usr/bin/jool_siit ({})",
            tools.trim().replace('\n', ", ")
        ),
        state: format!("modules jool_siit and jool {module} loaded; `{}` and `{}` in the initial namespace (no other interface than lo: the counters stay idle)", setup[0], setup[1]),
        kernel: uname(),
        module: Some(module),
        counters: all.into_iter().collect(),
        files: list.files,
        records,
    };
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("capture.json"), serde_json::to_string(&c)?)?;
    eprintln!("capture-cli-guest: {} records written", c.records.len());
    Ok(ExitCode::SUCCESS)
}
