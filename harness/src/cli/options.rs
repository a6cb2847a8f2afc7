//! The global options, before the mode: the real client's `getopt_long(
//! argc, argv, "+?Vi:f:", ...)` (`--help`, `--version`, `--usage`,
//! `--instance`, `--file`, prefixes, `-iNAME`, clusters), acting in order,
//! plus jool-stats' own options.
//!
//! jool-stats' options are recognized only when an argument is exactly
//! `--NAME` or `--NAME=VALUE` (no prefixes, no clusters), before getopt
//! sees it: every command line without them is parsed as the real client
//! parses it (`--si` stays an unknown option, `--f` is `--file`). A
//! command line made only of them counts as no arguments (the real
//! client's help).

use std::{os::unix::ffi::OsStringExt, path::PathBuf};

use jool_sim::{kernel::Xlator, setup, versions::Profile};

use super::{
    connect::SimOpts,
    file,
    getopt::{Arg, Getopt, Long, Next, Order},
    labels, Format,
};

/// The real client's long options, in its `OPTIONS` order.
const LONG: [Long; 5] = [
    Long { name: "help", arg: Arg::None },
    Long { name: "version", arg: Arg::None },
    Long { name: "usage", arg: Arg::None },
    Long { name: "instance", arg: Arg::Required },
    Long { name: "file", arg: Arg::Required },
];

/// Its short options (`?Vi:f:`).
const SHORT: [(u8, bool); 4] =
    [(b'?', false), (b'V', false), (b'i', true), (b'f', true)];

/// One of jool-stats' own options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnOpt {
    /// Its name.
    pub name: &'static str,
    /// It takes a value.
    pub value: bool,
    /// It describes the simulated kernel: an error without `--sim`.
    pub sim_only: bool,
}

const fn opt(name: &'static str, value: bool, sim_only: bool) -> OwnOpt {
    OwnOpt { name, value, sim_only }
}

/// jool-stats' own options.
pub const OWN: [OwnOpt; 10] = [
    opt("client-version", true, false),
    opt("counters", true, true),
    opt("format", true, false),
    opt("kernel-version", true, true),
    opt("nat64", false, false),
    opt("no-instance", false, true),
    opt("no-module", false, true),
    opt("siit", false, false),
    opt("sim", false, false),
    opt("strict", false, false),
];

/// Global options, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Globals {
    /// `argv[0]` as given (the real client's texts print it).
    pub program: Vec<u8>,
    /// Translator type (the program's name, `--siit`, `--nat64`).
    pub xlator: Xlator,
    /// `-i`, or the `instance` of a `-f` file (the last one wins).
    pub iname: Option<Vec<u8>>,
    /// `--client-version` when given: a release, or [`labels::AUTO`].
    pub client_version: Option<&'static str>,
    /// `--strict`.
    pub strict: bool,
    /// `--format`.
    pub format: Format,
    /// `--sim`.
    pub sim: bool,
    /// The simulated kernel's options.
    pub sim_opts: SimOpts,
    /// The `--sim`-only options given, in order.
    pub sim_only: Vec<&'static str>,
}

impl Globals {
    /// The options of a command line with none: translator from `program`.
    pub fn new(program: &[u8]) -> Self {
        Self {
            program: program.to_vec(),
            xlator: program_xlator(program),
            iname: None,
            client_version: None,
            strict: false,
            format: Format::Text,
            sim: false,
            sim_opts: SimOpts::default(),
            sim_only: Vec::new(),
        }
    }

    /// Whether jool-stats was called by its own name (its `--help` then
    /// documents its options too).
    pub fn own_name(&self) -> bool {
        base(&self.program) == b"jool-stats"
    }

    /// The `--client-version` given, when it is a release.
    pub fn forced(&self) -> Option<&'static Profile> {
        self.client_version
            .filter(|v| *v != labels::AUTO)
            .and_then(Profile::get)
    }
}

fn base(program: &[u8]) -> &[u8] {
    program.rsplit(|c| *c == b'/').next().unwrap_or(program)
}

/// `jool_siit` (any name holding `siit`) is SIIT; anything else NAT64.
pub fn program_xlator(program: &[u8]) -> Xlator {
    if base(program).windows(4).any(|w| w == b"siit") {
        Xlator::Siit
    } else {
        Xlator::Nat64
    }
}

/// Where the global options stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// Run the mode: its arguments.
    Run(Vec<Vec<u8>>),
    /// `show_help()`, after getopt's complaint (empty for `-?`/`--help`).
    Help(Vec<u8>),
    /// `show_usage()`.
    Usage,
    /// `show_version()`.
    Version,
    /// `-f` failed.
    File(file::Failure),
    /// One of jool-stats' own options is wrong: why (exit status 64).
    Bad(OptionError),
}

/// Parses the global options of `args` (`args[0]` is the program).
pub fn parse(args: &[Vec<u8>]) -> (Globals, Stop) {
    let mut g = Globals::new(args.first().map_or(&b"jool"[..], Vec::as_slice));
    let stop = scan(&mut g, args);
    (g, stop)
}

fn scan(g: &mut Globals, args: &[Vec<u8>]) -> Stop {
    let mut go = Getopt::new(args, Order::RequireOrder);
    let mut real = false;
    loop {
        if let Some(arg) = go.peek() {
            if let Some(found) = own(arg) {
                if let Err(why) = take_own(g, &mut go, found) {
                    return Stop::Bad(why);
                }
                continue;
            }
            real = true;
        }
        match go.next(&SHORT, &LONG) {
            Next::End => break,
            Next::Error(msg) => return Stop::Help(msg),
            Next::Short(b'?', _) | Next::Long(0, _) => {
                return Stop::Help(Vec::new())
            }
            Next::Short(b'V', _) | Next::Long(1, _) => return Stop::Version,
            Next::Long(2, _) => return Stop::Usage,
            Next::Short(b'i', v) | Next::Long(3, v) => g.iname = v,
            Next::Short(_, v) | Next::Long(_, v) => {
                match file::iname(&v.unwrap_or_default()) {
                    Ok(name) => g.iname = Some(name),
                    Err(f) => return Stop::File(f),
                }
            }
        }
    }
    let rest = go.rest();
    if !real && rest.is_empty() {
        return Stop::Help(Vec::new());
    }
    Stop::Run(rest)
}

/// The jool-stats option `arg` is, and its `=VALUE`.
fn own(arg: &[u8]) -> Option<(OwnOpt, Option<Vec<u8>>)> {
    let body = arg.strip_prefix(b"--")?;
    let (name, value) = match body.iter().position(|c| *c == b'=') {
        Some(i) => (&body[..i], Some(body[i + 1..].to_vec())),
        None => (body, None),
    };
    OWN.iter().find(|o| o.name.as_bytes() == name).map(|o| (*o, value))
}

/// One of jool-stats' own options is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionError {
    /// `--NAME=VALUE` for an option that takes none.
    ValueNotAllowed(&'static str),
    /// `--NAME` last, without its value.
    ValueMissing(&'static str),
    /// A release no fixture describes (the option, the error).
    UnknownRelease(&'static str, setup::SetupError),
    /// `--format` other than `text`, `json`, `prometheus`.
    UnknownFormat(String),
    /// A `--sim`-only option without `--sim` (whether `JOOL_SIM_SOCKET`
    /// is set).
    NeedsSim(&'static str, bool),
    /// `--counters` with `--no-instance`: no instance to hold them.
    CountersWithoutInstance,
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ValueNotAllowed(n) => {
                write!(f, "option '--{n}' doesn't allow an argument")
            }
            Self::ValueMissing(n) => {
                write!(f, "option '--{n}' requires an argument")
            }
            Self::UnknownRelease(n, e) => write!(f, "--{n}: {e}"),
            Self::UnknownFormat(v) => {
                write!(f, "unknown --format '{v}' (text, json, prometheus)")
            }
            Self::NeedsSim(n, daemon) => write!(
                f,
                "--{n} describes the simulated kernel: it needs --sim (without it, jool-stats talks to the real kernel{})",
                if *daemon { " or the JOOL_SIM_SOCKET daemon" } else { "" }
            ),
            Self::CountersWithoutInstance => f.write_str(
                "--counters fills the simulated instances, but --no-instance leaves none",
            ),
        }
    }
}

impl std::error::Error for OptionError {}

fn take_own(
    g: &mut Globals,
    go: &mut Getopt<'_>,
    (o, inline): (OwnOpt, Option<Vec<u8>>),
) -> Result<(), OptionError> {
    let name = o.name;
    let value = match (o.value, inline) {
        (false, Some(_)) => return Err(OptionError::ValueNotAllowed(name)),
        (false, None) => {
            go.take(false);
            Vec::new()
        }
        (true, Some(v)) => {
            go.take(false);
            v
        }
        (true, None) => {
            go.take(true).ok_or(OptionError::ValueMissing(name))?
        }
    };
    if o.sim_only {
        g.sim_only.push(name);
    }
    set_own(g, name, value)
}

fn release(name: &'static str, v: &[u8]) -> Result<&'static str, OptionError> {
    let v = String::from_utf8_lossy(v);
    if v == labels::AUTO && name == "client-version" {
        return Ok(labels::AUTO);
    }
    setup::release(&v)
        .map(|p| p.release.as_str())
        .map_err(|e| OptionError::UnknownRelease(name, e))
}

fn set_own(
    g: &mut Globals,
    name: &'static str,
    v: Vec<u8>,
) -> Result<(), OptionError> {
    match name {
        "client-version" => g.client_version = Some(release(name, &v)?),
        "kernel-version" => {
            g.sim_opts.kernel_version = Some(release(name, &v)?.to_owned())
        }
        "counters" => {
            g.sim_opts.counters =
                Some(PathBuf::from(std::ffi::OsString::from_vec(v)))
        }
        "format" => {
            g.format = match &v[..] {
                b"text" => Format::Text,
                b"json" => Format::Json,
                b"prometheus" => Format::Prometheus,
                other => {
                    let other = String::from_utf8_lossy(other).into_owned();
                    return Err(OptionError::UnknownFormat(other));
                }
            }
        }
        "nat64" => g.xlator = Xlator::Nat64,
        "siit" => g.xlator = Xlator::Siit,
        "no-instance" => g.sim_opts.no_instance = true,
        "no-module" => g.sim_opts.no_module = true,
        "sim" => g.sim = true,
        _ => g.strict = true,
    }
    Ok(())
}

/// The `--sim`-only options given without `--sim` (an error: they would
/// describe a kernel that is not there), and `--counters` with nowhere to
/// go.
pub fn check_sim_only(g: &Globals) -> Result<(), OptionError> {
    let daemon = std::env::var_os("JOOL_SIM_SOCKET").is_some();
    match (g.sim, g.sim_only.first()) {
        (false, Some(name)) => Err(OptionError::NeedsSim(name, daemon)),
        _ if g.sim_opts.no_instance && g.sim_opts.counters.is_some() => {
            Err(OptionError::CountersWithoutInstance)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn p(v: &[&str]) -> (Globals, Stop) {
        let args: Vec<Vec<u8>> =
            v.iter().map(|a| a.as_bytes().to_vec()).collect();
        parse(&args)
    }

    #[test]
    fn test_own_options_are_exact() {
        let (g, s) = p(&[
            "jool",
            "--siit",
            "--client-version=4.1.13",
            "-i",
            "x",
            "stats",
        ]);
        assert_eq!(s, Stop::Run(vec![b"stats".to_vec()]));
        assert_eq!(
            (g.xlator, g.client_version, g.iname),
            (Xlator::Siit, Some("4.1.13"), Some(b"x".to_vec()))
        );
        let (_, s) = p(&["jool", "--si", "stats"]);
        assert_eq!(
            s,
            Stop::Help(b"jool: unrecognized option '--si'\n".to_vec())
        );
        let (_, s) = p(&["jool", "--sim", "--strict"]);
        assert_eq!(
            s,
            Stop::Help(Vec::new()),
            "only jool-stats options: no arguments"
        );
        let (_, s) = p(&["jool", "--client-version", "9.9"]);
        assert!(
            matches!(s, Stop::Bad(ref m) if m.to_string().starts_with("--client-version: unknown release '9.9'")),
            "{s:?}"
        );
        let (_, s) = p(&["jool", "--kernel-version=9.9"]);
        assert!(matches!(s, Stop::Bad(_)));
    }

    #[test]
    fn test_options_act_in_order() {
        assert_eq!(p(&["jool", "-V", "--bogus"]).1, Stop::Version);
        assert!(
            matches!(p(&["jool", "--bogus", "-V"]).1, Stop::Help(ref m) if !m.is_empty())
        );
        assert_eq!(
            p(&["jool", "-i", "a", "-i", "b", "x"]).0.iname,
            Some(b"b".to_vec())
        );
        assert_eq!(p(&["jool"]).1, Stop::Help(Vec::new()));
        assert_eq!(p(&["jool", "--"]).1, Stop::Run(Vec::new()));
    }

    #[test]
    fn test_sim_only_needs_sim() {
        let (g, _) = p(&["jool", "--counters", "f", "stats", "display"]);
        assert!(check_sim_only(&g).unwrap_err().to_string().starts_with(
            "--counters describes the simulated kernel: it needs --sim"
        ));
        let (g, _) = p(&["jool", "--sim", "--no-module", "stats", "display"]);
        assert!(check_sim_only(&g).is_ok());
    }
}
