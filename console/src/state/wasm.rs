//! Wasm instances: lifecycle, memory growth, fuel, hostcalls and traps.

use std::collections::{BTreeMap, VecDeque};

use lucid_protocol::{InstanceId, Message, TaskId, WasmState};
use serde::{Deserialize, Serialize};

use super::latency::LatencyHistogram;
use super::{MAX_TRAP_CODES, State, add_saturating};
use crate::time::Ticks;

/// Memory sizes remembered per instance for the growth sparkline.
pub const MAX_MEMORY_SAMPLES: usize = 64;
/// Distinct hostcall numbers tracked per instance; further ones are summed under
/// [`OTHER_HOSTCALLS`].
pub const MAX_HOSTCALL_KINDS: usize = 64;
/// Hostcall number under which kinds beyond [`MAX_HOSTCALL_KINDS`] are counted.
pub const OTHER_HOSTCALLS: u32 = u32::MAX;

/// Calls of one hostcall.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hostcall {
    /// Calls.
    pub calls: u64,
    /// TSC ticks spent in them.
    pub ticks: u64,
    /// Call latencies. The kernel reports calls and time in batches, so every call of a
    /// batch counts at the batch's mean: counts and sum are exact, buckets approximate.
    pub latency: LatencyHistogram,
}

/// One wasm instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmInstance {
    /// Module name.
    pub module: String,
    /// Driving task.
    pub task: TaskId,
    /// Current state.
    pub state: WasmState,
    /// What the state is about: the exit code (as `i32` bits), the hostcall blocked
    /// in, the requested sleep, the fuel budget (see [`WasmState`]).
    pub state_detail: u64,
    /// Linear memory pages.
    pub memory_pages: u32,
    /// Memory growths seen.
    pub memory_grows: u64,
    /// Memory size over time (TSC, pages), oldest first.
    pub memory_history: VecDeque<(u64, u32)>,
    /// Fuel per slice, when the creation was seen.
    pub fuel_per_slice: Option<u64>,
    /// Fuel consumed.
    pub fuel: u64,
    /// Slices run.
    pub slices: u64,
    /// Hostcalls by number.
    pub hostcalls: BTreeMap<u32, Hostcall>,
    /// Hostcalls in all (a snapshot may know more than the per-kind reports).
    pub hostcalls_total: u64,
    /// Traps.
    pub traps: u64,
    /// Traps by trap code.
    pub traps_by_code: BTreeMap<u32, u64>,
    /// Reason of the latest trap.
    pub last_trap: Option<String>,
    /// The kernel boot it belongs to (see [`State::boot`]).
    #[serde(default)]
    pub boot: u32,
    /// It was still running when its kernel restarted.
    #[serde(default)]
    pub ended_by_restart: bool,
    /// The last lines it wrote to stderr, once it ended (`\n`-separated).
    #[serde(default)]
    pub stderr_tail: Option<String>,
    /// Its WASI arguments (`argv[0]` first), as the kernel reported them.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its WASI environment, `KEY=VALUE` strings.
    #[serde(default)]
    pub env: Vec<String>,
}

impl WasmInstance {
    fn new(module: &str, task: TaskId, state: WasmState, pages: u32, ts: u64) -> Self {
        Self {
            module: module.to_string(),
            task,
            state,
            state_detail: 0,
            memory_pages: pages,
            memory_grows: 0,
            memory_history: VecDeque::from([(ts, pages)]),
            fuel_per_slice: None,
            fuel: 0,
            slices: 0,
            hostcalls: BTreeMap::new(),
            hostcalls_total: 0,
            traps: 0,
            traps_by_code: BTreeMap::new(),
            last_trap: None,
            stderr_tail: None,
            args: Vec::new(),
            env: Vec::new(),
            boot: 0,
            ended_by_restart: false,
        }
    }

    /// Whether it has stopped for good (trapped, exited, killed, or ended with its
    /// kernel).
    #[must_use]
    pub fn has_ended(&self) -> bool {
        self.ended_by_restart || super::limits::is_ended(self.state)
    }

    /// Its state as the views show it.
    #[must_use]
    pub fn state_text(&self) -> String {
        let state = crate::fmt::wasm_state(self.state, self.state_detail);
        if self.ended_by_restart {
            format!("ended by restart ({state})")
        } else {
            state
        }
    }

    fn set_pages(&mut self, ts: u64, pages: u32) {
        self.memory_pages = pages;
        if self.memory_history.len() >= MAX_MEMORY_SAMPLES {
            self.memory_history.pop_front();
        }
        self.memory_history.push_back((ts, pages));
    }
}

impl State {
    /// The instance `id` of the current boot (one of an earlier boot is not it).
    fn current_instance(&mut self, id: InstanceId) -> Option<&mut WasmInstance> {
        let boot = self.boot;
        self.wasm.get_mut(&id).filter(|w| w.boot == boot)
    }

    /// Applies a wasm message; other messages are ignored.
    pub(super) fn apply_wasm(&mut self, ts: u64, m: &Message<'_>) {
        match *m {
            Message::WasmInstanceCreated(w) => {
                let mut i = WasmInstance::new(w.module, w.task, WasmState::Created, w.memory_pages, ts);
                i.fuel_per_slice = Some(w.fuel_per_slice);
                i.boot = self.boot;
                self.make_room_for_instance(w.instance);
                self.wasm.insert(w.instance, i);
                self.task(w.task, ts).instance = Some(w.instance);
            }
            Message::WasmInstanceSnapshot(w) => {
                self.make_room_for_instance(w.instance);
                let boot = self.boot;
                let new = || {
                    let mut i = WasmInstance::new(w.module, w.task, w.state, w.memory_pages, ts);
                    i.boot = boot;
                    i
                };
                let i = self.wasm.entry(w.instance).or_insert_with(new);
                if i.boot != boot {
                    *i = new();
                }
                i.state = w.state;
                if i.memory_pages != w.memory_pages {
                    i.set_pages(ts, w.memory_pages);
                }
                // The kernel's totals include anything seen before: take them as
                // they are.
                i.fuel = w.fuel_used;
                i.slices = w.slices;
                i.hostcalls_total = w.hostcalls;
                let t = self.task(w.task, ts);
                t.instance = Some(w.instance);
                // A console that connected late never saw the task's spawn: the
                // instance says what the task is (kernel tasks that run instances
                // are named after their module).
                if t.name.is_empty() {
                    t.name = super::Text::from(w.module);
                    t.kind = lucid_protocol::TaskKind::Wasm;
                }
            }
            Message::WasmStateChanged {
                instance,
                state,
                detail,
            } => {
                if let Some(w) = self.current_instance(instance) {
                    w.state = state;
                    w.state_detail = detail;
                }
            }
            Message::WasmMemoryGrow {
                instance, new_pages, ..
            } => {
                if let Some(w) = self.current_instance(instance) {
                    w.memory_grows += 1;
                    w.set_pages(ts, new_pages);
                }
            }
            Message::WasmPoll { instance, fuel, slices } => {
                if let Some(w) = self.current_instance(instance)
                    && (add_saturating(&mut w.fuel, fuel) | add_saturating(&mut w.slices, u64::from(slices)))
                {
                    self.saturated("wasm fuel or time slices");
                }
            }
            Message::WasmHostcalls {
                instance,
                hostcall,
                calls,
                ticks,
            } => {
                let mean_ns = self.clock().ns(Ticks(ticks.checked_div(calls).unwrap_or(0)));
                if let Some(w) = self.current_instance(instance) {
                    let known = w.hostcalls.contains_key(&hostcall) || w.hostcalls.len() < MAX_HOSTCALL_KINDS;
                    let key = if known { hostcall } else { OTHER_HOSTCALLS };
                    let h = w.hostcalls.entry(key).or_default();
                    let mut saturated = add_saturating(&mut h.calls, calls);
                    saturated |= add_saturating(&mut h.ticks, ticks);
                    h.latency.record_n(mean_ns, calls);
                    saturated |= add_saturating(&mut w.hostcalls_total, calls);
                    if saturated {
                        self.saturated("wasm hostcall calls or time");
                    }
                    if !known {
                        self.hostcalls_in_other = self.hostcalls_in_other.saturating_add(1);
                        self.overflowed(
                            self.hostcalls_in_other,
                            &format!("an instance reported more than {MAX_HOSTCALL_KINDS} hostcall kinds"),
                        );
                    }
                }
            }
            Message::WasmTrap(t) => {
                if let Some(w) = self.current_instance(t.instance) {
                    w.traps = w.traps.saturating_add(1);
                    let other = Self::count_trap(&mut w.traps_by_code, t.code);
                    w.state = WasmState::Trapped;
                    w.last_trap = Some(format!("{}: {}", lucid_protocol::wasm_trap_name(t.code), t.reason));
                    if other {
                        self.traps_in_other = self.traps_in_other.saturating_add(1);
                        self.overflowed(
                            self.traps_in_other,
                            &format!("an instance trapped with more than {MAX_TRAP_CODES} distinct trap codes"),
                        );
                    }
                }
            }
            Message::WasmStderrTail(t) => {
                if let Some(w) = self.current_instance(t.instance) {
                    w.stderr_tail = Some(t.lines.to_string());
                }
            }
            Message::WasmInstanceArgs(a) => {
                if let Some(w) = self.current_instance(a.instance) {
                    w.args = nul_separated(a.args);
                    w.env = nul_separated(a.env);
                }
            }
            _ => {}
        }
    }
}

/// Strings each ended by a NUL (the last one's NUL may be cut off): at most
/// [`MAX_ARGS`] of them, which a stream cannot make the console hold more of.
fn nul_separated(text: &str) -> Vec<String> {
    text.split('\0')
        .filter(|s| !s.is_empty())
        .take(MAX_ARGS)
        .map(str::to_string)
        .collect()
}

/// Most arguments (and environment strings) kept per instance.
const MAX_ARGS: usize = 256;

impl WasmInstance {
    /// Its command line: the arguments joined by spaces, any with a space or a quote
    /// in single quotes.
    #[must_use]
    pub fn command_line(&self) -> String {
        self.args
            .iter()
            .map(|a| {
                if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                    format!("'{}'", a.replace('\'', "'\\''"))
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}
