//! `-f FILE`: the instance name from a JSON file, as the real client
//! (4.0.8 and later) reads it with `joolnl_file_get_iname()`: the file's
//! bytes (`file_to_string()`: open, seek to the end, tell, seek back,
//! read), parsed by Jool's bundled cJSON (lenient: no check after the
//! value, unknown escapes kept, a missing closing quote accepted), then
//! the root object's first member named `instance` in any case.
//!
//! Where the real client fails, this fails with its texts and statuses;
//! its messages go through a 1024-byte buffer (longer ones are cut).
//! Three places differ on purpose:
//! - on a parse error the real client prints cJSON's error position
//!   inside the file's text, which it has just freed: whatever bytes the
//!   heap then holds. jool-stats prints the file's text from the error
//!   position to the end of that line (at most [`ERROR_QUOTE`] bytes);
//! - files above [`MAX_FILE`] bytes fail as the real client's `malloc`
//!   does when it cannot (`Unknown error -12`), and a file shorter than
//!   its size (where the real client loops for ever) ends where its
//!   content does;
//! - JSON nested deeper than [`MAX_DEPTH`] is a parse error (the real
//!   client recurses as deep as its stack lets it).
//!
//! An `instance` that is not a string makes the real client call
//! `strdup(NULL)` and die of `SIGSEGV`; so does this ([`Failure::Crash`]).

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    os::unix::ffi::OsStrExt,
    path::Path,
};

use super::exit;

/// Largest file read (the real client's `malloc` is the only limit).
pub const MAX_FILE: u64 = 64 << 20;

/// Deepest nesting parsed.
pub const MAX_DEPTH: usize = 1000;

/// Most bytes of the file quoted after a parse error.
pub const ERROR_QUOTE: usize = 40;

/// `result_from_error()`'s buffer.
const MSG_MAX: usize = 1023;

/// Why there is no instance name.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// `pr_result()`: `Error: MSG` on stderr, and `main()` returns this.
    Error {
        /// The message (without `Error: `).
        msg: Vec<u8>,
        /// `main()`'s return value as an exit status.
        status: u8,
    },
    /// The real client dies of this signal.
    Crash(i32),
}

fn fail(msg: Vec<u8>, code: i32) -> Failure {
    let mut msg = msg;
    msg.truncate(MSG_MAX);
    Failure::Error { msg, status: exit::status_of(code) }
}

/// glibc's `strerror()` text.
pub fn strerror(errno: i32) -> String {
    match nix::errno::Errno::from_raw(errno) {
        nix::errno::Errno::UnknownErrno => format!("Unknown error {errno}"),
        e => e.desc().to_owned(),
    }
}

fn io_fail(
    what: &str,
    path: &[u8],
    tail: &str,
    e: &std::io::Error,
) -> Failure {
    let errno = e.raw_os_error().unwrap_or(22);
    let mut m = format!("{what} \"").into_bytes();
    m.extend_from_slice(path);
    m.extend_from_slice(format!("\"{tail}: {}", strerror(errno)).as_bytes());
    fail(m, errno)
}

fn enomem() -> Failure {
    fail(strerror(-12).into_bytes(), -12)
}

/// `file_to_string()`: the text up to its first NUL.
fn read_text(path: &[u8]) -> Result<Vec<u8>, Failure> {
    let p = Path::new(std::ffi::OsStr::from_bytes(path));
    let mut f = File::open(p)
        .map_err(|e| io_fail("Could not open file", path, "", &e))?;
    let len = f.seek(SeekFrom::End(0)).map_err(|e| {
        io_fail("Could not seek the end of file", path, " (1)", &e)
    })?;
    f.seek(SeekFrom::Start(0))
        .map_err(|e| io_fail("Could not fseek on file", path, " (2)", &e))?;
    if len > MAX_FILE {
        return Err(enomem());
    }
    let mut text = Vec::new();
    f.take(len).read_to_end(&mut text).map_err(|_| {
        fail(
            b"File read error. (Sorry; there's no error message.)".to_vec(),
            -22,
        )
    })?;
    if let Some(nul) = text.iter().position(|b| *b == 0) {
        text.truncate(nul);
    }
    Ok(text)
}

/// The instance name `-f path` gives.
pub fn iname(path: &[u8]) -> Result<Vec<u8>, Failure> {
    iname_in(&read_text(path)?)
}

/// The instance name a file's text (up to its first NUL) gives.
pub fn iname_in(text: &[u8]) -> Result<Vec<u8>, Failure> {
    let text = text.split(|b| *b == 0).next().unwrap_or_default();
    let mut p = Parser { s: text, depth: 0 };
    let start = p.skip(0);
    let root = match p.value(start) {
        Ok((v, _)) => v,
        Err(at) => {
            let mut m = b"The JSON parser got confused around the beginning of this string:\n".to_vec();
            let rest = text.get(at..).unwrap_or_default();
            let line = rest.split(|c| *c == b'\n').next().unwrap_or_default();
            m.extend_from_slice(&line[..line.len().min(ERROR_QUOTE)]);
            return Err(fail(m, -22));
        }
    };
    let Value::Object(members) = root else {
        return Err(fail(mismatch(b"root", &root, "Object"), -22));
    };
    match members
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(b"instance"))
    {
        Some((_, Value::String(s))) => Ok(s),
        Some(_) => Err(Failure::Crash(exit::SIGSEGV)),
        None => Err(fail(
            b"The file does not contain an instance name.".to_vec(),
            -22,
        )),
    }
}

/// `type_mismatch()`.
fn mismatch(field: &[u8], v: &Value, expected: &str) -> Vec<u8> {
    let mut m = b"The '".to_vec();
    m.extend_from_slice(field);
    let what = match v {
        Value::False => "' element 'false' is not a valid ".into(),
        Value::True => "' element 'true' is not a valid ".into(),
        Value::Null => "' element 'null' is not a valid ".into(),
        Value::Number(n) => {
            format!("' element '{}' is not a valid ", number(*n))
        }
        Value::String(s) => {
            m.extend_from_slice(b"' element '");
            m.extend_from_slice(s);
            "' is not a valid ".into()
        }
        Value::Array => {
            format!("' element appears to be an array, not a '{expected}'.")
        }
        Value::Object(_) => {
            format!("' element appears to be an object, not a '{expected}'.")
        }
    };
    m.extend_from_slice(what.as_bytes());
    if !matches!(v, Value::Array | Value::Object(_)) {
        m.extend_from_slice(format!("{expected}.").as_bytes());
    }
    m
}

/// A number as `type_mismatch()` prints it: `%u`, `%d` or `%f`.
fn number(n: f64) -> String {
    if (0.0..=f64::from(u32::MAX)).contains(&n) {
        // In range: the C cast truncates toward zero, as `as` does.
        format!("{}", n as u32)
    } else if (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&n) {
        format!("{}", n as i32)
    } else if n.is_nan() {
        if n.is_sign_negative() { "-nan" } else { "nan" }.to_owned()
    } else {
        format!("{n:.6}")
    }
}

/// A parsed value (arrays' items are not kept: nothing reads them).
#[derive(Debug, PartialEq)]
enum Value {
    Null,
    False,
    True,
    Number(f64),
    String(Vec<u8>),
    Array,
    Object(Vec<(Vec<u8>, Self)>),
}

/// cJSON's parser over a C string: bytes past the end read as NUL.
/// Errors are the position cJSON's error pointer would hold.
struct Parser<'a> {
    s: &'a [u8],
    depth: usize,
}

type Parsed<T> = Result<(T, usize), usize>;

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    /// `skip()`: bytes 1 to 32.
    fn skip(&self, mut i: usize) -> usize {
        while (1..=32).contains(&self.at(i)) {
            i += 1;
        }
        i
    }

    fn value(&mut self, i: usize) -> Parsed<Value> {
        let rest = self.s.get(i..).unwrap_or_default();
        for (word, v) in [
            (&b"null"[..], Value::Null),
            (b"false", Value::False),
            (b"true", Value::True),
        ] {
            if rest.starts_with(word) {
                return Ok((v, i + word.len()));
            }
        }
        match self.at(i) {
            b'"' => self.string(i).map(|(s, e)| (Value::String(s), e)),
            b'-' | b'0'..=b'9' => Ok(self.number(i)),
            b'[' => self.nested(i, Self::array),
            b'{' => self.nested(i, Self::object),
            _ => Err(i),
        }
    }

    fn nested(
        &mut self,
        i: usize,
        f: fn(&mut Self, usize) -> Parsed<Value>,
    ) -> Parsed<Value> {
        if self.depth >= MAX_DEPTH {
            return Err(i);
        }
        self.depth += 1;
        let r = f(self, i);
        self.depth -= 1;
        r
    }

    fn digits(&self, mut i: usize, n: &mut f64, scale: &mut i32) -> usize {
        while self.at(i).is_ascii_digit() {
            *n = *n * 10.0 + f64::from(self.at(i) - b'0');
            *scale -= 1;
            i += 1;
        }
        i
    }

    /// `parse_number()`.
    fn number(&self, mut i: usize) -> (Value, usize) {
        let (mut n, mut sign, mut scale) = (0.0, 1.0, 0i32);
        if self.at(i) == b'-' {
            sign = -1.0;
            i += 1;
        }
        if self.at(i) == b'0' {
            i += 1;
        }
        if (b'1'..=b'9').contains(&self.at(i)) {
            i = self.digits(i, &mut n, &mut 0);
        }
        if self.at(i) == b'.' && self.at(i + 1).is_ascii_digit() {
            i = self.digits(i + 1, &mut n, &mut scale);
        }
        let (mut sub, mut sub_sign) = (0i32, 1i32);
        if matches!(self.at(i), b'e' | b'E') {
            i += 1;
            match self.at(i) {
                b'+' => i += 1,
                b'-' => {
                    sub_sign = -1;
                    i += 1;
                }
                _ => {}
            }
            while self.at(i).is_ascii_digit() {
                sub = sub
                    .wrapping_mul(10)
                    .wrapping_add(i32::from(self.at(i) - b'0'));
                i += 1;
            }
        }
        let exp = scale.wrapping_add(sub.wrapping_mul(sub_sign));
        (Value::Number(sign * n * 10f64.powf(f64::from(exp))), i)
    }

    /// `parse_string()`: the unescaped bytes.
    fn string(&self, i: usize) -> Parsed<Vec<u8>> {
        if self.at(i) != b'"' {
            return Err(i);
        }
        let mut out = Vec::new();
        let mut p = i + 1;
        while self.at(p) != b'"' && self.at(p) != 0 {
            if self.at(p) != b'\\' {
                out.push(self.at(p));
                p += 1;
                continue;
            }
            p += 1;
            match self.at(p) {
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => p = self.unicode(p, &mut out),
                c => out.push(c),
            }
            p += 1;
        }
        if self.at(p) == b'"' {
            p += 1;
        }
        Ok((out, p))
    }

    fn hex4(&self, i: usize) -> u32 {
        let mut h = 0;
        for k in 0..4 {
            match char::from(self.at(i + k)).to_digit(16) {
                Some(d) => h = (h << 4) | d,
                None => return 0,
            }
        }
        h
    }

    /// A `\u` escape at `p` (the `u`): appends its UTF-8; returns the
    /// position of its last byte.
    fn unicode(&self, mut p: usize, out: &mut Vec<u8>) -> usize {
        let mut uc = self.hex4(p + 1);
        p += 4;
        if (0xDC00..=0xDFFF).contains(&uc) || uc == 0 {
            return p;
        }
        if (0xD800..=0xDBFF).contains(&uc) {
            if self.at(p + 1) != b'\\' || self.at(p + 2) != b'u' {
                return p;
            }
            let uc2 = self.hex4(p + 3);
            p += 6;
            if !(0xDC00..=0xDFFF).contains(&uc2) {
                return p;
            }
            uc = (((uc & 0x3FF) << 10) | (uc2 & 0x3FF)) + 0x10000;
        }
        out.extend(utf8(uc));
        p
    }

    fn array(&mut self, i: usize) -> Parsed<Value> {
        let mut v = self.skip(i + 1);
        if self.at(v) == b']' {
            return Ok((Value::Array, v + 1));
        }
        loop {
            let (_, e) = self.value(self.skip(v))?;
            v = self.skip(e);
            match self.at(v) {
                b',' => v += 1,
                b']' => return Ok((Value::Array, v + 1)),
                _ => return Err(v),
            }
        }
    }

    fn object(&mut self, i: usize) -> Parsed<Value> {
        let mut v = self.skip(i + 1);
        let mut members = Vec::new();
        if self.at(v) == b'}' {
            return Ok((Value::Object(members), v + 1));
        }
        loop {
            let (key, e) = self.string(self.skip(v))?;
            v = self.skip(e);
            if self.at(v) != b':' {
                return Err(v);
            }
            let (val, e) = self.value(self.skip(v + 1))?;
            members.push((key, val));
            v = self.skip(e);
            match self.at(v) {
                b',' => v += 1,
                b'}' => return Ok((Value::Object(members), v + 1)),
                _ => return Err(v),
            }
        }
    }
}

/// cJSON's UTF-8 of a code point (up to 4 bytes, no checks).
fn utf8(uc: u32) -> Vec<u8> {
    let len = match uc {
        0..0x80 => 1,
        0x80..0x800 => 2,
        0x800..0x10000 => 3,
        _ => 4,
    };
    let first_mark = [0x00u32, 0x00, 0xC0, 0xE0, 0xF0];
    let mut bytes = vec![0u8; len];
    let mut u = uc;
    for b in bytes.iter_mut().skip(1).rev() {
        *b = ((u | 0x80) & 0xBF) as u8;
        u >>= 6;
    }
    bytes[0] = ((u | first_mark[len]) & 0xFF) as u8;
    bytes
}

#[cfg(test)]
mod test {
    use super::*;

    fn parse(text: &str) -> Result<Vec<u8>, Failure> {
        let dir = crate::host::TempDir::new("jool-stats-file-test").unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, text).unwrap();
        iname(path.as_os_str().as_bytes())
    }

    fn msg(r: Result<Vec<u8>, Failure>) -> (String, u8) {
        match r {
            Err(Failure::Error { msg, status }) => {
                (String::from_utf8_lossy(&msg).into_owned(), status)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn test_lenient_like_cjson() {
        assert_eq!(
            parse(r#"{"instance": "default"} trailing"#).unwrap(),
            b"default"
        );
        assert_eq!(
            parse(r#"{"INSTANCE": "x", "instance": "y"}"#).unwrap(),
            b"x"
        );
        assert_eq!(parse(r#"{"instance": "a\qb"}"#).unwrap(), b"aqb");
        assert_eq!(
            parse(r#"{"instance": "\u00f1\u0000"}"#).unwrap(),
            "ñ".as_bytes()
        );
        assert_eq!(parse(r#"{"instance": "abc"#).map_err(|_| ()), Err(()));
    }

    #[test]
    fn test_failures() {
        assert_eq!(
            msg(parse("[1]")).0,
            "The 'root' element appears to be an array, not a 'Object'."
        );
        assert_eq!(
            msg(parse("5")).0,
            "The 'root' element '5' is not a valid Object."
        );
        assert_eq!(
            msg(parse("-5")).0,
            "The 'root' element '-5' is not a valid Object."
        );
        assert_eq!(
            msg(parse("1e10")).0,
            "The 'root' element '10000000000.000000' is not a valid Object."
        );
        assert_eq!(
            msg(parse("\"x\"")).0,
            "The 'root' element 'x' is not a valid Object."
        );
        assert_eq!(
            msg(parse("{}")),
            ("The file does not contain an instance name.".into(), 234)
        );
        let (m, s) = msg(parse("nope\nmore"));
        assert_eq!((m.as_str(), s), ("The JSON parser got confused around the beginning of this string:\nnope", 234));
        assert_eq!(parse(r#"{"instance": 5}"#), Err(Failure::Crash(11)));
        let (m, s) = msg(iname(b"/nonexistent/x.json"));
        assert_eq!((m.as_str(), s), ("Could not open file \"/nonexistent/x.json\": No such file or directory", 2));
        let deep = "[".repeat(MAX_DEPTH + 5);
        assert_eq!(msg(parse(&deep)).1, 234);
    }
}
