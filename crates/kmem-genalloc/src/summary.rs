//! The summary: a tree of byte hints over the bitmap that makes a search cost
//! O(depth) instead of O(chunk size).
//!
//! # Shape
//!
//! Level 0 has one byte per bitmap word `j`: the length of the longest free
//! run that *starts* in word `j` (it may run on into word `j + 1`), capped at
//! 64, or [`FULL`] when the whole word is free. Level `k + 1` has one byte per
//! group of 64 level-`k` bytes: [`FULL`] if all 64 are `FULL`, otherwise the
//! largest of them with `FULL` counted as 64. The top level has at most 64
//! bytes. A 1 TiB chunk of 4 KiB granules (2^28 bits, 2^22 words) has four
//! levels (2^22, 2^16, 2^10 and 16 bytes): 4.2 MiB beside a 32 MiB bitmap.
//!
//! A search for a run of `n <= 64` granules descends to the leftmost word
//! whose byte is `>= n`, scanning each 64-byte group eight bytes at a time
//! (SWAR). Longer runs are found by their first word (byte `>= 64`), and their
//! end by skipping `FULL` subtrees, so a run of any length is measured in
//! O(depth). The bitmap stays the truth: a search confirms every candidate
//! on the bitmap, and the allocation itself is a compare-and-swap on the
//! bitmap, so a stale hint costs time, never correctness.
//!
//! # Concurrency
//!
//! Every thread that changes a bitmap word refreshes the level-0 bytes that
//! depend on it, and every thread that changes a byte refreshes its parent.
//! A refresh loads the byte, recomputes it from its children (loaded after
//! it), and compare-and-swaps it, looping until it sees the byte equal to a
//! value computed from children read after the byte: so when the last writer
//! of a byte's children has returned, the byte is exact. All accesses are
//! `SeqCst` (free on x86-64 for loads and read-modify-writes).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::bitmap::{BITS_PER_LONG, Bitmap};

/// The level-0 value of a word that is wholly free, and the value of a group
/// whose every child is `FULL`.
pub(crate) const FULL: u8 = 0x7f;
/// Runs are measured up to this many granules in the tree.
pub(crate) const CAP: usize = 64;
/// Enough levels for 2^64 bits.
pub(crate) const MAX_LEVELS: usize = 11;
/// Children per node.
const FANOUT: usize = 64;
/// Cells (u64) per group of 64 bytes.
const CELLS: usize = FANOUT / 8;

const H: u64 = 0x8080_8080_8080_8080;
const L: u64 = 0x0101_0101_0101_0101;
const FULL_CELL: u64 = FULL as u64 * L;

/// What a search looks for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pred {
    /// A byte `>= v` (1..=64): a free run of at least `v` starts here.
    Ge(u8),
    /// A byte `!= FULL`: some granule below is in use.
    NotFull,
}

/// High bit of each byte of `x` set where the byte is `>= v` (bytes and `v` < 128).
#[inline]
fn ge_bytes(x: u64, v: u8) -> u64 {
    ((x | H).wrapping_sub(v as u64 * L)) & H
}

#[inline]
fn pred_mask(x: u64, p: Pred) -> u64 {
    match p {
        Pred::Ge(v) => ge_bytes(x, v),
        Pred::NotFull => !ge_bytes(x, FULL) & H,
    }
}

/// Bytewise maximum of two words of 7-bit bytes.
#[inline]
fn max_bytes(a: u64, b: u64) -> u64 {
    // High bit of a byte of (a | H) - b survives where a >= b; no borrow
    // crosses bytes because every byte of b is below 128.
    let sel = ((((a | H).wrapping_sub(b)) & H) >> 7).wrapping_mul(0xff);
    (a & sel) | (b & !sel)
}

/// Bytes above 64 (i.e. `FULL`) counted as 64.
#[inline]
fn clamp_cap(x: u64) -> u64 {
    let sel = (ge_bytes(x, CAP as u8 + 1) >> 7).wrapping_mul(0xff);
    (x & !sel) | ((CAP as u64 * L) & sel)
}

/// The longest run of set bits in `f`.
#[inline]
pub(crate) fn longest_ones(f: u64) -> u32 {
    if f == !0 {
        return 64;
    }
    let f2 = f & (f >> 1);
    let f4 = f2 & (f2 >> 2);
    let f8 = f4 & (f4 >> 4);
    let f16 = f8 & (f8 >> 8);
    let f32 = f16 & (f16 >> 16);
    let mut cur = !0u64; // starts of runs of at least `len` ones
    let mut len = 0;
    for (k, fk) in [(32, f32), (16, f16), (8, f8), (4, f4), (2, f2), (1, f)] {
        let t = cur & (fk >> len);
        if t != 0 {
            cur = t;
            len += k;
        }
    }
    len
}

/// Bits `i` of the result are set where bits `i..i + n` of `f` are all set
/// (the starts of runs of at least `n` free granules), `n >= 1`.
#[inline]
pub(crate) fn run_starts(f: u128, n: usize) -> u128 {
    let mut r = f;
    let mut have = 1;
    while have < n {
        let step = have.min(n - have);
        r &= r >> step;
        have += step;
    }
    r
}

/// The level-0 byte of a word `w` (tail bits already set) followed by `next`.
#[inline]
pub(crate) fn leaf_value(w: u64, next: u64) -> u8 {
    if w == 0 {
        return FULL;
    }
    let inner = longest_ones(!w);
    let suffix = w.leading_zeros();
    let ext = if suffix == 0 {
        0
    } else {
        suffix + next.trailing_zeros()
    };
    inner.max(ext).min(CAP as u32) as u8
}

/// One level of the tree.
#[derive(Clone, Copy, Debug)]
struct Level {
    /// `groups * 8` cells of eight bytes each; bytes at and past `len` are 0.
    cells: *const AtomicU64,
    /// Number of bytes (entries) in use.
    len: usize,
}

/// The summary tree of one chunk. Its cells live in the chunk's bookkeeping
/// mapping, right after the bitmap, and are only touched through atomics.
#[derive(Debug)]
pub(crate) struct Summary {
    /// `levels[0]` has one byte per bitmap word; `levels[depth - 1]` has at most 64.
    levels: [Level; MAX_LEVELS],
    /// Number of levels in use, at least 1.
    depth: usize,
}

// SAFETY: the cells are atomics in memory owned by the chunk for its whole
// life; the raw pointers are only an address.
unsafe impl Send for Summary {}
// SAFETY: as above; every access is atomic.
unsafe impl Sync for Summary {}

impl Summary {
    /// The number of cells (u64) a summary over `nwords` words needs.
    pub(crate) fn cells_for(nwords: usize) -> usize {
        let mut len = nwords;
        let mut total = 0;
        loop {
            total += len.div_ceil(FANOUT) * CELLS;
            if len <= FANOUT {
                return total;
            }
            len = len.div_ceil(FANOUT);
        }
    }

    /// Builds the summary of `map` (any state) in `cells`.
    ///
    /// # Safety
    ///
    /// `cells` must point to `cells_for(map.words().len())` zeroed,
    /// writable, 8-byte-aligned `AtomicU64`s that live as long as the summary.
    pub(crate) unsafe fn init(cells: *const AtomicU64, map: &Bitmap<'_>) -> Summary {
        let nwords = map.len().div_ceil(BITS_PER_LONG);
        let mut levels = [Level { cells, len: 0 }; MAX_LEVELS];
        let (mut len, mut at, mut depth) = (nwords, 0usize, 0);
        loop {
            // SAFETY: `at + groups * CELLS <= cells_for(nwords)`, inside the region.
            let level_cells = unsafe { cells.add(at) };
            levels[depth] = Level {
                cells: level_cells,
                len,
            };
            at += len.div_ceil(FANOUT) * CELLS;
            depth += 1;
            if len <= FANOUT {
                break;
            }
            len = len.div_ceil(FANOUT);
        }
        let s = Summary { levels, depth };
        for j in 0..nwords {
            s.store(0, j, s.compute(map, 0, j));
        }
        for lvl in 1..depth {
            for i in 0..s.levels[lvl].len {
                s.store(lvl, i, s.compute(map, lvl, i));
            }
        }
        s
    }

    #[inline]
    fn cell(&self, lvl: usize, c: usize) -> &AtomicU64 {
        // SAFETY: callers keep `c` below the level's `groups * CELLS` cells,
        // which `init` laid out inside the chunk's mapping.
        unsafe { &*self.levels[lvl].cells.add(c) }
    }

    /// Number of levels.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// Byte `i` of level `lvl`.
    #[inline]
    pub(crate) fn get(&self, lvl: usize, i: usize) -> u8 {
        (self.cell(lvl, i / 8).load(Ordering::SeqCst) >> (8 * (i % 8))) as u8
    }

    fn store(&self, lvl: usize, i: usize, v: u8) {
        let c = self.cell(lvl, i / 8);
        let sh = 8 * (i % 8);
        let cur = c.load(Ordering::Relaxed);
        c.store(
            (cur & !(0xff << sh)) | ((v as u64) << sh),
            Ordering::Relaxed,
        );
    }

    /// What byte `i` of level `lvl` should be, from its children now.
    #[inline]
    pub(crate) fn compute(&self, map: &Bitmap<'_>, lvl: usize, i: usize) -> u8 {
        if lvl == 0 {
            return leaf_value(map.word_masked(i), map.word_masked(i + 1));
        }
        let mut all_full = true;
        let mut m = 0u64;
        for q in 0..CELLS {
            let x = self.cell(lvl - 1, i * CELLS + q).load(Ordering::SeqCst);
            all_full &= x == FULL_CELL;
            m = max_bytes(m, clamp_cap(x));
        }
        if all_full {
            return FULL;
        }
        m = max_bytes(m, m >> 32);
        m = max_bytes(m, m >> 16);
        m = max_bytes(m, m >> 8);
        m as u8
    }

    /// Brings byte `i` of level `lvl` up to date; true if this call wrote it.
    ///
    /// Above level 0, a refresh writes `FULL` as 64 (`exact == false`): for
    /// searches by size the two are the same, and it spares a frequently
    /// used region from flipping FULL ↔ 64 at every level on each
    /// allocation and free (the cost would grow with the depth). Only
    /// [`repair`](Self::repair), called when a search for a used word is
    /// misled by such a 64, writes `FULL` back. Level 0 is always exact, and
    /// `FULL` is never written where a granule below is in use.
    #[inline]
    fn update(&self, map: &Bitmap<'_>, lvl: usize, i: usize, exact: bool) -> bool {
        let c = self.cell(lvl, i / 8);
        let sh = 8 * (i % 8);
        let mut wrote = false;
        loop {
            let cur = c.load(Ordering::SeqCst);
            let mut v = self.compute(map, lvl, i);
            if v == FULL && lvl > 0 && !exact {
                v = CAP as u8;
            }
            if (cur >> sh) as u8 == v {
                return wrote;
            }
            let new = (cur & !(0xff << sh)) | ((v as u64) << sh);
            if c.compare_exchange(cur, new, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                wrote = true;
            }
        }
    }

    /// Called after bitmap words `first..=last` changed: refreshes the bytes
    /// that depend on them, level by level, while anything changes.
    pub(crate) fn refresh(&self, map: &Bitmap<'_>, first: usize, last: usize) {
        let (mut lo, mut hi) = (first.saturating_sub(1), last);
        for lvl in 0..self.depth {
            let mut wrote = false;
            for i in lo..=hi.min(self.levels[lvl].len - 1) {
                wrote |= self.update(map, lvl, i, false);
            }
            if !wrote {
                return;
            }
            lo /= FANOUT;
            hi /= FANOUT;
        }
    }

    /// Makes byte `i` of level `lvl` exact (a search found it misleading)
    /// and its ancestors with it.
    #[cold]
    fn repair(&self, map: &Bitmap<'_>, mut lvl: usize, mut i: usize) {
        while lvl < self.depth && self.update(map, lvl, i, true) {
            lvl += 1;
            i /= FANOUT;
        }
    }

    /// The first entry `>= from` of group `g` at level `lvl` that matches `p`.
    #[inline]
    fn scan(&self, lvl: usize, g: usize, from: usize, p: Pred) -> Option<usize> {
        let len = self.levels[lvl].len;
        let mut q = from / 8;
        let mut skip = (from % 8) * 8;
        while q < CELLS {
            let x = self.cell(lvl, g * CELLS + q).load(Ordering::SeqCst);
            let m = pred_mask(x, p) & (!0u64 << skip);
            if m != 0 {
                let i = g * FANOUT + q * 8 + (m.trailing_zeros() / 8) as usize;
                return (i < len).then_some(i);
            }
            skip = 0;
            q += 1;
        }
        None
    }

    /// The first entry at index `>= j` of level `lvl` that matches `p`.
    pub(crate) fn find(&self, map: &Bitmap<'_>, lvl: usize, j: usize, p: Pred) -> Option<usize> {
        let len = self.levels[lvl].len;
        if j >= len {
            return None;
        }
        if lvl + 1 == self.depth {
            return self.scan(lvl, 0, j, p);
        }
        let mut g = j / FANOUT;
        if !j.is_multiple_of(FANOUT) {
            if let Some(i) = self.scan(lvl, g, j % FANOUT, p) {
                return Some(i);
            }
            g += 1;
        }
        loop {
            let parent = self.find(map, lvl + 1, g, p)?;
            if let Some(i) = self.scan(lvl, parent, 0, p) {
                return Some(i);
            }
            // The parent's hint misled us: a 64 standing for FULL (see
            // `update`), or another thread is mid-update. Make it exact.
            self.repair(map, lvl + 1, parent);
            g = parent + 1;
        }
    }

    /// Checks every byte against its children; the first mismatch as
    /// `(level, index, stored, computed)`. Exact when no operation is in
    /// flight, except that above level 0 a 64 may stand for `FULL`.
    pub(crate) fn check(&self, map: &Bitmap<'_>) -> Result<(), (usize, usize, u8, u8)> {
        for lvl in 0..self.depth {
            for i in 0..self.levels[lvl].len {
                let (have, want) = (self.get(lvl, i), self.compute(map, lvl, i));
                if have != want && !(lvl > 0 && have == CAP as u8 && want == FULL) {
                    return Err((lvl, i, have, want));
                }
            }
        }
        Ok(())
    }
}

/// Searches of one chunk's bitmap, through its summary when it has one
/// (summarised mode) or word by word (linear mode).
#[derive(Clone, Copy)]
pub(crate) struct Finder<'a> {
    pub(crate) map: Bitmap<'a>,
    pub(crate) sum: Option<&'a Summary>,
}

impl Finder<'_> {
    #[inline]
    fn nwords(&self) -> usize {
        self.map.len().div_ceil(BITS_PER_LONG)
    }

    /// The next word at index `>= j` whose level-0 byte is `>= need` (or, in
    /// linear mode, simply `j`).
    #[inline]
    fn next_word(&self, j: usize, need: u8) -> Option<usize> {
        match self.sum {
            Some(s) => s.find(&self.map, 0, j, Pred::Ge(need)),
            None => (j < self.nwords()).then_some(j),
        }
    }

    /// The 128-bit window of free bits of words `j` and `j + 1`, with bits
    /// below `from_bit` of word `j` counted as in use.
    #[inline]
    fn window(&self, j: usize, from_bit: usize) -> u128 {
        let w = self.map.word_masked(j) | !(!0u64 << from_bit);
        let x = self.map.word_masked(j + 1);
        !((w as u128) | ((x as u128) << 64))
    }

    /// The kernel's first fit: the first `p >= start` with `p..p + nr` free.
    pub(crate) fn first_fit(&self, start: usize, nr: usize) -> Option<usize> {
        if nr > CAP {
            return self.next_run(start, nr).map(|(s, _)| s);
        }
        if start >= self.map.len() {
            return None;
        }
        let mut j = start / BITS_PER_LONG;
        let mut from_bit = start % BITS_PER_LONG;
        let mut first = true;
        loop {
            let fits = run_starts(self.window(j, from_bit), nr) as u64;
            if fits != 0 {
                return Some(j * BITS_PER_LONG + fits.trailing_zeros() as usize);
            }
            // From a word boundary (a fresh search starts at 0), ask the
            // summary from `j` itself: a walk straight down from the top,
            // rather than up through the rest of each group and back down.
            j = self.next_word(if first && from_bit == 0 { j } else { j + 1 }, nr as u8)?;
            first = false;
            from_bit = 0;
        }
    }

    /// Where the free run that covers position `p` (a word boundary, or any
    /// position known to be free) ends: the first used position `>= p`, or
    /// `len()`.
    pub(crate) fn run_end(&self, p: usize) -> usize {
        let n = self.map.len();
        let mut j = p / BITS_PER_LONG;
        let mut w = self.map.word_masked(j) & (!0u64 << (p % BITS_PER_LONG));
        loop {
            if j * BITS_PER_LONG >= n {
                return n;
            }
            if w != 0 {
                return (j * BITS_PER_LONG + w.trailing_zeros() as usize).min(n);
            }
            j = match self.sum {
                Some(s) => match s.find(&self.map, 0, j + 1, Pred::NotFull) {
                    Some(k) => k,
                    None => return n,
                },
                None => j + 1,
            };
            w = self.map.word_masked(j);
        }
    }

    /// The first maximal free run `[s, e)` with `s >= from` and `e - s >= need`
    /// (a run that covers `from` counts as starting at `from`), in address order.
    pub(crate) fn next_run(&self, from: usize, need: usize) -> Option<(usize, usize)> {
        let need_s = need.clamp(1, CAP);
        let mut pos = from;
        loop {
            if pos >= self.map.len() {
                return None;
            }
            let j = pos / BITS_PER_LONG;
            let f = self.window(j, pos % BITS_PER_LONG);
            let starts = f & !(f << 1);
            let mut cand = (starts & run_starts(f, need_s)) as u64;
            let mut next = None;
            while cand != 0 {
                let s = cand.trailing_zeros() as usize;
                let start = j * BITS_PER_LONG + s;
                let inside = (!(f >> s)).trailing_zeros() as usize; // < 128 - s or to the top
                let end = if s + inside < 128 {
                    j * BITS_PER_LONG + s + inside
                } else {
                    self.run_end((j + 2) * BITS_PER_LONG)
                };
                let end = end.min(self.map.len());
                if end - start >= need {
                    return Some((start, end));
                }
                if end > (j + 1) * BITS_PER_LONG {
                    // The run went on into later words: continue after it.
                    next = Some(end);
                    break;
                }
                cand &= !0u64 << s << 1;
            }
            pos = match next {
                Some(e) => e,
                None => self.next_word(j + 1, need_s as u8)? * BITS_PER_LONG,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    fn naive_longest(f: u64) -> u32 {
        let (mut best, mut cur) = (0, 0);
        for i in 0..64 {
            if f >> i & 1 == 1 {
                cur += 1;
                best = best.max(cur);
            } else {
                cur = 0;
            }
        }
        best
    }

    #[test]
    fn longest_ones_matches_naive() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..if cfg!(miri) { 200 } else { 20000 } {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for f in [
                x,
                x & (x >> 3),
                x | (x << 5),
                !0,
                0,
                1 << 63,
                x & 0xffff_0000,
            ] {
                assert_eq!(longest_ones(f), naive_longest(f), "{f:#x}");
            }
        }
    }

    #[test]
    fn swar_helpers() {
        let x = u64::from_le_bytes([0, 1, 63, 64, 0x7f, 5, 2, 64]);
        assert_eq!(
            ge_bytes(x, 64),
            u64::from_le_bytes([0, 0, 0, 0x80, 0x80, 0, 0, 0x80])
        );
        assert_eq!(
            pred_mask(x, Pred::NotFull),
            H & !u64::from_le_bytes([0, 0, 0, 0, 0x80, 0, 0, 0])
        );
        let y = u64::from_le_bytes([3, 0, 70, 10, 1, 6, 2, 0]);
        assert_eq!(
            max_bytes(x, y),
            u64::from_le_bytes([3, 1, 70, 64, 0x7f, 6, 2, 64])
        );
        assert_eq!(
            clamp_cap(x),
            u64::from_le_bytes([0, 1, 63, 64, 64, 5, 2, 64])
        );
    }

    #[test]
    fn leaf_values() {
        assert_eq!(leaf_value(0, !0), FULL);
        assert_eq!(leaf_value(1, !0), 63);
        assert_eq!(leaf_value(1 << 63, 0), 63);
        assert_eq!(leaf_value(!0 >> 4, 0b1000), 4 + 3);
        assert_eq!(
            leaf_value(!0, 0),
            0,
            "a run starting in the next word does not count"
        );
        assert_eq!(
            leaf_value(1 << 5, 0),
            64,
            "suffix 58 runs on into a free word"
        );
        assert_eq!(
            leaf_value(1 << 5, 1),
            58,
            "suffix 58, next word starts used"
        );
        assert_eq!(leaf_value(!(0b111 << 20), !0), 3);
    }

    fn tree(nbits: usize) -> (Vec<AtomicU64>, Vec<AtomicU64>) {
        let nw = nbits.div_ceil(64);
        let words = (0..nw).map(|_| AtomicU64::new(0)).collect();
        let cells = (0..Summary::cells_for(nw))
            .map(|_| AtomicU64::new(0))
            .collect();
        (words, cells)
    }

    #[test]
    fn clamped_full_is_repaired_by_a_run_search() {
        let nbits = 64 * 64 * 3;
        let (words, cells) = tree(nbits);
        let map = Bitmap::new(&words, nbits);
        // SAFETY: `cells` has `cells_for` zeroed atomics and outlives `s`.
        let s = unsafe { Summary::init(cells.as_ptr(), &map) };
        assert_eq!((s.depth(), s.get(1, 1)), (2, FULL));
        let bit = 64 * 64 + 5; // in word 64: group 1 of level 0
        map.set_run(bit, 1).unwrap();
        s.refresh(&map, 64, 64);
        assert_eq!(
            (s.get(0, 64), s.get(1, 1)),
            (64, 64),
            "the run after the bit goes on"
        );
        map.clear_run(bit, 1).unwrap();
        s.refresh(&map, 64, 64);
        assert_eq!(
            (s.get(0, 64), s.get(1, 1)),
            (FULL, 64),
            "64 stands for FULL above level 0"
        );
        s.check(&map).unwrap();
        let f = Finder { map, sum: Some(&s) };
        assert_eq!(f.next_run(0, nbits), Some((0, nbits)));
        assert_eq!(
            s.get(1, 1),
            FULL,
            "repaired by the search for the run's end"
        );
    }

    #[test]
    fn tree_follows_bitmap_changes() {
        let nbits = if cfg!(miri) {
            64 * 70
        } else {
            64 * 64 * 65 + 17
        };
        let (words, cells) = tree(nbits);
        let map = Bitmap::new(&words, nbits);
        // SAFETY: `cells` has `cells_for` zeroed atomics and outlives `s`.
        let s = unsafe { Summary::init(cells.as_ptr(), &map) };
        s.check(&map).unwrap();
        assert!(s.depth() >= 2);
        let f = Finder { map, sum: Some(&s) };
        let lin = Finder { map, sum: None };
        let mut x = 12345u64;
        for _ in 0..if cfg!(miri) { 30 } else { 400 } {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let nr = (x >> 40) as usize % 150 + 1;
            let start = (x >> 8) as usize % nbits;
            if start + nr <= nbits {
                // Take the run if it is free, else give it back if it is all taken.
                let changed = map.set_run(start, nr).is_ok() || map.clear_run(start, nr).is_ok();
                if changed {
                    s.refresh(&map, start / 64, (start + nr - 1) / 64);
                }
            }
            s.check(&map).unwrap();
            for need in [1, 2, 7, 63, 64, 65, 130, 5000] {
                let from = (x >> 20) as usize % nbits;
                assert_eq!(
                    f.first_fit(from, need),
                    lin.first_fit(from, need),
                    "need {need}"
                );
                assert_eq!(f.next_run(from, need), lin.next_run(from, need));
                let k = map.find_next_zero_area(from, need, 0);
                assert_eq!(f.first_fit(from, need), (k + need <= nbits).then_some(k));
            }
        }
    }
}
