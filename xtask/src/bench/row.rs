//! One row of the bench: a figure of Lucid, of its anchor or both, as a bench program
//! prints it (a JSON line) or a kernel prints it on COM1 (`bench NAME VALUE UNIT`).

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::goal::{Goal, goal_for};
use crate::process;

/// One row as the bench program printed it, plus its goal.
#[derive(Debug)]
pub struct Row {
    pub(super) name: String,
    pub(super) lucid: Option<f64>,
    pub(super) anchor: Option<f64>,
    pub(super) ratio: Option<f64>,
    pub(super) unit: String,
    pub(super) goal: Option<Goal>,
}

impl Row {
    pub fn parse(line: &str) -> Result<Row> {
        let v: Value = serde_json::from_str(line).with_context(|| format!("bench printed {line:?}"))?;
        let name = v["name"].as_str().context("row without a name")?.to_string();
        let unit = v["unit"].as_str().unwrap_or("").to_string();
        let goal = goal_for(&name);
        Ok(Row {
            lucid: v["lucid"].as_f64(),
            anchor: v["anchor"].as_f64(),
            ratio: v["ratio"].as_f64(),
            goal,
            name,
            unit,
        })
    }

    pub fn met(&self) -> Option<bool> {
        self.goal?.met(self.lucid, self.ratio)
    }

    /// A row built here rather than printed by a bench program.
    pub fn new(name: &str, lucid: Option<f64>, anchor: Option<f64>, unit: &str) -> Row {
        let ratio = lucid.zip(anchor.filter(|&a| a != 0.0)).map(|(l, a)| l / a);
        Row {
            goal: goal_for(name),
            name: name.to_string(),
            lucid,
            anchor,
            ratio,
            unit: unit.to_string(),
        }
    }
}

/// `bench NAME VALUE UNIT` lines of a kernel's COM1 log.
pub fn parse_kernel_bench(com1: &str) -> Result<Vec<Row>> {
    com1.lines()
        .filter_map(|l| l.strip_prefix("bench "))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let (Some(name), Some(value), Some(unit)) = (parts.next(), parts.next(), parts.next()) else {
                bail!("malformed bench line {l:?}");
            };
            let value: f64 = value.parse().with_context(|| format!("bad value in {l:?}"))?;
            Row::parse(&serde_json::json!({ "name": name, "lucid": value, "unit": unit }).to_string())
        })
        .collect()
}

/// JSON lines of a bench program's stdout as rows.
fn parse_rows(stdout: &[u8]) -> Result<Vec<Row>> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(Row::parse)
        .collect()
}

/// Runs `cmd` (printed first), progress on stderr to the terminal, and returns its rows.
pub fn run_rows(cmd: &mut Command) -> Result<Vec<Row>> {
    process::show(cmd);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {program}"))?;
    if !out.status.success() {
        bail!("{program} failed: {}", out.status);
    }
    parse_rows(&out.stdout)
}

/// The figure a row named `name` carries in `column`.
pub fn figure_of(rows: &[Row], name: &str, column: fn(&Row) -> Option<f64>) -> Option<f64> {
    rows.iter().find(|r| r.name == name).and_then(column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_bench_lines_become_rows() {
        let rows = parse_kernel_bench(
            "[ 0.1] INFO boot\nbench wasm.guest_vs_native 1.500 x\nbench wasm.instantiate_us 12.000 us\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "wasm.guest_vs_native");
        assert_eq!(rows[0].lucid, Some(1.5));
        assert_eq!(rows[1].unit, "us");
        assert!(parse_kernel_bench("bench wasm.x notanumber x\n").is_err());
        assert!(parse_kernel_bench("bench wasm.x\n").is_err());
    }
}
