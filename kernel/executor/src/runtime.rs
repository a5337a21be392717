//! Per-CPU schedulers, the global injector, work stealing and idling.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::panic::Location;
use core::ptr::NonNull;

use cordyceps::MpscQueue;
use cordyceps::mpsc_queue::{Consumer, TryDequeueError};

use crate::hooks::{Hooks, SpawnInfo};
use crate::loom::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use crate::platform::Platform;
use crate::registry::{LiveTask, Registry};
use crate::task::{Header, JoinHandle, PollResult, Task, TaskId, TaskInfo, TaskKind, TaskRef};
use crate::time::Timer;

/// How many tasks one [`Runtime::tick`] polls at most, so the caller gets
/// control back regularly (timers, interrupts, shutdown).
pub const TICK_BUDGET: usize = 256;
/// Every this many polls the injector goes first, so a busy local queue
/// cannot starve globally spawned tasks.
const INJECTOR_INTERVAL: usize = 61;
/// At most this many tasks move in one steal.
const STEAL_MAX: usize = 64;
/// LIFO-slot polls in a row before the run queue gets a turn (tokio's figure).
const MAX_LIFO_RUN: usize = 3;

/// The executor: one [`Scheduler`] per CPU, a global injector queue for tasks
/// spawned outside any CPU, and a [`Timer`].
///
/// It lives for the rest of the system (`&'static`): tasks point back to it.
pub struct Runtime {
    schedulers: Box<[Scheduler]>,
    injector: MpscQueue<Header>,
    injected: AtomicUsize,
    platform: &'static dyn Platform,
    hooks: HookGate,
    next_id: AtomicU64,
    timer: Timer,
    /// The live tasks, kept only when hooks are installed.
    registry: Option<Registry>,
}

/// The hooks and whether they are called. The trace layer closes the gate while
/// tracing is paused or off, so an untraced executor pays one load and a branch per
/// call site instead of a call into the hooks (and skips the per-task totals they
/// keep). On a cache line of its own: every call site on every CPU reads it, and
/// the runtime's other atomics change per spawn.
#[repr(align(64))]
struct HookGate {
    hooks: Option<&'static dyn Hooks>,
    open: AtomicBool,
}

/// The task being polled on the calling CPU, for panic and fault reports.
#[derive(Debug, Clone, Copy)]
pub struct CurrentTask {
    /// Its id.
    pub id: TaskId,
    /// Its name, if it has one.
    pub name: Option<&'static str>,
    /// Where it was spawned.
    pub location: &'static Location<'static>,
}

/// One CPU's scheduler: its run queue and counters.
pub struct Scheduler {
    cpu: usize,
    run_queue: MpscQueue<Header>,
    /// Tasks in `run_queue` are `pushed + requeued - popped` ([`Scheduler::queued`]:
    /// approximate while pushes and pops are in flight, exact when quiescent), read by
    /// idle checks and thieves. Three counters so that the poll loop's own push and
    /// pop take no locked instruction. `pushed`: by wakes, spawns and thieves, from
    /// any CPU or interrupt handler (an atomic add).
    pushed: AtomicUsize,
    /// Put back by this CPU's own polls (a task that woke itself while polled): only
    /// this CPU's `tick` changes it (a plain load and store).
    requeued: AtomicUsize,
    /// Taken out: changed only under the run queue's consumer lock (a plain load and
    /// store).
    popped: AtomicUsize,
    /// Set while the CPU is about to idle or idling: wakes must send
    /// `Platform::wake_cpu`.
    sleeping: AtomicBool,
    /// The task a poll on this CPU woke last, polled next (a LIFO slot, as in tokio):
    /// it runs while what its waker wrote is still in this CPU's cache. Holds the
    /// run queue's reference; only this CPU (its polls and its interrupt handlers)
    /// swaps it, never a thief.
    lifo: AtomicPtr<Header>,
    /// The id of the task being polled here, `TaskId::STUB` if none.
    current: AtomicU64,
    /// The header of the task being polled here, null if none (for panic reports).
    current_header: AtomicPtr<Header>,
    counters: Counters,
}

/// A scheduler's counters. Those only its own CPU changes (in `tick` and
/// `tick_or_idle`, which never run twice at once for one CPU) are bumped with a
/// plain load and store ([`bump`]): no locked instruction on every poll. Local wakes
/// may also come from the CPU's interrupt handlers ([`bump_interruptible`]). The
/// others (spawns and remote wakes, idle time from the embedder) take an atomic add.
#[derive(Default)]
struct Counters {
    /// Owner only.
    polls: AtomicU64,
    spawns: AtomicU64,
    /// Owner only.
    completions: AtomicU64,
    /// Owner only, interrupt handlers included.
    wakes_local: AtomicU64,
    wakes_remote: AtomicU64,
    /// Owner only (the thief's).
    steals: AtomicU64,
    /// Owner only.
    idles: AtomicU64,
    idle_time: AtomicU64,
}

/// Adds `n` to a counter only one CPU changes: a plain load and store, which
/// readers elsewhere see whole (it is still an atomic), with no locked instruction.
#[inline]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Adds one to a counter only one CPU changes, its interrupt handlers included: on
/// x86-64 one `inc` of memory, which an interrupt cannot split and which needs no
/// lock prefix (as Linux's `this_cpu_inc`); elsewhere an atomic add.
#[inline]
fn bump_interruptible(counter: &AtomicU64) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        // SAFETY: `counter` is a live, aligned u64 that only this CPU writes, read and
        // written by this one instruction; other CPUs' loads see either value whole
        // (aligned 8-byte accesses are atomic on x86-64).
        unsafe {
            core::arch::asm!("inc qword ptr [{0}]", in(reg) counter.as_ptr(), options(nostack));
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    counter.fetch_add(1, Relaxed);
}

/// A snapshot of one scheduler's counters, for the trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerCounters {
    /// Task polls (including cancellations run by the scheduler).
    pub polls: u64,
    /// Tasks spawned into this scheduler's run queue.
    pub spawns: u64,
    /// Tasks that completed here (any outcome).
    pub completions: u64,
    /// Wakes (by value or by reference) of tasks bound to this CPU, issued
    /// on this CPU.
    pub wakes_local: u64,
    /// Wakes of tasks bound to this CPU issued elsewhere (another CPU, or
    /// outside any CPU).
    pub wakes_remote: u64,
    /// Tasks this CPU stole from others.
    pub steals: u64,
    /// Times this CPU went idle.
    pub idles: u64,
    /// Idle time as reported by [`Runtime::record_idle_time`], in the
    /// embedder's unit.
    pub idle_time: u64,
}

/// What one [`Runtime::tick`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// Tasks polled.
    pub polled: usize,
    /// Tasks stolen from other CPUs.
    pub stolen: usize,
    /// Work was left in this CPU's queue or the injector.
    pub has_remaining: bool,
}

impl Scheduler {
    fn new(cpu: usize) -> Self {
        Self {
            cpu,
            run_queue: MpscQueue::new_with_stub(TaskRef::new_stub()),
            pushed: AtomicUsize::new(0),
            requeued: AtomicUsize::new(0),
            popped: AtomicUsize::new(0),
            sleeping: AtomicBool::new(false),
            lifo: AtomicPtr::new(core::ptr::null_mut()),
            current: AtomicU64::new(TaskId::STUB.0),
            current_header: AtomicPtr::new(core::ptr::null_mut()),
            counters: Counters::default(),
        }
    }

    /// This scheduler's CPU index.
    #[must_use]
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// How many tasks wait in this CPU's run queue.
    #[must_use]
    pub fn queued(&self) -> usize {
        // `popped` first: every pop it counts came after its task's push was counted
        // (a push is counted before the enqueue the pop took it from, and `popped` is
        // stored after the pop), so the pushes read next include those and the
        // difference cannot go below zero. `pushed` is `SeqCst` for the idle check
        // (see `Runtime::tick_or_idle`).
        let popped = self.popped.load(Acquire);
        let requeued = self.requeued.load(Acquire);
        self.pushed.load(SeqCst).wrapping_add(requeued).wrapping_sub(popped)
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn counters(&self) -> SchedulerCounters {
        let c = &self.counters;
        SchedulerCounters {
            polls: c.polls.load(Relaxed),
            spawns: c.spawns.load(Relaxed),
            completions: c.completions.load(Relaxed),
            wakes_local: c.wakes_local.load(Relaxed),
            wakes_remote: c.wakes_remote.load(Relaxed),
            steals: c.steals.load(Relaxed),
            idles: c.idles.load(Relaxed),
            idle_time: c.idle_time.load(Relaxed),
        }
    }

    fn push(&self, task: TaskRef) {
        // Counted before the enqueue so an idle check that misses the task in
        // the queue still sees the count (see `Runtime::tick_or_idle`).
        self.pushed.fetch_add(1, SeqCst);
        self.run_queue.enqueue(task);
    }

    /// Puts back a task this CPU's `tick` just polled. Only `tick` calls this (never
    /// an interrupt handler, never two at once for one CPU).
    fn requeue(&self, task: TaskRef) {
        // Released before the enqueue: whoever pops the task, and anyone who then
        // reads `popped`, sees the count (see `queued`).
        self.requeued
            .store(self.requeued.load(Relaxed).wrapping_add(1), Release);
        self.run_queue.enqueue(task);
    }

    fn pop(&self) -> Option<TaskRef> {
        let consumer = self.run_queue.consume();
        let task = consumer.dequeue()?;
        self.count_pop(&consumer);
        Some(task)
    }

    /// Counts one task taken out by `_consumer`, whose lock makes this the only
    /// writer.
    fn count_pop(&self, _consumer: &Consumer<'_, Header>) {
        self.popped.store(self.popped.load(Relaxed).wrapping_add(1), Release);
    }

    /// Puts `task` into the LIFO slot; returns the task it displaced.
    fn put_lifo(&self, task: TaskRef) -> Option<TaskRef> {
        let old = self.lifo.swap(task.into_raw().as_ptr(), AcqRel);
        // SAFETY: the slot held a run-queue reference, now ours.
        NonNull::new(old).map(|p| unsafe { TaskRef::from_raw(p) })
    }

    fn take_lifo(&self) -> Option<TaskRef> {
        if !self.has_lifo() {
            return None;
        }
        let old = self.lifo.swap(core::ptr::null_mut(), AcqRel);
        // SAFETY: as in `put_lifo`.
        NonNull::new(old).map(|p| unsafe { TaskRef::from_raw(p) })
    }

    fn has_lifo(&self) -> bool {
        !self.lifo.load(Relaxed).is_null()
    }
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("cpu", &self.cpu)
            .field("queued", &self.queued())
            .field("sleeping", &self.sleeping.load(Relaxed))
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Creates a runtime with `cpus` schedulers and leaks it: it lives as long
    /// as the system. `hooks` is the trace layer, or `None` for none.
    ///
    /// # Panics
    ///
    /// If `cpus` is zero.
    pub fn new(cpus: usize, platform: &'static dyn Platform, hooks: Option<&'static dyn Hooks>) -> &'static Runtime {
        assert!(cpus > 0, "a runtime needs at least one CPU");
        let schedulers: Vec<Scheduler> = (0..cpus).map(Scheduler::new).collect();
        Box::leak(Box::new(Runtime {
            schedulers: schedulers.into_boxed_slice(),
            injector: MpscQueue::new_with_stub(TaskRef::new_stub()),
            injected: AtomicUsize::new(0),
            platform,
            hooks: HookGate {
                hooks,
                open: AtomicBool::new(true),
            },
            next_id: AtomicU64::new(1),
            timer: Timer::new(),
            registry: hooks.map(|_| Registry::new(cpus)),
        }))
    }

    /// The scheduler of `cpu`.
    ///
    /// # Panics
    ///
    /// If `cpu` is out of range.
    #[must_use]
    pub fn scheduler(&self, cpu: usize) -> &Scheduler {
        &self.schedulers[cpu]
    }

    /// All schedulers, indexed by CPU.
    #[must_use]
    pub fn schedulers(&self) -> &[Scheduler] {
        &self.schedulers
    }

    /// The runtime's timer.
    #[must_use]
    pub fn timer(&self) -> &Timer {
        &self.timer
    }

    pub(crate) fn platform(&self) -> &'static dyn Platform {
        self.platform
    }

    /// The hooks, if installed and the gate is open.
    #[inline]
    pub(crate) fn hooks(&self) -> Option<&'static dyn Hooks> {
        let gate = &self.hooks;
        gate.hooks.filter(|_| gate.open.load(Relaxed))
    }

    /// Opens or closes the gate in front of the hooks: while closed, no hook is
    /// called (the trace layer closes it while tracing is paused or off; what the
    /// executor did meanwhile is in its per-CPU [`Scheduler::counters`]). A call
    /// already past the gate when it closes still runs.
    pub fn set_hooks_enabled(&self, open: bool) {
        self.hooks.open.store(open, Relaxed);
    }

    /// Whether hooks are installed and their gate is open.
    #[must_use]
    pub fn hooks_enabled(&self) -> bool {
        self.hooks().is_some()
    }

    pub(crate) fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }

    /// Every task spawned and not yet freed, with its totals, in id order; empty
    /// when the runtime has no hooks (it keeps no registry then). For a trace
    /// consumer that connects late: its answer to "what is running?".
    #[must_use]
    pub fn live_tasks(&self) -> Vec<LiveTask> {
        self.registry
            .as_ref()
            .map_or_else(Vec::new, |r| r.collect(self.platform))
    }

    /// How many tasks [`Runtime::live_tasks`] would list.
    #[must_use]
    pub fn live_task_count(&self) -> usize {
        self.registry.as_ref().map_or(0, |r| r.len(self.platform))
    }

    /// The task being polled on the calling CPU, if any (for a panic handler
    /// that reports which task panicked).
    #[must_use]
    pub fn current_task_info(&self) -> Option<CurrentTask> {
        let cpu = self.platform.current_cpu()?;
        let header = self.schedulers.get(cpu)?.current_header.load(Acquire);
        if header.is_null() {
            return None;
        }
        // SAFETY: `poll_task` on this CPU stores the header of the task it polls, and
        // clears it when the poll returns; the run queue's reference keeps the task
        // alive meanwhile. The caller runs on this CPU, so it is inside that poll.
        let header = unsafe { &*header };
        Some(CurrentTask {
            id: header.id(),
            name: header.name(),
            location: header.location(),
        })
    }

    /// The id of the task being polled on the calling CPU.
    pub fn current_task(&self) -> Option<TaskId> {
        let cpu = self.platform.current_cpu()?;
        let id = self.schedulers.get(cpu)?.current.load(Relaxed);
        (id != TaskId::STUB.0).then_some(TaskId(id))
    }

    /// Counts a wake of a task bound to `cpu`, whether or not it had to be
    /// queued.
    pub(crate) fn count_wake(&self, cpu: usize) {
        let sched = &self.schedulers[cpu];
        if self.platform.current_cpu() == Some(cpu) {
            bump_interruptible(&sched.counters.wakes_local);
        } else {
            sched.counters.wakes_remote.fetch_add(1, Relaxed);
        }
    }

    /// Spawns `future` as an unnamed kernel task.
    #[track_caller]
    pub fn spawn<F>(&'static self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.builder().spawn(future)
    }

    /// A builder for a task with a name, kind, metadata or placement.
    pub fn builder(&'static self) -> TaskBuilder<()> {
        TaskBuilder {
            rt: self,
            name: None,
            kind: TaskKind::Kernel,
            cpu: None,
            metadata: (),
        }
    }

    /// Puts a woken task into its scheduler's run queue. `task` carries the
    /// run queue's reference.
    pub(crate) fn schedule(&self, task: TaskRef) {
        let here = self.platform.current_cpu();
        if let Some(h) = here
            && self.schedulers[h].current.load(Relaxed) != TaskId::STUB.0
        {
            // Woken by the poll running here: the woken task runs here next, beside
            // the data its waker just produced, instead of on its old CPU, which may
            // be asleep (a wake-up IPI) or busy (a wait behind its queue). Work
            // spreads again by stealing.
            task.header().cpu.store(h, Relaxed);
            let sched = &self.schedulers[h];
            if let Some(displaced) = sched.put_lifo(task) {
                sched.push(displaced);
                self.share_work(h);
            }
            return;
        }
        let cpu = task.header().cpu.load(Relaxed);
        let sched = &self.schedulers[cpu];
        sched.push(task);
        if here != Some(cpu) && sched.sleeping.load(SeqCst) {
            self.platform.wake_cpu(cpu);
        } else {
            self.share_work(cpu);
        }
    }

    /// Work is piling up on `cpu` (it has more queued than the task it is about to
    /// run): wake one sleeping sibling so it can steal. One is enough; if it finds
    /// more than it can take, its own queue grows and it wakes the next.
    fn share_work(&self, cpu: usize) {
        if self.schedulers[cpu].queued() < 2 {
            return;
        }
        let n = self.schedulers.len();
        if let Some(idle) = (1..n)
            .map(|i| &self.schedulers[(cpu + i) % n])
            .find(|s| s.sleeping.load(SeqCst))
        {
            self.platform.wake_cpu(idle.cpu);
        }
    }

    fn spawn_task(&self, task: TaskRef, cpu: Option<usize>, info: SpawnInfo<'_>) {
        if let Some(hooks) = self.hooks() {
            hooks.on_spawn(&info);
        }
        match cpu {
            Some(cpu) => {
                let sched = &self.schedulers[cpu];
                sched.counters.spawns.fetch_add(1, Relaxed);
                sched.push(task);
                if self.platform.current_cpu() != Some(cpu) && sched.sleeping.load(SeqCst) {
                    self.platform.wake_cpu(cpu);
                } else {
                    self.share_work(cpu);
                }
            }
            None => {
                self.injected.fetch_add(1, SeqCst);
                self.injector.enqueue(task);
                if let Some(idle) = self.schedulers.iter().find(|s| s.sleeping.load(SeqCst)) {
                    self.platform.wake_cpu(idle.cpu);
                }
            }
        }
    }

    fn pop_injector(&self) -> Option<TaskRef> {
        if self.injected.load(Relaxed) == 0 {
            return None;
        }
        match self.injector.try_dequeue() {
            Ok(task) => {
                self.injected.fetch_sub(1, Relaxed);
                Some(task)
            }
            // Another CPU is taking from the injector, or a producer is half
            // way through an enqueue: `injected` stays non-zero, so this CPU
            // does not idle and retries on its next tick.
            Err(TryDequeueError::Busy | TryDequeueError::Inconsistent | TryDequeueError::Empty) => None,
        }
    }

    /// Moves up to half of another CPU's queued tasks (at most `STEAL_MAX`)
    /// to `cpu`'s queue. Returns how many moved.
    pub fn steal(&self, cpu: usize) -> usize {
        let n = self.schedulers.len();
        let thief = &self.schedulers[cpu];
        for i in 1..n {
            let victim = &self.schedulers[(cpu + i) % n];
            let available = victim.queued();
            if available == 0 {
                continue;
            }
            // Busy means the owner (or another thief) is dequeuing: try the
            // next victim rather than wait.
            let Some(consumer) = victim.run_queue.try_consume() else {
                continue;
            };
            let want = available.div_ceil(2).min(STEAL_MAX);
            let mut moved = 0;
            while moved < want {
                let Ok(task) = consumer.try_dequeue() else {
                    break;
                };
                victim.count_pop(&consumer);
                task.header().cpu.store(cpu, Relaxed);
                if let Some(hooks) = self.hooks() {
                    hooks.on_steal(task.id(), victim.cpu, cpu);
                }
                thief.push(task);
                moved += 1;
            }
            drop(consumer);
            if moved > 0 {
                bump(&thief.counters.steals, moved as u64);
                return moved;
            }
        }
        0
    }

    /// Polls up to [`TICK_BUDGET`] tasks on `cpu`: from its own queue, the
    /// injector (first every `INJECTOR_INTERVAL` polls, else when the local
    /// queue is empty), and by stealing when both are empty.
    ///
    /// The caller must be `cpu` (`Platform::current_cpu() == Some(cpu)`);
    /// two callers must never tick the same CPU at once.
    pub fn tick(&self, cpu: usize) -> Tick {
        let sched = &self.schedulers[cpu];
        let mut tick = Tick::default();
        let mut lifo_run = 0;
        while tick.polled < TICK_BUDGET {
            // A few LIFO polls in a row, then the queue's turn: two tasks waking each
            // other through the slot must not starve the rest.
            let lifo = if lifo_run < MAX_LIFO_RUN {
                sched.take_lifo()
            } else {
                None
            };
            lifo_run = if lifo.is_some() { lifo_run + 1 } else { 0 };
            let task = if lifo.is_some() {
                lifo
            } else if tick.polled % INJECTOR_INTERVAL == INJECTOR_INTERVAL - 1 {
                self.pop_injector()
                    .or_else(|| sched.pop())
                    .or_else(|| sched.take_lifo())
            } else {
                sched
                    .pop()
                    .or_else(|| self.pop_injector())
                    .or_else(|| sched.take_lifo())
            };
            let Some(task) = task else {
                let stolen = self.steal(cpu);
                if stolen == 0 {
                    break;
                }
                tick.stolen += stolen;
                continue;
            };
            self.poll_task(sched, task);
            tick.polled += 1;
        }
        tick.has_remaining = sched.queued() > 0 || sched.has_lifo() || self.injected.load(Relaxed) > 0;
        tick
    }

    fn poll_task(&self, sched: &Scheduler, task: TaskRef) {
        let cpu = sched.cpu;
        let id = task.id();
        task.header().cpu.store(cpu, Relaxed);
        sched.current.store(id.0, Relaxed);
        sched
            .current_header
            .store(task.header() as *const Header as *mut Header, Release);
        if let Some(hooks) = self.hooks() {
            let stats = task.header().stats();
            stats.count_poll();
            hooks.on_poll_start(cpu, id, stats);
        }
        let result = task.poll();
        sched.current_header.store(core::ptr::null_mut(), Release);
        sched.current.store(TaskId::STUB.0, Relaxed);
        bump(&sched.counters.polls, 1);
        // `on_poll_end` and `on_complete` were reported by the task itself, before it
        // released the poll (see `Task::poll`).
        match result {
            PollResult::Ready | PollResult::ReadyJoined => {
                bump(&sched.counters.completions, 1);
            }
            PollResult::Pending => {}
            PollResult::PendingSchedule => sched.requeue(task),
        }
    }

    /// Whether `cpu` has anything to do: its queue, the injector, or a
    /// sibling's queue to steal from.
    fn has_work(&self, cpu: usize) -> bool {
        self.injected.load(SeqCst) > 0
            || self.schedulers[cpu].queued() > 0
            || self.schedulers[cpu].has_lifo()
            || self.schedulers.iter().any(|s| s.cpu != cpu && s.queued() > 0)
    }

    /// One iteration of a CPU's loop: [`Runtime::tick`], and if there was
    /// nothing to do, [`Platform::idle`] until woken.
    ///
    /// The sleeping flag is set before the last look at the queues, and wakes
    /// push before they read the flag (both `SeqCst`): either this CPU sees
    /// the new task, or the waker sees the flag and calls `wake_cpu`.
    pub fn tick_or_idle(&self, cpu: usize) -> Tick {
        let tick = self.tick(cpu);
        if tick.polled > 0 || tick.stolen > 0 {
            return tick;
        }
        let sched = &self.schedulers[cpu];
        sched.sleeping.store(true, SeqCst);
        if !self.has_work(cpu) {
            bump(&sched.counters.idles, 1);
            if let Some(hooks) = self.hooks() {
                hooks.on_idle(cpu, true);
            }
            self.platform.idle(cpu);
            if let Some(hooks) = self.hooks() {
                hooks.on_idle(cpu, false);
            }
        }
        sched.sleeping.store(false, SeqCst);
        tick
    }

    /// Runs `cpu`'s scheduler forever.
    pub fn run(&self, cpu: usize) -> ! {
        loop {
            self.tick_or_idle(cpu);
        }
    }

    /// Adds idle time measured by the embedder (e.g. TSC ticks spent in
    /// `hlt`) to `cpu`'s counters.
    pub fn record_idle_time(&self, cpu: usize, time: u64) {
        self.schedulers[cpu].counters.idle_time.fetch_add(time, Relaxed);
    }

    /// Wakes every idle CPU (e.g. to shut down, or after the kernel made work
    /// visible by other means).
    pub fn wake_all(&self) {
        for sched in self.schedulers.iter() {
            if sched.sleeping.load(SeqCst) {
                self.platform.wake_cpu(sched.cpu);
            }
        }
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("schedulers", &self.schedulers)
            .field("injected", &self.injected.load(Relaxed))
            .field("hooks", &self.hooks.hooks.is_some())
            .field("hooks_enabled", &self.hooks.open.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// Configures a task before spawning it.
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct TaskBuilder<M> {
    rt: &'static Runtime,
    name: Option<&'static str>,
    kind: TaskKind,
    cpu: Option<usize>,
    metadata: M,
}

impl<M> TaskBuilder<M> {
    /// The task's name, as the trace shows it.
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// Kernel service or wasm instance.
    pub fn kind(mut self, kind: TaskKind) -> Self {
        self.kind = kind;
        self
    }

    /// Queue the task on `cpu` rather than on the calling CPU (or the
    /// injector when called outside any CPU).
    ///
    /// # Panics
    ///
    /// `spawn` panics if `cpu` is out of range.
    pub fn on_cpu(mut self, cpu: usize) -> Self {
        self.cpu = Some(cpu);
        self
    }

    /// Metadata stored in the task, readable through
    /// [`JoinHandle::metadata`] and [`TaskRef::metadata`].
    pub fn metadata<M2>(self, metadata: M2) -> TaskBuilder<M2> {
        TaskBuilder {
            rt: self.rt,
            name: self.name,
            kind: self.kind,
            cpu: self.cpu,
            metadata,
        }
    }

    /// Spawns `future`; the caller's location is recorded for the trace.
    ///
    /// # Panics
    ///
    /// If the CPU given to [`TaskBuilder::on_cpu`] does not exist.
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output, M>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        M: Send + Sync + 'static,
    {
        let rt = self.rt;
        let location = Location::caller();
        let cpu = self.cpu.or_else(|| rt.platform.current_cpu());
        if let Some(cpu) = cpu {
            assert!(cpu < rt.schedulers.len(), "no CPU {cpu} in this runtime");
        }
        let id = TaskId(rt.next_id.fetch_add(1, Relaxed));
        let parent = rt.current_task();
        let info = TaskInfo {
            id,
            name: self.name,
            kind: self.kind,
            location,
            cpu: cpu.unwrap_or(0),
            parent,
        };
        let ptr = Task::allocate(rt, info, self.metadata, future);
        // SAFETY: `allocate` counted two references: one for the run queue,
        // one for the JoinHandle; the task's output type is `F::Output` and
        // its metadata type is `M`.
        let (queued, handle) = unsafe { (TaskRef::from_raw(ptr), JoinHandle::new(ptr)) };
        rt.spawn_task(
            queued,
            cpu,
            SpawnInfo {
                id,
                name: self.name,
                kind: self.kind,
                location,
                cpu,
                parent,
                // SAFETY: the JoinHandle keeps the task alive for this call.
                stats: unsafe { ptr.as_ref() }.stats(),
            },
        );
        handle
    }
}

impl<M> fmt::Debug for TaskBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskBuilder")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("cpu", &self.cpu)
            .finish_non_exhaustive()
    }
}
