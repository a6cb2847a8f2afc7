#![no_main]

use jool_harness::fuzzing::fuzz_counters_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_counters_file(data));
