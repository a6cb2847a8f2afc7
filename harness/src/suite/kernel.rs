//! The real-kernel backend: this machine's kernel with Jool installed
//! (inside the VM, that is the case). Needs root, `ip netns`, `setpriv`,
//! `unshare`, `modprobe`, and the real `jool`/`jool_siit` for topologies.
//!
//! Commands really run: in a named namespace through `ip netns exec`, in a
//! fresh one through `unshare -n`, unprivileged through
//! `setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all`,
//! as root of a new user namespace through `unshare -Ur`. Traffic is really
//! sent over veth pairs and the declared deltas are checked against what
//! the counters did.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use jool_sim::kernel::Xlator;

use super::{
    backend::{Backend, ClientKind, Error, Output, Result},
    recipes::{Topology, Traffic},
    spec::{Case, Delta, Modules, Step, StepKind, User},
};
use crate::host::{self, installed_release, is_root};

/// Longest a single command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The real kernel of this machine.
#[derive(Debug)]
pub struct KernelBackend {
    release: String,
    shim_dir: PathBuf,
    client: ClientKind,
    created_netns: Vec<String>,
    instances: BTreeSet<(Xlator, String)>,
    /// Capture mode: where the nlmon pcaps go, the case's tag, and the
    /// running tcpdumps.
    capture: Option<PathBuf>,
    case_tag: String,
    sniffers: Vec<std::process::Child>,
}

/// The wrapper words that put a command in `netns` as `user`.
pub(crate) fn wrap(netns: &str, user: User) -> Vec<String> {
    let mut w: Vec<&str> = Vec::new();
    match (netns, user) {
        ("new", User::UsernsRoot) => w.extend(["unshare", "-Urn"]),
        ("new", _) => w.extend(["unshare", "-n"]),
        ("init", _) => {}
        (name, _) => w.extend(["ip", "netns", "exec", name]),
    }
    match (netns, user) {
        (_, User::Root) | ("new", User::UsernsRoot) => {}
        (_, User::UsernsRoot) => w.extend(["unshare", "-Ur"]),
        (_, User::Nobody) => w.extend([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ]),
    }
    w.into_iter().map(str::to_owned).collect()
}

/// Runs `argv` in namespace `netns` as `user`, like the command that
/// [`wrap`] prefixes; a named namespace is entered with `setns(2)`
/// ([`host::run_in_netns`]) instead of through `ip netns exec`.
pub fn run_wrapped(
    netns: &str,
    user: User,
    argv: &[String],
    timeout: Duration,
) -> Result<Output> {
    let named = !matches!(netns, "init" | "new");
    let mut full = wrap(if named { "init" } else { netns }, user);
    full.extend(argv.iter().cloned());
    let o = if named {
        host::run_in_netns(netns, &full, timeout)
    } else {
        host::run(&full, timeout)
    };
    o.map_err(|e| Error::host("the client", e))
}

/// `ip netns add NAME`; a failure says what `ip` printed.
pub(crate) fn add_netns(name: &str) -> Result<()> {
    let what = || format!("ip netns add {name}");
    let argv = ["ip", "netns", "add", name].map(str::to_owned);
    let o = host::run(&argv, COMMAND_TIMEOUT)
        .map_err(|e| Error::host(what(), e))?;
    if o.status != 0 {
        return Err(Error::Failed {
            what: what(),
            status: o.status,
            stderr: o.stderr,
        });
    }
    Ok(())
}

/// Runs a setup script of `what`; its failure is the error.
fn sh_ok(what: &str, script: &str) -> Result<()> {
    host::sh(script, COMMAND_TIMEOUT)
        .map(drop)
        .map_err(|e| Error::host(what, e))
}

impl KernelBackend {
    /// The real kernel; `jool_stats` is the jool-stats binary to use for
    /// `--client jool-stats`.
    pub fn new(release: Option<&str>, jool_stats: &Path) -> Result<Self> {
        if !is_root() {
            return Err(Error::Unavailable(
                "--backend kernel needs root (namespaces, modprobe, setpriv)"
                    .into(),
            ));
        }
        sh_ok("load Jool's modules", "modprobe jool_siit && modprobe jool")
            .map_err(|e| {
                Error::Unavailable(format!(
                    "--backend kernel needs Jool's modules on this machine: {e}"
                ))
            })?;
        let installed = installed_release().ok_or_else(|| {
            Error::Unavailable("cannot read the loaded Jool's version".into())
        })?;
        if let Some(r) = release.filter(|r| !host::module_is(r)) {
            return Err(Error::Unavailable(format!(
                "--release {r} asked, but this kernel runs Jool {installed}"
            )));
        }
        // A folder of `jool`/`jool_siit` symlinks to jool-stats, readable by
        // uid 65534, so that argv[0] picks the translator as with the real
        // client, through setpriv/unshare/ip netns exec.
        let jool_stats = jool_stats.canonicalize().map_err(|e| {
            Error::io(format!("find {}", jool_stats.display()), e)
        })?;
        let shim_dir = argv0_dir(&jool_stats)?;
        Ok(Self {
            release: release.map_or(installed, str::to_owned),
            shim_dir,
            client: ClientKind::Real,
            created_netns: Vec::new(),
            instances: BTreeSet::new(),
            capture: None,
            case_tag: String::new(),
            sniffers: Vec::new(),
        })
    }

    /// Records every netlink message of the case's namespaces with nlmon:
    /// one pcap per case and namespace, `DIR/SUITE__CASE__NETNS.pcap`.
    /// Commands in a `new` namespace are not captured.
    pub fn capture_into(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        sh_ok("load nlmon", "modprobe nlmon")?;
        self.capture = Some(dir.to_owned());
        Ok(())
    }

    /// Starts tcpdump on an nlmon device of `netns` (capture mode only).
    fn sniff(&mut self, netns: &str) -> Result<()> {
        let Some(dir) = &self.capture else { return Ok(()) };
        let ip = if netns == "init" {
            "ip".to_owned()
        } else {
            format!("ip -n '{netns}'")
        };
        sh_ok("add nlmon0", &format!("{ip} link show nlmon0 > /dev/null 2>&1 || {ip} link add nlmon0 type nlmon; {ip} link set nlmon0 up"))?;
        let pcap = dir.join(format!("{}__{netns}.pcap", self.case_tag));
        let mut cmd = wrap(netns, User::Root);
        cmd.extend(
            [
                "tcpdump",
                "--immediate-mode",
                "-i",
                "nlmon0",
                "-U",
                "-s",
                "0",
                "-Z",
                "root",
                "-w",
            ]
            .map(str::to_owned),
        );
        cmd.push(pcap.display().to_string());
        let child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io("run tcpdump", e))?;
        self.sniffers.push(child);
        // tcpdump writes the pcap header once it listens.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&pcap).map_or(true, |m| m.len() < 24)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        Ok(())
    }

    /// Stops every tcpdump (SIGINT: they flush and exit).
    fn stop_sniffers(&mut self) {
        if !self.sniffers.is_empty() {
            // Let the last messages reach the files.
            std::thread::sleep(Duration::from_millis(300));
        }
        for mut c in self.sniffers.drain(..) {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// The client's program for `argv0` (`jool` or `jool_siit`).
    fn program(&self, argv0: &str) -> String {
        match self.client {
            ClientKind::Real => argv0.to_owned(),
            ClientKind::JoolStats => {
                self.shim_dir.join(argv0).display().to_string()
            }
        }
    }

    fn set_modules(&self, m: Modules) -> Result<()> {
        let (siit, nat64) = m.loaded();
        // Only fork modprobe when the state has to change.
        for (on, module) in [(siit, "jool_siit"), (nat64, "jool")] {
            let loaded = Path::new("/sys/module").join(module).exists();
            if on && !loaded {
                sh_ok("load a module", &format!("modprobe {module}"))?;
            } else if !on && loaded {
                sh_ok("unload a module", &format!("modprobe -r {module}"))?;
            }
        }
        Ok(())
    }

    fn remember_instance(&mut self, step: &Step, argv: &[String]) {
        let mut words = argv.iter().skip(1);
        let xlator = if argv[0].contains("siit") {
            Xlator::Siit
        } else {
            Xlator::Nat64
        };
        let mut name = "default".to_owned();
        while let Some(w) = words.next() {
            match w.as_str() {
                "-i" | "--instance" => {
                    name = words.next().cloned().unwrap_or_default()
                }
                w if w.starts_with("--instance=") => {
                    name = w["--instance=".len()..].to_owned()
                }
                "instance" => {
                    let rest: Vec<&String> = words.by_ref().collect();
                    if rest
                        .first()
                        .is_some_and(|op| "add".starts_with(op.as_str()))
                    {
                        if let Some(n) = rest
                            .iter()
                            .skip(1)
                            .find(|w| !w.starts_with('-') && !w.contains(':'))
                        {
                            name = (*n).clone();
                        }
                        if step.netns() == "init" {
                            self.instances.insert((xlator, name));
                        }
                    }
                    return;
                }
                _ => {}
            }
        }
    }
}

impl Backend for KernelBackend {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn release(&self) -> &str {
        &self.release
    }

    fn unsupported(&self, client: ClientKind) -> Option<String> {
        match client {
            ClientKind::Real => {
                let found = host::sh(
                    "command -v jool_siit && command -v jool",
                    COMMAND_TIMEOUT,
                )
                .is_ok();
                (!found).then(|| {
                    "the real jool/jool_siit are not installed here".to_owned()
                })
            }
            ClientKind::JoolStats => None,
        }
    }

    fn begin_case(
        &mut self,
        suite: &str,
        case: &Case,
        client: ClientKind,
    ) -> Result<()> {
        self.client = client;
        self.case_tag = format!("{suite}__{}", case.name);
        self.set_modules(case.modules)?;
        self.sniff("init")?;
        let mut named = BTreeSet::new();
        for s in &case.steps {
            if let StepKind::Run(_) = s.kind() {
                named.insert(s.netns().to_owned());
            }
        }
        let topo_ns: BTreeSet<&str> = case
            .steps
            .iter()
            .filter_map(|s| {
                s.topology.as_deref().and_then(super::recipes::topology)
            })
            .flat_map(|t| t.namespaces.iter().copied())
            .collect();
        for n in named.iter().filter(|n| {
            !["init", "new"].contains(&n.as_str())
                && !topo_ns.contains(n.as_str())
        }) {
            add_netns(n)?;
            self.created_netns.push(n.clone());
            self.sniff(n)?;
        }
        Ok(())
    }

    fn run(&mut self, step: &Step, argv: &[String]) -> Result<Output> {
        let mut full = vec![self.program(&argv[0])];
        if self.client == ClientKind::JoolStats
            && self.release != crate::cli::DEFAULT_CLIENT
        {
            full.extend(["--client-version".to_owned(), self.release.clone()]);
        }
        full.extend(argv[1..].iter().cloned());
        self.remember_instance(step, argv);
        run_wrapped(step.netns(), step.user, &full, COMMAND_TIMEOUT)
    }

    fn topology(&mut self, t: &Topology) -> Result<()> {
        self.created_netns
            .extend(t.namespaces.iter().map(|n| (*n).to_owned()));
        // One shell for the whole setup (each exec costs under TCG).
        sh_ok(&format!("topology {}", t.name), &t.setup.join(" && "))?;
        self.sniff(t.netns)
    }

    fn traffic(
        &mut self,
        t: &Traffic,
        _deltas: &[(String, Delta)],
    ) -> Result<()> {
        // Unanswered pings are part of some recipes: only a timeout fails.
        let argv = ["sh".into(), "-c".into(), t.script.into()];
        host::run(&argv, COMMAND_TIMEOUT)
            .map(drop)
            .map_err(|e| Error::host(format!("traffic {}", t.name), e))
    }

    fn counters(
        &mut self,
        netns: &str,
        xlator: Xlator,
    ) -> Result<BTreeMap<String, u64>> {
        let argv0 = if xlator == Xlator::Siit { "jool_siit" } else { "jool" };
        let mut cmd = vec![self.program(argv0)];
        if self.client == ClientKind::JoolStats
            && self.release != crate::cli::DEFAULT_CLIENT
        {
            cmd.extend(["--client-version".to_owned(), self.release.clone()]);
        }
        cmd.extend(
            ["stats", "display", "--all", "--csv", "--no-headers"]
                .map(str::to_owned),
        );
        let o = run_wrapped(netns, User::Root, &cmd, COMMAND_TIMEOUT)?;
        if o.status != 0 {
            return Err(Error::Failed {
                what: "reading counters".into(),
                status: o.status,
                stderr: o.stderr,
            });
        }
        Ok(o.stdout
            .lines()
            .filter_map(|l| {
                l.split_once(',').and_then(|(k, v)| {
                    Some((k.to_owned(), v.trim().parse().ok()?))
                })
            })
            .collect())
    }

    fn end_case(&mut self) {
        self.stop_sniffers();
        // One `ip` for every namespace (each exec costs under TCG).
        let dels: String = self
            .created_netns
            .drain(..)
            .map(|n| format!("netns del {n}\\n"))
            .collect();
        if !dels.is_empty() {
            let _ = host::sh(
                &format!("printf '{dels}' | ip -force -batch -"),
                COMMAND_TIMEOUT,
            );
        }
        let instances = std::mem::take(&mut self.instances);
        for (x, name) in instances {
            let argv0 = if x == Xlator::Siit { "jool_siit" } else { "jool" };
            let _ = host::run(
                &[
                    self.program(argv0),
                    "-i".into(),
                    name,
                    "instance".into(),
                    "remove".into(),
                ],
                COMMAND_TIMEOUT,
            );
        }
    }
}

impl Drop for KernelBackend {
    fn drop(&mut self) {
        self.stop_sniffers();
        // Made by mkdtemp (`argv0_dir`): ours to remove.
        let _ = std::fs::remove_dir_all(&self.shim_dir);
    }
}

/// A fresh folder (see [`host::shared_temp_dir`]) of `jool` and
/// `jool_siit` symlinks to `jool_stats`.
fn argv0_dir(jool_stats: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::symlink;
    host::shared_temp_dir("jool-harness-bin", |dir| {
        symlink(jool_stats, dir.join("jool"))?;
        symlink(jool_stats, dir.join("jool_siit"))
    })
    .map_err(|e| Error::io("stage jool and jool_siit", e))
}
