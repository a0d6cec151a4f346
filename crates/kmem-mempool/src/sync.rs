//! The synchronisation the wait/wake protocol is built from: kmem's futex lock
//! and `core` atomics normally, loom's types under `cfg(loom)` so that the
//! protocol (reserve lock, `curr_nr` mirror, waiter count, wake sequence) can be
//! model-checked.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// The pool's lock (the kernel's `pool->lock` spinlock): a futex mutex
/// normally, loom's `Mutex` under `cfg(loom)`.
pub(crate) struct Lock<T> {
    #[cfg(not(loom))]
    inner: kmem_platform::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

/// A held [`Lock`].
#[cfg(not(loom))]
pub(crate) type LockGuard<'a, T> = kmem_platform::MutexGuard<'a, T>;
/// A held [`Lock`].
#[cfg(loom)]
pub(crate) type LockGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Lock<T> {
    pub(crate) fn new(v: T) -> Self {
        #[cfg(not(loom))]
        {
            Lock {
                inner: kmem_platform::Mutex::new(v),
            }
        }
        #[cfg(loom)]
        {
            Lock {
                inner: loom::sync::Mutex::new(v),
            }
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.inner.lock()
        }
        #[cfg(loom)]
        {
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}
