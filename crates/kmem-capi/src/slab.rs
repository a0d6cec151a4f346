//! The slab functions of `include/kmem.h`: `kmem_cache_create`,
//! `kmem_cache_alloc`, `kmem_cache_zalloc`, `kmem_cache_free`,
//! `kmem_cache_alloc_bulk`, `kmem_cache_free_bulk`, `kmem_cache_shrink`,
//! `kmem_cache_destroy`, `kmem_cache_size`, and `kmem_slabinfo_write`.
//!
//! Every `struct kmem_cache *` passed in is checked in O(1) against its page
//! descriptor before it is used, so a pointer that is not a live cache (never
//! one, or destroyed) is refused with a report instead of being followed.

use core::ffi::{CStr, c_char, c_int, c_uint, c_void};
use core::ptr::{self, NonNull};

use kmem_page::Gfp;
use kmem_platform::kmem_report;
use kmem_slab::{KmemCache, SlabFlags};

/// A constructor as C passes it.
pub type CtorFn = unsafe extern "C" fn(*mut c_void);

fn bad_cache(func: &str, s: *mut c_void) {
    kmem_report!("{func}: {s:p} is not a live kmem_cache");
}

/// `kmem_cache_create(name, size, align, flags, ctor)`: a cache of
/// `size`-byte objects, or NULL (with a report) if it cannot be made. With
/// `SLAB_PANIC` a failure aborts the process. `SLAB_CONSISTENCY_CHECKS`,
/// `SLAB_RED_ZONE`, `SLAB_POISON` and `SLAB_STORE_USER` turn on the debug
/// checks for the cache (see `kmem_slab::debug`; `KMEM_DEBUG` does it for
/// every cache).
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `ctor` is NULL or a function
/// that may be called on any thread with a pointer to a `size`-byte object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmem_cache_create(
    name: *const c_char,
    size: c_uint,
    align: c_uint,
    flags: c_uint,
    ctor: Option<CtorFn>,
) -> *mut c_void {
    let flags = SlabFlags(flags);
    let fail = |why: &dyn core::fmt::Display, name: &str| -> *mut c_void {
        kmem_report!("kmem_cache_create({name}): {why}");
        if flags.contains(SlabFlags::PANIC) {
            kmem_report!("kmem_cache_create({name}): SLAB_PANIC set, aborting");
            std::process::abort();
        }
        ptr::null_mut()
    };
    if name.is_null() {
        return fail(&"the name is NULL", "(null)");
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let Ok(name) = unsafe { CStr::from_ptr(name) }.to_str() else {
        return fail(&"the name is not UTF-8", "?");
    };
    let b = KmemCache::builder(name, size as usize)
        .align(align as usize)
        .flags(flags);
    let r = match ctor {
        Some(f) => b
            .ctor(move |p: NonNull<u8>| {
                // SAFETY: the caller promised `f` takes any object of this cache.
                unsafe { f(p.as_ptr().cast()) }
            })
            .create(),
        None => b.create(),
    };
    match r {
        Ok(c) => c.into_raw().as_ptr(),
        Err(e) => fail(&e, name),
    }
}

c_entry_with_caller! {
    /// `kmem_cache_alloc(s, gfp)`: an object, or NULL. (A trampoline that
    /// passes its caller's address on, for the debug checks' call sites.)
    ///
    /// # Safety
    ///
    /// `s` is a cache no other thread is destroying.
    pub unsafe extern "C" fn kmem_cache_alloc(s: *mut c_void, gfp: c_uint) -> *mut c_void
        = kmem_cache_alloc_from, 2 => cache_alloc(s, gfp);
}

fn cache_alloc(s: *mut c_void, gfp: c_uint) -> *mut c_void {
    match KmemCache::with_raw(s, |c| c.alloc(Gfp(gfp))) {
        Some(Ok(p)) => p.as_ptr().cast(),
        Some(Err(_)) => ptr::null_mut(),
        None => {
            bad_cache("kmem_cache_alloc", s);
            ptr::null_mut()
        }
    }
}

c_entry_with_caller! {
    /// `kmem_cache_zalloc(s, gfp)`: a zeroed object, or NULL.
    ///
    /// # Safety
    ///
    /// As for [`kmem_cache_alloc`].
    pub unsafe extern "C" fn kmem_cache_zalloc(s: *mut c_void, gfp: c_uint) -> *mut c_void
        = kmem_cache_zalloc_from, 2 => cache_alloc(s, gfp | Gfp::ZERO.0);
}

c_entry_with_caller! {
    /// `kmem_cache_free(s, obj)`: NULL is a no-op; a pointer `s` did not hand
    /// out (foreign, interior, another cache's, already freed) is reported and
    /// ignored.
    ///
    /// # Safety
    ///
    /// If `obj` is an allocated object of `s`, nothing may use it afterwards.
    pub unsafe extern "C" fn kmem_cache_free(s: *mut c_void, obj: *mut c_void)
        = kmem_cache_free_from, 2 => cache_free(s, obj);
}

/// # Safety
/// As for `kmem_cache_free`.
unsafe fn cache_free(s: *mut c_void, obj: *mut c_void) {
    let Some(p) = NonNull::new(obj.cast::<u8>()) else {
        return;
    };
    // SAFETY: the caller's promise; bad pointers are refused inside.
    if KmemCache::with_raw(s, |c| unsafe { c.free(p) }).is_none() {
        bad_cache("kmem_cache_free", s);
    }
}

c_entry_with_caller! {
    /// `kmem_cache_alloc_bulk(s, gfp, nr, p)`: fills `p[0..nr]` and returns
    /// `nr`, or returns 0 and allocates nothing.
    ///
    /// # Safety
    ///
    /// `p` is valid for writes of `nr` pointers.
    pub unsafe extern "C" fn kmem_cache_alloc_bulk(s: *mut c_void, gfp: c_uint, nr: usize, p: *mut *mut c_void) -> c_int
        = kmem_cache_alloc_bulk_from, 4 => cache_alloc_bulk(s, gfp, nr, p);
}

/// # Safety
/// As for `kmem_cache_alloc_bulk`.
unsafe fn cache_alloc_bulk(s: *mut c_void, gfp: c_uint, nr: usize, p: *mut *mut c_void) -> c_int {
    if nr == 0 {
        return 0;
    }
    if p.is_null() {
        kmem_report!("kmem_cache_alloc_bulk: the array is NULL");
        return 0;
    }
    // SAFETY: the caller gives `nr` writable slots.
    let out = unsafe { core::slice::from_raw_parts_mut(p.cast::<*mut u8>(), nr) };
    match KmemCache::with_raw(s, |c| c.alloc_bulk(Gfp(gfp), out)) {
        Some(Ok(())) => nr.min(c_int::MAX as usize) as c_int,
        Some(Err(_)) => 0,
        None => {
            bad_cache("kmem_cache_alloc_bulk", s);
            0
        }
    }
}

c_entry_with_caller! {
    /// `kmem_cache_free_bulk(s, nr, p)`: frees `p[0..nr]` (NULL entries skipped,
    /// bad ones reported and skipped).
    ///
    /// # Safety
    ///
    /// `p` is valid for reads of `nr` pointers; each as for [`kmem_cache_free`].
    pub unsafe extern "C" fn kmem_cache_free_bulk(s: *mut c_void, nr: usize, p: *mut *mut c_void)
        = kmem_cache_free_bulk_from, 3 => cache_free_bulk(s, nr, p);
}

/// # Safety
/// As for `kmem_cache_free_bulk`.
unsafe fn cache_free_bulk(s: *mut c_void, nr: usize, p: *mut *mut c_void) {
    if nr == 0 || p.is_null() {
        return;
    }
    // SAFETY: the caller gives `nr` readable slots.
    let objs = unsafe { core::slice::from_raw_parts(p.cast::<*mut u8>(), nr) };
    // SAFETY: the caller's promise for each object.
    if KmemCache::with_raw(s, |c| unsafe { c.free_bulk(objs) }).is_none() {
        bad_cache("kmem_cache_free_bulk", s);
    }
}

/// `kmem_cache_shrink(s)`: releases every free slab; returns 0 if the cache
/// now holds no slab, 1 if some are in use, -EINVAL if `s` is not a cache.
///
/// # Safety
///
/// As for [`kmem_cache_alloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmem_cache_shrink(s: *mut c_void) -> c_int {
    match KmemCache::with_raw(s, |c| {
        c.shrink();
        c.info().num_slabs
    }) {
        Some(0) => 0,
        Some(_) => 1,
        None => {
            bad_cache("kmem_cache_shrink", s);
            -libc::EINVAL
        }
    }
}

/// `kmem_cache_destroy(s)`: NULL is a no-op; with objects still in use the
/// cache is kept (and reported, with the count); a pointer that is not a
/// live cache (destroyed twice) is reported and ignored.
///
/// # Safety
///
/// No other thread may use `s` during the call; afterwards nothing may.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmem_cache_destroy(s: *mut c_void) {
    if s.is_null() {
        return;
    }
    // SAFETY: the caller's promise; a non-cache is refused inside.
    let _ = unsafe { kmem_slab::destroy_raw(s) };
}

/// `kmem_cache_size(s)`: the object size the cache was created with (0 if
/// `s` is not a cache).
///
/// # Safety
///
/// As for [`kmem_cache_alloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmem_cache_size(s: *mut c_void) -> c_uint {
    match KmemCache::with_raw(s, |c| c.object_size()) {
        Some(n) => n as c_uint,
        None => {
            bad_cache("kmem_cache_size", s);
            0
        }
    }
}

/// `kmem_slabinfo_write(fd)`: writes `/proc/slabinfo` 2.1 for every cache;
/// 0, or -errno if writing failed.
///
/// # Safety
///
/// None beyond `fd` being a descriptor the caller may write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmem_slabinfo_write(fd: c_int) -> c_int {
    match kmem_slab::slabinfo_write_fd(fd) {
        Ok(()) => 0,
        Err(e) => -e,
    }
}

/// `int kmem_cache_validate(struct kmem_cache *s)`: checks every object of
/// `s` (red zones, poison, slab lists; see `KmemCache::validate`), reports
/// and repairs every corruption; returns how many it found, or -EINVAL
/// (reported) if `s` is not a cache.
///
/// # Safety
///
/// As for [`kmem_cache_alloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmem_cache_validate(s: *mut c_void) -> c_int {
    match KmemCache::with_raw(s, |c| c.validate()) {
        Some(n) => n.min(c_int::MAX as usize) as c_int,
        None => {
            bad_cache("kmem_cache_validate", s);
            -libc::EINVAL
        }
    }
}

/// `size_t kmem_leak_report(void)`: reports every object still allocated in
/// any cache on stderr, grouped by allocation site (needs user tracking:
/// `SLAB_STORE_USER`, `KMEM_DEBUG=U` or `KMEM_LEAKS=1`); returns how many
/// objects it found.
///
/// # Safety
///
/// None.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmem_leak_report() -> usize {
    kmem_slab::debug::leak_report_stderr().objects
}
