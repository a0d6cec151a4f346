//! The synchronisation primitives of the exchange between per-thread caches,
//! the shared array and the node lists: kmem's futex lock and core atomics
//! normally, `loom`'s under `cfg(loom)` so that the exchange can be model-checked.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, fence};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, fence};

/// A lock over `T`: [`kmem_platform::Mutex`] (futex, never allocates), or
/// `loom`'s mutex when model-checking.
pub(crate) struct Lock<T> {
    #[cfg(not(loom))]
    inner: kmem_platform::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

#[cfg(not(loom))]
pub(crate) type LockGuard<'a, T> = kmem_platform::MutexGuard<'a, T>;
#[cfg(loom)]
pub(crate) type LockGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Lock<T> {
    pub(crate) fn new(v: T) -> Self {
        Lock {
            #[cfg(not(loom))]
            inner: kmem_platform::Mutex::new(v),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(v),
        }
    }

    /// The lock if it is free now.
    pub(crate) fn try_lock(&self) -> Option<LockGuard<'_, T>> {
        #[cfg(not(loom))]
        {
            self.inner.try_lock()
        }
        #[cfg(loom)]
        {
            self.inner.try_lock().ok()
        }
    }

    /// The raw lock (for `fork`: taken and released as a whole).
    #[cfg(not(loom))]
    pub(crate) fn raw(&self) -> &kmem_platform::RawLock {
        // SAFETY: the caller only locks and unlocks it as a whole (fork.rs).
        unsafe { self.inner.raw() }
    }

    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.inner.lock()
        }
        #[cfg(loom)]
        {
            self.inner.lock().unwrap()
        }
    }
}
