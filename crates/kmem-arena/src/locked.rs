//! `LockedPool`: a pool that lives in its own first block, behind a lock —
//! what C's `mp_pool_t *` points to (nginx keeps `ngx_pool_t` at the start of
//! its first block the same way).

use core::mem::{ManuallyDrop, size_of};
use core::ptr::NonNull;

use kmem_platform::{Mutex, MutexGuard};

use crate::error::ArenaError;
use crate::pages::{self, Global};
use crate::pool::Pool;

/// A [`Pool`] stored at the start of its own head block, behind a lock, so a
/// C caller can hold it by one pointer and call it from any thread. The pool
/// costs no memory beyond its first block.
///
/// ```
/// use kmem_arena::LockedPool;
/// let p = LockedPool::create(4096)?;
/// // SAFETY: `p` is live until destroyed below.
/// let lp = unsafe { p.as_ref() };
/// let a = lp.lock().alloc(100).unwrap();
/// // The pool header sits in the same block as its first allocations.
/// assert_eq!(a.as_ptr() as usize & !(8192 - 1), p.as_ptr() as usize);
/// // SAFETY: nothing uses the pool or its memory afterwards.
/// unsafe { LockedPool::destroy(p) };
/// # Ok::<(), kmem_arena::ArenaError>(())
/// ```
pub struct LockedPool {
    /// Torn down by [`destroy`](LockedPool::destroy), never dropped in place
    /// (dropping would free the block it lives in while still using it).
    pool: Mutex<ManuallyDrop<Pool<Global>>>,
}

impl LockedPool {
    /// Creates a pool whose blocks hold at least `size` bytes (`mp_create_pool`).
    pub fn create(size: usize) -> Result<NonNull<LockedPool>, ArenaError> {
        let pool = Pool::with_reserve(Global, size, size_of::<LockedPool>())?;
        let base = pool
            .create_head()
            .map_err(|_| ArenaError::NoMemory { size })?;
        let lp = base.cast::<LockedPool>();
        // SAFETY: the head block keeps `size_of::<LockedPool>()` bytes (rounded
        // up to 16) free at its start, page-aligned; the pool moves in there.
        unsafe {
            lp.as_ptr().write(LockedPool {
                pool: Mutex::new(ManuallyDrop::new(pool)),
            })
        };
        Ok(lp)
    }

    /// Locks the pool for a call.
    ///
    /// ```
    /// let p = kmem_arena::LockedPool::create(64)?;
    /// // SAFETY: `p` is live until destroyed.
    /// unsafe {
    ///     assert_eq!(p.as_ref().lock().max(), 64);
    ///     kmem_arena::LockedPool::destroy(p);
    /// }
    /// # Ok::<(), kmem_arena::ArenaError>(())
    /// ```
    pub fn lock(&self) -> MutexGuard<'_, ManuallyDrop<Pool<Global>>> {
        self.pool.lock()
    }

    /// Runs the cleanups (newest first), frees every large allocation and
    /// block, the pool's own last (`mp_destroy_pool`). Does not take the lock:
    /// a handler may not use the pool being destroyed, and nothing else may.
    ///
    /// # Safety
    ///
    /// `this` came from [`create`](Self::create) and was not destroyed; no other
    /// thread uses it; nothing uses it or its memory afterwards.
    pub unsafe fn destroy(this: NonNull<LockedPool>) {
        let head = {
            // SAFETY: the caller gives us the only access to a live pool.
            let pool: &Pool<Global> = unsafe { &*(*this.as_ptr()).pool.data_ptr() };
            // SAFETY: nothing uses the pool's memory after destroy.
            unsafe { pool.teardown() }
        };
        if let Some(head) = head {
            // SAFETY: the head block holds only the pool, whose use ended above.
            unsafe { pages::free_span(&Global, head) };
        }
    }
}
