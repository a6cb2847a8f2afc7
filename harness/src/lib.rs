//! `jool-harness`: client and formatters for Jool's `stats` interface.
#![forbid(unsafe_code)]

pub mod cli;
pub mod cli_capture;
pub mod client;
pub mod compat;
pub use jool_sim::counters;
pub mod format;
pub mod fuzz_kernel;
#[doc(hidden)]
pub mod fuzzing;
pub mod suite;
pub mod transport;
pub mod vm;
