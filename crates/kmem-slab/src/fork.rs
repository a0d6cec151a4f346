//! `fork` support: before `fork`, every lock of the slab layer is taken and
//! every other thread's fast path is stopped (frozen, as for reaping), so the
//! child inherits consistent lists and arrays; afterwards the parent releases
//! everything, and the child resets every lock and gives the array caches of
//! the threads it did not inherit back to their slabs.
//!
//! Order (the order the slab layer nests its locks): the cache list, the
//! thread list, every thread's lock, every cache's node lock, the management
//! pools, the array-cache pools; then the page layer's
//! ([`kmem_page::fork_prepare`]).

use core::ptr;
use core::sync::atomic::Ordering;

use kmem_platform::RawLock;

use crate::cpu_cache::{self, AC_POOLS, TC_ORDER, THREADS, ThreadList};
use crate::list::{CACHES, CacheList};

fn cache_list() -> &'static CacheList {
    // SAFETY: only called while this thread holds the CACHES lock (taken in
    // `fork_prepare`, or the child's only thread after the reset).
    unsafe { &*CACHES.data_ptr() }
}

fn thread_list() -> &'static ThreadList {
    // SAFETY: as above, for the THREADS lock.
    unsafe { &*THREADS.data_ptr() }
}

/// Every lock `fork_prepare` takes after the thread locks, in order.
fn for_each_inner_lock(mut f: impl FnMut(&RawLock)) {
    for c in cache_list().iter() {
        f(c.node.lists.raw());
    }
    for c in cache_list().iter() {
        f(c.mgmt.raw_lock());
    }
    for p in AC_POOLS.iter() {
        f(p.raw_lock());
    }
}

/// Before `fork`: takes every slab lock and the page layer's, and freezes
/// every other thread's array caches.
///
/// ```
/// kmem_slab::fork_prepare();
/// // SAFETY: right after `fork_prepare`, on the same thread.
/// unsafe { kmem_slab::fork_parent() };
/// ```
pub fn fork_prepare() {
    core::mem::forget(CACHES.lock());
    core::mem::forget(THREADS.lock());
    let me = cpu_cache::current_raw();
    let mut others = false;
    for t in thread_list().iter() {
        lock_api::RawMutex::lock(&t.lock);
        if !ptr::eq(t, me) {
            t.freeze();
            others = true;
        }
    }
    if others {
        cpu_cache::remote_barrier();
    }
    for t in thread_list().iter() {
        if !ptr::eq(t, me) {
            t.wait_quiescent();
        }
    }
    for_each_inner_lock(lock_api::RawMutex::lock);
    kmem_page::fork_prepare();
}

/// After `fork`, in the parent: releases everything [`fork_prepare`] took.
///
/// # Safety
///
/// Once after [`fork_prepare`], on the same thread.
pub unsafe fn fork_parent() {
    // SAFETY: per the contract: every lock below was taken by `fork_prepare`.
    unsafe {
        kmem_page::fork_parent();
        for_each_inner_lock(|l| lock_api::RawMutex::unlock(l));
        let me = cpu_cache::current_raw();
        for t in thread_list().iter() {
            if !ptr::eq(t, me) {
                t.thaw();
            }
            lock_api::RawMutex::unlock(&t.lock);
        }
        THREADS.force_unlock();
        CACHES.force_unlock();
    }
}

/// After `fork`, in the child: resets every lock, then flushes the array
/// caches of every thread that does not exist in the child back to their
/// caches' slabs and frees their per-thread blocks.
///
/// # Safety
///
/// Once, in the child of a `fork` that [`fork_prepare`] preceded, before
/// anything else uses kmem.
pub unsafe fn fork_child() {
    // SAFETY: the child has one thread: whoever held these locks is gone.
    unsafe {
        kmem_page::fork_child();
        for_each_inner_lock(|l| l.reset());
        let me = cpu_cache::current_raw();
        for t in thread_list().iter() {
            if !ptr::eq(t, me) {
                t.thaw();
            }
            t.lock.reset();
        }
        THREADS.raw().reset();
        CACHES.raw().reset();
    }
    // The orphans: threads of the parent that the child does not have.
    let mut destroy = crate::node::DestroyList::new();
    {
        let mut list = THREADS.lock();
        let me = cpu_cache::current_raw();
        loop {
            let Some(t) = list.iter().find(|t| !ptr::eq(*t, me)) else {
                break;
            };
            let t = t as *const cpu_cache::ThreadCaches as *mut cpu_cache::ThreadCaches;
            list.remove(t);
            // SAFETY: `t` was listed (live) and its thread does not exist here.
            let tr = unsafe { &*t };
            for slot in tr.slots.iter() {
                let ac = slot.swap(ptr::null_mut(), Ordering::Relaxed);
                if ac.is_null() {
                    continue;
                }
                // SAFETY: a live array of a live cache, ours alone now.
                unsafe {
                    let c = &*(*ac).cache;
                    c.node_flush_all(ac, &mut destroy);
                    cpu_cache::free_array(ac);
                }
            }
            cpu_cache::give_back_seat(tr.seat);
            // SAFETY: unlisted, no array left, no thread refers to it.
            unsafe {
                crate::backend::global_pages().free_block(
                    ptr::NonNull::new_unchecked(t.cast()),
                    TC_ORDER,
                    kmem_page::PageKind::Pages,
                )
            };
        }
    }
    destroy.run();
}
