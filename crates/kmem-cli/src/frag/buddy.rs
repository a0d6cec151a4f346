//! The binary buddy system at byte granularity: order 0 is one 16-byte
//! granule, a request takes the smallest power-of-two block that holds it,
//! larger blocks are split in halves, and a freed block merges with its buddy
//! (`offset ^ size`) as long as the buddy is free, as in `mm/page_alloc.c`.
//!
//! This is a simulation over offsets rather than `kmem::page::PageAllocator`:
//! the page allocator's order 0 is a 4 KiB page, which would round every
//! small request to 4 KiB and say nothing about the algorithm. A heap that is
//! not a power of two starts as the largest aligned power-of-two blocks that
//! tile it (as the kernel's zones start as `MAX_ORDER` blocks).

use std::collections::BTreeSet;

use super::heap::{Block, GRANULE, Heap};

/// A buddy heap over `[0, capacity)`.
#[derive(Clone)]
pub struct Buddy {
    capacity: u64,
    /// `free[k]`: offsets of the free blocks of `GRANULE << k` bytes.
    /// Invariants: every offset is a multiple of its block size; the block is
    /// inside the heap; no free block's buddy is free in the same order
    /// (merging is eager); free blocks never overlap each other or a live one.
    free: Vec<BTreeSet<u64>>,
    /// Σ free block sizes.
    free_bytes: u64,
    /// Highest block end handed out so far.
    high_water: u64,
}

/// The order of the smallest block that holds `size` bytes.
pub fn order_for(size: u64) -> u32 {
    size.max(1)
        .div_ceil(GRANULE)
        .next_power_of_two()
        .trailing_zeros()
}

impl Buddy {
    /// An empty heap: `capacity` tiled by maximal aligned blocks.
    pub fn new(capacity: u64) -> Buddy {
        let top = if capacity >= GRANULE {
            (capacity / GRANULE).ilog2() as usize
        } else {
            0
        };
        let mut free = vec![BTreeSet::new(); top + 1];
        let mut offset = 0;
        while offset + GRANULE <= capacity {
            let mut k = top as u32;
            while offset % (GRANULE << k) != 0 || offset + (GRANULE << k) > capacity {
                k -= 1;
            }
            free[k as usize].insert(offset);
            offset += GRANULE << k;
        }
        Buddy {
            capacity,
            free,
            free_bytes: offset,
            high_water: 0,
        }
    }

    /// The free blocks, `(offset, len)`, in address order.
    #[cfg(test)]
    pub fn free_blocks(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self
            .free
            .iter()
            .enumerate()
            .flat_map(|(k, s)| s.iter().map(move |&o| (o, GRANULE << k)))
            .collect();
        v.sort_unstable();
        v
    }
}

impl Heap for Buddy {
    fn alloc(&mut self, size: u64) -> Option<Block> {
        let order = order_for(size) as usize;
        let k = (order..self.free.len()).find(|&k| !self.free[k].is_empty())?;
        let offset = self.free[k].pop_first()?;
        // Split down, keeping the lower half and freeing the upper.
        for j in (order..k).rev() {
            self.free[j].insert(offset + (GRANULE << j));
        }
        let len = GRANULE << order;
        self.free_bytes -= len;
        self.high_water = self.high_water.max(offset + len);
        Some(Block { offset, len })
    }

    fn free(&mut self, block: Block) {
        debug_assert!(block.len.is_power_of_two() && block.offset.is_multiple_of(block.len));
        self.free_bytes += block.len;
        let mut offset = block.offset;
        let mut k = (block.len / GRANULE).trailing_zeros() as usize;
        while k + 1 < self.free.len() {
            let size = GRANULE << k;
            let buddy = offset ^ size;
            if buddy + size > self.capacity || !self.free[k].remove(&buddy) {
                break;
            }
            offset = offset.min(buddy);
            k += 1;
        }
        let fresh = self.free[k].insert(offset);
        debug_assert!(fresh, "double free at {}", block.offset);
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn free_bytes(&self) -> u64 {
        self.free_bytes
    }

    fn largest_request(&self) -> u64 {
        (0..self.free.len())
            .rev()
            .find(|&k| !self.free[k].is_empty())
            .map_or(0, |k| GRANULE << k)
    }

    fn high_water(&self) -> u64 {
        self.high_water
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_round_up_to_powers_of_two() {
        assert_eq!(order_for(1), 0);
        assert_eq!(order_for(16), 0);
        assert_eq!(order_for(17), 1);
        assert_eq!(order_for(33), 2);
        assert_eq!(order_for(4096), 8);
        assert_eq!(order_for(4097), 9);
    }

    #[test]
    fn a_request_takes_a_power_of_two_and_splits_the_rest() {
        let mut h = Buddy::new(4096);
        let a = h.alloc(100).unwrap();
        assert_eq!(
            a,
            Block {
                offset: 0,
                len: 128
            }
        );
        assert_eq!(
            h.free_blocks(),
            vec![
                (128, 128),
                (256, 256),
                (512, 512),
                (1024, 1024),
                (2048, 2048)
            ]
        );
        assert_eq!(h.free_bytes(), 4096 - 128);
        assert_eq!(h.largest_request(), 2048);
    }

    #[test]
    fn freeing_everything_merges_back_to_the_initial_blocks() {
        for cap in [4096, 3 * 4096, 5 * 4096 + 4096] {
            let mut h = Buddy::new(cap);
            let initial = h.free_blocks();
            let mut live = Vec::new();
            let mut size = 3;
            while let Some(b) = h.alloc(size) {
                assert!(b.end() <= cap && b.len >= size && b.offset % b.len == 0);
                assert!(
                    live.iter()
                        .all(|l: &Block| b.end() <= l.offset || l.end() <= b.offset)
                );
                live.push(b);
                size = size * 13 % 900 + 1;
            }
            // Free every other block first, then the rest backwards.
            let order: Vec<usize> = (0..live.len())
                .step_by(2)
                .chain((1..live.len()).step_by(2).rev())
                .collect();
            for i in order {
                h.free(live[i]);
            }
            assert_eq!(h.free_blocks(), initial, "capacity {cap}");
            assert_eq!(h.free_bytes(), cap);
        }
    }

    #[test]
    fn a_heap_of_three_pages_starts_as_two_blocks() {
        let h = Buddy::new(3 * 4096);
        assert_eq!(h.free_blocks(), vec![(0, 8192), (8192, 4096)]);
        assert_eq!(h.largest_request(), 8192);
    }

    #[test]
    fn buddies_merge_only_with_their_own_buddy() {
        let mut h = Buddy::new(4096);
        let b: Vec<Block> = (0..4).map(|_| h.alloc(1024).unwrap()).collect();
        // Blocks 1 and 2 are neighbours but not buddies: no merge.
        h.free(b[1]);
        h.free(b[2]);
        assert_eq!(h.largest_request(), 1024);
        h.free(b[0]);
        assert_eq!(h.largest_request(), 2048);
        h.free(b[3]);
        assert_eq!(h.free_blocks(), vec![(0, 4096)]);
    }
}
