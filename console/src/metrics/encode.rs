//! The metrics a [`State`] exports. Counters come from session totals that never
//! shrink (pruning drops completed tasks, not these), so they are monotonic and equal
//! what `lucid stats --json` reports for the same bytes.

use lucid_protocol::{MessageKind, ResourceKind, TaskKind, WasmState};

use super::text::{Exposition, Kind};
use crate::state::{
    Cpu, Hostcall, LatencyHistogram, OTHER_HOSTCALLS, OTHER_TRAP_CODES, State, TaskStatus, WarningKind, WasmInstance,
};
use crate::time::Ticks;

/// `instance` label value when neither a name nor the kernel's build id is known.
pub const DEFAULT_INSTANCE: &str = "lucid";

/// The `instance` label: `explicit` if given, else the kernel's build id from its
/// `Hello`, else [`DEFAULT_INSTANCE`].
#[must_use]
pub fn instance_name(explicit: Option<&str>, state: &State) -> String {
    explicit
        .map(str::to_string)
        .or_else(|| state.kernel.as_ref().map(|k| k.build_id.clone()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_INSTANCE.to_string())
}

/// The text exposition of `state`, every sample labelled `instance="<instance>"`.
#[must_use]
pub fn render(state: &State, instance: &str) -> String {
    let mut e = Exposition::new(instance);
    kernel(&mut e, state);
    scheduler(&mut e, state);
    tasks(&mut e, state);
    resources(&mut e, state);
    health(&mut e, state);
    wasm(&mut e, state);
    e.finish()
}

fn seconds(state: &State, ticks: u64) -> f64 {
    state.clock().secs_f64(Ticks(ticks))
}

fn kernel(e: &mut Exposition, s: &State) {
    if let Some(k) = &s.kernel {
        e.family(
            "lucid_kernel_info",
            Kind::Gauge,
            "The kernel's Hello: build id, protocol version, CPUs.",
        );
        let protocol = format!("{}.{}", k.version.0, k.version.1);
        let cpus = k.cpus.to_string();
        e.sample(
            "lucid_kernel_info",
            &[("build_id", &k.build_id), ("protocol", &protocol), ("cpus", &cpus)],
            1,
        );
    }
    e.family(
        "lucid_events_total",
        Kind::Counter,
        "Trace events decoded, by message kind.",
    );
    for k in MessageKind::ALL {
        let n = s.events_by_kind.get(k).copied().unwrap_or(0);
        e.sample("lucid_events_total", &[("kind", k.name())], n);
    }
}

fn scheduler(e: &mut Exposition, s: &State) {
    type PerCpu = (&'static str, &'static str, fn(&Cpu) -> u64);
    let per_cpu: [PerCpu; 7] = [
        ("lucid_polls_total", "Polls started.", |c| c.totals.polls),
        ("lucid_wakes_total", "Task wakes.", |c| c.totals.wakes),
        ("lucid_tasks_spawned_total", "Tasks spawned.", |c| c.totals.spawns),
        ("lucid_tasks_completed_total", "Tasks completed (any outcome).", |c| {
            c.totals.completions
        }),
        (
            "lucid_tasks_cancelled_total",
            "Tasks that ended cancelled (completed as cancelled, or dropped unfinished).",
            |c| c.totals.cancellations,
        ),
        (
            "lucid_steals_total",
            "Tasks this CPU stole from another CPU's run queue.",
            |c| c.steals_in,
        ),
        (
            "lucid_dropped_events_total",
            "Events the kernel dropped on this CPU's rings (its Loss reports).",
            |c| c.dropped,
        ),
    ];
    for (name, help, value) in per_cpu {
        e.family(name, Kind::Counter, help);
        for (cpu, c) in &s.cpus {
            e.sample(name, &[("cpu", &cpu.to_string())], value(c));
        }
    }
    let per_cpu_seconds: [PerCpu; 2] = [
        ("lucid_cpu_busy_seconds_total", "Time spent in polls.", |c| {
            c.busy_ticks.get()
        }),
        (
            "lucid_cpu_idle_seconds_total",
            "Time between CpuIdle and CpuBusy (an idle period counts once it ends).",
            |c| c.idle_ticks.get(),
        ),
    ];
    for (name, help, ticks) in per_cpu_seconds {
        e.family(name, Kind::Counter, help);
        for (cpu, c) in &s.cpus {
            e.sample_f64(name, &[("cpu", &cpu.to_string())], seconds(s, ticks(c)));
        }
    }
    e.family(
        "lucid_run_queue_depth",
        Kind::Gauge,
        "Tasks in the run queue at the latest sample.",
    );
    for (cpu, c) in &s.cpus {
        if let Some(d) = c.run_queue_depth() {
            e.sample("lucid_run_queue_depth", &[("cpu", &cpu.to_string())], u64::from(d));
        }
    }
    e.family("lucid_poll_duration_seconds", Kind::Histogram, "Duration of one poll.");
    for (cpu, c) in &s.cpus {
        latency(
            e,
            "lucid_poll_duration_seconds",
            &[("cpu", &cpu.to_string())],
            &c.totals.poll_latency,
        );
    }
    e.family(
        "lucid_scheduling_latency_seconds",
        Kind::Histogram,
        "Time from a task's wake to the start of its next poll.",
    );
    for (cpu, c) in &s.cpus {
        latency(
            e,
            "lucid_scheduling_latency_seconds",
            &[("cpu", &cpu.to_string())],
            &c.totals.sched_latency,
        );
    }
}

fn latency(e: &mut Exposition, name: &str, labels: &[(&str, &str)], h: &LatencyHistogram) {
    e.histogram(
        name,
        labels,
        h.cumulative().map(|(ns, n)| (ns as f64 / 1e9, n)),
        h.sum_ns() as f64 / 1e9,
        h.count(),
    );
}

fn tasks(e: &mut Exposition, s: &State) {
    const KINDS: [(TaskKind, &str); 2] = [(TaskKind::Kernel, "kernel"), (TaskKind::Wasm, "wasm")];
    const STATES: [TaskStatus; 3] = [TaskStatus::Running, TaskStatus::Scheduled, TaskStatus::Idle];
    let mut live = [[0u64; STATES.len()]; KINDS.len()];
    for t in s.tasks.values() {
        let kind = KINDS.iter().position(|(k, _)| *k == t.kind);
        let status = STATES.iter().position(|st| *st == t.status);
        if let (Some(k), Some(st)) = (kind, status) {
            live[k][st] += 1;
        }
    }
    e.family(
        "lucid_tasks",
        Kind::Gauge,
        "Live (not completed) tasks by kind and state.",
    );
    for (k, (_, kind)) in KINDS.iter().enumerate() {
        for (st, status) in STATES.iter().enumerate() {
            e.sample("lucid_tasks", &[("kind", kind), ("state", status.name())], live[k][st]);
        }
    }
}

fn resources(e: &mut Exposition, s: &State) {
    let res = &s.resources;
    let mut live = [0u64; ResourceKind::ALL.len()];
    for r in res.live.values() {
        live[r.kind as usize] += 1;
    }
    e.family(
        "lucid_resources",
        Kind::Gauge,
        "Live resources tasks can wait on, by kind.",
    );
    for (k, n) in ResourceKind::ALL.iter().zip(live) {
        e.sample("lucid_resources", &[("kind", k.name())], n);
    }
    let waiting = res.waiting_by_kind();
    e.family(
        "lucid_tasks_waiting",
        Kind::Gauge,
        "Tasks waiting on a resource, by the resource's kind (unknown: created before the stream).",
    );
    for k in ResourceKind::ALL {
        let n = waiting.get(&Some(k)).copied().unwrap_or(0);
        e.sample("lucid_tasks_waiting", &[("kind", k.name())], n);
    }
    let unknown = waiting.get(&None).copied().unwrap_or(0);
    e.sample("lucid_tasks_waiting", &[("kind", "unknown")], unknown);
    e.family("lucid_waits_total", Kind::Counter, "Waits begun on resources.");
    e.sample("lucid_waits_total", &[], res.waits_begun);
}

fn health(e: &mut Exposition, s: &State) {
    let h = &s.health;
    let counters = [
        (
            "lucid_sequence_gaps_total",
            "Sequence discontinuities between frames.",
            h.sequence_gaps,
        ),
        (
            "lucid_missing_frames_total",
            "Frames missing according to the sequence gaps.",
            h.missing_frames,
        ),
        (
            "lucid_crc_errors_total",
            "Frames rejected for a CRC mismatch.",
            h.crc_errors,
        ),
        (
            "lucid_malformed_frames_total",
            "Frames rejected as malformed (COBS, size, records).",
            h.malformed_frames,
        ),
        (
            "lucid_stream_restarts_total",
            "Streams that restarted at sequence 0.",
            h.restarts,
        ),
        (
            "lucid_kernel_restarts_total",
            "Kernel restarts: boots of the stream after the first.",
            s.kernel_restarts,
        ),
    ];
    for (name, help, v) in counters {
        e.family(name, Kind::Counter, help);
        e.sample(name, &[], v);
    }
    e.family(
        "lucid_warnings_total",
        Kind::Counter,
        "Warnings raised by the console, by kind.",
    );
    for k in WarningKind::ALL {
        let n = s.warning_counts.get(&k).copied().unwrap_or(0);
        e.sample("lucid_warnings_total", &[("kind", &label(k.name()))], n);
    }
}

/// A display name as a label value: `self-wake storm` → `self_wake_storm`.
fn label(name: &str) -> String {
    name.replace([' ', '-'], "_")
}

fn wasm_state(s: WasmState) -> &'static str {
    match s {
        WasmState::Created => "created",
        WasmState::Running => "running",
        WasmState::Suspended => "suspended",
        WasmState::Trapped => "trapped",
        WasmState::Exited => "exited",
        WasmState::Blocked => "blocked",
        WasmState::Sleeping => "sleeping",
        WasmState::Killed => "killed",
    }
}

fn wasm(e: &mut Exposition, s: &State) {
    e.family("lucid_wasm_instances", Kind::Gauge, "Wasm instances by state.");
    for st in WasmState::ALL {
        let n = s.wasm.values().filter(|w| w.state == st).count();
        e.sample("lucid_wasm_instances", &[("state", wasm_state(st))], n as u64);
    }
    let ids: Vec<(String, &WasmInstance)> = s.wasm.iter().map(|(id, w)| (id.to_string(), w)).collect();
    e.family("lucid_wasm_memory_bytes", Kind::Gauge, "Linear memory size.");
    for (id, w) in &ids {
        let labels = [("wasm_instance", id.as_str()), ("module", w.module.as_str())];
        e.sample("lucid_wasm_memory_bytes", &labels, u64::from(w.memory_pages) * 65_536);
    }
    e.family("lucid_wasm_fuel_consumed_total", Kind::Counter, "Fuel consumed.");
    for (id, w) in &ids {
        let labels = [("wasm_instance", id.as_str()), ("module", w.module.as_str())];
        e.sample("lucid_wasm_fuel_consumed_total", &labels, w.fuel);
    }
    e.family("lucid_wasm_slices_total", Kind::Counter, "Fuel slices run.");
    for (id, w) in &ids {
        let labels = [("wasm_instance", id.as_str()), ("module", w.module.as_str())];
        e.sample("lucid_wasm_slices_total", &labels, w.slices);
    }
    e.family("lucid_wasm_traps_total", Kind::Counter, "Traps by trap code.");
    for (id, w) in &ids {
        for (code, n) in &w.traps_by_code {
            let code = if *code == OTHER_TRAP_CODES {
                "other".to_string()
            } else {
                lucid_protocol::wasm_trap_name(*code).into_owned()
            };
            let labels = [
                ("wasm_instance", id.as_str()),
                ("module", w.module.as_str()),
                ("code", &code),
            ];
            e.sample("lucid_wasm_traps_total", &labels, *n);
        }
    }
    e.family(
        "lucid_wasm_hostcalls_total",
        Kind::Counter,
        "Hostcalls by hostcall number.",
    );
    each_hostcall(&ids, |labels, h| {
        e.sample("lucid_wasm_hostcalls_total", labels, h.calls)
    });
    e.family(
        "lucid_wasm_hostcall_duration_seconds",
        Kind::Histogram,
        "Hostcall latency; the kernel reports batches, so each call counts at its batch's mean.",
    );
    each_hostcall(&ids, |labels, h| {
        // The sum from the reported ticks, exact where the per-batch means round.
        e.histogram(
            "lucid_wasm_hostcall_duration_seconds",
            labels,
            h.latency.cumulative().map(|(ns, n)| (ns as f64 / 1e9, n)),
            seconds(s, h.ticks),
            h.latency.count(),
        );
    });
}

/// Calls `f` with the labels (instance, module, hostcall) and the figures of every
/// hostcall kind of every instance.
fn each_hostcall(ids: &[(String, &WasmInstance)], mut f: impl FnMut(&[(&str, &str)], &Hostcall)) {
    for (id, w) in ids {
        for (num, h) in &w.hostcalls {
            let hostcall = hostcall_label(*num);
            f(
                &[
                    ("wasm_instance", id.as_str()),
                    ("module", w.module.as_str()),
                    ("hostcall", &hostcall),
                ],
                h,
            );
        }
    }
}

fn hostcall_label(num: u32) -> String {
    if num == OTHER_HOSTCALLS {
        "other".to_string()
    } else {
        lucid_protocol::wasm_hostcall_name(num).into_owned()
    }
}
