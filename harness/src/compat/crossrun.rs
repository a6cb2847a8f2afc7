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

use std::fmt;

use jool_sim::{
    counters::Counters,
    kernel::{Caller, Kernel, Xlator, INIT_NETNS},
    setup::{InstanceSpec, Setup, SetupError},
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

/// Why an in-process run could not be read: the simulation itself
/// misbehaved (a bug in the simulator, the client or the formatter).
#[derive(Debug)]
#[non_exhaustive]
pub enum ObserveError {
    /// The simulated kernel could not be set up.
    Kernel(SetupError),
    /// The client failed after some counters.
    Midway {
        /// Counters read before it failed.
        after: usize,
        /// Its error.
        error: String,
    },
    /// The formatter failed otherwise than on an unknown counter.
    Render(RenderError),
    /// The output is not what `--all --csv --no-headers` prints.
    Output(String),
}

impl fmt::Display for ObserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kernel(e) => write!(f, "the simulated kernel: {e}"),
            Self::Midway { after, error } => {
                write!(f, "the client failed after {after} counters: {error}")
            }
            Self::Render(e) => write!(f, "{e}"),
            Self::Output(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ObserveError {}

/// A client x kernel pair whose in-process run disagrees with the
/// prediction from the tables (or could not run): a bug in the
/// simulator, the client or the prediction.
#[derive(Debug)]
pub struct Disagreement {
    /// The client's release.
    pub client: String,
    /// The kernel's release.
    pub kernel: String,
    /// What went wrong (boxed: a `Result` of it stays small).
    pub what: Box<Mismatch>,
}

/// What [`Disagreement`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Mismatch {
    /// The run could not be read.
    Observe(ObserveError),
    /// The run shows something else than the tables predict.
    Differs {
        /// What the tables predict.
        predicted: Run,
        /// What the run shows.
        observed: Observed,
    },
}

impl Disagreement {
    /// Runs the pair in-process and compares with `predicted`.
    ///
    /// # Errors
    /// The [`Disagreement`], if any.
    pub fn check(
        client: &'static Profile,
        kernel: &'static Profile,
        predicted: &Run,
    ) -> Result<Observed, Self> {
        let what = match observe(client, kernel) {
            Ok(o) if o.run == *predicted => return Ok(o),
            Ok(observed) => {
                Mismatch::Differs { predicted: predicted.clone(), observed }
            }
            Err(e) => Mismatch::Observe(e),
        };
        Err(Self {
            client: client.release.clone(),
            kernel: kernel.release.clone(),
            what: Box::new(what),
        })
    }
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, k) = (&self.client, &self.kernel);
        match &*self.what {
            Mismatch::Observe(e) => write!(f, "client {c} x kernel {k}: {e}"),
            Mismatch::Differs { predicted, observed } => write!(
                f,
                "client {c} x kernel {k}: the tables predict {predicted:?}, the in-process run shows {:?} (error: {:?})",
                observed.run, observed.error
            ),
        }
    }
}

impl std::error::Error for Disagreement {}

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

/// The kernel of every crossing ([`setup`](jool_sim::setup)): one SIIT
/// instance `default` whose counter `id` holds `VALUE_BASE + id`.
fn kernel_for(kernel: &'static Profile) -> Result<Kernel, SetupError> {
    let mut s = Setup::new(kernel, INIT_NETNS);
    s.instances = vec![InstanceSpec::netfilter("default", Xlator::Siit)];
    let rows = kernel
        .stats
        .iter()
        .map(|st| (st.name.clone(), VALUE_BASE + u64::from(st.id)))
        .collect();
    s.counters = Some(Counters::from_rows(rows));
    s.build()
}

/// Runs the `client` release's `stats display --all` against a simulated
/// `kernel` release. `Err` only when the simulation itself misbehaves
/// (a value under the wrong id, unparsable output).
pub fn observe(
    client: &'static Profile,
    kernel: &'static Profile,
) -> Result<Observed, ObserveError> {
    let k = kernel_for(kernel).map_err(ObserveError::Kernel)?;
    let transport = InProcess::new(k, Caller::root(INIT_NETNS));
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
) -> Result<Observed, ObserveError> {
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
            return Err(ObserveError::Midway {
                after: counters.len(),
                error: e.to_string(),
            })
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
        Err(e) => return Err(ObserveError::Render(e)),
    };
    let utf8 = |b: Vec<u8>| {
        String::from_utf8(b).map_err(|e| ObserveError::Output(e.to_string()))
    };
    let out = utf8(out)?;
    // `--all --csv`: one row per counter, in order, until a failure.
    let labels = out
        .lines()
        .zip(&counters)
        .map(|(line, &(id, value))| parse_row(line, id, value, check_values))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ObserveError::Output)?;
    let stderr = utf8(err)?;
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

    /// A wrong prediction is a disagreement that names the pair and
    /// both runs; the right one is not.
    #[test]
    fn test_disagreement_names_the_pair() {
        let (c, k) = (g("4.1.9"), g("4.1.8"));
        assert!(Disagreement::check(c, k, &Run::Rejected).is_ok());
        let wrong = Run::Shown(Shown { labels: vec![], failed_at: None });
        let e = Disagreement::check(c, k, &wrong).unwrap_err();
        assert!(matches!(*e.what, Mismatch::Differs { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.starts_with("client 4.1.9 x kernel 4.1.8: "), "{text}");
        assert!(text.contains("Rejected"), "{text}");
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
