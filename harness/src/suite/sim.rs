//! The simulator backend: one `jool_sim` kernel per case, in this process.
//!
//! - `--client jool-stats`: the client runs in-process ([`inproc`]) as a
//!   caller the step chooses: one namespace id per name, and
//!   `CAP_NET_ADMIN` only for `root` of the initial user namespace.
//! - `--client real`: the same kernel is served by a `jool-sim` daemon
//!   thread on a Unix socket, and the real C client runs as a child
//!   process through the LD_PRELOAD shim (`libjool_sim_preload.so`, as
//!   `jool-sim exec` does). The daemon identifies each process itself
//!   (`SO_PEERCRED`: netns inode, `CapEff`, user namespace), so steps run
//!   in real namespaces and as real users exactly as in kernel mode; this
//!   needs root and the shim, otherwise the cell is skipped with the reason.
//!
//! Traffic applies the least change each declared delta allows.

use std::{
    collections::BTreeMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use jool_sim::{
    daemon::{self, Running, Shared},
    kernel::{Caller, Kernel, NetnsId, Xlator, INIT_NETNS},
    setup::{InstanceSpec, Modules, Setup},
    versions::Profile,
};

use super::{
    backend::{Backend, ClientKind, Error, Output, Result},
    inproc,
    kernel::{add_netns, wrap},
    recipes::{Topology, Traffic},
    spec::{Case, Delta, Step, StepKind, User},
};
use crate::host;

/// The daemon serving the kernel to child processes.
#[derive(Debug)]
struct Served {
    socket: PathBuf,
    preload: PathBuf,
    _running: Running,
}

/// The simulator.
#[derive(Debug)]
pub struct SimBackend {
    profile: &'static Profile,
    shared: Arc<Shared>,
    served: Option<Served>,
    client: ClientKind,
    netns: BTreeMap<String, NetnsId>,
    created_netns: Vec<String>,
    next_netns: NetnsId,
    port_id: u32,
}

/// Where `name` (a build product) is: beside this executable, or in the
/// workspace's `target/{release,debug}`.
fn built(name: &str) -> Option<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(ToOwned::to_owned))
    {
        dirs.extend(d.parent().map(ToOwned::to_owned));
        dirs.insert(0, d);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    dirs.extend(["release", "debug"].map(|p| target.join(p)));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// A fresh folder for the daemon's socket ([`host::shared_temp_dir`]:
/// uid 65534 must reach the socket, which the daemon makes 0666) holding a
/// 0644 copy of the shim, which uid 65534 must load wherever the build
/// lives (a checkout under a 0700 folder would hide the original).
/// Returns the folder and the copy.
fn private_shim(preload: &Path) -> Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let name = "libjool_sim_preload.so";
    let dir = host::shared_temp_dir("jool-harness-sim", |dir| {
        std::fs::copy(preload, dir.join(name))?;
        std::fs::set_permissions(
            dir.join(name),
            PermissionsExt::from_mode(0o644),
        )
    })
    .map_err(|e| Error::io("stage the shim", e))?;
    let shim = dir.join(name);
    Ok((dir, shim))
}

/// The LD_PRELOAD shim (`JOOL_SIM_PRELOAD`, or a built one).
pub fn preload_library() -> Option<PathBuf> {
    std::env::var_os("JOOL_SIM_PRELOAD")
        .map(PathBuf::from)
        .or_else(|| built("libjool_sim_preload.so"))
}

impl SimBackend {
    /// A simulator running `release`.
    pub fn new(release: &str) -> Result<Self> {
        let profile = Profile::get(release).ok_or_else(|| {
            Error::Unavailable(format!(
                "unknown release '{release}'; known: {}",
                Profile::names().join(" ")
            ))
        })?;
        Ok(Self {
            profile,
            shared: Shared::new(Kernel::new(profile)),
            served: None,
            client: ClientKind::JoolStats,
            netns: BTreeMap::new(),
            created_netns: Vec::new(),
            next_netns: 0x1000,
            port_id: 1,
        })
    }

    /// Starts the daemon thread for the real client.
    fn serve(&mut self) -> Result<&Served> {
        if self.served.is_none() {
            let preload = preload_library().ok_or_else(|| {
                Error::Unavailable("needs jool-sim exec: libjool_sim_preload.so is not built (cargo build -p jool-sim-preload)".to_owned())
            })?;
            let (dir, shim) = private_shim(&preload)?;
            let socket = dir.join("sock");
            let running =
                match daemon::spawn(&socket, Arc::clone(&self.shared)) {
                    Ok(r) => r,
                    Err(e) => {
                        // Made by mkdtemp (`private_shim`): ours to remove.
                        let _ = std::fs::remove_dir_all(&dir);
                        return Err(Error::Unavailable(format!(
                            "cannot serve the sim on {}: {e}",
                            socket.display()
                        )));
                    }
                };
            self.served =
                Some(Served { socket, preload: shim, _running: running });
        }
        self.served.as_ref().ok_or_else(|| {
            Error::Unavailable("the daemon did not start".into())
        })
    }

    /// The real namespace standing for suite namespace `name` (prefixed
    /// with this process's id, so that concurrent runs do not collide).
    fn real_ns(name: &str) -> String {
        match name {
            "init" | "new" => name.to_owned(),
            n => format!("jh{}-{n}", std::process::id()),
        }
    }

    /// The id of namespace `name`: synthetic in-process, the real inode
    /// when the real client runs (the daemon sees real namespaces).
    fn netns_id(&mut self, name: &str) -> NetnsId {
        if self.client == ClientKind::Real {
            let path = match name {
                "init" => "/proc/self/ns/net".to_owned(),
                n => format!("/run/netns/{}", Self::real_ns(n)),
            };
            return std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0);
        }
        if name == "init" {
            return INIT_NETNS;
        }
        self.next_netns += 1;
        let fresh = self.next_netns;
        if name == "new" {
            return fresh;
        }
        *self.netns.entry(name.to_owned()).or_insert(fresh)
    }

    fn stat_id(&self, name: &str) -> Result<u16> {
        self.profile
            .stats
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.id)
            .ok_or_else(|| {
                Error::Case(format!(
                    "{name} is not a counter of Jool {}",
                    self.profile.release
                ))
            })
    }

    fn add_netns(&mut self, name: &str) -> Result<()> {
        let name = &Self::real_ns(name);
        if self.client == ClientKind::Real
            && !self.created_netns.iter().any(|n| n == name)
        {
            add_netns(name)?;
            self.created_netns.push(name.to_owned());
        }
        Ok(())
    }

    fn run_child(&mut self, step: &Step, argv: &[String]) -> Result<Output> {
        let release = self.profile.release.clone();
        let served = self.serve()?;
        let env = [
            ("LD_PRELOAD".to_owned(), served.preload.display().to_string()),
            (
                "JOOL_SIM_SOCKET".to_owned(),
                served.socket.display().to_string(),
            ),
            ("JOOL_SIM_KERNEL_VERSION".to_owned(), release),
        ];
        let mut full = wrap(&Self::real_ns(step.netns()), step.user);
        full.extend(argv.iter().cloned());
        host::run_env(&full, &env, Duration::from_secs(30))
            .map_err(|e| Error::host("the client", e))
    }
}

impl Backend for SimBackend {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn release(&self) -> &str {
        &self.profile.release
    }

    fn unsupported(&self, client: ClientKind) -> Option<String> {
        match client {
            ClientKind::JoolStats => None,
            ClientKind::Real if preload_library().is_none() => Some(
                "needs jool-sim exec: libjool_sim_preload.so is not built (cargo build -p jool-sim-preload)".into(),
            ),
            ClientKind::Real if !host::is_root() => {
                Some("the real client on the sim runs in real namespaces: needs root".into())
            }
            ClientKind::Real => {
                let found = host::run_env(
                    &["sh", "-c", "command -v jool_siit && command -v jool"].map(str::to_owned),
                    &[],
                    Duration::from_secs(10),
                );
                if !found.is_ok_and(|o| o.status == 0) {
                    return Some("the real jool/jool_siit are not installed here (apt-get install jool-tools)".into());
                }
                // The suites of a release expect that release's client.
                let version = host::run_env(
                    &["jool_siit".to_owned(), "--version".to_owned()],
                    &[],
                    Duration::from_secs(10),
                )
                .map(|o| o.stdout.trim().to_owned())
                .unwrap_or_default();
                let release = &self.profile.release;
                (!host::version_is(release, &version)).then(|| {
                    format!("the installed C client is Jool {version}, not {release} (the suites of {release} expect its own client): --client jool-stats, or {release}'s cell (run --backend vm)")
                })
            }
        }
    }

    fn begin_case(
        &mut self,
        _suite: &str,
        case: &Case,
        client: ClientKind,
    ) -> Result<()> {
        self.client = client;
        self.netns.clear();
        let (siit, nat64) = case.modules.loaded();
        let mut setup = Setup::new(self.profile, INIT_NETNS);
        setup.instances = Vec::new();
        setup.modules = Modules { siit, nat64 };
        let mut k = setup.build().map_err(Error::Setup)?;
        if let Some(b) = case.sim_msg_budget {
            k.set_msg_budget(b);
        }
        *self.shared.kernel() = k;
        if client == ClientKind::Real {
            for s in &case.steps {
                let ns = s.netns();
                if let StepKind::Run(_) = s.kind() {
                    if !["init", "new"].contains(&ns) {
                        self.add_netns(ns)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, step: &Step, argv: &[String]) -> Result<Output> {
        if self.client == ClientKind::Real {
            return self.run_child(step, argv);
        }
        self.port_id += 1;
        let caller = Caller {
            netns: self.netns_id(step.netns()),
            net_admin: step.user == User::Root,
            port_id: self.port_id,
            ext_ack: false,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut k = self.shared.kernel();
        let status = inproc::run(
            &mut k,
            caller,
            self.profile,
            argv,
            &mut out,
            &mut err,
        );
        Ok(Output {
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            status: i32::from(status),
            pid: None,
        })
    }

    fn topology(&mut self, t: &Topology) -> Result<()> {
        self.add_netns(t.netns)?;
        let ns = self.netns_id(t.netns);
        let mut k = self.shared.kernel();
        InstanceSpec::netfilter("default", t.xlator)
            .add_to(&mut k, ns, &[])
            .map_err(|e| Error::Case(format!("topology {}: {e}", t.name)))
    }

    fn traffic(
        &mut self,
        t: &Traffic,
        deltas: &[(String, Delta)],
    ) -> Result<()> {
        let topo = super::recipes::topology(t.topology).ok_or_else(|| {
            Error::Case(format!("traffic {}: its topology is unknown", t.name))
        })?;
        let ns = self.netns_id(topo.netns);
        for (name, d) in deltas {
            let id = self.stat_id(name)?;
            self.shared
                .kernel()
                .add_counter(ns, topo.xlator, "default", id, d.minimum())
                .map_err(|e| Error::Case(format!("traffic {}: {e} (needs `topology = \"{}\"` earlier in the case)", t.name, topo.name)))?;
        }
        Ok(())
    }

    fn counters(
        &mut self,
        netns: &str,
        xlator: Xlator,
    ) -> Result<BTreeMap<String, u64>> {
        let ns = self.netns_id(netns);
        let k = self.shared.kernel();
        let inst = k.instance(ns, xlator, "default").ok_or_else(|| {
            Error::Case(format!(
                "no {} instance 'default' in netns {netns}",
                xlator.name()
            ))
        })?;
        Ok(self
            .profile
            .stats
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    inst.counters.get(usize::from(s.id)).copied().unwrap_or(0),
                )
            })
            .collect())
    }

    fn end_case(&mut self) {
        for n in self.created_netns.drain(..) {
            let _ = host::run_env(
                &["ip", "netns", "del", &n].map(str::to_owned),
                &[],
                Duration::from_secs(30),
            );
        }
    }
}

impl Drop for SimBackend {
    fn drop(&mut self) {
        self.end_case();
        if let Some(served) = self.served.take() {
            let dir = served.socket.parent().map(Path::to_owned);
            drop(served); // stops the daemon thread, removes the socket
            if let Some(d) = dir {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}
