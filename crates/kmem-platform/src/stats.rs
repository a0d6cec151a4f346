//! The statistics every kmem pool reports: the seed's `struct mp_pool_stats`
//! (§4.3.3), one type for all of them.
//!
//! This is data, not an OS call: it lives in the platform crate only because
//! that is the one crate every pool depends on. Each pool documents how it
//! fills the fields (`pool_stats()` on the page allocator, a slab cache,
//! kmalloc, a mempool, a genalloc pool and an arena pool); the rules they
//! share:
//!
//! * counts are of successful calls: `allocation_count` allocations handed
//!   out, `free_count` given back, `failed_count` allocation calls that
//!   returned nothing (out of memory or refused input);
//!   `allocation_count - free_count` is the number of live allocations;
//! * bytes are the pool's unit of allocation as its own API states it (the
//!   object size for a slab cache, the bucket for kmalloc, the block for
//!   pages, the granule-rounded size for genalloc, the size asked for in an
//!   arena); `total_allocated` never decreases, `current_allocated` is live
//!   bytes, and `peak_allocated >= current_allocated` is the highest that
//!   has been (exact where the pool says so, otherwise an upper bound).

use core::fmt;

/// One pool's statistics, laid out as the C `struct mp_pool_stats`.
///
/// ```
/// use kmem_platform::stats::PoolStats;
/// let s = PoolStats { total_allocated: 300, current_allocated: 100, peak_allocated: 200,
///                     allocation_count: 3, free_count: 2, failed_count: 1 };
/// assert_eq!(s.live(), 1);
/// assert_eq!(s.to_string(),
///     "total 300 current 100 peak 200 allocs 3 frees 2 failed 1");
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PoolStats {
    /// Bytes handed out since the pool was created (never decreases).
    pub total_allocated: usize,
    /// Bytes handed out and not yet given back.
    pub current_allocated: usize,
    /// The highest `current_allocated` has been (see the pool for exactness).
    pub peak_allocated: usize,
    /// Allocations that succeeded.
    pub allocation_count: usize,
    /// Allocations given back.
    pub free_count: usize,
    /// Allocation calls that failed.
    pub failed_count: usize,
}

impl PoolStats {
    /// Live allocations: `allocation_count - free_count` (0 if a racy
    /// snapshot saw more frees than allocations).
    ///
    /// ```
    /// let s = kmem_platform::stats::PoolStats { allocation_count: 5, free_count: 2,
    ///                                           ..Default::default() };
    /// assert_eq!(s.live(), 3);
    /// ```
    pub fn live(&self) -> usize {
        self.allocation_count.saturating_sub(self.free_count)
    }

    /// Adds `other`'s counts and bytes to these (a pool made of parts, such
    /// as kmalloc's classes). The peaks add up too, so the sum's peak is an
    /// upper bound of the true one.
    ///
    /// ```
    /// use kmem_platform::stats::PoolStats;
    /// let mut a = PoolStats { allocation_count: 1, current_allocated: 8, peak_allocated: 8,
    ///                         ..Default::default() };
    /// a.add(&a.clone());
    /// assert_eq!((a.allocation_count, a.current_allocated, a.peak_allocated), (2, 16, 16));
    /// ```
    pub fn add(&mut self, other: &PoolStats) {
        self.total_allocated = self.total_allocated.wrapping_add(other.total_allocated);
        self.current_allocated = self.current_allocated.wrapping_add(other.current_allocated);
        self.peak_allocated = self.peak_allocated.wrapping_add(other.peak_allocated);
        self.allocation_count = self.allocation_count.wrapping_add(other.allocation_count);
        self.free_count = self.free_count.wrapping_add(other.free_count);
        self.failed_count = self.failed_count.wrapping_add(other.failed_count);
    }
}

impl fmt::Display for PoolStats {
    /// One line: `total 300 current 100 peak 200 allocs 3 frees 2 failed 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "total {} current {} peak {} allocs {} frees {} failed {}",
            self.total_allocated,
            self.current_allocated,
            self.peak_allocated,
            self.allocation_count,
            self.free_count,
            self.failed_count
        )
    }
}
