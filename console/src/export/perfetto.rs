//! Chrome trace-event JSON (Perfetto UI, `chrome://tracing`), written as the items
//! go by: one event per line, nothing held but open polls, pending wakes and names.
//!
//! Layout: process 1 "CPUs" has a thread per CPU with its polls as complete (`X`)
//! slices, wake flow arrows (`s` at the waker's CPU, `f` at the woken task's next poll)
//! and run-queue depth counters; process 2 "Tasks" has a thread per task with its
//! polls, an async slice (`b`/`e`) per task lifetime and one per wait on a resource
//! (`wait chan#12 ping recv`, category `wait`), and counters of live tasks and of
//! tasks waiting by resource kind; process 3 "Wasm" has memory
//! and fuel counters per instance and traps as instants. Losses and stream damage are
//! global instants. Times are microseconds after the recording's first event.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use lucid_protocol::{Item, Message, ResourceId, TaskId, Waker};
use serde::Serialize;
use serde_json::{Value, json};

use super::waiting::{Changed, Waiting};
use crate::profile::{Polls, Tasks, executor_event};
use crate::state::State;
use crate::time::{Clock, Ticks};

const PID_CPUS: u32 = 1;
const PID_TASKS: u32 = 2;
const PID_WASM: u32 = 3;

#[derive(Debug, Serialize)]
struct Ev<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'a str>,
    ph: &'a str,
    ts: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u32,
    tid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<Value>,
}

impl<'a> Ev<'a> {
    fn new(name: &'a str, ph: &'a str, ts: f64, pid: u32, tid: u64) -> Self {
        Self {
            name,
            cat: None,
            ph,
            ts,
            dur: None,
            pid,
            tid,
            id: None,
            bp: None,
            s: None,
            args: None,
        }
    }
}

/// Writes a trace-event JSON document from items.
#[derive(Debug)]
pub struct PerfettoWriter<W: Write> {
    out: W,
    first: bool,
    tasks: Tasks,
    polls: Polls,
    origin: u64,
    clock: Clock,
    last_ts: u64,
    /// Pending wake of a task: flow id, waker's CPU, time.
    flows: BTreeMap<TaskId, (u64, u32, u64)>,
    next_flow: u64,
    cpus_named: BTreeSet<u32>,
    tasks_named: BTreeSet<TaskId>,
    /// Tasks whose lifetime slice is open.
    alive: BTreeSet<TaskId>,
    /// Labels of live resources (`chan#12 ping`).
    resources: BTreeMap<ResourceId, String>,
    /// Open wait slices: their async id and name.
    waits: BTreeMap<(TaskId, ResourceId), (u64, String)>,
    next_wait: u64,
    /// Live tasks and waits by kind, for the counter tracks.
    waiting: Waiting,
    error: Option<io::Error>,
}

impl<W: Write> PerfettoWriter<W> {
    /// Starts the document. `state` is the state at the window's start (whose start
    /// is `from`, if any); times count from `origin` (ticks).
    pub fn new(mut out: W, state: &State, from: Option<u64>, origin: u64) -> io::Result<Self> {
        out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
        let mut w = Self {
            out,
            first: true,
            tasks: Tasks::from_state(state),
            polls: Polls::from_state(state, from),
            origin,
            clock: state.clock(),
            last_ts: from.unwrap_or(origin),
            flows: BTreeMap::new(),
            next_flow: 1,
            cpus_named: BTreeSet::new(),
            tasks_named: BTreeSet::new(),
            alive: BTreeSet::new(),
            resources: state
                .resources
                .live
                .keys()
                .map(|&id| (id, state.resources.label(id)))
                .collect(),
            waits: BTreeMap::new(),
            next_wait: 1,
            waiting: Waiting::from_state(state),
            error: None,
        };
        for (pid, name) in [(PID_CPUS, "CPUs"), (PID_TASKS, "Tasks"), (PID_WASM, "Wasm")] {
            let mut e = Ev::new("process_name", "M", 0.0, pid, 0);
            e.args = Some(json!({ "name": name }));
            w.emit(&e);
        }
        Ok(w)
    }

    fn us(&self, ts: u64) -> f64 {
        self.clock.ns(Ticks(ts.saturating_sub(self.origin))) as f64 / 1000.0
    }

    fn emit(&mut self, e: &Ev<'_>) {
        if self.error.is_some() {
            return;
        }
        let sep: &[u8] = if self.first { b"" } else { b",\n" };
        self.first = false;
        let r = self
            .out
            .write_all(sep)
            .and_then(|()| serde_json::to_writer(&mut self.out, e).map_err(io::Error::from));
        if let Err(err) = r {
            self.error = Some(err);
        }
    }

    fn name_cpu(&mut self, cpu: u32) {
        if self.cpus_named.insert(cpu) {
            let mut e = Ev::new("thread_name", "M", 0.0, PID_CPUS, u64::from(cpu));
            e.args = Some(json!({ "name": format!("cpu {cpu}") }));
            self.emit(&e);
        }
    }

    fn name_task(&mut self, task: TaskId) {
        if self.tasks_named.insert(task) {
            let info = self.tasks.get(task);
            let mut e = Ev::new("thread_name", "M", 0.0, PID_TASKS, task.get());
            e.args = Some(json!({ "name": format!("{} #{task}", info.name) }));
            self.emit(&e);
        }
    }

    fn begin_task(&mut self, task: TaskId, ts: u64) {
        if self.alive.insert(task) {
            self.name_task(task);
            let info = self.tasks.get(task);
            let mut e = Ev::new(&info.name, "b", self.us(ts), PID_TASKS, task.get());
            e.cat = Some("task");
            e.id = Some(task.get());
            e.args = Some(json!({ "kind": info.kind, "location": info.location }));
            self.emit(&e);
        }
    }

    fn end_task(&mut self, task: TaskId, ts: u64) {
        if self.alive.remove(&task) {
            let info = self.tasks.get(task);
            let mut e = Ev::new(&info.name, "e", self.us(ts), PID_TASKS, task.get());
            e.cat = Some("task");
            e.id = Some(task.get());
            self.emit(&e);
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
            }
            Item::Gap { stream, .. } | Item::Restart { stream } => {
                let mut e = Ev::new(
                    "stream gap",
                    "i",
                    self.us(self.last_ts),
                    PID_CPUS,
                    u64::from(stream.cpu),
                );
                e.s = Some("g");
                self.emit(&e);
            }
            Item::Error { offset, error } => {
                let mut e = Ev::new("stream damage", "i", self.us(self.last_ts), PID_CPUS, 0);
                e.s = Some("g");
                e.args = Some(json!({ "offset": offset, "error": error.to_string() }));
                self.emit(&e);
            }
        }
        if let Item::Event { event, .. } = item {
            self.control(event.ts, &event.message);
            self.counts(event.ts, &event.message);
        }
        let Some((cpu, ts, m)) = executor_event(item) else {
            return;
        };
        self.last_ts = self.last_ts.max(ts);
        self.name_cpu(cpu);
        if let Some(s) = self.polls.observe(cpu, ts, m) {
            let info = self.tasks.get(s.task);
            let (start, dur) = (self.us(s.start), self.us(s.end) - self.us(s.start));
            let args = json!({ "task": s.task, "result": format!("{:?}", s.result) });
            for (pid, tid) in [(PID_CPUS, u64::from(cpu)), (PID_TASKS, s.task.get())] {
                let mut e = Ev::new(&info.name, "X", start, pid, tid);
                e.cat = Some("poll");
                e.dur = Some(dur);
                e.args = Some(args.clone());
                self.emit(&e);
            }
        }
        match *m {
            Message::TaskSpawned(s) => self.begin_task(s.task, ts),
            Message::PollStart { task } => {
                self.begin_task(task, ts);
                if let Some((id, wcpu, wts)) = self.flows.remove(&task) {
                    let mut s = Ev::new("wake", "s", self.us(wts), PID_CPUS, u64::from(wcpu));
                    s.cat = Some("wake");
                    s.id = Some(id);
                    self.emit(&s);
                    let mut f = Ev::new("wake", "f", self.us(ts), PID_CPUS, u64::from(cpu));
                    f.cat = Some("wake");
                    f.id = Some(id);
                    f.bp = Some("e");
                    self.emit(&f);
                }
            }
            Message::Wake { task, waker, .. } if !matches!(waker, Waker::None) => {
                let id = self.next_flow;
                if let std::collections::btree_map::Entry::Vacant(v) = self.flows.entry(task) {
                    v.insert((id, cpu, ts));
                    self.next_flow += 1;
                }
            }
            Message::TaskCompleted { task, .. } | Message::TaskDropped { task } => self.end_task(task, ts),
            Message::RunQueueDepth { depth } => {
                let name = format!("run queue cpu {cpu}");
                let mut e = Ev::new(&name, "C", self.us(ts), PID_CPUS, u64::from(cpu));
                e.args = Some(json!({ "depth": depth }));
                self.emit(&e);
            }
            _ => {}
        }
    }

    /// Messages of any stream: wasm counters, traps, losses.
    fn control(&mut self, ts: u64, m: &Message<'_>) {
        match *m {
            Message::WasmMemoryGrow {
                instance, new_pages, ..
            } => {
                let name = format!("wasm memory #{instance}");
                let mut e = Ev::new(&name, "C", self.us(ts), PID_WASM, instance.get());
                e.args = Some(json!({ "pages": new_pages }));
                self.emit(&e);
            }
            Message::WasmPoll { instance, fuel, .. } => {
                let name = format!("wasm fuel #{instance}");
                let mut e = Ev::new(&name, "C", self.us(ts), PID_WASM, instance.get());
                e.args = Some(json!({ "fuel": fuel }));
                self.emit(&e);
            }
            Message::WasmTrap(t) => {
                let name = format!("trap #{}: {}", t.instance, t.reason);
                let mut e = Ev::new(&name, "i", self.us(ts), PID_WASM, t.instance.get());
                e.s = Some("g");
                e.args = Some(json!({ "task": t.task, "code": t.code }));
                self.emit(&e);
            }
            Message::ResourceCreated(r) => {
                let label = if r.name.is_empty() {
                    format!("{}#{}", r.kind.name(), r.id)
                } else {
                    format!("{}#{} {}", r.kind.name(), r.id, r.name)
                };
                self.resources.insert(r.id, label);
            }
            Message::ResourceDropped(r) => {
                self.resources.remove(&r.id);
            }
            Message::WaitBegin(w) => self.begin_wait(w.task, w.resource, w.op.name(), ts),
            Message::WaitEnd(w) => self.end_wait(w.task, w.resource, ts),
            Message::Loss { cpu, count, .. } => {
                let mut e = Ev::new("loss", "i", self.us(ts), PID_CPUS, u64::from(cpu));
                e.s = Some("g");
                e.args = Some(json!({ "cpu": cpu, "events": count }));
                self.emit(&e);
            }
            _ => {}
        }
    }

    /// The live-task and waiting-task counters `m` changed.
    fn counts(&mut self, ts: u64, m: &Message<'_>) {
        let mut changed = Vec::new();
        self.waiting.observe(m, |c| changed.push(c));
        for c in changed {
            let (name, args) = match c {
                Changed::Live(n) => ("live tasks", json!({ "tasks": n })),
                Changed::Waiting(kind, n) => ("tasks waiting", json!({ kind: n })),
            };
            let e = Ev {
                args: Some(args),
                ..Ev::new(name, "C", self.us(ts), PID_TASKS, 0)
            };
            self.emit(&e);
        }
    }

    fn begin_wait(&mut self, task: TaskId, resource: ResourceId, op: &str, ts: u64) {
        if self.waits.contains_key(&(task, resource)) {
            return;
        }
        self.name_task(task);
        let label = self
            .resources
            .get(&resource)
            .cloned()
            .unwrap_or_else(|| format!("#{resource}"));
        let name = format!("wait {label} {op}");
        let id = self.next_wait;
        self.next_wait += 1;
        let mut e = Ev::new(&name, "b", self.us(ts), PID_TASKS, task.get());
        e.cat = Some("wait");
        e.id = Some(id);
        self.emit(&e);
        self.waits.insert((task, resource), (id, name));
    }

    fn end_wait(&mut self, task: TaskId, resource: ResourceId, ts: u64) {
        if let Some((id, name)) = self.waits.remove(&(task, resource)) {
            let mut e = Ev::new(&name, "e", self.us(ts), PID_TASKS, task.get());
            e.cat = Some("wait");
            e.id = Some(id);
            self.emit(&e);
        }
    }

    /// Closes the lifetimes and waits still open at the window's end (`end`, ticks,
    /// or the last event) and the document.
    pub fn finish(mut self, end: Option<u64>) -> io::Result<W> {
        let end = end.unwrap_or(self.last_ts);
        for (task, resource) in self.waits.keys().copied().collect::<Vec<_>>() {
            self.end_wait(task, resource, end);
        }
        for task in std::mem::take(&mut self.alive) {
            self.alive.insert(task);
            self.end_task(task, end);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> crate::window::Observer for PerfettoWriter<W> {
    fn observe(&mut self, item: &Item<'_>) {
        PerfettoWriter::observe(self, item);
    }
}
