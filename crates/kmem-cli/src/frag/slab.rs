//! Fixed-size blocks as the kernel does them: segregated size classes
//! (kmalloc's, 16 B … 2 KiB) each carved out of 4 KiB slabs, a request
//! rounded up to its class; requests above the largest class take a run of
//! whole pages (first fit over the page map), as `kmalloc_large` goes to the
//! page allocator. A slab whose last object is freed goes back to the free
//! pages at once, so any class (or a large request) can reuse it.
//!
//! A simulation over offsets: the slab layer (`kmem::slab`) manages real
//! memory with per-thread caches, which would measure its caching, not the
//! placement policy of the seeds' table.

use std::collections::BTreeSet;

use super::heap::{Block, Heap};

/// Slab (and large-request) granularity.
pub const PAGE: u64 = 4096;
/// The size classes, as kmalloc's (above its 8-byte class, below the granule).
pub const CLASSES: [u64; 10] = [16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048];

/// What a page of the heap is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageState {
    /// Free: in `free_pages`.
    Free,
    /// A slab of class `CLASSES[class]`; bit `i` of `map` set = object `i`
    /// in use; `inuse` = set bits (never 0: an empty slab is freed).
    Slab {
        class: u8,
        inuse: u16,
        map: [u64; 4],
    },
    /// The first of `n` pages of one large block.
    LargeHead { n: u32 },
    /// A later page of a large block.
    LargeTail,
}

/// A size-class heap over `[0, capacity)` (whole pages; a tail shorter than a
/// page is never used).
#[derive(Clone)]
pub struct Slab {
    capacity: u64,
    pages: Vec<PageState>,
    /// Indices of `Free` pages.
    free_pages: BTreeSet<u32>,
    /// Per class, the slabs with a free object (lowest address used first).
    partial: [BTreeSet<u32>; CLASSES.len()],
    /// `capacity` − Σ live block lengths.
    free_bytes: u64,
    /// Highest page end ever used.
    high_water: u64,
}

/// Objects of class `c` in one slab.
fn objects(c: usize) -> u64 {
    PAGE / CLASSES[c]
}

/// The class for `size`, if it has one.
pub fn class_for(size: u64) -> Option<usize> {
    CLASSES.iter().position(|&c| c >= size.max(1))
}

impl Slab {
    /// An empty heap: every page free.
    pub fn new(capacity: u64) -> Slab {
        let n = (capacity / PAGE) as u32;
        Slab {
            capacity,
            pages: vec![PageState::Free; n as usize],
            free_pages: (0..n).collect(),
            partial: Default::default(),
            free_bytes: capacity,
            high_water: 0,
        }
    }

    /// Takes the first run of `n` free pages.
    fn take_pages(&mut self, n: u32) -> Option<u32> {
        let mut start = None;
        let mut run = 0;
        let mut prev = None;
        for &p in &self.free_pages {
            if prev.is_some_and(|q| q + 1 == p) {
                run += 1;
            } else {
                start = Some(p);
                run = 1;
            }
            prev = Some(p);
            if run == n {
                break;
            }
        }
        if run < n {
            return None;
        }
        let start = start?;
        for p in start..start + n {
            self.free_pages.remove(&p);
        }
        self.high_water = self.high_water.max(u64::from(start + n) * PAGE);
        Some(start)
    }

    /// The longest run of free pages.
    fn longest_run(&self) -> u64 {
        let (mut best, mut run, mut prev) = (0, 0, None);
        for &p in &self.free_pages {
            run = if prev.is_some_and(|q: u32| q + 1 == p) {
                run + 1
            } else {
                1
            };
            best = best.max(run);
            prev = Some(p);
        }
        best
    }

    /// `true` when every page is free (for tests).
    #[cfg(test)]
    pub fn all_free(&self) -> bool {
        self.free_pages.len() == self.pages.len()
            && self.pages.iter().all(|p| *p == PageState::Free)
            && self.partial.iter().all(BTreeSet::is_empty)
    }

    #[cold]
    fn alloc_large(&mut self, size: u64) -> Option<Block> {
        let n = u32::try_from(size.div_ceil(PAGE)).ok()?;
        let start = self.take_pages(n)?;
        self.pages[start as usize] = PageState::LargeHead { n };
        for p in start + 1..start + n {
            self.pages[p as usize] = PageState::LargeTail;
        }
        let len = u64::from(n) * PAGE;
        self.free_bytes -= len;
        Some(Block {
            offset: u64::from(start) * PAGE,
            len,
        })
    }

    /// A fresh slab for class `c`, with object 0 taken.
    #[cold]
    fn alloc_slow(&mut self, c: usize) -> Option<Block> {
        let page = self.take_pages(1)?;
        let mut map = [0u64; 4];
        map[0] = 1;
        self.pages[page as usize] = PageState::Slab {
            class: c as u8,
            inuse: 1,
            map,
        };
        if objects(c) > 1 {
            self.partial[c].insert(page);
        }
        self.free_bytes -= CLASSES[c];
        Some(Block {
            offset: u64::from(page) * PAGE,
            len: CLASSES[c],
        })
    }
}

impl Heap for Slab {
    fn alloc(&mut self, size: u64) -> Option<Block> {
        let Some(c) = class_for(size) else {
            return self.alloc_large(size);
        };
        let Some(&page) = self.partial[c].first() else {
            return self.alloc_slow(c);
        };
        let PageState::Slab { inuse, map, .. } = &mut self.pages[page as usize] else {
            unreachable!("partial list holds slab pages only");
        };
        let (w, word) = map.iter_mut().enumerate().find(|(_, w)| **w != u64::MAX)?;
        let bit = word.trailing_ones();
        *word |= 1 << bit;
        *inuse += 1;
        let slot = w as u64 * 64 + u64::from(bit);
        debug_assert!(slot < objects(c));
        if u64::from(*inuse) == objects(c) {
            self.partial[c].remove(&page);
        }
        self.free_bytes -= CLASSES[c];
        Some(Block {
            offset: u64::from(page) * PAGE + slot * CLASSES[c],
            len: CLASSES[c],
        })
    }

    fn free(&mut self, block: Block) {
        let page = (block.offset / PAGE) as u32;
        self.free_bytes += block.len;
        match &mut self.pages[page as usize] {
            PageState::Slab { class, inuse, map } => {
                let c = *class as usize;
                let slot = (block.offset % PAGE) / CLASSES[c];
                let (w, bit) = ((slot / 64) as usize, slot % 64);
                debug_assert!(map[w] & (1 << bit) != 0, "double free at {}", block.offset);
                map[w] &= !(1 << bit);
                *inuse -= 1;
                if *inuse == 0 {
                    self.pages[page as usize] = PageState::Free;
                    self.partial[c].remove(&page);
                    self.free_pages.insert(page);
                } else {
                    self.partial[c].insert(page);
                }
            }
            PageState::LargeHead { n } => {
                let n = *n;
                for p in page..page + n {
                    self.pages[p as usize] = PageState::Free;
                    self.free_pages.insert(p);
                }
            }
            s => unreachable!("free of {block:?}: page {page} is {s:?}"),
        }
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn free_bytes(&self) -> u64 {
        self.free_bytes
    }

    fn largest_request(&self) -> u64 {
        let run = self.longest_run() * PAGE;
        let class = (0..CLASSES.len())
            .rev()
            .find(|&c| !self.partial[c].is_empty())
            .map_or(0, |c| CLASSES[c]);
        run.max(class)
    }

    fn high_water(&self) -> u64 {
        self.high_water
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_up_to_their_class() {
        let mut h = Slab::new(16 * PAGE);
        assert_eq!(h.alloc(1).unwrap().len, 16);
        assert_eq!(h.alloc(65).unwrap().len, 96);
        assert_eq!(h.alloc(2048).unwrap().len, 2048);
        assert_eq!(h.alloc(2049).unwrap().len, PAGE);
        assert_eq!(h.alloc(3 * PAGE + 1).unwrap().len, 4 * PAGE);
    }

    #[test]
    fn one_class_fills_a_slab_before_taking_another_page() {
        let mut h = Slab::new(4 * PAGE);
        let blocks: Vec<Block> = (0..PAGE / 64 + 1).map(|_| h.alloc(50).unwrap()).collect();
        for (i, b) in blocks.iter().enumerate().take((PAGE / 64) as usize) {
            assert_eq!(b.offset, i as u64 * 64);
        }
        assert_eq!(blocks.last().unwrap().offset, PAGE);
    }

    #[test]
    fn freeing_everything_returns_every_page() {
        let mut h = Slab::new(32 * PAGE);
        let mut live: Vec<Block> = Vec::new();
        let mut size = 5;
        while let Some(b) = h.alloc(size) {
            assert!(b.end() <= 32 * PAGE && b.len >= size);
            assert!(
                live.iter()
                    .all(|l| b.end() <= l.offset || l.end() <= b.offset)
            );
            live.push(b);
            size = size * 31 % 9000 + 1;
        }
        let n = live.len();
        for i in (0..n).step_by(2).chain((1..n).step_by(2)) {
            h.free(live[i]);
        }
        assert!(h.all_free());
        assert_eq!(h.free_bytes(), 32 * PAGE);
        assert_eq!(h.largest_request(), 32 * PAGE);
    }

    #[test]
    fn free_memory_in_slabs_of_one_class_does_not_serve_another() {
        let mut h = Slab::new(2 * PAGE);
        // Fill both pages with 16-byte objects, then free all but one per page.
        let b: Vec<Block> = (0..2 * PAGE / 16).map(|_| h.alloc(16).unwrap()).collect();
        for x in &b {
            if x.offset % PAGE != 0 {
                h.free(*x);
            }
        }
        assert_eq!(h.free_bytes(), 2 * PAGE - 32);
        assert_eq!(h.largest_request(), 16);
        assert_eq!(h.alloc(17), None);
        assert!(h.alloc(16).is_some());
    }

    #[test]
    fn large_blocks_take_the_first_run_of_free_pages() {
        let mut h = Slab::new(8 * PAGE);
        let a = h.alloc(PAGE).unwrap();
        let b = h.alloc(2 * PAGE).unwrap();
        let _c = h.alloc(PAGE).unwrap();
        h.free(a);
        h.free(b);
        // Pages 0..3 free, 3 used, 4..8 free.
        assert_eq!(h.largest_request(), 4 * PAGE);
        assert_eq!(h.alloc(3 * PAGE).unwrap().offset, 0);
        assert_eq!(h.alloc(4 * PAGE).unwrap().offset, 4 * PAGE);
        assert_eq!(h.alloc(1), None);
    }
}
