//! glibc's `getopt_long()`, reimplemented over byte strings: the real
//! client's global options (`"+?Vi:f:"`, in order, stopping at the mode)
//! and argp's operation options (permuting) both go through it, with its
//! exact error texts (`%s: unrecognized option '--x'`, ...), which name
//! `argv[0]` as it was given.

/// Whether a long option takes an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// No (`--name=x` is an error).
    None,
    /// Yes: `--name=x` or `--name x`.
    Required,
    /// Only as `--name=x`.
    Optional,
}

/// One long option.
#[derive(Clone, Copy, Debug)]
pub struct Long {
    /// Its name.
    pub name: &'static str,
    /// Its argument.
    pub arg: Arg,
}

/// Where non-options go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The first non-option ends the options (`+` in the optstring).
    RequireOrder,
    /// Non-options are set aside and the scan goes on (the default).
    Permute,
}

/// What [`Getopt::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// No more options.
    End,
    /// A short option and its argument.
    Short(u8, Option<Vec<u8>>),
    /// The long option at this index and its argument.
    Long(usize, Option<Vec<u8>>),
    /// getopt's complaint (its stderr text); getopt returned `'?'`.
    Error(Vec<u8>),
}

/// A getopt scan over `args` (`args[0]` is the program).
#[derive(Debug)]
pub struct Getopt<'a> {
    args: &'a [Vec<u8>],
    optind: usize,
    /// Position inside a cluster of short options.
    nextchar: Option<usize>,
    order: Order,
    set_aside: Vec<Vec<u8>>,
    ended: bool,
}

impl<'a> Getopt<'a> {
    /// A scan from `args[1]`.
    pub fn new(args: &'a [Vec<u8>], order: Order) -> Self {
        Self {
            args,
            optind: 1,
            nextchar: None,
            order,
            set_aside: Vec::new(),
            ended: false,
        }
    }

    fn error(&self, text: &[u8]) -> Next {
        let mut s = self.args.first().cloned().unwrap_or_default();
        s.extend_from_slice(b": ");
        s.extend_from_slice(text);
        s.push(b'\n');
        Next::Error(s)
    }

    /// The argument the scan is about to read, when it is at the start of
    /// one (not inside a cluster of short options).
    pub fn peek(&self) -> Option<&'a [u8]> {
        match (self.nextchar, self.ended) {
            (None, false) => self.args.get(self.optind).map(Vec::as_slice),
            _ => None,
        }
    }

    /// Consumes the argument [`Getopt::peek`] showed; returns the next one
    /// too when `with_value` (`None` when there is none).
    pub fn take(&mut self, with_value: bool) -> Option<Vec<u8>> {
        self.optind += 1;
        if !with_value {
            return None;
        }
        let v = self.args.get(self.optind).cloned();
        self.optind += usize::from(v.is_some());
        v
    }

    /// The next option.
    pub fn next(&mut self, short: &[(u8, bool)], long: &[Long]) -> Next {
        if let Some(pos) = self.nextchar {
            return self.short(pos, short);
        }
        loop {
            let Some(arg) = self.args.get(self.optind).filter(|_| !self.ended)
            else {
                self.ended = true;
                return Next::End;
            };
            if arg.as_slice() == b"--" {
                self.optind += 1;
                self.ended = true;
                return Next::End;
            }
            if arg.first() != Some(&b'-') || arg.len() == 1 {
                if self.order == Order::RequireOrder {
                    self.ended = true;
                    return Next::End;
                }
                self.set_aside.push(arg.clone());
                self.optind += 1;
                continue;
            }
            if let Some(rest) = arg.strip_prefix(b"--") {
                self.optind += 1;
                return self.long(rest, long);
            }
            return self.short(1, short);
        }
    }

    fn long(&mut self, rest: &[u8], long: &[Long]) -> Next {
        let (name, value) = match rest.iter().position(|c| *c == b'=') {
            Some(i) => (&rest[..i], Some(rest[i + 1..].to_vec())),
            None => (rest, None),
        };
        let exact = long.iter().position(|o| o.name.as_bytes() == name);
        let prefixed: Vec<usize> = (0..long.len())
            .filter(|&i| long[i].name.as_bytes().starts_with(name))
            .collect();
        let i = match (exact, prefixed.as_slice()) {
            (Some(i), _) | (None, &[i]) => i,
            (None, []) => {
                let mut t = b"unrecognized option '--".to_vec();
                t.extend_from_slice(rest);
                t.push(b'\'');
                return self.error(&t);
            }
            (None, many) => {
                let mut t = b"option '--".to_vec();
                t.extend_from_slice(rest);
                t.extend_from_slice(b"' is ambiguous; possibilities:");
                for &j in many {
                    t.extend_from_slice(
                        format!(" '--{}'", long[j].name).as_bytes(),
                    );
                }
                return self.error(&t);
            }
        };
        let o = long[i];
        match (o.arg, value) {
            (Arg::None, Some(_)) => self.error(
                format!("option '--{}' doesn't allow an argument", o.name)
                    .as_bytes(),
            ),
            (Arg::Required, None) => match self.args.get(self.optind) {
                Some(v) => {
                    self.optind += 1;
                    Next::Long(i, Some(v.clone()))
                }
                None => self.error(
                    format!("option '--{}' requires an argument", o.name)
                        .as_bytes(),
                ),
            },
            (_, v) => Next::Long(i, v),
        }
    }

    fn short(&mut self, pos: usize, short: &[(u8, bool)]) -> Next {
        let args = self.args;
        // `next` calls this at `optind` (an argument that exists) and at a
        // `pos` inside it: the `-` cluster's bytes after the dash.
        let arg = &args[self.optind];
        let c = arg[pos];
        let last = pos + 1 == arg.len();
        self.nextchar = (!last).then_some(pos + 1);
        if last {
            self.optind += 1;
        }
        let Some(&(_, takes)) = short.iter().find(|(s, _)| *s == c) else {
            let mut t = b"invalid option -- '".to_vec();
            t.extend_from_slice(&[c, b'\'']);
            return self.error(&t);
        };
        if !takes {
            return Next::Short(c, None);
        }
        self.nextchar = None;
        if !last {
            self.optind += 1;
            return Next::Short(c, Some(arg[pos + 1..].to_vec()));
        }
        match self.args.get(self.optind) {
            Some(v) => {
                self.optind += 1;
                Next::Short(c, Some(v.clone()))
            }
            None => {
                let mut t = b"option requires an argument -- '".to_vec();
                t.extend_from_slice(&[c, b'\'']);
                self.error(&t)
            }
        }
    }

    /// The arguments after the options: those set aside, then the rest.
    pub fn rest(self) -> Vec<Vec<u8>> {
        let mut v = self.set_aside;
        v.extend(self.args.iter().skip(self.optind).cloned());
        v
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const LONG: [Long; 2] = [
        Long { name: "help", arg: Arg::None },
        Long { name: "instance", arg: Arg::Required },
    ];
    const SHORT: [(u8, bool); 2] = [(b'V', false), (b'i', true)];

    fn a(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|x| x.as_bytes().to_vec()).collect()
    }

    fn all(args: &[Vec<u8>], order: Order) -> (Vec<Next>, Vec<Vec<u8>>) {
        let mut g = Getopt::new(args, order);
        let mut v = Vec::new();
        loop {
            match g.next(&SHORT, &LONG) {
                Next::End => break,
                n @ Next::Error(_) => {
                    v.push(n);
                    break;
                }
                n => v.push(n),
            }
        }
        (v, g.rest())
    }

    #[test]
    fn test_clusters_values_and_order() {
        let (v, rest) = all(
            &a(&["p", "-Videfault", "--inst", "x", "mode", "-V"]),
            Order::RequireOrder,
        );
        assert_eq!(
            v,
            [
                Next::Short(b'V', None),
                Next::Short(b'i', Some(b"default".to_vec())),
                Next::Long(1, Some(b"x".to_vec()))
            ]
        );
        assert_eq!(rest, a(&["mode", "-V"]));
        let (v, rest) =
            all(&a(&["p", "mode", "-V", "--", "-i"]), Order::Permute);
        assert_eq!(v, [Next::Short(b'V', None)]);
        assert_eq!(rest, a(&["mode", "-i"]));
    }

    #[test]
    fn test_error_texts() {
        let e =
            |args: &[&str]| match all(&a(args), Order::RequireOrder).0.pop() {
                Some(Next::Error(t)) => String::from_utf8(t).unwrap(),
                other => panic!("{other:?}"),
            };
        assert_eq!(
            e(&["jool", "--bogus=3"]),
            "jool: unrecognized option '--bogus=3'\n"
        );
        assert_eq!(
            e(&["jool", "--he=3"]),
            "jool: option '--help' doesn't allow an argument\n"
        );
        assert_eq!(
            e(&["jool", "--ins"]),
            "jool: option '--instance' requires an argument\n"
        );
        assert_eq!(
            e(&["jool", "-i"]),
            "jool: option requires an argument -- 'i'\n"
        );
        assert_eq!(e(&["jool", "-x"]), "jool: invalid option -- 'x'\n");
        assert_eq!(e(&["jool", "--=x"]), "jool: option '--=x' is ambiguous; possibilities: '--help' '--instance'\n");
    }
}
