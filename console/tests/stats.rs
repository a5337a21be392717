//! Runs the real `lucid` binary on generated recordings.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{lucid, workload};
use lucid_protocol::MessageKind;
use lucid_protocol::recording::RecordingWriter;
use serde_json::Value;

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("stats-{name}.lucid"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn stats_json(path: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["stats", path.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = lucid(&args);
    assert!(
        out.status.success(),
        "lucid failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn stderr_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "one-line error expected: {err}");
    err
}

#[test]
fn json_counts_match_the_generated_workload() {
    let g = workload(42);
    let path = write("clean", &g.recording(4096));
    let j = stats_json(&path, &[]);
    assert_eq!(j["events"], g.events());
    assert_eq!(j["tasks"], 303);
    assert_eq!(j["tasks_completed"], 303);
    assert_eq!(j["cpus"], 4);
    assert_eq!(j["sequence_gaps"], 0);
    assert_eq!(j["crc_errors"], 0);
    assert_eq!(j["dropped_events"], 17);
    assert_eq!(j["wasm_instances"], 3);
    assert_eq!(j["warnings"], Value::Array(vec![]));
    assert_eq!(j["bytes"], g.wire_bytes());
    for kind in MessageKind::ALL {
        let expected = g.counts.get(kind).copied().unwrap_or(0);
        assert_eq!(j["events_by_kind"][kind.name()], expected, "{}", kind.name());
    }
    let per_event = j["bytes_per_event"].as_f64().unwrap();
    assert!((per_event - g.wire_bytes() as f64 / g.events() as f64).abs() < 1e-9);
    let duration = j["duration_s"].as_f64().unwrap();
    assert!(duration > 0.0 && duration < 1.0, "{duration}");
}

#[test]
fn text_output_names_the_totals() {
    let g = workload(42);
    let path = write("text", &g.recording(4096));
    let out = lucid(&["stats", path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("events     {} in", g.events())), "{text}");
    assert!(text.contains("poll_start"), "{text}");
}

#[test]
fn line_errors_are_counted_not_fatal() {
    let g = workload(42);
    let mut frames = g.frames.clone();
    // A flipped bit in one frame (CRC error) and a lost frame of a CPU stream (gap).
    let victim = frames.len() / 2;
    frames[victim][3] ^= 0x10;
    let dropped = frames.remove(victim + 4);
    assert!(!dropped.is_empty());
    let mut w = RecordingWriter::new(Vec::new()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_chunk(i as u64, f).unwrap();
    }
    let path = write("line-errors", &w.into_inner().unwrap());
    let j = stats_json(&path, &[]);
    assert_eq!(j["crc_errors"], 1);
    assert!(j["sequence_gaps"].as_u64().unwrap() >= 1);
    assert!(j["events"].as_u64().unwrap() < g.events());
    assert!(!j["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn a_truncated_recording_fails_naming_the_offset_unless_partial() {
    let g = workload(42);
    let full = g.recording(4096);
    let cut = full.len() - 100;
    let path = write("truncated", &full[..cut]);
    let out = lucid(&["stats", path.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    let err = stderr_line(&out);
    assert!(err.contains("truncated at byte offset"), "{err}");
    assert!(err.contains("--partial"), "{err}");

    let j = stats_json(&path, &["--partial"]);
    let events = j["events"].as_u64().unwrap();
    assert!(events > 0 && events < g.events(), "{events}");
    let offset = j["damage"]["offset"].as_u64().unwrap();
    assert!(offset < cut as u64);
    assert!(err.contains(&format!("offset {offset}")), "{err}");
    assert!(
        j["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("truncated at byte offset"))
    );
}

#[test]
fn garbage_and_wrong_magic_are_not_recordings() {
    for (name, bytes) in [
        (
            "garbage",
            b"\x7fELF\x02\x01\x01 this is not a recording at all".to_vec(),
        ),
        ("magic", b"LUCIDRXX\x01\x00\x00\x00\x00\x00\x00\x00".to_vec()),
        ("empty", Vec::new()),
    ] {
        let path = write(name, &bytes);
        for extra in [None, Some("--partial")] {
            let mut args = vec!["stats", path.to_str().unwrap(), "--json"];
            args.extend(extra);
            let out = lucid(&args);
            assert!(!out.status.success(), "{name}");
            let err = stderr_line(&out);
            assert!(err.contains("not a Lucid recording"), "{name}: {err}");
            assert!(err.contains("byte offset 0"), "{name}: {err}");
        }
    }
}

#[test]
fn a_newer_recording_format_is_refused() {
    let mut bytes = workload(42).recording(4096);
    bytes[8] = 9;
    let path = write("newer", &bytes);
    let out = lucid(&["stats", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("unsupported recording format version 9.0"));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = lucid(&["stats", "/nonexistent/x.lucid"]);
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("cannot open /nonexistent/x.lucid"));
}

#[test]
fn an_incompatible_protocol_version_is_refused() {
    // A frame whose major version byte is from the future (CRC fixed up so only the
    // version is wrong).
    let mut raw = vec![lucid_protocol::MAJOR + 1, 0x00, 0x00, 0x01, 0x40, 0x00, 0x01];
    let crc = crc32(&raw);
    raw.extend_from_slice(&crc.to_le_bytes());
    let wire = cobs(&raw);
    let mut w = RecordingWriter::new(Vec::new()).unwrap();
    w.write_chunk(1, &wire).unwrap();
    let path = write("major", &w.into_inner().unwrap());
    let out = lucid(&["stats", path.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    let err = stderr_line(&out);
    assert!(err.contains("incompatible protocol version"), "{err}");
    assert!(err.contains("byte offset 0"), "{err}");
}

fn crc32(data: &[u8]) -> u32 {
    // Bitwise CRC-32/ISO-HDLC, independent of the implementation under test.
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// COBS for frames shorter than 254 bytes, plus the delimiter.
fn cobs(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    let mut code_at = 0;
    for &b in raw {
        if b == 0 {
            out[code_at] = (out.len() - code_at) as u8;
            code_at = out.len();
            out.push(0);
        } else {
            out.push(b);
        }
    }
    out[code_at] = (out.len() - code_at) as u8;
    out.push(0);
    out
}

#[test]
fn a_kernel_restart_is_reported_as_a_new_boot() {
    // Two thirds of one boot, then a whole second boot: sequences and TSC start again.
    let (first, second) = (workload(42), workload(43));
    let mut w = RecordingWriter::new(Vec::new()).unwrap();
    let frames = first.frames[..first.frames.len() * 2 / 3].iter().chain(&second.frames);
    for (i, f) in frames.enumerate() {
        w.write_chunk(i as u64, f).unwrap();
    }
    let path = write("restart", &w.into_inner().unwrap());
    let j = stats_json(&path, &[]);
    assert_eq!(j["kernel_restarts"], 1);
    assert!(j["tasks_ended_by_restart"].as_u64().unwrap() > 0, "{j}");
    let warnings: Vec<&str> = j["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let restarts = warnings.iter().filter(|w| w.contains("kernel restarted")).count();
    assert_eq!(restarts, 1, "{warnings:#?}");
    assert!(
        !warnings
            .iter()
            .any(|w| w.contains("backwards") || w.contains("while task")),
        "the old boot bled into the new: {warnings:#?}"
    );
    // The second boot ran to its end: every one of its tasks completed.
    assert!(j["tasks_completed"].as_u64().unwrap() >= 303, "{j}");
}
