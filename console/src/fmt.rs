//! Human-readable numbers shared by the views and reports.

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
/// `sleeping(50ms)`, `trapped(unreachable)`, `killed(budget 400000000)`.
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
        S::Killed => format!("killed(budget {detail})"),
    }
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
}
