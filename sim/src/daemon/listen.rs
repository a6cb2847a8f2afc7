//! Taking the socket path, safely when run as root on a shared host.
//!
//! The socket is bound and listening in a private folder beside the path
//! (`mkdtemp`, so no one else can touch it there), then moved onto the
//! path with one `renameat2`:
//!
//! - `RENAME_NOREPLACE` when nothing is there: of two daemons started at
//!   once, exactly one gets the path; the other then finds it live.
//! - When something is there, it is left alone unless it is a socket that
//!   refuses connections (the file of a daemon that died). That one is
//!   swapped out with `RENAME_EXCHANGE` and deleted only if what came out
//!   is the very file that was found dead (same device and inode: a dead
//!   socket file never comes back to life); anything else is swapped back.
//!
//! A live daemon (its socket accepts a connection) or anything that is not
//! a socket (a file, a symlink, a folder) makes [`Listener::bind`] fail
//! with an error that says which; nothing is removed. On drop, the path is
//! removed only while it is still this listener's socket file.

use std::{
    fs, io,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::fs::{FileTypeExt, MetadataExt, PermissionsExt},
    },
    path::{Path, PathBuf},
};

use nix::{
    fcntl::{renameat2, RenameFlags, AT_FDCWD},
    sys::socket::{
        bind, connect, listen, socket, AddressFamily, Backlog, SockFlag,
        SockType, UnixAddr,
    },
    unistd::mkdtemp,
};

use super::Error;

/// Attempts at taking the path while other processes change it.
const ATTEMPTS: usize = 8;

/// A file's identity: `(device, inode)`.
type FileId = (u64, u64);

/// A listening socket that owns its path.
#[derive(Debug)]
pub(super) struct Listener {
    pub(super) fd: OwnedFd,
    pub(super) path: PathBuf,
    id: FileId,
}

fn io_err(what: &'static str) -> impl FnOnce(nix::Error) -> Error {
    move |e| Error::Io { what, source: e.into() }
}

fn file_id(m: &fs::Metadata) -> FileId {
    (m.dev(), m.ino())
}

impl Listener {
    /// Listens on `path` (mode 0666: the kernel decides per request what
    /// a caller may do).
    pub(super) fn bind(path: &Path) -> Result<Self, Error> {
        let staging = Staging::new(path)?;
        let tmp = staging.0.join("sock");
        let fd = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(io_err("create a socket"))?;
        // The path must fit a socket address: checked before anything is
        // created.
        UnixAddr::new(path).map_err(io_err("use the socket path"))?;
        let tmp_addr =
            UnixAddr::new(&tmp).map_err(io_err("use a path beside it"))?;
        bind(fd.as_raw_fd(), &tmp_addr).map_err(io_err("bind"))?;
        let perm = fs::Permissions::from_mode(0o666);
        fs::set_permissions(&tmp, perm)
            .map_err(|e| Error::Io { what: "chmod the socket", source: e })?;
        let backlog = Backlog::new(1024).unwrap_or(Backlog::MAXCONN);
        listen(&fd, backlog).map_err(io_err("listen"))?;
        let id = fs::symlink_metadata(&tmp)
            .map(|m| file_id(&m))
            .map_err(|e| Error::Io { what: "stat the socket", source: e })?;
        take(&tmp, path)?;
        Ok(Self { fd, path: path.to_owned(), id })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|m| file_id(&m) == self.id);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A private folder beside the path, removed on drop.
struct Staging(PathBuf);

impl Staging {
    fn new(path: &Path) -> Result<Self, Error> {
        let name = path.file_name().ok_or_else(|| Error::Io {
            what: "use the socket path",
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "no file name",
            ),
        })?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut template = parent.as_os_str().to_owned();
        template.push("/.");
        template.push(name);
        template.push(".XXXXXX");
        let dir = mkdtemp(Path::new(&template))
            .map_err(io_err("create a folder beside the socket path"))?;
        Ok(Self(dir))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Whatever is left in it is ours: our socket if taking the path
        // failed, or the dead socket file swapped out of the path.
        let _ = fs::remove_file(self.0.join("sock"));
        let _ = fs::remove_dir(&self.0);
    }
}

/// Moves `tmp` onto `path` (see the module's documentation).
fn take(tmp: &Path, path: &Path) -> Result<(), Error> {
    for _ in 0..ATTEMPTS {
        match rename(tmp, path, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(io_err("move the socket onto its path")(e)),
        }
        let Some(dead) = probe(path)? else { continue };
        match rename(tmp, path, RenameFlags::RENAME_EXCHANGE) {
            Ok(()) => {}
            Err(nix::Error::ENOENT) => continue,
            Err(e) => return Err(io_err("replace a dead socket file")(e)),
        }
        let out = fs::symlink_metadata(tmp).map(|m| file_id(&m));
        if out.is_ok_and(|id| id == dead) {
            // The dead file is in our folder now: Staging deletes it.
            return Ok(());
        }
        // Someone changed the path between the probe and the swap.
        rename(tmp, path, RenameFlags::RENAME_EXCHANGE)
            .map_err(io_err("put back what was on the path"))?;
    }
    Err(Error::Contended(path.to_owned()))
}

fn rename(from: &Path, to: &Path, flags: RenameFlags) -> nix::Result<()> {
    renameat2(AT_FDCWD, from, AT_FDCWD, to, flags)
}

/// What is on `path`: `None` if nothing is there any more, the identity
/// of a dead socket file, or an error for anything else.
fn probe(path: &Path) -> Result<Option<FileId>, Error> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io { what: "stat the path", source })
        }
        Ok(m) => m,
    };
    if !meta.file_type().is_socket() {
        return Err(Error::NotASocket(path.to_owned()));
    }
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(io_err("create a socket"))?;
    let addr = UnixAddr::new(path).map_err(io_err("use the socket path"))?;
    match connect(fd.as_raw_fd(), &addr) {
        Err(nix::Error::ECONNREFUSED) => Ok(Some(file_id(&meta))),
        Err(nix::Error::ENOENT) => Ok(None),
        // Accepting, or busy (EAGAIN), or a socket of another type
        // (EPROTOTYPE): someone is listening there.
        Ok(()) | Err(nix::Error::EAGAIN | nix::Error::EPROTOTYPE) => {
            Err(Error::Live(path.to_owned()))
        }
        Err(e) => Err(io_err("connect to the socket path")(e)),
    }
}
