//! Human-readable numbers shared by the views and reports.

use std::time::Duration;

/// A duration in nanoseconds with three significant digits and a unit
/// (`950ns`, `12.3µs`, `4.56ms`, `1.20s`).
#[must_use]
pub fn duration_ns(ns: u64) -> String {
    let ns_f = ns as f64;
    let (v, unit) = if ns < 1_000 {
        return format!("{ns}ns");
    } else if ns < 1_000_000 {
        (ns_f / 1e3, "µs")
    } else if ns < 1_000_000_000 {
        (ns_f / 1e6, "ms")
    } else {
        (ns_f / 1e9, "s")
    };
    if v >= 100.0 {
        format!("{v:.0}{unit}")
    } else if v >= 10.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.2}{unit}")
    }
}

/// A wasm instance state with what it is about: `exited(3)`, `blocked(chan_recv)`,
/// `sleeping(50ms)`, `trapped(unreachable)`, `killed(memory)`.
#[must_use]
pub fn wasm_state(state: lucid_protocol::WasmState, detail: u64) -> String {
    use lucid_protocol::WasmState as S;
    match state {
        S::Created => "created".into(),
        S::Running => "running".into(),
        S::Suspended => "suspended".into(),
        S::Trapped => format!("trapped({})", lucid_protocol::wasm_trap_name(detail as u32)),
        S::Exited => format!("exited({})", detail as u32 as i32),
        S::Blocked => format!("blocked({})", lucid_protocol::wasm_hostcall_name(detail as u32)),
        S::Sleeping => format!("sleeping({})", duration_ns(detail)),
        S::Killed => match lucid_protocol::wasm_kill_reason_name(detail) {
            Some(reason) => format!("killed({reason})"),
            // An older kernel's detail: the fuel budget it was killed at.
            None => format!("killed(budget {detail})"),
        },
    }
}

/// `90`, `90s`, `500ms`, `2m`, `1h`, `1.5s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 60s or 500ms"))?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1e3,
        "us" | "µs" => v / 1e6,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_precision() {
        assert_eq!(duration_ns(950), "950ns");
        assert_eq!(duration_ns(12_345), "12.3µs");
        assert_eq!(duration_ns(4_560_000), "4.56ms");
        assert_eq!(duration_ns(1_200_000_000), "1.20s");
        assert_eq!(duration_ns(250_000_000_000), "250s");
    }

    #[test]
    fn a_killed_instance_names_its_reason() {
        use lucid_protocol::WasmState;
        assert_eq!(wasm_state(WasmState::Killed, 2), "killed(memory)");
        assert_eq!(wasm_state(WasmState::Killed, 4), "killed(log)");
        assert_eq!(wasm_state(WasmState::Killed, 0), "killed(cancelled)");
        // An older kernel sent the fuel budget.
        assert_eq!(wasm_state(WasmState::Killed, 100_000_000), "killed(budget 100000000)");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("3 parsecs").is_err());
    }
}
