//! `jool-stats`, run in this process against a simulated kernel that
//! outlives the invocation, for a caller the step chooses (its netns and
//! whether it holds `CAP_NET_ADMIN`).
//!
//! `cli::run` builds a fresh simulated kernel per invocation and takes the
//! caller from `/proc/self`; a suite needs one kernel per case (instances
//! added by one step are seen by the next) and callers it picks. So the
//! kernel-facing operations (`stats display`, `instance add|remove`) are
//! dispatched here over the same parser, client, renderer and error
//! reporting as `cli`; everything that never reaches the kernel (option
//! errors, `--help`, unknown modes) goes to `cli::run` itself.

use std::io::Write;

use jool_sim::{
    kernel::{Caller, Kernel, Xlator},
    versions::Profile,
};

use crate::{
    cli::{self, argp},
    client::Client,
    transport::{InProcess, Transport},
};

/// The global options a suite command may use in-process.
struct Globals {
    xlator: Xlator,
    iname: Option<String>,
    profile: &'static Profile,
    rest: Vec<String>,
}

/// `-i NAME`, `--instance NAME`, `-iNAME`, `--instance=NAME`,
/// `--client-version V`; `None` for anything else (left to `cli::run`).
fn parse_globals(
    args: &[String],
    default: &'static Profile,
) -> Option<Globals> {
    let program = args.first()?;
    let base = program.rsplit('/').next().unwrap_or(program);
    let xlator =
        if base.contains("siit") { Xlator::Siit } else { Xlator::Nat64 };
    let mut g =
        Globals { xlator, iname: None, profile: default, rest: Vec::new() };
    let mut i = 1;
    while let Some(a) = args.get(i) {
        if !a.starts_with('-') || a == "-" {
            break;
        }
        i += 1;
        if let Some(v) = a.strip_prefix("--instance=") {
            g.iname = Some(v.to_owned());
        } else if a == "-i" || a == "--instance" {
            g.iname = Some(args.get(i)?.clone());
            i += 1;
        } else if let Some(v) =
            a.strip_prefix("-i").filter(|_| !a.starts_with("--"))
        {
            g.iname = Some(v.to_owned());
        } else if a == "--client-version" {
            g.profile = Profile::get(args.get(i)?)?;
            i += 1;
        } else if a == "--siit" {
            g.xlator = Xlator::Siit;
        } else if a == "--nat64" {
            g.xlator = Xlator::Nat64;
        } else {
            return None;
        }
    }
    g.rest = args[i..].to_vec();
    Some(g)
}

/// Runs `args` (`argv[0]` is `jool` or `jool_siit`) as jool-stats would
/// against `kernel`, as `caller`, labelling with `profile` unless
/// `--client-version` says otherwise. Returns the exit status.
pub fn run<O: Write, E: Write>(
    kernel: &mut Kernel,
    caller: Caller,
    profile: &'static Profile,
    args: &[String],
    out: &mut O,
    err: &mut E,
) -> u8 {
    run_on(InProcess::new(kernel, caller), profile, args, out, err)
}

/// [`run`] over any transport (a captured exchange replayed, for one).
pub fn run_on<T: Transport, O: Write, E: Write>(
    transport: T,
    profile: &'static Profile,
    args: &[String],
    out: &mut O,
    err: &mut E,
) -> u8 {
    let Some(g) = parse_globals(args, profile) else {
        return cli::run(args, out, err);
    };
    match argp::walk(g.xlator, &g.rest) {
        argp::Walk::Handler("stats", "display", a) => {
            match argp::parse(&argp::DISPLAY, &a, 0) {
                Ok(p)
                    if !(p.has("help")
                        || p.has("usage")
                        || p.has("version")) =>
                {
                    let flags = cli::display_flags(&p);
                    let mut c = Client::new(transport, g.profile, g.xlator);
                    match c.connect() {
                        Err(e) => cli::report(g.profile, &e, err),
                        Ok(_) => cli::display_text(
                            &mut c,
                            g.iname.as_deref(),
                            g.profile,
                            flags,
                            out,
                            err,
                        ),
                    }
                }
                _ => cli::run(args, out, err),
            }
        }
        argp::Walk::Handler("instance", op @ ("add" | "remove"), a) => {
            let table: &[argp::Opt] =
                if op == "add" { &cli::INSTANCE_ADD } else { &[] };
            let Ok(p) = argp::parse(table, &a, 1) else {
                return cli::run(args, out, err);
            };
            let mut c = Client::new(transport, g.profile, g.xlator);
            cli::instance_on(
                &mut c,
                g.profile,
                op,
                &p,
                g.iname.as_deref(),
                err,
            )
        }
        _ => cli::run(args, out, err),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use jool_sim::kernel::INIT_NETNS;

    fn run_on(
        k: &mut Kernel,
        caller: Caller,
        line: &str,
    ) -> (String, String, u8) {
        let args: Vec<String> = line.split(' ').map(str::to_owned).collect();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let p = Profile::get("4.1.9").unwrap();
        let code = run(k, caller, p, &args, &mut o, &mut e);
        (String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap(), code)
    }

    #[test]
    fn test_state_persists_between_invocations() {
        let mut k = Kernel::new(Profile::get("4.1.9").unwrap());
        let root = Caller::root(INIT_NETNS);
        let (_, e, code) = run_on(&mut k, root, "jool_siit stats display");
        assert_eq!((e.as_str(), code), ("Error: The kernel module returned error 3: This namespace lacks an instance named 'default'.\n", 3));
        assert_eq!(
            run_on(
                &mut k,
                root,
                "jool_siit instance add --netfilter --pool6 64:ff9b::/96"
            )
            .2,
            0
        );
        assert_eq!(
            run_on(&mut k, root, "jool_siit stats display --csv"),
            ("Stat,Value\n".into(), String::new(), 0)
        );
    }

    #[test]
    fn test_unprivileged_instance_add_fails() {
        let mut k = Kernel::new(Profile::get("4.1.9").unwrap());
        let (_, e, code) = run_on(
            &mut k,
            Caller::unprivileged(INIT_NETNS),
            "jool instance add --netfilter",
        );
        assert_eq!(code, 1, "{e}");
    }
}
