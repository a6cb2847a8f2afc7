//! The operations jool-stats runs against a kernel: `stats display` (as
//! the real client: argp, the socket, the CSV header, the instance name's
//! check, the request, each counter as it arrives, the error report) in
//! text, JSON or Prometheus form, and `instance add|remove` for the
//! suites.

use std::io::{self, BufWriter, Write};

use jool_sim::{
    kernel::Framework, kernel::Xlator, versions::ErrorStyle, versions::Profile,
};

use super::{
    argp,
    connect::ConnectError,
    exit::{self, Outcome},
    labels,
    options::Globals,
    tree::Frontend,
    valid_iname, write_or_die, Context, Format, INAME_ERROR,
};
use crate::{
    client::{self, Client, ErrorKind},
    format::{
        self, DisplayFlags, JsonMeta, RenderError, Renderer, Translator,
    },
    transport::Transport,
};

/// glibc's stdout buffer for a pipe or a file: the real client's writes
/// happen in blocks of this size (and at exit).
const STDOUT_BUFFER: usize = 4096;

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
            exit::status_of(-nle.code())
        }
        _ => e.exit_code(),
    }
}

/// An option error of an operation, or argp's own output.
fn argp_exit<O: Write, E: Write>(
    x: argp::Exit,
    out: &mut O,
    err: &mut E,
) -> Outcome {
    let _ = err.write_all(&x.stderr);
    if let Err(o) = write_or_die(out, &x.stdout) {
        return o;
    }
    Outcome::Exit(x.status)
}

fn connect_failed<E: Write>(
    g: &Globals,
    e: &ConnectError,
    err: &mut E,
) -> Outcome {
    if let ConnectError::SimAndSocket(_) = e {
        let _ = writeln!(err, "{}: {e}", String::from_utf8_lossy(&g.program));
        return Outcome::Exit(exit::EX_USAGE);
    }
    let _ = writeln!(err, "Error: {e}");
    Outcome::Exit(exit::NEG_EINVAL)
}

/// `stats display`.
pub(crate) fn stats<O: Write, E: Write>(
    g: &Globals,
    fe: Frontend,
    ctx: Context<'_>,
    args: &[Vec<u8>],
    out: &mut O,
    err: &mut E,
) -> Outcome {
    let version = fe.version();
    let texts =
        argp::Texts { version: &version, bug_address: fe.bug_address() };
    let p = match argp::parse(&argp::DISPLAY, args, 0, texts) {
        Ok(p) => p,
        Err(x) => return argp_exit(x, out, err),
    };
    let flags = DisplayFlags {
        all: p.has("all"),
        explain: p.has("explain"),
        csv: p.has("csv"),
        no_headers: p.has("no-headers"),
    };
    let labels = ctx.labels(g);
    let mut link = match ctx.link(g) {
        Ok(l) => l,
        Err(e) => return connect_failed(g, &e, err),
    };
    let kernel = link.detect();
    let profile =
        match labels::settle(g, labels, fe.profile, kernel, &mut link, err) {
            Ok(p) => p,
            Err(code) => return Outcome::Exit(code),
        };
    let t = match link.open() {
        Ok(t) => t,
        Err(e) => return connect_failed(g, &e, err),
    };
    let mut c = Client::new(t, profile, g.xlator);
    if let Err(e) = c.connect() {
        return Outcome::Exit(report(profile, &e, err));
    }
    let mut stdout = BufWriter::with_capacity(STDOUT_BUFFER, out);
    let code = match g.format {
        Format::Text => {
            text(&mut c, g.iname.as_deref(), profile, flags, &mut stdout, err)
        }
        Format::Json | Format::Prometheus => {
            doc(&mut c, g, profile, flags, &mut stdout, err)
        }
    };
    match (code, stdout.flush()) {
        (Outcome::Exit(_), Err(e)) => write_failed(&e, err),
        (code, _) => code,
    }
}

/// A write to stdout failed: death by `SIGPIPE` for a closed pipe, as the
/// real client dies; else an I/O error.
fn write_failed<E: Write>(e: &io::Error, err: &mut E) -> Outcome {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return Outcome::Signal(exit::SIGPIPE);
    }
    let _ = writeln!(err, "Error: cannot write the output: {e}");
    Outcome::Exit(exit::EX_IOERR)
}

/// The real client's display over a connected client: the CSV header,
/// the name's check, then each counter as it arrives, then the error
/// report if any.
pub(crate) fn text<T: Transport, O: Write, E: Write>(
    c: &mut Client<T>,
    iname: Option<&[u8]>,
    profile: &'static Profile,
    flags: DisplayFlags,
    out: &mut O,
    err: &mut E,
) -> Outcome {
    let r = Renderer::new(profile, flags);
    if let Err(e) = r.header(out) {
        return write_failed(&e, err);
    }
    let Some(iname) = valid_iname(iname) else {
        let _ = writeln!(err, "Error: {INAME_ERROR}");
        return Outcome::Exit(exit::NEG_EINVAL);
    };
    let mut render_failure = None;
    let result = c.stats_foreach(iname, |id, v| {
        r.counter(id, v, out, err).map_err(|e| {
            render_failure = Some(e);
            client::Error::new(ErrorKind::UnknownStat(id))
        })
    });
    match (result, render_failure) {
        (Ok(_), _) => Outcome::Exit(exit::SUCCESS),
        (Err(_), Some(RenderError::Io(e))) => write_failed(&e, err),
        (Err(e), _) => Outcome::Exit(report(profile, &e, err)),
    }
}

fn doc<O: Write, E: Write>(
    c: &mut Client<Box<dyn Transport + '_>>,
    g: &Globals,
    profile: &'static Profile,
    flags: DisplayFlags,
    out: &mut O,
    err: &mut E,
) -> Outcome {
    let Some(iname) = valid_iname(g.iname.as_deref()) else {
        let _ = writeln!(err, "Error: {INAME_ERROR}");
        return Outcome::Exit(exit::NEG_EINVAL);
    };
    let stats = match c.stats(iname) {
        Ok(s) => s,
        Err(e) => return Outcome::Exit(report(profile, &e, err)),
    };
    let rows = format::rows(profile, stats);
    let written = match g.format {
        Format::Json => {
            let translator = match g.xlator {
                Xlator::Siit => Translator::Siit,
                Xlator::Nat64 => Translator::Nat64,
            };
            let meta = JsonMeta {
                instance: iname.unwrap_or("default"),
                translator,
                client_release: &profile.release,
            };
            format::write_json(&meta, rows, flags.all, out)
        }
        _ => format::write_prometheus(&hostname(), rows, out),
    };
    match written {
        Err(e) => write_failed(&e, err),
        Ok(()) => Outcome::Exit(exit::SUCCESS),
    }
}

/// The machine's name, as jool-exporter labels its samples.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// `instance add|remove`: the name is the positional argument, else `-i`.
pub(crate) fn instance<O: Write, E: Write>(
    g: &Globals,
    fe: Frontend,
    ctx: Context<'_>,
    op: &str,
    args: &[Vec<u8>],
    out: &mut O,
    err: &mut E,
) -> Outcome {
    let table: &[argp::Opt] =
        if op == "add" { &argp::INSTANCE_ADD } else { &[] };
    let version = fe.version();
    let texts =
        argp::Texts { version: &version, bug_address: fe.bug_address() };
    let p = match argp::parse(table, args, 1, texts) {
        Ok(p) => p,
        Err(x) => return argp_exit(x, out, err),
    };
    let profile = fe.profile;
    let mut link = match ctx.link(g) {
        Ok(l) => l,
        Err(e) => return connect_failed(g, &e, err),
    };
    let t = match link.open() {
        Ok(t) => t,
        Err(e) => return connect_failed(g, &e, err),
    };
    let mut c = Client::new(t, profile, g.xlator);
    let name = p.positional.first().map(Vec::as_slice).or(g.iname.as_deref());
    let Some(name) = valid_iname(name) else {
        let _ = writeln!(err, "Error: {INAME_ERROR}");
        return Outcome::Exit(exit::NEG_EINVAL);
    };
    let result = if op == "add" {
        let framework = if p.has("iptables") {
            Framework::Iptables
        } else {
            Framework::Netfilter
        };
        let pool6 = match p.value("pool6").map(String::from_utf8_lossy) {
            None => None,
            Some(s) => match client::parse_prefix6(&s) {
                Some(v) => Some(v),
                None => {
                    let _ = writeln!(
                        err,
                        "Error: '{s}' is not a valid IPv6 prefix."
                    );
                    return Outcome::Exit(exit::NEG_EINVAL);
                }
            },
        };
        c.instance_add(name, framework, pool6)
    } else {
        c.instance_remove(name)
    };
    match result {
        Ok(()) => Outcome::Exit(exit::SUCCESS),
        Err(e) => Outcome::Exit(report(profile, &e, err)),
    }
}
