#![no_main]

use jool_harness::fuzzing::fuzz_format;
use jool_stats_harness_fuzz::exposition;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_format(data, &exposition::parse));
