//! The virtual memory no_std wasmtime asks its embedder for ("custom" platform,
//! `custom-virtual-memory`): reservations, protection changes and unmapping.
//!
//! Every mapping wasmtime makes gets a slot of [`SLOT_SIZE`] bytes in the kernel's
//! WebAssembly region. A linear memory reserves 4 GiB plus its guard (see
//! `lucid_wasm::config`) and maps only its accessible pages, so an access beyond
//! them faults instead of touching a neighbour; code images are slots mapped whole.
//! Pages are fresh zeroed frames, returned to the frame allocator when unmapped,
//! after every CPU's TLB has dropped them ([`crate::mem::tlb::shootdown`]).

use core::sync::atomic::{AtomicU64, Ordering};

use lucid_boot_api::layout::{PAGE_SIZE, WASM_BASE, WASM_LIMIT};

use crate::mem::{
    frames,
    paging::{self, Flags, MapError},
    tlb,
};

/// Bytes of address space per mapping: a 4 GiB memory, its guard, room to spare.
pub const SLOT_SIZE: u64 = 8 << 30;
/// Mappings that can exist at once.
pub const SLOTS: usize = ((WASM_LIMIT - WASM_BASE) / SLOT_SIZE) as usize;

/// One bit per slot, set while the slot is in use.
static USED: [AtomicU64; SLOTS / 64] = [const { AtomicU64::new(0) }; SLOTS / 64];
/// Per slot, one past the highest byte offset ever mapped in it since it was taken
/// (unmapping walks only up to here).
static HIGH_WATER: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

const PROT_READ: u32 = 1 << 0;
const PROT_WRITE: u32 = 1 << 1;
const PROT_EXEC: u32 = 1 << 2;

/// What the C ABI returns for success and for failure (wasmtime only tests for 0).
const OK: i32 = 0;
const FAILED: i32 = -1;

/// Slots in use now (a test compares it before and after instances come and go).
pub fn slots_in_use() -> usize {
    USED.iter()
        .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
        .sum()
}

/// Whether `addr` lies in the WebAssembly region.
pub fn in_region(addr: u64) -> bool {
    (WASM_BASE..WASM_LIMIT).contains(&addr)
}

fn take_slot() -> Option<usize> {
    for (w, word) in USED.iter().enumerate() {
        let mut bits = word.load(Ordering::Relaxed);
        while bits != u64::MAX {
            let bit = (!bits).trailing_zeros();
            match word.compare_exchange_weak(bits, bits | (1 << bit), Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some(w * 64 + bit as usize),
                Err(now) => bits = now,
            }
        }
    }
    None
}

fn release_slot(slot: usize) {
    HIGH_WATER[slot].store(0, Ordering::Relaxed);
    USED[slot / 64].fetch_and(!(1 << (slot % 64)), Ordering::Release);
}

/// The slot that `ptr..ptr + len` lies in, if it lies in one (`ptr` page aligned).
fn slot_of(ptr: u64, len: u64) -> Option<usize> {
    if !in_region(ptr) || !ptr.is_multiple_of(PAGE_SIZE) {
        return None;
    }
    let slot = ((ptr - WASM_BASE) / SLOT_SIZE) as usize;
    let end = WASM_BASE + (slot as u64 + 1) * SLOT_SIZE;
    (ptr.checked_add(len)? <= end).then_some(slot)
}

fn slot_base(slot: usize) -> u64 {
    WASM_BASE + slot as u64 * SLOT_SIZE
}

fn flags(prot: u32) -> Option<Flags> {
    match prot {
        0 => None,
        PROT_READ => Some(Flags::READ),
        p if p == PROT_READ | PROT_WRITE => Some(Flags::READ_WRITE),
        p if p == PROT_READ | PROT_EXEC => Some(Flags::READ_EXECUTE),
        // Write+execute is never asked for (W^X); treat it as the read-write it
        // would need to be written.
        _ => Some(Flags::READ_WRITE),
    }
}

/// Unmaps the mapped pages of `start..end` in `slot` (nothing is mapped above its
/// high-water mark), shoots the TLBs down and frees their frames.
fn unmap_range(slot: usize, start: u64, end: u64) {
    let end = end.min(slot_base(slot) + HIGH_WATER[slot].load(Ordering::Relaxed));
    // Frames go back only after the shootdown: until then another CPU may still
    // reach them through its TLB. Collect them in batches so no allocation is needed.
    let mut batch = [0u64; 256];
    let mut n = 0;
    let mut page = start;
    while page < end {
        if let Ok(frame) = paging::unmap(page) {
            batch[n] = frame;
            n += 1;
            if n == batch.len() {
                tlb::shootdown();
                batch.iter().for_each(|&f| frames::free(f, 1));
                n = 0;
            }
        }
        page += PAGE_SIZE;
    }
    if n > 0 {
        tlb::shootdown();
        batch[..n].iter().for_each(|&f| frames::free(f, 1));
    }
}

/// Gives `start..end` the protection `prot`: maps fresh zeroed pages where none is
/// mapped, changes the rest (and unmaps all of it for `prot` 0).
fn protect_range(slot: usize, start: u64, end: u64, prot: u32) -> Result<(), MapError> {
    let Some(flags) = flags(prot) else {
        unmap_range(slot, start, end);
        return Ok(());
    };
    HIGH_WATER[slot].fetch_max(end - slot_base(slot), Ordering::Relaxed);
    let mut changed = false;
    let mut page = start;
    while page < end {
        let done = match paging::protect(page, flags) {
            Ok(()) => {
                changed = true;
                Ok(())
            }
            Err(MapError::NotMapped(_)) => paging::map_fresh(page, 1, flags),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            // A failed growth must leave nothing accessible past the memory's end:
            // wasm code checks no bounds, the missing pages are the check.
            unmap_range(slot, start, page);
            return Err(e);
        }
        page += PAGE_SIZE;
    }
    if changed {
        // A page may have lost a permission another CPU's TLB still grants.
        tlb::shootdown();
    }
    Ok(())
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_mmap_new(size: usize, prot: u32, ret: &mut *mut u8) -> i32 {
    let size = (size as u64).next_multiple_of(PAGE_SIZE);
    if size == 0 || size > SLOT_SIZE {
        return FAILED;
    }
    let Some(slot) = take_slot() else {
        log::warn!("wasm: all {SLOTS} address-space slots are in use");
        return FAILED;
    };
    let base = slot_base(slot);
    if prot != 0 && protect_range(slot, base, base + size, prot).is_err() {
        release_slot(slot);
        return FAILED;
    }
    *ret = base as *mut u8;
    OK
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_mmap_remap(addr: *mut u8, size: usize, prot: u32) -> i32 {
    let (start, len) = (addr as u64, (size as u64).next_multiple_of(PAGE_SIZE));
    let Some(slot) = slot_of(start, len) else {
        return FAILED;
    };
    // Fresh zero pages in place of whatever was there.
    unmap_range(slot, start, start + len);
    match protect_range(slot, start, start + len, prot) {
        Ok(()) => OK,
        Err(_) => FAILED,
    }
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_munmap(ptr: *mut u8, size: usize) -> i32 {
    let start = ptr as u64;
    let Some(slot) = slot_of(start, (size as u64).next_multiple_of(PAGE_SIZE)) else {
        return FAILED;
    };
    if start != slot_base(slot) {
        // wasmtime unmaps whole mappings only.
        return FAILED;
    }
    unmap_range(slot, start, start + SLOT_SIZE);
    release_slot(slot);
    OK
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_mprotect(ptr: *mut u8, size: usize, prot: u32) -> i32 {
    // wasmtime protects byte ranges (a code image's length); pages are the unit.
    let (start, len) = (ptr as u64, (size as u64).next_multiple_of(PAGE_SIZE));
    let Some(slot) = slot_of(start, len) else {
        return FAILED;
    };
    match protect_range(slot, start, start + len, prot) {
        Ok(()) => OK,
        Err(e) => {
            log::warn!("wasm: cannot map {len:#x} bytes at {start:#x}: {e}");
            FAILED
        }
    }
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_page_size() -> usize {
    PAGE_SIZE as usize
}

/// Copy-on-write memory images are off (`memory_init_cow(false)`): no image is
/// ever made, so wasmtime initialises memories by copying.
#[unsafe(no_mangle)]
extern "C" fn wasmtime_memory_image_new(_ptr: *const u8, _len: usize, ret: &mut *mut u8) -> i32 {
    *ret = core::ptr::null_mut();
    OK
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_memory_image_map_at(_image: *mut u8, _addr: *mut u8, _len: usize) -> i32 {
    FAILED
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_memory_image_free(_image: *mut u8) {}
