//! The counters Prometheus stored for one console against `lucid stats --json` of
//! that console's recording.

use anyhow::{Context, Result};
use serde_json::Value;

use super::prometheus::Prometheus;

/// Counters in Prometheus for `instance` against `lucid stats --json` of its recording.
pub fn counters_match(prom: &Prometheus, instance: &str, stats: &Value) -> Result<Vec<String>> {
    let total = |metric: &str| -> Result<f64> {
        let r = prom.query(&format!("sum({metric}{{instance=\"{instance}\"}})"))?;
        Ok(r.first().map_or(f64::NAN, |s| s.value))
    };
    let kind = |k: &str| stats["events_by_kind"][k].as_f64().unwrap_or(f64::NAN);
    let field = |k: &str| stats[k].as_f64().unwrap_or(f64::NAN);
    let pairs = [
        ("lucid_tasks_spawned_total", field("tasks")),
        ("lucid_tasks_completed_total", field("tasks_completed")),
        ("lucid_dropped_events_total", field("dropped_events")),
        ("lucid_sequence_gaps_total", field("sequence_gaps")),
        ("lucid_missing_frames_total", field("missing_frames")),
        ("lucid_crc_errors_total", field("crc_errors")),
        ("lucid_malformed_frames_total", field("malformed_frames")),
        ("lucid_events_total", field("events")),
        ("lucid_polls_total", kind("poll_start")),
        ("lucid_wakes_total", kind("wake")),
        ("lucid_steals_total", kind("steal")),
        ("lucid_poll_duration_seconds_count", kind("poll_end")),
    ];
    let mut wrong = Vec::new();
    for (metric, expected) in pairs {
        let got = total(metric)?;
        if got != expected {
            wrong.push(format!("{metric}: Prometheus {got}, lucid stats {expected}"));
        }
    }
    // One memory series per instance; `count` of nothing is no result, not 0.
    let instances = prom.query(&format!("lucid_wasm_memory_bytes{{instance=\"{instance}\"}}"))?;
    if Some(instances.len() as f64) != stats["wasm_instances"].as_f64() {
        wrong.push(format!(
            "wasm instances: Prometheus {}, lucid stats {}",
            instances.len(),
            stats["wasm_instances"]
        ));
    }
    let by_kind = prom.query(&format!("lucid_events_total{{instance=\"{instance}\"}}"))?;
    let kinds = stats["events_by_kind"].as_object().context("events_by_kind")?;
    for (k, n) in kinds {
        let got = by_kind
            .iter()
            .find(|s| s.labels.get("kind") == Some(k))
            .map_or(f64::NAN, |s| s.value);
        if Some(got) != n.as_f64() {
            wrong.push(format!(
                "lucid_events_total{{kind=\"{k}\"}}: Prometheus {got}, lucid stats {n}"
            ));
        }
    }
    Ok(wrong)
}
