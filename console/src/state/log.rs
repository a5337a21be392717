//! Tracing events as log lines, and the callsites they refer to.

use std::fmt::Write as _;

use lucid_protocol::{Callsite, CallsiteKind, Level, TraceEvent, Value};
use serde::{Deserialize, Serialize};

use super::State;
use crate::time::Ticks;

/// Log lines kept.
pub const MAX_LOGS: usize = 10_000;
/// Callsites kept; a kernel registers each once, so more means a broken stream.
pub const MAX_CALLSITES: usize = 65_536;

/// A registered callsite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallsiteInfo {
    /// Event or span.
    pub kind: CallsiteKind,
    /// Level.
    pub level: Level,
    /// Name.
    pub name: String,
    /// Target.
    pub target: String,
    /// `file:line`.
    pub location: String,
    /// Field names.
    pub fields: Vec<String>,
}

/// One tracing event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Trace time.
    pub ts: Ticks,
    /// CPU of the stream that carried it.
    pub cpu: u32,
    /// Level (`None` when the callsite is unknown).
    pub level: Option<Level>,
    /// Target (empty when the callsite is unknown).
    pub target: String,
    /// The `message` field first, then `name=value` for the others.
    pub text: String,
}

/// Short level name.
#[must_use]
pub const fn level_name(l: Option<Level>) -> &'static str {
    match l {
        Some(Level::Trace) => "TRACE",
        Some(Level::Debug) => "DEBUG",
        Some(Level::Info) => "INFO",
        Some(Level::Warn) => "WARN",
        Some(Level::Error) => "ERROR",
        None => "?",
    }
}

fn write_value(o: &mut String, v: &Value<'_>) {
    let _ = match v {
        Value::Bool(b) => write!(o, "{b}"),
        Value::U64(n) => write!(o, "{n}"),
        Value::I64(n) => write!(o, "{n}"),
        Value::F64(n) => write!(o, "{n}"),
        Value::Str(s) => write!(o, "{s}"),
    };
}

impl State {
    pub(super) fn register_callsite(&mut self, c: &Callsite<'_>) {
        if self.callsites.len() >= MAX_CALLSITES && !self.callsites.contains_key(&c.id) {
            self.callsites_ignored = self.callsites_ignored.saturating_add(1);
            if self.callsites_ignored == 1 {
                self.warn(super::Warning::new(
                    super::WarningKind::Inconsistent,
                    format!("more than {MAX_CALLSITES} callsites registered: further ones are ignored (and counted)"),
                ));
            }
            return;
        }
        self.callsites.insert(
            c.id,
            CallsiteInfo {
                kind: c.kind,
                level: c.level,
                name: c.name.to_string(),
                target: c.target.to_string(),
                location: format!("{}:{}", c.file, c.line),
                fields: c.fields.iter().map(str::to_string).collect(),
            },
        );
    }

    pub(super) fn log(&mut self, cpu: u32, ts: u64, e: &TraceEvent<'_>) {
        let site = self.callsites.get(&e.callsite);
        let mut text = String::new();
        let mut rest = String::new();
        for (i, v) in e.values.iter().enumerate() {
            let name = site.and_then(|s| s.fields.get(i)).map(String::as_str);
            if name == Some("message") {
                write_value(&mut text, &v);
            } else {
                let _ = write!(rest, " {}=", name.unwrap_or("?"));
                write_value(&mut rest, &v);
            }
        }
        if text.is_empty() {
            text = site.map_or_else(|| format!("callsite {}", e.callsite), |s| s.name.clone());
        }
        text.push_str(&rest);
        let line = LogLine {
            ts: Ticks(ts),
            cpu,
            level: site.map(|s| s.level),
            target: site.map(|s| s.target.clone()).unwrap_or_default(),
            text,
        };
        if self.logs.len() >= MAX_LOGS {
            self.logs.pop_front();
            self.logs_dropped += 1;
        }
        self.logs.push_back(line);
    }
}
