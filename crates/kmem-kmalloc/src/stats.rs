//! kmalloc's counters and report.

use core::fmt;
use core::sync::atomic::Ordering;

use kmem_platform::stats::PoolStats;

use crate::alloc::LARGE;
use crate::caches::caches_if_ready;
use crate::class::{KMALLOC_NAMES, NR_KMALLOC_CLASSES};

/// A snapshot of kmalloc's counters. The classes' own counters are their
/// slabinfo rows ([`kmem_slab::SlabInfo`]).
///
/// ```
/// let p = kmem_kmalloc::kmalloc(1 << 20, kmem_page::Gfp::KERNEL)?;
/// assert!(kmem_kmalloc::stats().large_allocs >= 1);
/// # unsafe { kmem_kmalloc::kfree(p.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KmallocStats {
    /// Page blocks handed out for requests above 8 KiB (up to 4 MiB).
    pub large_allocs: usize,
    /// Page blocks freed.
    pub large_frees: usize,
    /// Bytes in page blocks now.
    pub large_bytes: usize,
    /// Mappings of their own for requests above 4 MiB.
    pub huge_allocs: usize,
    /// Such mappings freed.
    pub huge_frees: usize,
    /// Bytes in such mappings now.
    pub huge_bytes: usize,
    /// Large requests that failed.
    pub failures: usize,
    /// `kfree` calls refused because the pointer was not a kmalloc
    /// allocation outside any kmalloc cache (bad frees of slab objects are
    /// counted by their cache's report).
    pub bad_frees: usize,
}

/// kmalloc's counters now.
pub fn stats() -> KmallocStats {
    let l = |a: &core::sync::atomic::AtomicUsize| a.load(Ordering::Relaxed);
    KmallocStats {
        large_allocs: l(&LARGE.allocs),
        large_frees: l(&LARGE.frees),
        large_bytes: l(&LARGE.bytes),
        huge_allocs: l(&LARGE.huge_allocs),
        huge_frees: l(&LARGE.huge_frees),
        huge_bytes: l(&LARGE.huge_bytes),
        failures: l(&LARGE.failures),
        bad_frees: l(&LARGE.bad_frees),
    }
}

/// The seed's `mp_pool_stats` for kmalloc as a whole: its classes (each a
/// slab cache: [`KmemCache::pool_stats`](kmem_slab::KmemCache::pool_stats),
/// in bytes of the class, what [`ksize`](crate::ksize) gives) plus its large
/// path (page blocks and huge mappings, in their whole bytes). kmalloc keeps
/// no requested sizes, so bytes are what the allocations really have.
/// `failed_count` is allocations that failed (a class's slab could not grow,
/// or the pages were not there). `peak_allocated` is the sum of the parts'
/// peaks: an upper bound of the true peak (which would need one shared
/// counter on the fast path).
///
/// The counts sum every thread's; see [`kmem_slab::KmemCache::stats`] for
/// what a read concurrent with other threads' allocations sees.
///
/// ```
/// use kmem_kmalloc::{kfree, kmalloc, pool_stats};
/// let before = pool_stats();
/// let p = kmalloc(100, kmem_page::Gfp::KERNEL)?;       // kmalloc-128
/// let q = kmalloc(100_000, kmem_page::Gfp::KERNEL)?;   // an order-5 block
/// let s = pool_stats();
/// assert!(s.allocation_count >= before.allocation_count + 2);
/// assert!(s.current_allocated >= 128 + (128 << 10));
/// unsafe { kfree(p.as_ptr())?; kfree(q.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
pub fn pool_stats() -> PoolStats {
    let mut s = PoolStats::default();
    if let Some(cs) = caches_if_ready() {
        for c in cs.iter().take(NR_KMALLOC_CLASSES) {
            s.add(&c.pool_stats());
        }
    }
    let l = |a: &core::sync::atomic::AtomicUsize| a.load(Ordering::Relaxed);
    s.add(&PoolStats {
        total_allocated: l(&LARGE.bytes_total),
        current_allocated: l(&LARGE.bytes) + l(&LARGE.huge_bytes),
        peak_allocated: l(&LARGE.peak),
        allocation_count: l(&LARGE.allocs) + l(&LARGE.huge_allocs),
        free_count: l(&LARGE.frees) + l(&LARGE.huge_frees),
        failed_count: l(&LARGE.failures),
    });
    s
}

/// Writes kmalloc's report: one line per class (objects in use, slabs,
/// memory) and the large path's counters. Never allocates.
///
/// ```
/// let p = kmem_kmalloc::kmalloc(40, kmem_page::Gfp::KERNEL)?;
/// let mut s = String::new();
/// kmem_kmalloc::write_stats(&mut s).unwrap();
/// assert!(s.contains("kmalloc-64"));
/// # unsafe { kmem_kmalloc::kfree(p.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
pub fn write_stats(w: &mut dyn fmt::Write) -> fmt::Result {
    writeln!(
        w,
        "kmalloc: {:<12} {:>10} {:>10} {:>8} {:>10}",
        "class", "active", "objects", "slabs", "KiB"
    )?;
    if let Some(cs) = caches_if_ready() {
        for (i, c) in cs.iter().enumerate().take(NR_KMALLOC_CLASSES) {
            let info = c.info();
            let g = c.geometry();
            writeln!(
                w,
                "kmalloc: {:<12} {:>10} {:>10} {:>8} {:>10}",
                KMALLOC_NAMES[i],
                info.active_objs,
                info.num_objs,
                info.num_slabs,
                (info.num_slabs * (kmem_platform::PAGE_SIZE << g.order)) / 1024
            )?;
        }
    }
    let s = stats();
    writeln!(
        w,
        "kmalloc: large  allocs {} frees {} in use {} KiB; huge allocs {} frees {} in use {} KiB; failures {}; bad frees {}",
        s.large_allocs,
        s.large_frees,
        s.large_bytes / 1024,
        s.huge_allocs,
        s.huge_frees,
        s.huge_bytes / 1024,
        s.failures,
        s.bad_frees
    )
}
