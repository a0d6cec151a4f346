//! The free path (`mempool_free`): refill the reserve if it is below `min_nr`
//! and wake the waiters, otherwise give the element back to the backend.
//!
//! The hot path is the reserve being full: an unlocked look at the reserve
//! level (the kernel's `READ_ONCE(pool->curr_nr) < pool->min_nr`) and one
//! backend call. The look may be stale, but never staler than the moment the
//! element itself was allocated: whoever hands an element to the freeing
//! thread synchronises with it, and the reserve level is published (under the
//! lock) before a reserve element is handed out. So a reserve element's free
//! always sees the reserve below `min_nr` unless others refilled it since —
//! which is what keeps waiters from sleeping while their element is lost to
//! the backend. Only the decision is taken unlocked; the refill itself is
//! re-checked under the lock.

use core::ptr::NonNull;
use core::sync::atomic::Ordering as CoreOrdering;

use crate::stats::Counters;
use crate::sync::Ordering;
use crate::{Backend, Mempool, MempoolError};

impl<B: Backend> Mempool<B> {
    /// `mempool_free`: gives an element back to the pool.
    ///
    /// An element freed while none is outstanding (a double free, or an
    /// element of another pool) is refused with
    /// [`Unbalanced`](MempoolError::Unbalanced) and nothing changes.
    ///
    /// ```
    /// use kmem_mempool::{BoxBackend, Gfp, Mempool, MempoolError};
    /// let pool = Mempool::new(1, BoxBackend::new(|| 0u8))?;
    /// let p = pool.alloc_raw(Gfp::KERNEL)?;
    /// // SAFETY: `p` is a live element of `pool`; the second free is refused
    /// // by the outstanding count before anything touches `p`.
    /// unsafe {
    ///     pool.free_raw(p)?;
    ///     assert!(matches!(pool.free_raw(p), Err(MempoolError::Unbalanced { .. })));
    /// }
    /// # Ok::<(), MempoolError>(())
    /// ```
    ///
    /// # Safety
    ///
    /// `elem` must be an element this pool handed out (by `alloc_raw` or
    /// [`Element::into_raw`](crate::Element::into_raw)) and not freed since;
    /// it is not used afterwards. The outstanding count catches some
    /// violations (more frees than allocations), not all.
    #[inline]
    pub unsafe fn free_raw(&self, elem: NonNull<B::Elem>) -> Result<(), MempoolError> {
        if self
            .outstanding
            .0
            .n
            .fetch_update(CoreOrdering::Relaxed, CoreOrdering::Relaxed, |n| {
                n.checked_sub(1)
            })
            .is_err()
        {
            return Err(self.refuse_unbalanced(elem));
        }
        let curr = self.curr_nr.load(Ordering::Relaxed);
        let min = self.min_nr.load(Ordering::Relaxed);
        if (curr < min || (min == 0 && curr == 0)) && self.free_to_reserve(Self::erase(elem)) {
            return Ok(());
        }
        // SAFETY: the element came from this backend (our contract) and the
        // reserve does not want it.
        unsafe { self.backend.free(elem) };
        Ok(())
    }

    /// Puts `e` into the reserve if it (still) wants it, under the lock, and
    /// wakes the waiters. `false` if the reserve filled up meanwhile.
    #[cold]
    #[inline(never)]
    fn free_to_reserve(&self, e: NonNull<u8>) -> bool {
        let mut r = self.reserve.lock();
        if !r.wants() {
            return false;
        }
        // SAFETY: `wants()` means `curr_nr < max(min_nr, 1) <= capacity`; the
        // element is the caller's and now the pool's.
        unsafe { r.add(e) };
        r.reserve_refills += 1;
        self.publish(&r);
        drop(r);
        if self.wait.has_sleeper() {
            Counters::inc(&self.stats.wakeups);
            self.wait.wake();
        }
        true
    }

    #[cold]
    fn refuse_unbalanced(&self, elem: NonNull<B::Elem>) -> MempoolError {
        Counters::inc(&self.stats.refused);
        MempoolError::Unbalanced {
            addr: elem.as_ptr() as usize,
        }
    }
}
