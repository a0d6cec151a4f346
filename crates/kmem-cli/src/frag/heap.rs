//! What every simulated allocator of `kmem frag` is: a heap of `capacity`
//! bytes of offsets (no memory behind them), handing out [`Block`]s.
//!
//! Requests are rounded up to the [`GRANULE`] (16 bytes, malloc's alignment)
//! by every algorithm; what an algorithm rounds beyond that (buddy: a power of
//! two; slab: its size class or whole pages) is its internal fragmentation.
//! Bookkeeping is out of band (no boundary tags inside the heap), as in
//! genalloc or a TLSF offset allocator, so the numbers compare placement
//! policies alone.

use super::buddy::Buddy;
use super::freelist::{Fit, FreeList};
use super::slab::Slab;

/// Every block starts at a multiple of this and is a multiple of it long.
pub const GRANULE: u64 = 16;

/// A block handed out: `[offset, offset + len)` of the heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// First byte.
    pub offset: u64,
    /// Bytes the block occupies (≥ the request, rounded by the algorithm).
    pub len: u64,
}

impl Block {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// A simulated allocator over `[0, capacity)`.
pub trait Heap {
    /// Hands out a block of at least `size` bytes, or `None` when no free
    /// block fits (a failure: the heap never grows).
    fn alloc(&mut self, size: u64) -> Option<Block>;
    /// Takes back a block this heap handed out (exactly as returned).
    fn free(&mut self, block: Block);
    /// Bytes the heap manages.
    fn capacity(&self) -> u64;
    /// Bytes in no handed-out block (`capacity` − Σ live `len`).
    fn free_bytes(&self) -> u64;
    /// The largest `n` for which `alloc(n)` would succeed now (0: none).
    fn largest_request(&self) -> u64;
    /// One past the highest byte any block (or slab page) ever reached: the
    /// footprint the heap would need if it grew on demand.
    fn high_water(&self) -> u64;
}

/// The algorithms of the seeds' §3.2 table, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    /// Address-ordered free list, the first block that fits.
    FirstFit,
    /// The smallest free block that fits (whole list scanned).
    BestFit,
    /// The largest free block (whole list scanned).
    WorstFit,
    /// Binary buddy system, 16-byte order 0.
    Buddy,
    /// Segregated fixed-size blocks: kmalloc-like size classes in 4 KiB slabs,
    /// larger requests as runs of whole pages.
    Slab,
}

impl Algo {
    /// Every algorithm, in table order.
    pub const ALL: [Algo; 5] = [
        Algo::FirstFit,
        Algo::BestFit,
        Algo::WorstFit,
        Algo::Buddy,
        Algo::Slab,
    ];

    /// The name in tables, plots and CSV.
    pub fn name(self) -> &'static str {
        match self {
            Algo::FirstFit => "first fit",
            Algo::BestFit => "best fit",
            Algo::WorstFit => "worst fit",
            Algo::Buddy => "buddy",
            Algo::Slab => "slab classes",
        }
    }
}

/// One heap of any algorithm; an enum (not `dyn`) so that the timed replay
/// is monomorphic per algorithm.
pub enum AnyHeap {
    /// First, best or worst fit.
    List(FreeList),
    /// Buddy.
    Buddy(Buddy),
    /// Size classes (boxed: its per-class lists make it the large one).
    Slab(Box<Slab>),
}

impl AnyHeap {
    /// A fresh, empty heap of `capacity` bytes (a multiple of 4096).
    pub fn new(algo: Algo, capacity: u64) -> AnyHeap {
        match algo {
            Algo::FirstFit => AnyHeap::List(FreeList::new(Fit::First, capacity)),
            Algo::BestFit => AnyHeap::List(FreeList::new(Fit::Best, capacity)),
            Algo::WorstFit => AnyHeap::List(FreeList::new(Fit::Worst, capacity)),
            Algo::Buddy => AnyHeap::Buddy(Buddy::new(capacity)),
            Algo::Slab => AnyHeap::Slab(Box::new(Slab::new(capacity))),
        }
    }
}

/// `size` rounded up to the granule (at least one granule).
pub fn granules(size: u64) -> u64 {
    size.max(1).div_ceil(GRANULE) * GRANULE
}
