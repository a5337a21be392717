//! The C-ABI symbols no_std wasmtime asks its embedder for ("custom" platform):
//! thread-local slots and the locks of its internal data structures. The list is
//! wasmtime's `runtime/vm/sys/custom/capi.rs`; `nm -u` on the kernel proves none is
//! missing.

use core::hint::spin_loop;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::arch::percpu::{self, MAX_CPUS};

/// Slots per CPU: 0 is wasmtime's runtime state, 1 its component-model-async
/// state (unused here, but the ABI has it).
pub const TLS_SLOTS: usize = 2;

static TLS: [[AtomicPtr<u8>; TLS_SLOTS]; MAX_CPUS] =
    [const { [const { AtomicPtr::new(core::ptr::null_mut()) }; TLS_SLOTS] }; MAX_CPUS];

fn cpu_slots() -> &'static [AtomicPtr<u8>; TLS_SLOTS] {
    // Wasmtime runs only in tasks, after every CPU has its per-CPU block.
    let cpu = percpu::try_current().map_or(0, |c| c.index as usize);
    &TLS[cpu.min(MAX_CPUS - 1)]
}

/// The current CPU's slots, for a task to carry them across a poll (see
/// [`super::instance`]): a poll runs on one CPU from start to end, so the slots
/// must follow the task, not the CPU, between polls.
pub fn swap_tls(values: [*mut u8; TLS_SLOTS]) -> [*mut u8; TLS_SLOTS] {
    let slots = cpu_slots();
    [
        slots[0].swap(values[0], Ordering::Relaxed),
        slots[1].swap(values[1], Ordering::Relaxed),
    ]
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_tls_get(slot: usize) -> *mut u8 {
    cpu_slots()
        .get(slot)
        .map_or(core::ptr::null_mut(), |s| s.load(Ordering::Relaxed))
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_tls_set(slot: usize, ptr: *mut u8) {
    if let Some(s) = cpu_slots().get(slot) {
        s.store(ptr, Ordering::Relaxed);
    }
}

/// A lock word as wasmtime hands it over: a zero-initialised `uintptr_t` it owns.
fn word<'a>(lock: *mut usize) -> &'a AtomicUsize {
    // SAFETY: wasmtime passes a pointer to an aligned, zero-initialised `usize` that
    // lives as long as the lock and is only ever accessed through these functions,
    // and `AtomicUsize` has the layout of `usize`.
    unsafe { AtomicUsize::from_ptr(lock) }
}

const WRITER: usize = 1 << (usize::BITS - 1);

#[unsafe(no_mangle)]
extern "C" fn wasmtime_sync_lock_free(_lock: *mut usize) {}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_sync_lock_acquire(lock: *mut usize) {
    let w = word(lock);
    while w
        .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spin_loop();
    }
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_sync_lock_release(lock: *mut usize) {
    word(lock).store(0, Ordering::Release);
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_sync_rwlock_read(lock: *mut usize) {
    let w = word(lock);
    loop {
        let v = w.load(Ordering::Relaxed);
        if v & WRITER == 0
            && w.compare_exchange_weak(v, v + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
        spin_loop();
    }
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_sync_rwlock_read_release(lock: *mut usize) {
    word(lock).fetch_sub(1, Ordering::Release);
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_sync_rwlock_write(lock: *mut usize) {
    let w = word(lock);
    while w
        .compare_exchange_weak(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spin_loop();
    }
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_sync_rwlock_write_release(lock: *mut usize) {
    word(lock).store(0, Ordering::Release);
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_sync_rwlock_free(_lock: *mut usize) {}
