//! `Mempool`: the pool itself — creation (`mempool_create`), teardown
//! (`mempool_destroy`), introspection. The allocation, free and resize paths
//! are in `alloc.rs`, `free.rs` and `resize.rs`.

use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize as CoreAtomicUsize, Ordering as CoreOrdering};
use core::time::Duration;

use kmem_page::Gfp;

use crate::pool::{Reserve, SlotArray};
use crate::stats::{Counters, MempoolStats};
use crate::sync::{AtomicUsize, Lock, LockGuard, Ordering};
use crate::wait::WaitQueue;
use crate::{Backend, MAX_MIN_NR, MempoolError};

/// How long a waiting allocation sleeps before it retries the backend on its
/// own, even if no element was freed: the kernel's `io_schedule_timeout(5*HZ)`.
/// It bounds the wait when the *backend* recovers (a free to the backend wakes
/// no one) and is a safety net, not part of the wake-up protocol.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// A value alone on its cache line, so that the counter every allocation and
/// free updates does not bounce the line holding the read-mostly fields.
#[repr(align(64))]
pub(crate) struct Padded<T>(pub(crate) T);

/// A memory pool: a reserve of `min_nr` preallocated elements in front of a
/// [`Backend`], so that allocations keep succeeding when the backend cannot
/// deliver (the kernel's `mempool_t`).
///
/// An allocation asks the backend first — the reserve is for emergencies —
/// and falls back to the reserve only when the backend fails. A free refills
/// the reserve if it is below `min_nr` (waking anyone waiting for an
/// element) and otherwise returns the element to the backend. A caller that
/// may wait ([`alloc`](Mempool::alloc), `GFP_KERNEL`) therefore never fails: at
/// worst it waits until another thread frees an element.
///
/// ```
/// use kmem_mempool::{Mempool, PageBackend};
/// // Keep 16 pages in reserve for the I/O path.
/// let pool = Mempool::new(16, PageBackend::global(0)?)?;
/// let mut page = pool.alloc();               // from the page layer while it can
/// page.as_bytes_mut()[..5].copy_from_slice(b"hello");
/// drop(page);                                 // reserve is full: back to the page layer
/// assert_eq!(pool.stats().curr_nr, 16);
/// # drop(pool); kmem_page::global().trim(0); // hand the cached region back (Miri checks for leaks)
/// # Ok::<(), kmem_mempool::MempoolError>(())
/// ```
pub struct Mempool<B: Backend> {
    /// Mirror of `reserve.curr_nr`, read without the lock by the free path's
    /// pre-check. Written only under the lock, right after the reserve changes.
    pub(crate) curr_nr: AtomicUsize,
    /// Mirror of `reserve.min_nr`, read without the lock by the free path.
    /// Written only under the lock.
    pub(crate) min_nr: AtomicUsize,
    /// Where elements come from. Never called with `reserve` locked.
    pub(crate) backend: B,
    /// The reserve (`pool->lock` + `pool->elements`).
    pub(crate) reserve: Lock<Reserve>,
    /// Allocations waiting for a free (`pool->wait`).
    pub(crate) wait: WaitQueue,
    /// The longest a waiter sleeps before retrying on its own, in ns.
    pub(crate) retry_ns: AtomicU64,
    /// Slow-path counters.
    pub(crate) stats: Counters,
    /// Elements handed out and not yet freed, with the counts that change
    /// with it, alone on one cache line.
    pub(crate) outstanding: Padded<Outstanding>,
}

/// The counters every allocation and free updates (on one cache line).
pub(crate) struct Outstanding {
    /// Elements handed out and not yet freed. Never below zero: a free with
    /// nothing outstanding is refused before it changes anything.
    pub(crate) n: CoreAtomicUsize,
    /// Elements handed out since creation.
    pub(crate) allocs: CoreAtomicUsize,
    /// The most elements outstanding at once (raised only when `n` passes
    /// it: a load of this line per allocation, a read-modify-write only at a
    /// new peak).
    pub(crate) peak: CoreAtomicUsize,
}

// SAFETY: the reserve's raw element pointers are owned by the pool and only
// touched under its lock; moving the pool moves them, which is sound when the
// elements and the backend may move between threads.
unsafe impl<B: Backend + Send> Send for Mempool<B> where B::Elem: Send {}
// SAFETY: all shared state is behind the lock or atomic; elements pass
// between threads through the reserve, hence `Elem: Send`; the backend is
// `Sync` by its trait.
unsafe impl<B: Backend> Sync for Mempool<B> where B::Elem: Send {}

impl<B: Backend> Mempool<B> {
    /// `mempool_create`: a pool over `backend` with `min_nr` elements
    /// allocated up front (with `GFP_KERNEL`). If the backend cannot deliver
    /// them all, what it did deliver is freed again and the call fails — the
    /// pool either exists with a full reserve or not at all.
    ///
    /// `min_nr` may be 0 (the pool then only smooths hand-offs between
    /// threads, as in the kernel); it may not exceed [`MAX_MIN_NR`].
    ///
    /// ```
    /// use kmem_mempool::{BoxBackend, FaultyBackend, Mempool, MempoolError};
    /// let backend = FaultyBackend::new(BoxBackend::new(|| [0u8; 32]));
    /// backend.fail_next(1);
    /// // The backend fails on the first element: no pool, nothing leaked.
    /// assert!(matches!(Mempool::new(4, backend), Err(MempoolError::Prefill { got: 0, min_nr: 4 })));
    /// # Ok::<(), MempoolError>(())
    /// ```
    pub fn new(min_nr: usize, backend: B) -> Result<Self, MempoolError> {
        if min_nr > MAX_MIN_NR {
            return Err(MempoolError::TooLarge { min_nr });
        }
        let slots = min_nr.max(1);
        let array = SlotArray::new(slots).ok_or(MempoolError::NoReserveArray { slots })?;
        let mut reserve = Reserve::new(array, min_nr);
        while reserve.curr_nr < min_nr {
            match backend.alloc(Gfp::KERNEL) {
                // SAFETY: `curr_nr < min_nr <= capacity`; the element is fresh
                // from the backend and now owned by the reserve.
                Some(e) => unsafe { reserve.add(e.cast()) },
                None => {
                    let got = reserve.curr_nr;
                    while let Some(e) = reserve.remove() {
                        // SAFETY: every element in the reserve came from this
                        // backend's `alloc` and is not used elsewhere.
                        unsafe { backend.free(e.cast()) };
                    }
                    return Err(MempoolError::Prefill { got, min_nr });
                }
            }
        }
        reserve.low_water = min_nr;
        Ok(Mempool {
            curr_nr: AtomicUsize::new(min_nr),
            min_nr: AtomicUsize::new(min_nr),
            backend,
            reserve: Lock::new(reserve),
            wait: WaitQueue::new(),
            retry_ns: AtomicU64::new(RETRY_INTERVAL.as_nanos() as u64),
            stats: Counters::default(),
            outstanding: Padded(Outstanding {
                n: CoreAtomicUsize::new(0),
                allocs: CoreAtomicUsize::new(0),
                peak: CoreAtomicUsize::new(0),
            }),
        })
    }

    /// `mempool_destroy`: frees the reserve to the backend and the pool — but
    /// only when no element is outstanding. Otherwise the pool is handed back
    /// untouched together with the count, so that nothing is lost (elements
    /// still in use could not be freed to it any more).
    ///
    /// ```
    /// use kmem_mempool::{BoxBackend, Mempool, MempoolError};
    /// let pool = Mempool::new(2, BoxBackend::new(|| 1u16))?;
    /// let e = pool.alloc().into_raw();
    /// let (pool, err) = pool.destroy().unwrap_err();
    /// assert_eq!(err, MempoolError::Outstanding { count: 1 });
    /// // SAFETY: `e` came from this pool and is not used again.
    /// unsafe { pool.free_raw(e)? };
    /// assert!(pool.destroy().is_ok());
    /// # Ok::<(), MempoolError>(())
    /// ```
    #[allow(clippy::result_large_err)] // the error gives the pool itself back
    pub fn destroy(self) -> Result<(), (Self, MempoolError)> {
        let count = self.outstanding();
        if count != 0 {
            return Err((self, MempoolError::Outstanding { count }));
        }
        drop(self);
        Ok(())
    }

    /// Returns every element in the reserve to the backend (pool teardown).
    fn drain(&self) {
        loop {
            let e = {
                let mut r = self.reserve.lock();
                let e = r.remove();
                self.curr_nr.store(r.curr_nr, Ordering::Relaxed);
                e
            };
            match e {
                // SAFETY: reserve elements came from this backend and are owned
                // by the pool, which no longer holds this one.
                Some(e) => unsafe { self.backend.free(e.cast()) },
                None => break,
            }
        }
    }

    /// The backend.
    ///
    /// ```
    /// use kmem_mempool::{Mempool, PageBackend};
    /// let pool = Mempool::new(1, PageBackend::global(3)?)?;
    /// assert_eq!(pool.backend().order(), 3);
    /// # drop(pool); kmem_page::global().trim(0); // hand the cached region back (Miri checks for leaks)
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The reserve's target size.
    ///
    /// ```
    /// # use kmem_mempool::{BoxBackend, Mempool};
    /// let pool = Mempool::new(5, BoxBackend::new(|| 0u8))?;
    /// assert_eq!(pool.min_nr(), 5);
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn min_nr(&self) -> usize {
        self.min_nr.load(Ordering::Relaxed)
    }

    /// Elements in the reserve now (a snapshot).
    ///
    /// ```
    /// # use kmem_mempool::{BoxBackend, Mempool};
    /// let pool = Mempool::new(5, BoxBackend::new(|| 0u8))?;
    /// assert_eq!(pool.curr_nr(), 5);
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn curr_nr(&self) -> usize {
        self.curr_nr.load(Ordering::Relaxed)
    }

    /// Elements handed out and not yet freed.
    ///
    /// ```
    /// # use kmem_mempool::{BoxBackend, Mempool};
    /// let pool = Mempool::new(1, BoxBackend::new(|| 0u8))?;
    /// let e = pool.alloc();
    /// assert_eq!(pool.outstanding(), 1);
    /// drop(e);
    /// assert_eq!(pool.outstanding(), 0);
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn outstanding(&self) -> usize {
        self.outstanding.0.n.load(CoreOrdering::Relaxed)
    }

    /// Sets how long a waiting allocation sleeps before retrying the backend
    /// on its own (default [`RETRY_INTERVAL`], the kernel's 5 s; at least 1 µs).
    ///
    /// ```
    /// # use kmem_mempool::{BoxBackend, Mempool};
    /// # use core::time::Duration;
    /// let pool = Mempool::new(1, BoxBackend::new(|| 0u8))?;
    /// pool.set_retry_interval(Duration::from_millis(100));
    /// assert_eq!(pool.retry_interval(), Duration::from_millis(100));
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn set_retry_interval(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1000);
        self.retry_ns.store(ns, CoreOrdering::Relaxed);
    }

    /// The retry interval.
    ///
    /// ```
    /// # use kmem_mempool::{BoxBackend, Mempool, RETRY_INTERVAL};
    /// let pool = Mempool::new(1, BoxBackend::new(|| 0u8))?;
    /// assert_eq!(pool.retry_interval(), RETRY_INTERVAL);
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn retry_interval(&self) -> Duration {
        Duration::from_nanos(self.retry_ns.load(CoreOrdering::Relaxed))
    }

    /// A snapshot of the pool's state and counters.
    ///
    /// ```
    /// # use kmem_mempool::{BoxBackend, Mempool};
    /// let pool = Mempool::new(3, BoxBackend::new(|| 0u8))?;
    /// let s = pool.stats();
    /// assert_eq!((s.min_nr, s.curr_nr, s.low_water, s.outstanding), (3, 3, 3, 0));
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn stats(&self) -> MempoolStats {
        let mut s = MempoolStats::default();
        {
            let r = self.reserve.lock();
            s.min_nr = r.min_nr;
            s.curr_nr = r.curr_nr;
            s.low_water = r.low_water;
            s.backend_failures = r.backend_failures;
            s.reserve_allocs = r.reserve_allocs;
            s.reserve_refills = r.reserve_refills;
        }
        s.outstanding = self.outstanding();
        s.waiters = self.wait.waiters();
        self.stats.fill(&mut s);
        s
    }

    /// Starts the low-water mark afresh at the current reserve level.
    ///
    /// ```
    /// # use kmem_mempool::{BoxBackend, FaultyBackend, Mempool};
    /// let pool = Mempool::new(2, FaultyBackend::new(BoxBackend::new(|| 0u8)))?;
    /// pool.backend().set_failing(true);
    /// drop(pool.alloc());
    /// assert_eq!(pool.stats().low_water, 1);
    /// pool.reset_low_water();
    /// assert_eq!(pool.stats().low_water, 2);
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn reset_low_water(&self) {
        let mut r = self.reserve.lock();
        r.low_water = r.curr_nr;
    }

    /// Writes `mempool <addr> (<backend>)` for reports.
    pub(crate) fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        write!(out, "mempool {:p} (", self)?;
        self.backend.describe(out)?;
        out.write_str(")")
    }

    /// Publishes the reserve level for the free path's unlocked pre-check.
    /// Called with the lock held, after every change.
    #[inline]
    pub(crate) fn publish(&self, r: &LockGuard<'_, Reserve>) {
        self.curr_nr.store(r.curr_nr, Ordering::Relaxed);
        self.min_nr.store(r.min_nr, Ordering::Relaxed);
    }

    /// One more element handed out.
    #[inline]
    pub(crate) fn handed_out(&self) {
        let o = &self.outstanding.0;
        let n = o.n.fetch_add(1, CoreOrdering::Relaxed) + 1;
        o.allocs.fetch_add(1, CoreOrdering::Relaxed);
        if n > o.peak.load(CoreOrdering::Relaxed) {
            o.peak.fetch_max(n, CoreOrdering::Relaxed);
        }
    }

    /// `elem` as the reserve stores it.
    #[inline]
    pub(crate) fn erase(elem: NonNull<B::Elem>) -> NonNull<u8> {
        elem.cast()
    }
}

impl<B: Backend> Drop for Mempool<B> {
    /// Frees the reserve to the backend. Elements still outstanding cannot
    /// come back any more: that is reported (use [`Mempool::destroy`] to be
    /// refused instead), and they stay valid backend elements.
    fn drop(&mut self) {
        let out = self.outstanding();
        if out != 0 {
            let mut b = kmem_platform::diag::StackBuf::<256>::new();
            let _ = self.describe(&mut b);
            kmem_platform::kmem_report!(
                "mempool_destroy: {}: {} element(s) still allocated; free them to the backend directly",
                b.as_str(),
                out
            );
        }
        self.drain();
    }
}

impl<B: Backend> fmt::Debug for Mempool<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f)?;
        write!(f, " {}", self.stats())
    }
}
