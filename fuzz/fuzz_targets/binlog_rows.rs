//! Row decoding: arbitrary rows-event bodies against real table maps.
#![no_main]

use std::sync::{Mutex, OnceLock};

use binlog_parser::DecodeContext;
use libfuzzer_sys::fuzz_target;

include!("row_files.rs");

static CONTEXTS: OnceLock<Mutex<Vec<(DecodeContext, u64)>>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let contexts =
        CONTEXTS.get_or_init(|| Mutex::new(binlog_parser::fuzzing::row_contexts(&ROW_FILES)));
    if let Ok(mut c) = contexts.lock() {
        binlog_parser::fuzzing::decode_rows(&mut c, data);
    }
});
