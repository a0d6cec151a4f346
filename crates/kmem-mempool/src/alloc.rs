//! The allocation path, in the kernel's order (`mempool_alloc`):
//!
//! 1. the backend, without waiting: the caller's flags with
//!    `__GFP_DIRECT_RECLAIM | __GFP_IO` masked off and `__GFP_NOMEMALLOC |
//!    __GFP_NORETRY | __GFP_NOWARN` added (the reserve is the fallback, so the
//!    backend need not try hard);
//! 2. an element from the reserve;
//! 3. if the first try was weakened, the backend once more with the caller's
//!    full flags (then the reserve again);
//! 4. if the caller may not wait (`GFP_ATOMIC`, `GFP_NOWAIT`): fail;
//! 5. otherwise wait until `mempool_free` puts an element back (or the retry
//!    interval passes) and start over from the backend. A waiting caller is
//!    never failed.
//!
//! The hot path is step 1 succeeding: one backend call and one counter.

use core::ptr::NonNull;
use core::time::Duration;

use kmem_page::Gfp;

use crate::stats::Counters;
use crate::{Backend, Element, Mempool, MempoolError};

/// `__GFP_NOMEMALLOC` (Linux's value): do not dip into emergency reserves. The
/// pool adds it to every backend call: its own reserve is the emergency one.
pub const GFP_NOMEMALLOC: Gfp = Gfp(0x80000);

impl<B: Backend> Mempool<B> {
    /// Allocates an element, waiting as long as it takes (`GFP_KERNEL`): it
    /// never fails. With the backend healthy this is one backend allocation;
    /// when the backend fails it takes from the reserve; when the reserve is
    /// empty too it sleeps until another thread frees an element.
    ///
    /// ```
    /// use kmem_mempool::{BoxBackend, Mempool};
    /// let pool = Mempool::new(4, BoxBackend::new(|| [0u64; 8]))?;
    /// let mut e = pool.alloc();
    /// e[3] = 42;
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn alloc(&self) -> Element<'_, B> {
        match self.alloc_inner(Gfp::KERNEL, Gfp::KERNEL, None) {
            // SAFETY: a fresh element of this pool, owned by no one else.
            Ok(p) => unsafe { Element::from_raw(self, p) },
            Err(e) => {
                unreachable!("a GFP_KERNEL mempool allocation without deadline cannot fail: {e}")
            }
        }
    }

    /// Allocates an element without ever waiting (`GFP_NOWAIT`): the backend,
    /// then the reserve; `None` if both are empty.
    ///
    /// ```
    /// use kmem_mempool::{BoxBackend, FaultyBackend, Mempool};
    /// let pool = Mempool::new(1, FaultyBackend::new(BoxBackend::new(|| 0u8)))?;
    /// pool.backend().set_failing(true);
    /// let a = pool.try_alloc();
    /// assert!(a.is_some());
    /// assert!(pool.try_alloc().is_none());
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn try_alloc(&self) -> Option<Element<'_, B>> {
        let p = self.alloc_inner(Gfp::NOWAIT, Gfp::NOWAIT, None).ok()?;
        // SAFETY: a fresh element of this pool, owned by no one else.
        Some(unsafe { Element::from_raw(self, p) })
    }

    /// Allocates an element, waiting at most `timeout` for one to be freed.
    ///
    /// ```
    /// use core::time::Duration;
    /// use kmem_mempool::{BoxBackend, FaultyBackend, Mempool};
    /// let pool = Mempool::new(1, FaultyBackend::new(BoxBackend::new(|| 0u8)))?;
    /// pool.backend().set_failing(true);
    /// let held = pool.alloc();
    /// assert!(pool.alloc_timeout(Duration::from_millis(10)).is_none());
    /// drop(held);
    /// assert!(pool.alloc_timeout(Duration::from_millis(10)).is_some());
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn alloc_timeout(&self, timeout: Duration) -> Option<Element<'_, B>> {
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let deadline = kmem_platform::time::now_ns().saturating_add(ns);
        let p = self
            .alloc_inner(Gfp::KERNEL, Gfp::KERNEL, Some(deadline))
            .ok()?;
        // SAFETY: a fresh element of this pool, owned by no one else.
        Some(unsafe { Element::from_raw(self, p) })
    }

    /// Allocates an element as `gfp` allows: waits if it has
    /// `__GFP_DIRECT_RECLAIM` (`GFP_KERNEL`), fails with
    /// [`Exhausted`](MempoolError::Exhausted) otherwise;
    /// `__GFP_ZERO` is refused.
    ///
    /// ```
    /// use kmem_mempool::{BoxBackend, Gfp, Mempool};
    /// let pool = Mempool::new(1, BoxBackend::new(|| 0u8))?;
    /// let e = pool.alloc_gfp(Gfp::ATOMIC)?;
    /// # drop(e);
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn alloc_gfp(&self, gfp: Gfp) -> Result<Element<'_, B>, MempoolError> {
        let p = self.alloc_raw(gfp)?;
        // SAFETY: a fresh element of this pool, owned by no one else.
        Ok(unsafe { Element::from_raw(self, p) })
    }

    /// `mempool_alloc`: as [`alloc_gfp`](Self::alloc_gfp), returning the bare
    /// element; give it back with [`free_raw`](Self::free_raw).
    ///
    /// ```
    /// use kmem_mempool::{BoxBackend, Gfp, Mempool};
    /// let pool = Mempool::new(1, BoxBackend::new(|| 5u32))?;
    /// let p = pool.alloc_raw(Gfp::KERNEL)?;
    /// // SAFETY: `p` is a live element of `pool`; it goes back once.
    /// unsafe {
    ///     assert_eq!(*p.as_ptr(), 5);
    ///     pool.free_raw(p)?;
    /// }
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    #[inline]
    pub fn alloc_raw(&self, gfp: Gfp) -> Result<NonNull<B::Elem>, MempoolError> {
        self.alloc_inner(gfp, gfp, None)
    }

    #[inline]
    fn alloc_inner(
        &self,
        gfp: Gfp,
        caller: Gfp,
        deadline: Option<u64>,
    ) -> Result<NonNull<B::Elem>, MempoolError> {
        if gfp.zero() {
            return Err(self.refuse_zero());
        }
        let gfp_mask = gfp | GFP_NOMEMALLOC | Gfp::NORETRY | Gfp::NOWARN;
        let gfp_temp = gfp_mask.without(Gfp::DIRECT_RECLAIM | Gfp::IO);
        if let Some(e) = self.backend.alloc(gfp_temp) {
            self.handed_out();
            return Ok(e);
        }
        self.alloc_slow(gfp_mask, gfp_temp, caller, deadline)
    }

    /// Steps 2–5: the backend failed.
    #[cold]
    #[inline(never)]
    fn alloc_slow(
        &self,
        gfp_mask: Gfp,
        mut gfp_temp: Gfp,
        caller: Gfp,
        deadline: Option<u64>,
    ) -> Result<NonNull<B::Elem>, MempoolError> {
        loop {
            let mut r = self.reserve.lock();
            r.backend_failures += 1;
            if let Some(e) = r.take() {
                r.reserve_allocs += 1;
                self.publish(&r);
                drop(r);
                self.handed_out();
                return Ok(e.cast());
            }
            if gfp_temp != gfp_mask {
                // The weakened first try failed and the reserve is empty: try
                // the backend again with everything the caller allows.
                drop(r);
                gfp_temp = gfp_mask;
            } else if !gfp_mask.may_wait() {
                drop(r);
                Counters::inc(&self.stats.exhausted);
                return Err(MempoolError::Exhausted { gfp: caller });
            } else {
                let retry = self.retry_ns.load(core::sync::atomic::Ordering::Relaxed);
                let timeout = match deadline {
                    None => retry,
                    Some(d) => {
                        let now = kmem_platform::time::now_ns();
                        if now >= d {
                            drop(r);
                            Counters::inc(&self.stats.timeouts);
                            return Err(MempoolError::TimedOut);
                        }
                        (d - now).min(retry)
                    }
                };
                // prepare_to_wait under the lock: see wait.rs for why this
                // cannot miss the free that refills the reserve.
                let ticket = self.wait.prepare();
                drop(r);
                Counters::inc(&self.stats.waits);
                let start = kmem_platform::time::now_ns();
                self.wait.sleep(ticket, timeout);
                self.wait.finish();
                if kmem_platform::time::now_ns().saturating_sub(start) >= timeout {
                    Counters::inc(&self.stats.expired);
                }
            }
            if let Some(e) = self.backend.alloc(gfp_temp) {
                self.handed_out();
                return Ok(e);
            }
        }
    }

    #[cold]
    fn refuse_zero(&self) -> MempoolError {
        Counters::inc(&self.stats.refused);
        Counters::inc(&self.stats.refused_allocs);
        MempoolError::ZeroUnsupported
    }
}
