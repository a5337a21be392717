use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lucid_protocol::Item;
use lucid_protocol::testdata::{Rng, Workload, generate};

use super::*;
use crate::source::RecordingFile;
use crate::stats::collect;

/// A fresh directory under the system's temporary directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "lucid-replay-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn workload() -> Workload {
    Workload {
        cpus: 3,
        tasks: 300,
        polls_per_task: 4,
        wasm_instances: 1,
        loss: 7,
        frame_buffer: 512,
        seed: 11,
        ..Workload::default()
    }
}

/// Keyframes every few hundred items, so a small recording has many.
fn dense() -> IndexParams {
    IndexParams {
        every_items: 300,
        every_ns: u64::MAX,
        min_spacing_percent: 0,
    }
}

fn played_to(path: &Path, stop: impl FnMut(&Item<'_>, u64) -> bool) -> Player {
    let mut p = Player::open(path, Config::default()).expect("open");
    p.advance(stop);
    p
}

/// Every keyframe decodes and restores by itself. (A seek whose keyframe does not
/// restore still lands right, by playing from the start: only this test and the
/// seek times notice.)
#[test]
fn every_keyframe_restores_and_matches_a_play_to_it() {
    let dir = TempDir::new();
    let path = dir.file("a.lucid", &generate(&workload()).recording(700));
    let mut replay = Replay::open(&path, Config::default(), dense()).expect("open");
    let entries = replay.index().entries().to_vec();
    assert!(entries.len() > 10, "{}", entries.len());
    for e in entries.iter().step_by(entries.len() / 8) {
        let header = replay.header;
        let restored = replay
            .index
            .restore(&path, header, e)
            .unwrap_or_else(|err| panic!("the keyframe at item {} does not restore: {err}", e.items));
        assert_eq!(restored.items(), e.items);
        let played = played_to(&path, |_, n| n >= e.items);
        assert_eq!(restored.state(), played.state(), "keyframe at item {}", e.items);
    }
    for e in entries.iter().rev().step_by(entries.len() / 4) {
        replay.seek(e.items + 1).expect("seek");
    }
    assert_eq!(replay.keyframe_failures(), (0, None));
}

#[test]
fn a_full_play_builds_the_state_stats_builds() {
    let dir = TempDir::new();
    let path = dir.file("a.lucid", &generate(&workload()).recording(700));
    let replay = Replay::open(&path, Config::default(), dense()).expect("open");
    assert!(
        replay.index().entries().len() > 10,
        "{}",
        replay.index().entries().len()
    );
    let end = played_to(&path, |_, _| false);
    let collected = collect(&mut RecordingFile::open(&path).expect("open"));
    assert_eq!(end.state(), &collected.state);
    assert_eq!(end.items(), replay.len());
}

#[test]
fn seeking_anywhere_equals_playing_from_the_start() {
    let dir = TempDir::new();
    let path = dir.file("a.lucid", &generate(&workload()).recording(333));
    let mut replay = Replay::open(&path, Config::default(), dense()).expect("open");
    let total = replay.len();
    assert!(total > 1000);
    let mut rng = Rng::new(5);
    // Random order: forward seeks resume, backward ones restore a keyframe.
    let mut targets: Vec<u64> = (0..25).map(|_| rng.range(0, total + 1)).collect();
    targets.extend([0, 1, total - 1, total]);
    for &t in &targets {
        replay.seek(t).expect("seek");
        assert_eq!(replay.position(), t);
        let reference = played_to(&path, |_, n| n >= t);
        assert_eq!(replay.state(), reference.state(), "at item {t}");
        // Playing on from a seek (its pending items, reader and pipeline) goes as
        // playing on from the start does.
        let on = (t + 97).min(total);
        assert_eq!(replay.play_items(97), on - t);
        assert_eq!(replay.state(), played_to(&path, |_, n| n >= on).state(), "at item {on}");
    }
    assert_eq!(replay.keyframe_failures(), (0, None));
}

/// A seek's two threads: the state read while the recording decodes lands where a
/// single thread does, checkpoint included; a damaged state is an error, and the
/// decoding thread ends with it.
#[test]
fn a_restore_decoding_ahead_lands_where_one_thread_does() {
    let dir = TempDir::new();
    let path = dir.file("a.lucid", &generate(&workload()).recording(333));
    let mut replay = Replay::open(&path, Config::default(), dense()).expect("open");
    let total = replay.len();
    let entries = replay.index().entries().to_vec();
    let header = replay.header;
    for e in entries.iter().step_by(entries.len() / 6) {
        let raw = replay.index.keyframe_bytes(e).expect("keyframe");
        let (head, state) = index::keyframe_head(e, &raw).expect("head");
        for target in [e.items, e.items + 1, e.items + 900, total] {
            let stop = move |_: &Item<'_>, n: u64| n >= target;
            let from = target.saturating_sub(400);
            let (p, checkpoint) =
                catch_up::restore_and_play(&path, header, head.clone(), state, &stop, Some(from)).expect("restores");
            // From the keyframe on, on one thread.
            let kf = player::KeyframeIn {
                head: head.clone(),
                state: postcard::from_bytes(state).expect("state"),
            };
            let mut reference = Player::from_keyframe(&path, header, kf).expect("restores");
            let mut expected = None;
            reference.advance_capturing(stop, from, &mut expected);
            assert_eq!(p.items(), reference.items(), "to {target}");
            assert_eq!(p.state(), reference.state(), "to {target}");
            assert_eq!(p.at_end(), reference.at_end(), "to {target}");
            let (c, x) = (checkpoint.as_ref(), expected.as_ref());
            assert_eq!(
                c.map(|c| (c.head.items, c.head.record_offset)),
                x.map(|x| (x.head.items, x.head.record_offset)),
                "to {target}"
            );
            assert_eq!(c.map(|c| &c.state), x.map(|x| &x.state), "to {target}");
        }
        for cut in [state.len() / 2, 1] {
            let stop = |_: &Item<'_>, _| false;
            let err = catch_up::restore_and_play(&path, header, head.clone(), &state[..cut], &stop, None)
                .expect_err("a damaged state");
            assert!(err.to_string().contains("keyframe at item"), "{err}");
        }
    }
}

/// Playing on with the recording decoded on a second thread (long plays and
/// forward seeks) lands where one thread does: from mid-record positions with items
/// pending, to items and to times, to the end and past it, checkpoint included.
#[test]
fn playing_on_decoding_ahead_lands_where_one_thread_does() {
    let dir = TempDir::new();
    let path = dir.file("a.lucid", &generate(&workload()).recording(333));
    let total = Replay::open(&path, Config::default(), dense()).expect("open").len();
    let (a, b) = played_to(&path, |_, _| false).ts_range().expect("events");
    let mid_ts = a + (b - a) / 2;
    let to_item = |to: u64| move |_: &Item<'_>, n: u64| n >= to;
    let to_ts = |_: &Item<'_>, _: u64| false;
    let cases: [(u64, catch_up::Stop<'_>, &str); 8] = [
        (0, &to_item(1), "1"),
        (total / 3, &to_item(total / 3 + 100), "a record on"),
        (0, &to_item(total / 3), "a third"),
        (17, &to_item(total / 2), "half"),
        (total / 2, &to_item(total), "the end"),
        (total - 1, &to_item(total + 5), "past the end"),
        (
            5,
            &|item: &Item<'_>, _| player::timestamp(item).is_some_and(|ts| ts > mid_ts),
            "mid time",
        ),
        (total / 4, &to_ts, "never"),
    ];
    for (i, (from, stop, what)) in cases.into_iter().enumerate() {
        let mut one = played_to(&path, |_, n| n >= from);
        let mut two = played_to(&path, |_, n| n >= from);
        // Checkpoints from where the play starts, or from further on.
        let capture = one.items() + if i % 2 == 0 { 200 } else { 0 };
        let (mut c1, mut c2) = (None, None);
        one.advance_capturing(|item, n| stop(item, n), capture, &mut c1);
        two.advance_decoding_ahead(stop, Some(capture), &mut c2);
        assert_eq!(two.items(), one.items(), "{what}");
        assert_eq!(two.state(), one.state(), "{what}");
        assert_eq!(two.at_end(), one.at_end(), "{what}");
        let key = |c: &Option<player::KeyframeIn>| {
            c.as_ref()
                .map(|c| (c.head.items, c.head.record_offset, c.state.clone()))
        };
        assert_eq!(key(&c2), key(&c1), "{what}");
        let on = one.items() + 50;
        one.advance(|_, n| n >= on);
        two.advance(|_, n| n >= on);
        assert_eq!(two.state(), one.state(), "{what}, played on");
    }
}

#[test]
fn seeking_to_a_time_equals_playing_to_it() {
    let dir = TempDir::new();
    let path = dir.file("a.lucid", &generate(&workload()).recording(1000));
    let mut replay = Replay::open(&path, Config::default(), dense()).expect("open");
    let (a, b) = replay.index().summary().ts_range.expect("events");
    let mut rng = Rng::new(9);
    for _ in 0..15 {
        let t = rng.range(a, b + 1);
        replay.seek_ts(t).expect("seek");
        let reference = played_to(&path, |item, _| player::timestamp(item).is_some_and(|ts| ts > t));
        assert_eq!(replay.position(), reference.items(), "at ts {t}");
        assert_eq!(replay.state(), reference.state(), "at ts {t}");
        assert!(replay.cursor_ts().is_none_or(|c| c <= t));
    }
}

#[test]
fn stepping_back_and_forth_lands_on_the_same_states() {
    let dir = TempDir::new();
    let path = dir.file("a.lucid", &generate(&workload()).recording(500));
    let mut replay = Replay::open(&path, Config::default(), dense()).expect("open");
    replay.seek(1234).expect("seek");
    let at = replay.state().clone();
    replay.step(1).expect("step");
    assert_eq!(replay.position(), 1235);
    assert_ne!(replay.state(), &at);
    replay.step(-1).expect("step");
    assert_eq!(replay.state(), &at);
    // Holding the key: each step back lands where a play from the start does (the
    // first keeps a checkpoint the others restore).
    for k in 1..=5 {
        replay.step(-37).expect("step");
        let t = 1234 - 37 * k;
        assert_eq!(replay.position(), t);
        assert_eq!(replay.state(), played_to(&path, |_, n| n >= t).state(), "at {t}");
    }
    assert!(replay.checkpoint.as_ref().is_some_and(|c| c.head.items <= 1234 - 37));
}

/// The workload's stream with three frames damaged (CRC errors are warnings).
fn with_bad_frames() -> Vec<u8> {
    let mut g = generate(&workload());
    let n = g.frames.len();
    for i in [n / 5, n / 2, n - 3] {
        // A changed non-zero byte keeps the frame's delimiter, so only its CRC fails.
        g.frames[i][2] = g.frames[i][2].wrapping_add(1).max(1);
    }
    g.recording(500)
}

#[test]
fn warnings_are_found_in_both_directions() {
    let dir = TempDir::new();
    let path = dir.file("a.lucid", &with_bad_frames());
    let mut replay = Replay::open(&path, Config::default(), dense()).expect("open");
    let marks = replay.index().summary().warnings.clone();
    assert!(marks.len() >= 3, "{marks:?}");
    let total = |r: &Replay| r.state().warnings.len() as u64 + r.state().warnings_dropped;
    assert!(replay.next_warning().expect("seek"));
    assert_eq!(replay.position(), marks[0]);
    assert_eq!(total(&replay), 1);
    // One item earlier the warning had not happened yet.
    replay.step(-1).expect("step");
    assert_eq!(total(&replay), 0);
    replay.seek(replay.len()).expect("seek");
    assert!(replay.prev_warning().expect("seek"));
    assert_eq!(replay.position(), *marks.last().expect("marks"));
}

#[test]
fn the_index_is_reused_and_rebuilt_when_stale_or_damaged() {
    let dir = TempDir::new();
    let bytes = generate(&workload()).recording(700);
    let path = dir.file("a.lucid", &bytes);
    let first = Replay::open(&path, Config::default(), dense()).expect("open");
    assert!(
        first.index_origin().starts_with("index built"),
        "{}",
        first.index_origin()
    );
    let second = Replay::open(&path, Config::default(), dense()).expect("open");
    assert!(second.index_origin().starts_with("index "), "{}", second.index_origin());
    assert!(!second.index_origin().contains("built"));

    // Damage a keyframe: the table still loads, the seek falls back and stays exact.
    let idx = index_path(&path);
    let mut raw = std::fs::read(&idx).expect("idx");
    let mid = raw.len() / 3;
    raw[mid] ^= 0xff;
    std::fs::write(&idx, &raw).expect("write");
    let mut r = Replay::open(&path, Config::default(), dense()).expect("open");
    let t = r.len() / 2;
    r.seek(t).expect("seek");
    assert_eq!(r.state(), played_to(&path, |_, n| n >= t).state());
    // Restoring every keyframe (backwards) meets the damaged one, which is counted.
    let at: Vec<u64> = r.index().entries().iter().rev().map(|e| e.items).collect();
    for &items in &at {
        r.seek(items).expect("seek");
    }
    let (failed, why) = r.keyframe_failures();
    assert_eq!(failed, 1, "{why:?}");
    assert!(why.is_some_and(|w| w.contains("checksum")), "{why:?}");
    assert_eq!(r.state(), played_to(&path, |_, n| n >= at[at.len() - 1]).state());
    // The replay's status line says so.
    let bar = crate::ui::replay::ReplayControls::new(r).bar();
    let message = bar.message.unwrap_or_default();
    assert!(message.starts_with("1 index keyframe(s) did not restore"), "{message}");

    // A truncated index is rebuilt.
    std::fs::write(&idx, &raw[..raw.len() - 5]).expect("write");
    let r = Replay::open(&path, Config::default(), dense()).expect("open");
    assert!(r.index_origin().contains("index damaged"), "{}", r.index_origin());

    // A recording that grew is re-indexed.
    let mut longer = bytes.clone();
    let mut w = lucid_protocol::recording::RecordingWriter::new(Vec::new()).expect("vec");
    w.write_chunk(1, &[0]).expect("vec");
    longer.extend_from_slice(&w.into_inner().expect("vec")[lucid_protocol::recording::HEADER_LEN..]);
    std::fs::write(&path, &longer).expect("write");
    let r = Replay::open(&path, Config::default(), dense()).expect("open");
    assert!(r.index_origin().contains("stale"), "{}", r.index_origin());
}

#[test]
fn every_truncation_replays_a_prefix_or_fails_in_one_line() {
    let dir = TempDir::new();
    let small = Workload {
        cpus: 2,
        tasks: 6,
        polls_per_task: 2,
        wasm_instances: 0,
        loss: 0,
        frame_buffer: 256,
        seed: 3,
        ..Workload::default()
    };
    let bytes = generate(&small).recording(97);
    let full_items = {
        let p = dir.file("full.lucid", &bytes);
        Replay::open(&p, Config::default(), dense()).expect("open").len()
    };
    for cut in 0..bytes.len() {
        let p = dir.file("cut.lucid", &bytes[..cut]);
        let _ = std::fs::remove_file(index_path(&p));
        match Replay::open(&p, Config::default(), dense()) {
            Err(e) => {
                assert!(cut < lucid_protocol::recording::HEADER_LEN, "cut {cut}: {e}");
                assert!(!e.to_string().contains('\n'));
            }
            Ok(mut r) => {
                assert!(r.len() <= full_items + 1, "cut {cut}");
                if let Some(d) = r.damage() {
                    assert!(d.message.contains("offset"), "{}", d.message);
                }
                r.seek(r.len()).expect("seek");
                r.seek(r.len() / 2).expect("seek");
            }
        }
    }
}

#[test]
fn random_corruption_never_panics() {
    let dir = TempDir::new();
    let bytes = generate(&workload()).recording(400);
    let mut rng = Rng::new(77);
    for round in 0..12 {
        let mut bad = bytes.clone();
        for _ in 0..=round % 4 {
            let i = rng.range(0, bad.len() as u64) as usize;
            bad[i] ^= (rng.next_u64() as u8) | 1;
        }
        let p = dir.file("bad.lucid", &bad);
        let _ = std::fs::remove_file(index_path(&p));
        if let Ok(mut r) = Replay::open(&p, Config::default(), dense()) {
            let t = r.len() / 3;
            r.seek(t).expect("seek");
            assert_eq!(r.state(), played_to(&p, |_, n| n >= t).state(), "round {round}");
        }
    }
}

#[test]
fn wrong_magic_and_newer_version_are_one_line_errors() {
    let dir = TempDir::new();
    let p = dir.file("text.lucid", b"this is not a recording at all");
    let e = open(&p).expect_err("not a recording");
    assert!(e.to_string().contains("not a Lucid recording"), "{e}");
    let mut v = generate(&workload()).recording(700);
    v[8] = 9;
    let p = dir.file("v9.lucid", &v);
    let e = open(&p).expect_err("newer");
    assert!(e.to_string().contains("unsupported recording format version 9"), "{e}");
}

/// A copy of `bytes` with one byte flipped in the middle: same length.
fn flipped_in_the_middle(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let mid = v.len() / 2;
    v[mid] ^= 0x40;
    v
}

#[test]
fn a_recording_changed_in_the_middle_replays_as_with_a_fresh_index() {
    let old_dir = TempDir::new();
    // Larger than the checksummed head and tail: only the block checksums see the change.
    let bytes = generate(&Workload {
        tasks: 1200,
        ..workload()
    })
    .recording(700);
    assert!(bytes.len() > 2 * 64 * 1024 + 4096, "{}", bytes.len());
    let path = old_dir.file("a.lucid", &bytes);
    drop(Replay::open(&path, Config::default(), dense()).expect("open"));
    let changed = flipped_in_the_middle(&bytes);
    std::fs::write(&path, &changed).expect("write");

    let mut old = Replay::open(&path, Config::default(), dense()).expect("open");
    assert!(old.index_origin().contains("changed at byte"), "{}", old.index_origin());
    let notice = old.take_notice().expect("a notice");
    assert!(notice.contains("recording changed"), "{notice}");
    assert!(!notice.contains('\n'));

    let fresh_dir = TempDir::new();
    let fresh_path = fresh_dir.file("a.lucid", &changed);
    let mut fresh = Replay::open(&fresh_path, Config::default(), dense()).expect("open");
    assert_eq!(old.len(), fresh.len());
    assert_eq!(old.index().summary(), fresh.index().summary());
    let mut rng = Rng::new(3);
    for _ in 0..8 {
        let t = rng.range(0, fresh.len() + 1);
        old.seek(t).expect("seek");
        fresh.seek(t).expect("seek");
        assert_eq!(old.state(), fresh.state(), "at item {t}");
    }
}

#[test]
fn a_corrupt_index_table_falls_back_to_a_rebuild_with_a_notice() {
    let dir = TempDir::new();
    let path = dir.file("a.lucid", &generate(&workload()).recording(700));
    let reference = Replay::open(&path, Config::default(), dense()).expect("open");
    let idx = index_path(&path);
    let mut raw = std::fs::read(&idx).expect("idx");
    // A byte of the table (just before the footer).
    let at = raw.len() - 20;
    raw[at] ^= 0x55;
    std::fs::write(&idx, &raw).expect("write");
    let mut r = Replay::open(&path, Config::default(), dense()).expect("open");
    let notice = r.take_notice().expect("a notice");
    assert!(notice.contains("index damaged"), "{notice}");
    assert_eq!(r.index().summary(), reference.index().summary());
    // Garbage of any length in its place: a one-line reason, then a rebuild.
    for len in [0usize, 15, 40, 4096] {
        std::fs::write(&idx, vec![0xa5; len]).expect("write");
        let mut r = Replay::open(&path, Config::default(), dense()).expect("open");
        let notice = r.take_notice().expect("a notice");
        assert!(notice.contains("index damaged") && !notice.contains('\n'), "{notice}");
        assert_eq!(r.len(), reference.len());
    }
}
