//! Pool statistics: the seed's `struct mp_pool_stats` (§4.3.3), kept exactly.
//!
//! The hot path pays for one counter (`Pool::count`, the allocation count);
//! bytes are derived from the window cursor it moves anyway. The peak is
//! exact without being updated on the hot path,
//! because `current_allocated` only ever falls at a free or a reset, and the
//! pool samples it just before each of those (and whenever it is read).
//!
//! [`PoolStats`] is [`kmem_platform::stats::PoolStats`], the type every kmem
//! pool reports.
//!
//! What each field counts (sizes are the sizes *asked for*, as in the seed's
//! `mp_alloc_with_stats`; alignment padding and the pool's own bookkeeping —
//! block headers, large-list entries, drop records, cleanup records and their
//! data — are not counted):
//!
//! * `total_allocated` — bytes handed out since the pool was created, by every
//!   allocation that succeeded (small and large). Never decreases; not cleared
//!   by reset.
//! * `current_allocated` — bytes handed out and not yet given back: small
//!   allocations since the last reset plus live large ones. A large block freed
//!   with `mp_free` subtracts its size; a reset sets it to 0.
//! * `peak_allocated` — the highest `current_allocated` has been (exact).
//! * `allocation_count` — allocations that succeeded, through any entry point.
//! * `free_count` — allocations given back: each `mp_free` that returned 0,
//!   plus, at each reset, every allocation live at that moment. So
//!   `allocation_count - free_count` is always the number of live allocations.
//! * `failed_count` — allocation calls that returned NULL / an error: out of
//!   memory, size 0 or too large, a bad alignment.
//!
//! ```
//! use kmem_arena::Pool;
//! let pool = Pool::new(kmem_arena::Global, 4096).unwrap();
//! pool.alloc(100).unwrap();
//! let big = pool.alloc(10_000).unwrap();      // > max (4095): a large block
//! // SAFETY: `big` is not used afterwards.
//! assert!(unsafe { pool.free(big.as_ptr()) }.is_ok());
//! let s = pool.stats();
//! assert_eq!((s.total_allocated, s.current_allocated, s.peak_allocated), (10_100, 100, 10_100));
//! assert_eq!((s.allocation_count, s.free_count, s.failed_count), (2, 1, 0));
//! ```

use core::cell::Cell;

/// The statistics every kmem pool reports (the C `struct mp_pool_stats`);
/// the module docs say what a region pool counts in each field.
pub use kmem_platform::stats::PoolStats;

/// The counters behind [`PoolStats`], kept in the pool.
///
/// The hot path updates none of them: it counts allocations in `Pool::count`
/// (next to the cursor; the total, so it needs no folding), bytes are the
/// distance the cursor moved, and `Pool::fold` adds those to `bytes` at
/// every slow path, reset, free and read.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Bytes of successful allocations, as of the last fold: `total_allocated`.
    pub bytes: Cell<usize>,
    /// Allocations given back.
    pub frees: Cell<usize>,
    /// Bytes handed out and not given back, as of the last fold:
    /// `current_allocated`. (Kept rather than the bytes given back, so a
    /// reset stores 0 instead of carrying a total from one reset to the next.)
    pub live: Cell<usize>,
    /// Failed calls.
    pub failed: Cell<usize>,
    /// The peak as last sampled; the true peak is `max(peak, current)`.
    pub peak: Cell<usize>,
}

/// The largest block a pool may have (block rooms are kept as `u32`).
pub(crate) const MAX_BLOCK_BYTES: usize = 1 << 31;

impl Counters {
    /// Adds `bytes` handed out (a fold, or a slow-path allocation).
    #[inline]
    pub fn add_bytes(&self, bytes: usize) {
        self.bytes.set(self.bytes.get().wrapping_add(bytes));
        self.live.set(self.live.get().wrapping_add(bytes));
    }

    /// Bytes live now (as of the last fold).
    #[inline]
    pub fn current(&self) -> usize {
        self.live.get()
    }

    /// Folds the current value into the peak; called (after a fold) before
    /// anything falls.
    #[inline]
    pub fn sample_peak(&self) {
        let c = self.current();
        if c > self.peak.get() {
            self.peak.set(c);
        }
    }

    /// Counts one large allocation of `size` bytes given back (after a fold).
    pub fn count_free(&self, size: usize) {
        self.sample_peak();
        self.frees.set(self.frees.get() + 1);
        self.live.set(self.live.get().wrapping_sub(size));
    }

    /// A reset gives back everything live (after a fold); `allocs` is the
    /// allocation count.
    #[inline]
    pub fn count_reset(&self, allocs: usize) {
        self.sample_peak();
        self.frees.set(allocs);
        self.live.set(0);
    }

    /// Counts a failed call.
    #[inline]
    pub fn count_failed(&self) {
        self.failed.set(self.failed.get() + 1);
    }

    /// A snapshot (after a fold); `allocs` is the allocation count.
    pub fn snapshot(&self, allocs: usize) -> PoolStats {
        self.sample_peak();
        PoolStats {
            total_allocated: self.bytes.get(),
            current_allocated: self.current(),
            peak_allocated: self.peak.get(),
            allocation_count: allocs,
            free_count: self.frees.get(),
            failed_count: self.failed.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_sampled_before_every_fall() {
        let c = Counters::default();
        c.add_bytes(100);
        c.add_bytes(50);
        c.count_free(100);
        c.add_bytes(20);
        assert_eq!(c.snapshot(3).peak_allocated, 150);
        assert_eq!(c.snapshot(3).current_allocated, 70);
        c.add_bytes(200);
        c.count_reset(4);
        let s = c.snapshot(4);
        assert_eq!(
            (s.current_allocated, s.peak_allocated, s.total_allocated),
            (0, 270, 370)
        );
        assert_eq!(s.allocation_count - s.free_count, 0);
    }
}
