//! `jool-stats`: a drop-in for `jool[_siit] [-i NAME] stats display ...`.
//!
//! The command line mirrors the real client's (getopt for the global
//! options, the mode/operation tree, argp for the operation), so scripts
//! and their error handling see the same texts and exit statuses. Extra
//! global options choose the labels, the kernel (real, in-process sim or
//! the `jool-sim` daemon) and the output format; see [`HELP`].

use std::{
    ffi::OsString,
    io::{self, BufWriter, Write},
    path::PathBuf,
};

use jool_sim::{
    identity::Identity,
    kernel::{Caller, Framework, Kernel, Xlator},
    versions::{ErrorStyle, Profile},
};

use crate::{
    client::{self, Client, ErrorKind},
    counters,
    format::{
        self, DisplayFlags, JsonMeta, RenderError, Renderer, Translator,
    },
    transport::{self, InProcess, NetlinkSocket, Transport},
};

pub mod argp;
pub mod labels;

/// Release of the `--sim` kernel when neither `--kernel-version` nor
/// `--client-version` names one (so `auto` labels with it).
pub const DEFAULT_CLIENT: &str = "4.1.9";

/// `jool-stats --help`.
pub const HELP: &str = "\
jool-stats: a drop-in for `jool stats display` / `jool_siit stats display`
that labels counters with any Jool release's table and can read them from
the real kernel module or from the jool-sim simulator.

Usage:
  jool-stats [GLOBAL...] [-i NAME] stats display [--all] [--explain] [--csv] [--no-headers]
  jool-stats [GLOBAL...] [-i NAME] instance add [NAME] (--netfilter|--iptables) [--pool6 PREFIX]
  jool-stats [GLOBAL...] [-i NAME] instance remove [NAME]

Called as `jool_siit` (or with --siit) it is the SIIT client; otherwise NAT64.

Global options (before the mode):
  -i, --instance NAME       Instance name (default: `default`)
  -f, --file FILE           JSON file whose \"instance\" field names the instance
      --siit | --nat64      Translator type (default: from the program name)
      --client-version V    Release whose labels, header and output rules to
                            use; see `jool-harness versions list`. Default
                            `auto`: the kernel module's own release
                            (/sys/module/jool*/version, JOOL_SIM_KERNEL_VERSION
                            or --sim); when nothing tells, the newest table
                            that fits the kernel's reply, said on stderr.
                            A V whose labels differ from the kernel's
                            release gets a warning listing the mislabels
      --strict              Make that warning an error (exit status 65)
      --format F            text (default, byte-identical to the C client),
                            json, or prometheus (as jool-exporter)
      --sim                 Use an in-process simulated kernel instead of the
                            real one; it has a `default` instance of each type
      --kernel-version V    Release of the simulated kernel (default: the
                            client version)
      --counters FILE       Counters of the simulated `default` instance: what
                            `stats display --csv --all` prints
      --no-module           Simulate a kernel without Jool loaded
      --no-instance         Simulate a kernel with no instance at all
  -V, --version             Print the client version
  -?, --help                This help

Without --sim, jool-stats talks to the kernel over NETLINK_GENERIC (or to a
`jool-sim serve` daemon when JOOL_SIM_SOCKET is set). Exit statuses are the
real client's: 0, the kernel's errno (3: no such instance, 1: permission),
253 (Jool not loaded), 234 (client-side errors), 64 (bad options).
";

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The real client's text/CSV.
    Text,
    /// `format::write_json`.
    Json,
    /// `format::write_prometheus`.
    Prometheus,
}

/// The simulated kernel's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimOpts {
    /// `--kernel-version`.
    pub kernel_version: Option<String>,
    /// `--counters`.
    pub counters: Option<PathBuf>,
    /// `--no-module`.
    pub no_module: bool,
    /// `--no-instance`.
    pub no_instance: bool,
}

/// Global options, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Globals {
    /// Program name as invoked.
    pub program: String,
    /// Translator type.
    pub xlator: Xlator,
    /// `-i`.
    pub iname: Option<String>,
    /// `--client-version`: a release, or [`labels::AUTO`].
    pub client_version: String,
    /// `--strict`.
    pub strict: bool,
    /// `--format`.
    pub format: Format,
    /// `--sim` and its options.
    pub sim: Option<SimOpts>,
}

/// What the global option parser decided.
#[derive(Debug)]
enum Start {
    Run(Box<Globals>, Vec<String>),
    Print(String, String, u8),
}

fn program_xlator(program: &str) -> Xlator {
    let base = program.rsplit('/').next().unwrap_or(program);
    if base.contains("siit") {
        Xlator::Siit
    } else {
        Xlator::Nat64
    }
}

/// getopt_long("+?Vi:f:") plus the extra options; stops at the first
/// non-option (the mode).
fn parse_globals(args: &[String]) -> Start {
    let program = args.first().cloned().unwrap_or_else(|| "jool".to_owned());
    let mut g = Globals {
        xlator: program_xlator(&program),
        program,
        iname: None,
        client_version: labels::AUTO.to_owned(),
        strict: false,
        format: Format::Text,
        sim: None,
    };
    let mut sim = SimOpts::default();
    let mut want_sim = false;
    let mut i = 1;
    let bad = |msg: String| Start::Print(String::new(), msg, argp::EX_USAGE);
    while i < args.len() {
        let a = args[i].as_str();
        if !a.starts_with('-') || a == "-" {
            break;
        }
        i += 1;
        if a == "--" {
            break;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if a.starts_with("--") => (n, Some(v.to_owned())),
            _ => (a, None),
        };
        let (name, inline) = match name
            .strip_prefix("-i")
            .filter(|r| !r.is_empty() && !a.starts_with("--"))
        {
            Some(rest) => ("-i", Some(rest.to_owned())),
            None => (name, inline),
        };
        let mut value = |what: &str| -> Result<String, Start> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            let v = args.get(i).cloned().ok_or_else(|| {
                bad(format!(
                    "{}: option '{what}' requires an argument\n",
                    g.program
                ))
            })?;
            i += 1;
            Ok(v)
        };
        let r: Result<(), Start> = (|| {
            match name {
                "-?" | "--help" | "-h" => return Err(Start::Print(HELP.to_owned(), String::new(), 0)),
                "-V" | "--version" => {
                    let p = labels::version_quad(&g.client_version);
                    return Err(Start::Print(format!("{}\n", p.unwrap_or_default()), String::new(), 0));
                }
                "-i" | "--instance" => g.iname = Some(value("--instance")?),
                "-f" | "--file" => g.iname = Some(iname_from_file(&value("--file")?).map_err(bad)?),
                "--siit" => g.xlator = Xlator::Siit,
                "--nat64" => g.xlator = Xlator::Nat64,
                "--client-version" => g.client_version = value("--client-version")?,
                "--strict" => g.strict = true,
                "--format" => {
                    g.format = match value("--format")?.as_str() {
                        "text" => Format::Text,
                        "json" => Format::Json,
                        "prometheus" => Format::Prometheus,
                        other => return Err(bad(format!(
                            "{}: unknown --format '{other}' (text, json, prometheus)\n", g.program
                        ))),
                    }
                }
                "--sim" => want_sim = true,
                "--kernel-version" => sim.kernel_version = Some(value("--kernel-version")?),
                "--counters" => sim.counters = Some(PathBuf::from(value("--counters")?)),
                "--no-module" => sim.no_module = true,
                "--no-instance" => sim.no_instance = true,
                _ => {
                    return Err(Start::Print(
                        String::new(),
                        format!("{}: unrecognized option '{a}'\nTry `{} --help'.\n", g.program, g.program),
                        argp::EX_USAGE,
                    ))
                }
            }
            Ok(())
        })();
        if let Err(stop) = r {
            return stop;
        }
    }
    if want_sim || sim != SimOpts::default() {
        g.sim = Some(sim);
    }
    Start::Run(Box::new(g), args[i..].to_vec())
}

/// `joolnl_file_get_iname`: the `instance` field of a JSON file.
fn iname_from_file(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Error: {path}: {e}\n"))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("Error: {path}: {e}\n"))?;
    v.get("instance")
        .and_then(|i| i.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("Error: {path}: no \"instance\" string\n"))
}

/// Runs one invocation; returns the exit status.
pub fn run<O: Write, E: Write>(
    args: &[String],
    out: &mut O,
    err: &mut E,
) -> u8 {
    let (g, rest) = match parse_globals(args) {
        Start::Run(g, rest) => (g, rest),
        Start::Print(o, e, code) => {
            let _ = out.write_all(o.as_bytes());
            let _ = err.write_all(e.as_bytes());
            return code;
        }
    };
    let Some(profile) = labels::initial(&g) else {
        let _ = writeln!(
            err,
            "{}: unknown --client-version '{}'; known releases: {}",
            g.program,
            g.client_version,
            Profile::names().join(" ")
        );
        return argp::EX_USAGE;
    };
    match argp::walk(g.xlator, &rest) {
        argp::Walk::Failed(text, code) => {
            let _ = err.write_all(text.as_bytes());
            code
        }
        argp::Walk::Handler("stats", "display", a) => {
            display(&g, profile, &a, out, err)
        }
        argp::Walk::Handler("instance", op @ ("add" | "remove"), a) => {
            instance(&g, profile, op, &a, err)
        }
        argp::Walk::Handler(mode, op, _) => {
            let _ = writeln!(
                err,
                "{}: `{mode} {op}` is not emulated; jool-stats implements `stats display`, `instance add` and `instance remove`.",
                g.program
            );
            2
        }
    }
}

/// Prints a client error as the release's client does; returns its status.
pub(crate) fn report<E: Write>(
    profile: &Profile,
    e: &client::Error,
    err: &mut E,
) -> u8 {
    let text = match (profile.error_style, e.kind()) {
        (ErrorStyle::Bare, ErrorKind::FamilyMissing(_)) => {
            "Jool's socket family doesn't seem to exist.\n(This probably means Jool hasn't been modprobed.)\n".to_owned()
        }
        (ErrorStyle::Bare, ErrorKind::Kernel { code, msg }) => {
            format!("Jool Error: {msg}\n(Error code: {code})\n")
        }
        (ErrorStyle::Bare, _) => format!("{e}\n"),
        (ErrorStyle::Prefixed, _) => format!("Error: {e}\n"),
    };
    let _ = err.write_all(text.as_bytes());
    match (profile.error_style, e.kind()) {
        (ErrorStyle::Bare, ErrorKind::FamilyMissing(nle)) => {
            (256 - nle.code()) as u8
        }
        _ => e.exit_code(),
    }
}

/// A transport for the invocation: the in-process sim, the daemon, or the
/// real kernel.
fn transport(
    g: &Globals,
    profile: &'static Profile,
) -> Result<Box<dyn Transport>, String> {
    let me = Identity::current()
        .map_err(|e| format!("cannot read /proc/self: {e}"))?;
    let Some(sim) = &g.sim else {
        if let Some(path) = std::env::var_os("JOOL_SIM_SOCKET") {
            let path = PathBuf::from(path);
            return transport::Daemon::connect(&path)
                .map(|s| Box::new(s) as Box<dyn Transport>)
                .map_err(|e| {
                    format!(
                        "Could not connect to jool-sim at {}: {e}",
                        path.display()
                    )
                });
        }
        return NetlinkSocket::open()
            .map(|s| Box::new(s) as Box<dyn Transport>)
            .map_err(|e| {
                format!("Could not open the socket to kernelspace: {e}")
            });
    };
    let kv = sim.kernel_version.as_deref().unwrap_or(&profile.release);
    let kprofile = Profile::get(kv).ok_or_else(|| {
        format!(
            "unknown --kernel-version '{kv}'; known releases: {}",
            Profile::names().join(" ")
        )
    })?;
    let mut k = Kernel::new(kprofile);
    let pool6 = client::parse_prefix6("64:ff9b::/96");
    for x in [Xlator::Siit, Xlator::Nat64] {
        k.add_instance(me.netns, x, "default", Framework::Netfilter)
            .map_err(|e| e.to_string())?;
        k.set_pool6(me.netns, x, "default", pool6)
            .map_err(|e| e.to_string())?;
    }
    if let Some(path) = &sim.counters {
        let rows = std::fs::File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|f| counters::read(f).map_err(|e| e.to_string()))
            .and_then(|c| {
                counters::to_ids(&c, kprofile).map_err(|e| e.to_string())
            })
            .map_err(|e| format!("{}: {e}", path.display()))?;
        k.set_counters(me.netns, g.xlator, "default", &rows)
            .map_err(|e| e.to_string())?;
    }
    if sim.no_instance {
        for x in [Xlator::Siit, Xlator::Nat64] {
            k.remove_instance(me.netns, x, "default")
                .map_err(|e| e.to_string())?;
        }
    }
    if sim.no_module {
        k.set_modules(false, false);
    }
    let caller = Caller {
        netns: me.netns,
        net_admin: me.net_admin(),
        port_id: std::process::id(),
        ext_ack: false,
    };
    Ok(Box::new(InProcess::new(k, caller)))
}

fn display<O: Write, E: Write>(
    g: &Globals,
    profile: &'static Profile,
    args: &[String],
    out: &mut O,
    err: &mut E,
) -> u8 {
    let p = match argp::parse(&argp::DISPLAY, args, 0) {
        Ok(p) => p,
        Err((text, code)) => {
            let _ = err.write_all(text.as_bytes());
            return code;
        }
    };
    if p.has("help") {
        let _ = out.write_all(argp::DISPLAY_HELP.as_bytes());
        return 0;
    }
    if p.has("usage") {
        let _ = out.write_all(argp::DISPLAY_USAGE.as_bytes());
        return 0;
    }
    if p.has("version") {
        let _ = writeln!(out, "{}", profile.version_quad());
        return 0;
    }
    let flags = display_flags(&p);
    let profile = match labels::settle(g, profile, err) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let t = match transport(g, profile) {
        Ok(t) => t,
        Err(msg) => {
            let _ = writeln!(err, "Error: {msg}");
            return 234;
        }
    };
    let mut c = Client::new(t, profile, g.xlator);
    if let Err(e) = c.connect() {
        return report(profile, &e, err);
    }
    let mut stdout = BufWriter::new(out);
    let code = match g.format {
        Format::Text => display_text(
            &mut c,
            g.iname.as_deref(),
            profile,
            flags,
            &mut stdout,
            err,
        ),
        Format::Json | Format::Prometheus => {
            display_doc(&mut c, g, profile, flags, &mut stdout, err)
        }
    };
    match stdout.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            let _ = writeln!(err, "Error: cannot write the output: {e}");
            74
        }
        _ => code,
    }
}

/// `stats display`'s flags from its parsed options.
pub(crate) fn display_flags(p: &argp::Parsed) -> DisplayFlags {
    DisplayFlags {
        all: p.has("all"),
        explain: p.has("explain"),
        csv: p.has("csv"),
        no_headers: p.has("no-headers"),
    }
}

/// The real client's text display over a connected client: header, then
/// each counter as it arrives, then the error report if any.
pub(crate) fn display_text<T: Transport, O: Write, E: Write>(
    c: &mut Client<T>,
    iname: Option<&str>,
    profile: &'static Profile,
    flags: DisplayFlags,
    out: &mut O,
    err: &mut E,
) -> u8 {
    let r = Renderer::new(profile, flags);
    if r.header(out).is_err() {
        return 0;
    }
    let mut render_failure = None;
    let result = c.stats_foreach(iname, |id, v| {
        r.counter(id, v, out, err).map_err(|e| {
            let stop = client::Error::new(ErrorKind::UnknownStat(id));
            render_failure = Some(e);
            stop
        })
    });
    match (result, render_failure) {
        (Ok(_), _) => 0,
        (Err(_), Some(RenderError::Io(_))) => 0,
        (Err(e), _) => report(profile, &e, err),
    }
}

fn display_doc<O: Write, E: Write>(
    c: &mut Client<Box<dyn Transport>>,
    g: &Globals,
    profile: &'static Profile,
    flags: DisplayFlags,
    out: &mut O,
    err: &mut E,
) -> u8 {
    let stats = match c.stats(g.iname.as_deref()) {
        Ok(s) => s,
        Err(e) => return report(profile, &e, err),
    };
    let rows = format::rows(profile, stats);
    let written = match g.format {
        Format::Json => {
            let translator = match g.xlator {
                Xlator::Siit => Translator::Siit,
                Xlator::Nat64 => Translator::Nat64,
            };
            let meta = JsonMeta {
                instance: g.iname.as_deref().unwrap_or("default"),
                translator,
                client_release: &profile.release,
            };
            format::write_json(&meta, rows, flags.all, out)
        }
        _ => format::write_prometheus(&hostname(), rows, out),
    };
    match written {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            let _ = writeln!(err, "Error: cannot write the output: {e}");
            74
        }
        _ => 0,
    }
}

/// The machine's name, as jool-exporter labels its samples.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// `instance add`'s options (`instance remove` has none).
pub(crate) const INSTANCE_ADD: [argp::Opt; 3] = [
    argp::Opt { long: "netfilter", short: None, arg: false },
    argp::Opt { long: "iptables", short: None, arg: false },
    argp::Opt { long: "pool6", short: None, arg: true },
];

fn instance<E: Write>(
    g: &Globals,
    profile: &'static Profile,
    op: &str,
    args: &[String],
    err: &mut E,
) -> u8 {
    let table: &[argp::Opt] = if op == "add" { &INSTANCE_ADD } else { &[] };
    let p = match argp::parse(table, args, 1) {
        Ok(p) => p,
        Err((text, code)) => {
            let _ = err.write_all(text.as_bytes());
            return code;
        }
    };
    let t = match transport(g, profile) {
        Ok(t) => t,
        Err(msg) => {
            let _ = writeln!(err, "Error: {msg}");
            return 234;
        }
    };
    let mut c = Client::new(t, profile, g.xlator);
    instance_on(&mut c, profile, op, &p, g.iname.as_deref(), err)
}

/// `instance add|remove` with parsed options over a client; the name is
/// the positional argument, else `-i`.
pub(crate) fn instance_on<T: Transport, E: Write>(
    c: &mut Client<T>,
    profile: &'static Profile,
    op: &str,
    p: &argp::Parsed,
    iname: Option<&str>,
    err: &mut E,
) -> u8 {
    let name = p.positional.first().map(String::as_str).or(iname);
    let result = if op == "add" {
        let framework = if p.has("iptables") {
            Framework::Iptables
        } else {
            Framework::Netfilter
        };
        let pool6 = match p.value("pool6") {
            None => None,
            Some(s) => match client::parse_prefix6(s) {
                Some(v) => Some(v),
                None => {
                    let _ = writeln!(
                        err,
                        "Error: '{s}' is not a valid IPv6 prefix."
                    );
                    return 234;
                }
            },
        };
        c.instance_add(name, framework, pool6)
    } else {
        c.instance_remove(name)
    };
    match result {
        Ok(()) => 0,
        Err(e) => report(profile, &e, err),
    }
}

/// The binary's `main`: real stdout/stderr, exit status.
pub fn main(
    args: impl IntoIterator<Item = OsString>,
) -> std::process::ExitCode {
    let args: Vec<String> =
        args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let stdout = io::stdout();
    let stderr = io::stderr();
    let code = run(&args, &mut stdout.lock(), &mut stderr.lock());
    std::process::ExitCode::from(code)
}

#[cfg(test)]
mod test;
