//! The region pool (the seed's `mp_*` functions; nginx's design), over
//! [`kmem_arena::LockedPool`]: `mp_create_pool`, `mp_destroy_pool`,
//! `mp_reset_pool`, `mp_alloc`, `mp_nalloc`, `mp_calloc`, `mp_memalign`,
//! `mp_free`, `mp_cleanup_add`, `mp_pool_stats`.
//!
//! Every function takes the pool's lock, so one pool may be used from many
//! threads. Bad input (a NULL pool, size 0, a size or alignment that cannot be
//! served, a pointer that is not the pool's) returns NULL or -1 and is
//! reported on stderr with the pool's address; the pool is left as it was.

#![allow(non_camel_case_types)]

use core::ffi::c_void;
use core::ptr::{self, NonNull};

use kmem_arena::{ArenaError, Cleanup, LockedPool, MP_ALIGNMENT, PoolStats};
use kmem_platform::kmem_report;

/// C's `mp_pool_t`: a pool living at the start of its own first block.
pub type mp_pool_t = LockedPool;
/// C's `mp_cleanup_t`.
pub type mp_cleanup_t = Cleanup;
/// C's `struct mp_pool_stats`.
pub type mp_pool_stats = PoolStats;

fn pool_ref<'a>(pool: *mut mp_pool_t, func: &str) -> Option<&'a LockedPool> {
    if pool.is_null() {
        kmem_report!("{func}: NULL pool");
        return None;
    }
    // SAFETY: the caller passes a pool from `mp_create_pool` not yet destroyed.
    Some(unsafe { &*pool })
}

/// Creates a pool whose blocks hold at least `size` bytes; allocations of up
/// to `min(size, PAGE_SIZE - 1)` bytes are bumped from the blocks.
/// NULL (and a report) for size 0, a size too large, or no memory.
///
/// # Safety
///
/// None beyond the C contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_create_pool(size: usize) -> *mut mp_pool_t {
    match LockedPool::create(size) {
        Ok(p) => p.as_ptr(),
        Err(e) => {
            kmem_report!("mp_create_pool({size}): {e}");
            ptr::null_mut()
        }
    }
}

/// Runs the cleanup handlers (newest first), then frees every large
/// allocation, block and the pool. NULL is reported and ignored.
///
/// # Safety
///
/// `pool` is NULL or a live pool that no other thread uses; nothing uses it or
/// its memory afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_destroy_pool(pool: *mut mp_pool_t) {
    match NonNull::new(pool) {
        // SAFETY: passed on from our caller.
        Some(p) => unsafe { LockedPool::destroy(p) },
        None => kmem_report!("mp_destroy_pool: NULL pool"),
    }
}

/// Frees the large allocations and rewinds the blocks; cleanups stay.
///
/// # Safety
///
/// `pool` is NULL or live; nothing uses its allocations afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_reset_pool(pool: *mut mp_pool_t) {
    if let Some(p) = pool_ref(pool, "mp_reset_pool") {
        p.lock().reset();
    }
}

/// The shared checks and report of the allocation functions.
fn alloc_with(
    pool: *mut mp_pool_t,
    func: &str,
    size: usize,
    align: usize,
    f: impl FnOnce(&kmem_arena::Pool<kmem_arena::Global>) -> Option<NonNull<u8>>,
) -> *mut c_void {
    let Some(p) = pool_ref(pool, func) else {
        return ptr::null_mut();
    };
    let g = p.lock();
    let why = if size == 0 {
        ArenaError::ZeroSize
    } else if !align.is_power_of_two() {
        ArenaError::BadAlign { align }
    } else {
        match f(&g) {
            Some(m) => return m.as_ptr().cast(),
            None if size > isize::MAX as usize => ArenaError::TooLarge { size },
            None => ArenaError::NoMemory { size },
        }
    };
    if matches!(why, ArenaError::ZeroSize | ArenaError::BadAlign { .. }) {
        g.note_failed();
    }
    drop(g);
    kmem_report!("{func}(pool {pool:p}, {size}): {why}");
    ptr::null_mut()
}

/// `size` bytes aligned to `MP_ALIGNMENT` (16). NULL for size 0 or no memory.
///
/// # Safety
///
/// `pool` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_alloc(pool: *mut mp_pool_t, size: usize) -> *mut c_void {
    alloc_with(pool, "mp_alloc", size, MP_ALIGNMENT, |p| p.alloc(size))
}

/// `size` bytes, not aligned (strings, packed data).
///
/// # Safety
///
/// `pool` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_nalloc(pool: *mut mp_pool_t, size: usize) -> *mut c_void {
    alloc_with(pool, "mp_nalloc", size, 1, |p| p.nalloc(size))
}

/// As `mp_alloc`, zeroed.
///
/// # Safety
///
/// `pool` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_calloc(pool: *mut mp_pool_t, size: usize) -> *mut c_void {
    alloc_with(pool, "mp_calloc", size, MP_ALIGNMENT, |p| p.calloc(size))
}

/// `size` bytes aligned to `alignment` (any power of two). NULL for size 0, an
/// alignment that is not a power of two, or no memory.
///
/// # Safety
///
/// `pool` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_memalign(
    pool: *mut mp_pool_t,
    size: usize,
    alignment: usize,
) -> *mut c_void {
    alloc_with(pool, "mp_memalign", size, alignment, |p| {
        p.memalign(size, alignment)
    })
}

/// Frees the large allocation `p` now: returns 0. Returns -1, changing
/// nothing, for anything else: NULL and small allocations of this pool
/// (freed at reset or destroy) quietly; a pointer that is not this pool's
/// (another pool's, never allocated, inside a large block) with a report.
///
/// # Safety
///
/// `pool` is NULL or live; if `p` is a large allocation of `pool`, nothing
/// uses it afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_free(pool: *mut mp_pool_t, p: *mut c_void) -> i32 {
    let Some(lp) = pool_ref(pool, "mp_free") else {
        return -1;
    };
    // SAFETY: passed on from our caller.
    match unsafe { lp.lock().free(p.cast()) } {
        Ok(()) => 0,
        Err(e) => {
            if e.is_bug() {
                kmem_report!("mp_free(pool {pool:p}, {p:p}): {e}");
            }
            -1
        }
    }
}

/// Adds a cleanup record with `data_size` bytes of 16-aligned data (NULL data
/// if 0); the caller sets `handler`. Handlers run newest first at
/// `mp_destroy_pool`, never at reset; the record and data survive resets.
/// NULL (and a report) for a NULL pool, a size too large, or no memory.
///
/// # Safety
///
/// `pool` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_cleanup_add(
    pool: *mut mp_pool_t,
    data_size: usize,
) -> *mut mp_cleanup_t {
    let Some(lp) = pool_ref(pool, "mp_cleanup_add") else {
        return ptr::null_mut();
    };
    let r = lp.lock().cleanup_add(data_size);
    match r {
        Ok(c) => c.as_ptr(),
        Err(e) => {
            kmem_report!("mp_cleanup_add(pool {pool:p}, {data_size}): {e}");
            ptr::null_mut()
        }
    }
}

/// Copies the pool's statistics into `*out` (see `struct mp_pool_stats` in
/// kmem.h for what each counts). A NULL pool zeroes `*out`; NULL `out` is
/// ignored; both are reported.
///
/// # Safety
///
/// `pool` is NULL or live; `out` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_pool_stats(pool: *mut mp_pool_t, out: *mut mp_pool_stats) {
    if out.is_null() {
        kmem_report!("mp_pool_stats(pool {pool:p}): NULL out");
        return;
    }
    let s = match pool_ref(pool, "mp_pool_stats") {
        Some(p) => p.lock().stats(),
        None => PoolStats::default(),
    };
    // SAFETY: `out` is valid for writing (caller's contract).
    unsafe { out.write(s) };
}
