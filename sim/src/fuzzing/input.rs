//! [`Input`]: structure decoded by hand from the fuzzer's bytes.
//!
//! Every read succeeds: past the end, numbers read as 0 and byte strings
//! come back short. So every byte string is a valid input, and a mutation
//! of one field shifts the fields after it no more than its own width.

/// A cursor over fuzzer bytes.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// Bytes left.
    pub fn len(&self) -> usize {
        self.rest.len()
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Up to `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = tail;
        head
    }

    /// `N` bytes, zero-filled past the end.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        if let Some((head, tail)) = self.rest.split_first_chunk::<N>() {
            self.rest = tail;
            return *head;
        }
        let mut out = [0; N];
        let head = self.take(N);
        out[..head.len()].copy_from_slice(head);
        out
    }

    /// A byte.
    pub fn u8(&mut self) -> u8 {
        let Some((&b, tail)) = self.rest.split_first() else { return 0 };
        self.rest = tail;
        b
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// A number below `n` (one byte; `n` must be at most 256).
    ///
    /// # Panics
    /// If `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n
    }

    /// One of `items`, chosen by one byte.
    ///
    /// # Panics
    /// If `items` is empty.
    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }

    /// A byte string prefixed by its length (one byte).
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = usize::from(self.u8());
        self.take(n)
    }

    /// A byte string prefixed by its length (little-endian u16).
    pub fn long_chunk(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.take(n)
    }

    /// Everything left.
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_reads_past_the_end_are_zero() {
        let mut i = Input::new(&[1, 2, 3]);
        assert_eq!(i.u16(), 0x0201);
        assert_eq!(i.u32(), 3);
        assert_eq!(i.u8(), 0);
        assert!(i.is_empty());
    }

    #[test]
    fn test_chunks() {
        let mut i = Input::new(&[2, 9, 8, 7, 1, 0, 5, 6]);
        assert_eq!(i.chunk(), &[9, 8]);
        assert_eq!(i.u8(), 7);
        assert_eq!(i.long_chunk(), &[5]);
        assert_eq!(i.rest(), &[6]);
    }
}
