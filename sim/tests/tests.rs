//! Integration tests of `jool-sim`, one module per area.

// Temporary folders and socket paths of our own.
mod util;
// Replays the real 4.1.9 module's answers to 91 crafted requests.
mod conformance;
// jool-sim serve: protocol, robustness, many clients.
mod daemon;
// jool-sim serve, exec and ctl run as root on a shared host (#14).
mod hardening;
// Long checks (#[ignore]): a soak, 3,000 idle connections.
mod soak;
// Fuzz corpora and regressions replayed; codec and paging properties.
mod fuzz_corpus;
