//! The seed's `mp_pool_stats` view of a page allocator
//! ([`PageAllocator::pool_stats`]), and the peak it needs.

use kmem_platform::PAGE_SIZE;
use kmem_platform::stats::PoolStats;

use crate::buddy::Zone;
use kmem_platform::PageSource;

use crate::PageAllocator;

impl Zone {
    /// Raises the peak to the pages handed out now, if higher. Called under
    /// the zone lock after every allocation (a compare on the slow path's
    /// counters; the zone lock is held anyway).
    #[inline]
    pub(crate) fn note_peak(&mut self) {
        let used = self.managed_pages - self.free_pages - self.pcp_pages + self.huge_pages;
        if used > self.stats.peak_pages {
            self.stats.peak_pages = used;
        }
    }
}

impl<S: PageSource> PageAllocator<S> {
    /// The seed's `mp_pool_stats` for the page allocator: bytes are whole
    /// blocks (`PAGE_SIZE << order`) and huge mappings (their pages);
    /// counts are blocks and mappings; `peak_allocated` is exact (kept under
    /// the zone lock; a huge mapping counts from the moment it is reserved);
    /// `failed_count` is allocations that failed.
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator};
    /// let pages = PageAllocator::new(kmem_platform::TestPlatform::new());
    /// let a = pages.alloc(0, Gfp::KERNEL).unwrap();
    /// let b = pages.alloc(2, Gfp::KERNEL).unwrap();
    /// drop(a);
    /// let s = pages.pool_stats();
    /// assert_eq!((s.allocation_count, s.free_count, s.failed_count), (2, 1, 0));
    /// assert_eq!((s.total_allocated, s.current_allocated, s.peak_allocated), (5 * 4096, 4 * 4096, 5 * 4096));
    /// drop(b);
    /// ```
    pub fn pool_stats(&self) -> PoolStats {
        self.with_zone(|z| {
            let st = &z.stats;
            let mut pages_total = st.huge_pages_total;
            let (mut allocs, mut frees) = (st.huge_allocs, st.huge_frees);
            for o in 0..st.allocs.len() {
                pages_total += st.allocs[o] << o;
                allocs += st.allocs[o];
                frees += st.frees[o];
            }
            let used = z.managed_pages - z.free_pages - z.pcp_pages + z.huge_pages;
            PoolStats {
                total_allocated: (pages_total as usize).wrapping_mul(PAGE_SIZE),
                current_allocated: used * PAGE_SIZE,
                peak_allocated: st.peak_pages.max(used) * PAGE_SIZE,
                allocation_count: allocs as usize,
                free_count: frees as usize,
                failed_count: st.failures as usize,
            }
        })
    }
}
