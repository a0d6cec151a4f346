//! The seed's `mp_pool_stats` view of a page allocator
//! ([`PageAllocator::pool_stats`]), and the peak it needs.

use kmem_platform::PAGE_SIZE;
use kmem_platform::PageSource;
use kmem_platform::stats::PoolStats;

use crate::PageAllocator;
use crate::buddy::Zone;
use crate::pcp::{AllSets, PCP_ORDERS};

impl Zone {
    /// Raises the peak to the pages out of the buddy free lists now, if
    /// higher. Called under the zone lock whenever pages leave the lists (a
    /// compare on a path that holds the zone lock anyway; the per-cpu fast
    /// paths share no counter).
    #[inline]
    pub(crate) fn note_peak(&mut self) {
        let out = self.managed_pages - self.free_pages + self.huge_pages;
        if out > self.stats.peak_out {
            self.stats.peak_out = out;
        }
    }
}

impl<S: PageSource> PageAllocator<S> {
    /// The seed's `mp_pool_stats` for the page allocator: bytes are whole
    /// blocks (`PAGE_SIZE << order`) and huge mappings (their pages);
    /// counts are blocks and mappings; `failed_count` is allocations that
    /// failed. `current_allocated` is exact. `peak_allocated` is the most
    /// pages ever out of the buddy free lists at once — handed out, or held
    /// on a per-cpu list ready to be, or reserved for a huge mapping — kept
    /// under the zone lock so that the per-cpu fast paths share no counter:
    /// at least the true peak, and above it by at most what the per-cpu
    /// lists held then (`pcp->high`, 64 pages per order, per cpu in use).
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator};
    /// let pages = PageAllocator::new(kmem_platform::TestPlatform::new());
    /// let a = pages.alloc(0, Gfp::KERNEL).unwrap();
    /// let b = pages.alloc(2, Gfp::KERNEL).unwrap();
    /// drop(a);
    /// let s = pages.pool_stats();
    /// assert_eq!((s.allocation_count, s.free_count, s.failed_count), (2, 1, 0));
    /// assert_eq!((s.total_allocated, s.current_allocated), (5 * 4096, 4 * 4096));
    /// // Both allocations refilled a per-cpu list with 16 pages' worth.
    /// assert_eq!(s.peak_allocated, 32 * 4096);
    /// drop(b);
    /// ```
    pub fn pool_stats(&self) -> PoolStats {
        let sets = AllSets::lock(&self.pcp);
        let z = self.zone.lock();
        let st = &z.stats;
        let mut pages_total = st.huge_pages_total;
        let (mut allocs, mut frees) = (st.huge_allocs, st.huge_frees);
        for o in 0..st.allocs.len() {
            pages_total += st.allocs[o] << o;
            allocs += st.allocs[o];
            frees += st.frees[o];
        }
        let mut used = z.used_pages;
        for p in sets.iter() {
            used += p.stats.used;
            for o in 0..PCP_ORDERS {
                pages_total += p.stats.allocs[o] << o;
                allocs += p.stats.allocs[o];
                frees += p.stats.frees[o];
            }
        }
        let used = used.max(0) as usize;
        PoolStats {
            total_allocated: (pages_total as usize).wrapping_mul(PAGE_SIZE),
            current_allocated: used * PAGE_SIZE,
            peak_allocated: st.peak_out.max(used) * PAGE_SIZE,
            allocation_count: allocs as usize,
            free_count: frees as usize,
            failed_count: st.failures as usize,
        }
    }
}
