//! The test kernel's line protocol on COM1: `KTEST PLAN n`, `KTEST START i name`,
//! `KTEST PASS i name detail`, `KTEST FAIL i name: reason`, `KTEST DONE`.

/// One parsed line of the kernel's test protocol.
pub enum Report {
    Plan(usize),
    Start(usize, String),
    Pass(usize, String, String),
    Fail(usize, String, String),
    Done,
}

pub fn parse(line: &str) -> Option<Report> {
    let rest = line.trim_end().strip_prefix("KTEST ")?;
    let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let (index, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let index: Option<usize> = index.parse().ok();
    match kind {
        "PLAN" => index.map(Report::Plan),
        "DONE" => Some(Report::Done),
        "START" => Some(Report::Start(index?, rest.to_string())),
        "PASS" => {
            let (name, detail) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(Report::Pass(index?, name.to_string(), detail.to_string()))
        }
        "FAIL" => {
            let (name, reason) = rest.split_once(": ").unwrap_or((rest, ""));
            Some(Report::Fail(index?, name.to_string(), reason.to_string()))
        }
        _ => None,
    }
}

/// A passing test's detail as shown: its time in microseconds, or its note.
pub fn pretty_detail(detail: &str) -> String {
    match detail.split_once(' ') {
        None => detail
            .parse::<u64>()
            .map(|us| format!("({:.1} ms)", us as f64 / 1000.0))
            .unwrap_or_default(),
        Some((_, note)) => note.to_string(),
    }
}
