//! The journal: every request sent to the real kernel since the base
//! state was last restored, written to a file before the request is sent.
//!
//! In a guest the file lies on the host's 9p share, so a request whose
//! `sendmsg()` oopses the kernel, or panics the whole guest, is already
//! on the host: the crash folder and its reproducer are built from it.
//!
//! The fuzzer writes requests in batches (one write, one 9p round trip,
//! for 512 of them) before sending the first of the batch, and the index
//! of each request to a [`Marker`] in the guest's own memory before
//! sending it: a process killed by an oops leaves the marker to its
//! parent; a guest that died leaves only the journal, and the host finds
//! the request by replaying it.
//!
//! Layout: records one after the other, each
//! `"JR" | exec (u64 LE) | ext_ack (u8) | len (u32 LE) | request`.
//! Restoring the base state appends a record with exec 0 (the entries
//! before it no longer matter), written with the requests that follow it
//! in the same write; every [`TRUNCATE_EVERY`] restarts the file is
//! emptied instead, so it stays small.

use std::{fs::File, io, os::unix::fs::FileExt, path::Path};

/// Record magic.
const MAGIC: [u8; 2] = *b"JR";
/// Record header length.
const HEADER: usize = 2 + 8 + 1 + 4;
/// Largest request a record may hold.
const MAX_LEN: usize = 1 << 20;
/// Restarts between two truncations of the file.
pub const TRUNCATE_EVERY: u64 = 64;

/// One journaled request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its index in the run (1-based).
    pub exec: u64,
    /// Whether the socket had `NETLINK_EXT_ACK`.
    pub ext_ack: bool,
    /// The datagram, as sent (Jool's real family id).
    pub request: Vec<u8>,
}

/// The journal being written.
#[derive(Debug)]
pub struct Journal {
    file: File,
    pos: u64,
    restarts: u64,
}

/// Opens `path` for reading and writing, created or emptied.
fn open_fresh(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
}

impl Journal {
    /// Creates (or empties) the journal at `path`.
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(Self { file: open_fresh(path)?, pos: 0, restarts: 0 })
    }

    /// Marks that the base state was just restored and `next` (the rest
    /// of the batch) follows, in one write; or empties the file and
    /// writes `next` (every [`TRUNCATE_EVERY`] restarts).
    pub fn restart(&mut self, next: &[Entry]) -> io::Result<()> {
        self.restarts += 1;
        if self.restarts % TRUNCATE_EVERY == 0 {
            self.file.set_len(0)?;
            self.pos = 0;
            return self.append_all(next);
        }
        let mark = Entry { exec: 0, ext_ack: false, request: Vec::new() };
        let mut all = Vec::with_capacity(next.len() + 1);
        all.push(mark);
        all.extend_from_slice(next);
        self.append_all(&all)
    }

    /// Appends `e` with one write.
    pub fn append(&mut self, e: &Entry) -> io::Result<()> {
        self.append_all(std::slice::from_ref(e))
    }

    /// Appends every entry of `es` with one write (one 9p round trip).
    pub fn append_all(&mut self, es: &[Entry]) -> io::Result<()> {
        let mut b = Vec::new();
        for e in es {
            b.extend_from_slice(&MAGIC);
            b.extend_from_slice(&e.exec.to_le_bytes());
            b.push(u8::from(e.ext_ack));
            b.extend_from_slice(&(e.request.len() as u32).to_le_bytes());
            b.extend_from_slice(&e.request);
        }
        self.file.write_all_at(&b, self.pos)?;
        self.pos += b.len() as u64;
        Ok(())
    }
}

/// The index of the request being sent, in a small local file (tmpfs
/// or page cache: a few microseconds a write).
#[derive(Debug)]
pub struct Marker {
    file: File,
}

impl Marker {
    /// Creates the marker file at `path`.
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(Self { file: open_fresh(path)? })
    }

    /// Records that request `exec` is being sent.
    pub fn set(&self, exec: u64) -> io::Result<()> {
        self.file.write_all_at(&exec.to_le_bytes(), 0)
    }
}

/// The index a marker file holds (None if unreadable).
pub fn read_marker(path: &Path) -> Option<u64> {
    let b = std::fs::read(path).ok()?;
    Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?))
}

/// The entries of journal bytes after the last restart record, up to the
/// first incomplete or foreign record (a write cut short by a crash).
pub fn parse(b: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut rest = b;
    while rest.len() >= HEADER && rest[..2] == MAGIC {
        let exec =
            u64::from_le_bytes(rest[2..10].try_into().unwrap_or_default());
        let ext_ack = rest[10] != 0;
        let len =
            u32::from_le_bytes(rest[11..15].try_into().unwrap_or_default())
                as usize;
        if len > MAX_LEN || rest.len() < HEADER + len {
            break;
        }
        if exec == 0 {
            out.clear();
        } else {
            out.push(Entry {
                exec,
                ext_ack,
                request: rest[HEADER..HEADER + len].to_vec(),
            });
        }
        rest = &rest[HEADER + len..];
    }
    out
}

/// The entries of the journal at `path` (none if it cannot be read).
pub fn read(path: &Path) -> Vec<Entry> {
    std::fs::read(path).map(|b| parse(&b)).unwrap_or_default()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_append_restart_parse() {
        let dir = crate::host::TempDir::new("jool-journal-test").unwrap();
        let path = dir.path().join("j");
        let mut j = Journal::create(&path).unwrap();
        let e = |exec, n| Entry {
            exec,
            ext_ack: exec % 2 == 0,
            request: vec![n; n as usize],
        };
        j.append(&e(1, 3)).unwrap();
        j.restart(&[e(2, 5)]).unwrap();
        j.append(&e(3, 0)).unwrap();
        assert_eq!(read(&path), vec![e(2, 5), e(3, 0)]);
        // A record cut short is dropped, the ones before it stay.
        let mut b = std::fs::read(&path).unwrap();
        b.truncate(b.len() - 1);
        assert_eq!(parse(&b), vec![e(2, 5)]);
        // Every TRUNCATE_EVERY restarts, the file starts over.
        for _ in 1..TRUNCATE_EVERY {
            j.restart(&[e(4, 1)]).unwrap();
        }
        assert_eq!(read(&path), vec![e(4, 1)]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
    }
}
