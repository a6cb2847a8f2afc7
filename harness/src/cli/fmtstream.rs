//! glibc argp's word-wrapping output stream, reimplemented: what the real
//! client's `display --help`, `--usage` and `Try ...` lines go through.
//!
//! argp prints help into a 200-byte buffer that wraps words past column
//! 79, indents continuation lines (the wrap margin), and pads new lines
//! (the left margin). Its output depends on where the buffer happened to
//! be flushed: with a long program name (`--program-name`) some blanks
//! reach the output before the buffered text that precedes them. The
//! model below keeps that buffer, its size and its flushes, so the bytes
//! come out as glibc's do; nothing here can panic or grow without bound
//! (positions outside the buffer read as NUL, writes outside it are
//! dropped).

/// glibc's `INIT_BUF_SIZE`.
const INIT_BUF_SIZE: usize = 200;

/// glibc's `PRINTF_SIZE_GUESS`.
const PRINTF_SIZE_GUESS: usize = 150;

/// `isblank()`.
fn blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// An `argp_fmtstream` writing into a byte vector.
#[derive(Debug)]
pub(crate) struct FmtStream {
    out: Vec<u8>,
    buf: Vec<u8>,
    p: isize,
    point_offs: isize,
    point_col: isize,
    lmargin: isize,
    rmargin: isize,
    wmargin: isize,
}

impl FmtStream {
    /// `__argp_make_fmtstream(stream, lmargin, rmargin, wmargin)`.
    pub(crate) fn new(lmargin: usize, rmargin: usize, wmargin: usize) -> Self {
        Self {
            out: Vec::new(),
            buf: vec![0; INIT_BUF_SIZE],
            p: 0,
            point_offs: 0,
            point_col: 0,
            lmargin: to_isize(lmargin),
            rmargin: to_isize(rmargin),
            wmargin: to_isize(wmargin),
        }
    }

    fn end(&self) -> isize {
        to_isize(self.buf.len())
    }

    fn at(&self, i: isize) -> u8 {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.buf.get(i))
            .copied()
            .unwrap_or(0)
    }

    fn set(&mut self, i: isize, c: u8) {
        if let Some(b) =
            usize::try_from(i).ok().and_then(|i| self.buf.get_mut(i))
        {
            *b = c;
        }
    }

    /// `memmove(buf + to, buf + from, n)`, clipped to the buffer.
    fn copy(&mut self, from: isize, to: isize, n: isize) {
        let len = self.end();
        let n = n.min(len - from).min(len - to);
        if n > 0 && from >= 0 && to >= 0 {
            let (f, t, n) = (from as usize, to as usize, n as usize);
            self.buf.copy_within(f..f + n, t);
        }
    }

    /// `fprintf("%.*s")` of the buffer from `from` to `to`: up to a NUL.
    fn emit(&mut self, from: isize, to: isize) {
        let (f, t) = (from.max(0) as usize, to.max(0) as usize);
        if let Some(bytes) = self.buf.get(f..t.min(self.buf.len())) {
            let n = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
            self.out.extend_from_slice(&bytes[..n]);
        }
    }

    /// Pads a new line to the left margin.
    fn pad_line(&mut self, buf: &mut isize) {
        let pad = self.lmargin;
        if self.p + pad < self.end() {
            self.copy(*buf, *buf + pad, self.p - *buf);
            self.p += pad;
            for i in 0..pad {
                self.set(*buf + i, b' ');
            }
            *buf += pad;
        } else {
            // No room in the buffer: straight to the stream.
            self.out.extend(std::iter::repeat_n(b' ', pad as usize));
        }
        self.point_col = pad;
    }

    /// `__argp_fmtstream_update`: wraps what was written since the last
    /// update.
    fn update(&mut self) {
        let mut buf = self.point_offs;
        while buf < self.p {
            if self.point_col == 0 && self.lmargin != 0 {
                self.pad_line(&mut buf);
            }
            let len = self.p - buf;
            let found = (buf..self.p).find(|&i| self.at(i) == b'\n');
            self.point_col = self.point_col.max(0);
            let nl = match found {
                None if self.point_col + len < self.rmargin => {
                    self.point_col += len;
                    break;
                }
                None => self.p,
                Some(n) if self.point_col + (n - buf) < self.rmargin => {
                    self.point_col = 0;
                    buf = n + 1;
                    continue;
                }
                Some(n) => n,
            };
            buf = self.wrap(buf, nl, len);
        }
        self.point_offs = self.p;
    }

    /// Breaks the overlong line at `buf` (its newline, or the end, at
    /// `nl`); returns where to scan on.
    fn wrap(&mut self, buf: isize, nl: isize, len: isize) -> isize {
        let r = self.rmargin - 1;
        let start = buf + (r + 1 - self.point_col);
        let mut p = start;
        while p >= buf && !blank(self.at(p)) {
            p -= 1;
        }
        let (mut nl, mut nextline) = (nl, p + 1);
        if nextline > buf {
            if p >= buf {
                p -= 1;
                while p >= buf && blank(self.at(p)) {
                    p -= 1;
                }
            }
            nl = p + 1;
        } else {
            // One word longer than the line: it stays on a line of its own.
            p = start + 1;
            while p < nl && !blank(self.at(p)) {
                p += 1;
            }
            if p == nl {
                self.point_col = 0;
                return nl + 1;
            }
            nl = p;
            p += 1;
            while blank(self.at(p)) && p < self.end() {
                p += 1;
            }
            nextline = p;
        }
        self.break_line(buf, nl, nextline, len)
    }

    /// Puts the newline at `nl` and the wrap margin before `nextline`.
    fn break_line(
        &mut self,
        mut buf: isize,
        mut nl: isize,
        mut nextline: isize,
        mut len: isize,
    ) -> isize {
        let wm = self.wmargin;
        let at_end = nextline == buf + len + 1;
        let short = if at_end {
            self.end() - nl < wm + 1
        } else {
            nextline - (nl + 1) < wm
        };
        if short && self.p > nextline {
            if self.end() - self.p > wm + 1 {
                let mv = self.p - nextline;
                self.copy(nextline, nl + 1 + wm, mv);
                nextline = nl + 1 + wm;
                len = nextline + mv - buf;
                self.set(nl, b'\n');
                nl += 1;
            } else {
                // Flush the first line to make room.
                self.emit(0, nl);
                self.out.push(b'\n');
                len += buf;
                nl = 0;
                buf = 0;
            }
        } else {
            self.set(nl, b'\n');
            nl += 1;
        }
        let room = nextline - nl >= wm
            || (nextline == buf + len + 1 && self.end() - nextline >= wm);
        for _ in 0..wm {
            if room {
                self.set(nl, b' ');
                nl += 1;
            } else {
                self.out.push(b' ');
            }
        }
        if nl < nextline {
            self.copy(nextline, nl, buf + len - nextline);
        }
        len -= nextline - buf;
        self.p = nl + len;
        self.point_col = if wm != 0 { wm } else { -1 };
        nl
    }

    /// `__argp_fmtstream_ensure`: room for `amount` more bytes.
    fn ensure(&mut self, amount: usize) {
        let amount = to_isize(amount);
        if self.end() - self.p < amount {
            self.update();
            self.emit(0, self.p);
            self.p = 0;
            self.point_offs = 0;
            if self.end() < amount {
                let size = self.buf.len() + amount as usize;
                self.buf.resize(size, 0);
            }
        }
    }

    /// `__argp_fmtstream_write` (and `puts`).
    pub(crate) fn write(&mut self, s: &[u8]) {
        let len = to_isize(s.len());
        if self.p + len > self.end() {
            self.ensure(s.len());
        }
        self.put_at_p(s);
    }

    fn put_at_p(&mut self, s: &[u8]) {
        for &c in s {
            self.set(self.p, c);
            self.p += 1;
        }
    }

    /// `__argp_fmtstream_putc`.
    pub(crate) fn putc(&mut self, c: u8) {
        self.write(&[c]);
    }

    /// `__argp_fmtstream_printf` of already formatted text.
    pub(crate) fn printf(&mut self, s: &[u8]) {
        let mut guess = PRINTF_SIZE_GUESS;
        loop {
            self.ensure(guess);
            let avail = self.end() - self.p;
            if to_isize(s.len()) < avail {
                // vsnprintf's terminating NUL stays past the text: a
                // later wrap may look at it.
                self.put_at_p(s);
                self.set(self.p, 0);
                return;
            }
            // vsnprintf wrote what fitted and a NUL; printf tries again.
            let fit = (avail - 1).max(0) as usize;
            let p = self.p;
            self.put_at_p(&s[..fit.min(s.len())]);
            self.set(self.p, 0);
            self.p = p;
            guess = s.len() + 1;
        }
    }

    fn sync(&mut self) {
        if self.p > self.point_offs {
            self.update();
        }
    }

    /// `__argp_fmtstream_set_lmargin`; returns the old one.
    pub(crate) fn set_lmargin(&mut self, m: usize) -> usize {
        self.sync();
        std::mem::replace(&mut self.lmargin, to_isize(m)) as usize
    }

    /// `__argp_fmtstream_set_wmargin`; returns the old one.
    pub(crate) fn set_wmargin(&mut self, m: usize) -> usize {
        self.sync();
        std::mem::replace(&mut self.wmargin, to_isize(m)) as usize
    }

    /// `__argp_fmtstream_point`: the output column.
    pub(crate) fn point(&mut self) -> usize {
        self.sync();
        self.point_col.max(0) as usize
    }

    /// `__argp_fmtstream_free`: everything written, wrapped.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.update();
        self.emit(0, self.p);
        self.out
    }
}

fn to_isize(n: usize) -> isize {
    // Sizes here are a help text's: far below isize::MAX.
    isize::try_from(n).unwrap_or(isize::MAX / 4)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_short_lines_pass_through() {
        let mut s = FmtStream::new(0, 79, 0);
        s.printf(b"Usage: display [OPTION...]");
        s.putc(b'\n');
        assert_eq!(s.finish(), b"Usage: display [OPTION...]\n");
    }

    #[test]
    fn test_words_wrap_at_the_wrap_margin() {
        let mut s = FmtStream::new(0, 20, 0);
        s.set_wmargin(4);
        s.printf(b"aaaa bbbb cccc dddd eeee ffff");
        s.putc(b'\n');
        assert_eq!(s.finish(), b"aaaa bbbb cccc dddd\n    eeee ffff\n");
    }

    #[test]
    fn test_a_wrap_reads_printf_terminator() {
        // After a flush, the wrap point of a full line can fall just past
        // the text, on the NUL vsnprintf left there (not on a blank left
        // over from the flushed text).
        let mut s = FmtStream::new(0, 79, 0);
        s.set_wmargin(12);
        let mut first = b"Usage: ".to_vec();
        first.extend([b'x'; 44]);
        first.push(b' ');
        first.extend([b'x'; 26]);
        first.extend(b"\t\tb b  \t\taab\tb\taaa");
        s.printf(&first);
        s.set_lmargin(12);
        for w in ["ae?V", "-all", "-csv", "-explain", "-no-headers", "-help"] {
            s.printf(format!(" [-{w}]").as_bytes());
        }
        s.set_wmargin(0);
        s.set_lmargin(0);
        let out = s.finish();
        let widths: Vec<usize> =
            out.split(|c| *c == b'\n').map(<[u8]>::len).collect();
        assert_eq!(widths, [78, 64, 35]);
    }

    #[test]
    fn test_huge_words_do_not_panic() {
        let mut s = FmtStream::new(3, 10, 5);
        for _ in 0..50 {
            s.printf(&[b'x'; 300]);
            s.putc(b' ');
        }
        s.set_lmargin(0);
        assert!(s.finish().len() >= 15_000);
    }
}
