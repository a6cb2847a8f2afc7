//! Integration tests of `jool-harness`, one module per area.

// Shared helpers: running jool-stats, temporary files.
mod util;

// Replays the real 4.1.9 client's captured outputs through jool-stats --sim.
mod captures;
// The real 4.1.9/4.1.13/4.1.15 clients' command lines, byte for byte.
mod cli_captures;
// Every release x every `stats display` flag combination (insta).
mod snapshots;
// Counters files given to --counters: errors name their line.
mod counters_file;
// jool-sim serve with real processes: privilege and namespace matrix.
mod daemon;
// Debian's C jool/jool_siit and jool-exporter under jool-sim exec.
mod real_clients;
// Fuzz corpora and regressions replayed; client paging properties.
mod fuzz_corpus;
// `jool-harness versions` (matrix, diff, import) and labels that follow the kernel.
mod versions;
// Every fixtures/suites file on the in-process simulator (the VM runs them
// on the real module from .ci/run).
mod suites;
// The README's `sh` examples, run as written.
mod readme;
