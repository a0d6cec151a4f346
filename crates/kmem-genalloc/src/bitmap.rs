//! The allocation bitmap of a chunk: one bit per granule, set = in use.
//!
//! The bitmap is the truth. Allocation sets a run of bits with one
//! compare-and-swap per word and rolls back if any word collides with a
//! concurrent allocation (the kernel's `bitmap_set_ll`); free clears a run the
//! same way (`bitmap_clear_ll`). Searches read words with plain atomic loads,
//! so an algorithm may see a momentary state — the compare-and-swap catches it.
//!
//! The search functions here are the kernel's (`lib/find_bit.c`,
//! `bitmap_find_next_zero_area_off`), bit for bit: user algorithms and the
//! linear search mode use them.

use core::sync::atomic::{AtomicU64, Ordering};

/// Bits in one bitmap word (`BITS_PER_LONG` on 64-bit Linux).
pub const BITS_PER_LONG: usize = 64;

/// A read-only view of a chunk's allocation bitmap: `len()` bits, bit `i` set
/// when granule `i` of the chunk is allocated. This is what an allocation
/// algorithm searches (the kernel passes `unsigned long *map, unsigned long size`).
///
/// ```
/// use core::sync::atomic::AtomicU64;
/// use kmem_genalloc::Bitmap;
/// let words = [AtomicU64::new(0b1011), AtomicU64::new(0)];
/// let map = Bitmap::new(&words, 100);
/// assert!(map.test_bit(0) && !map.test_bit(2));
/// assert_eq!(map.find_next_zero_bit(0), 2);
/// assert_eq!(map.find_next_bit(4), 100, "no set bit at or after 4");
/// assert_eq!(map.find_next_zero_area(0, 3, 0), 4);
/// ```
#[derive(Clone, Copy)]
pub struct Bitmap<'a> {
    /// The words; `words.len() * 64 >= nbits`. Bits at and above `nbits` are
    /// never set by the pool and never looked at by the searches.
    words: &'a [AtomicU64],
    /// The number of granules (the kernel's `size`/`end_bit`).
    nbits: usize,
}

impl core::fmt::Debug for Bitmap<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Bitmap")
            .field("nbits", &self.nbits)
            .finish_non_exhaustive()
    }
}

#[inline]
fn run_mask(lo: usize, hi: usize) -> u64 {
    // Bits lo..=hi of one word.
    (!0u64 >> (63 - hi)) & (!0u64 << lo)
}

impl<'a> Bitmap<'a> {
    /// A view of `nbits` bits stored in `words`.
    ///
    /// # Panics
    /// If `words` holds fewer than `nbits` bits.
    ///
    /// ```
    /// use core::sync::atomic::AtomicU64;
    /// let w = [AtomicU64::new(0)];
    /// assert_eq!(kmem_genalloc::Bitmap::new(&w, 64).len(), 64);
    /// ```
    pub fn new(words: &'a [AtomicU64], nbits: usize) -> Self {
        assert!(
            words.len() * BITS_PER_LONG >= nbits,
            "bitmap too short for {nbits} bits"
        );
        Bitmap { words, nbits }
    }

    /// The number of bits (granules in the chunk).
    ///
    /// ```
    /// # use core::sync::atomic::AtomicU64;
    /// let w = [AtomicU64::new(0)];
    /// assert_eq!(kmem_genalloc::Bitmap::new(&w, 10).len(), 10);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.nbits
    }

    /// Whether the bitmap has no bits at all.
    ///
    /// ```
    /// # use core::sync::atomic::AtomicU64;
    /// assert!(kmem_genalloc::Bitmap::new(&[], 0).is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.nbits == 0
    }

    /// The words themselves (the C `unsigned long *map`).
    ///
    /// ```
    /// # use core::sync::atomic::AtomicU64;
    /// let w = [AtomicU64::new(5)];
    /// assert_eq!(kmem_genalloc::Bitmap::new(&w, 64).words().len(), 1);
    /// ```
    #[inline]
    pub fn words(&self) -> &'a [AtomicU64] {
        self.words
    }

    /// Word `i` as it is now.
    ///
    /// ```
    /// # use core::sync::atomic::AtomicU64;
    /// let w = [AtomicU64::new(5)];
    /// assert_eq!(kmem_genalloc::Bitmap::new(&w, 64).word(0), 5);
    /// ```
    #[inline]
    pub fn word(&self, i: usize) -> u64 {
        self.words[i].load(Ordering::Relaxed)
    }

    /// Word `i` with every bit at or past `len()` reading as set (in use), and
    /// all ones for a word wholly past the end: what the summary works on.
    #[inline]
    pub(crate) fn word_masked(&self, i: usize) -> u64 {
        let base = i * BITS_PER_LONG;
        if base >= self.nbits {
            return !0;
        }
        let w = self.words[i].load(Ordering::SeqCst);
        let valid = self.nbits - base;
        if valid >= BITS_PER_LONG {
            w
        } else {
            w | (!0u64 << valid)
        }
    }

    /// Whether bit `i` is set (granule `i` allocated).
    ///
    /// ```
    /// # use core::sync::atomic::AtomicU64;
    /// let w = [AtomicU64::new(2)];
    /// assert!(kmem_genalloc::Bitmap::new(&w, 64).test_bit(1));
    /// ```
    #[inline]
    pub fn test_bit(&self, i: usize) -> bool {
        i < self.nbits && self.word(i / BITS_PER_LONG) >> (i % BITS_PER_LONG) & 1 == 1
    }

    /// The first set bit at or after `start`, or `len()` if there is none
    /// (the kernel's `find_next_bit(map, size, start)`).
    ///
    /// ```
    /// # use core::sync::atomic::AtomicU64;
    /// let w = [AtomicU64::new(0), AtomicU64::new(1 << 3)];
    /// assert_eq!(kmem_genalloc::Bitmap::new(&w, 128).find_next_bit(5), 67);
    /// ```
    pub fn find_next_bit(&self, start: usize) -> usize {
        self.find_next_bit_below(start, self.nbits)
    }

    /// `find_next_bit(map, end, start)`: the first set bit in `[start, end)`, or `end`.
    fn find_next_bit_below(&self, start: usize, end: usize) -> usize {
        let end = end.min(self.nbits);
        if start >= end {
            return end;
        }
        let mut i = start / BITS_PER_LONG;
        let mut w = self.word(i) & (!0u64 << (start % BITS_PER_LONG));
        loop {
            if w != 0 {
                return (i * BITS_PER_LONG + w.trailing_zeros() as usize).min(end);
            }
            i += 1;
            if i * BITS_PER_LONG >= end {
                return end;
            }
            w = self.word(i);
        }
    }

    /// The first clear bit at or after `start`, or `len()` if there is none
    /// (the kernel's `find_next_zero_bit(map, size, start)`).
    ///
    /// ```
    /// # use core::sync::atomic::AtomicU64;
    /// let w = [AtomicU64::new(!0), AtomicU64::new(1)];
    /// assert_eq!(kmem_genalloc::Bitmap::new(&w, 128).find_next_zero_bit(0), 65);
    /// ```
    pub fn find_next_zero_bit(&self, start: usize) -> usize {
        let end = self.nbits;
        if start >= end {
            return end;
        }
        let mut i = start / BITS_PER_LONG;
        let mut w = !self.word(i) & (!0u64 << (start % BITS_PER_LONG));
        loop {
            if w != 0 {
                return (i * BITS_PER_LONG + w.trailing_zeros() as usize).min(end);
            }
            i += 1;
            if i * BITS_PER_LONG >= end {
                return end;
            }
            w = !self.word(i);
        }
    }

    /// The kernel's `bitmap_find_next_zero_area_off`: the first index `p >= start`
    /// with `(p + align_offset) & align_mask == 0` and bits `p..p + nr` all
    /// clear. When there is none it returns a value `p` with `p + nr > len()`
    /// (like the kernel, possibly past `len()`), so `p >= len()` or
    /// `p + nr > len()` means "no fit".
    ///
    /// ```
    /// # use core::sync::atomic::AtomicU64;
    /// let w = [AtomicU64::new(0b1)];
    /// let map = kmem_genalloc::Bitmap::new(&w, 64);
    /// assert_eq!(map.find_next_zero_area_off(0, 2, 3, 0), 4, "aligned to 4 bits");
    /// assert_eq!(map.find_next_zero_area_off(0, 2, 3, 1), 3, "aligned to 4 with offset 1");
    /// ```
    pub fn find_next_zero_area_off(
        &self,
        mut start: usize,
        nr: usize,
        align_mask: usize,
        align_offset: usize,
    ) -> usize {
        loop {
            let mut index = self.find_next_zero_bit(start);
            // __ALIGN_MASK(index + align_offset, align_mask) - align_offset
            index = ((index + align_offset + align_mask) & !align_mask) - align_offset;
            let end = index + nr;
            if end > self.nbits {
                return end;
            }
            let i = self.find_next_bit_below(index, end);
            if i < end {
                start = i + 1;
                continue;
            }
            return index;
        }
    }

    /// `bitmap_find_next_zero_area(map, size, start, nr, align_mask)`: as
    /// [`find_next_zero_area_off`](Self::find_next_zero_area_off) with offset 0.
    ///
    /// ```
    /// # use core::sync::atomic::AtomicU64;
    /// let w = [AtomicU64::new(0b110)];
    /// assert_eq!(kmem_genalloc::Bitmap::new(&w, 64).find_next_zero_area(0, 2, 0), 3);
    /// ```
    pub fn find_next_zero_area(&self, start: usize, nr: usize, align_mask: usize) -> usize {
        self.find_next_zero_area_off(start, nr, align_mask, 0)
    }

    /// The first clear bit in `[start, start + nr)`, if any (free's check that
    /// the whole range is allocated).
    pub(crate) fn first_clear_in(&self, start: usize, nr: usize) -> Option<usize> {
        let end = start + nr;
        let z = self.find_next_zero_bit(start);
        (z < end).then_some(z)
    }

    /// Sets bits `start..start + nr`, word by word with compare-and-swap. If a
    /// word already has one of the bits set (a concurrent allocation got
    /// there first), the words set so far are cleared again and the position
    /// of a colliding bit is returned: the bitmap is as before.
    ///
    /// The caller guarantees `start + nr <= len()` and `nr > 0`.
    pub(crate) fn set_run(&self, start: usize, nr: usize) -> Result<(), usize> {
        let last = start + nr - 1;
        let (w0, w1) = (start / BITS_PER_LONG, last / BITS_PER_LONG);
        for w in w0..=w1 {
            let mask = self.mask_of(w, start, last);
            let word = &self.words[w];
            let mut cur = word.load(Ordering::Relaxed);
            loop {
                if cur & mask != 0 {
                    // Roll back what this call set (the kernel's bitmap_clear_ll
                    // of nbits - remain), then report the collision.
                    for v in w0..w {
                        self.words[v].fetch_and(!self.mask_of(v, start, last), Ordering::SeqCst);
                    }
                    return Err(w * BITS_PER_LONG + (cur & mask).trailing_zeros() as usize);
                }
                match word.compare_exchange_weak(
                    cur,
                    cur | mask,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => cur = now,
                }
            }
        }
        Ok(())
    }

    /// Clears bits `start..start + nr`, which must all be set. If one is not
    /// (a double free, or a free racing with another free of the same range),
    /// nothing is cleared (words already cleared by this call are set again)
    /// and the position of a clear bit is returned.
    pub(crate) fn clear_run(&self, start: usize, nr: usize) -> Result<(), usize> {
        if let Some(z) = self.first_clear_in(start, nr) {
            return Err(z);
        }
        let last = start + nr - 1;
        let (w0, w1) = (start / BITS_PER_LONG, last / BITS_PER_LONG);
        for w in w0..=w1 {
            let mask = self.mask_of(w, start, last);
            let word = &self.words[w];
            let mut cur = word.load(Ordering::Relaxed);
            loop {
                if cur & mask != mask {
                    for v in w0..w {
                        // The bits were ours a moment ago; another thread can
                        // only have taken them if the program frees memory it
                        // does not own concurrently, which the pool reports.
                        let m = self.mask_of(v, start, last);
                        let prev = self.words[v].fetch_or(m, Ordering::SeqCst);
                        if prev & m != 0 {
                            kmem_platform::kmem_report!(
                                "genalloc: bits {:#x}.. were reallocated while a conflicting free was undone",
                                v * BITS_PER_LONG
                            );
                        }
                    }
                    return Err(w * BITS_PER_LONG + (!cur & mask).trailing_zeros() as usize);
                }
                match word.compare_exchange_weak(
                    cur,
                    cur & !mask,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => cur = now,
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn mask_of(&self, w: usize, start: usize, last: usize) -> u64 {
        let lo = if w == start / BITS_PER_LONG {
            start % BITS_PER_LONG
        } else {
            0
        };
        let hi = if w == last / BITS_PER_LONG {
            last % BITS_PER_LONG
        } else {
            BITS_PER_LONG - 1
        };
        run_mask(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    fn map(n: usize) -> Vec<AtomicU64> {
        (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn set_and_clear_runs_across_words() {
        let w = map(200);
        let b = Bitmap::new(&w, 200);
        b.set_run(60, 70).unwrap();
        assert_eq!(b.find_next_bit(0), 60);
        assert_eq!(b.find_next_zero_bit(60), 130);
        assert_eq!(b.set_run(129, 2), Err(129), "collision reported");
        assert!(!b.test_bit(130), "rolled back");
        assert_eq!(b.clear_run(59, 3), Err(59), "59 is not allocated");
        assert!(b.test_bit(60) && b.test_bit(61), "nothing cleared");
        b.clear_run(60, 70).unwrap();
        assert_eq!(b.find_next_bit(0), 200);
    }

    #[test]
    fn set_run_rolls_back_earlier_words() {
        let w = map(256);
        let b = Bitmap::new(&w, 256);
        b.set_run(130, 1).unwrap();
        assert_eq!(b.set_run(10, 150), Err(130));
        assert_eq!(b.find_next_bit(0), 130, "words 0 and 1 were cleared again");
        assert_eq!(b.find_next_bit(131), 256);
    }

    #[test]
    fn clear_run_partial_is_refused_whole() {
        let w = map(256);
        let b = Bitmap::new(&w, 256);
        b.set_run(0, 100).unwrap();
        assert_eq!(b.clear_run(50, 60), Err(100));
        assert_eq!(b.find_next_zero_bit(0), 100);
    }

    #[test]
    fn zero_area_matches_kernel_semantics() {
        let w = map(128);
        let b = Bitmap::new(&w, 128);
        b.set_run(0, 3).unwrap();
        b.set_run(6, 1).unwrap();
        assert_eq!(b.find_next_zero_area(0, 3, 0), 3);
        assert_eq!(b.find_next_zero_area(0, 4, 0), 7);
        assert_eq!(b.find_next_zero_area(0, 2, 0), 3);
        assert_eq!(b.find_next_zero_area(0, 1, 7), 8);
        assert!(b.find_next_zero_area(0, 200, 0) > 128);
        assert!(b.find_next_zero_area(120, 9, 0) + 9 > 128);
    }
}
