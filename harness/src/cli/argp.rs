//! glibc argp over an operation's arguments, as Jool's `wargp_parse()`
//! calls it (`argp_parse(&argp, argc, argv, 0, NULL, ...)`): getopt_long
//! with permutation, argp's own `--help`, `--usage`, `--program-name`,
//! `--HANG` and `-V`, and its texts, which name the operation's token
//! (`display`, or the prefix that was typed) and go through argp's
//! line-wrapping stream ([`super::fmtstream`]).
//!
//! Each option acts as getopt returns it: `--help` prints and ends the
//! parse even with a bad option after it; a bad option before it ends the
//! parse with exit status 64 first. Arguments that are not options come
//! last (getopt permutes them); more than the operation takes is `Too
//! many arguments`. (`POSIXLY_CORRECT` and `ARGP_HELP_FMT`, which change
//! glibc's behaviour, are not read.)

use super::{exit, fmtstream::FmtStream, getopt};

/// One option of an operation's table.
#[derive(Clone, Copy, Debug)]
pub struct Opt {
    /// Long name.
    pub long: &'static str,
    /// Short key, if any.
    pub short: Option<u8>,
    /// Whether it takes an argument (its name in the help).
    pub arg: Option<&'static str>,
    /// Its line in `--help`.
    pub doc: &'static str,
}

/// `stats display`'s options, in `display_opts` order.
pub const DISPLAY: [Opt; 4] = [
    Opt {
        long: "all",
        short: Some(b'a'),
        arg: None,
        doc: "Do not filter out zero stats",
    },
    Opt {
        long: "explain",
        short: Some(b'e'),
        arg: None,
        doc: "Print a description of what each stat means",
    },
    Opt {
        long: "no-headers",
        short: None,
        arg: None,
        doc: "Do not print table headers",
    },
    Opt { long: "csv", short: None, arg: None, doc: "Print in CSV format" },
];

/// `instance add`'s options as jool-stats takes them (`instance remove`
/// has none).
pub const INSTANCE_ADD: [Opt; 3] = [
    Opt {
        long: "netfilter",
        short: None,
        arg: None,
        doc: "Sit the translator on top of Netfilter (default).",
    },
    Opt {
        long: "iptables",
        short: None,
        arg: None,
        doc: "Sit the translator on top of iptables.",
    },
    Opt {
        long: "pool6",
        short: None,
        arg: Some("<IPv6 Prefix>"),
        doc: "Prefix that will populate the IPv6 Address Pool.",
    },
];

/// What argp does for one of its own options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Own {
    Help,
    Usage,
    ProgramName,
    Hang,
    Version,
}

/// argp's options after the table's, in getopt's order.
const OWN: [(&str, Option<u8>, Own); 5] = [
    ("help", Some(b'?'), Own::Help),
    ("usage", None, Own::Usage),
    ("program-name", None, Own::ProgramName),
    ("HANG", None, Own::Hang),
    ("version", Some(b'V'), Own::Version),
];

/// What the parse found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Long names of the table's options given, in order, with their
    /// arguments.
    pub options: Vec<(&'static str, Option<Vec<u8>>)>,
    /// Arguments that are not options.
    pub positional: Vec<Vec<u8>>,
}

impl Parsed {
    /// Whether `long` was given.
    pub fn has(&self, long: &str) -> bool {
        self.options.iter().any(|(l, _)| *l == long)
    }

    /// The last argument of `long`.
    pub fn value(&self, long: &str) -> Option<&[u8]> {
        self.options
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// What argp printed before it exited.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exit {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// Exit status.
    pub status: u8,
}

/// The release-dependent texts argp prints.
#[derive(Clone, Copy, Debug)]
pub struct Texts<'a> {
    /// `argp_program_version`.
    pub version: &'a str,
    /// `argp_program_bug_address`.
    pub bug_address: &'a str,
}

/// Parses `args` (`args[0]` is the operation's token) against `table`;
/// at most `max_positional` arguments that are not options.
pub fn parse(
    table: &[Opt],
    args: &[Vec<u8>],
    max_positional: usize,
    texts: Texts<'_>,
) -> Result<Parsed, Exit> {
    let argv0 = args.first().map_or(&b""[..], Vec::as_slice);
    let mut name = base_name(argv0).to_vec();
    let long: Vec<getopt::Long> = table
        .iter()
        .map(|o| getopt::Long { name: o.long, arg: arg_kind(o.arg.is_some()) })
        .chain(OWN.iter().map(|(n, _, own)| getopt::Long {
            name: n,
            arg: match own {
                Own::ProgramName => getopt::Arg::Required,
                Own::Hang => getopt::Arg::Optional,
                _ => getopt::Arg::None,
            },
        }))
        .collect();
    let short: Vec<(u8, bool)> = table
        .iter()
        .filter_map(|o| o.short.map(|s| (s, o.arg.is_some())))
        .chain(OWN.iter().filter_map(|(_, s, _)| s.map(|s| (s, false))))
        .collect();
    let mut g = getopt::Getopt::new(args, getopt::Order::Permute);
    let mut out = Parsed::default();
    loop {
        let (which, value) = match g.next(&short, &long) {
            getopt::Next::End => break,
            getopt::Next::Error(msg) => {
                let mut stderr = msg;
                stderr.extend(see(&name));
                return Err(Exit {
                    stderr,
                    status: exit::EX_USAGE,
                    ..Exit::default()
                });
            }
            getopt::Next::Short(c, v) => {
                match table.iter().position(|o| o.short == Some(c)) {
                    Some(i) => (Ok(i), v),
                    None => (Err(own_short(c)), v),
                }
            }
            getopt::Next::Long(i, v) => match i.checked_sub(table.len()) {
                None => (Ok(i), v),
                Some(j) => (Err(OWN[j].2), v),
            },
        };
        match which {
            Ok(i) => out.options.push((table[i].long, value)),
            Err(own) => act(own, value, &mut name, table, texts)?,
        }
    }
    out.positional = g.rest();
    if out.positional.len() > max_positional {
        let mut stderr = name.clone();
        stderr.extend_from_slice(b": Too many arguments\n");
        stderr.extend(see(&name));
        return Err(Exit {
            stderr,
            status: exit::EX_USAGE,
            ..Exit::default()
        });
    }
    Ok(out)
}

fn arg_kind(takes: bool) -> getopt::Arg {
    if takes {
        getopt::Arg::Required
    } else {
        getopt::Arg::None
    }
}

fn own_short(c: u8) -> Own {
    if c == b'V' {
        Own::Version
    } else {
        Own::Help
    }
}

/// One of argp's own options, acted on as it comes.
fn act(
    own: Own,
    value: Option<Vec<u8>>,
    name: &mut Vec<u8>,
    table: &[Opt],
    texts: Texts<'_>,
) -> Result<(), Exit> {
    let done = |stdout: Vec<u8>| Err(Exit { stdout, ..Exit::default() });
    match own {
        Own::Help => done(help(name, table, texts.bug_address)),
        Own::Usage => done(usage(name, table)),
        Own::Version => done(format!("{}\n", texts.version).into_bytes()),
        Own::ProgramName => {
            *name = base_name(&value.unwrap_or_default()).to_vec();
            Ok(())
        }
        Own::Hang => {
            // `atoi(arg ? arg : "3600")` seconds, one at a time.
            let secs = value.map_or(3600, |v| atoi(&v));
            for _ in 0..secs.max(0) {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            Ok(())
        }
    }
}

/// `atoi()`: leading blanks, a sign, digits; 0 when there are none.
fn atoi(s: &[u8]) -> i64 {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n =
        digits.iter().take_while(|c| c.is_ascii_digit()).fold(0i64, |n, c| {
            n.saturating_mul(10).saturating_add(i64::from(c - b'0'))
        });
    if neg {
        -n
    } else {
        n
    }
}

/// `__argp_base_name()`.
fn base_name(path: &[u8]) -> &[u8] {
    path.rsplit(|c| *c == b'/').next().unwrap_or(path)
}

/// argp's usage block: `Usage: NAME` and what `body` prints, wrapped.
fn usage_block(
    fs: &mut FmtStream,
    name: &[u8],
    body: impl FnOnce(&mut FmtStream),
) {
    let old_wm = fs.set_wmargin(12);
    let mut first = b"Usage: ".to_vec();
    first.extend_from_slice(name);
    fs.printf(&first);
    let old_lm = fs.set_lmargin(12);
    body(fs);
    fs.set_wmargin(old_wm);
    fs.set_lmargin(old_lm);
    fs.putc(b'\n');
}

/// The table's entries and argp's visible ones, as `hol_sort` orders
/// them: the table's by name, then `help`, `usage`, `version`.
fn entries(table: &[Opt]) -> Vec<Opt> {
    let mut mine = table.to_vec();
    mine.sort_by_key(|o| o.long.to_ascii_lowercase());
    mine.extend([
        Opt {
            long: "help",
            short: Some(b'?'),
            arg: None,
            doc: "Give this help list",
        },
        Opt {
            long: "usage",
            short: None,
            arg: None,
            doc: "Give a short usage message",
        },
        Opt {
            long: "version",
            short: Some(b'V'),
            arg: None,
            doc: "Print program version",
        },
    ]);
    mine
}

/// `--usage`.
pub fn usage(name: &[u8], table: &[Opt]) -> Vec<u8> {
    let mut fs = FmtStream::new(0, 79, 0);
    let all = entries(table);
    usage_block(&mut fs, name, |fs| {
        let shorts: Vec<u8> = all
            .iter()
            .filter(|o| o.arg.is_none())
            .filter_map(|o| o.short)
            .collect();
        if !shorts.is_empty() {
            let mut s = b" [-".to_vec();
            s.extend(shorts);
            s.push(b']');
            fs.printf(&s);
        }
        for o in all.iter().filter(|o| o.arg.is_some()) {
            if let (Some(c), Some(a)) = (o.short, o.arg) {
                space(fs, 6 + a.len());
                fs.printf(format!("[-{} {a}]", char::from(c)).as_bytes());
            }
        }
        for o in &all {
            let text = match o.arg {
                Some(a) => format!(" [--{}={a}]", o.long),
                None => format!(" [--{}]", o.long),
            };
            fs.printf(text.as_bytes());
        }
    });
    fs.finish()
}

/// argp's `space()`: a blank, or a newline when `ensure` more columns do
/// not fit.
fn space(fs: &mut FmtStream, ensure: usize) {
    if fs.point() + ensure >= 79 {
        fs.putc(b'\n');
    } else {
        fs.putc(b' ');
    }
}

fn indent_to(fs: &mut FmtStream, col: usize) {
    let needed = col.saturating_sub(fs.point());
    for _ in 0..needed {
        fs.putc(b' ');
    }
}

/// `--help`.
pub fn help(name: &[u8], table: &[Opt], bug_address: &str) -> Vec<u8> {
    let mut fs = FmtStream::new(0, 79, 0);
    usage_block(&mut fs, name, |fs| fs.write(b" [OPTION...]"));
    fs.putc(b'\n');
    for o in entries(table) {
        entry_help(&mut fs, &o);
    }
    fs.putc(b'\n');
    fs.printf(format!("Report bugs to {bug_address}.\n").as_bytes());
    fs.finish()
}

/// `hol_entry_help()` of one option.
fn entry_help(fs: &mut FmtStream, o: &Opt) {
    let old_lm = fs.set_lmargin(0);
    let mut first = true;
    fs.set_wmargin(2);
    if let Some(c) = o.short {
        indent_to(fs, 2);
        first = false;
        fs.putc(b'-');
        fs.putc(c);
    }
    fs.set_wmargin(6);
    if !first {
        fs.write(b", ");
    }
    indent_to(fs, 6);
    fs.printf(format!("--{}", o.long).as_bytes());
    if let Some(a) = o.arg {
        fs.printf(format!("={a}").as_bytes());
    }
    fs.set_lmargin(0);
    let col = fs.point();
    fs.set_lmargin(29);
    fs.set_wmargin(29);
    if col > 32 {
        fs.putc(b'\n');
    } else if col >= 29 {
        fs.write(b"   ");
    } else {
        indent_to(fs, 29);
    }
    fs.write(o.doc.as_bytes());
    fs.set_lmargin(0);
    fs.putc(b'\n');
    fs.set_lmargin(old_lm);
    fs.set_wmargin(0);
}

/// The `Try ... --help` line after an error (`ARGP_HELP_SEE`).
pub fn see(name: &[u8]) -> Vec<u8> {
    let mut fs = FmtStream::new(0, 79, 0);
    let mut s = b"Try `".to_vec();
    s.extend_from_slice(name);
    s.extend_from_slice(b" --help' or `");
    s.extend_from_slice(name);
    s.extend_from_slice(b" --usage' for more information.\n");
    fs.printf(&s);
    fs.finish()
}

#[cfg(test)]
mod test {
    use super::*;

    const T: Texts<'static> =
        Texts { version: "4.1.9.0", bug_address: "jool@nic.mx" };

    fn a(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|x| x.as_bytes().to_vec()).collect()
    }

    fn err(v: &[&str]) -> String {
        String::from_utf8(parse(&DISPLAY, &a(v), 0, T).unwrap_err().stderr)
            .unwrap()
    }

    #[test]
    fn test_display_options() {
        let p =
            parse(&DISPLAY, &a(&["display", "-ae", "--no-h", "--csv"]), 0, T)
                .unwrap();
        assert!(
            p.has("all")
                && p.has("explain")
                && p.has("no-headers")
                && p.has("csv")
        );
        assert_eq!(err(&["display", "--csv=yes"]), "display: option '--csv' doesn't allow an argument\nTry `display --help' or `display --usage' for more information.\n");
        assert!(err(&["display", "extra"])
            .starts_with("display: Too many arguments\n"));
        assert!(err(&["disp", "--bogus"])
            .starts_with("disp: unrecognized option '--bogus'\n"));
    }

    #[test]
    fn test_help_and_usage_texts() {
        let h = parse(&DISPLAY, &a(&["display", "--help", "--bogus"]), 0, T)
            .unwrap_err();
        assert_eq!(String::from_utf8(h.stdout).unwrap(), "Usage: display [OPTION...]\n\n  -a, --all                  Do not filter out zero stats\n      --csv                  Print in CSV format\n  -e, --explain              Print a description of what each stat means\n      --no-headers           Do not print table headers\n  -?, --help                 Give this help list\n      --usage                Give a short usage message\n  -V, --version              Print program version\n\nReport bugs to jool@nic.mx.\n");
        assert_eq!(String::from_utf8(usage(b"display", &DISPLAY)).unwrap(), "Usage: display [-ae?V] [--all] [--csv] [--explain] [--no-headers] [--help]\n            [--usage] [--version]\n");
        assert_eq!(String::from_utf8(usage(b"x", &DISPLAY)).unwrap(), "Usage: x [-ae?V] [--all] [--csv] [--explain] [--no-headers] [--help] [--usage]\n            [--version]\n");
    }

    #[test]
    fn test_program_name_and_atoi() {
        assert!(err(&["display", "--program-name=a/foo", "--bogus"])
            .ends_with(
                "Try `foo --help' or `foo --usage' for more information.\n"
            ));
        assert_eq!((atoi(b" 12x"), atoi(b"-3"), atoi(b"x")), (12, -3, 0));
    }
}
