//! `fork` support: every allocator lock taken before `fork`, released in
//! the parent and reset in the child, so the child's allocator is consistent.
//! The preload registers these with `pthread_atfork`; a program that forks
//! from a multi-threaded Rust program on [`Kmalloc`](crate::Kmalloc) may too.

/// Before `fork`: takes kmalloc's, the slab layer's and the page layer's
/// locks (in their nesting order) and stops every thread's fast path.
///
/// ```
/// kmem_kmalloc::fork::prepare();
/// // SAFETY: right after `prepare`, on the same thread.
/// unsafe { kmem_kmalloc::fork::parent() };
/// ```
pub fn prepare() {
    crate::caches::lock_for_fork();
    kmem_slab::fork_prepare();
}

/// After `fork`, in the parent: releases everything [`prepare`] took.
///
/// # Safety
///
/// Once after [`prepare`], on the thread that called it.
pub unsafe fn parent() {
    // SAFETY: per the contract.
    unsafe {
        kmem_slab::fork_parent();
        crate::caches::unlock_after_fork(false);
    }
}

/// After `fork`, in the child: resets every lock and gives the caches of
/// threads that do not exist in the child back to their slabs.
///
/// # Safety
///
/// Once, in the child of a `fork` that [`prepare`] preceded, before anything
/// else allocates.
pub unsafe fn child() {
    // SAFETY: per the contract.
    unsafe {
        crate::caches::unlock_after_fork(true);
        kmem_slab::fork_child();
    }
}
