//! Bytes from a kernel link → pipeline → state → `lucid stats`, without drawing: the
//! decode target's path at many more inputs per second.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: lucid_console_fuzz::write_seeds(&lucid_console_fuzz::decode_seeds()),
    |data: &[u8]| lucid_console_fuzz::capped(data.len(), || lucid_console_fuzz::ingest(data))
);
