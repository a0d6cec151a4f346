//! What a pool has been through: reserve level, low-water mark, waits,
//! backend failures. Counters live in the pool ([`Counters`], relaxed
//! atomics touched only on slow paths); [`MempoolStats`] is a snapshot.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// The slow-path counters of one pool that are not kept under the pool lock
/// (those that are live in the reserve). The hot paths (an allocation the
/// backend serves, a free the reserve does not need) touch none of them.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) waits: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) wakeups: AtomicU64,
    pub(crate) exhausted: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) refused: AtomicU64,
    /// Allocation calls refused as bad input (a subset of `refused`).
    pub(crate) refused_allocs: AtomicU64,
    pub(crate) resizes: AtomicU64,
}

impl Counters {
    #[inline]
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of a pool's state and counters ([`Mempool::stats`](crate::Mempool::stats)).
///
/// ```
/// use kmem_mempool::{BoxBackend, FaultyBackend, Mempool};
/// let pool = Mempool::new(3, FaultyBackend::new(BoxBackend::new(|| 0u8)))?;
/// pool.backend().set_failing(true);
/// let e = pool.try_alloc().unwrap();
/// let s = pool.stats();
/// assert_eq!((s.min_nr, s.curr_nr, s.low_water, s.outstanding), (3, 2, 2, 1));
/// assert_eq!((s.backend_failures, s.reserve_allocs), (1, 1));
/// drop(e);
/// assert_eq!(pool.stats().reserve_refills, 1);
/// println!("{}", pool.stats());
/// # Ok::<(), kmem_mempool::MempoolError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MempoolStats {
    /// The reserve's target size.
    pub min_nr: usize,
    /// Elements in the reserve now.
    pub curr_nr: usize,
    /// The lowest the reserve has been since creation (or
    /// [`reset_low_water`](crate::Mempool::reset_low_water)): how close the
    /// pool came to running dry. 0 means callers had to wait or fail.
    pub low_water: usize,
    /// Elements handed out and not yet freed.
    pub outstanding: usize,
    /// Threads waiting for an element right now.
    pub waiters: usize,
    /// Backend allocations that returned nothing.
    pub backend_failures: u64,
    /// Allocations served from the reserve.
    pub reserve_allocs: u64,
    /// Frees that refilled the reserve.
    pub reserve_refills: u64,
    /// Times a caller slept waiting for an element.
    pub waits: u64,
    /// Sleeps that ran out their retry interval (or deadline) rather than
    /// being woken: retries the kernel makes every 5 s on its own.
    pub expired: u64,
    /// Wake-ups sent to waiting callers.
    pub wakeups: u64,
    /// Allocations that could not wait and found nothing (NULL in C).
    pub exhausted: u64,
    /// `alloc_timeout` calls that ran out of time.
    pub timeouts: u64,
    /// Calls refused as bad input (`__GFP_ZERO`, more frees than allocations).
    pub refused: u64,
    /// Successful resizes.
    pub resizes: u64,
}

impl Counters {
    pub(crate) fn fill(&self, s: &mut MempoolStats) {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        s.waits = g(&self.waits);
        s.expired = g(&self.expired);
        s.wakeups = g(&self.wakeups);
        s.exhausted = g(&self.exhausted);
        s.timeouts = g(&self.timeouts);
        s.refused = g(&self.refused);
        s.resizes = g(&self.resizes);
    }
}

impl fmt::Display for MempoolStats {
    /// One line: `reserve 2/3 (low 0) out 5 waiters 0 | backend_failures 9 reserve_allocs 4 ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reserve {}/{} (low {}) out {} waiters {} | backend_failures {} reserve_allocs {} \
             reserve_refills {} waits {} expired {} wakeups {} exhausted {} timeouts {} refused {} resizes {}",
            self.curr_nr,
            self.min_nr,
            self.low_water,
            self.outstanding,
            self.waiters,
            self.backend_failures,
            self.reserve_allocs,
            self.reserve_refills,
            self.waits,
            self.expired,
            self.wakeups,
            self.exhausted,
            self.timeouts,
            self.refused,
            self.resizes
        )
    }
}

impl<B: crate::Backend> crate::Mempool<B> {
    /// The seed's `mp_pool_stats` for the pool: counts are elements handed
    /// out (`allocation_count`, from the backend or the reserve) and given
    /// back (`free_count`); bytes are elements times
    /// [`Backend::elem_bytes`](crate::Backend::elem_bytes) (0 for the opaque
    /// elements of C functions); `peak_allocated` is exact (the most
    /// elements outstanding at once); `failed_count` is allocation calls
    /// that returned nothing (the reserve was empty and the caller could not
    /// wait, a deadline passed, or `__GFP_ZERO` was refused).
    ///
    /// ```
    /// use kmem_mempool::{BoxBackend, Mempool};
    /// let pool = Mempool::new(2, BoxBackend::new(|| [0u64; 4]))?;
    /// let a = pool.alloc();
    /// let b = pool.alloc();
    /// drop(a);
    /// let s = pool.pool_stats();
    /// assert_eq!((s.allocation_count, s.free_count, s.failed_count), (2, 1, 0));
    /// assert_eq!((s.total_allocated, s.current_allocated, s.peak_allocated), (64, 32, 64));
    /// # drop(b);
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn pool_stats(&self) -> kmem_platform::stats::PoolStats {
        use core::sync::atomic::Ordering::Relaxed;
        let o = &self.outstanding.0;
        let elem = self.backend.elem_bytes();
        // `allocs` first: every free counted in `n` follows its allocation.
        let allocs = o.allocs.load(Relaxed);
        let n = o.n.load(Relaxed).min(allocs);
        let peak = o.peak.load(Relaxed).max(n);
        let g = |c: &AtomicU64| c.load(Relaxed) as usize;
        kmem_platform::stats::PoolStats {
            total_allocated: allocs.wrapping_mul(elem),
            current_allocated: n * elem,
            peak_allocated: peak * elem,
            allocation_count: allocs,
            free_count: allocs - n,
            failed_count: g(&self.stats.exhausted)
                + g(&self.stats.timeouts)
                + g(&self.stats.refused_allocs),
        }
    }
}
