//! The `lucid` import module (see `lucid_wasm::abi` for the signatures). Every
//! guest pointer and length is checked against the guest's memory before it is
//! used; a bad one, a handle the instance does not hold or an invalid argument
//! traps the instance with a [`HostFault`] naming the hostcall. The blocking calls
//! (`sleep`, `yield`, `chan_send`, `chan_recv`) suspend the instance's task, never
//! the CPU.
//!
//! Guests cannot make the kernel allocate without limit: whatever a hostcall
//! keeps (channels, queued messages, handle tables, children) is charged to the
//! instance tree's kernel memory budget first and allocated fallibly, and a
//! refusal is an error result (`lucid_wasm::abi::ERR_NO_MEMORY`), never a kernel
//! panic. `log` and `spawn` are bounded in length and cost fuel in proportion.
//!
//! A hostcall runs on the instance's fiber, below wasm frames that have no unwind
//! tables the kernel can read: a panic must not unwind out of it. Every hostcall
//! body runs inside [`contained`] (or [`contained_async`]), which turns a panic into
//! a [`HostPanic`] error; wasmtime unwinds the guest as for a trap, and the
//! instance's task raises the panic again outside the fiber, so the task ends as
//! panicked (see `instance::run`).

use alloc::boxed::Box;
use alloc::format;
use core::fmt;
use core::future::Future;
use core::sync::atomic::Ordering;
use core::task::Poll;
use core::time::Duration;

use lucid_wasm::abi::{
    ERR_LIMIT, ERR_NO_MEMORY, FUEL_PER_BYTE, Hostcall, KillReason, LOG_FUEL, MAX_LOG_LEN, MAX_REFUSALS, MODULE,
    SPAWN_FUEL, TrapCode,
};
use lucid_wasm::bundle::NAME_LEN;
use lucid_wasm::text::{Escaped, utf8_prefix};
use wasmtime::{Caller, Extern, Linker, Memory};

use super::SpawnError;
use super::channel::{CreateError, MAX_MESSAGE, Message};
use super::instance::{Exit, HostFault, InstanceData, Kill, Meter, ticks};

pub(super) type Cx<'a> = Caller<'a, InstanceData>;
pub(crate) type Fut<'a, R> = Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>;

/// A hostcall panicked; the instance's task raises the panic again.
#[derive(Debug)]
pub(crate) struct HostPanic(pub(crate) lucid_executor::TaskPanic);

impl fmt::Display for HostPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hostcall {}", self.0)
    }
}

impl core::error::Error for HostPanic {}

/// Runs a hostcall's body, turning a panic inside it into a [`HostPanic`] error.
pub(crate) fn contained<R>(body: impl FnOnce() -> wasmtime::Result<R>) -> wasmtime::Result<R> {
    let mut body = Some(body);
    let mut out = None;
    match crate::panic::catch_unwind(&mut || out = body.take().map(|body| body())) {
        Ok(()) => out.expect("a body that returned left its result"),
        Err(panic) => Err(wasmtime::Error::new(HostPanic(panic))),
    }
}

/// [`contained`] for a blocking hostcall: each poll of `fut` is contained.
pub(crate) fn contained_async<'a, R: 'a>(fut: Fut<'a, R>) -> Fut<'a, R> {
    let mut fut = Box::into_pin(fut);
    Box::new(core::future::poll_fn(move |cx| {
        let mut out = Poll::Pending;
        match crate::panic::catch_unwind(&mut || out = fut.as_mut().poll(cx)) {
            Ok(()) => out,
            Err(panic) => Poll::Ready(Err(wasmtime::Error::new(HostPanic(panic)))),
        }
    }))
}

fn fault(code: TrapCode, reason: alloc::string::String) -> wasmtime::Error {
    wasmtime::Error::new(HostFault { code, reason })
}

pub(super) fn memory(c: &mut Cx<'_>, h: Hostcall) -> wasmtime::Result<Memory> {
    match c.get_export("memory") {
        Some(Extern::Memory(mem)) => Ok(mem),
        _ => Err(fault(
            TrapCode::HostcallBadArgument,
            format!("{}: the guest exports no memory", h.name()),
        )),
    }
}

/// `[ptr, ptr + len)` of a `size`-byte guest memory, checked.
fn range(size: usize, h: Hostcall, ptr: i32, len: i32) -> wasmtime::Result<core::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let Ok(n) = usize::try_from(len) else {
        return Err(fault(
            TrapCode::HostcallBadArgument,
            format!("{}: negative length {len}", h.name()),
        ));
    };
    match start.checked_add(n) {
        Some(end) if end <= size => Ok(start..end),
        _ => Err(fault(
            TrapCode::HostcallBadPointer,
            format!(
                "{}: buffer {start:#x}+{n:#x} lies outside the guest's {size:#x}-byte memory",
                h.name()
            ),
        )),
    }
}

fn check(c: &mut Cx<'_>, h: Hostcall, ptr: i32, len: i32) -> wasmtime::Result<()> {
    let mem = memory(c, h)?;
    range(mem.data_size(&*c), h, ptr, len).map(drop)
}

fn write(c: &mut Cx<'_>, h: Hostcall, ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    let mem = memory(c, h)?;
    let data = mem.data_mut(&mut *c);
    let r = range(data.len(), h, ptr, bytes.len() as i32)?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

/// Awaits `fut` as the blocking part of hostcall `h`: the poll wrapper reports the
/// instance blocked in `h` meanwhile, and the guest starts a fresh slice after it.
/// The fuel hostcalls charged meanwhile ([`pay`]) is taken from the store first.
pub(super) async fn blocking<T>(c: &mut Cx<'_>, h: Hostcall, fut: impl Future<Output = T>) -> wasmtime::Result<T> {
    // A guest the timer slices has no fuel: its slice is time, and the poll
    // wrapper starts a fresh one at its next poll.
    let metered = c.data().guest.fuel_metered();
    if metered {
        let owed = c.data().meter.fuel_owed.swap(0, Ordering::Relaxed);
        let fuel = c.get_fuel()?.saturating_sub(owed);
        // Out of fuel: the guest's next instruction traps and its budget kills it.
        c.set_fuel(fuel)?;
        c.data().meter.fuel_at_block.store(fuel, Ordering::Relaxed);
    }
    c.data().meter.blocked_on.store(h as u32, Ordering::Relaxed);
    let out = fut.await;
    if metered {
        let fuel = c.get_fuel()?;
        c.set_fuel(fuel)?;
        c.data().meter.slice_start_fuel.store(fuel, Ordering::Relaxed);
    }
    c.data().meter.blocked_on.store(Meter::NONE, Ordering::Relaxed);
    Ok(out)
}

/// Charges `cost` fuel for work the kernel did for the guest. It is owed (taken at
/// the next block) while the current slice has room for it, so the slice keeps its
/// end; a cost that reaches the slice's end ends the slice at once.
///
/// A guest the timer slices pays in time instead: the kernel's work for it runs in
/// its slice.
pub(super) async fn pay(c: &mut Cx<'_>, cost: u64) -> wasmtime::Result<()> {
    if !c.data().guest.fuel_metered() {
        return Ok(());
    }
    let fuel = c.get_fuel()?;
    let slice = c.data().guest.entry.fuel_per_slice;
    let m = &c.data().meter;
    let owed = m.fuel_owed.load(Ordering::Relaxed).saturating_add(cost);
    let used = m.slice_start_fuel.load(Ordering::Relaxed).saturating_sub(fuel);
    m.fuel_owed.store(owed, Ordering::Relaxed);
    if used.saturating_add(owed) >= slice {
        blocking(c, Hostcall::Yield, lucid_executor::yield_now()).await?;
    }
    Ok(())
}

/// Counts a refusal of kind `kind` (the caller returns its error code) and logs the
/// instance's first refusal (a guest that ignores the error and retries is not
/// logged again). At [`MAX_REFUSALS`] of one kind the instance is killed: `Err`.
fn refused(c: &mut Cx<'_>, h: Hostcall, kind: KillReason, what: &dyn core::fmt::Display) -> wasmtime::Result<()> {
    let d = c.data_mut();
    let strike = d.strikes.refuse(kind);
    if !d.refusal_logged {
        d.refusal_logged = true;
        let budget = d.handles.budget();
        log::warn!(
            target: "wasm",
            "{}#{}: {} refused: {what} ({} of {} bytes charged; killed after {MAX_REFUSALS} refusals)",
            d.guest.entry.name,
            d.id,
            h.name(),
            budget.used(),
            budget.limit()
        );
    }
    strike.map_err(|reason| wasmtime::Error::new(Kill(reason)))
}

pub(super) fn count(c: &Cx<'_>, h: Hostcall, since: u64) {
    c.data().meter.count(h, ticks().wrapping_sub(since));
}

fn channel(c: &Cx<'_>, h: Hostcall, handle: i32) -> wasmtime::Result<alloc::sync::Arc<super::channel::Channel>> {
    c.data().handles.get(handle).ok_or_else(|| {
        fault(
            TrapCode::HostcallBadHandle,
            format!("{}: handle {handle} was never given to this instance", h.name()),
        )
    })
}

/// Defines every `lucid` import in `linker`.
pub(super) fn define(linker: &mut Linker<InstanceData>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        MODULE,
        Hostcall::Log.name(),
        |mut c: Cx<'_>, (ptr, len, level): (i32, i32, i32)| -> Fut<'_, ()> {
            contained_async(Box::new(async move {
                let t0 = ticks();
                let level = match level {
                    0 => log::Level::Trace,
                    1 => log::Level::Debug,
                    2 => log::Level::Info,
                    3 => log::Level::Warn,
                    4 => log::Level::Error,
                    _ => {
                        return Err(fault(
                            TrapCode::HostcallBadArgument,
                            format!("log: level {level} is not 0..=4"),
                        ));
                    }
                };
                let mem = memory(&mut c, Hostcall::Log)?;
                let now = crate::sched::now_ns();
                let (data, d) = mem.data_and_store_mut(&mut c);
                let bytes = &data[range(data.len(), Hostcall::Log, ptr, len)?];
                // Logged straight from guest memory: no copy, at most MAX_LOG_LEN bytes.
                let text = utf8_prefix(bytes, MAX_LOG_LEN)
                    .ok_or_else(|| fault(TrapCode::HostcallBadArgument, "log: message is not UTF-8".into()))?;
                let cut = bytes.len() - text.len();
                // A line over the instance's log rate is dropped.
                let logged = d.strikes.log_line(text.len(), now);
                if logged && cut == 0 {
                    log::log!(target: "wasm", level, "{}#{}: {}", d.guest.entry.name, d.id, Escaped(text));
                } else if logged {
                    log::log!(
                        target: "wasm", level,
                        "{}#{}: {}… ({cut} more bytes cut)",
                        d.guest.entry.name, d.id, Escaped(text)
                    );
                }
                let text_len = text.len() as u64;
                if !logged {
                    refused(&mut c, Hostcall::Log, KillReason::Log, &"over its log rate")?;
                    // The guest pays only for the call.
                    pay(&mut c, LOG_FUEL).await?;
                    count(&c, Hostcall::Log, t0);
                    return Ok(());
                }
                let cost = LOG_FUEL + FUEL_PER_BYTE * text_len;
                pay(&mut c, cost).await?;
                count(&c, Hostcall::Log, t0);
                Ok(())
            }))
        },
    )?;

    linker.func_wrap(MODULE, Hostcall::Now.name(), |c: Cx<'_>| {
        contained(|| {
            let t0 = ticks();
            let now = crate::sched::now_ns() as i64;
            count(&c, Hostcall::Now, t0);
            Ok(now)
        })
    })?;

    linker.func_wrap_async(
        MODULE,
        Hostcall::Sleep.name(),
        |mut c: Cx<'_>, (ns,): (i64,)| -> Fut<'_, ()> {
            contained_async(Box::new(async move {
                let t0 = ticks();
                let Ok(ns) = u64::try_from(ns) else {
                    return Err(fault(
                        TrapCode::HostcallBadArgument,
                        format!("sleep: negative duration {ns}"),
                    ));
                };
                c.data().meter.sleep_ns.store(ns, Ordering::Relaxed);
                blocking(&mut c, Hostcall::Sleep, crate::sched::sleep(Duration::from_nanos(ns))).await?;
                count(&c, Hostcall::Sleep, t0);
                Ok(())
            }))
        },
    )?;

    linker.func_wrap_async(MODULE, Hostcall::Yield.name(), |mut c: Cx<'_>, (): ()| -> Fut<'_, ()> {
        contained_async(Box::new(async move {
            let t0 = ticks();
            blocking(&mut c, Hostcall::Yield, lucid_executor::yield_now()).await?;
            count(&c, Hostcall::Yield, t0);
            Ok(())
        }))
    })?;

    linker.func_wrap(MODULE, Hostcall::ChanCreate.name(), |mut c: Cx<'_>| {
        contained(|| {
            let t0 = ticks();
            let handle = match c.data_mut().handles.create() {
                Ok(h) => h as i32,
                Err(CreateError::TableFull) => -1,
                Err(CreateError::NoMemory) => {
                    refused(
                        &mut c,
                        Hostcall::ChanCreate,
                        KillReason::Memory,
                        &"no kernel memory for a channel",
                    )?;
                    ERR_NO_MEMORY
                }
            };
            count(&c, Hostcall::ChanCreate, t0);
            Ok(handle)
        })
    })?;

    linker.func_wrap_async(
        MODULE,
        Hostcall::ChanSend.name(),
        |mut c: Cx<'_>, (handle, ptr, len): (i32, i32, i32)| -> Fut<'_, i32> {
            contained_async(Box::new(async move {
                let t0 = ticks();
                let ch = channel(&c, Hostcall::ChanSend, handle)?;
                if len as u32 as usize > MAX_MESSAGE {
                    return Err(fault(
                        TrapCode::HostcallBadArgument,
                        format!("chan_send: message of {len} bytes exceeds {MAX_MESSAGE}"),
                    ));
                }
                let mem = memory(&mut c, Hostcall::ChanSend)?;
                let data = mem.data(&c);
                let bytes = &data[range(data.len(), Hostcall::ChanSend, ptr, len)?];
                let msg = match Message::copy(bytes, c.data().handles.budget()) {
                    Ok(msg) => msg,
                    Err(e) => {
                        refused(&mut c, Hostcall::ChanSend, KillReason::Memory, &e)?;
                        count(&c, Hostcall::ChanSend, t0);
                        return Ok(ERR_NO_MEMORY);
                    }
                };
                let sent = blocking(&mut c, Hostcall::ChanSend, ch.send(msg)).await?;
                count(&c, Hostcall::ChanSend, t0);
                Ok(if sent { 0 } else { -1 })
            }))
        },
    )?;

    linker.func_wrap_async(
        MODULE,
        Hostcall::ChanRecv.name(),
        |mut c: Cx<'_>, (handle, ptr, cap): (i32, i32, i32)| -> Fut<'_, i32> {
            contained_async(Box::new(async move {
                let t0 = ticks();
                let ch = channel(&c, Hostcall::ChanRecv, handle)?;
                // Check the buffer before blocking, so a bad one traps at once.
                check(&mut c, Hostcall::ChanRecv, ptr, cap)?;
                let msg = blocking(&mut c, Hostcall::ChanRecv, ch.recv()).await?;
                let n = match msg {
                    Some(m) => {
                        let m = m.bytes();
                        let keep = m.len().min(cap as usize);
                        write(&mut c, Hostcall::ChanRecv, ptr, &m[..keep])?;
                        m.len() as i32
                    }
                    None => -1,
                };
                count(&c, Hostcall::ChanRecv, t0);
                Ok(n)
            }))
        },
    )?;

    linker.func_wrap_async(
        MODULE,
        Hostcall::Spawn.name(),
        |mut c: Cx<'_>, (ptr, len): (i32, i32)| -> Fut<'_, i64> {
            contained_async(Box::new(async move {
                let t0 = ticks();
                let mem = memory(&mut c, Hostcall::Spawn)?;
                let data = mem.data(&c);
                let bytes = &data[range(data.len(), Hostcall::Spawn, ptr, len)?];
                // No module name is longer than NAME_LEN: a longer one is not read.
                let mut name = [0; NAME_LEN];
                let name = match name.get_mut(..bytes.len()) {
                    Some(name) => {
                        name.copy_from_slice(bytes);
                        core::str::from_utf8(name).ok()
                    }
                    None => None,
                };
                let named = bytes.len().min(NAME_LEN) as u64;
                let result = match name.map(|n| super::runtime().map(|rt| rt.spawn_child(n, &c.data().handles))) {
                    Some(Some(Ok(id))) => id.get() as i64,
                    Some(Some(Err(e @ SpawnError::NoMemory))) => {
                        refused(&mut c, Hostcall::Spawn, KillReason::Memory, &e)?;
                        i64::from(ERR_NO_MEMORY)
                    }
                    Some(Some(Err(e @ (SpawnError::TooManyInstances | SpawnError::TreeFull)))) => {
                        refused(&mut c, Hostcall::Spawn, KillReason::Instances, &e)?;
                        i64::from(ERR_LIMIT)
                    }
                    _ => -1,
                };
                pay(&mut c, SPAWN_FUEL + FUEL_PER_BYTE * named).await?;
                count(&c, Hostcall::Spawn, t0);
                Ok(result)
            }))
        },
    )?;

    linker.func_wrap(
        MODULE,
        Hostcall::Exit.name(),
        |c: Cx<'_>, code: i32| -> wasmtime::Result<()> {
            contained(|| {
                count(&c, Hostcall::Exit, ticks());
                Err(wasmtime::Error::new(Exit(code)))
            })
        },
    )?;
    Ok(())
}
