//! kmalloc's counters and report.

use core::fmt;
use core::sync::atomic::Ordering;

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
