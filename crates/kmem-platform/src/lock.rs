//! A small lock for the slow paths: futex-based on Linux, spinning elsewhere.
//!
//! It never allocates and is `const`-initialisable, so it can guard state that a
//! `malloc` replacement touches before anything else in the process is ready.

use core::sync::atomic::{AtomicU32, Ordering};

/// A raw mutual-exclusion lock (Drepper's three-state futex mutex: 0 unlocked,
/// 1 locked, 2 locked with waiters). Used through [`Mutex`].
///
/// ```
/// use kmem_platform::Mutex;
/// static M: Mutex<u32> = Mutex::new(0);
/// *M.lock() += 1;
/// assert_eq!(*M.lock(), 1);
/// ```
#[derive(Debug)]
pub struct RawLock {
    /// 0 = unlocked, 1 = locked, 2 = locked and a waiter may sleep on the futex.
    state: AtomicU32,
}

/// A mutex over `T` built on [`RawLock`].
pub type Mutex<T> = lock_api::Mutex<RawLock, T>;
/// The guard of a [`Mutex`].
pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, RawLock, T>;

impl RawLock {
    /// An unlocked lock.
    pub const fn new() -> Self {
        RawLock {
            state: AtomicU32::new(0),
        }
    }

    /// Forcibly re-initialise to unlocked: only for a child process after
    /// `fork`, where the thread that held the lock no longer exists.
    ///
    /// # Safety
    ///
    /// No other thread may be using the lock (true in a freshly forked child).
    pub unsafe fn reset(&self) {
        self.state.store(0, Ordering::Relaxed);
    }

    #[cold]
    fn lock_slow(&self) {
        for _ in 0..100 {
            core::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == 0
                && self
                    .state
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        while self.state.swap(2, Ordering::Acquire) != 0 {
            crate::time::futex_wait(&self.state, 2, None);
        }
    }
}

impl Default for RawLock {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: `lock` only returns after moving `state` from 0 to non-zero with
// Acquire ordering, and `unlock` stores 0 with Release, so at most one holder
// exists and its writes are visible to the next.
unsafe impl lock_api::RawMutex for RawLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = RawLock::new();
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    unsafe fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) == 2 {
            crate::time::futex_wake(&self.state, 1);
        }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_under_contention() {
        let m = Arc::new(Mutex::new(0u64));
        let n = if cfg!(miri) { 50 } else { 20_000 };
        let hs: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..n {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock(), 4 * n);
    }

    #[test]
    fn try_lock_fails_while_held() {
        let m = Mutex::new(());
        let g = m.lock();
        assert!(m.try_lock().is_none());
        drop(g);
        assert!(m.try_lock().is_some());
    }
}
