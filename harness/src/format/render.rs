//! One whole `stats display`, as the C client of a release runs it.
//!
//! [`Renderer`] puts together [`text`](super::text) and the client's
//! unknown-id rule (`src/usr/nl/stats.c`, see `client-output.md`):
//!
//! - 4.0.8 – 4.1.12, 4.2.0-rc1, rc2 ([`UnknownStat::Fail`]): the first
//!   unknown id aborts the display with [`UnknownCounter`]; the counters
//!   before it are already on stdout.
//! - 4.1.13+, main, rc3 ([`UnknownStat::Warn`]): each unknown id writes
//!   [`unknown_warning`] to stderr, before the zero filter, then prints as
//!   `????` / `This stat is unknown.`.

use std::{fmt, io};

use jool_sim::versions::{quad, Profile, UnknownStat};

use super::{
    label, unknown_warning, write_header, write_stat, DisplayFlags, Label,
};

/// The kernel sent an id outside the client's table, and the client
/// (≤ 4.1.12, rc1, rc2) gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownCounter {
    /// The offending attribute type.
    pub id: u16,
}

impl UnknownCounter {
    /// What the C client prints after `Error: `.
    pub const MESSAGE: &'static str =
        "The kernel module returned an unknown stat counter.";

    /// The exit status the shell sees: `-EINVAL` modulo 256.
    pub const EXIT_CODE: u8 = 234;
}

impl fmt::Display for UnknownCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MESSAGE)
    }
}

impl std::error::Error for UnknownCounter {}

/// Why a display stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum RenderError {
    /// Writing to stdout or stderr failed.
    Io(io::Error),
    /// The client fails on an unknown id ([`UnknownStat::Fail`]).
    UnknownCounter(UnknownCounter),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "write error: {e}"),
            Self::UnknownCounter(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RenderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::UnknownCounter(e) => Some(e),
        }
    }
}

impl From<io::Error> for RenderError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<UnknownCounter> for RenderError {
    fn from(e: UnknownCounter) -> Self {
        Self::UnknownCounter(e)
    }
}

/// The C client of one release, displaying one reply.
#[derive(Clone, Debug)]
pub struct Renderer<'p> {
    profile: &'p Profile,
    flags: DisplayFlags,
    kernel_quad: String,
}

impl<'p> Renderer<'p> {
    /// The client of `profile`, run with `flags`.
    ///
    /// The warning's "kernel module version" defaults to the client's
    /// own, which is what a real kernel echoes back.
    pub fn new(profile: &'p Profile, flags: DisplayFlags) -> Self {
        let kernel_quad = profile.version_quad();
        Self { profile, flags, kernel_quad }
    }

    /// Sets the version word read from the reply's Jool header.
    pub fn kernel_version(mut self, wire_version: u32) -> Self {
        self.kernel_quad = quad(wire_version);
        self
    }

    /// The flags this display runs with.
    pub fn flags(&self) -> &DisplayFlags {
        &self.flags
    }

    /// Writes the CSV header; the C client does it before sending the
    /// request, so a later error still leaves it on stdout.
    pub fn header<W: io::Write>(&self, out: &mut W) -> io::Result<()> {
        write_header(&self.flags, out)
    }

    /// Handles one counter of the reply.
    pub fn counter<O, E>(
        &self,
        id: u16,
        value: u64,
        out: &mut O,
        err: &mut E,
    ) -> Result<(), RenderError>
    where
        O: io::Write,
        E: io::Write,
    {
        let l = label(self.profile, id);
        if l == Label::Unknown {
            self.unknown(id, err)?;
        }
        write_stat(&self.flags, l.name(), l.doc(), value, out)?;
        Ok(())
    }

    /// Applies the release's unknown-id rule: fail, or warn on `err`.
    fn unknown<E: io::Write>(
        &self,
        id: u16,
        err: &mut E,
    ) -> Result<(), RenderError> {
        match self.profile.unknown_stat {
            UnknownStat::Fail => Err(UnknownCounter { id }.into()),
            UnknownStat::Warn => {
                let client = self.profile.version_quad();
                let text = unknown_warning(&self.kernel_quad, &client);
                err.write_all(text.as_bytes())?;
                Ok(())
            }
        }
    }

    /// Handles every counter of the reply, in kernel order; stops at the
    /// first error.
    pub fn counters<I, O, E>(
        &self,
        counters: I,
        out: &mut O,
        err: &mut E,
    ) -> Result<(), RenderError>
    where
        I: IntoIterator<Item = (u16, u64)>,
        O: io::Write,
        E: io::Write,
    {
        for (id, value) in counters {
            self.counter(id, value, out, err)?;
        }
        Ok(())
    }

    /// Header, then every counter: one whole display.
    pub fn display<I, O, E>(
        &self,
        counters: I,
        out: &mut O,
        err: &mut E,
    ) -> Result<(), RenderError>
    where
        I: IntoIterator<Item = (u16, u64)>,
        O: io::Write,
        E: io::Write,
    {
        self.header(out)?;
        self.counters(counters, out, err)
    }
}

#[cfg(test)]
mod test {
    use proptest::prelude::*;

    use super::*;

    fn run(
        release: &str,
        flags: DisplayFlags,
        counters: &[(u16, u64)],
    ) -> (String, String, Result<(), RenderError>) {
        let p = Profile::get(release).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let r = Renderer::new(p, flags).display(
            counters.iter().copied(),
            &mut out,
            &mut err,
        );
        let s = |v| String::from_utf8(v).unwrap();
        (s(out), s(err), r)
    }

    const CSV: DisplayFlags = DisplayFlags {
        all: false,
        explain: false,
        csv: true,
        no_headers: false,
    };

    #[test]
    fn test_unknown_id_fails_on_4_1_12_after_earlier_rows() {
        let (out, err, r) =
            run("4.1.12", CSV, &[(1, 5), (2, 0), (999, 3), (3, 1)]);
        assert_eq!(out, "Stat,Value\nJSTAT_RECEIVED6,5\n");
        assert_eq!(err, "");
        match r {
            Err(RenderError::UnknownCounter(e)) => assert_eq!(e.id, 999),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            UnknownCounter { id: 999 }.to_string(),
            "The kernel module returned an unknown stat counter."
        );
    }

    #[test]
    fn test_unknown_id_warns_on_4_1_13_and_goes_on() {
        let (out, err, r) =
            run("4.1.13", CSV, &[(1, 5), (0, 3), (999, 0), (3, 1)]);
        r.unwrap();
        assert_eq!(
            out,
            "Stat,Value\nJSTAT_RECEIVED6,5\n????,3\nJSTAT_SUCCESS,1\n"
        );
        let warning = "Warning: Unknown stat. Other stats might be \
                       mislabeled.\nKernel module version is 4.1.13.0, \
                       userspace client is 4.1.13.0.\n";
        assert_eq!(err, warning.repeat(2), "zero unknowns warn too");
    }

    #[test]
    fn test_unknown_explained_with_all() {
        let flags = DisplayFlags {
            all: true,
            explain: true,
            ..DisplayFlags::default()
        };
        let (out, _, r) = run("main", flags, &[(999, 0)]);
        r.unwrap();
        assert_eq!(out, "????: 0\nThis stat is unknown.\n\n");
    }

    #[test]
    fn test_warning_names_reported_kernel_version() {
        let p = Profile::get("4.2.0-rc3").unwrap();
        let r = Renderer::new(p, CSV).kernel_version(0x0402_0001);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        r.counter(u16::MAX, 1, &mut out, &mut err).unwrap();
        let err = String::from_utf8(err).unwrap();
        let tail =
            format!("is 4.2.0.1, userspace client is {}.\n", p.version_quad());
        assert!(err.ends_with(&tail), "{err}");
        assert_eq!(p.version_quad(), "4.1.255.5", "rc3's own version word");
    }

    #[test]
    fn test_rc2_fails_rc3_warns() {
        assert!(run("4.2.0-rc2", CSV, &[(900, 1)]).2.is_err());
        assert!(run("4.2.0-rc3", CSV, &[(900, 1)]).2.is_ok());
    }

    #[test]
    fn test_hairpin_doc_spans_lines_in_csv() {
        let flags = DisplayFlags {
            csv: true,
            explain: true,
            ..DisplayFlags::default()
        };
        let p = Profile::get("4.1.9").unwrap();
        let id = p
            .stats
            .iter()
            .find(|s| s.name == "JSTAT_HAIRPIN_LOOP")
            .unwrap()
            .id;
        let (out, _, r) = run("4.1.9", flags, &[(id, 2)]);
        r.unwrap();
        assert!(out.starts_with(
            "Stat,Value,Explanation\nJSTAT_HAIRPIN_LOOP,2,\"Translations"
        ));
        assert_eq!(out.lines().count(), 4, "{out}");
        assert!(out.ends_with("unique network.\"\n"));
    }

    fn flags() -> impl Strategy<Value = DisplayFlags> {
        let f = |(all, explain, csv, no_headers)| DisplayFlags {
            all,
            explain,
            csv,
            no_headers,
        };
        any::<(bool, bool, bool, bool)>().prop_map(f)
    }

    /// A release and one kernel reply for it: every id, many zeros.
    fn reply() -> impl Strategy<Value = (&'static Profile, Vec<(u16, u64)>)> {
        let profiles: Vec<&'static Profile> = Profile::all().iter().collect();
        prop::sample::select(profiles).prop_flat_map(|p| {
            let value = prop_oneof![Just(0u64), 1..1000u64, any::<u64>()];
            let values = prop::collection::vec(value, p.stats.len());
            let ids = move |v: Vec<u64>| {
                p.stats.iter().map(|s| s.id).zip(v).collect()
            };
            (Just(p), values.prop_map(ids))
        })
    }

    /// Plain output: consumes `NAME: VALUE\n` (+ `DOC\n\n`) per stat.
    fn check_plain(
        flags: &DisplayFlags,
        out: &str,
        shown: &[(&str, &str, u64)],
    ) {
        let mut rest = out;
        for (name, doc, value) in shown {
            let group = match flags.explain {
                true => format!("{name}: {value}\n{doc}\n\n"),
                false => format!("{name}: {value}\n"),
            };
            rest = rest.strip_prefix(group.as_str()).expect("group in order");
        }
        assert_eq!(rest, "");
        let stat_lines =
            out.lines().filter(|l| l.starts_with("JSTAT") && l.contains(": "));
        assert_eq!(stat_lines.count(), shown.len());
    }

    /// CSV output: the counters parser reads back exactly the shown stats.
    fn check_csv(
        flags: &DisplayFlags,
        out: &str,
        shown: &[(&str, &str, u64)],
    ) {
        assert_eq!(out.starts_with("Stat,Value"), flags.show_header());
        let rows = crate::counters::parse(out).unwrap().into_rows();
        let want: Vec<_> =
            shown.iter().map(|(n, _, v)| (n.to_string(), *v)).collect();
        assert_eq!(rows, want);
        let doc_lines =
            |d: &str| if flags.explain { d.matches('\n').count() } else { 0 };
        let lines: usize =
            shown.iter().map(|(_, d, _)| 1 + doc_lines(d)).sum();
        assert_eq!(
            out.lines().count(),
            lines + usize::from(flags.show_header())
        );
    }

    proptest! {
        #[test]
        fn test_one_group_per_shown_stat(
            (p, counters) in reply(),
            flags in flags(),
        ) {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let r = Renderer::new(p, flags);
            r.display(counters.iter().copied(), &mut out, &mut err).unwrap();
            prop_assert!(err.is_empty());
            let shown: Vec<(&str, &str, u64)> = counters
                .iter()
                .zip(&p.stats)
                .filter(|((_, v), _)| flags.all || *v != 0)
                .map(|((_, v), s)| (s.name.as_str(), s.doc.as_str(), *v))
                .collect();
            let out = String::from_utf8(out).unwrap();
            if flags.csv {
                check_csv(&flags, &out, &shown);
            } else {
                check_plain(&flags, &out, &shown);
            }
        }
    }
}
