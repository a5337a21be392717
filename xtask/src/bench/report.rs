//! The bench's output: `report.json` (one object a row, with its goal and whether it
//! is met) and the same rows as a Markdown table with the machine they ran on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::{goal::Goal, row::Row};

/// A row of `report.json`, fields in the order issue 8 lists them.
#[derive(Debug, Serialize)]
struct ReportRow<'a> {
    name: &'a str,
    lucid: Option<f64>,
    anchor: Option<f64>,
    ratio: Option<f64>,
    unit: &'a str,
    goal: Option<String>,
    met: Option<bool>,
}

impl Row {
    fn report(&self) -> ReportRow<'_> {
        ReportRow {
            name: &self.name,
            lucid: self.lucid,
            anchor: self.anchor,
            ratio: self.ratio,
            unit: &self.unit,
            goal: self.goal.map(Goal::text),
            met: self.met(),
        }
    }
}

/// Writes `dir/report.json` and returns its path.
pub fn write(dir: &Path, rows: &[Row]) -> Result<PathBuf> {
    let report = dir.join("report.json");
    let json = serde_json::to_string_pretty(&rows.iter().map(Row::report).collect::<Vec<_>>())?;
    std::fs::write(&report, json + "\n").with_context(|| format!("write {}", report.display()))?;
    Ok(report)
}

/// A figure with as many decimals as its size deserves.
fn figure(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(v) if v.abs() >= 1000.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        // Small ratios (a trace rate far below the link's) would read as 0.00.
        Some(v) if v != 0.0 && v.abs() < 0.1 => format!("{v:.4}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// The rows as a Markdown table (readable in a terminal, pasteable into docs/benchmarks.md).
pub fn table(rows: &[Row]) -> String {
    let header = ["row", "Lucid", "anchor", "ratio", "unit", "goal", "met"].map(String::from);
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                figure(r.lucid),
                figure(r.anchor),
                r.ratio.map_or("-".to_string(), |x| figure(Some(x))),
                r.unit.clone(),
                r.goal.map_or("-".to_string(), Goal::text),
                match r.met() {
                    Some(true) => "yes".to_string(),
                    Some(false) => "NO".to_string(),
                    None => "-".to_string(),
                },
            ]
        })
        .collect();
    let mut width = header.clone().map(|h| h.len());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String; 7]| {
        let mut s = String::from("|");
        for (i, (c, w)) in row.iter().zip(width).enumerate() {
            // Text left, figures right.
            if i == 0 || i >= 4 {
                s.push_str(&format!(" {c:<w$} |"));
            } else {
                s.push_str(&format!(" {c:>w$} |"));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header);
    out.push('|');
    for (i, w) in width.iter().enumerate() {
        let dashes = "-".repeat(*w);
        if i == 0 || i >= 4 {
            out.push_str(&format!(" {dashes} |"));
        } else {
            out.push_str(&format!(" {}: |", &dashes[1..]));
        }
    }
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}

/// `nproc` and the CPU model, for the report's context line.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    format!("{cpus} CPUs, {model}")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn a_row_round_trips_into_the_report_with_its_goal() {
        let row = Row::parse(
            r#"{"name":"trace.spawn_join.overhead_ns_per_poll","lucid":30.5,"anchor":null,"ratio":null,"unit":"ns/poll"}"#,
        )
        .unwrap();
        assert_eq!(row.met(), Some(false));
        let json = serde_json::to_value(row.report()).unwrap();
        assert_eq!(json["goal"], "<= 25");
        assert_eq!(json["met"], false);
        assert_eq!(json["anchor"], Value::Null);
        assert_eq!(json["lucid"], 30.5);

        let row = Row::parse(r#"{"name":"bytes.x.poll_end","lucid":5.9,"anchor":null,"ratio":null,"unit":"B/event"}"#)
            .unwrap();
        assert_eq!(row.met(), Some(true));
        let row = Row::parse(
            r#"{"name":"spawn_join.1cpu.tasks_per_s","lucid":2.0,"anchor":4.0,"ratio":0.5,"unit":"tasks/s"}"#,
        )
        .unwrap();
        assert_eq!(row.met(), Some(false), "half tokio's rate");
        let row =
            Row::parse(r#"{"name":"spawn_join.1cpu.ns_per_poll","lucid":2.0,"anchor":4.0,"ratio":0.5,"unit":"ns"}"#)
                .unwrap();
        assert_eq!(row.met(), None);
        assert_eq!(serde_json::to_value(row.report()).unwrap()["met"], Value::Null);
        assert!(Row::parse("not json").is_err());
    }

    #[test]
    fn the_table_has_one_line_per_row_and_marks_missed_goals() {
        let rows = [
            r#"{"name":"trace.a.overhead_ns_per_poll","lucid":30.0,"anchor":null,"ratio":null,"unit":"ns/poll"}"#,
            r#"{"name":"spawn_join.1cpu.tasks_per_s","lucid":600000.0,"anchor":400000.0,"ratio":1.5,"unit":"tasks/s"}"#,
        ]
        .map(|l| Row::parse(l).unwrap());
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[2].contains("NO"), "{t}");
        assert!(lines[3].contains("600000") && lines[3].contains("1.50"), "{t}");
        assert!(
            lines.iter().all(|l| l.chars().count() == lines[0].chars().count()),
            "{t}"
        );
    }
}
