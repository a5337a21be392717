//! What the tests that run the real `lucid` binary share.

use std::process::{Command, Output};

use lucid_protocol::testdata::{Generated, Workload, generate};

/// Runs `lucid` with `args` to the end and collects its output.
pub fn lucid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lucid"))
        .args(args)
        .output()
        .expect("run lucid")
}

/// The stream the binary tests feed: 300 tasks on 4 CPUs with 3 wasm instances and
/// a loss report, in small frames; `seed` varies the interleaving.
#[allow(dead_code, reason = "each test binary uses a different subset")]
pub fn workload(seed: u64) -> Generated {
    generate(&Workload {
        cpus: 4,
        tasks: 300,
        polls_per_task: 4,
        wasm_instances: 3,
        loss: 17,
        frame_buffer: 1024,
        seed,
        ..Workload::default()
    })
}
