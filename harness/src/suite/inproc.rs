//! `jool-stats`, run in this process against a simulated kernel that
//! outlives the invocation, for a caller the step chooses (its netns and
//! whether it holds `CAP_NET_ADMIN`): [`crate::cli::run_with`] with the
//! kernel injected, so a suite runs the same front end as the binary.

use std::io::Write;

use jool_sim::{
    kernel::{Caller, Kernel},
    versions::Profile,
};

use crate::{
    cli::{self, Connector, Context},
    transport::Transport,
};

fn bytes(args: &[String]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// Runs `args` (`argv[0]` is `jool` or `jool_siit`) as jool-stats would
/// against `kernel`, as `caller`, emulating the client of `profile`
/// unless `--client-version` says otherwise. Returns the shell's `$?`.
pub fn run<O: Write, E: Write>(
    kernel: &mut Kernel,
    caller: Caller,
    profile: &'static Profile,
    args: &[String],
    out: &mut O,
    err: &mut E,
) -> u8 {
    let ctx = Context {
        connector: Connector::Kernel(kernel, caller),
        client: Some(profile),
    };
    cli::run_with(&bytes(args), ctx, out, err).shell_status()
}

/// [`run`] over one transport (a captured exchange replayed).
pub fn run_on<T: Transport, O: Write, E: Write>(
    transport: T,
    profile: &'static Profile,
    args: &[String],
    out: &mut O,
    err: &mut E,
) -> u8 {
    let ctx = Context {
        connector: Connector::Transport(Box::new(transport)),
        client: Some(profile),
    };
    cli::run_with(&bytes(args), ctx, out, err).shell_status()
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

    #[test]
    fn test_sim_options_are_refused_in_a_suite() {
        let mut k = Kernel::new(Profile::get("4.1.9").unwrap());
        let (_, e, code) = run_on(
            &mut k,
            Caller::root(INIT_NETNS),
            "jool --counters x stats display",
        );
        assert_eq!(code, 64, "{e}");
    }
}
