//! Coverage of the real module: the program counters Jool's instrumented
//! objects report through our `jool_kcov` companion module
//! (guest/jool-kcov), made module-relative, and the edges between
//! consecutive ones, which decide which inputs the fuzzer keeps.
//!
//! `/dev/jool_kcov` is driven with write(2) and read(2) only: `trace N`
//! traces this task, each read returns the PCs since the last one.

use std::{
    collections::HashSet,
    fs::File,
    io::{self, Read, Write},
    path::Path,
};

/// The device of `jool_kcov.ko`.
pub const DEVICE: &str = "/dev/jool_kcov";

/// PCs one request may leave (more are dropped by the module).
pub const TRACE_ENTRIES: usize = 1 << 16;

/// The Jool modules whose code is instrumented, in the order their index
/// is encoded in a [`Loc`].
pub const MODULES: [&str; 3] = ["jool_common", "jool_siit", "jool"];

/// Largest module text a PC may lie in past its module's base.
const MAX_TEXT: u64 = 16 << 20;

/// A PC as (module index, offset in its `.text`), packed: index in the
/// top 8 bits.
pub type Loc = u64;

/// Packs a module index and an offset.
pub fn loc(module: usize, offset: u64) -> Loc {
    ((module as u64) << 56) | (offset & ((1 << 56) - 1))
}

/// The module name and offset of a [`Loc`].
pub fn unloc(l: Loc) -> (&'static str, u64) {
    let m = (l >> 56) as usize;
    (MODULES.get(m).copied().unwrap_or("?"), l & ((1 << 56) - 1))
}

/// Where each instrumented module's `.text` starts in this kernel
/// (`/sys/module/NAME/sections/.text`, root only).
#[derive(Clone, Debug, Default)]
pub struct ModuleMap {
    /// (base, module index), by base.
    bases: Vec<(u64, usize)>,
}

impl ModuleMap {
    /// Reads the bases of the loaded [`MODULES`] under `sys_module`
    /// (normally `/sys/module`).
    pub fn read(sys_module: &Path) -> Self {
        let mut bases: Vec<(u64, usize)> = MODULES
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let p = sys_module.join(m).join("sections/.text");
                let t = std::fs::read_to_string(p).ok()?;
                let v =
                    u64::from_str_radix(t.trim().trim_start_matches("0x"), 16);
                Some((v.ok()?, i))
            })
            .collect();
        bases.sort_unstable();
        Self { bases }
    }

    /// A map of explicit bases (tests).
    pub fn from_bases(mut bases: Vec<(u64, usize)>) -> Self {
        bases.sort_unstable();
        Self { bases }
    }

    /// The module-relative location of `pc`, if it lies in a module.
    pub fn locate(&self, pc: u64) -> Option<Loc> {
        let i = self.bases.partition_point(|(b, _)| *b <= pc);
        let (base, m) = *self.bases.get(i.checked_sub(1)?)?;
        (pc - base < MAX_TEXT).then(|| loc(m, pc - base))
    }

    /// Whether no module was found.
    pub fn is_empty(&self) -> bool {
        self.bases.is_empty()
    }
}

/// This task's trace through `/dev/jool_kcov`.
#[derive(Debug)]
pub struct Kcov {
    file: File,
    buf: Vec<u8>,
    map: ModuleMap,
}

impl Kcov {
    /// Opens the device and starts tracing this task; `map`: where the
    /// modules are.
    pub fn open(map: ModuleMap) -> io::Result<Self> {
        let mut file =
            std::fs::OpenOptions::new().read(true).write(true).open(DEVICE)?;
        file.write_all(format!("trace {TRACE_ENTRIES}").as_bytes())?;
        Ok(Self { file, buf: vec![0; TRACE_ENTRIES * 8], map })
    }

    /// Appends the locations reached since the last call to `out` (PCs
    /// outside the modules are dropped).
    pub fn take(&mut self, out: &mut Vec<Loc>) -> io::Result<()> {
        let n = self.file.read(&mut self.buf)?;
        let pcs = self.buf[..n - n % 8].chunks_exact(8);
        let map = &self.map;
        out.extend(pcs.filter_map(|c| {
            let pc = u64::from_le_bytes(c.try_into().ok()?);
            map.locate(pc)
        }));
        Ok(())
    }
}

/// Every PC any context reached while `jool_kcov`'s global mode was on
/// (`DEVICE` read without tracing), as locations.
pub fn global_set(map: &ModuleMap) -> io::Result<Vec<Loc>> {
    let mut b = Vec::new();
    File::open(DEVICE)?.read_to_end(&mut b)?;
    let mut v: Vec<Loc> = b
        .chunks_exact(8)
        .filter_map(|c| Some(u64::from_le_bytes(c.try_into().ok()?)))
        .filter(|pc| *pc != 0)
        .filter_map(|pc| map.locate(pc))
        .collect();
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// Turns `jool_kcov`'s global mode on or off and, when turning it on,
/// empties the set first.
pub fn set_global(on: bool) -> io::Result<()> {
    if on {
        std::fs::OpenOptions::new()
            .write(true)
            .open(DEVICE)?
            .write_all(b"clear")?;
    }
    std::fs::write(
        "/sys/module/jool_kcov/parameters/global",
        if on { "1" } else { "0" },
    )
}

/// An edge: a hash of two consecutive locations (like AFL's and
/// syzkaller's `prev ^ cur`, with the previous one mixed first so that
/// A->B and B->A differ and small values do not collide).
pub fn edge(prev: Loc, cur: Loc) -> u64 {
    let mut h = prev.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29) ^ cur;
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 27)
}

/// Bits of the edge bitmap (4 Mi bits, 512 KiB).
const EDGE_BITS: u32 = 22;

/// What the fuzzer has reached so far: locations and edges.
///
/// Each trace is checked against a bitmap of edge hashes (a bit test per
/// PC, no hashing of sets: the fuzzer runs emulated); the sets take only
/// what the bitmap has not seen. A new location always comes with a new
/// edge (the one into it).
#[derive(Clone, Debug)]
pub struct Coverage {
    bits: Vec<u64>,
    /// Distinct locations.
    pub locs: HashSet<Loc>,
    /// Distinct edges.
    pub edges: HashSet<u64>,
}

impl Default for Coverage {
    fn default() -> Self {
        Self {
            bits: vec![0; 1 << (EDGE_BITS - 6)],
            locs: HashSet::new(),
            edges: HashSet::new(),
        }
    }
}

impl Coverage {
    /// Adds one request's trace; returns how many edges were new (a
    /// request that adds any is worth keeping).
    pub fn add(&mut self, trace: &[Loc]) -> usize {
        let mut new = 0;
        let mut prev = 0;
        for &l in trace {
            let e = edge(prev, l);
            let i = (e >> (64 - EDGE_BITS)) as usize;
            let (word, bit) = (i >> 6, 1u64 << (i & 63));
            if self.bits[word] & bit == 0 {
                self.bits[word] |= bit;
                self.edges.insert(e);
                self.locs.insert(l);
                new += 1;
            }
            prev = l;
        }
        new
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_locate() {
        let m = ModuleMap::from_bases(vec![
            (0xffff_ffff_c100_0000, 0),
            (0xffff_ffff_c000_0000, 2),
        ]);
        assert_eq!(m.locate(0xffff_ffff_c100_0010), Some(loc(0, 0x10)));
        assert_eq!(m.locate(0xffff_ffff_c000_0004), Some(loc(2, 4)));
        assert_eq!(m.locate(0xffff_ffff_bfff_ffff), None);
        assert_eq!(m.locate(0xffff_ffff_c100_0000 + MAX_TEXT), None);
        assert_eq!(unloc(loc(2, 4)), ("jool", 4));
    }

    #[test]
    fn test_new_edges_count_once() {
        let mut c = Coverage::default();
        assert_eq!(c.add(&[1, 2, 3]), 3);
        assert_eq!(c.add(&[1, 2, 3]), 0);
        // Same locations, another path: new edges, no new location.
        assert_eq!(c.add(&[1, 3, 2]), 2);
        assert_eq!(c.locs.len(), 3);
        assert_eq!(c.edges.len(), 5);
        assert_ne!(edge(1, 2), edge(2, 1));
    }
}
