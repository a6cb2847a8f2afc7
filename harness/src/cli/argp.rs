//! The parts of the real client's command line that `jool-stats` must
//! reproduce byte for byte: the mode/operation tree walk
//! (`Unexpected token`, `More arguments expected.`, prefix matching) and
//! argp's option parsing of `stats display` (texts and exit status 64).

use std::fmt::Write as _;

use jool_sim::kernel::Xlator;

/// argp's exit status for usage errors (`EX_USAGE`).
pub const EX_USAGE: u8 = 64;
/// The tree walk's failures: `-EINVAL` as an exit status.
pub const EX_TREE: u8 = 234;

/// A mode of the 4.1.x client's command tree.
struct Mode {
    label: &'static str,
    siit: bool,
    nat64: bool,
    ops: &'static [&'static str],
}

/// The 4.1.x tree (src/usr/argp/main.c), `blacklist4` hidden.
const TREE: &[Mode] = &[
    Mode {
        label: "instance",
        siit: true,
        nat64: true,
        ops: &["display", "add", "remove", "flush", "status"],
    },
    Mode { label: "stats", siit: true, nat64: true, ops: &["display"] },
    Mode { label: "address", siit: true, nat64: false, ops: &["query"] },
    Mode {
        label: "global",
        siit: true,
        nat64: true,
        ops: &["display", "update"],
    },
    Mode {
        label: "eamt",
        siit: true,
        nat64: false,
        ops: &["display", "add", "remove", "flush"],
    },
    Mode {
        label: "denylist4",
        siit: true,
        nat64: false,
        ops: &["display", "add", "remove", "flush"],
    },
    Mode {
        label: "pool4",
        siit: false,
        nat64: true,
        ops: &["display", "add", "remove", "flush"],
    },
    Mode {
        label: "bib",
        siit: false,
        nat64: true,
        ops: &["display", "add", "remove"],
    },
    Mode { label: "session", siit: false, nat64: true, ops: &["display"] },
    Mode { label: "file", siit: true, nat64: true, ops: &["handle"] },
    Mode { label: "joold", siit: false, nat64: true, ops: &["advertise"] },
];

/// Where the tree walk ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Walk {
    /// A handler was found: mode, operation, and the arguments from the
    /// operation on (`argv[0]` is the operation's token).
    Handler(&'static str, &'static str, Vec<String>),
    /// The walk failed: stderr text and exit status.
    Failed(String, u8),
}

fn visible(m: &Mode, x: Xlator) -> bool {
    match x {
        Xlator::Siit => m.siit,
        Xlator::Nat64 => m.nat64,
    }
}

fn list(labels: &[&str]) -> String {
    labels.iter().fold(String::new(), |mut s, l| {
        let _ = write!(s, "{l} ");
        s
    })
}

/// `find_matches`: the exact label, or every label `token` is a prefix of.
fn matches<'a>(labels: &[&'a str], token: &str) -> Vec<&'a str> {
    if let Some(l) = labels.iter().find(|l| **l == token) {
        return vec![l];
    }
    labels.iter().copied().filter(|l| l.starts_with(token)).collect()
}

fn step<'a>(labels: &[&'a str], token: &str) -> Result<&'a str, Walk> {
    match matches(labels, token).as_slice() {
        [one] => Ok(one),
        [] => Err(Walk::Failed(
            format!(
                "Unexpected token: '{token}'\nAvailable options: {}\n",
                list(labels)
            ),
            EX_TREE,
        )),
        many => Err(Walk::Failed(
            format!(
                "Ambiguous token: '{token}'\nAvailable options: {}\n",
                list(many)
            ),
            EX_TREE,
        )),
    }
}

fn more_expected(labels: &[&str]) -> Walk {
    Walk::Failed(
        format!(
            "More arguments expected.\nPossible follow-ups: {}\n",
            list(labels)
        ),
        EX_TREE,
    )
}

/// `__handle`: walks mode and operation.
pub fn walk(xlator: Xlator, args: &[String]) -> Walk {
    let modes: Vec<&Mode> =
        TREE.iter().filter(|m| visible(m, xlator)).collect();
    let labels: Vec<&str> = modes.iter().map(|m| m.label).collect();
    let Some(first) = args.first() else { return more_expected(&labels) };
    let mode = match step(&labels, first) {
        Ok(l) => modes.iter().find(|m| m.label == l).copied(),
        Err(w) => return w,
    };
    let Some(mode) = mode else { return more_expected(&labels) };
    let Some(second) = args.get(1) else { return more_expected(mode.ops) };
    match step(mode.ops, second) {
        Ok(op) => Walk::Handler(mode.label, op, args[1..].to_vec()),
        Err(w) => w,
    }
}

/// One option of an argp option table.
#[derive(Clone, Copy, Debug)]
pub struct Opt {
    /// Long name.
    pub long: &'static str,
    /// Short key, if any.
    pub short: Option<char>,
    /// Whether it takes an argument.
    pub arg: bool,
}

/// argp's built-in options, appended to every table.
pub const BUILTIN: [Opt; 3] = [
    Opt { long: "help", short: Some('?'), arg: false },
    Opt { long: "usage", short: None, arg: false },
    Opt { long: "version", short: Some('V'), arg: false },
];

/// `stats display`'s options.
pub const DISPLAY: [Opt; 4] = [
    Opt { long: "all", short: Some('a'), arg: false },
    Opt { long: "explain", short: Some('e'), arg: false },
    Opt { long: "no-headers", short: None, arg: false },
    Opt { long: "csv", short: None, arg: false },
];

/// What argp made of an operation's arguments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Long names of the options given, in order, with their arguments.
    pub options: Vec<(&'static str, Option<String>)>,
    /// Non-option arguments.
    pub positional: Vec<String>,
}

impl Parsed {
    /// Whether `long` was given.
    pub fn has(&self, long: &str) -> bool {
        self.options.iter().any(|(l, _)| *l == long)
    }

    /// The last argument of `long`.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .and_then(|(_, v)| v.as_deref())
    }
}

fn usage_error(cmd: &str, msg: &str) -> (String, u8) {
    (
        format!("{cmd}: {msg}\nTry `{cmd} --help' or `{cmd} --usage' for more information.\n"),
        EX_USAGE,
    )
}

/// argp (getopt_long, permuting) over `args` (`args[0]` is the command
/// name, e.g. `display`). `max_positional` arguments are allowed.
pub fn parse(
    table: &[Opt],
    args: &[String],
    max_positional: usize,
) -> Result<Parsed, (String, u8)> {
    let cmd = args.first().map_or("display", String::as_str);
    let all: Vec<Opt> = table.iter().chain(BUILTIN.iter()).copied().collect();
    let mut out = Parsed::default();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            out.positional.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let exact = all.iter().find(|o| o.long == name);
            let cands: Vec<&Opt> =
                all.iter().filter(|o| o.long.starts_with(name)).collect();
            let opt = match (exact, cands.as_slice()) {
                (Some(o), _) => o,
                (None, [o]) => *o,
                (None, []) => {
                    return Err(usage_error(
                        cmd,
                        &format!("unrecognized option '--{name}'"),
                    ))
                }
                (None, many) => {
                    let names: Vec<String> = many
                        .iter()
                        .map(|o| format!("'--{}'", o.long))
                        .collect();
                    let msg = format!(
                        "option '--{name}' is ambiguous; possibilities: {}",
                        names.join(" ")
                    );
                    return Err(usage_error(cmd, &msg));
                }
            };
            let value = match (opt.arg, inline) {
                (false, Some(_)) => {
                    let msg = format!(
                        "option '--{}' doesn't allow an argument",
                        opt.long
                    );
                    return Err(usage_error(cmd, &msg));
                }
                (true, Some(v)) => Some(v),
                (true, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => {
                        let msg = format!(
                            "option '--{}' requires an argument",
                            opt.long
                        );
                        return Err(usage_error(cmd, &msg));
                    }
                },
                (false, None) => None,
            };
            out.options.push((opt.long, value));
        } else if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let Some(opt) = all.iter().find(|o| o.short == Some(c)) else {
                    return Err(usage_error(
                        cmd,
                        &format!("invalid option -- '{c}'"),
                    ));
                };
                if opt.arg {
                    let rest: String = chars[j..].iter().collect();
                    let v = if !rest.is_empty() {
                        rest
                    } else if let Some(v) = args.get(i) {
                        i += 1;
                        v.clone()
                    } else {
                        let msg =
                            format!("option requires an argument -- '{c}'");
                        return Err(usage_error(cmd, &msg));
                    };
                    out.options.push((opt.long, Some(v)));
                    break;
                }
                out.options.push((opt.long, None));
            }
        } else {
            out.positional.push(a.clone());
        }
    }
    if out.positional.len() > max_positional {
        return Err(usage_error(cmd, "Too many arguments"));
    }
    Ok(out)
}

/// argp's `--help` for `stats display` (4.1.x).
pub const DISPLAY_HELP: &str = "Usage: display [OPTION...]\n\n  -a, --all                  Do not filter out zero stats\n      --csv                  Print in CSV format\n  -e, --explain              Print a description of what each stat means\n      --no-headers           Do not print table headers\n  -?, --help                 Give this help list\n      --usage                Give a short usage message\n  -V, --version              Print program version\n\nReport bugs to jool@nic.mx.\n";

/// argp's `--usage` for `stats display` (4.1.x).
pub const DISPLAY_USAGE: &str = "Usage: display [-ae?V] [--all] [--csv] [--explain] [--no-headers] [--help]\n            [--usage] [--version]\n";

#[cfg(test)]
mod test {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn test_walk_prefixes_and_errors() {
        assert_eq!(
            walk(Xlator::Siit, &s(&["stat", "disp", "-a"])),
            Walk::Handler("stats", "display", s(&["disp", "-a"]))
        );
        assert_eq!(
            walk(Xlator::Siit, &s(&["stats"])),
            Walk::Failed(
                "More arguments expected.\nPossible follow-ups: display \n"
                    .into(),
                234
            )
        );
        assert_eq!(
            walk(Xlator::Nat64, &s(&["stats", "--help"])),
            Walk::Failed(
                "Unexpected token: '--help'\nAvailable options: display \n"
                    .into(),
                234
            )
        );
    }

    #[test]
    fn test_display_options() {
        let p = parse(&DISPLAY, &s(&["display", "-ae", "--no-h", "--csv"]), 0)
            .unwrap();
        assert!(
            p.has("all")
                && p.has("explain")
                && p.has("no-headers")
                && p.has("csv")
        );
        let (e, code) =
            parse(&DISPLAY, &s(&["display", "--csv=yes"]), 0).unwrap_err();
        assert_eq!(code, 64);
        assert_eq!(e, "display: option '--csv' doesn't allow an argument\nTry `display --help' or `display --usage' for more information.\n");
        let (e, _) =
            parse(&DISPLAY, &s(&["display", "extra"]), 0).unwrap_err();
        assert!(e.starts_with("display: Too many arguments\n"));
        let (e, _) =
            parse(&DISPLAY, &s(&["display", "--bogus"]), 0).unwrap_err();
        assert!(e.starts_with("display: unrecognized option '--bogus'\n"));
    }
}
