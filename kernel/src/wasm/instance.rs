//! One instance = one executor task (kind wasm, named after its module) that runs
//! the module's entry export with `call_async`. Fuel slices it: after
//! `fuel_per_slice` units the call yields and the task goes to the back of its
//! run queue, so a guest that never returns still gives up its CPU every slice.
//! Its lifetime fuel budget, memory limit and table limit are enforced by
//! wasmtime; a trap, an `exit` or a kill ends only this instance.
//!
//! Everything the console shows about instances is reported from here: creation,
//! every state change, memory growth, fuel and slices per poll, hostcall counts and
//! time per kind, and traps with their code and reason.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll};

use lucid_executor::FrameExt;
use lucid_protocol::{Message, WasmInstanceCreated, WasmState};
use lucid_wasm::abi::{Hostcall, KillReason, TrapCode};
use lucid_wasm::strikes::Strikes;
use wasmtime::{ResourceLimiter, Store, Trap, Val};

use super::budget::{Budget, Charge, Member, Refusal};
use super::channel::Handles;
use super::host::HostPanic;
use super::{Guest, Runtime, SpawnError, platform};
use crate::{arch, trace};

/// An instance id, unique for the life of the kernel: the id the trace protocol
/// carries.
pub use lucid_protocol::InstanceId;

/// Live instances at most; `spawn` beyond it is refused.
pub const MAX_INSTANCES: usize = 64;
/// Table elements an instance may have.
pub const MAX_TABLE_ELEMENTS: usize = 10_000;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
pub(super) static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Instances started and ended since boot.
pub(super) static STARTED: AtomicU64 = AtomicU64::new(0);
pub(super) static ENDED: AtomicU64 = AtomicU64::new(0);
/// The meters of live instances, for [`stats`].
static METERS: crate::sync::SpinLock<BTreeMap<InstanceId, Arc<Meter>>> = crate::sync::SpinLock::new(BTreeMap::new());

/// What an instance has used so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceStats {
    /// Time slices run (polls of its task).
    pub slices: u64,
    /// Fuel consumed.
    pub fuel: u64,
    /// Hostcalls made.
    pub hostcalls: u64,
    /// The CPU of its latest poll.
    pub cpu: u32,
}

/// What live instance `id` has used so far; `None` once it has ended.
pub fn stats(id: InstanceId) -> Option<InstanceStats> {
    let m = METERS.lock().get(&id).cloned()?;
    Some(InstanceStats {
        slices: m.slices.load(Ordering::Relaxed),
        fuel: m.fuel_used.load(Ordering::Relaxed),
        hostcalls: m.hostcalls.load(Ordering::Relaxed),
        cpu: m.cpu.load(Ordering::Relaxed),
    })
}

/// How an instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its entry returned (code 0, or the `i32` it returned) or it called `exit`.
    Exited(i32),
    /// A trap ended it.
    Trapped(TrapCode, String),
    /// The kernel killed it (its fuel budget ran out, or it kept ignoring refusals).
    Killed(KillReason),
}

/// `exit(code)`: unwinds the guest like a trap, but is reported as an exit.
#[derive(Debug)]
pub(super) struct Exit(pub i32);

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit({})", self.0)
    }
}

impl core::error::Error for Exit {}

/// A hostcall kills the instance for `0`: unwinds the guest like a trap, reported
/// as killed.
#[derive(Debug)]
pub(super) struct Kill(pub KillReason);

impl fmt::Display for Kill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "killed({})", self.0.name())
    }
}

impl core::error::Error for Kill {}

/// A hostcall refused its arguments: the instance traps with this code.
#[derive(Debug)]
pub(super) struct HostFault {
    pub code: TrapCode,
    pub reason: String,
}

impl fmt::Display for HostFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl core::error::Error for HostFault {}

/// What the task's poll wrapper and the hostcalls share (same task, so relaxed
/// atomics are enough; atomics keep the store data `Send`).
#[derive(Debug)]
pub(super) struct Meter {
    /// The hostcall the guest is blocked in, or [`Meter::NONE`].
    pub blocked_on: AtomicU32,
    /// The module's name.
    module: &'static str,
    /// Its WASI arguments and environment (for snapshots).
    args: lucid_wasm::wasi::Args<'static>,
    /// Remaining fuel when the current slice started.
    pub slice_start_fuel: AtomicU64,
    /// Remaining fuel when the guest entered the hostcall it is blocked in.
    pub fuel_at_block: AtomicU64,
    /// Remaining fuel when the call returned.
    pub final_fuel: AtomicU64,
    /// Nanoseconds the current `sleep` asked for.
    pub sleep_ns: AtomicU64,
    /// Fuel hostcalls charged that is taken from the store at the next block.
    pub fuel_owed: AtomicU64,
    /// Totals for [`stats`] and snapshots.
    slices: AtomicU64,
    cpu: AtomicU32,
    task: AtomicU64,
    pages: AtomicU32,
    /// The last reported state (`WasmState as u8`).
    state: core::sync::atomic::AtomicU8,
    fuel_used: AtomicU64,
    hostcalls: AtomicU64,
    /// Per hostcall: calls and TSC ticks since the last report.
    calls: [AtomicU64; HOSTCALLS],
    ticks: [AtomicU64; HOSTCALLS],
    /// The store, for the timer to suspend its wasm (timer-metered guests, once
    /// the store exists).
    preempt: spin::Once<wasmtime::PreemptHandle>,
}

const HOSTCALLS: usize = Hostcall::ALL.len();

impl Meter {
    pub const NONE: u32 = u32::MAX;

    fn new(module: &'static str, args: lucid_wasm::wasi::Args<'static>, fuel: u64) -> Self {
        Self {
            module,
            args,
            blocked_on: AtomicU32::new(Self::NONE),
            slice_start_fuel: AtomicU64::new(fuel),
            fuel_at_block: AtomicU64::new(fuel),
            final_fuel: AtomicU64::new(fuel),
            sleep_ns: AtomicU64::new(0),
            fuel_owed: AtomicU64::new(0),
            slices: AtomicU64::new(0),
            cpu: AtomicU32::new(0),
            task: AtomicU64::new(0),
            pages: AtomicU32::new(0),
            state: core::sync::atomic::AtomicU8::new(WasmState::Created as u8),
            fuel_used: AtomicU64::new(0),
            hostcalls: AtomicU64::new(0),
            calls: [const { AtomicU64::new(0) }; HOSTCALLS],
            ticks: [const { AtomicU64::new(0) }; HOSTCALLS],
            preempt: spin::Once::new(),
        }
    }

    /// Counts one call of `h` that took `ticks`.
    pub fn count(&self, h: Hostcall, ticks: u64) {
        self.hostcalls.fetch_add(1, Ordering::Relaxed);
        self.calls[h as usize].fetch_add(1, Ordering::Relaxed);
        self.ticks[h as usize].fetch_add(ticks, Ordering::Relaxed);
    }

    /// Reports and resets the per-hostcall counts.
    fn report(&self, instance: InstanceId) {
        for (i, (calls, ticks)) in self.calls.iter().zip(&self.ticks).enumerate() {
            let n = calls.swap(0, Ordering::Relaxed);
            if n > 0 {
                let t = ticks.swap(0, Ordering::Relaxed);
                trace::message(&Message::WasmHostcalls {
                    instance,
                    hostcall: i as u32,
                    calls: n,
                    ticks: t,
                });
            }
        }
    }
}

/// The store data of one instance.
pub struct InstanceData {
    pub(super) id: InstanceId,
    pub(super) guest: &'static Guest,
    pub(super) handles: Handles,
    pub(super) meter: Arc<Meter>,
    pub(super) pages: u32,
    /// A refusal of its budget was logged (logged once per instance).
    pub(super) refusal_logged: bool,
    /// Its WASI arguments, output lines and closed descriptors.
    pub(super) wasi: super::wasi::WasiState,
    /// Refusals it was given, and its log allowance.
    pub(super) strikes: Strikes,
}

impl fmt::Debug for InstanceData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceData")
            .field("id", &self.id)
            .field("module", &self.guest.entry.name)
            .finish()
    }
}

impl ResourceLimiter for InstanceData {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let limit = self.guest.entry.max_memory_pages as usize * 65536;
        if desired > limit {
            return Ok(false);
        }
        let (old, new) = ((current / 65536) as u32, (desired / 65536) as u32);
        self.pages = new;
        self.meter.pages.store(new, Ordering::Relaxed);
        // The first "growth" is the instantiation's initial allocation, reported
        // as the size in `WasmInstanceCreated`.
        if current > 0 {
            trace::message(&Message::WasmMemoryGrow {
                instance: self.id,
                old_pages: old,
                new_pages: new,
            });
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

fn state(meter: &Meter, instance: InstanceId, state: WasmState, detail: u64) {
    meter.state.store(state as u8, Ordering::Relaxed);
    trace::message(&Message::WasmStateChanged {
        instance,
        state,
        detail,
    });
}

/// A live instance as a snapshot answer describes it.
#[derive(Debug, Clone, Copy)]
pub struct LiveInstance {
    /// Its id.
    pub id: InstanceId,
    /// Its module.
    pub module: &'static str,
    /// Its last reported state.
    pub state: WasmState,
    /// What it used so far.
    pub stats: InstanceStats,
    /// The task that runs it (0 before it first ran).
    pub task: lucid_protocol::TaskId,
    /// Linear memory pages.
    pub pages: u32,
    /// Its WASI arguments and environment.
    pub args: lucid_wasm::wasi::Args<'static>,
}

/// Longest argument or environment text a `WasmInstanceArgs` carries (cut at a
/// character boundary: a guest's command line is bounded by its bundle entry, but
/// one record must stay well inside a frame).
const MAX_ARGS_TEXT: usize = 1024;

/// The `WasmInstanceArgs` of instance `id`, unless it has no arguments besides its
/// name (`argv[0]`) and no environment.
pub fn args_message(id: InstanceId, args: &lucid_wasm::wasi::Args<'static>) -> Option<Message<'static>> {
    if args.argc <= 1 && args.envc == 0 {
        return None;
    }
    let text = |bytes: &'static [u8]| lucid_wasm::text::utf8_prefix(bytes, MAX_ARGS_TEXT).unwrap_or("");
    Some(Message::WasmInstanceArgs(lucid_protocol::WasmInstanceArgs {
        instance: id,
        args: text(args.args),
        env: text(args.env),
    }))
}

/// Every live instance (for a console that connects late).
pub fn snapshots() -> alloc::vec::Vec<LiveInstance> {
    METERS
        .lock()
        .iter()
        .map(|(&id, m)| LiveInstance {
            id,
            module: m.module,
            state: WasmState::ALL
                .get(m.state.load(Ordering::Relaxed) as usize)
                .copied()
                .unwrap_or(WasmState::Running),
            stats: InstanceStats {
                slices: m.slices.load(Ordering::Relaxed),
                fuel: m.fuel_used.load(Ordering::Relaxed),
                hostcalls: m.hostcalls.load(Ordering::Relaxed),
                cpu: m.cpu.load(Ordering::Relaxed),
            },
            task: lucid_protocol::TaskId(m.task.load(Ordering::Relaxed)),
            pages: m.pages.load(Ordering::Relaxed),
            args: m.args,
        })
        .collect()
}

/// Starts `guest` as a new task: the root of a new instance tree with its
/// manifest's kernel memory budget, or, given its `parent`'s handles, a child in
/// the parent's tree holding copies of them.
pub(super) fn spawn(
    rt: &'static Runtime,
    guest: &'static Guest,
    parent: Option<&Handles>,
) -> Result<(InstanceId, lucid_executor::JoinHandle<Outcome>), SpawnError> {
    // A full kernel refuses first, whatever the tree would say.
    if LIVE.load(Ordering::Acquire) >= MAX_INSTANCES {
        return Err(SpawnError::TooManyInstances);
    }
    let (member, child, handles) = join_tree(guest, parent)?;
    // The place is taken without ever counting past the limit or counting a spawn
    // the tree refuses, so `live_instances` never reads more than were admitted;
    // refused here, the tree membership and charges above are given back on drop.
    LIVE.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        (n < MAX_INSTANCES).then_some(n + 1)
    })
    .map_err(|_| SpawnError::TooManyInstances)?;
    let id = InstanceId(NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let budget = match guest.entry.fuel_budget {
        0 => u64::MAX,
        b => b,
    };
    // The bundle was checked when it was parsed.
    let args = lucid_wasm::wasi::Args::parse(guest.entry.args).unwrap_or_default();
    let meter = Arc::new(Meter::new(guest.entry.name, args, budget));
    METERS.lock().insert(id, meter.clone());
    STARTED.fetch_add(1, Ordering::Relaxed);
    let data = InstanceData {
        id,
        guest,
        handles,
        meter: meter.clone(),
        pages: 0,
        refusal_logged: false,
        wasi: super::wasi::WasiState::new(guest.entry.args),
        strikes: Strikes::default(),
    };
    let run = Metered {
        _tree: (member, child),
        id,
        guest,
        interval: guest.entry.fuel_per_slice,
        meter,
        tls: [core::ptr::null_mut(); platform::TLS_SLOTS],
        last_fuel: budget,
        first: true,
        finished: false,
        inner: Box::pin(run(rt, guest, data, budget)),
    };
    let handle = crate::sched::runtime()
        .builder()
        .name(guest.entry.name)
        .kind(lucid_executor::TaskKind::Wasm)
        .spawn(run);
    Ok((id, handle))
}

/// The new instance's place in its tree: membership, its charge as a child and
/// its handle table.
fn join_tree(guest: &Guest, parent: Option<&Handles>) -> Result<(Member, Option<Charge>, Handles), SpawnError> {
    let refused = |r| match r {
        Refusal::NoMemory => SpawnError::NoMemory,
        Refusal::TooManyInstances => SpawnError::TreeFull,
    };
    match parent {
        None => {
            let limit = usize::try_from(guest.entry.kernel_memory_budget).unwrap_or(usize::MAX);
            let budget = Budget::new(limit);
            let member = budget.join().map_err(refused)?;
            Ok((member, None, Handles::new(&budget)))
        }
        Some(parent) => {
            let budget = parent.budget();
            let member = budget.join().map_err(refused)?;
            let child = budget.charge(super::budget::CHILD_COST).map_err(refused)?;
            let handles = parent.share().map_err(refused)?;
            Ok((member, Some(child), handles))
        }
    }
}

/// Instantiates and runs one instance to its end.
async fn run(rt: &'static Runtime, guest: &'static Guest, data: InstanceData, budget: u64) -> Outcome {
    let id = data.id;
    let meter = data.meter.clone();
    let mut store = Store::new(guest.module.engine(), data);
    store.limiter(|d| d);
    if !guest.fuel_metered() {
        // The store's state is boxed and outlives every poll that arms the timer.
        let handle = *meter.preempt.call_once(|| store.preempt_handle());
        // This first poll goes on into the guest: its slice starts now.
        super::preempt::arm(handle, guest);
    }
    let setup = fuel(&mut store, guest, budget, Some(guest.entry.fuel_per_slice));
    let outcome = match setup {
        Ok(()) => call(rt, guest, &mut store).await,
        Err(e) => Err(e),
    };
    meter.final_fuel.store(store.get_fuel().unwrap_or(0), Ordering::Relaxed);
    super::wasi::flush(store.data_mut());
    let (outcome, host_panic) = match outcome {
        Ok(code) => (Outcome::Exited(code), None),
        Err(e) => {
            let outcome = classify(&e, guest);
            (outcome, e.downcast::<HostPanic>().ok())
        }
    };
    match &outcome {
        Outcome::Exited(code) => state(&meter, id, WasmState::Exited, *code as u32 as u64),
        Outcome::Killed(reason) => {
            let (code, why) = kill_report(*reason);
            report_trap(id, code, why);
            state(&meter, id, WasmState::Killed, *reason as u64);
        }
        Outcome::Trapped(code, reason) => {
            report_trap(id, *code, reason);
            state(&meter, id, WasmState::Trapped, *code as u64);
        }
    }
    let tail = store.data().wasi.stderr_tail();
    if !tail.is_empty() {
        trace::message(&Message::WasmStderrTail(lucid_protocol::WasmStderrTail {
            instance: id,
            lines: tail,
        }));
    }
    if !tail.is_empty() && outcome != Outcome::Exited(0) {
        log::info!(
            "wasm: {}#{id} last stderr lines: {}",
            guest.entry.name,
            lucid_wasm::text::Escaped(tail)
        );
    }
    match &outcome {
        Outcome::Exited(0) => log::debug!("wasm: {}#{id} exited with 0", guest.entry.name),
        Outcome::Exited(code) => log::info!("wasm: {}#{id} exited with {code}", guest.entry.name),
        Outcome::Killed(reason) => log::info!(
            "wasm: {}#{id} killed({}): {}",
            guest.entry.name,
            reason.name(),
            kill_report(*reason).1
        ),
        Outcome::Trapped(code, reason) => {
            log::info!("wasm: {}#{id} trapped ({}): {reason}", guest.entry.name, code.name());
        }
    }
    if let Some(HostPanic(panic)) = host_panic {
        // A hostcall panicked: the instance is reported trapped, and its task ends
        // as that panic, raised here, outside the fiber.
        drop(store);
        crate::panic::resume(panic);
    }
    outcome
}

/// Gives `store` its fuel budget, sliced into `slice`s if given (nothing for a
/// guest the timer preempts: its engine has no fuel).
fn fuel(store: &mut Store<InstanceData>, guest: &Guest, budget: u64, slice: Option<u64>) -> wasmtime::Result<()> {
    if !guest.fuel_metered() {
        return Ok(());
    }
    // The interval first: `set_fuel` splits the budget into one slice's injection
    // and a reserve.
    store.fuel_async_yield_interval(slice)?;
    store.set_fuel(budget)
}

#[cfg(not(feature = "ktest"))]
/// A store for running `guest`'s exports directly in the calling task (no instance
/// task, no slicing): what `cargo xtask bench` measures.
pub(super) fn bench_store(guest: &'static Guest) -> wasmtime::Result<Store<InstanceData>> {
    let budget = Budget::new(lucid_wasm::DEFAULT_KERNEL_MEMORY_BUDGET as usize);
    let data = InstanceData {
        id: InstanceId(0),
        guest,
        handles: Handles::new(&budget),
        meter: Arc::new(Meter::new(guest.entry.name, Default::default(), u64::MAX)),
        pages: 0,
        refusal_logged: false,
        wasi: super::wasi::WasiState::new(guest.entry.args),
        strikes: Strikes::default(),
    };
    let mut store = Store::new(guest.module.engine(), data);
    store.limiter(|d| d);
    fuel(&mut store, guest, u64::MAX, None)?;
    Ok(store)
}

async fn call(rt: &'static Runtime, guest: &'static Guest, store: &mut Store<InstanceData>) -> wasmtime::Result<i32> {
    let instance = rt
        .linker(guest)
        .instantiate_async(&mut *store, &guest.module)
        .frame("instantiate")
        .await?;
    let data = store.data();
    let task = crate::sched::runtime()
        .current_task()
        .map_or(lucid_protocol::TaskId(0), trace::wire_task);
    trace::message(&Message::WasmInstanceCreated(WasmInstanceCreated {
        instance: data.id,
        task,
        module: guest.entry.name,
        memory_pages: data.pages,
        // 0: sliced by the timer.
        fuel_per_slice: if guest.fuel_metered() {
            guest.entry.fuel_per_slice
        } else {
            0
        },
    }));
    if let Some(args) = args_message(data.id, &data.meter.args) {
        trace::message(&args);
    }
    data.meter.task.store(task.get(), Ordering::Relaxed);
    state(&data.meter, data.id, WasmState::Running, 0);
    let func = instance.get_func(&mut *store, guest.entry.entry).ok_or_else(|| {
        wasmtime::Error::new(HostFault {
            code: TrapCode::Other,
            reason: format!("module {} has no export {:?}", guest.entry.name, guest.entry.entry),
        })
    })?;
    let ty = func.ty(&*store);
    if ty.params().len() != 0 || ty.results().len() > 1 {
        return Err(wasmtime::Error::new(HostFault {
            code: TrapCode::Other,
            reason: format!(
                "entry {:?} must take no parameters and return nothing or one i32",
                guest.entry.entry
            ),
        }));
    }
    let mut results = [Val::I32(0)];
    let n = ty.results().len();
    func.call_async(&mut *store, &[], &mut results[..n])
        .frame(guest.entry.entry)
        .await?;
    Ok(if n == 1 { results[0].i32().unwrap_or(0) } else { 0 })
}

fn classify(e: &wasmtime::Error, guest: &Guest) -> Outcome {
    if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
        return Outcome::Exited(*code);
    }
    if let Some(Kill(reason)) = e.downcast_ref::<Kill>() {
        return Outcome::Killed(*reason);
    }
    if let Some(f) = e.downcast_ref::<HostFault>() {
        return Outcome::Trapped(f.code, f.reason.clone());
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        let code = TrapCode::from_trap(*trap);
        if code == TrapCode::OutOfFuel {
            return Outcome::Killed(KillReason::Fuel);
        }
        return Outcome::Trapped(code, symbolized(*trap, e, guest));
    }
    Outcome::Trapped(TrapCode::Other, one_line(e))
}

/// Frames of a trap's backtrace named in its reason.
const REASON_FRAMES: usize = 16;

/// A trap's reason: what trapped, then the wasm functions on the stack, innermost
/// first, by their name-section names (Rust symbols demangled; `wasm function N`
/// for a nameless one) with the module offset of each frame's instruction and,
/// where the module's line table has it, its source `file:line`.
fn symbolized(trap: Trap, e: &wasmtime::Error, guest: &Guest) -> String {
    use core::fmt::Write;
    let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return one_line(e);
    };
    let frames = bt.frames();
    if frames.is_empty() {
        return one_line(e);
    }
    let mut out = format!("{trap} in ");
    for (i, f) in frames.iter().take(REASON_FRAMES).enumerate() {
        if i > 0 {
            out.push_str(" <- ");
        }
        let _ = match f.func_name() {
            Some(name) => write!(out, "{}", lucid_wasm::demangle::Demangled(name)),
            None => write!(out, "wasm function {}", f.func_index()),
        };
        if let Some(offset) = f.module_offset() {
            let _ = write!(out, " @{offset:#x}");
            if let Some(line) = u32::try_from(offset).ok().and_then(|o| guest.lines.lookup(o)) {
                let _ = write!(out, " ({line})");
            }
        }
    }
    if frames.len() > REASON_FRAMES {
        let _ = write!(out, " <- {} more", frames.len() - REASON_FRAMES);
    }
    out
}

/// wasmtime's message with its backtrace (function index, code offset) on one line.
fn one_line(e: &wasmtime::Error) -> String {
    let text = format!("{e:?}");
    let mut out = String::with_capacity(text.len());
    for part in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(part);
    }
    out
}

/// The trap code and reason reported when an instance is killed for `reason`.
fn kill_report(reason: KillReason) -> (TrapCode, &'static str) {
    match reason {
        KillReason::Cancelled => (TrapCode::Other, "its task was cancelled"),
        KillReason::Fuel => (TrapCode::OutOfFuel, "fuel budget exhausted"),
        KillReason::Memory => (
            TrapCode::ResourceLimit,
            "kept calling after its kernel memory budget refused it",
        ),
        KillReason::Instances => (TrapCode::ResourceLimit, "kept spawning at its instance limit"),
        KillReason::Log => (TrapCode::ResourceLimit, "kept logging past its log rate"),
    }
}

fn report_trap(instance: InstanceId, code: TrapCode, reason: &str) {
    let task = crate::sched::runtime()
        .current_task()
        .map_or(lucid_protocol::TaskId(0), trace::wire_task);
    trace::message(&Message::WasmTrap(lucid_protocol::WasmTrap {
        instance,
        task,
        code: code as u32,
        reason,
    }));
}

/// The instance task's future: carries wasmtime's TLS slots with the task across
/// CPUs, arms the timer for a timer-metered guest's slice, and reports fuel,
/// slices, state and hostcalls after every poll.
struct Metered<F> {
    /// Its place in its tree and its charge as a child, given back together with
    /// its place among the kernel's live instances (`LIVE`).
    _tree: (Member, Option<Charge>),
    id: InstanceId,
    guest: &'static Guest,
    interval: u64,
    meter: Arc<Meter>,
    tls: [*mut u8; platform::TLS_SLOTS],
    /// Remaining fuel at the end of the last poll.
    last_fuel: u64,
    first: bool,
    finished: bool,
    inner: Pin<Box<F>>,
}

impl<F> Drop for Metered<F> {
    fn drop(&mut self) {
        METERS.lock().remove(&self.id);
        LIVE.fetch_sub(1, Ordering::AcqRel);
        ENDED.fetch_add(1, Ordering::Relaxed);
        if !self.finished {
            // Cancelled from outside (its task was aborted): the kernel killed it.
            state(&self.meter, self.id, WasmState::Killed, KillReason::Cancelled as u64);
        }
    }
}

// SAFETY: the raw TLS pointers are wasmtime's per-call state for this instance's
// own fiber; they are only ever installed on the CPU that polls this task, for the
// duration of the poll, which is exactly what wasmtime expects of a thread.
unsafe impl<F: Send> Send for Metered<F> {}

impl<F: Future<Output = Outcome>> Future for Metered<F> {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        // `Metered` is `Unpin`: the inner future is boxed.
        let this = self.get_mut();
        if !this.first {
            state(&this.meter, this.id, WasmState::Running, 0);
        }
        this.first = false;
        let cpu = crate::arch::percpu::try_current().map_or(0, |c| c.index);
        this.meter.cpu.store(cpu, Ordering::Relaxed);
        let saved = platform::swap_tls(this.tls);
        if let Some(&handle) = this.meter.preempt.get() {
            super::preempt::arm(handle, this.guest);
        }
        // Ends the slice even if the poll unwinds (a hostcall's panic).
        let _slice = (!this.guest.fuel_metered()).then_some(super::preempt::Slice);
        let r = this.inner.as_mut().poll(cx);
        this.tls = platform::swap_tls(saved);
        let m = &this.meter;
        let remaining = match (&r, m.blocked_on.load(Ordering::Relaxed)) {
            // Sliced by the timer: no fuel is counted.
            _ if !this.guest.fuel_metered() => this.last_fuel,
            (Poll::Ready(_), _) => m.final_fuel.load(Ordering::Relaxed),
            (Poll::Pending, Meter::NONE) => {
                // A fuel yield: the slice's whole injection was used, and wasmtime
                // injected the next slice.
                let start = m.slice_start_fuel.load(Ordering::Relaxed);
                let left = start.saturating_sub(this.interval);
                m.slice_start_fuel.store(left, Ordering::Relaxed);
                left
            }
            (Poll::Pending, _) => m.fuel_at_block.load(Ordering::Relaxed),
        };
        let fuel = this.last_fuel.saturating_sub(remaining);
        this.last_fuel = remaining;
        m.slices.fetch_add(1, Ordering::Relaxed);
        m.fuel_used.fetch_add(fuel, Ordering::Relaxed);
        trace::message(&Message::WasmPoll {
            instance: this.id,
            fuel,
            slices: 1,
        });
        m.report(this.id);
        if r.is_pending() {
            match m.blocked_on.load(Ordering::Relaxed) {
                Meter::NONE => state(m, this.id, WasmState::Suspended, 0),
                h if h == Hostcall::Sleep as u32 || h == Hostcall::PollOneoff as u32 => {
                    state(m, this.id, WasmState::Sleeping, m.sleep_ns.load(Ordering::Relaxed))
                }
                h if h == Hostcall::Yield as u32 || h == Hostcall::SchedYield as u32 => {
                    state(m, this.id, WasmState::Suspended, 0)
                }
                h => state(m, this.id, WasmState::Blocked, u64::from(h)),
            }
        } else {
            this.finished = true;
        }
        r
    }
}

/// TSC now (hostcall timing).
pub(super) fn ticks() -> u64 {
    arch::rdtsc()
}
