//! `fork` support for the process-wide page allocator ([`global()`](crate::global)):
//! its locks taken before `fork`, released in the parent, reset in the child
//! (where the threads that might have held them no longer exist).
//!
//! Page allocators other than the global one are the program's own to guard.

use kmem_platform::RawLock;

use crate::global::GLOBAL;
use crate::meta::BUMP;
use crate::region::{HUGE_META, SOURCE_META};
use crate::registry::GROW;

/// The locks, in the order they nest: every per-cpu set (in index order) →
/// zone → metadata pools → registry → bump.
fn locks() -> impl DoubleEndedIterator<Item = &'static RawLock> {
    // SAFETY: `raw` only exposes the lock; we lock/unlock it as a whole below.
    let rest = unsafe {
        [
            GLOBAL.zone.raw(),
            SOURCE_META.free.raw(),
            HUGE_META.free.raw(),
            GROW.raw(),
            BUMP.raw(),
        ]
    };
    crate::pcp::raw_locks(&GLOBAL).chain(rest)
}

/// Before `fork`: takes every lock of the global page allocator.
///
/// ```
/// kmem_page::fork_prepare();
/// // SAFETY: right after `fork_prepare`, on the same thread.
/// unsafe { kmem_page::fork_parent() };
/// ```
pub fn fork_prepare() {
    for l in locks() {
        lock_api::RawMutex::lock(l);
    }
}

/// After `fork`, in the parent: releases what [`fork_prepare`] took.
///
/// # Safety
///
/// Once after [`fork_prepare`], on the same thread.
pub unsafe fn fork_parent() {
    for l in locks().rev() {
        // SAFETY: locked by `fork_prepare` on this thread.
        unsafe { lock_api::RawMutex::unlock(l) };
    }
}

/// After `fork`, in the child: resets every lock to unlocked.
///
/// # Safety
///
/// Once, in the child of a `fork` that [`fork_prepare`] preceded.
pub unsafe fn fork_child() {
    for l in locks() {
        // SAFETY: the child has one thread; the holders are gone.
        unsafe { l.reset() };
    }
}
