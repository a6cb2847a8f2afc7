//! Fuzzing bodies of the client and the formatters, shared by the
//! cargo-fuzz targets in `fuzz/` and the corpus replay in
//! `tests/fuzz_corpus.rs` (see `jool_sim::fuzzing` for the kernel's):
//!
//! - [`fuzz_client_reply`]: the kernel's replies to the client;
//! - [`fuzz_counters_file`]: counters files;
//! - [`fuzz_format`]: counter sets through every formatter.
//!
//! Not a stable API (`#[doc(hidden)]`).

mod client_reply;
mod counters_file;
mod format;

pub use client_reply::fuzz_client_reply;
pub use counters_file::fuzz_counters_file;
pub use format::{fuzz_format, Exposition, ExpositionParser, Sample};
