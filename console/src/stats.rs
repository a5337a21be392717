//! `lucid stats`: a summary of a whole stream.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use lucid_protocol::{DecoderStats, MessageKind};
use serde::{Deserialize, Serialize};

use crate::pipeline::Pipeline;
use crate::source::{Source, SourceError};
use crate::state::{PanicRecord, State};
use crate::time::Ticks;

/// Everything read from a source until its end or the first damage.
#[derive(Debug)]
pub struct Collected {
    /// The state the stream built.
    pub state: State,
    /// The decoder's counters.
    pub decoder: DecoderStats,
    /// Why reading stopped early, if it did; everything before it is in `state`.
    pub damage: Option<SourceError>,
}

/// Decodes a whole source into a [`State`].
pub fn collect(source: &mut dyn Source) -> Collected {
    let mut state = State::new();
    let mut pipeline = Pipeline::new();
    let damage = loop {
        match source.next_chunk() {
            Ok(Some(chunk)) => {
                pipeline.feed_into(&mut state, chunk.rx, &chunk.data);
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    pipeline.finish_into(&mut state);
    Collected {
        state,
        decoder: *pipeline.decoder().stats(),
        damage,
    }
}

/// Where a damaged source stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Damage {
    /// Byte offset in the source.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

/// The kernel's self-description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kernel {
    /// Protocol version `major.minor`.
    pub protocol: String,
    /// Build id.
    pub build_id: String,
    /// TSC frequency.
    pub tsc_hz: u64,
    /// CPUs it reported.
    pub cpus: u32,
}

/// One wasm instance in [`Summary::wasm`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WasmSummary {
    /// Instance id.
    pub instance: lucid_protocol::InstanceId,
    /// Module name.
    pub module: String,
    /// The task that runs it.
    pub task: lucid_protocol::TaskId,
    /// Its last state with what it is about, e.g. `exited(3)`, `blocked(chan_recv)`.
    pub state: String,
    /// Linear memory now, in 64 KiB pages.
    pub memory_pages: u32,
    /// Memory growths seen.
    pub memory_grows: u64,
    /// Fuel consumed.
    pub fuel: u64,
    /// Time slices run.
    pub slices: u64,
    /// Hostcalls by name: calls and total nanoseconds.
    pub hostcalls: BTreeMap<String, HostcallSummary>,
    /// Traps.
    pub traps: u64,
    /// The last trap's reason.
    pub last_trap: Option<String>,
    /// The last lines it wrote to stderr, once it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// Its WASI arguments, `argv[0]` first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Its WASI environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

/// Calls of one hostcall.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HostcallSummary {
    /// Calls.
    pub calls: u64,
    /// Nanoseconds spent in them (blocking included).
    pub total_ns: u64,
}

impl WasmSummary {
    fn new(s: &crate::state::State, instance: lucid_protocol::InstanceId, w: &crate::state::WasmInstance) -> Self {
        Self {
            instance,
            module: w.module.clone(),
            task: w.task,
            state: w.state_text(),
            memory_pages: w.memory_pages,
            memory_grows: w.memory_grows,
            fuel: w.fuel,
            slices: w.slices,
            hostcalls: w
                .hostcalls
                .iter()
                .map(|(&n, h)| {
                    let summary = HostcallSummary {
                        calls: h.calls,
                        total_ns: s.clock().ns(Ticks(h.ticks)),
                    };
                    (lucid_protocol::wasm_hostcall_name(n).into_owned(), summary)
                })
                .collect(),
            traps: w.traps,
            last_trap: w.last_trap.clone(),
            stderr_tail: w.stderr_tail.clone(),
            args: w.args.clone(),
            env: w.env.clone(),
        }
    }
}

/// Resources at the end of the stream, and the waits over it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceSummary {
    /// Resources live at the end.
    pub live: u64,
    /// Of those, by kind (`chan`, `join`, `timer`…).
    pub live_by_kind: BTreeMap<&'static str, u64>,
    /// `ResourceCreated` messages.
    pub created: u64,
    /// `ResourceDropped` messages.
    pub dropped: u64,
    /// Waits begun.
    pub waits_begun: u64,
    /// Waits that ended ready.
    pub waits_ready: u64,
    /// Waits that ended cancelled.
    pub waits_cancelled: u64,
    /// Waits that timed out.
    pub waits_timed_out: u64,
    /// Operations the kernel counted on resources (`send`, `recv`, `acquire`,
    /// `lock`), over the stream.
    pub ops: BTreeMap<&'static str, u64>,
}

/// A deadlock the stream showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadlockSummary {
    /// Its tasks, each waiting on the next (the last on the first).
    pub tasks: Vec<lucid_protocol::TaskId>,
    /// Their names.
    pub names: Vec<String>,
    /// The resources they wait on (`join#9`), in the same order.
    pub resources: Vec<String>,
    /// Nanoseconds of trace time from the cycle closing to the warning.
    pub detected_after_ns: u64,
}

/// A wait in progress at the end of the stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaitSummary {
    /// The waiting task.
    pub task: lucid_protocol::TaskId,
    /// Its name (empty if unknown).
    pub name: String,
    /// The resource it waits on.
    pub resource: lucid_protocol::ResourceId,
    /// `chan#12 ping`.
    pub label: String,
    /// The resource's kind (`?` if created before the stream began).
    pub kind: &'static str,
    /// The operation (`recv`, `join`…).
    pub op: &'static str,
    /// How long it has waited, in nanoseconds of trace time.
    pub for_ns: u64,
    /// Where the resource was created (empty if unknown).
    pub location: String,
    /// The task's await stack when it is parked in frames (`rounds › chan#12 pong
    /// recv`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// Who holds the resource's senders (`task 7 (ping), 1 unknown`), when the
    /// kernel tracks them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
}

fn resource_summary(s: &State) -> (ResourceSummary, Vec<WaitSummary>) {
    let r = &s.resources;
    let mut live_by_kind = BTreeMap::new();
    for res in r.live.values() {
        *live_by_kind.entry(res.kind.name()).or_default() += 1;
    }
    let now = s.now();
    let waits = r
        .waits
        .iter()
        .flat_map(|(&task, ws)| ws.iter().map(move |w| (task, w)))
        .map(|(task, w)| {
            let res = r.get(w.resource);
            WaitSummary {
                task,
                name: s.tasks.get(&task).map(|t| t.name.to_string()).unwrap_or_default(),
                resource: w.resource,
                label: r.label(w.resource),
                kind: res.map_or("?", |x| x.kind.name()),
                op: w.op.name(),
                for_ns: s.clock().ns(now.saturating_sub(w.since)),
                location: res.map(|x| x.location.clone()).unwrap_or_default(),
                stack: r.await_stack(task),
                held_by: res
                    .and_then(|x| x.holders.as_ref())
                    .map(|h| h.text(|t| s.task_label(t))),
            }
        })
        .collect();
    let summary = ResourceSummary {
        live: r.live.len() as u64,
        live_by_kind,
        created: r.created,
        dropped: r.dropped,
        waits_begun: r.waits_begun,
        waits_ready: r.waits_ended[0],
        waits_cancelled: r.waits_ended[1],
        waits_timed_out: r.waits_ended[2],
        ops: r.ops.iter().map(|(op, &n)| (op.name(), n)).collect(),
    };
    (summary, waits)
}

/// The summary `lucid stats` prints (`--json` prints exactly this object).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Events decoded.
    pub events: u64,
    /// Events decoded by kind (every kind, zero included).
    pub events_by_kind: BTreeMap<&'static str, u64>,
    /// Tasks spawned.
    pub tasks: u64,
    /// Tasks completed.
    pub tasks_completed: u64,
    /// Task panics the kernel contained.
    pub task_panics: u64,
    /// The first of them (up to the state's `MAX_PANICS`), oldest first.
    pub panics: Vec<PanicRecord>,
    /// Tasks known only from their events, with no name or spawn location: spawned
    /// before the stream began and gone before a snapshot listed them.
    pub tasks_unnamed: u64,
    /// Of those, the ones not finished and first seen before the latest snapshot
    /// answer was read: a task alive then is named by the answer, so on a kernel that
    /// answers this stays 0. (A task first seen after it whose spawn is missing was
    /// spawned as the stream was cut or its spawn was lost: counted above only.)
    pub tasks_unnamed_unfinished: u64,
    /// Tasks dropped to stay within the console's task cap (`MAX_TASKS`): the counts
    /// above include them, `tasks_unnamed` and the views do not.
    pub tasks_evicted: u64,
    /// Wasm instances dropped to stay within the console's cap (`MAX_INSTANCES`).
    pub wasm_instances_evicted: u64,
    /// CPUs that sent events.
    pub cpus: u64,
    /// Kernel restarts in the stream: boots after the first (each a warning too).
    pub kernel_restarts: u64,
    /// Tasks alive when their kernel restarted, ended with it.
    pub tasks_ended_by_restart: u64,
    /// Sequence discontinuities.
    pub sequence_gaps: u64,
    /// Frames missing according to them.
    pub missing_frames: u64,
    /// Frames rejected for a CRC mismatch.
    pub crc_errors: u64,
    /// Frames rejected as malformed (COBS, size, records).
    pub malformed_frames: u64,
    /// Frames of an incompatible protocol version.
    pub version_errors: u64,
    /// Records of kinds this console does not know (newer minor version), skipped.
    pub unknown_events: u64,
    /// Sum of the kernel's `Loss` reports.
    pub dropped_events: u64,
    /// Of them, dropped while no console read them: none attached, or paused (expected).
    pub dropped_unattached: u64,
    /// Of them, dropped while a console was attached (a warning).
    pub dropped_attached: u64,
    /// Trace duration in seconds.
    pub duration_s: f64,
    /// Stream bytes decoded.
    pub bytes: u64,
    /// `bytes / events`.
    pub bytes_per_event: f64,
    /// Wasm instances created.
    pub wasm_instances: u64,
    /// Every wasm instance, by id.
    pub wasm: Vec<WasmSummary>,
    /// The kernel's Hello, if seen.
    pub kernel: Option<Kernel>,
    /// Where the source is damaged, if it is (only with `--partial`).
    pub damage: Option<Damage>,
    /// Everything that looks wrong, oldest first.
    pub warnings: Vec<String>,
    /// Every warning, counted by kind (every kind, zero included).
    pub warning_counts: BTreeMap<&'static str, u64>,
    /// The first warnings of each kind that was raised (at most the state's
    /// `MAX_WARNINGS_PER_KIND`), oldest first: a rare kind stays visible when
    /// another floods `warnings`.
    pub warnings_by_kind: BTreeMap<&'static str, Vec<String>>,
    /// Resources tasks wait on.
    pub resources: ResourceSummary,
    /// Waits in progress at the end of the stream, by task.
    pub waits: Vec<WaitSummary>,
    /// Deadlocks found, oldest first.
    pub deadlocks: Vec<DeadlockSummary>,
}

impl Summary {
    /// Summarises what was collected.
    #[must_use]
    pub fn new(c: &Collected) -> Self {
        let s = &c.state;
        let events_by_kind = MessageKind::ALL
            .iter()
            .map(|k| (k.name(), s.events_by_kind.get(k).copied().unwrap_or(0)))
            .collect();
        let mut warnings: Vec<String> = s.warnings.iter().map(ToString::to_string).collect();
        if s.warnings_dropped > 0 {
            warnings.push(format!("{} more warnings not shown", s.warnings_dropped));
        }
        if s.kernel.is_none() && s.events > 0 {
            warnings.push("no Hello in the stream: duration from host receive times".into());
        }
        let damage = c.damage.as_ref().map(|e| Damage {
            offset: e.offset(),
            message: e.to_string(),
        });
        if let Some(d) = &damage {
            warnings.push(format!("stopped early: {}", d.message));
        }
        let bytes = c.decoder.bytes;
        let (resources, waits) = resource_summary(s);
        let warning_counts = crate::state::WarningKind::ALL
            .iter()
            .map(|k| (k.name(), s.warning_counts.get(k).copied().unwrap_or(0)))
            .collect();
        Self {
            events: s.events,
            events_by_kind,
            tasks: s.tasks_spawned,
            tasks_completed: s.tasks_completed,
            task_panics: s.task_panics,
            panics: s.panics.clone(),
            tasks_unnamed: s.tasks.values().filter(|t| t.location.is_empty()).count() as u64,
            tasks_unnamed_unfinished: s
                .tasks
                .values()
                .filter(|t| {
                    t.location.is_empty()
                        && !t.status.is_done()
                        && s.snapshot_taken.is_some_and(|at| t.spawned_ts <= at)
                })
                .count() as u64,
            tasks_evicted: s.tasks_evicted,
            wasm_instances_evicted: s.instances_evicted,
            cpus: s.cpus.len() as u64,
            kernel_restarts: s.kernel_restarts,
            tasks_ended_by_restart: s.tasks_ended_by_restart,
            sequence_gaps: s.health.sequence_gaps,
            missing_frames: s.health.missing_frames,
            crc_errors: s.health.crc_errors,
            malformed_frames: s.health.malformed_frames,
            version_errors: s.health.version_errors,
            unknown_events: c.decoder.unknown_events,
            dropped_events: s.dropped_events,
            dropped_unattached: s.loss.unattached,
            dropped_attached: s.loss.attached(s.dropped_events),
            duration_s: s.duration_s(),
            bytes,
            bytes_per_event: if s.events == 0 {
                0.0
            } else {
                bytes as f64 / s.events as f64
            },
            wasm_instances: s.wasm.len() as u64,
            wasm: s.wasm.iter().map(|(&id, w)| WasmSummary::new(s, id, w)).collect(),
            kernel: s.kernel.as_ref().map(|k| Kernel {
                protocol: format!("{}.{}", k.version.0, k.version.1),
                build_id: k.build_id.clone(),
                tsc_hz: k.tsc_hz,
                cpus: k.cpus,
            }),
            damage,
            warnings,
            warning_counts,
            warnings_by_kind: s
                .first_warnings_by_kind
                .iter()
                .map(|(k, ws)| (k.name(), ws.iter().map(ToString::to_string).collect()))
                .collect(),
            resources,
            waits,
            deadlocks: s
                .resources
                .deadlocks
                .iter()
                .map(|d| DeadlockSummary {
                    tasks: d.tasks.clone(),
                    names: d
                        .tasks
                        .iter()
                        .map(|t| s.tasks.get(t).map(|t| t.name.to_string()).unwrap_or_default())
                        .collect(),
                    resources: d.resources.iter().map(|&r| s.resources.label(r)).collect(),
                    detected_after_ns: s.clock().ns(d.detected.saturating_sub(d.formed)),
                })
                .collect(),
        }
    }

    /// What happened between two points of one stream (`lucid stats --from --to`):
    /// counters as differences, the warnings raised in between, and `duration_s` as
    /// given (the window's length).
    #[must_use]
    pub fn between(start: &Collected, end: &Collected, duration_s: f64) -> Self {
        let a = Self::new(start);
        let mut s = Self::new(end);
        for (k, n) in &mut s.events_by_kind {
            *n = n.saturating_sub(a.events_by_kind.get(k).copied().unwrap_or(0));
        }
        macro_rules! diff {
            ($($f:ident),*) => { $( s.$f = s.$f.saturating_sub(a.$f); )* };
        }
        diff!(
            events,
            tasks,
            tasks_completed,
            task_panics,
            tasks_evicted,
            wasm_instances_evicted,
            kernel_restarts,
            tasks_ended_by_restart,
            sequence_gaps,
            missing_frames,
            crc_errors,
            malformed_frames,
            version_errors,
            unknown_events,
            dropped_events,
            dropped_unattached,
            dropped_attached,
            bytes
        );
        // Both lists are the stream's panics oldest first: the window's are the tail.
        s.panics.drain(..a.panics.len().min(s.panics.len()));
        s.duration_s = duration_s;
        s.bytes_per_event = if s.events == 0 {
            0.0
        } else {
            s.bytes as f64 / s.events as f64
        };
        let (sw, ew) = (&start.state, &end.state);
        s.warnings = ew
            .warnings
            .iter()
            .skip(sw.warnings.len())
            .map(ToString::to_string)
            .collect();
        let dropped = ew.warnings_dropped.saturating_sub(sw.warnings_dropped);
        if dropped > 0 {
            s.warnings.push(format!("{dropped} more warnings not shown"));
        }
        if let Some(d) = &s.damage {
            s.warnings.push(format!("stopped early: {}", d.message));
        }
        for (k, n) in &mut s.warning_counts {
            *n = n.saturating_sub(a.warning_counts.get(k).copied().unwrap_or(0));
        }
        s
    }

    /// The human-readable form.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_text(&mut o);
        o
    }

    fn write_text(&self, o: &mut String) -> std::fmt::Result {
        if let Some(k) = &self.kernel {
            writeln!(
                o,
                "kernel     {} (protocol {}, {} CPUs, TSC {:.3} GHz)",
                k.build_id,
                k.protocol,
                k.cpus,
                k.tsc_hz as f64 / 1e9
            )?;
        }
        writeln!(
            o,
            "events     {} in {:.3} s ({} bytes, {:.2} bytes/event)",
            self.events, self.duration_s, self.bytes, self.bytes_per_event
        )?;
        writeln!(
            o,
            "tasks      {} spawned, {} completed; {} wasm instances; {} CPUs",
            self.tasks, self.tasks_completed, self.wasm_instances, self.cpus
        )?;
        if self.task_panics > 0 {
            writeln!(o, "panics     {} contained", self.task_panics)?;
            for p in &self.panics {
                let name = if p.name.is_empty() {
                    String::new()
                } else {
                    format!(" `{}`", p.name)
                };
                let at = if p.location.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", p.location)
                };
                writeln!(o, "           task {}{name}{at}: {}", p.task, p.message)?;
            }
        }
        if self.kernel_restarts > 0 {
            writeln!(
                o,
                "restarts   the kernel restarted {} times; {} tasks ended with their boot",
                self.kernel_restarts, self.tasks_ended_by_restart
            )?;
        }
        if self.tasks_evicted > 0 || self.wasm_instances_evicted > 0 {
            writeln!(
                o,
                "           {} tasks and {} wasm instances evicted to stay within the console's caps",
                self.tasks_evicted, self.wasm_instances_evicted
            )?;
        }
        if self.tasks_unnamed > 0 {
            writeln!(
                o,
                "           {} tasks known only from their events (spawned before the stream began)",
                self.tasks_unnamed
            )?;
        }
        let r = &self.resources;
        if r.created > 0 || !self.waits.is_empty() {
            writeln!(
                o,
                "resources  {} live ({} created, {} dropped); {} waits ({} ready, {} cancelled, {} timed out)",
                r.live, r.created, r.dropped, r.waits_begun, r.waits_ready, r.waits_cancelled, r.waits_timed_out
            )?;
            for w in &self.waits {
                writeln!(
                    o,
                    "           task {} `{}` waits on {} ({}) for {}{}",
                    w.task,
                    w.name,
                    w.label,
                    w.op,
                    crate::fmt::duration_ns(w.for_ns),
                    w.stack.as_ref().map_or_else(String::new, |s| format!(" [{s}]"))
                )?;
            }
        }
        writeln!(
            o,
            "integrity  {} sequence gaps ({} frames missing), {} CRC errors, {} malformed, \
             {} dropped events",
            self.sequence_gaps, self.missing_frames, self.crc_errors, self.malformed_frames, self.dropped_events
        )?;
        if self.dropped_unattached > 0 {
            writeln!(
                o,
                "           of them {} while no console read them (none attached, or paused: expected), \
             {} while one was reading",
                self.dropped_unattached, self.dropped_attached
            )?;
        }
        writeln!(o, "by kind")?;
        for (k, n) in self.events_by_kind.iter().filter(|(_, n)| **n > 0) {
            writeln!(o, "  {k:<24} {n:>10}")?;
        }
        if !self.warnings.is_empty() {
            writeln!(o, "warnings")?;
            for w in &self.warnings {
                writeln!(o, "  {w}")?;
            }
        }
        Ok(())
    }
}
