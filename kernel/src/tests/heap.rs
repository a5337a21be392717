use alloc::{boxed::Box, collections::BTreeMap, vec, vec::Vec};

use lucid_ktest_macros::ktest;

use lucid_boot_api::layout::{HEAP_BASE, PAGE_SIZE};

use crate::mem::{frames, heap, paging};

#[ktest]
fn box_and_vec_work() {
    let b = Box::new(41u64);
    assert_eq!(*b + 1, 42);
    let v: Vec<u32> = (0..1000).collect();
    assert_eq!(v.iter().sum::<u32>(), 999 * 1000 / 2);
}

#[ktest]
fn large_allocation_is_usable() {
    let len = 8 * 1024 * 1024;
    let mut v = vec![0u8; len];
    for (i, b) in v.iter_mut().enumerate().step_by(4096) {
        *b = i as u8 ^ 0x5a;
    }
    assert!(v.iter().enumerate().step_by(4096).all(|(i, &b)| b == i as u8 ^ 0x5a));
}

#[ktest]
fn heap_grows_on_demand() {
    // Ask for 4 MiB more than the heap holds right now, in 1 MiB pieces.
    let before = heap::mapped_bytes();
    let pieces = (before / (1024 * 1024) + 4) as usize;
    let big: Vec<Vec<u8>> = (0..pieces).map(|i| vec![i as u8; 1024 * 1024]).collect();
    let grown = heap::mapped_bytes();
    assert!(
        grown >= before + 4 * 1024 * 1024,
        "heap did not grow: {before} -> {grown} bytes"
    );
    assert!(big.iter().enumerate().all(|(i, v)| v.iter().all(|&b| b == i as u8)));
    drop(big);
    // Freed memory is reused rather than growing again.
    let after = heap::mapped_bytes();
    let again: Vec<u8> = vec![1; 4 * 1024 * 1024];
    assert_eq!(heap::mapped_bytes(), after);
    drop(again);
}

#[ktest]
fn many_small_allocations() {
    let mut map = BTreeMap::new();
    for i in 0..20_000u64 {
        map.insert(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i);
    }
    assert_eq!(map.len(), 20_000);
    assert_eq!(map.values().sum::<u64>(), 20_000 * 19_999 / 2);
}

/// Takes every free frame: as 2 MiB runs while there are any, then one by one into
/// `singles` (whose capacity is reserved before, so taking frames never grows the heap).
fn take_all_frames(runs: &mut Vec<u64>, singles: &mut Vec<u64>) {
    while let Some(run) = frames::alloc_contiguous(512, 1) {
        runs.push(run);
        if runs.len() == runs.capacity() {
            break;
        }
    }
    while singles.len() < singles.capacity() {
        match frames::alloc() {
            Some(f) => singles.push(f),
            None => break,
        }
    }
}

#[ktest]
fn heap_survives_a_failed_growth() {
    const KEPT: usize = 64;
    let mut runs = Vec::with_capacity(8192);
    let mut singles = Vec::with_capacity(1 << 16);
    take_all_frames(&mut runs, &mut singles);
    // Leave a few frames so the growth maps some pages before it runs out.
    for f in singles.drain(singles.len().saturating_sub(KEPT)..) {
        frames::free(f, 1);
    }
    let mapped = heap::mapped_bytes();
    // More than the whole heap holds, so it cannot fit without growing.
    let beyond_heap = mapped as usize + 1024 * 1024;
    let mut too_big: Vec<u8> = Vec::new();
    let refused = too_big.try_reserve_exact(beyond_heap).is_err();
    // Other CPUs may grow the heap meanwhile; whatever its end now, the pages the
    // failed growth mapped past it must be gone again.
    let end = HEAP_BASE + heap::mapped_bytes();
    let left_mapped = (0..KEPT as u64)
        .filter(|page| paging::translate(end + page * PAGE_SIZE).is_some())
        .count();
    for f in singles.drain(..) {
        frames::free(f, 1);
    }
    for run in runs.drain(..) {
        frames::free(run, 512);
    }
    assert!(refused, "{beyond_heap} bytes were allocated with {KEPT} free frames");
    assert_eq!(left_mapped, 0, "a failed growth left pages mapped past the heap's end");
    // With memory back, the heap grows again at the same place.
    let big = vec![7u8; beyond_heap];
    assert!(
        heap::mapped_bytes() > mapped,
        "the heap did not grow after a failed growth"
    );
    assert!(big.iter().step_by(4096).all(|&b| b == 7));
}
