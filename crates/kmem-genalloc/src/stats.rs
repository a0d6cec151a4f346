//! The seed's `mp_pool_stats` view of a genalloc pool
//! ([`GenPool::pool_stats`](crate::GenPool::pool_stats)).
//!
//! The pool is lock-free and has no per-thread state, so its counters are
//! relaxed atomics on one cache line of their own: an allocation adds to
//! three of them (and raises the peak only when it is passed), a free to
//! two. Allocation already does a read-modify-write on its chunk's `avail`,
//! so this keeps the pool's cost of the same kind.

use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use kmem_platform::stats::PoolStats;

/// A pool's counters.
#[repr(align(64))]
#[derive(Default)]
pub(crate) struct Counters {
    /// Allocations that succeeded.
    allocs: AtomicUsize,
    /// Bytes they took (granule-rounded, as the pool accounts them).
    bytes_total: AtomicUsize,
    /// Bytes allocated now.
    live: AtomicUsize,
    /// The most bytes allocated at once.
    peak: AtomicUsize,
    /// Frees that succeeded.
    frees: AtomicUsize,
    /// Allocation calls that failed.
    failed: AtomicUsize,
}

impl Counters {
    /// Counts an allocation of `bytes`.
    #[inline]
    pub(crate) fn alloc(&self, bytes: usize) {
        self.allocs.fetch_add(1, Relaxed);
        self.bytes_total.fetch_add(bytes, Relaxed);
        let live = self.live.fetch_add(bytes, Relaxed) + bytes;
        if live > self.peak.load(Relaxed) {
            self.peak.fetch_max(live, Relaxed);
        }
    }

    /// Counts a failed allocation call.
    #[cold]
    pub(crate) fn failed(&self) {
        self.failed.fetch_add(1, Relaxed);
    }

    /// Counts a free of `bytes`.
    #[inline]
    pub(crate) fn free(&self, bytes: usize) {
        self.frees.fetch_add(1, Relaxed);
        self.live.fetch_sub(bytes, Relaxed);
    }

    /// A snapshot.
    pub(crate) fn snapshot(&self) -> PoolStats {
        let live = self.live.load(Relaxed);
        PoolStats {
            total_allocated: self.bytes_total.load(Relaxed),
            current_allocated: live,
            peak_allocated: self.peak.load(Relaxed).max(live),
            allocation_count: self.allocs.load(Relaxed),
            free_count: self.frees.load(Relaxed),
            failed_count: self.failed.load(Relaxed),
        }
    }
}

impl<S: kmem_platform::PageSource> crate::GenPool<S> {
    /// The seed's `mp_pool_stats` for the pool: bytes are granule-rounded
    /// sizes, as the pool accounts them (`current_allocated == size() -
    /// avail()` when no call is under way); `peak_allocated` is exact;
    /// `failed_count` counts allocation calls that failed (no space, size 0,
    /// a bad algorithm argument). `free_count` counts successful free calls:
    /// the kernel lets a caller free part of an allocation, so with partial
    /// frees `allocation_count - free_count` is not the live allocations.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10000, 0x10000).unwrap();
    /// let a = pool.alloc(100).unwrap();           // one 4 KiB granule
    /// let b = pool.alloc(0x3000).unwrap();
    /// assert!(pool.alloc(0x20000).is_err());
    /// pool.free_alloc(a).unwrap();
    /// let s = pool.pool_stats();
    /// assert_eq!((s.total_allocated, s.current_allocated, s.peak_allocated), (0x4000, 0x3000, 0x4000));
    /// assert_eq!((s.allocation_count, s.free_count, s.failed_count), (2, 1, 1));
    /// # pool.free_alloc(b).unwrap();
    /// ```
    pub fn pool_stats(&self) -> PoolStats {
        self.counters.snapshot()
    }
}
