//! The mempool functions: `mempool_create`, `mempool_alloc`, `mempool_free`,
//! `mempool_resize`, `mempool_destroy`, the page pool
//! (`mempool_create_page_pool`, `mempool_alloc_pages`, `mempool_free_pages`).
//!
//! A `mempool_t` lives in a block from the page layer (never the system
//! allocator); the block's descriptor carries a tag and the header a magic
//! word, so that a pointer that is not a live pool (NULL, garbage, a pool
//! already destroyed) is recognised, reported and refused.
//!
//! The slab and kmalloc stock pools (`mempool_create_slab_pool`,
//! `mempool_create_kmalloc_pool` and their `mempool_alloc_slab`/`mempool_kmalloc`
//! pairs) come with those layers; see `kmem_mempool`'s `stock` module.

use core::ffi::{c_int, c_uint, c_void};
use core::fmt::Write;
use core::ptr::{self, NonNull};

use kmem_mempool::{CBackend, Gfp, Mempool, MempoolError, Opaque, PageBackend};
use kmem_page::{MAX_PAGE_ORDER, PAGE_SIZE, PageKind};
use kmem_platform::diag::StackBuf;
use kmem_platform::kmem_report;

/// `mempool_alloc_t`: `void *(gfp_t gfp_mask, void *pool_data)`.
#[allow(non_camel_case_types)]
pub type mempool_alloc_t = unsafe extern "C" fn(gfp: c_uint, pool_data: *mut c_void) -> *mut c_void;
/// `mempool_free_t`: `void (void *element, void *pool_data)`.
#[allow(non_camel_case_types)]
pub type mempool_free_t = unsafe extern "C" fn(element: *mut c_void, pool_data: *mut c_void);

const MAGIC: usize = 0x6d65_6d70_6f6f_6c21; // "mempool!"
const EINVAL: c_int = 22;
const ENOMEM: c_int = 12;

/// The page-descriptor owner word of a block holding a `mempool_t`.
static POOL_TAG: u8 = 0;

fn pool_tag() -> usize {
    &POOL_TAG as *const u8 as usize
}

/// `struct mempool_s` (opaque to C).
#[allow(non_camel_case_types)]
pub struct mempool_s {
    /// `MAGIC` while the pool is live.
    magic: usize,
    pool: Mempool<CBackend>,
}

/// `mempool_t`.
#[allow(non_camel_case_types)]
pub type mempool_t = mempool_s;

/// The page order that holds a `mempool_t`.
const HEADER_ORDER: u32 = {
    let mut o = 0;
    while (PAGE_SIZE << o) < core::mem::size_of::<mempool_s>() {
        o += 1;
    }
    o
};

/// The pool behind `p`, if `p` is a live pool this library made; otherwise
/// reports what is wrong (naming `func`) and returns `None`.
fn pool_ref<'a>(func: &str, p: *mut mempool_t) -> Option<&'a Mempool<CBackend>> {
    let addr = p as usize;
    if p.is_null() {
        kmem_report!("{func}: NULL pool");
        return None;
    }
    let ok = kmem_page::lookup_block(addr).is_some_and(|b| {
        b.addr == addr && b.desc.kind() == PageKind::Pages && b.desc.owner() == pool_tag()
    });
    // SAFETY: the block is a live page-layer block tagged as a pool header, so
    // it holds an initialised `mempool_s` (its magic is read before anything else).
    if !ok || unsafe { (*p).magic } != MAGIC {
        kmem_report!("{func}: {addr:#x} is not a mempool (never created, or destroyed)");
        return None;
    }
    // SAFETY: as above; the pool lives until `mempool_destroy`.
    Some(unsafe { &(*p).pool })
}

fn name(pool: &Mempool<CBackend>) -> StackBuf<160> {
    let mut b = StackBuf::new();
    let _ = write!(b, "mempool {:p} ({:?})", pool, pool.backend());
    b
}

/// `mempool_create`: a pool of `min_nr` preallocated elements from
/// `alloc_fn(GFP_KERNEL, pool_data)`; NULL if they cannot all be had (what was
/// got is freed with `free_fn`). A negative `min_nr` or a NULL function is
/// reported and gives NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_create(
    min_nr: c_int,
    alloc_fn: Option<mempool_alloc_t>,
    free_fn: Option<mempool_free_t>,
    pool_data: *mut c_void,
) -> *mut mempool_t {
    let (Some(alloc_fn), Some(free_fn)) = (alloc_fn, free_fn) else {
        kmem_report!("mempool_create: NULL alloc_fn or free_fn");
        return ptr::null_mut();
    };
    if min_nr < 0 {
        kmem_report!("mempool_create: min_nr {min_nr} is negative");
        return ptr::null_mut();
    }
    // SAFETY: the C contract: the functions are thread-safe and pair up.
    let backend = unsafe { CBackend::new(alloc_fn, free_fn, pool_data) };
    let pool = match Mempool::new(min_nr as usize, backend) {
        Ok(p) => p,
        Err(e @ MempoolError::TooLarge { .. }) => {
            kmem_report!("mempool_create: {e}");
            return ptr::null_mut();
        }
        Err(_) => {
            kmem_platform::diag::set_errno(ENOMEM);
            return ptr::null_mut();
        }
    };
    let Ok(block) = kmem_page::global().alloc_raw(HEADER_ORDER, Gfp::KERNEL) else {
        kmem_platform::diag::set_errno(ENOMEM);
        return ptr::null_mut(); // `pool` drops: its reserve goes back to free_fn
    };
    let p = block.as_ptr().cast::<mempool_t>();
    // SAFETY: a fresh block of at least `size_of::<mempool_s>()` bytes, aligned
    // to a page.
    unsafe { p.write(mempool_s { magic: MAGIC, pool }) };
    if let Some(d) = kmem_page::lookup(p as usize) {
        d.set_owner(pool_tag());
    }
    p
}

/// `mempool_create_page_pool`: a pool of `min_nr` blocks of `2^order` pages
/// (`mempool_alloc_pages`/`mempool_free_pages`, the order as `pool_data`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_create_page_pool(min_nr: c_int, order: c_int) -> *mut mempool_t {
    if !(0..=MAX_PAGE_ORDER as c_int).contains(&order) {
        kmem_report!("mempool_create_page_pool: order {order} is not in 0..={MAX_PAGE_ORDER}");
        return ptr::null_mut();
    }
    // SAFETY: the stock functions keep the contract for this order.
    unsafe {
        mempool_create(
            min_nr,
            Some(mempool_alloc_pages),
            Some(mempool_free_pages),
            order as usize as *mut c_void,
        )
    }
}

/// `mempool_alloc`: an element; with `GFP_KERNEL` it waits rather than fail.
/// NULL for `GFP_ATOMIC`/`GFP_NOWAIT` when the backend fails and the reserve
/// is empty, and (reported) for `__GFP_ZERO` or a bad pool.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_alloc(pool: *mut mempool_t, gfp: c_uint) -> *mut c_void {
    let Some(p) = pool_ref("mempool_alloc", pool) else {
        return ptr::null_mut();
    };
    match p.alloc_raw(Gfp(gfp)) {
        Ok(e) => e.as_ptr().cast(),
        Err(e @ MempoolError::ZeroUnsupported) => {
            kmem_report!("mempool_alloc({}): gfp {}: {e}", name(p).as_str(), Gfp(gfp));
            ptr::null_mut()
        }
        Err(_) => ptr::null_mut(),
    }
}

/// `mempool_free`: gives an element back (NULL: no-op). A bad pool, or a free
/// while no element is outstanding, is reported and changes nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_free(element: *mut c_void, pool: *mut mempool_t) {
    let Some(e) = NonNull::new(element.cast::<Opaque>()) else {
        return;
    };
    let Some(p) = pool_ref("mempool_free", pool) else {
        return;
    };
    // SAFETY: the C contract: `element` came from this pool; a double free is
    // caught by the outstanding count when nothing is outstanding.
    if let Err(err) = unsafe { p.free_raw(e) } {
        kmem_report!("mempool_free({}): {err}", name(p).as_str());
    }
}

/// `mempool_resize`: 0, or `-EINVAL` (bad pool, `new_min_nr <= 0`, too large),
/// `-ENOMEM` (no room for the larger reserve). Growing fills from the backend
/// as far as it can.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_resize(pool: *mut mempool_t, new_min_nr: c_int) -> c_int {
    let Some(p) = pool_ref("mempool_resize", pool) else {
        return -EINVAL;
    };
    if new_min_nr <= 0 {
        kmem_report!(
            "mempool_resize({}): new_min_nr {new_min_nr} must be positive",
            name(p).as_str()
        );
        return -EINVAL;
    }
    match p.resize(new_min_nr as usize) {
        Ok(()) => 0,
        Err(MempoolError::NoReserveArray { .. }) => -ENOMEM,
        Err(e) => {
            kmem_report!("mempool_resize({}): {e}", name(p).as_str());
            -EINVAL
        }
    }
}

/// `mempool_destroy`: frees the reserve (with `free_fn`) and the pool. NULL is
/// a no-op. A pool with elements still allocated is reported and kept.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_destroy(pool: *mut mempool_t) {
    if pool.is_null() {
        return;
    }
    let Some(p) = pool_ref("mempool_destroy", pool) else {
        return;
    };
    let out = p.outstanding();
    if out != 0 {
        kmem_report!(
            "mempool_destroy({}): {out} element(s) still allocated; pool kept",
            name(p).as_str()
        );
        return;
    }
    if let Some(d) = kmem_page::lookup(pool as usize) {
        d.set_owner(0);
    }
    // SAFETY: a live pool header (checked above) that the caller gives up;
    // its magic goes first so stale pointers are refused from here on.
    unsafe {
        (*pool).magic = 0;
        ptr::drop_in_place(&raw mut (*pool).pool);
        let r = kmem_page::global().free_raw(NonNull::new_unchecked(pool.cast()), HEADER_ORDER);
        debug_assert!(r.is_ok());
    }
}

/// `mempool_alloc_pages`: a block of `2^order` pages (`order` = `pool_data`), or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_alloc_pages(gfp: c_uint, pool_data: *mut c_void) -> *mut c_void {
    let order = pool_data as usize;
    match PageBackend::global(order.min(u32::MAX as usize) as u32) {
        Ok(b) => kmem_mempool::Backend::alloc(&b, Gfp(gfp))
            .map_or(ptr::null_mut(), |p| p.as_ptr().cast()),
        Err(e) => {
            kmem_report!("mempool_alloc_pages: {e}");
            ptr::null_mut()
        }
    }
}

/// `mempool_free_pages`: frees a block from `mempool_alloc_pages` (NULL: no-op;
/// a wrong address or order is reported and changes nothing).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_free_pages(element: *mut c_void, pool_data: *mut c_void) {
    let Some(e) = NonNull::new(element.cast::<u8>()) else {
        return;
    };
    let order = pool_data as usize;
    if order > MAX_PAGE_ORDER as usize {
        kmem_report!(
            "mempool_free_pages: order {order} is above MAX_PAGE_ORDER ({MAX_PAGE_ORDER})"
        );
        return;
    }
    // SAFETY: the page layer validates the address and order and refuses
    // anything that is not an allocated block of exactly that order.
    if let Err(err) = unsafe { kmem_page::global().free_raw(e, order as u32) } {
        kmem_report!("mempool_free_pages: {err}");
    }
}

/// `mempool_create_kmalloc_pool`: a pool of `min_nr` kmalloc objects of
/// `size` bytes (`mempool_kmalloc`/`mempool_kfree`, the size as `pool_data`).
/// NULL (reported) for size 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_create_kmalloc_pool(min_nr: c_int, size: usize) -> *mut mempool_t {
    if size == 0 {
        kmem_report!("mempool_create_kmalloc_pool: size 0 (elements would be ZERO_SIZE_PTR)");
        return ptr::null_mut();
    }
    // SAFETY: the stock functions keep the contract for this size.
    unsafe {
        mempool_create(
            min_nr,
            Some(mempool_kmalloc),
            Some(mempool_kfree),
            size as *mut c_void,
        )
    }
}

/// `mempool_kmalloc`: `kmalloc(size, gfp)` with `size` = `pool_data`, or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_kmalloc(gfp: c_uint, pool_data: *mut c_void) -> *mut c_void {
    kmem_kmalloc::kmalloc(pool_data as usize, Gfp(gfp))
        .map_or(ptr::null_mut(), |p| p.as_ptr().cast())
}

/// `mempool_kfree`: `kfree(element)` (NULL: no-op; a pointer kmalloc did not
/// hand out is reported and refused).
///
/// # Safety
///
/// `element` came from `mempool_kmalloc` and is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_kfree(element: *mut c_void, pool_data: *mut c_void) {
    let _ = pool_data;
    // SAFETY: per the contract; kfree validates the pointer.
    let _ = unsafe { kmem_kmalloc::kfree(element.cast()) };
}
/// `mempool_alloc_slab`: an object of the `struct kmem_cache *` in
/// `pool_data` (`kmem_cache_alloc`), or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_alloc_slab(gfp: c_uint, pool_data: *mut c_void) -> *mut c_void {
    // SAFETY: `kmem_cache_alloc` validates the cache pointer and reports a bad one.
    unsafe { crate::slab::kmem_cache_alloc(pool_data, gfp) }
}

/// `mempool_free_slab`: gives an object back to the cache in `pool_data`
/// (`kmem_cache_free`; a foreign object is reported and refused).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_free_slab(element: *mut c_void, pool_data: *mut c_void) {
    // SAFETY: `kmem_cache_free` validates the cache and the object.
    unsafe { crate::slab::kmem_cache_free(pool_data, element) }
}

/// `mempool_create_slab_pool`: a pool of `min_nr` objects of `cache`
/// (`mempool_alloc_slab`/`mempool_free_slab`). NULL (reported) for a bad cache.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mempool_create_slab_pool(
    min_nr: c_int,
    cache: *mut c_void,
) -> *mut mempool_t {
    if kmem_slab::KmemCache::with_raw(cache, |_| ()).is_none() {
        kmem_report!("mempool_create_slab_pool: {cache:p} is not a kmem_cache");
        return ptr::null_mut();
    }
    // SAFETY: the stock functions keep the contract for this cache.
    unsafe {
        mempool_create(
            min_nr,
            Some(mempool_alloc_slab),
            Some(mempool_free_slab),
            cache,
        )
    }
}
