use crate::PAGE_SIZE;

/// A bitmap of 4 KiB frames over `[base, base + 64 * words.len() * 4 KiB)`.
/// A set bit means the frame is in use. Starts with every frame in use; the
/// owner frees the usable ranges.
#[derive(Debug)]
pub struct FrameBitmap<'a> {
    base: u64,
    words: &'a mut [u64],
    free: u64,
    /// Word index where the next search starts (all words below are full).
    hint: usize,
}

impl<'a> FrameBitmap<'a> {
    /// A bitmap over `words.len() * 64` frames starting at `base` (page aligned), all in use.
    pub fn new(base: u64, words: &'a mut [u64]) -> Self {
        words.fill(u64::MAX);
        Self {
            base,
            words,
            free: 0,
            hint: 0,
        }
    }

    /// Frames covered.
    pub fn capacity(&self) -> u64 {
        self.words.len() as u64 * 64
    }

    /// Frames currently free.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    fn index(&self, phys: u64) -> Option<usize> {
        let i = phys.checked_sub(self.base)? / PAGE_SIZE;
        (i < self.capacity()).then_some(i as usize)
    }

    fn is_used(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize, used: bool) {
        if used {
            self.words[i / 64] |= 1 << (i % 64);
        } else {
            self.words[i / 64] &= !(1 << (i % 64));
        }
    }

    /// Marks the frames of `[start, end)` free (the range is rounded inwards to whole
    /// frames; frames outside the bitmap are ignored).
    pub fn free_range(&mut self, start: u64, end: u64) {
        let mut phys = start.next_multiple_of(PAGE_SIZE);
        while phys + PAGE_SIZE <= end {
            if let Some(i) = self.index(phys)
                && self.is_used(i)
            {
                self.set(i, false);
                self.free += 1;
                self.hint = self.hint.min(i / 64);
            }
            phys += PAGE_SIZE;
        }
    }

    /// Marks the frames touching `[start, end)` used (rounded outwards).
    pub fn reserve_range(&mut self, start: u64, end: u64) {
        let mut phys = start - start % PAGE_SIZE;
        while phys < end {
            if let Some(i) = self.index(phys)
                && !self.is_used(i)
            {
                self.set(i, true);
                self.free -= 1;
            }
            phys += PAGE_SIZE;
        }
    }

    /// One free frame, now marked used.
    pub fn alloc(&mut self) -> Option<u64> {
        for w in self.hint..self.words.len() {
            let word = self.words[w];
            if word != u64::MAX {
                let bit = (!word).trailing_zeros() as usize;
                self.words[w] |= 1 << bit;
                self.free -= 1;
                self.hint = w;
                return Some(self.base + (w * 64 + bit) as u64 * PAGE_SIZE);
            }
        }
        self.hint = self.words.len();
        None
    }

    /// `count` physically contiguous free frames aligned to `align_frames`, now used.
    pub fn alloc_contiguous(&mut self, count: usize, align_frames: usize) -> Option<u64> {
        if count == 0 {
            return None;
        }
        let align = align_frames.max(1);
        let total = self.capacity() as usize;
        let mut start = 0;
        while start + count <= total {
            match (start..start + count).rev().find(|&i| self.is_used(i)) {
                Some(used) => start = (used + 1).next_multiple_of(align),
                None => {
                    for i in start..start + count {
                        self.set(i, true);
                    }
                    self.free -= count as u64;
                    return Some(self.base + start as u64 * PAGE_SIZE);
                }
            }
        }
        None
    }

    /// Returns `count` frames starting at `phys` to the pool.
    ///
    /// # Panics
    /// On a double free or a frame outside the bitmap: both are kernel bugs.
    pub fn free(&mut self, phys: u64, count: usize) {
        assert!(phys.is_multiple_of(PAGE_SIZE), "freeing unaligned frame {phys:#x}");
        for k in 0..count {
            let frame = phys + k as u64 * PAGE_SIZE;
            let i = self
                .index(frame)
                .unwrap_or_else(|| panic!("freeing frame {frame:#x} outside the bitmap"));
            assert!(self.is_used(i), "double free of frame {frame:#x}");
            self.set(i, false);
            self.hint = self.hint.min(i / 64);
        }
        self.free += count as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_reuses_frames_and_counts() {
        let mut words = [0u64; 4];
        let mut b = FrameBitmap::new(0x10_0000, &mut words);
        assert_eq!(b.alloc(), None);
        b.free_range(0x10_0000, 0x10_0000 + 10 * PAGE_SIZE);
        assert_eq!(b.free_frames(), 10);
        let a = b.alloc().unwrap();
        let c = b.alloc().unwrap();
        assert_eq!((a, c), (0x10_0000, 0x10_1000));
        b.free(a, 1);
        assert_eq!(b.alloc(), Some(a));
        assert_eq!(b.free_frames(), 8);
        let all: Vec<_> = std::iter::from_fn(|| b.alloc()).collect();
        assert_eq!(all.len(), 8);
        assert_eq!(b.free_frames(), 0);
    }

    #[test]
    fn contiguous_runs_respect_holes_and_alignment() {
        let mut words = [0u64; 2];
        let mut b = FrameBitmap::new(0, &mut words);
        b.free_range(0, 128 * PAGE_SIZE);
        b.reserve_range(3 * PAGE_SIZE, 4 * PAGE_SIZE);
        assert_eq!(b.alloc_contiguous(4, 1), Some(4 * PAGE_SIZE));
        assert_eq!(b.alloc_contiguous(16, 16), Some(16 * PAGE_SIZE));
        assert_eq!(b.alloc_contiguous(200, 1), None);
        b.free(16 * PAGE_SIZE, 16);
        assert_eq!(b.free_frames(), 128 - 1 - 4);
    }

    #[test]
    fn ranges_round_inwards_when_freeing_and_outwards_when_reserving() {
        let mut words = [0u64; 1];
        let mut b = FrameBitmap::new(0, &mut words);
        b.free_range(100, 3 * PAGE_SIZE + 5);
        assert_eq!(b.free_frames(), 2); // frames 1 and 2
        b.reserve_range(PAGE_SIZE + 10, PAGE_SIZE + 11);
        assert_eq!(b.free_frames(), 1);
    }

    #[test]
    #[should_panic(expected = "double free")]
    fn double_free_is_caught() {
        let mut words = [0u64; 1];
        let mut b = FrameBitmap::new(0, &mut words);
        b.free_range(0, PAGE_SIZE);
        let f = b.alloc().unwrap();
        b.free(f, 1);
        b.free(f, 1);
    }
}
