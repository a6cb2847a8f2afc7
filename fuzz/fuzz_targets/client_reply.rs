#![no_main]

use jool_harness::fuzzing::fuzz_client_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_client_reply(data));
