//! What the console's fuzz targets run, and the heap cap they run under.
//!
//! Three targets, each a thin `fuzz_target!` around a function here:
//! - [`decode`]: bytes as received from a kernel → pipeline → state → every TUI view
//!   drawn on a test backend, then the `lucid stats` summary (text and JSON).
//! - [`ingest`]: the same input and path without the drawing, which takes most of
//!   `decode`'s time: many more inputs per second through the decoder, merge and
//!   state model.
//! - [`index`]: bytes as a recording's index side file → [`Replay::open`] (which loads
//!   or rebuilds the index) → a seek to every keyframe it lists.
//!
//! Every input runs under [`HEAP_CAP`]: the console may hold at most that much more
//! heap than before the input, else the allocation fails and the process aborts, so
//! libFuzzer keeps the input as a crash.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use cap::Cap;
use lucid_console::live::Session;
use lucid_console::replay::{IndexParams, Replay, index_path};
use lucid_console::source::IngestEvent;
use lucid_console::state::Config;
use lucid_console::stats::Summary;
use lucid_console::time::HostNs;
use lucid_console::ui::{self, App, View};
use lucid_protocol::testdata::{Workload, frame, generate, sample_messages};
use lucid_protocol::{FrameEncoder, Location, Message, PollResult, Ring, StreamId, TaskId, TaskKind, TaskSpawned};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// Heap an input may make the console hold beyond what it held before the input.
pub const HEAP_CAP: usize = 64 << 20;
/// Largest input the targets are run with (`-max_len`).
pub const MAX_INPUT: usize = 64 << 10;

#[global_allocator]
static HEAP: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

/// Runs `f` on one input with the heap capped at [`HEAP_CAP`] above what is held now,
/// and reports the largest heap seen so far when it grew by a quarter.
pub fn capped(input_len: usize, f: impl FnOnce()) {
    static REPORTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    // Cannot fail: the new limit is above what is allocated.
    let _ = HEAP.set_limit(HEAP.allocated().saturating_add(HEAP_CAP));
    f();
    let peak = HEAP.max_allocated();
    let reported = REPORTED.load(std::sync::atomic::Ordering::Relaxed);
    if peak > reported.saturating_add(reported / 4) {
        REPORTED.store(peak, std::sync::atomic::Ordering::Relaxed);
        eprintln!("lucid-fuzz: peak heap {peak} bytes (input of {input_len} bytes)");
    }
}

/// Terminal size the views are drawn at.
const SCREEN: (u16, u16) = (80, 24);

/// The decode target. The first byte sets the size of the chunks the stream arrives
/// in (16 to 4096 bytes, 1 ms apart). The second says what the rest is: with its low
/// bit clear, the bytes on the link; with it set, frame bodies (header and records,
/// each behind its length as two bytes little-endian) that are sealed here with their
/// CRC and COBS, so mutations reach the records instead of failing the checksum.
/// Then the link idles and drops, and everything is drawn and summarised.
pub fn decode(data: &[u8]) {
    let Some(session) = fed_session(data) else {
        return;
    };
    let mut app = App::new(session);
    draw_every_view(&mut app);
    summarise(app.session);
}

/// The ingest target: [`decode`]'s input and path, without drawing the views.
pub fn ingest(data: &[u8]) {
    if let Some(session) = fed_session(data) {
        summarise(session);
    }
}

/// The `lucid stats` summary of what `session` holds, as text and JSON.
fn summarise(session: Session) {
    let collected = session.finish();
    let summary = Summary::new(&collected);
    std::hint::black_box(summary.to_text());
    std::hint::black_box(serde_json::to_string(&summary).expect("a summary serialises"));
}

/// A live session fed `data` as [`decode`] describes it, idled and disconnected;
/// `None` for an input too short to say how.
fn fed_session(data: &[u8]) -> Option<Session> {
    let [chunking, mode, rest @ ..] = data else {
        return None;
    };
    let sealed;
    let wire = if mode & 1 == 0 {
        rest
    } else {
        sealed = seal_bodies(rest);
        &sealed[..]
    };
    let chunk = (usize::from(*chunking) + 1) * 16;
    let mut session = Session::new("fuzz".into(), Config::default());
    session.handle(IngestEvent::Connected);
    let mut rx = 1_000_000_000u64;
    for part in wire.chunks(chunk) {
        session.feed(HostNs(rx), part);
        rx += 1_000_000;
    }
    session.tick(HostNs(rx + 10_000_000_000));
    session.handle(IngestEvent::Disconnected {
        reason: "end of input".into(),
        retry_in: Some(Duration::from_secs(1)),
    });
    Some(session)
}

/// Length-prefixed frame bodies → wire frames (body, CRC-32 little-endian, COBS,
/// 0x00). A length past the end takes what is left.
fn seal_bodies(mut rest: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(rest.len() + rest.len() / 8 + 16);
    while let [lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (body, next) = tail.split_at(len);
        let mut raw = body.to_vec();
        raw.extend_from_slice(&CRC32.checksum(body).to_le_bytes());
        cobs_encode(&raw, &mut wire);
        wire.push(0);
        rest = next;
    }
    wire
}

/// The frames' checksum (the protocol's CRC-32).
static CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// COBS-encodes `src` onto `out` (no delimiter).
fn cobs_encode(src: &[u8], out: &mut Vec<u8>) {
    let mut code_at = out.len();
    out.push(0);
    let mut code = 1u8;
    for &b in src {
        if b != 0 {
            out.push(b);
            code += 1;
        }
        if b == 0 || code == 0xFF {
            out[code_at] = code;
            code_at = out.len();
            out.push(0);
            code = 1;
        }
    }
    out[code_at] = code;
}

/// A wire frame (delimiter excluded) → its body, without COBS and CRC.
fn unseal(frame: &[u8]) -> Option<Vec<u8>> {
    let mut raw = Vec::with_capacity(frame.len());
    let mut i = 0;
    while i < frame.len() {
        let code = usize::from(frame[i]);
        raw.extend_from_slice(frame.get(i + 1..i + code)?);
        i += code;
        if code < 0xFF && i < frame.len() {
            raw.push(0);
        }
    }
    raw.truncate(raw.len().checked_sub(4)?);
    Some(raw)
}

/// Draws each view, the task detail of the first task and the help overlay into the
/// terminal's buffer (not flushed to the backend: that only copies cells).
fn draw_every_view(app: &mut App) {
    let mut terminal = Terminal::new(TestBackend::new(SCREEN.0, SCREEN.1)).expect("test backend");
    app.detail.task = app.session.state.tasks.keys().next().copied();
    let mut draw = |app: &mut App| {
        terminal.current_buffer_mut().reset();
        ui::draw(&mut terminal.get_frame(), app);
    };
    for view in View::ALL {
        app.view = view;
        draw(app);
    }
    app.help = true;
    draw(app);
}

/// Keyframe settings of the index target: often enough that its small recording has
/// several keyframes.
const INDEX_PARAMS: IndexParams = IndexParams {
    every_items: 64,
    every_ns: u64::MAX,
    min_spacing_percent: 0,
};

/// The recording the index target's inputs are the index of, in a directory of this
/// process's own.
fn index_recording() -> &'static Path {
    static RECORDING: OnceLock<PathBuf> = OnceLock::new();
    RECORDING.get_or_init(|| {
        // Memory-backed where there is one: a rebuilt index is synced to disk.
        let tmp = Path::new("/dev/shm");
        let tmp = if tmp.is_dir() {
            tmp.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        remove_dead_fixtures(&tmp);
        let dir = tmp.join(format!("{FIXTURE_PREFIX}{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create the fixture directory");
        let path = dir.join("fixture.lucid");
        let g = generate(&Workload {
            cpus: 2,
            tasks: 40,
            polls_per_task: 3,
            wasm_instances: 1,
            loss: 2,
            frame_buffer: 256,
            seed: 7,
            ..Workload::default()
        });
        fs::write(&path, g.recording(700)).expect("write the fixture recording");
        path
    })
}

/// Name of a fixture directory, before the process id.
const FIXTURE_PREFIX: &str = "lucid-fuzz-index-";

/// Removes the fixture directories in `tmp` of processes that are gone.
fn remove_dead_fixtures(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(FIXTURE_PREFIX)) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The index target: `data` is the recording's index side file. Opening the replay
/// loads it (or rebuilds it when it does not check out); every keyframe it then lists
/// is restored by a seek.
pub fn index(data: &[u8]) {
    let recording = index_recording();
    fs::write(index_path(recording), data).expect("write the index");
    let Ok(mut replay) = Replay::open(recording, Config::default(), INDEX_PARAMS) else {
        return;
    };
    let marks: Vec<u64> = replay.index().entries().iter().map(|e| e.items).collect();
    for items in marks.iter().rev() {
        let _ = replay.seek(*items);
    }
    let _ = replay.seek_time(replay.duration_ns() / 2);
    let _ = replay.next_warning();
    std::hint::black_box(replay.state().events);
}

/// Inputs to start the decode target from: generated workloads of a few shapes, and
/// one frame of every sample message, each as link bytes and as frame bodies.
#[must_use]
pub fn decode_seeds() -> Vec<Vec<u8>> {
    let mut streams: Vec<Vec<Vec<u8>>> = (1..=4u32)
        .map(|cpus| {
            generate(&Workload {
                cpus,
                tasks: 12 * u64::from(cpus),
                polls_per_task: 3,
                wasm_instances: u64::from(cpus % 2),
                loss: u64::from(cpus) - 1,
                frame_buffer: 256,
                seed: u64::from(cpus),
                ..Workload::default()
            })
            .frames
        })
        .collect();
    let samples: Vec<_> = sample_messages().into_iter().map(|m| (1_000, m)).collect();
    streams.push(vec![frame(StreamId::new(0, Ring::Task), 0, &samples)]);
    streams.extend(hostile_streams());
    let mut seeds = Vec::new();
    for (i, frames) in streams.iter().enumerate() {
        let chunking = (i * 60) as u8;
        let mut wire = vec![chunking, 0];
        let mut bodies = vec![chunking, 1];
        for f in frames {
            if wire.len() + f.len() <= MAX_INPUT {
                wire.extend_from_slice(f);
            }
            let body = unseal(f.strip_suffix(&[0]).unwrap_or(f)).unwrap_or_default();
            if bodies.len() + body.len() + 2 <= MAX_INPUT {
                bodies.extend_from_slice(&(body.len() as u16).to_le_bytes());
                bodies.extend_from_slice(&body);
            }
        }
        seeds.push(wire);
        seeds.push(bodies);
    }
    seeds
}

/// Streams of about [`MAX_INPUT`] bytes of what could make the console hold much
/// more than it reads: tasks with distinct names and spawn locations, steals naming
/// distinct CPUs, wakes and polls of tasks never spawned.
fn hostile_streams() -> Vec<Vec<Vec<u8>>> {
    let n = 4_000u32;
    let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let files: Vec<String> = (0..n).map(|i| format!("f{i}.rs")).collect();
    let spawns = (0..n).map(|i| {
        Message::TaskSpawned(TaskSpawned {
            task: TaskId(u64::from(i) + 1),
            name: &names[i as usize],
            kind: TaskKind::Kernel,
            location: Location {
                file: &files[i as usize],
                line: i,
                column: 1,
            },
            parent: None,
        })
    });
    let steals = (0..n * 4).map(|i| Message::Steal {
        task: TaskId(u64::from(i % 7)),
        from_cpu: i.wrapping_mul(2_654_435_761),
        to_cpu: i,
    });
    let strangers = (0..n * 2).flat_map(|i| {
        let task = TaskId(u64::from(i) << 20);
        [
            Message::PollStart { task },
            Message::PollEnd {
                task,
                result: PollResult::Pending,
            },
        ]
    });
    vec![
        frames(spawns.collect()),
        frames(steals.collect()),
        frames(strangers.collect()),
    ]
}

/// `messages` 100 ticks apart on CPU 0's task stream, as many full frames as fit in
/// [`MAX_INPUT`] with the two header bytes of an input.
fn frames(messages: Vec<Message<'_>>) -> Vec<Vec<u8>> {
    let mut enc = FrameEncoder::new(vec![0u8; 8 << 10], StreamId::new(0, Ring::Task));
    let mut out = vec![0u8; enc.max_finished_len().max(16 << 10)];
    let (mut frames, mut len) = (Vec::new(), 2);
    for (i, m) in messages.iter().enumerate() {
        let ts = i as u64 * 100;
        if enc.push(ts, m).is_err() {
            let n = enc.finish(&mut out).expect("a frame fits its buffer");
            len += n;
            if len > MAX_INPUT {
                return frames;
            }
            frames.push(out[..n].to_vec());
            enc.push(ts, m).expect("one message fits an empty frame");
        }
    }
    frames
}

/// Inputs to start the index target from: the index a replay builds for the fixture
/// recording, whole and cut short.
#[must_use]
pub fn index_seeds() -> Vec<Vec<u8>> {
    let recording = index_recording();
    let side = index_path(recording);
    let _ = fs::remove_file(&side);
    if Replay::open(recording, Config::default(), INDEX_PARAMS).is_err() {
        return Vec::new();
    }
    let Ok(whole) = fs::read(&side) else {
        return Vec::new();
    };
    let half = whole[..whole.len() / 2].to_vec();
    vec![whole, half]
}

/// Writes `seeds` into `dir` (named by content, so writing twice adds nothing), for
/// libFuzzer to read as its corpus. Called from the targets' init when
/// `LUCID_FUZZ_SEEDS` names the corpus directory.
pub fn write_seeds(seeds: &[Vec<u8>]) {
    let Some(dir) = std::env::var_os("LUCID_FUZZ_SEEDS") else {
        return;
    };
    let dir = PathBuf::from(dir);
    fs::create_dir_all(&dir).expect("create the corpus directory");
    for seed in seeds {
        let name = format!("seed-{:08x}-{}", crc32(seed), seed.len());
        fs::write(dir.join(name), seed).expect("write a seed");
    }
}

/// A small checksum to name seed files by.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use lucid_console::pipeline::Pipeline;
    use lucid_console::state::State;

    use super::*;

    /// The heap cap is the whole process's: while one test sets it, another test's
    /// allocations would count against it, so the tests run one at a time.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn sealed_bodies_decode_like_the_frames_they_came_from() {
        let _serial = serial();
        let g = generate(&Workload {
            cpus: 2,
            tasks: 30,
            frame_buffer: 256,
            ..Workload::default()
        });
        let mut bodies = Vec::new();
        for f in &g.frames {
            let body = unseal(f.strip_suffix(&[0]).expect("delimited")).expect("a frame");
            bodies.extend_from_slice(&(body.len() as u16).to_le_bytes());
            bodies.extend_from_slice(&body);
        }
        assert_eq!(seal_bodies(&bodies), g.wire());
        let (mut state, mut pipeline) = (State::default(), Pipeline::new());
        pipeline.feed_into(&mut state, HostNs(1), &seal_bodies(&bodies));
        pipeline.finish_into(&mut state);
        assert_eq!(pipeline.decoder().stats().events, g.events());
        assert_eq!(pipeline.decoder().stats().corrupt_frames(), 0);
    }

    #[test]
    fn an_input_may_not_hold_more_than_the_cap() {
        let _serial = serial();
        capped(0, || {
            let mut v = Vec::<u8>::new();
            // The cap is set from the heap in use at that moment; the harness's own
            // threads may free a little after it, which leaves that much more room.
            assert!(v.try_reserve_exact(HEAP_CAP + HEAP_CAP / 8).is_err(), "over the cap");
            assert!(v.try_reserve_exact(HEAP_CAP / 2).is_ok(), "well under the cap");
        });
        // A fuzz target keeps the cap for the next input; the tests after this do not.
        let _ = HEAP.set_limit(usize::MAX);
    }

    #[test]
    fn every_seed_runs() {
        let _serial = serial();
        let seeds = decode_seeds();
        assert_eq!(seeds.len(), 16);
        for seed in &seeds {
            assert!(seed.len() <= MAX_INPUT);
            decode(seed);
        }
    }
}
