//! `jool-sim`: a userspace model of the kernel side of Jool's
//! generic-netlink interface, as seen by `jool[_siit] stats display`.
//!
//! - [`versions`]: one [`versions::Profile`] per Jool release.
//! - [`wire`]: zero-copy views and `Repr` types for the netlink, genetlink
//!   and Jool headers and attributes.
//! - [`kernel`]: the simulated kernel, driven by request bytes.
//! - [`requests`]: requests of any release, as its client builds them.
//! - [`setup`]: what a simulated kernel looks like at start (release,
//!   build, modules, instances, counters), for every front end.
#![forbid(unsafe_code)]

pub mod control;
pub mod counters;
pub mod daemon;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod kernel;
pub mod requests;
pub mod setup;
pub mod shared;
pub mod supervise;
pub mod versions;
pub mod wire;
