//! The real clients' command-line behaviour, captured:
//! `jool-harness capture-cli` (see `fixtures/captures/cli/README.md`).
//!
//! A list of command lines (`fixtures/captures/cli/commands.json`: argv
//! after the program name, as exact bytes, plus the `-f` files they name)
//! runs through the real `jool`/`jool_siit` of each Debian release
//! (4.1.9, 4.1.13, 4.1.15), in two places:
//! - `host`: the client taken from the release's guest image and started
//!   through its own loader ([`crate::compat::real::client_bundle`]) on
//!   this machine, where Jool's module is not loaded;
//! - `guest`: the image's installed client in a booted guest, with both
//!   modules loaded and an idle `default` instance of each translator.
//!
//! Each run keeps its stdout, stderr and how it ended (exit status, or the
//! signal that killed it), one [`CaptureFile`] per release and place.
//! `harness/tests/cli_captures.rs` replays every record through
//! `jool-stats --client-version R` and wants the same bytes.

use std::{collections::BTreeMap, fmt, path::Path};

use jool_sim::wire::hex;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

mod host;
mod run;

pub use host::{guest, run, Args, GuestArgs};
pub use run::{run_one, Ran, Runner};

/// A byte string of a capture: a JSON string when it is UTF-8, else
/// `{"hex": "..."}`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                let mut m = BTreeMap::new();
                m.insert("hex", hex::encode(&self.0));
                m.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Hex { hex: String },
        }
        match Form::deserialize(d)? {
            Form::Text(t) => Ok(Self(t.into_bytes())),
            Form::Hex { hex } => hex::decode(&hex).map(Self).map_err(|e| {
                de::Error::custom(format!("bad hex string: {e}"))
            }),
        }
    }
}

/// Where a command line ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Place {
    /// A host without Jool's module (the client from the image).
    Host,
    /// A guest with both modules and a `default` instance of each
    /// translator (the image's installed client).
    Guest,
}

impl Place {
    /// `host` or `guest`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Guest => "guest",
        }
    }
}

/// What the client's standard output is.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum StdoutKind {
    /// A pipe read to the end.
    #[default]
    Pipe,
    /// A pipe whose reading end is closed before the client starts (a
    /// reader that went away: the first write raises `SIGPIPE`).
    ClosedPipe,
}

impl StdoutKind {
    fn is_default(&self) -> bool {
        *self == Self::Pipe
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// `exit(N)`.
    Exit(i32),
    /// Killed by signal N.
    Signal(i32),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exit(n) => write!(f, "exit {n}"),
            Self::Signal(n) => write!(f, "signal {n}"),
        }
    }
}

/// One command line of `commands.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommandSpec {
    /// The arguments after the program name.
    pub args: Vec<Bytes>,
    /// `jool` or `jool_siit`; both when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// Only in this place; both when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    /// The standard output.
    #[serde(default, skip_serializing_if = "StdoutKind::is_default")]
    pub stdout: StdoutKind,
}

impl CommandSpec {
    /// The programs this line runs as.
    pub fn programs(&self) -> Vec<&str> {
        match &self.program {
            Some(p) => vec![p.as_str()],
            None => vec!["jool", "jool_siit"],
        }
    }
}

/// `fixtures/captures/cli/commands.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommandList {
    /// Files in the working folder of every run (for `-f`), by name.
    pub files: BTreeMap<String, Bytes>,
    /// The command lines, in order.
    pub commands: Vec<CommandSpec>,
}

impl CommandList {
    /// Reads a command list.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!("{} is not a command list", path.display())
        })
    }

    /// Writes the files into `dir` (the runs' working folder).
    pub fn write_files(&self, dir: &Path) -> std::io::Result<()> {
        for (name, bytes) in &self.files {
            std::fs::write(dir.join(name), &bytes.0)?;
        }
        Ok(())
    }
}

/// One captured run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The whole argv, `argv[0]` (`jool` or `jool_siit`) first.
    pub argv: Vec<Bytes>,
    /// The standard output it had.
    #[serde(default, skip_serializing_if = "StdoutKind::is_default")]
    pub stdout_kind: StdoutKind,
    /// What it wrote there (empty for a closed pipe).
    pub stdout: Bytes,
    /// What it wrote to standard error.
    pub stderr: Bytes,
    /// How it ended.
    pub status: Status,
}

/// `fixtures/captures/cli/<release>/<place>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaptureFile {
    /// The client's release.
    pub release: String,
    /// Where it ran.
    pub place: Place,
    /// What ran, and how.
    pub client: String,
    /// The kernel side: no module, or the loaded module and instances.
    pub state: String,
    /// `uname -r` where it ran.
    pub kernel: String,
    /// The loaded module's release (guest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Each instance's counters before and after the runs, as the
    /// installed client prints them with `stats display --all --csv`
    /// (guest; `siit`/`nat64`, then `-after`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, String>,
    /// The files of the working folder.
    pub files: BTreeMap<String, Bytes>,
    /// Every run, in order.
    pub records: Vec<Record>,
}

impl CaptureFile {
    /// Reads a capture file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!("{} is not a CLI capture", path.display())
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_bytes_round_trip() {
        for b in [&b"plain"[..], b"ctl\x01\t", b"\xc3\xb1", b"bad\xff"] {
            let json = serde_json::to_string(&Bytes(b.to_vec())).unwrap();
            let back: Bytes = serde_json::from_str(&json).unwrap();
            assert_eq!(back.0, b);
        }
        assert_eq!(
            serde_json::to_string(&Bytes(b"a\xff".to_vec())).unwrap(),
            r#"{"hex":"61ff"}"#
        );
        assert!(serde_json::from_str::<Bytes>(r#"{"hex":"6"}"#).is_err());
    }
}
