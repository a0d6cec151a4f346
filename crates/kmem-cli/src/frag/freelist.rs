//! The classic free-list heap: one arena, an address-ordered list of free
//! blocks, splitting on allocation and coalescing with both neighbours on
//! free. The placement policy ([`Fit`]) is the only difference between first,
//! best and worst fit.
//!
//! The list is a `BTreeMap` keyed by offset: walking it in address order is
//! the classic list walk (first fit stops at the first block that fits, best
//! and worst fit walk all of it, as the seeds' table says), and the map finds
//! a freed block's neighbours in O(log n) where a doubly linked list with
//! boundary tags would in O(1).

use std::collections::BTreeMap;

use super::heap::{Block, Heap, granules};

/// Which free block an allocation takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// The lowest-addressed block that fits.
    First,
    /// The smallest block that fits (lowest address among equals); an exact
    /// fit ends the walk.
    Best,
    /// The largest block (lowest address among equals).
    Worst,
}

/// A free-list heap over `[0, capacity)`.
#[derive(Clone)]
pub struct FreeList {
    fit: Fit,
    capacity: u64,
    /// Free blocks, offset → length. Invariants: no two overlap, no two touch
    /// (a block's end is never another's offset: coalescing is eager), every
    /// length is a non-zero multiple of the granule, all inside the heap.
    free: BTreeMap<u64, u64>,
    /// Σ lengths in `free`.
    free_bytes: u64,
    /// Highest block end handed out so far.
    high_water: u64,
}

impl FreeList {
    /// An empty heap: one free block covering all of it.
    pub fn new(fit: Fit, capacity: u64) -> FreeList {
        let mut free = BTreeMap::new();
        if capacity > 0 {
            free.insert(0, capacity);
        }
        FreeList {
            fit,
            capacity,
            free,
            free_bytes: capacity,
            high_water: 0,
        }
    }

    /// The free blocks in address order, `(offset, len)`.
    #[cfg(test)]
    pub fn free_blocks(&self) -> Vec<(u64, u64)> {
        self.free.iter().map(|(&o, &l)| (o, l)).collect()
    }

    /// The free block the policy picks for `need` bytes.
    fn pick(&self, need: u64) -> Option<(u64, u64)> {
        let mut it = self.free.iter().map(|(&o, &l)| (o, l));
        match self.fit {
            Fit::First => it.find(|&(_, l)| l >= need),
            Fit::Best => {
                let mut best: Option<(u64, u64)> = None;
                for (o, l) in it {
                    if l == need {
                        return Some((o, l));
                    }
                    if l > need && best.is_none_or(|(_, bl)| l < bl) {
                        best = Some((o, l));
                    }
                }
                best
            }
            Fit::Worst => {
                let mut worst: Option<(u64, u64)> = None;
                for (o, l) in it {
                    if worst.is_none_or(|(_, wl)| l > wl) {
                        worst = Some((o, l));
                    }
                }
                worst.filter(|&(_, l)| l >= need)
            }
        }
    }
}

impl Heap for FreeList {
    fn alloc(&mut self, size: u64) -> Option<Block> {
        let need = granules(size);
        let (offset, len) = self.pick(need)?;
        self.free.remove(&offset);
        if len > need {
            // Split: the tail stays free, at the same place in address order.
            self.free.insert(offset + need, len - need);
        }
        self.free_bytes -= need;
        self.high_water = self.high_water.max(offset + need);
        Some(Block { offset, len: need })
    }

    fn free(&mut self, block: Block) {
        let (mut offset, mut len) = (block.offset, block.len);
        debug_assert!(block.end() <= self.capacity && len > 0);
        // Coalesce with the block before …
        if let Some((&po, &pl)) = self.free.range(..offset).next_back() {
            debug_assert!(po + pl <= offset, "double free or overlap at {offset}");
            if po + pl == offset {
                self.free.remove(&po);
                offset = po;
                len += pl;
            }
        }
        // … and with the block after.
        if let Some(nl) = self.free.remove(&(block.end())) {
            len += nl;
        }
        debug_assert!(
            self.free.range(offset..offset + len).next().is_none(),
            "double free or overlap at {}",
            block.offset
        );
        self.free.insert(offset, len);
        self.free_bytes += block.len;
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn free_bytes(&self) -> u64 {
        self.free_bytes
    }

    fn largest_request(&self) -> u64 {
        self.free.values().copied().max().unwrap_or(0)
    }

    fn high_water(&self) -> u64 {
        self.high_water
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;

    /// A heap with free holes of 64, 32, 128 and 48 bytes at known places,
    /// separated by live 16-byte blocks, and the tail free.
    fn holes(fit: Fit) -> (FreeList, Vec<Block>) {
        let mut h = FreeList::new(fit, 4 * KIB);
        let sizes = [64, 16, 32, 16, 128, 16, 48, 16];
        let blocks: Vec<Block> = sizes.iter().map(|&s| h.alloc(s).unwrap()).collect();
        for i in [0, 2, 4, 6] {
            h.free(blocks[i]);
        }
        (h, blocks)
    }

    #[test]
    fn first_fit_takes_the_lowest_block_that_fits() {
        let (mut h, b) = holes(Fit::First);
        assert_eq!(h.alloc(40).unwrap().offset, b[0].offset); // 64-byte hole
        assert_eq!(h.alloc(100).unwrap().offset, b[4].offset); // 128-byte hole
    }

    #[test]
    fn best_fit_takes_the_smallest_block_that_fits() {
        let (mut h, b) = holes(Fit::Best);
        assert_eq!(h.alloc(40).unwrap().offset, b[6].offset); // 48 < 64 < 128
        assert_eq!(h.alloc(20).unwrap().offset, b[2].offset); // 32, exact
        assert_eq!(h.alloc(64).unwrap().offset, b[0].offset); // exact fit
    }

    #[test]
    fn worst_fit_takes_the_largest_block() {
        let (mut h, b) = holes(Fit::Worst);
        let tail = b[7].end();
        assert_eq!(h.alloc(16).unwrap().offset, tail);
        // Make the tail small: now the 128-byte hole is the largest.
        let rest = h.free_blocks().last().unwrap().1;
        h.alloc(rest - 16).unwrap();
        assert_eq!(h.alloc(16).unwrap().offset, b[4].offset);
    }

    #[test]
    fn splitting_leaves_the_tail_free() {
        let mut h = FreeList::new(Fit::First, 4 * KIB);
        let a = h.alloc(100).unwrap();
        assert_eq!(
            a,
            Block {
                offset: 0,
                len: 112
            }
        );
        assert_eq!(h.free_blocks(), vec![(112, 4 * KIB - 112)]);
        assert_eq!(h.free_bytes(), 4 * KIB - 112);
    }

    #[test]
    fn coalescing_returns_one_free_block() {
        for fit in [Fit::First, Fit::Best, Fit::Worst] {
            let mut h = FreeList::new(fit, 4 * KIB);
            let blocks: Vec<Block> = (1..=20).map(|i| h.alloc(i * 10).unwrap()).collect();
            // Free in an order that needs merging on the left, the right and both.
            for i in (0..20).step_by(2).chain((1..20).step_by(2).rev()) {
                h.free(blocks[i]);
            }
            assert_eq!(h.free_blocks(), vec![(0, 4 * KIB)], "{fit:?}");
            assert_eq!(h.free_bytes(), 4 * KIB);
            assert_eq!(h.largest_request(), 4 * KIB);
        }
    }

    #[test]
    fn blocks_never_overlap_and_stay_inside() {
        let mut h = FreeList::new(Fit::Best, 4 * KIB);
        let mut live = Vec::new();
        let mut size = 1;
        while let Some(b) = h.alloc(size) {
            assert!(b.end() <= 4 * KIB && b.len >= size && b.offset % 16 == 0);
            assert!(
                live.iter()
                    .all(|l: &Block| b.end() <= l.offset || l.end() <= b.offset)
            );
            live.push(b);
            size = size * 7 % 300 + 1;
        }
        assert!(h.free_bytes() < 304);
    }

    #[test]
    fn a_request_larger_than_any_block_fails_and_changes_nothing() {
        let (mut h, _) = holes(Fit::First);
        let before = h.free_blocks();
        assert_eq!(h.alloc(8 * KIB), None);
        assert_eq!(h.free_blocks(), before);
    }
}
