//! Bytes as a recording's index side file → replay open → a seek to every keyframe.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: lucid_console_fuzz::write_seeds(&lucid_console_fuzz::index_seeds()),
    |data: &[u8]| lucid_console_fuzz::capped(data.len(), || lucid_console_fuzz::index(data))
);
