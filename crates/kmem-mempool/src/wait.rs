//! The pool's wait queue (the kernel's `pool->wait`): where `mempool_alloc`
//! sleeps when the backend fails and the reserve is empty, and what
//! `mempool_free` wakes when it puts an element back.
//!
//! # The protocol (why no wake-up is lost)
//!
//! The queue is a futex word, `seq`, plus a count of registered waiters.
//!
//! * A waiter, **while holding the pool lock** and having just seen
//!   `curr_nr == 0`, registers: it adds itself to `waiters` and reads `seq`
//!   into its [`Ticket`]. Then it drops the lock and sleeps while `seq` still
//!   equals the ticket (`futex_wait` compares and sleeps atomically with
//!   respect to `futex_wake`), for at most the retry interval (the kernel's 5 s
//!   `io_schedule_timeout`).
//! * A freer puts the element into the reserve **under the pool lock**, drops
//!   the lock, and if `waiters > 0` bumps `seq` and wakes one sleeper.
//!
//! Either the freer's critical section comes first — then the waiter's own
//! critical section sees the element (or sees that a third thread took it,
//! which is no loss) — or the waiter's comes first. In that case the lock
//! orders the waiter's registration before the freer's read of `waiters`, so
//! the freer sees the waiter and bumps `seq` after the ticket was read: the
//! waiter either finds `seq` changed and does not sleep, or is asleep and is
//! woken. This is the kernel's `prepare_to_wait` under `pool->lock` plus
//! `wq_has_sleeper` in `mempool_free`, with the futex's compare-and-sleep in
//! place of the task state. The loom model in `tests/loom.rs` checks it with
//! timeouts switched off, so that no interleaving can be rescued by the timer.
//!
//! Under `cfg(loom)` the futex is emulated by a loom `Mutex` + `Condvar` with
//! the same semantics (compare-and-block is atomic with respect to wake; a wake
//! wakes at most one blocked thread).

use crate::sync::{AtomicU32, AtomicUsize, Ordering};

/// What a waiter read from the wake sequence while it held the pool lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket(u32);

pub(crate) struct WaitQueue {
    /// The futex word: bumped by every wake. A waiter sleeps only while it
    /// still equals the [`Ticket`] it read under the pool lock.
    seq: AtomicU32,
    /// Registered waiters. Incremented only under the pool lock (in
    /// [`prepare`](WaitQueue::prepare)); decremented by the waiter itself when
    /// it stops sleeping ([`finish`](WaitQueue::finish)).
    waiters: AtomicUsize,
    #[cfg(loom)]
    emu: loom::sync::Mutex<()>,
    #[cfg(loom)]
    cv: loom::sync::Condvar,
}

impl WaitQueue {
    pub(crate) fn new() -> Self {
        WaitQueue {
            seq: AtomicU32::new(0),
            waiters: AtomicUsize::new(0),
            #[cfg(loom)]
            emu: loom::sync::Mutex::new(()),
            #[cfg(loom)]
            cv: loom::sync::Condvar::new(),
        }
    }

    /// `prepare_to_wait`: registers the caller as a waiter. Must be called
    /// with the pool lock held, after seeing the reserve empty.
    #[inline]
    pub(crate) fn prepare(&self) -> Ticket {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        Ticket(self.seq.load(Ordering::SeqCst))
    }

    /// Sleeps (pool lock dropped) until woken, the sequence moved on since
    /// `ticket`, or `timeout_ns` passed; may return spuriously. The caller
    /// calls [`finish`](Self::finish) afterwards and retries.
    pub(crate) fn sleep(&self, ticket: Ticket, timeout_ns: u64) {
        #[cfg(not(loom))]
        {
            kmem_platform::time::futex_wait(&self.seq, ticket.0, Some(timeout_ns));
        }
        #[cfg(loom)]
        {
            // Timeouts are not modelled: a lost wake-up must show up as a
            // deadlock, not be rescued by the retry interval.
            let _ = timeout_ns;
            let mut g = self.emu.lock().unwrap();
            while self.seq.load(Ordering::SeqCst) == ticket.0 {
                g = self.cv.wait(g).unwrap();
            }
        }
    }

    /// `finish_wait`: the caller is no longer a waiter.
    #[inline]
    pub(crate) fn finish(&self) {
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// `wq_has_sleeper`: whether any waiter is registered. Called after
    /// putting an element into the reserve (the lock that guarded that makes a
    /// registration made under it visible here).
    #[inline]
    pub(crate) fn has_sleeper(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) != 0
    }

    /// `wake_up`: wakes every sleeper, as the kernel's `wake_up(&pool->wait)`
    /// does for its non-exclusive waiters. Waking only one would be enough for
    /// the element just put back *if* the woken thread always took it; but a
    /// woken waiter may get its element from the backend instead and leave the
    /// reserve element to a waiter that is still asleep. Waking all keeps every
    /// waiter's progress independent of the others; the losers re-register.
    pub(crate) fn wake(&self) {
        #[cfg(not(loom))]
        {
            self.seq.fetch_add(1, Ordering::SeqCst);
            kmem_platform::time::futex_wake(&self.seq, u32::MAX);
        }
        #[cfg(loom)]
        {
            {
                let _g = self.emu.lock().unwrap();
                self.seq.fetch_add(1, Ordering::SeqCst);
            }
            self.cv.notify_all();
        }
    }

    /// Registered waiters right now.
    pub(crate) fn waiters(&self) -> usize {
        self.waiters.load(Ordering::Relaxed)
    }
}
