//! What the tests that run the real `lucid` binary share.

use std::process::{Command, Output};

/// Runs `lucid` with `args` to the end and collects its output.
pub fn lucid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lucid"))
        .args(args)
        .output()
        .expect("run lucid")
}
