//! `mempool_resize`: change `min_nr` of a live pool.
//!
//! Shrinking lowers `min_nr` and returns the surplus reserve elements to the
//! backend, one at a time with the lock dropped around each backend call.
//! Growing makes room first — a larger slot array from the page layer,
//! allocated *outside* the lock and swapped in under it (another resize may
//! have won the race meanwhile; then this one has nothing left to do) — raises
//! `min_nr`, and then fills the reserve from the backend with `GFP_KERNEL`,
//! again without holding the lock. Filling is best effort, as in the kernel: if
//! the backend fails, the call still succeeds and later frees top the reserve
//! up. Unlike the kernel (whose waiters then sleep out their 5 s), every
//! element added here wakes the waiters.

use kmem_page::Gfp;

use crate::pool::SlotArray;
use crate::stats::Counters;
use crate::{Backend, MAX_MIN_NR, Mempool, MempoolError};

impl<B: Backend> Mempool<B> {
    /// Changes the reserve's target size to `new_min_nr` (at least 1, as the
    /// kernel requires).
    ///
    /// ```
    /// use kmem_mempool::{BoxBackend, Mempool};
    /// let pool = Mempool::new(2, BoxBackend::new(|| 0u32))?;
    /// pool.resize(600)?;            // a bigger slot array, filled from the backend
    /// assert_eq!((pool.min_nr(), pool.curr_nr()), (600, 600));
    /// pool.resize(10)?;             // the surplus goes back to the backend
    /// assert_eq!((pool.min_nr(), pool.curr_nr()), (10, 10));
    /// assert!(pool.resize(0).is_err());
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn resize(&self, new_min_nr: usize) -> Result<(), MempoolError> {
        if new_min_nr == 0 {
            return Err(MempoolError::InvalidMinNr { min_nr: 0 });
        }
        if new_min_nr > MAX_MIN_NR {
            return Err(MempoolError::TooLarge { min_nr: new_min_nr });
        }
        let mut r = self.reserve.lock();
        if new_min_nr <= r.min_nr {
            r.min_nr = new_min_nr;
            self.publish(&r);
            while r.curr_nr > new_min_nr {
                let e = r.remove().expect("curr_nr > 0");
                self.publish(&r);
                drop(r);
                // SAFETY: a reserve element of this backend, no longer in the reserve.
                unsafe { self.backend.free(e.cast()) };
                r = self.reserve.lock();
            }
            drop(r);
            Counters::inc(&self.stats.resizes);
            return Ok(());
        }

        let mut retired = None;
        if new_min_nr > r.capacity() {
            drop(r);
            let slots = SlotArray::new(new_min_nr)
                .ok_or(MempoolError::NoReserveArray { slots: new_min_nr })?;
            r = self.reserve.lock();
            if new_min_nr <= r.min_nr {
                // Raced with another resize that went at least as far.
                drop(r);
                drop(slots);
                return Ok(());
            }
            retired = Some(if new_min_nr > r.capacity() {
                r.replace_slots(slots)
            } else {
                slots
            });
        }
        r.min_nr = new_min_nr;
        self.publish(&r);
        Counters::inc(&self.stats.resizes);
        drop(r);
        drop(retired);

        loop {
            {
                let r = self.reserve.lock();
                if r.curr_nr >= r.min_nr {
                    return Ok(());
                }
            }
            let Some(e) = self.backend.alloc(Gfp::KERNEL) else {
                return Ok(()); // best effort: frees will top it up
            };
            let mut r = self.reserve.lock();
            if r.curr_nr >= r.min_nr {
                drop(r);
                // SAFETY: fresh from this backend, never handed out.
                unsafe { self.backend.free(e) };
                return Ok(());
            }
            // SAFETY: `curr_nr < min_nr <= capacity`; the element is fresh.
            unsafe { r.add(Self::erase(e)) };
            self.publish(&r);
            drop(r);
            if self.wait.has_sleeper() {
                Counters::inc(&self.stats.wakeups);
                self.wait.wake();
            }
        }
    }
}
