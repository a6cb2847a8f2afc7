//! Which Jool release the kernel side runs.
//!
//! - A real kernel: `/sys/module/jool_common/version`, `/sys/module/jool/version`
//!   or `/sys/module/jool_siit/version` (`MODULE_VERSION`, a dotted quad
//!   such as `4.1.9.0`).
//! - The `jool-sim` daemon: it exports [`ENV_KERNEL_VERSION`] to the
//!   children of `jool-sim exec` (a release name, or a dotted quad), and
//!   answers the `{"op":"version"}` control request on the socket that
//!   `JOOL_SIM_SOCKET` names.
//! - The in-process sim knows its own profile; callers say so themselves
//!   with [`Source::Sim`].
//!
//! A dotted quad maps to the release with that wire version; 4.1.15 and
//! `main` share `0x04010f00`, and the numbered release wins.
//! (Real kernels in VMs: the VM runner reads the guest's sysfs file the
//! same way and can hand the text to [`parse_release`].)

use std::{
    fmt,
    path::{Path, PathBuf},
};

use jool_sim::versions::Profile;

/// Set by `jool-sim exec` to the simulated kernel's release.
pub const ENV_KERNEL_VERSION: &str = "JOOL_SIM_KERNEL_VERSION";

/// Names the `jool-sim serve` socket that replaces the kernel.
pub const ENV_SOCKET: &str = "JOOL_SIM_SOCKET";

/// Where the kernel modules publish their version.
pub const SYS_MODULE: &str = "/sys/module";

/// Jool's modules, in the order their `version` files are read.
pub const MODULES: [&str; 3] = ["jool_common", "jool", "jool_siit"];

/// Where a kernel release was learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The [`ENV_KERNEL_VERSION`] variable.
    Env,
    /// A module's `version` file.
    Sysfs(PathBuf),
    /// The `version` control request of the daemon at this socket.
    Daemon(PathBuf),
    /// The in-process simulated kernel (`--sim`, `--kernel-version`).
    Sim,
    /// The kernel's own "Version mismatch" error text.
    ErrorText,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env => f.write_str(ENV_KERNEL_VERSION),
            Self::Sysfs(p) => write!(f, "{}", p.display()),
            Self::Daemon(p) => write!(f, "jool-sim at {}", p.display()),
            Self::Sim => f.write_str("--sim"),
            Self::ErrorText => f.write_str("its version mismatch error"),
        }
    }
}

/// What the search found.
#[derive(Clone, Debug)]
pub enum Detection {
    /// A release we emulate.
    Known(&'static Profile, Source),
    /// A version no fixture describes.
    Unrecognized(String, Source),
    /// Nothing to read.
    Absent,
}

impl PartialEq for Detection {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Known(a, x), Self::Known(b, y)) => {
                a.release == b.release && x == y
            }
            (Self::Unrecognized(a, x), Self::Unrecognized(b, y)) => {
                a == b && x == y
            }
            (Self::Absent, Self::Absent) => true,
            _ => false,
        }
    }
}

impl Eq for Detection {}

impl Detection {
    /// The release, when known.
    pub fn profile(&self) -> Option<&'static Profile> {
        match self {
            Self::Known(p, _) => Some(p),
            _ => None,
        }
    }
}

/// The release whose kernel sends `wire`; numbered releases win over
/// `main`.
pub fn release_for_wire(wire: u32) -> Option<&'static Profile> {
    let mut matching =
        Profile::all().iter().filter(|p| p.wire_version == wire);
    let first = matching.next()?;
    Some(if first.release == "main" {
        matching.next().unwrap_or(first)
    } else {
        first
    })
}

/// Parses a dotted quad (`4.1.9.0`) into a version word.
pub fn parse_quad(text: &str) -> Option<u32> {
    let parts: Vec<u8> =
        text.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let bytes: [u8; 4] = parts.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// A release name (`4.1.9`, `v4.1.9`, `main`) or a dotted quad
/// (`4.1.9.0`).
pub fn parse_release(text: &str) -> Option<&'static Profile> {
    let text = text.trim();
    let name = text.strip_prefix('v').unwrap_or(text);
    let wire = parse_quad(name);
    // `4.1.9.0` is usually release `4.1.9`: try it before reading every
    // table (the rc tags are `4.1.255.N` on the wire).
    let named = name
        .strip_suffix(".0")
        .and_then(Profile::get)
        .filter(|p| Some(p.wire_version) == wire);
    Profile::get(name).or(named).or_else(|| wire.and_then(release_for_wire))
}

fn classify(text: &str, source: Source) -> Detection {
    match parse_release(text) {
        Some(p) => Detection::Known(p, source),
        None => Detection::Unrecognized(text.trim().to_owned(), source),
    }
}

/// Looks at `env` (the value of [`ENV_KERNEL_VERSION`]) first, then at
/// the modules' `version` files under `sys_module`.
pub fn kernel_release_in(env: Option<&str>, sys_module: &Path) -> Detection {
    if let Some(v) = env.filter(|v| !v.trim().is_empty()) {
        return classify(v, Source::Env);
    }
    for m in MODULES {
        let path = sys_module.join(m).join("version");
        if let Ok(text) = std::fs::read_to_string(&path) {
            return classify(&text, Source::Sysfs(path));
        }
    }
    Detection::Absent
}

/// The release of the `jool-sim serve` daemon listening on `socket`.
pub fn daemon_release(socket: &Path) -> Detection {
    let Ok(client) = jool_sim::daemon::Client::connect(socket) else {
        return Detection::Absent;
    };
    let Ok(answer) = client.control(r#"{"op":"version"}"#) else {
        return Detection::Absent;
    };
    let v: serde_json::Value =
        serde_json::from_str(&answer).unwrap_or_default();
    match v["ok"]["release"].as_str() {
        Some(r) => classify(r, Source::Daemon(socket.to_owned())),
        None => Detection::Absent,
    }
}

/// The kernel side's release, from this process's environment:
/// [`ENV_KERNEL_VERSION`], else the daemon of [`ENV_SOCKET`], else
/// `/sys/module`.
pub fn kernel_release() -> Detection {
    let env = std::env::var(ENV_KERNEL_VERSION).ok();
    if env.as_deref().is_none_or(|v| v.trim().is_empty()) {
        if let Some(socket) = std::env::var_os(ENV_SOCKET) {
            return daemon_release(Path::new(&socket));
        }
    }
    kernel_release_in(env.as_deref(), Path::new(SYS_MODULE))
}

/// The kernel's version in its "Version mismatch" error text (`...but the
/// kernel module is 4.1.4.0.`).
pub fn from_version_mismatch(msg: &str) -> Option<Detection> {
    let rest = msg.split("but the kernel module is ").nth(1)?;
    let quad = rest.split(['.', '\n']).take(4).collect::<Vec<_>>().join(".");
    parse_quad(&quad)?;
    Some(classify(&quad, Source::ErrorText))
}

#[cfg(test)]
mod test {
    use super::*;

    /// A fake `/sys/module` (removed on drop).
    fn tmp_sys(files: &[(&str, &str)]) -> crate::host::TempDir {
        let root = crate::host::TempDir::new("jool-detect").unwrap();
        for (module, text) in files {
            let dir = root.path().join(module);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("version"), text).unwrap();
        }
        root
    }

    #[test]
    fn test_main_and_4_1_15_share_a_wire_version() {
        assert_eq!(release_for_wire(0x0401_0f00).unwrap().release, "4.1.15");
        assert_eq!(
            release_for_wire(0x0401_ff05).unwrap().release,
            "4.2.0-rc3"
        );
        assert!(release_for_wire(0x0401_1000).is_none());
    }

    #[test]
    fn test_parse_release() {
        assert_eq!(parse_release("4.1.9.0\n").unwrap().release, "4.1.9");
        assert_eq!(parse_release("v4.1.12").unwrap().release, "4.1.12");
        assert_eq!(parse_release("main").unwrap().release, "main");
        assert!(parse_release("4.1").is_none());
        assert!(parse_release("4.1.9.0.1").is_none());
    }

    #[test]
    fn test_sysfs_order_and_env_first() {
        let root =
            tmp_sys(&[("jool_siit", "4.1.8.0\n"), ("jool", "4.1.12.0\n")]);
        let d = kernel_release_in(None, root.path());
        assert_eq!(
            d,
            Detection::Known(
                Profile::get("4.1.12").unwrap(),
                Source::Sysfs(root.path().join("jool/version"))
            )
        );
        let d = kernel_release_in(Some("4.1.9"), root.path());
        assert_eq!(
            d,
            Detection::Known(Profile::get("4.1.9").unwrap(), Source::Env)
        );
    }

    #[test]
    fn test_unrecognized_and_absent() {
        let root = tmp_sys(&[("jool_common", "4.1.16.0\n")]);
        let d = kernel_release_in(None, root.path());
        assert!(
            matches!(d, Detection::Unrecognized(ref v, Source::Sysfs(_)) if v == "4.1.16.0"),
            "{d:?}"
        );
        assert_eq!(
            kernel_release_in(Some(""), &root.path().join("nothing")),
            Detection::Absent
        );
    }

    #[test]
    fn test_from_version_mismatch() {
        let msg = "Version mismatch. The userspace client's version is 4.1.15.0,\nbut the kernel module is 4.1.4.0.\nPlease update the kernel module.";
        let d = from_version_mismatch(msg).unwrap();
        assert_eq!(d.profile().unwrap().release, "4.1.4");
        assert!(from_version_mismatch("Something else.").is_none());
    }
}
