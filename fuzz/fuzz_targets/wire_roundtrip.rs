#![no_main]

use jool_sim::fuzzing::fuzz_wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_wire(data));
