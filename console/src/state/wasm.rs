//! Wasm instances: lifecycle, memory growth, fuel, hostcalls and traps.

use std::collections::{BTreeMap, VecDeque};

use lucid_protocol::{Message, TaskId, WasmState};
use serde::{Deserialize, Serialize};

use super::State;

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
    /// Linear memory pages.
    pub memory_pages: u32,
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
    /// Reason of the latest trap.
    pub last_trap: Option<String>,
}

impl WasmInstance {
    fn new(module: &str, task: TaskId, state: WasmState, pages: u32, ts: u64) -> Self {
        Self {
            module: module.to_string(),
            task,
            state,
            memory_pages: pages,
            memory_history: VecDeque::from([(ts, pages)]),
            fuel_per_slice: None,
            fuel: 0,
            slices: 0,
            hostcalls: BTreeMap::new(),
            hostcalls_total: 0,
            traps: 0,
            last_trap: None,
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
    /// Applies a wasm message; other messages are ignored.
    pub(super) fn apply_wasm(&mut self, ts: u64, m: &Message<'_>) {
        match *m {
            Message::WasmInstanceCreated(w) => {
                let mut i = WasmInstance::new(w.module, w.task, WasmState::Created, w.memory_pages, ts);
                i.fuel_per_slice = Some(w.fuel_per_slice);
                self.wasm.insert(w.instance, i);
                self.task(w.task, ts).instance = Some(w.instance);
            }
            Message::WasmInstanceSnapshot(w) => {
                let i = self
                    .wasm
                    .entry(w.instance)
                    .or_insert_with(|| WasmInstance::new(w.module, w.task, w.state, w.memory_pages, ts));
                i.state = w.state;
                if i.memory_pages != w.memory_pages {
                    i.set_pages(ts, w.memory_pages);
                }
                // The kernel's totals include anything seen before: take them as
                // they are.
                i.fuel = w.fuel_used;
                i.slices = w.slices;
                i.hostcalls_total = w.hostcalls;
                self.task(w.task, ts).instance = Some(w.instance);
            }
            Message::WasmStateChanged { instance, state } => {
                if let Some(w) = self.wasm.get_mut(&instance) {
                    w.state = state;
                }
            }
            Message::WasmMemoryGrow {
                instance, new_pages, ..
            } => {
                if let Some(w) = self.wasm.get_mut(&instance) {
                    w.set_pages(ts, new_pages);
                }
            }
            Message::WasmPoll { instance, fuel, slices } => {
                if let Some(w) = self.wasm.get_mut(&instance) {
                    w.fuel += fuel;
                    w.slices += u64::from(slices);
                }
            }
            Message::WasmHostcalls {
                instance,
                hostcall,
                calls,
                ticks,
            } => {
                if let Some(w) = self.wasm.get_mut(&instance) {
                    let key = if w.hostcalls.contains_key(&hostcall) || w.hostcalls.len() < MAX_HOSTCALL_KINDS {
                        hostcall
                    } else {
                        OTHER_HOSTCALLS
                    };
                    let h = w.hostcalls.entry(key).or_default();
                    h.calls += calls;
                    h.ticks += ticks;
                    w.hostcalls_total += calls;
                }
            }
            Message::WasmTrap(t) => {
                if let Some(w) = self.wasm.get_mut(&t.instance) {
                    w.traps += 1;
                    w.state = WasmState::Trapped;
                    w.last_trap = Some(format!("{} (code {})", t.reason, t.code));
                }
            }
            _ => {}
        }
    }
}
