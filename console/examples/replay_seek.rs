//! Replay cost on a large recording: building the keyframe index, opening with it,
//! seeking, and playing.
//!
//! `cargo run --release -p lucid-console --example replay_seek -- --file PATH [--mb N] [--json]`
//!
//! The recording is generated at PATH if it is missing or smaller than N MiB (default
//! 1024): rounds of the synthetic 4-CPU workload with 10k tasks, each round a new boot
//! (sequence numbers and TSC start again, as after a kernel restart), in 64 KiB
//! records. With `--json` it prints one JSON object per row for `cargo xtask bench`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lucid_console::replay::{IndexParams, Replay, index_path};
use lucid_console::state::Config;
use lucid_protocol::recording::RecordingWriter;
use lucid_protocol::testdata::{Rng, Workload, generate};

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args();
    args.position(|a| a == name)?;
    args.next()
}

fn generate_file(path: &Path, bytes: u64) {
    let started = Instant::now();
    let out = File::create(path).expect("create the recording");
    let mut w = RecordingWriter::new(BufWriter::with_capacity(1 << 20, out)).expect("write");
    let (mut written, mut round, mut rx) = (0u64, 0u64, 1_700_000_000_000_000_000u64);
    while written < bytes {
        let g = generate(&Workload {
            cpus: 4,
            tasks: 10_000,
            polls_per_task: 5,
            wasm_instances: 4,
            seed: round + 1,
            ..Workload::default()
        });
        for chunk in g.wire().chunks(64 * 1024) {
            w.write_chunk(rx, chunk).expect("write");
            rx += 1_000_000;
            written += chunk.len() as u64 + 17;
        }
        round += 1;
    }
    w.into_inner().expect("flush");
    eprintln!(
        "generated {} ({round} rounds, {:.0} MiB) in {:.1} s",
        path.display(),
        written as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
}

fn row(json: bool, name: &str, v: f64, unit: &str) {
    if json {
        println!(r#"{{"name":"{name}","lucid":{v},"unit":"{unit}"}}"#);
    }
    eprintln!("{name}: {v:.3} {unit}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let path = PathBuf::from(arg("--file").unwrap_or_else(|| "replay-bench.lucid".into()));
    let mib: u64 = arg("--mb").and_then(|s| s.parse().ok()).unwrap_or(1024);
    let want = mib << 20;
    if std::fs::metadata(&path).map_or(true, |m| m.len() < want) {
        generate_file(&path, want);
    }
    let size = std::fs::metadata(&path).expect("recording").len();
    let _ = std::fs::remove_file(index_path(&path));
    row(json, "console.replay_file_mib", (size >> 20) as f64, "MiB");

    let t = Instant::now();
    let mut r = Replay::open(&path, Config::default(), IndexParams::default()).expect("open");
    let build = t.elapsed();
    let items = r.len();
    row(json, "console.replay_index_build_s", build.as_secs_f64(), "s");
    row(
        json,
        "console.replay_index_build_mib_per_s",
        size as f64 / (1 << 20) as f64 / build.as_secs_f64(),
        "MiB/s",
    );
    row(json, "console.replay_index_size_pct", index_pct(&path, size), "%");
    row(
        json,
        "console.replay_keyframes",
        r.index().entries().len() as f64,
        "keyframes",
    );
    drop(r);

    let t = Instant::now();
    r = Replay::open(&path, Config::default(), IndexParams::default()).expect("open");
    row(json, "console.replay_open_indexed_ms", ms(t.elapsed()), "ms");
    assert!(
        !r.index_origin().contains("built"),
        "the index was not reused: {}",
        r.index_origin()
    );

    // A keyframe restore alone: seeks exactly to keyframes, from the start.
    let entries: Vec<u64> = r.index().entries().iter().map(|e| e.items).collect();
    let mut restores = Vec::new();
    for i in 0..10 {
        let at = entries[(i * 7919) % entries.len()];
        r.seek(0).expect("seek");
        let t = Instant::now();
        r.seek(at).expect("seek");
        restores.push(ms(t.elapsed()));
    }
    restores.sort_by(f64::total_cmp);
    row(
        json,
        "console.replay_restore_p50_ms",
        restores[restores.len() / 2],
        "ms",
    );

    let (p50, max) = random_seeks(&mut r);
    row(json, "console.replay_seek_p50_ms", p50, "ms");
    row(json, "console.replay_seek_max_ms", max, "ms");

    // Holding the step-back key: the first step restores a keyframe and keeps a
    // checkpoint near the cursor, the others restore that.
    r.seek(items / 3).expect("seek");
    let mut steps = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        r.step(-1).expect("step");
        steps.push(ms(t.elapsed()));
    }
    steps.sort_by(f64::total_cmp);
    row(json, "console.replay_step_back_p50_ms", steps[steps.len() / 2], "ms");

    // Playing "as fast as possible" from the start for a few seconds.
    r.seek(0).expect("seek");
    let t = Instant::now();
    let mut played = 0;
    while t.elapsed() < Duration::from_secs(3) && r.position() < items {
        played += r.play_items(1_000_000);
    }
    row(
        json,
        "console.replay_events_per_s",
        played as f64 / t.elapsed().as_secs_f64(),
        "items/s",
    );
    eprintln!("{items} items in the recording; index: {}", r.index_origin());
    drop(r);

    // The same seeks with the index kept to a tenth of the recording
    // (`lucid replay --index-size 10`): keyframes ten times farther apart.
    let t = Instant::now();
    let mut r = Replay::open(&path, Config::default(), IndexParams::with_index_percent(10)).expect("open");
    eprintln!("index at 10 %: built in {:.1} s", t.elapsed().as_secs_f64());
    row(json, "console.replay_index10.size_pct", index_pct(&path, size), "%");
    let (p50, max) = random_seeks(&mut r);
    row(json, "console.replay_index10.seek_p50_ms", p50, "ms");
    row(json, "console.replay_index10.seek_max_ms", max, "ms");
}

/// The size of the index of the recording at `path` (of `size` bytes), in percent
/// of the recording.
fn index_pct(path: &Path, size: u64) -> f64 {
    let idx = std::fs::metadata(index_path(path)).map_or(0, |m| m.len());
    idx as f64 * 100.0 / size as f64
}

/// 40 seeks to random items and times, in random order (so most go backwards or
/// far forwards and restore a keyframe): the median and the slowest, in ms.
fn random_seeks(r: &mut Replay) -> (f64, f64) {
    let items = r.len();
    let mut rng = Rng::new(7);
    let mut seeks = Vec::new();
    for i in 0..40 {
        let t = Instant::now();
        if i % 2 == 0 {
            r.seek(rng.range(0, items)).expect("seek");
        } else {
            r.seek_time(rng.range(0, r.duration_ns())).expect("seek");
        }
        seeks.push(ms(t.elapsed()));
    }
    seeks.sort_by(f64::total_cmp);
    let (failed, why) = r.keyframe_failures();
    assert_eq!(
        failed, 0,
        "keyframes failed to restore (seeks played from the start): {why:?}"
    );
    (seeks[seeks.len() / 2], seeks[seeks.len() - 1])
}
