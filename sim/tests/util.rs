//! Helpers shared by the integration tests: folders of our own in the
//! temporary folder, never a predictable path there.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

/// A fresh folder `PREFIX-XXXXXX` (mkdtemp, so no other user can have
/// prepared it; then 0755, as some tests run programs as uid 65534 on
/// what is in it), removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(prefix: &str) -> Self {
        let template = std::env::temp_dir().join(format!("{prefix}-XXXXXX"));
        let dir = nix::unistd::mkdtemp(&template).expect("mkdtemp");
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755))
            .expect("chmod 0755");
        Self(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Made by mkdtemp in `new`: ours to remove.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A socket path in a fresh folder of its own, which goes (with the
/// socket) when this is dropped.
pub(crate) struct SocketPath {
    path: PathBuf,
    _dir: TempDir,
}

impl std::ops::Deref for SocketPath {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for SocketPath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for SocketPath {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

/// A fresh socket path.
pub(crate) fn socket_path() -> SocketPath {
    let dir = TempDir::new("jool-sim-test");
    SocketPath { path: dir.join("daemon.sock"), _dir: dir }
}
