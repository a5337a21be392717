#![doc = include_str!("../README.md")]
#![no_std]
#![no_builtins]

const WORD: usize = core::mem::size_of::<usize>();

/// # Safety
/// `dest` and `src` must be valid for `n` bytes and must not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forward copy is correct for non-overlapping buffers (the caller's contract).
    unsafe { copy_forward(dest, src, n) };
    dest
}

/// # Safety
/// `dest` and `src` must be valid for `n` bytes; they may overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: `dest` does not start inside `[src, src + n)`, so a forward copy never
        // reads a byte it has already overwritten.
        unsafe { copy_forward(dest, src, n) };
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: `i < n`, both buffers are valid for `n` bytes; copying backwards is
            // correct when `dest` lies above `src`.
            unsafe { *dest.add(i) = *src.add(i) };
        }
    }
    dest
}

/// # Safety
/// `s` must be valid for `n` bytes of writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(s: *mut u8, c: i32, n: usize) -> *mut u8 {
    let byte = c as u8;
    // Not `[byte; WORD]`: that would be lowered to a call to memset.
    let word = (byte as usize).wrapping_mul(usize::MAX / 255);
    let mut i = 0;
    while i < n && !(s as usize + i).is_multiple_of(WORD) {
        // SAFETY: `i < n`.
        unsafe { *s.add(i) = byte };
        i += 1;
    }
    while i + WORD <= n {
        // SAFETY: `s + i` is word aligned and `i + WORD <= n`.
        unsafe { (s.add(i) as *mut usize).write(word) };
        i += WORD;
    }
    while i < n {
        // SAFETY: `i < n`.
        unsafe { *s.add(i) = byte };
        i += 1;
    }
    s
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes of reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: `i < n`, both are valid for `n` bytes.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes of reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// # Safety
/// Both buffers valid for `n` bytes; `dest` must not start inside `(src, src + n)`.
#[inline(always)]
unsafe fn copy_forward(dest: *mut u8, src: *const u8, n: usize) {
    let mut i = 0;
    if (dest as usize) % WORD == (src as usize) % WORD {
        while i < n && !(dest as usize + i).is_multiple_of(WORD) {
            // SAFETY: `i < n`.
            unsafe { *dest.add(i) = *src.add(i) };
            i += 1;
        }
        while i + WORD <= n {
            // SAFETY: both pointers are word aligned at `i` and `i + WORD <= n`.
            unsafe { (dest.add(i) as *mut usize).write((src.add(i) as *const usize).read()) };
            i += WORD;
        }
    }
    while i < n {
        // SAFETY: `i < n`.
        unsafe { *dest.add(i) = *src.add(i) };
        i += 1;
    }
}
