//! `jool-harness`: client and formatters for Jool's `stats` interface,
//! and the harness around them (suites, guests, captures, version tools,
//! fuzzing of the real module). The module map and what each layer may
//! import: docs/architecture.md.
#![forbid(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod compat;
pub use jool_sim::counters;
pub mod format;
pub mod fuzz_kernel;
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod matrix;
pub mod suite;
pub mod transport;
pub mod vm;
