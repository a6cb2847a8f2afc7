//! `jool-harness`: client and formatters for Jool's `stats` interface.
#![forbid(unsafe_code)]
