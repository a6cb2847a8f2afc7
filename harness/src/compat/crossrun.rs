//! The client of one release against the simulated kernel of another, in
//! this process: the observed side of every prediction in
//! [`predict`](super::predict).
//!
//! The kernel gets a SIIT instance `default` whose counter `id` holds
//! [`VALUE_BASE`]` + id`; the client ([`Client`], the same code `jool-stats`
//! runs) sends its release's request, and its release's [`Renderer`]
//! prints every counter as `stats display --all --csv --no-headers`
//! would. The printed rows are read back: the name is the label, the
//! value tells which kernel counter it was.

use jool_sim::{
    kernel::{Caller, Framework, Kernel, Xlator, INIT_NETNS},
    versions::Profile,
};

use super::predict::{Run, Shown};
use crate::{
    client::Client,
    format::{DisplayFlags, RenderError, Renderer, UNKNOWN_NAME},
    transport::{InProcess, Transport},
};

/// Counter `id` of the simulated instance holds `VALUE_BASE + id`.
pub const VALUE_BASE: u64 = 0x5EED_0000_0000;

/// What really happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The run, comparable with a prediction.
    pub run: Run,
    /// The client's error message, when it failed (rejection or unknown
    /// counter), as it prints it after `Error: `.
    pub error: Option<String>,
    /// What the client wrote on stderr besides the error (the `????`
    /// warnings).
    pub stderr: String,
}

fn kernel_for(kernel: &'static Profile) -> Result<Kernel, String> {
    let mut k = Kernel::new(kernel);
    let (ns, x) = (INIT_NETNS, Xlator::Siit);
    k.add_instance(ns, x, "default", Framework::Netfilter)
        .map_err(|e| e.to_string())?;
    k.set_pool6(
        ns,
        x,
        "default",
        Some(([0x64, 0, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 96)),
    )
    .map_err(|e| e.to_string())?;
    let values: Vec<(u16, u64)> = (kernel.first_id()..=kernel.max_id)
        .map(|id| (id, VALUE_BASE + u64::from(id)))
        .collect();
    k.set_counters(ns, x, "default", &values).map_err(|e| e.to_string())?;
    Ok(k)
}

/// Runs the `client` release's `stats display --all` against a simulated
/// `kernel` release. `Err` only when the simulation itself misbehaves
/// (a value under the wrong id, unparsable output).
pub fn observe(
    client: &'static Profile,
    kernel: &'static Profile,
) -> Result<Observed, String> {
    let transport =
        InProcess::new(kernel_for(kernel)?, Caller::root(INIT_NETNS));
    observe_with(transport, client, true)
}

/// Runs the `client` release's `stats display --all` of the SIIT instance
/// `default` over any transport: the sim's, or (the hook for real kernels
/// in VMs) a [`NetlinkSocket`](crate::transport::NetlinkSocket) in the
/// guest, whose `.run` then compares with
/// [`predict`](super::predict::predict) for the guest's release.
/// `check_values`: counter `id` must hold [`VALUE_BASE`]` + id`.
pub fn observe_with<T: Transport>(
    transport: T,
    client: &'static Profile,
    check_values: bool,
) -> Result<Observed, String> {
    let mut c = Client::new(transport, client, Xlator::Siit);
    let mut counters = Vec::new();
    let version = match c.stats_foreach(None, |id, v| {
        counters.push((id, v));
        Ok(())
    }) {
        Ok(v) => v,
        Err(e) if counters.is_empty() => {
            let run = Run::Rejected;
            return Ok(Observed {
                run,
                error: Some(e.to_string()),
                stderr: String::new(),
            });
        }
        Err(e) => {
            return Err(format!(
                "the client failed after {} counters: {e}",
                counters.len()
            ))
        }
    };
    let flags = DisplayFlags {
        all: true,
        explain: false,
        csv: true,
        no_headers: true,
    };
    let renderer = Renderer::new(client, flags).kernel_version(version);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (failed_at, error) = match renderer.counters(
        counters.iter().copied(),
        &mut out,
        &mut err,
    ) {
        Ok(()) => (None, None),
        Err(RenderError::UnknownCounter(u)) => {
            (Some(u.id), Some(u.to_string()))
        }
        Err(e) => return Err(e.to_string()),
    };
    let out = String::from_utf8(out).map_err(|e| e.to_string())?;
    // `--all --csv`: one row per counter, in order, until a failure.
    let labels = out
        .lines()
        .zip(&counters)
        .map(|(line, &(id, value))| parse_row(line, id, value, check_values))
        .collect::<Result<Vec<_>, _>>()?;
    let stderr = String::from_utf8(err).map_err(|e| e.to_string())?;
    Ok(Observed {
        run: Run::Shown(Shown { labels, failed_at }),
        error,
        stderr,
    })
}

/// `NAME,VALUE` of counter `(id, value)` → `(id, printed name)`.
fn parse_row(
    line: &str,
    id: u16,
    value: u64,
    check_values: bool,
) -> Result<(u16, Option<String>), String> {
    let (name, printed) =
        line.rsplit_once(',').ok_or_else(|| format!("bad row {line:?}"))?;
    if printed != value.to_string() {
        return Err(format!("{line:?} is not counter {id} ({value})"));
    }
    if check_values && value != VALUE_BASE + u64::from(id) {
        return Err(format!("the kernel sent {value} as counter {id}"));
    }
    let label = (name != UNKNOWN_NAME).then(|| name.to_owned());
    Ok((id, label))
}

#[cfg(test)]
mod test {
    use super::*;

    fn g(name: &str) -> &'static Profile {
        Profile::get(name).unwrap()
    }

    #[test]
    fn test_4_1_9_client_fails_on_4_1_12_kernel_at_70() {
        let o = observe(g("4.1.9"), g("4.1.12")).unwrap();
        let Run::Shown(s) = &o.run else { panic!("{o:?}") };
        assert_eq!(s.labels.len(), 69);
        assert_eq!(s.labels[68], (69, Some("JSTAT_UNKNOWN".to_owned())));
        assert_eq!(s.failed_at, Some(70));
        assert_eq!(
            o.error.as_deref(),
            Some("The kernel module returned an unknown stat counter.")
        );
    }

    #[test]
    fn test_4_1_13_client_warns_on_4_1_12_kernel() {
        let o = observe(g("4.1.13"), g("4.1.12")).unwrap();
        let Run::Shown(s) = &o.run else { panic!("{o:?}") };
        assert_eq!(s.labels.last(), Some(&(84, None)));
        assert!(
            o.stderr.starts_with("Warning: Unknown stat."),
            "{}",
            o.stderr
        );
    }

    #[test]
    fn test_rejected_pair_reports_the_kernel_error() {
        let o = observe(g("4.1.9"), g("4.1.8")).unwrap();
        assert_eq!(o.run, Run::Rejected);
        assert!(o.error.unwrap().contains("Version mismatch"));
    }

    #[test]
    fn test_parse_row() {
        let v = VALUE_BASE + 7;
        let row = format!("JSTAT_X,{v}");
        assert_eq!(
            parse_row(&row, 7, v, true),
            Ok((7, Some("JSTAT_X".to_owned())))
        );
        assert_eq!(parse_row(&format!("????,{v}"), 7, v, true), Ok((7, None)));
        assert!(parse_row(&row, 8, v, true).is_err());
        assert!(parse_row(&row, 7, v + 1, false).is_err());
        assert_eq!(
            parse_row("JSTAT_X,5", 3, 5, false),
            Ok((3, Some("JSTAT_X".to_owned())))
        );
    }
}
