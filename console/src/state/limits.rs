//! Caps on everything the state model keys by a value from the stream.
//!
//! A stream chooses its task ids, instance ids, trap codes, hostcall numbers and
//! callsite ids; the console must not grow without bound because a stream names many
//! of them. Each such collection has a cap; beyond it the oldest finished entries
//! make room first (live ones only when nothing finished is left), or the overflow
//! is counted under an "other" entry, and either way a warning says so.
//!
//! # Memory bound
//!
//! Every collection of the state is either a fixed window (poll slices, run-queue
//! samples, logs, warnings, wake marks, panics, expired ids), bounded by the
//! `Hello`'s CPU count plus a margin (CPUs), or capped here. With the caps, one
//! record can add at most about one task record (about 1 KiB with its share of the
//! index) or one instance's worth of small entries, and a record takes at least a
//! few bytes on the wire, so the state grows by at most about [`MAX_BYTES_PER_BYTE`]
//! times the stream bytes that created it, and by at most the caps' total however
//! long the stream is (about 300 MiB at [`MAX_TASKS`] tasks of about 1 KiB, plus
//! [`MAX_INSTANCES`] instances of at most about 20 KiB each). `tests/memory_bound.rs`
//! measures floods of distinct ids of every kind: the worst, wakes naming new task
//! ids (about 6 bytes each on the wire), holds about 110 state bytes per stream byte.

use std::collections::btree_map::Entry;

use lucid_protocol::{InstanceId, TaskId, WasmState};

use super::{State, Warning, WarningKind};

/// Tasks held by default ([`super::Config::max_tasks`]). Beyond it the task that completed longest ago is dropped (as if it
/// had expired), or, when every task is live, the one with the smallest id (ids grow
/// in spawn order): a real kernel with this many live tasks is beyond what the views
/// can show anyway.
pub const MAX_TASKS: usize = 1 << 18;
/// Wasm instances held by default ([`super::Config::max_instances`]). Beyond it an ended instance (trapped, exited, killed or ended
/// by a kernel restart) with the smallest id is dropped, or the live one with the
/// smallest id when none has ended.
pub const MAX_INSTANCES: usize = 4096;
/// Distinct trap codes counted per instance; further ones are counted under
/// [`OTHER_TRAP_CODES`].
pub const MAX_TRAP_CODES: usize = 64;
/// Trap code under which codes beyond [`MAX_TRAP_CODES`] are counted.
pub const OTHER_TRAP_CODES: u32 = u32::MAX;
/// The documented growth bound: state bytes per stream byte for floods of new ids.
pub const MAX_BYTES_PER_BYTE: usize = 256;

/// Whether an eviction count is one to warn about: the first, then at every power
/// of two, so a flood raises a few warnings that each name the count so far.
fn worth_a_warning(n: u64) -> bool {
    n.is_power_of_two()
}

impl State {
    /// Makes room for one more task when [`MAX_TASKS`] are held: drops the task that
    /// completed longest ago, or the live task with the smallest id.
    pub(super) fn make_room_for_task(&mut self) {
        if self.tasks.len() < self.config.max_tasks.max(1) {
            return;
        }
        self.rebuild_completions();
        let mut evicted = None;
        while let Some(std::cmp::Reverse((c, id))) = self.completions.heap.pop() {
            if self.tasks.get(&id).is_some_and(|t| t.completed_ts == Some(c)) {
                evicted = Some(id);
                break;
            }
        }
        let live = evicted.is_none();
        let Some(id) = evicted.or_else(|| self.tasks.keys().next().copied()) else {
            return;
        };
        self.tasks.remove(&id);
        if !live {
            // Like an expired task: late wakes and waker drops must not bring it back.
            self.remember_expired(id);
        }
        self.tasks_evicted = self.tasks_evicted.saturating_add(1);
        if live {
            self.live_tasks_evicted = self.live_tasks_evicted.saturating_add(1);
        }
        if worth_a_warning(self.tasks_evicted) {
            self.warn(Warning::new(
                WarningKind::Inconsistent,
                format!(
                    "more than {} tasks: {} evicted so far to stay within the cap, oldest completed first \
                     ({} of them live)",
                    self.config.max_tasks, self.tasks_evicted, self.live_tasks_evicted
                ),
            ));
        }
    }

    /// Makes room for one more instance when [`MAX_INSTANCES`] are held and `id` is
    /// not one of them.
    pub(super) fn make_room_for_instance(&mut self, id: InstanceId) {
        if self.wasm.len() < self.config.max_instances.max(1) || self.wasm.contains_key(&id) {
            return;
        }
        let ended = self.wasm.iter().find(|(_, w)| w.has_ended()).map(|(&id, _)| id);
        let live = ended.is_none();
        let Some(victim) = ended.or_else(|| self.wasm.keys().next().copied()) else {
            return;
        };
        self.wasm.remove(&victim);
        self.instances_evicted = self.instances_evicted.saturating_add(1);
        if worth_a_warning(self.instances_evicted) {
            let what = if live { "a live one" } else { "ended ones first" };
            self.warn(Warning::new(
                WarningKind::Inconsistent,
                format!(
                    "more than {} wasm instances: {} evicted so far to stay within the cap ({what})",
                    self.config.max_instances, self.instances_evicted
                ),
            ));
        }
    }

    /// Warns once that `what` (keyed by stream values) overflowed its cap into its
    /// "other" entry; `count` is the overflow counter, already incremented.
    pub(super) fn overflowed(&mut self, count: u64, what: &str) {
        if count == 1 {
            self.warn(Warning::new(
                WarningKind::Inconsistent,
                format!("{what}: further ones are counted together as \"other\""),
            ));
        }
    }

    /// Remembers that `id` finished and was dropped, so late events about it are
    /// ignored (at most [`super::MAX_EXPIRED_IDS`] ids).
    pub(super) fn remember_expired(&mut self, id: TaskId) {
        if self.expired_order.len() >= super::MAX_EXPIRED_IDS
            && let Some(old) = self.expired_order.pop_front()
        {
            self.expired.remove(&old);
        }
        if self.expired.insert(id) {
            self.expired_order.push_back(id);
        }
    }

    /// Adds one trap of `code` to an instance's per-code counts (at most
    /// [`MAX_TRAP_CODES`] codes plus [`OTHER_TRAP_CODES`]); `true` if it went to
    /// "other".
    pub(super) fn count_trap(codes: &mut std::collections::BTreeMap<u32, u64>, code: u32) -> bool {
        let len = codes.len();
        match codes.entry(code) {
            Entry::Occupied(mut e) => {
                *e.get_mut() = e.get().saturating_add(1);
                false
            }
            Entry::Vacant(e) if len < MAX_TRAP_CODES => {
                e.insert(1);
                false
            }
            Entry::Vacant(_) => {
                let n = codes.entry(OTHER_TRAP_CODES).or_default();
                *n = n.saturating_add(1);
                true
            }
        }
    }
}

/// Whether an instance in `state` has stopped for good.
pub(super) const fn is_ended(state: WasmState) -> bool {
    matches!(state, WasmState::Trapped | WasmState::Exited | WasmState::Killed)
}
