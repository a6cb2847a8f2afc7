//! Integration tests of the LD_PRELOAD shim: unmodified client programs
//! run with the built library preloaded, against the real daemon
//! (`jool_sim::daemon`, docs/daemon-protocol.md) in a thread.

// The daemon with its command trace, finding the built library, running
// programs.
mod support;

// A Python client of the kernel's netlink socket API.
mod python;

// Debian's `jool_siit` and `jool` (jool-tools 4.1.9, libnl-3) compared
// byte for byte with the real 4.1.9 module's captured outputs.
mod jool_tools;
