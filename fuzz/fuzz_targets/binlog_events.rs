//! Event decoding: arbitrary bytes as a binlog file and as a network packet.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    binlog_parser::fuzzing::decode_events(data);
});
