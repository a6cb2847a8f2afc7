//! What the guests of `--backend vm` boot and load ([`Target`]: the
//! image, the KASAN kernel, the instrumented modules from
//! scripts/fuzz-kernel-build), the host folders shared with them, and
//! one guest's boot ([`boot`]).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{
    error::{fs, Error, Result},
    Modules, Settings,
};
use crate::vm::{self, GuestRun};

/// What the guests boot and load.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// The release of `--release`.
    pub release: String,
    /// The image folder booted (`vmlinuz`, `initrd.img`, `rootfs.img`).
    pub image: PathBuf,
    /// The distribution image it came from.
    pub base_image: PathBuf,
    /// The KASAN kernel's folder, if booted.
    pub kasan: Option<PathBuf>,
    /// The modules folder (from scripts/fuzz-kernel-build), if not the
    /// image's own.
    pub modules: Option<PathBuf>,
    /// The simulator's release when it is not the module's version.
    pub profile: Option<String>,
}

/// `KEY=value` of a `manifest` file of an image or a build folder.
pub fn manifest(dir: &Path, key: &str) -> String {
    std::fs::read_to_string(dir.join("manifest"))
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix(key)?.strip_prefix('=').map(str::to_owned)
            })
        })
        .unwrap_or_default()
}

impl Target {
    /// `key=value` lines for crash folders.
    pub fn describe(&self) -> String {
        let kernel = match &self.kasan {
            Some(k) => manifest(k, "kernel"),
            None => manifest(&self.base_image, "kernel"),
        };
        let jool = match &self.modules {
            Some(m) => format!(
                "{} ({})",
                manifest(m, "jool_version"),
                manifest(m, "jool_source")
            ),
            None => manifest(&self.base_image, "jool_version"),
        };
        format!(
            "release={}\nkernel={kernel}\njool={jool}\nimage={}\nkasan={}\nmodules={}\ncover={}\n",
            self.release,
            self.base_image.display(),
            self.kasan.as_ref().map_or("no".into(), |k| k.display().to_string()),
            self.modules.as_ref().map_or("stock".into(), |m| m.display().to_string()),
            self.modules.as_ref().map_or("none".into(), |m| manifest(m, "cover")),
        )
    }
}

/// Runs `scripts/fuzz-kernel-build ARGS` (its progress on stderr) and
/// returns the folder it printed last.
pub fn build_script(args: &[&str]) -> Result<PathBuf> {
    let failed =
        |status: String| Error::Build { args: args.join(" "), status };
    let (status, dir) = crate::host::script_folder("fuzz-kernel-build", args)
        .map_err(Error::at("run", Path::new("scripts/fuzz-kernel-build")))?;
    if !status.success() {
        return Err(failed(status.to_string()));
    }
    dir.ok_or_else(|| failed("it printed no folder".into()))
}

/// Resolves `--release`, `--kasan`, `--modules` and `--jool-ref`.
pub fn target(args: &Settings, release: &str) -> Result<Target> {
    let base_image = vm::image_for(release, &args.vm)?;
    let img = base_image.to_string_lossy().into_owned();
    let kasan = if args.kasan {
        Some(build_script(&["kasan", "--image", &img])?)
    } else {
        None
    };
    let modules = match &args.modules {
        Modules::Stock if kasan.is_some() => {
            return Err(Error::Usage(
                "--kasan needs modules built for that kernel (--modules auto)"
                    .into(),
            ))
        }
        Modules::Stock => None,
        Modules::Auto => {
            let mut a = vec!["modules", "--image", &img];
            let k = kasan.as_ref().map(|k| k.to_string_lossy().into_owned());
            if let Some(k) = &k {
                a.extend(["--kernel", k]);
            }
            if let Some(r) = &args.jool_ref {
                a.extend(["--jool-ref", r]);
            }
            Some(build_script(&a)?)
        }
        Modules::Dir(dir) => Some(dir.clone()),
    };
    let image =
        kasan.as_ref().map_or_else(|| base_image.clone(), |k| k.join("image"));
    Ok(Target {
        release: release.to_owned(),
        image,
        base_image,
        kasan,
        modules,
        profile: args.jool_ref.as_ref().map(|_| release.to_owned()),
    })
}

/// Copies the `.ko` files of `from` to `to` without debug info (faster
/// over 9p; symbols stay), plus a KASAN kernel's `modules.builtin`.
pub fn stage_modules(
    from: &Path,
    kasan: Option<&Path>,
    to: &Path,
) -> Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::entries(from)? {
        let name = e.file_name();
        if !name.to_string_lossy().ends_with(".ko") {
            continue;
        }
        let st = Command::new("objcopy")
            .arg("--strip-debug")
            .arg(e.path())
            .arg(to.join(&name))
            .status();
        if !st.is_ok_and(|s| s.success()) {
            fs::copy(&e.path(), &to.join(&name))?;
        }
    }
    if let Some(k) = kasan {
        fs::copy(&k.join("modules.builtin"), &to.join("modules.builtin"))?;
    }
    Ok(())
}

/// A fresh private folder (`jool-fuzz-WHAT-XXXXXX`, [`host::private_dir`])
/// for `what`: nothing another user prepared is reused.
pub fn private_dir(what: &str) -> Result<PathBuf> {
    private_dir_in(&std::env::temp_dir(), what)
}

/// [`private_dir`] under `base`.
pub fn private_dir_in(base: &Path, what: &str) -> Result<PathBuf> {
    crate::host::private_dir_in(base, &format!("jool-fuzz-{what}"))
        .map_err(|e| Error::io("make a private folder", e))
}

/// The guest's view of the host folder shared as `/h/fixtures`.
pub const SHARED: &str = "/h/fixtures";

/// Boots one guest of `t` with `shared` as its `/h/fixtures`, running
/// `jool-harness WORDS...`; its hard limit is `--timeout` plus
/// Boots a guest that runs one `task` from a plan in `shared` (the
/// target's modules staged beside it, when it has its own), with
/// `extra_secs` more than the boot timeout and `tag` before its lines.
pub fn boot_task(
    args: &Settings,
    t: &Target,
    shared: &Path,
    task: super::guest::Task,
    limits: (u64, &str),
) -> Result<GuestRun> {
    let mut plan = super::guest::GuestPlan {
        profile: t.profile.clone(),
        task,
        ..super::guest::GuestPlan::default()
    };
    if let Some(m) = &t.modules {
        stage_modules(m, t.kasan.as_deref(), &shared.join("modules"))?;
        plan.modules = Some(format!("{SHARED}/modules").into());
    }
    fs::write_json(&shared.join("plan.json"), &plan)?;
    let words = guest_words(&format!("{SHARED}/plan.json"), &[]);
    boot(args, t, shared, &words, limits)
}

/// `extra_secs`, its log lines prefixed by `tag`.
pub fn boot(
    args: &Settings,
    t: &Target,
    shared: &Path,
    words: &[String],
    (extra_secs, tag): (u64, &str),
) -> Result<GuestRun> {
    let mut config = args.vm.clone();
    config.image = Some(t.image.clone());
    config.timeout += std::time::Duration::from_secs(extra_secs);
    if !tag.is_empty() {
        config.events = vm::Events::stderr(tag);
    }
    let guest = vm::Guest {
        args: words.to_vec(),
        fixtures: Some(shared.to_owned()),
        ..vm::Guest::default()
    };
    Ok(vm::boot_guest(&t.release, &config, &guest)?)
}

/// `jool-harness fuzz-kernel --backend kernel --quiet-console
/// --guest-plan PLAN` and `more`: what a guest runs.
pub fn guest_words(plan: &str, more: &[&str]) -> Vec<String> {
    [
        "fuzz-kernel",
        "--backend",
        "kernel",
        "--quiet-console",
        "--guest-plan",
        plan,
    ]
    .iter()
    .chain(more)
    .map(|w| (*w).to_owned())
    .collect()
}

/// The folder of kept inputs: `--corpus`, or
/// `target/fuzz-kernel-corpus/RELEASE` (`-REF` with `--jool-ref`).
pub fn corpus_dir(args: &Settings, release: &str) -> PathBuf {
    args.corpus.clone().unwrap_or_else(|| {
        let name = match &args.jool_ref {
            Some(r) => format!("{release}-{r}"),
            None => release.to_owned(),
        };
        PathBuf::from("target/fuzz-kernel-corpus").join(name)
    })
}

/// Copies the files of `from` (not recursively) into `to`.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::entries(from)? {
        if e.path().is_file() {
            fs::copy(&e.path(), &to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Copies the files under `from` into `to`, folders recreated (nothing
/// when `from` does not exist).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(from) else { return Ok(()) };
    fs::create_dir_all(to)?;
    for e in rd.flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_private_dir_is_fresh_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let (a, b) = (private_dir("t").unwrap(), private_dir("t").unwrap());
        assert_ne!(a, b);
        let mode = std::fs::metadata(&a).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        for d in [a, b] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn test_manifest_reads_the_exact_key() {
        let d = private_dir("manifest").unwrap();
        std::fs::write(d.join("manifest"), "kernel_x=no\nkernel=6.1.0\n")
            .unwrap();
        assert_eq!(manifest(&d, "kernel"), "6.1.0");
        assert_eq!(manifest(&d, "jool"), "");
        std::fs::remove_dir_all(d).unwrap();
    }
}
