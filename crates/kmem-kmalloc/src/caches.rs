//! The kmalloc caches: one slab cache per size class, created on first use.
//!
//! Creation never calls the system allocator (slab descriptors come from the
//! page layer), so the first `kmalloc` of a process — even one made by the
//! dynamic loader inside `malloc` — can create them.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU8, Ordering};

use kmem_slab::KmemCache;

use crate::KmallocError;
use crate::class::{KMALLOC_ALIGN, KMALLOC_NAMES, KMALLOC_SIZES, NR_KMALLOC_CLASSES};

/// The tag of the kmalloc caches ([`kmem_slab::CacheBuilder::tag`]): how
/// `kfree` and `ksize` recognise their objects from the page descriptor
/// alone ("kmal").
pub(crate) const KMALLOC_TAG: u32 = 0x6b6d_616c;

const UNINIT: u8 = 0;
const READY: u8 = 2;

/// The caches and how far their creation got.
struct Caches {
    /// `READY` once `caches` is fully written; never goes back.
    state: AtomicU8,
    /// Serialises creation (and is taken around `fork`).
    lock: kmem_platform::Mutex<()>,
    /// The caches by class. Written once under `lock` before `state` is READY;
    /// read-only afterwards.
    caches: UnsafeCell<MaybeUninit<[KmemCache; NR_KMALLOC_CLASSES]>>,
}

// SAFETY: `caches` is written once under `lock` before being published by the
// release store of `state`; afterwards it is only read. KmemCache is Sync.
unsafe impl Sync for Caches {}

static CACHES: Caches = Caches {
    state: AtomicU8::new(UNINIT),
    lock: kmem_platform::Mutex::new(()),
    caches: UnsafeCell::new(MaybeUninit::uninit()),
};

/// The kmalloc caches, created on first call.
#[inline(always)]
pub(crate) fn caches() -> Result<&'static [KmemCache; NR_KMALLOC_CLASSES], KmallocError> {
    if CACHES.state.load(Ordering::Acquire) == READY {
        // SAFETY: READY is stored (release) only after the array was written.
        return Ok(unsafe { (*CACHES.caches.get()).assume_init_ref() });
    }
    create_caches()
}

/// The caches if they exist already (never creates them).
#[inline]
pub(crate) fn caches_if_ready() -> Option<&'static [KmemCache; NR_KMALLOC_CLASSES]> {
    if CACHES.state.load(Ordering::Acquire) == READY {
        // SAFETY: as in `caches`.
        Some(unsafe { (*CACHES.caches.get()).assume_init_ref() })
    } else {
        None
    }
}

#[cold]
#[inline(never)]
fn create_caches() -> Result<&'static [KmemCache; NR_KMALLOC_CLASSES], KmallocError> {
    let _g = CACHES.lock.lock();
    if CACHES.state.load(Ordering::Acquire) != READY {
        let mut made: [Option<KmemCache>; NR_KMALLOC_CLASSES] = Default::default();
        for (i, slot) in made.iter_mut().enumerate() {
            match KmemCache::builder(KMALLOC_NAMES[i], KMALLOC_SIZES[i])
                .align(KMALLOC_ALIGN[i].min(4096))
                .tag(KMALLOC_TAG)
                .create()
            {
                Ok(c) => *slot = Some(c),
                Err(e) => {
                    kmem_platform::kmem_report!(
                        "kmalloc: cannot create cache {}: {e}",
                        KMALLOC_NAMES[i]
                    );
                    // The caches made so far are destroyed as `made` drops.
                    return Err(KmallocError::NoMemory {
                        size: KMALLOC_SIZES[i],
                    });
                }
            }
        }
        let arr = made.map(|c| c.expect("every cache was created"));
        // SAFETY: under `lock`, before READY: nobody reads the array yet.
        unsafe { (*CACHES.caches.get()).write(arr) };
        CACHES.state.store(READY, Ordering::Release);
    }
    drop(_g);
    // SAFETY: READY (set above or by another thread before we took the lock).
    Ok(unsafe { (*CACHES.caches.get()).assume_init_ref() })
}

/// `fork` support: takes the creation lock (prepare).
pub(crate) fn lock_for_fork() {
    core::mem::forget(CACHES.lock.lock());
}

/// `fork` support: releases the creation lock (parent) or resets it (child).
///
/// # Safety
///
/// Only after [`lock_for_fork`], once, on the thread that called it (or the
/// child's only thread).
pub(crate) unsafe fn unlock_after_fork(child: bool) {
    if child {
        // SAFETY: the child has one thread; the holder's copy is gone.
        unsafe { CACHES.lock.raw().reset() };
    } else {
        // SAFETY: locked by `lock_for_fork` on this thread.
        unsafe { CACHES.lock.force_unlock() };
    }
}
