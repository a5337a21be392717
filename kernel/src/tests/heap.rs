use alloc::{boxed::Box, collections::BTreeMap, vec, vec::Vec};

use lucid_ktest_macros::ktest;

use crate::mem::heap;

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
