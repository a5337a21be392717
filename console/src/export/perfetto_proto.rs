//! Perfetto's native protobuf trace (`lucid export --perfetto-proto`), built with the
//! `perfetto_protos` bindings generated from Perfetto's own `.proto` files and written
//! as the items go by: each `TracePacket` is framed as one `Trace.packet` field, so
//! the file is a `Trace` however far it got.
//!
//! Layout (the Chrome JSON's, in tracks): a "CPUs" group with a slice track per CPU
//! (its polls, and a wake instant starting a flow that the woken task's next poll
//! ends) and a run-queue depth counter track per CPU; a "Tasks" group with a track per
//! task (its lifetime, with its polls nested inside), a track of each task's waits on
//! resources (one at a time), and counter tracks of live tasks and of tasks waiting
//! by resource kind; a "Wasm" group with a track per
//! instance (traps as instants) and memory and fuel counter tracks; a "Stream" track
//! with losses, gaps and damage as instants. Slice names are interned (sent once on
//! the one packet sequence, then referred to by number) and tracks described once, on
//! first use. Times are nanoseconds after the recording's first event, written as
//! deltas on a sequence-scoped incremental clock (a packet older than the one before
//! it, which the time-ordered merge can release, carries its absolute time on the
//! boot clock instead). Every packet is written when its item goes by, so a slice
//! begins at its `PollStart` and ends at the CPU's next `PollEnd` (or `PollStart`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};

use lucid_protocol::{Item, Message, ResourceId, TaskId, Waker};
use perfetto_protos::clock_snapshot::ClockSnapshot;
use perfetto_protos::clock_snapshot::clock_snapshot::Clock as SnapshotClock;
use perfetto_protos::counter_descriptor::CounterDescriptor;
use perfetto_protos::debug_annotation::DebugAnnotation;
use perfetto_protos::interned_data::InternedData;
use perfetto_protos::trace_packet::TracePacket;
use perfetto_protos::trace_packet::trace_packet::SequenceFlags;
use perfetto_protos::trace_packet_defaults::TracePacketDefaults;
use perfetto_protos::track_descriptor::TrackDescriptor;
use perfetto_protos::track_event::track_event::Type;
use perfetto_protos::track_event::{EventName, TrackEvent};
use protobuf::{CodedOutputStream, MessageField};

use super::waiting::{Changed, Waiting};
use crate::profile::{Tasks, executor_event};
use crate::state::State;
use crate::time::{Clock, Ticks};

/// The packet sequence all packets are on (interned names are per sequence).
const SEQUENCE: u32 = 1;
/// `Trace.packet`.
const TRACE_PACKET_FIELD: u32 = 1;
/// `BUILTIN_CLOCK_BOOTTIME`, the trace clock.
const BOOT_CLOCK: u32 = 6;
/// The sequence's incremental clock (ids 64–127 are sequence-scoped).
const DELTA_CLOCK: u32 = 64;

/// The top-level track groups.
pub const ROOT_CPUS: u64 = 1;
/// The group of task tracks.
pub const ROOT_TASKS: u64 = 2;
/// The group of wasm instance tracks.
pub const ROOT_WASM: u64 = 3;
/// The track of losses, gaps and stream damage.
pub const ROOT_STREAM: u64 = 4;

/// What a track under a group shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum TrackKind {
    /// A CPU's polls.
    Cpu = 0,
    /// A CPU's run-queue depth.
    RunQueue = 1,
    /// A task's lifetime and polls.
    Task = 2,
    /// A wasm instance's traps.
    Wasm = 3,
    /// A wasm instance's memory pages.
    WasmMemory = 4,
    /// A wasm instance's fuel.
    WasmFuel = 5,
    /// A task count: id 0 live tasks, id 1 + n tasks waiting on the n-th kind of
    /// resource seen.
    Count = 6,
    /// A task's waits on resources.
    TaskWaits = 7,
}

/// The uuid of the `kind` track of `id` (a CPU, task or instance number): small
/// numbers, so that the varints every event carries stay short, and never one of
/// the groups'.
#[must_use]
pub fn track_uuid(kind: TrackKind, id: u64) -> u64 {
    (id.wrapping_add(1) << 3) | kind as u64
}

/// Writes a Perfetto protobuf trace from items.
#[derive(Debug)]
pub struct PerfettoProtoWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    tasks: Tasks,
    /// The task whose poll slice is open on each CPU.
    polling: BTreeMap<u32, TaskId>,
    origin: u64,
    clock: Clock,
    last_ts: u64,
    /// The incremental clock's value: the time of the latest packet written on it (ns).
    delta_base: u64,
    /// Interned slice names and their numbers; names not yet sent.
    names: HashMap<String, u64>,
    unsent_names: Vec<EventName>,
    /// Tracks described so far.
    tracks: BTreeSet<u64>,
    /// The flow a task's next poll ends (started by the wake that came first).
    wakes: BTreeMap<TaskId, u64>,
    /// Flow ids free again (an ended flow's id may be reused): the ids stay as small
    /// as the number of wakes in flight, and so do their varints.
    free_flows: Vec<u64>,
    next_flow: u64,
    /// Tasks whose lifetime slice is open.
    alive: BTreeSet<TaskId>,
    /// Tasks that ended while a poll of theirs was still open: their lifetime ends
    /// with that poll (not before it, so the poll stays nested).
    ending: BTreeMap<TaskId, u64>,
    /// Live tasks and waits by kind, for the counter tracks.
    waiting: Waiting,
    /// The [`TrackKind::Count`] id of each resource kind's waiting count.
    kind_ids: BTreeMap<&'static str, u64>,
    /// The wait each task's wait track shows (one at a time: a select's other
    /// waits would not nest).
    wait_slices: BTreeMap<TaskId, ResourceId>,
    error: Option<io::Error>,
}

impl<W: Write> PerfettoProtoWriter<W> {
    /// Starts the trace. `state` is the state at the window's start (whose start is
    /// `from`, if any); times count from `origin` (ticks).
    pub fn new(out: W, state: &State, from: Option<u64>, origin: u64) -> io::Result<Self> {
        let mut w = Self {
            out,
            buf: Vec::with_capacity(256),
            tasks: Tasks::from_state(state),
            polling: BTreeMap::new(),
            origin,
            clock: state.clock(),
            last_ts: from.unwrap_or(origin),
            delta_base: 0,
            names: HashMap::new(),
            unsent_names: Vec::new(),
            tracks: BTreeSet::new(),
            wakes: BTreeMap::new(),
            free_flows: Vec::new(),
            next_flow: 1,
            alive: BTreeSet::new(),
            ending: BTreeMap::new(),
            waiting: Waiting::from_state(state),
            kind_ids: BTreeMap::new(),
            wait_slices: BTreeMap::new(),
            error: None,
        };
        w.start_sequence();
        for (uuid, name) in [
            (ROOT_CPUS, "CPUs"),
            (ROOT_TASKS, "Tasks"),
            (ROOT_WASM, "Wasm"),
            (ROOT_STREAM, "Stream"),
        ] {
            w.describe(uuid, None, name.to_string(), false);
        }
        // Polls running at the window's start count from it.
        for (&cpu, c) in &state.cpus {
            if let Some((task, start)) = c.polling {
                w.poll_start(cpu, task, from.map_or(start, |f| start.max(f)));
            }
        }
        match w.error.take() {
            Some(e) => Err(e),
            None => Ok(w),
        }
    }

    fn ns(&self, ts: u64) -> u64 {
        self.clock.ns(Ticks(ts.saturating_sub(self.origin)))
    }

    /// The first packet: clears the sequence's state, defines its incremental clock
    /// (starting at 0 ns, as the boot clock) and makes it the default.
    fn start_sequence(&mut self) {
        let mut snapshot = ClockSnapshot::new();
        for (id, incremental) in [(BOOT_CLOCK, false), (DELTA_CLOCK, true)] {
            let mut c = SnapshotClock::new();
            c.set_clock_id(id);
            c.set_timestamp(0);
            if incremental {
                c.set_is_incremental(true);
            }
            snapshot.clocks.push(c);
        }
        let mut defaults = TracePacketDefaults::new();
        defaults.set_timestamp_clock_id(DELTA_CLOCK);
        let mut p = TracePacket::new();
        p.set_timestamp(0);
        p.set_timestamp_clock_id(BOOT_CLOCK);
        p.set_sequence_flags(SequenceFlags::SEQ_INCREMENTAL_STATE_CLEARED as u32);
        p.trace_packet_defaults = MessageField::some(defaults);
        p.set_clock_snapshot(snapshot);
        self.write(p);
    }

    /// Writes one packet (framed as a `Trace.packet` field).
    fn write(&mut self, mut p: TracePacket) {
        if self.error.is_some() {
            return;
        }
        p.set_trusted_packet_sequence_id(SEQUENCE);
        self.buf.clear();
        let mut os = CodedOutputStream::vec(&mut self.buf);
        let r = os
            .write_message(TRACE_PACKET_FIELD, &p)
            .and_then(|()| os.flush())
            .map_err(io::Error::other);
        drop(os);
        if let Err(e) = r.and_then(|()| self.out.write_all(&self.buf)) {
            self.error = Some(e);
        }
    }

    /// Describes track `uuid` once.
    fn describe(&mut self, uuid: u64, parent: Option<u64>, name: String, counter: bool) {
        if !self.tracks.insert(uuid) {
            return;
        }
        let mut d = TrackDescriptor::new();
        d.set_uuid(uuid);
        if let Some(parent) = parent {
            d.set_parent_uuid(parent);
        }
        d.set_name(name);
        if counter {
            d.counter = MessageField::some(CounterDescriptor::new());
        }
        let mut p = TracePacket::new();
        p.set_track_descriptor(d);
        self.write(p);
    }

    /// The `kind` track of `id` in group `parent`, described (named by `name`) on
    /// first use.
    fn track(
        &mut self,
        kind: TrackKind,
        id: u64,
        parent: u64,
        counter: bool,
        name: impl FnOnce(&Self) -> String,
    ) -> u64 {
        let uuid = track_uuid(kind, id);
        if !self.tracks.contains(&uuid) {
            let name = name(self);
            self.describe(uuid, Some(parent), name, counter);
        }
        uuid
    }

    fn cpu_track(&mut self, cpu: u32) -> u64 {
        self.track(TrackKind::Cpu, u64::from(cpu), ROOT_CPUS, false, |_| {
            format!("cpu {cpu}")
        })
    }

    fn task_track(&mut self, task: TaskId) -> u64 {
        self.track(TrackKind::Task, task.get(), ROOT_TASKS, false, |w| {
            format!("{} #{task}", w.tasks.get(task).name)
        })
    }

    /// The number of slice name `name`, interning it on first use.
    fn name_iid(&mut self, name: &str) -> u64 {
        if let Some(&iid) = self.names.get(name) {
            return iid;
        }
        let iid = self.names.len() as u64 + 1;
        self.names.insert(name.to_string(), iid);
        let mut n = EventName::new();
        n.set_iid(iid);
        n.set_name(name.to_string());
        self.unsent_names.push(n);
        iid
    }

    /// Writes track event `e` at `ts` (ticks), with the names it introduces.
    fn event(&mut self, ts: u64, e: TrackEvent) {
        let mut p = TracePacket::new();
        let ns = self.ns(ts);
        if ns >= self.delta_base {
            p.set_timestamp(ns - self.delta_base);
            self.delta_base = ns;
        } else {
            p.set_timestamp(ns);
            p.set_timestamp_clock_id(BOOT_CLOCK);
        }
        if !self.unsent_names.is_empty() {
            let mut interned = InternedData::new();
            interned.event_names = std::mem::take(&mut self.unsent_names);
            p.interned_data = MessageField::some(interned);
        }
        // No SEQ_NEEDS_INCREMENTAL_STATE: it only lets a reader skip packets of a
        // sequence whose state was lost, which a file never has, and costs 2 bytes.
        p.set_track_event(e);
        self.write(p);
    }

    /// A slice begin, for the caller to add flows to and write.
    fn slice_begin(&mut self, track: u64, name: &str) -> TrackEvent {
        let mut e = TrackEvent::new();
        e.set_type(Type::TYPE_SLICE_BEGIN);
        e.set_track_uuid(track);
        e.set_name_iid(self.name_iid(name));
        e
    }

    fn slice_end(&mut self, track: u64, ts: u64) {
        let mut e = TrackEvent::new();
        e.set_type(Type::TYPE_SLICE_END);
        e.set_track_uuid(track);
        self.event(ts, e);
    }

    fn instant(&mut self, track: u64, ts: u64, name: &str, flow: Option<u64>) {
        let e = self.instant_event(track, name, flow);
        self.event(ts, e);
    }

    fn instant_event(&mut self, track: u64, name: &str, flow: Option<u64>) -> TrackEvent {
        let mut e = TrackEvent::new();
        e.set_type(Type::TYPE_INSTANT);
        e.set_track_uuid(track);
        e.set_name_iid(self.name_iid(name));
        e.flow_ids.extend(flow);
        e
    }

    fn counter(&mut self, track: u64, ts: u64, value: i64) {
        let mut e = TrackEvent::new();
        e.set_type(Type::TYPE_COUNTER);
        e.set_track_uuid(track);
        e.set_counter_value(value);
        self.event(ts, e);
    }

    fn counter_track(&mut self, kind: TrackKind, id: u64, parent: u64, name: impl FnOnce() -> String) -> u64 {
        self.track(kind, id, parent, true, |_| name())
    }

    fn wasm_track(&mut self, instance: u64) -> u64 {
        self.track(TrackKind::Wasm, instance, ROOT_WASM, false, |_| {
            format!("wasm #{instance}")
        })
    }

    fn begin_task(&mut self, task: TaskId, ts: u64) {
        if self.alive.insert(task) {
            let track = self.task_track(task);
            let name = self.tasks.get(task).name;
            let e = self.slice_begin(track, &name);
            self.event(ts, e);
        }
    }

    fn end_task(&mut self, task: TaskId, ts: u64) {
        if self.polling.values().any(|&t| t == task) {
            self.ending.insert(task, ts);
        } else if self.alive.remove(&task) {
            let track = self.task_track(task);
            self.slice_end(track, ts);
        }
    }

    /// Takes one item.
    pub fn observe(&mut self, item: &Item<'_>) {
        match item {
            Item::Event { event, .. } => {
                if let Message::Hello(h) = &event.message {
                    self.clock = Clock::new(h.tsc_hz);
                }
                self.tasks.observe(&event.message);
                self.control(event.ts, &event.message);
                self.waits(event.ts, &event.message);
            }
            Item::Gap { .. } | Item::Restart { .. } => self.instant(ROOT_STREAM, self.last_ts, "stream gap", None),
            Item::Error { .. } => self.instant(ROOT_STREAM, self.last_ts, "stream damage", None),
        }
        let Some((cpu, ts, m)) = executor_event(item) else {
            return;
        };
        self.last_ts = self.last_ts.max(ts);
        match *m {
            Message::TaskSpawned(s) => self.begin_task(s.task, ts),
            Message::PollStart { task } => {
                self.poll_end(cpu, ts);
                self.begin_task(task, ts);
                self.poll_start(cpu, task, ts);
            }
            Message::PollEnd { .. } => self.poll_end(cpu, ts),
            Message::Wake { task, waker, .. } if !matches!(waker, Waker::None) => {
                if let std::collections::btree_map::Entry::Vacant(v) = self.wakes.entry(task) {
                    let id = self.free_flows.pop().unwrap_or_else(|| {
                        self.next_flow += 1;
                        self.next_flow - 1
                    });
                    v.insert(id);
                    let track = self.cpu_track(cpu);
                    self.instant(track, ts, "wake", Some(id));
                }
            }
            Message::TaskCompleted { task, .. } | Message::TaskDropped { task } => self.end_task(task, ts),
            Message::RunQueueDepth { depth } => {
                let track = self.counter_track(TrackKind::RunQueue, u64::from(cpu), ROOT_CPUS, || {
                    format!("run queue cpu {cpu}")
                });
                self.counter(track, ts, i64::from(depth));
            }
            _ => {}
        }
    }

    /// Opens a poll slice of `task` on its CPU's and its own track; it ends the flow
    /// of the wake before it.
    fn poll_start(&mut self, cpu: u32, task: TaskId, ts: u64) {
        let name = self.tasks.get(task).name;
        let cpu_track = self.cpu_track(cpu);
        let task_track = self.task_track(task);
        let mut begin = self.slice_begin(cpu_track, &name);
        if let Some(flow) = self.wakes.remove(&task) {
            begin.terminating_flow_ids.push(flow);
            self.free_flows.push(flow);
        }
        self.event(ts, begin);
        let begin = self.slice_begin(task_track, &name);
        self.event(ts, begin);
        self.polling.insert(cpu, task);
    }

    /// Closes the poll slice open on `cpu`, if any (and the lifetime of a task that
    /// ended during it).
    fn poll_end(&mut self, cpu: u32, ts: u64) {
        let Some(task) = self.polling.remove(&cpu) else {
            return;
        };
        let cpu_track = self.cpu_track(cpu);
        let task_track = self.task_track(task);
        self.slice_end(cpu_track, ts);
        self.slice_end(task_track, ts);
        if let Some(ended) = self.ending.remove(&task)
            && self.alive.remove(&task)
        {
            self.slice_end(task_track, ended.max(ts));
        }
    }

    /// Wait slices and the live-task and waiting-task counters.
    fn waits(&mut self, ts: u64, m: &Message<'_>) {
        let mut changed = Vec::new();
        self.waiting.observe(m, |c| changed.push(c));
        for c in changed {
            let (id, name, value) = match c {
                Changed::Live(n) => (0, "live tasks".to_string(), n),
                Changed::Waiting(kind, n) => {
                    let next = self.kind_ids.len() as u64 + 1;
                    let id = *self.kind_ids.entry(kind).or_insert(next);
                    (id, format!("tasks waiting on {kind}"), n)
                }
            };
            let track = self.counter_track(TrackKind::Count, id, ROOT_TASKS, || name);
            self.counter(track, ts, value);
        }
        match *m {
            Message::WaitBegin(w) if self.waiting.is_open(w.task, w.resource) => {
                if let std::collections::btree_map::Entry::Vacant(v) = self.wait_slices.entry(w.task) {
                    v.insert(w.resource);
                    let track = self.wait_track(w.task);
                    let name = format!("wait {}#{} {}", self.waiting.kind(w.resource), w.resource, w.op.name());
                    let e = self.slice_begin(track, &name);
                    self.event(ts, e);
                }
            }
            Message::WaitEnd(w) if self.wait_slices.get(&w.task) == Some(&w.resource) => {
                self.wait_slices.remove(&w.task);
                let track = self.wait_track(w.task);
                self.slice_end(track, ts);
            }
            Message::TaskCompleted { task, .. } | Message::TaskDropped { task }
                if self.wait_slices.remove(&task).is_some() =>
            {
                let track = self.wait_track(task);
                self.slice_end(track, ts);
            }
            _ => {}
        }
    }

    fn wait_track(&mut self, task: TaskId) -> u64 {
        self.track(TrackKind::TaskWaits, task.get(), ROOT_TASKS, false, |w| {
            format!("{} #{task} waits", w.tasks.get(task).name)
        })
    }

    /// Messages of any stream: wasm counters, traps, losses.
    fn control(&mut self, ts: u64, m: &Message<'_>) {
        match *m {
            Message::WasmMemoryGrow {
                instance, new_pages, ..
            } => {
                let id = instance.get();
                let track = self.counter_track(TrackKind::WasmMemory, id, ROOT_WASM, || {
                    format!("wasm memory #{instance} (pages)")
                });
                self.counter(track, ts, i64::from(new_pages));
            }
            Message::WasmPoll { instance, fuel, .. } => {
                let id = instance.get();
                let track = self.counter_track(TrackKind::WasmFuel, id, ROOT_WASM, || format!("wasm fuel #{instance}"));
                self.counter(track, ts, i64::try_from(fuel).unwrap_or(i64::MAX));
            }
            Message::WasmTrap(t) => {
                let track = self.wasm_track(t.instance.get());
                self.instant(track, ts, &format!("trap: {}", t.reason), None);
            }
            Message::Loss { cpu, count, .. } => {
                let mut e = self.instant_event(ROOT_STREAM, "loss", None);
                for (name, value) in [("cpu", u64::from(cpu)), ("events", count)] {
                    let mut a = DebugAnnotation::new();
                    a.set_name(name.into());
                    a.set_uint_value(value);
                    e.debug_annotations.push(a);
                }
                self.event(ts, e);
            }
            _ => {}
        }
    }

    /// Closes the lifetimes still open at the window's end (`end`, ticks, or the
    /// last event) and flushes the output.
    pub fn finish(mut self, end: Option<u64>) -> io::Result<W> {
        let end = end.unwrap_or(self.last_ts);
        for cpu in self.polling.keys().copied().collect::<Vec<_>>() {
            self.poll_end(cpu, end);
        }
        for task in std::mem::take(&mut self.alive) {
            let track = self.task_track(task);
            self.slice_end(track, end);
        }
        for task in std::mem::take(&mut self.wait_slices).into_keys() {
            let track = self.wait_track(task);
            self.slice_end(track, end);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> crate::window::Observer for PerfettoProtoWriter<W> {
    fn observe(&mut self, item: &Item<'_>) {
        PerfettoProtoWriter::observe(self, item);
    }
}
