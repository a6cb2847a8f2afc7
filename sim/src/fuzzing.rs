//! Fuzzing bodies, shared by the cargo-fuzz targets in `fuzz/` (one-line
//! wrappers) and by the corpus replay and properties in
//! `tests/fuzz_corpus.rs`, so a crash found by either is the same bug.
//!
//! Each body takes the fuzzer's bytes, decodes what it needs with
//! [`Input`] (every byte string is a valid input), runs the code under
//! test and asserts oracles that go beyond "no panic":
//!
//! - [`fuzz_request`]: one datagram from one caller, to the kernel of any
//!   release;
//! - [`fuzz_session`]: sequences of operations against a reference model;
//! - [`fuzz_wire`]: codec round trips;
//! - [`fuzz_differential`]: two releases that must answer alike.
//!
//! Not a stable API (`#[doc(hidden)]`).

mod client;
mod differential;
mod input;
mod model;
mod oracle;
mod request;
mod roundtrip;
mod session;
mod setup;

pub use crate::requests::{
    add_operand, get_family, jool_request, legacy_request, legacy_stats_mode,
    message, op, Frame, MAX_PAGES,
};
pub use client::{Answer, SimClient};
pub use differential::{fuzz_differential, groups};
pub use input::Input;
pub use oracle::{strict, Checker, Reply};
pub use request::fuzz_request;
pub use roundtrip::fuzz_wire;
pub use session::{fuzz_session, Op, Who, NAMES};
pub use setup::{counter_value, Setup, BUDGETS, NETNS, POOL6, PORT_ID};

use crate::{
    kernel::{Caller, Framework, Kernel, Xlator, INIT_NETNS},
    versions::Profile,
};

/// Every counter of a SIIT `default` instance of `profile` whose counter
/// `id` holds `values[id % len]`, read page by page with a budget of
/// `budget` bytes per reply, as `(id, value)` in the order received; or
/// the error code.
///
/// # Panics
/// If a reply or page breaks an oracle (see [`SimClient`]).
pub fn stats_pages(
    profile: &'static Profile,
    budget: usize,
    values: &[u64],
) -> Result<Vec<(u16, u64)>, i32> {
    let mut k = Kernel::new(profile);
    k.set_msg_budget(budget);
    let added = k.add_instance(
        INIT_NETNS,
        Xlator::Siit,
        "default",
        Framework::Netfilter,
    );
    assert!(added.is_ok(), "{added:?}");
    let ids = profile.first_id()..=profile.max_id;
    let pairs: Vec<_> = ids
        .map(|id| {
            (
                id,
                values
                    .get(usize::from(id) % values.len().max(1))
                    .copied()
                    .unwrap_or(0),
            )
        })
        .collect();
    assert!(k
        .set_counters(INIT_NETNS, Xlator::Siit, "default", &pairs)
        .is_ok());
    let mut iname = [0; 16];
    iname[..7].copy_from_slice(b"default");
    SimClient::new(&mut k, Caller::root(INIT_NETNS), budget)
        .stats(Xlator::Siit, iname)
}
