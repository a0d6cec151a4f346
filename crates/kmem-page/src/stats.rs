//! The seed's `mp_pool_stats` view of a page allocator
//! ([`PageAllocator::pool_stats`]), and the pages-in-use counter it needs.

use core::sync::atomic::{AtomicUsize, Ordering};

use kmem_platform::PAGE_SIZE;
use kmem_platform::PageSource;
use kmem_platform::stats::PoolStats;

use crate::PageAllocator;
use crate::pcp::{AllSets, PCP_ORDERS};

/// Pages handed out now (buddy blocks and huge mappings) and the most at
/// once, on their own cache line. Changed only while the lock that guards the
/// pages' state is held (a per-cpu set's lock or the zone lock), so with every
/// lock held `used` is exact; the peak is exact too (each change raises it).
#[repr(align(128))]
pub(crate) struct Usage {
    /// Pages in use: `managed - free - cached + huge`, whenever every lock is held.
    used: AtomicUsize,
    /// The most pages in use at once since creation. Invariant: `peak >= used`
    /// after every `add`.
    peak: AtomicUsize,
}

impl Usage {
    pub(crate) const fn new() -> Self {
        Usage {
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// `n` more pages in use; raises the peak if passed.
    #[inline(always)]
    pub(crate) fn add(&self, n: usize) {
        let u = self.used.fetch_add(n, Ordering::Relaxed) + n;
        if u > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(u, Ordering::Relaxed);
        }
    }

    /// `n` pages no longer in use.
    #[inline(always)]
    pub(crate) fn sub(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }

    /// Pages in use now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most pages in use at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

impl<S: PageSource> PageAllocator<S> {
    /// The seed's `mp_pool_stats` for the page allocator: bytes are whole
    /// blocks (`PAGE_SIZE << order`) and huge mappings (their pages);
    /// counts are blocks and mappings; `peak_allocated` is exact (a counter
    /// changed under the lock of each allocation and free; a huge mapping
    /// counts from the moment it is reserved); `failed_count` is allocations
    /// that failed.
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
        for p in sets.iter() {
            for o in 0..PCP_ORDERS {
                pages_total += p.stats.allocs[o] << o;
                allocs += p.stats.allocs[o];
                frees += p.stats.frees[o];
            }
        }
        let used = self.usage.used();
        PoolStats {
            total_allocated: (pages_total as usize).wrapping_mul(PAGE_SIZE),
            current_allocated: used * PAGE_SIZE,
            peak_allocated: self.usage.peak().max(used) * PAGE_SIZE,
            allocation_count: allocs as usize,
            free_count: frees as usize,
            failed_count: st.failures as usize,
        }
    }
}
