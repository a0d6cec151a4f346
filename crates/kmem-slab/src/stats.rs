//! Statistics of a cache: SLAB's `cpustat` (per-thread array hits and
//! misses) and `globalstat` (what the node lists saw), and the seed's
//! `mp_pool_stats` fields derived from them.
//!
//! ## Where the counts are kept
//!
//! * **Per thread** ([`CpuStat`], in every [`ArrayCache`]): `allochit`,
//!   `allocmiss`, `freehit`, `freemiss`. Only the owning thread writes them,
//!   with a relaxed load and a relaxed store (no read-modify-write, no lock:
//!   on x86-64 the same `mov`/`add`/`mov` a plain `u64` would compile to). A
//!   hit is an operation the thread's array served by itself: the fast paths
//!   count it, the slow paths count an operation that found its
//!   array non-empty (allocation) or not full (free) — Linux's definitions.
//!   The two hit counters are [`HitSeq`] words that are also the fast path's
//!   "inside an operation" marker of the freeze protocol (odd while inside),
//!   so one store on entry and one on exit both mark and count.
//!   A miss is one that had to go to the node: a refill from the shared
//!   array or the slabs, a flush of a full array, or (a thread that has no
//!   arrays: exiting, or out of memory for one) the node directly.
//! * **Per node** ([`NodeStats`], under the node lock): the counts of arrays
//!   that were freed (thread exit, `destroy`, the orphans of a `fork`) are
//!   folded in when the array is freed, so they survive their thread; the
//!   direct node operations; and the `globalstat` counters, which only the
//!   slow paths touch.
//!
//! ## Reading
//!
//! [`CacheInner::cache_stats`] takes the thread-list lock (arrays are only
//! freed under it, so every listed array stays live while it is held), sums
//! the counters of every thread's array for the cache with relaxed atomic
//! loads while the owners go on running, then adds the node's totals under
//! the node lock (folds also happen under the thread-list lock, so no count
//! is seen twice or lost). Each counter read is monotonic and never torn; the
//! sum is not one instant's snapshot while other threads allocate — a free
//! may be seen without the allocation it follows, so derived "live" values
//! saturate at 0. In a quiescent program the counts are exact.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

use kmem_platform::stats::PoolStats;

use crate::cache::CacheInner;
use crate::cpu_cache::{ArrayCache, THREADS};
use crate::list::CACHES;

/// A counter written by one thread only (relaxed load + store, never a
/// read-modify-write) and read by any.
#[repr(transparent)]
pub(crate) struct CpuCounter(AtomicU64);

impl CpuCounter {
    pub(crate) const fn new() -> Self {
        CpuCounter(AtomicU64::new(0))
    }

    /// Adds one. Only the owner of the counter may call this.
    #[inline(always)]
    pub(crate) fn inc(&self) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// The value now.
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A hit counter that is also the fast path's busy mark (a sequence word):
/// `2 * hits + busy`. Written only by the owning thread (relaxed load +
/// store, no read-modify-write); read by the statistics and by a remote
/// thread of the freeze protocol, which waits until it is even (the owner is
/// outside its fast path; see `cpu_cache`).
///
/// One operation on the fast path: [`enter`](Self::enter) (odd), then either
/// [`leave`](Self::leave) (even again, one hit more) or
/// [`abort`](Self::abort) (even again, nothing counted).
#[repr(transparent)]
pub(crate) struct HitSeq(crate::sync::AtomicU64);

impl HitSeq {
    pub(crate) fn new() -> Self {
        HitSeq(crate::sync::AtomicU64::new(0))
    }

    #[inline(always)]
    fn add(&self, d: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(d),
            Ordering::Relaxed,
        );
    }

    /// The owner enters a fast-path operation (the word becomes odd). The
    /// caller orders this store before its load of the bounds.
    ///
    /// Each of `enter`, `leave` and `abort` reads the word back instead of
    /// keeping it in a register: on x86-64 each compiles to one `inc`/`dec`
    /// of memory, and the pair loop measured 60 instructions and 11.6
    /// cycles this way against 66 and 12.3 with the value kept in a register.
    #[inline(always)]
    pub(crate) fn enter(&self) {
        self.add(1);
    }

    /// The owner leaves having served the operation: even, one hit more.
    /// A release store: everything the operation wrote is visible to a
    /// remote thread that sees the word even.
    #[inline(always)]
    pub(crate) fn leave(&self) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Release,
        );
    }

    /// The owner leaves without serving the operation: even, not counted.
    #[inline(always)]
    pub(crate) fn abort(&self) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_sub(1),
            Ordering::Release,
        );
    }

    /// Counts a hit made outside the fast path (the owner's slow path).
    #[inline]
    pub(crate) fn count(&self) {
        self.add(2);
    }

    /// Hits so far.
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed) >> 1
    }

    /// Whether the owner is inside a fast-path operation now.
    #[inline]
    pub(crate) fn busy(&self) -> bool {
        self.0.load(Ordering::Acquire) & 1 != 0
    }
}

/// SLAB's per-cpu `cpustat`, kept in each thread's [`ArrayCache`].
#[repr(C)]
pub(crate) struct CpuStat {
    /// Allocations the thread's array served (it was not empty); the alloc
    /// fast path's busy mark.
    pub(crate) allochit: HitSeq,
    /// Frees the thread's array took (it was not full); the free fast
    /// path's busy mark.
    pub(crate) freehit: HitSeq,
    /// Allocations that refilled the array first.
    pub(crate) allocmiss: CpuCounter,
    /// Frees that flushed the full array first.
    pub(crate) freemiss: CpuCounter,
}

impl CpuStat {
    pub(crate) fn new() -> Self {
        CpuStat {
            allochit: HitSeq::new(),
            freehit: HitSeq::new(),
            allocmiss: CpuCounter::new(),
            freemiss: CpuCounter::new(),
        }
    }
}

/// A node's counters (under the node lock): the `cpustat` of freed arrays
/// and of direct node operations, and SLAB's `globalstat`.
#[derive(Default)]
pub(crate) struct NodeStats {
    /// `cpustat` totals of arrays since freed, plus direct node operations
    /// (counted as misses): allochit, allocmiss, freehit, freemiss.
    pub(crate) folded: [u64; 4],
    /// Objects taken off the slab lists (Linux `num_allocations`).
    pub(crate) listallocs: u64,
    /// The most objects active at once (Linux `high_mark`): off the slab
    /// lists, i.e. with users or in arrays. Sampled whenever it rises.
    pub(crate) high_mark: usize,
    /// Slabs added (Linux `grown`).
    pub(crate) grown: u64,
    /// Free slabs released by reap passes (Linux `reaped`).
    pub(crate) reaped: u64,
    /// Allocation calls that failed (Linux `errors`).
    pub(crate) errors: u64,
    /// The most free objects the node's slabs have held (`max_freeable`).
    pub(crate) max_freeable: usize,
}

impl NodeStats {
    /// Adds a freed array's counts (called before the array's memory goes).
    pub(crate) fn fold(&mut self, s: &CpuStat) {
        self.folded[0] += s.allochit.get();
        self.folded[1] += s.allocmiss.get();
        self.folded[2] += s.freehit.get();
        self.folded[3] += s.freemiss.get();
    }
}

impl crate::node::NodeLists {
    /// Raises the high mark to the objects active now, if that is higher
    /// (after objects left the slab lists). `num`: objects per slab.
    #[inline]
    pub(crate) fn note_active(&mut self, num: u32) {
        let active = self.total_slabs * num as usize - self.free_objects;
        if active > self.stats.high_mark {
            self.stats.high_mark = active;
        }
    }
}

/// A cache's statistics ([`KmemCache::stats`](crate::KmemCache::stats)):
/// the numbers of Linux's `/proc/slabinfo` statistics columns (a kernel
/// built with `CONFIG_DEBUG_SLAB`), summed over every thread.
///
/// `allochit + allocmiss` is every allocation the cache made and
/// `freehit + freemiss` every free it took, so their difference is the
/// objects in use.
///
/// ```
/// let c = kmem_slab::KmemCache::new("cpustat_doc", 64, 0).unwrap();
/// let a = c.alloc(kmem_page::Gfp::KERNEL).unwrap();   // empty array: a miss (refill)
/// let b = c.alloc(kmem_page::Gfp::KERNEL).unwrap();   // a hit
/// unsafe { c.free(a).unwrap(); c.free(b).unwrap() }   // two hits
/// let s = c.stats();
/// assert_eq!((s.allochit, s.allocmiss, s.freehit, s.freemiss), (1, 1, 2, 0));
/// assert_eq!((s.grown, s.listallocs), (1, 16));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Allocations a thread's array served by itself.
    pub allochit: u64,
    /// Allocations that went to the node first (refill, or no array).
    pub allocmiss: u64,
    /// Frees a thread's array took by itself.
    pub freehit: u64,
    /// Frees that went to the node first (flush of a full array, or no array).
    pub freemiss: u64,
    /// Objects taken off the slab lists into arrays or to users (`allocs`).
    pub listallocs: u64,
    /// The most objects active at once (`high_mark`; active as in
    /// slabinfo's `active_objs`: with users or in arrays).
    pub high_mark: usize,
    /// Slabs added (`grown`).
    pub grown: u64,
    /// Free slabs released by reap passes (`reaped`).
    pub reaped: u64,
    /// Allocation calls that failed (`errors`).
    pub errors: u64,
    /// The most free objects the slabs have held at once (`max_freeable`).
    pub max_freeable: usize,
}

impl CacheStats {
    /// Allocations made: `allochit + allocmiss`.
    pub fn allocs(&self) -> u64 {
        self.allochit + self.allocmiss
    }
    /// Frees taken: `freehit + freemiss`.
    pub fn frees(&self) -> u64 {
        self.freehit + self.freemiss
    }
}

impl CacheInner {
    /// Sums the cache's counters over every thread and the node (see the
    /// module docs for what a concurrent read sees).
    pub(crate) fn cache_stats(&self) -> CacheStats {
        let mut cpu = [0u64; 4];
        let threads = THREADS.lock();
        for t in threads.iter() {
            let ac = t.slots[self.id as usize].load(Ordering::Acquire);
            if ac.is_null() {
                continue;
            }
            // SAFETY: arrays are freed only under the thread-list lock, which
            // we hold, so a listed array is live; its counters are atomics.
            let s = unsafe { &(*ac).stat };
            // Frees before allocations: a free seen implies (on the owner's
            // thread) its allocation was counted earlier.
            cpu[3] += s.freemiss.get();
            cpu[2] += s.freehit.get();
            cpu[1] += s.allocmiss.get();
            cpu[0] += s.allochit.get();
        }
        let n = self.node.lists.lock();
        drop(threads);
        let ns = &n.stats;
        CacheStats {
            allochit: cpu[0] + ns.folded[0],
            allocmiss: cpu[1] + ns.folded[1],
            freehit: cpu[2] + ns.folded[2],
            freemiss: cpu[3] + ns.folded[3],
            listallocs: ns.listallocs,
            high_mark: ns.high_mark,
            grown: ns.grown,
            reaped: ns.reaped,
            errors: ns.errors,
            max_freeable: ns.max_freeable,
        }
    }

    /// The seed's `mp_pool_stats` for this cache (bytes are objects ×
    /// `object_size`, the size asked for; the peak is the high mark of
    /// active objects, so an upper bound of the objects users held at once:
    /// it also counts objects waiting in arrays).
    pub(crate) fn pool_stats(&self) -> PoolStats {
        let s = self.cache_stats();
        let size = self.object_size as usize;
        let allocs = s.allocs() as usize;
        let live = allocs.saturating_sub(s.frees() as usize);
        PoolStats {
            total_allocated: allocs.wrapping_mul(size),
            current_allocated: live * size,
            peak_allocated: s.high_mark.max(live) * size,
            allocation_count: allocs,
            free_count: s.frees() as usize,
            failed_count: s.errors as usize,
        }
    }

    /// Counts a failed allocation call.
    #[cold]
    pub(crate) fn count_error(&self) {
        self.node.lists.lock().stats.errors += 1;
    }
}

/// Folds a freed array's counters into its cache's node (called by
/// `free_array`, with no node lock held).
///
/// # Safety
///
/// `ac` is a live array cache of a live cache, about to be freed.
pub(crate) unsafe fn fold_array(ac: *mut ArrayCache) {
    // SAFETY: per the contract.
    unsafe {
        let c = &*(*ac).cache;
        c.node.lists.lock().stats.fold(&(*ac).stat);
    }
}

/// The statistics part of a slabinfo row, as Linux prints it with
/// `CONFIG_DEBUG_SLAB` (`slabinfo_show_stats`): ` : globalstat <listallocs>
/// <maxobjs> <grown> <reaped> <error> <maxfreeable> <nodeallocs> <remotefrees>
/// <alienoverflow> : cpustat <allochit> <allocmiss> <freehit> <freemiss>`.
/// kmem runs one node per cache, so the off-node counts are 0, as on a
/// one-node Linux machine.
///
/// ```
/// let mut s = String::new();
/// kmem_slab::write_slabinfo_stats_columns(&mut s, &kmem_slab::CacheStats::default()).unwrap();
/// assert_eq!(s, " : globalstat       0      0     0    0    0    0    0    0    0 : cpustat      0      0      0      0");
/// ```
pub fn write_slabinfo_stats_columns(w: &mut dyn Write, s: &CacheStats) -> fmt::Result {
    write!(
        w,
        " : globalstat {:>7} {:>6} {:>5} {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} : cpustat {:>6} {:>6} {:>6} {:>6}",
        s.listallocs,
        s.high_mark,
        s.grown,
        s.reaped,
        s.errors,
        s.max_freeable,
        0,
        0,
        0,
        s.allochit,
        s.allocmiss,
        s.freehit,
        s.freemiss
    )
}

/// The second header line of slabinfo with statistics columns.
pub const SLABINFO_STATS_HEADER_2: &str = "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail> : globalstat <listallocs> <maxobjs> <grown> <reaped> <error> <maxfreeable> <nodeallocs> <remotefrees> <alienoverflow> : cpustat <allochit> <allocmiss> <freehit> <freemiss>";

/// Writes `/proc/slabinfo` 2.1 as a Linux kernel with slab statistics
/// prints it: the 2.1 rows with the `globalstat` and `cpustat` columns
/// appended. The default [`write_slabinfo`](crate::write_slabinfo) stays
/// without them.
///
/// ```
/// let c = kmem_slab::KmemCache::new("slabstats_doc", 32, 0).unwrap();
/// let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
/// let mut s = String::new();
/// kmem_slab::write_slabinfo_stats(&mut s).unwrap();
/// let row = s.lines().find(|l| l.starts_with("slabstats_doc ")).unwrap();
/// assert!(row.ends_with(": cpustat      0      1      0      0"));
/// unsafe { c.free(p).unwrap() };
/// ```
pub fn write_slabinfo_stats(w: &mut dyn Write) -> fmt::Result {
    writeln!(w, "{}", crate::SLABINFO_HEADER_1)?;
    writeln!(w, "{SLABINFO_STATS_HEADER_2}")?;
    let list = CACHES.lock();
    for c in list.iter() {
        write_stats_row(w, c)?;
    }
    Ok(())
}

fn write_stats_row(w: &mut dyn Write, c: &CacheInner) -> fmt::Result {
    let mut row = kmem_platform::diag::StackBuf::<256>::new();
    let _ = crate::write_slabinfo_row(&mut row, c.name(), &crate::info::slabinfo_of(c));
    let line = core::str::from_utf8(row.as_bytes()).unwrap_or("");
    w.write_str(line.trim_end_matches('\n'))?;
    write_slabinfo_stats_columns(w, &c.cache_stats())?;
    w.write_char('\n')
}

/// [`write_slabinfo_stats`] to a file descriptor, without allocating.
/// Returns `Err(errno)` if writing failed.
///
/// ```
/// kmem_slab::slabinfo_stats_write_fd(1).unwrap();
/// ```
pub fn slabinfo_stats_write_fd(fd: i32) -> Result<(), i32> {
    use kmem_platform::diag::{StackBuf, write_fd};
    let mut b = StackBuf::<768>::new();
    let _ = writeln!(b, "{}", crate::SLABINFO_HEADER_1);
    let _ = writeln!(b, "{SLABINFO_STATS_HEADER_2}");
    write_fd(fd, b.as_bytes())?;
    let list = CACHES.lock();
    for c in list.iter() {
        b.clear();
        let _ = write_stats_row(&mut b, c);
        write_fd(fd, b.as_bytes())?;
    }
    Ok(())
}

impl crate::KmemCache {
    /// The cache's statistics, summed over every thread (SLAB's `cpustat`
    /// and `globalstat`; see [`CacheStats`]). Cheap enough for a monitor to
    /// call often: it locks the thread list and the node briefly and never
    /// stops another thread.
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("stats_doc", 64, 0).unwrap();
    /// let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
    /// assert_eq!(c.stats().allocs(), 1);
    /// unsafe { c.free(p).unwrap() };
    /// assert_eq!(c.stats().frees(), 1);
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.inner().cache_stats()
    }

    /// The seed's `mp_pool_stats` for the cache: bytes are objects times the
    /// object size asked for ([`object_size`](Self::object_size)); counts
    /// are [`stats`](Self::stats)' sums; `peak_allocated` is the high mark
    /// of active objects, an upper bound of what users held at once (it
    /// also counts objects resting in per-thread arrays); `failed_count`
    /// is allocation calls that failed.
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("pool_stats_doc", 100, 0).unwrap();
    /// let a = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
    /// let b = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
    /// unsafe { c.free(a).unwrap() };
    /// let s = c.pool_stats();
    /// assert_eq!((s.allocation_count, s.free_count, s.failed_count), (2, 1, 0));
    /// assert_eq!((s.total_allocated, s.current_allocated), (200, 100));
    /// assert!(s.peak_allocated >= 200);
    /// unsafe { c.free(b).unwrap() };
    /// ```
    pub fn pool_stats(&self) -> PoolStats {
        self.inner().pool_stats()
    }
}
