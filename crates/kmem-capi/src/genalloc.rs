//! The genalloc functions of `include/kmem.h`: `gen_pool_create` … `gen_pool_destroy`
//! and the allocation algorithms with the kernel's `genpool_algo_t` signature.
//!
//! When a pool's algorithm is one of kmem's own (`gen_pool_first_fit` & co.),
//! the pool uses its summarised search; any other function pointer is called
//! with the chunk's bitmap exactly as the kernel calls it.

#![allow(non_camel_case_types)]

use core::ffi::{c_int, c_uint, c_ulong, c_void};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use kmem_genalloc::{Algo, Bitmap, ChunkCtx, ChunkRef, GenAlgo, GenPool, GenPoolError};
use kmem_platform::{Os, PAGE_SIZE, PageSource, kmem_report};

/// `phys_addr_t` / `dma_addr_t`.
pub type phys_addr_t = u64;

/// The kernel's `genpool_algo_t`: returns the first bit of a free run of
/// `nr` bits at or after `start`, or a value `>= size` if there is none.
pub type genpool_algo_t = Option<
    unsafe extern "C" fn(
        map: *mut c_ulong,
        size: c_ulong,
        start: c_ulong,
        nr: c_uint,
        data: *mut c_void,
        pool: *mut gen_pool,
        start_addr: c_ulong,
    ) -> c_ulong,
>;

/// `gen_pool_for_each_chunk`'s callback.
pub type gen_pool_chunk_fn = Option<
    unsafe extern "C" fn(pool: *mut gen_pool, chunk: *mut gen_pool_chunk, data: *mut c_void),
>;

/// `struct genpool_data_align`: data for `gen_pool_first_fit_align`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct genpool_data_align {
    /// Alignment in bytes (a power of two).
    pub align: c_int,
}

/// `struct genpool_data_fixed`: data for `gen_pool_fixed_alloc`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct genpool_data_fixed {
    /// Offset in bytes from the start of a chunk.
    pub offset: c_ulong,
}

/// `struct gen_pool`: opaque to C.
pub struct gen_pool {
    pool: GenPool<Os>,
    /// The pool's algorithm as a C function pointer (0: first fit).
    algo: AtomicUsize,
    /// Its data.
    data: AtomicPtr<c_void>,
}

/// `struct gen_pool_chunk`: opaque to C; read it with the `gen_pool_chunk_*` accessors.
#[repr(C)]
pub struct gen_pool_chunk {
    _opaque: [u8; 0],
}

const POOL_BYTES: usize = core::mem::size_of::<gen_pool>().next_multiple_of(PAGE_SIZE);

#[inline]
unsafe fn pool_ref<'a>(pool: *mut gen_pool, func: &str) -> Option<&'a gen_pool> {
    if pool.is_null() {
        kmem_report!("{func}: NULL pool");
        return None;
    }
    // SAFETY: the caller passes a pool from gen_pool_create that is not destroyed.
    Some(unsafe { &*pool })
}

fn errno_of(e: &GenPoolError) -> c_int {
    match e {
        GenPoolError::NoMemory { .. } | GenPoolError::NoSpace { .. } => -libc::ENOMEM,
        GenPoolError::LiveAllocations { .. } => -libc::EBUSY,
        _ => -libc::EINVAL,
    }
}

/// `gen_pool_create(min_alloc_order, nid)`: a pool with granule
/// `1 << min_alloc_order`, or NULL (bad order reported on stderr).
#[unsafe(no_mangle)]
pub extern "C" fn gen_pool_create(min_alloc_order: c_int, nid: c_int) -> *mut gen_pool {
    let _ = nid;
    let Ok(order) = u32::try_from(min_alloc_order) else {
        kmem_report!("gen_pool_create: min_alloc_order {min_alloc_order} is negative");
        return ptr::null_mut();
    };
    let pool = match GenPool::new(order) {
        Ok(p) => p,
        Err(e) => {
            kmem_report!("gen_pool_create: {e}");
            return ptr::null_mut();
        }
    };
    let Some(mem) = Os::new().map(POOL_BYTES, PAGE_SIZE) else {
        return ptr::null_mut();
    };
    let p = mem.cast::<gen_pool>().as_ptr();
    // SAFETY: `mem` is a fresh mapping big and aligned enough for a gen_pool.
    unsafe {
        p.write(gen_pool {
            pool,
            algo: AtomicUsize::new(0),
            data: AtomicPtr::new(ptr::null_mut()),
        })
    };
    p
}

/// `gen_pool_destroy(pool)`: frees the pool, or, if allocations are still
/// live, reports them and keeps the pool.
///
/// # Safety
/// `pool` is NULL or from `gen_pool_create`, not destroyed, and not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_destroy(pool: *mut gen_pool) {
    // SAFETY: see the function's contract.
    if unsafe { pool_ref(pool, "gen_pool_destroy") }.is_none() {
        return;
    }
    // SAFETY: no other thread uses the pool; we move it out and either drop
    // it or put it back unchanged.
    let inner = unsafe { ptr::read(&(*pool).pool) };
    match inner.destroy() {
        Ok(()) => {
            // SAFETY: the mapping was made by gen_pool_create with these sizes;
            // its contents (two atomics) need no drop.
            unsafe { Os::new().unmap(NonNull::new_unchecked(pool.cast()), POOL_BYTES, PAGE_SIZE) };
        }
        Err(e) => {
            kmem_report!("gen_pool_destroy(pool {pool:p}): {}", e.error);
            // SAFETY: the slot was moved out above; put the same pool back.
            unsafe { ptr::write(&mut (*pool).pool, e.pool) };
        }
    }
}

/// `gen_pool_add_virt(pool, virt, phys, size, nid)`: 0, `-EINVAL` for a bad
/// or overlapping range (reported), or `-ENOMEM`.
///
/// # Safety
/// `pool` is NULL or a live pool from `gen_pool_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_add_virt(
    pool: *mut gen_pool,
    virt: c_ulong,
    phys: phys_addr_t,
    size: usize,
    nid: c_int,
) -> c_int {
    let _ = nid;
    // SAFETY: see the function's contract.
    let Some(p) = (unsafe { pool_ref(pool, "gen_pool_add_virt") }) else {
        return -libc::EINVAL;
    };
    match p.pool.add_virt(virt as usize, phys, size) {
        Ok(()) => 0,
        Err(e) => {
            kmem_report!("gen_pool_add_virt(pool {pool:p}, {virt:#x}, {size:#x}): {e}");
            errno_of(&e)
        }
    }
}

/// `gen_pool_add(pool, addr, size, nid)`: `gen_pool_add_virt` with phys -1.
///
/// # Safety
/// `pool` is NULL or a live pool from `gen_pool_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_add(
    pool: *mut gen_pool,
    addr: c_ulong,
    size: usize,
    nid: c_int,
) -> c_int {
    // SAFETY: same contract.
    unsafe { gen_pool_add_virt(pool, addr, u64::MAX, size, nid) }
}

/// A C algorithm, called as the kernel calls it.
struct CAlgo {
    func: unsafe extern "C" fn(
        *mut c_ulong,
        c_ulong,
        c_ulong,
        c_uint,
        *mut c_void,
        *mut gen_pool,
        c_ulong,
    ) -> c_ulong,
    data: *mut c_void,
    pool: *mut gen_pool,
}

// SAFETY: the C ABI promises thread-safe algorithms; we only pass pointers on.
unsafe impl Sync for CAlgo {}

impl GenAlgo for CAlgo {
    fn find(&self, map: &Bitmap<'_>, start: usize, nr: usize, ctx: &ChunkCtx) -> Option<usize> {
        let nr = c_uint::try_from(nr).ok()?;
        // SAFETY: the map pointer covers `map.len()` bits of live atomics with
        // the layout of unsigned long; the function has the genpool_algo_t contract.
        let r = unsafe {
            (self.func)(
                map.words().as_ptr() as *mut c_ulong,
                map.len() as c_ulong,
                start as c_ulong,
                nr,
                self.data,
                self.pool,
                ctx.start_addr as c_ulong,
            )
        };
        ((r as usize) < map.len()).then_some(r as usize)
    }
}

type AlgoFn = unsafe extern "C" fn(
    *mut c_ulong,
    c_ulong,
    c_ulong,
    c_uint,
    *mut c_void,
    *mut gen_pool,
    c_ulong,
) -> c_ulong;

/// Maps a C algorithm to kmem's own (summarised) one where it is one of ours.
unsafe fn resolve<'a>(
    func: usize,
    data: *mut c_void,
    pool: *mut gen_pool,
    holder: &'a mut Option<CAlgo>,
    caller: &str,
) -> Option<Algo<'a>> {
    let is = |f: AlgoFn| func == f as usize;
    if func == 0 || is(gen_pool_first_fit) {
        return Some(Algo::FirstFit);
    }
    if is(gen_pool_first_fit_align) {
        if data.is_null() {
            kmem_report!(
                "{caller}(pool {pool:p}): gen_pool_first_fit_align needs a struct genpool_data_align"
            );
            return None;
        }
        // SAFETY: the caller passes a genpool_data_align for this algorithm.
        let align = unsafe { (*data.cast::<genpool_data_align>()).align };
        return Some(Algo::FirstFitAlign {
            align: usize::try_from(align).unwrap_or(0),
        });
    }
    if is(gen_pool_first_fit_order_align) {
        return Some(Algo::FirstFitOrderAlign);
    }
    if is(gen_pool_best_fit) {
        return Some(Algo::BestFit);
    }
    if is(gen_pool_worst_fit) {
        return Some(Algo::WorstFit);
    }
    if is(gen_pool_fixed_alloc) {
        if data.is_null() {
            kmem_report!(
                "{caller}(pool {pool:p}): gen_pool_fixed_alloc needs a struct genpool_data_fixed"
            );
            return None;
        }
        // SAFETY: the caller passes a genpool_data_fixed for this algorithm.
        let offset = unsafe { (*data.cast::<genpool_data_fixed>()).offset };
        return Some(Algo::Fixed {
            offset: offset as usize,
        });
    }
    // SAFETY: a non-zero value stored as an algorithm is a genpool_algo_t.
    let f: AlgoFn = unsafe { core::mem::transmute::<usize, AlgoFn>(func) };
    *holder = Some(CAlgo {
        func: f,
        data,
        pool,
    });
    holder.as_ref().map(|a| Algo::Custom(a))
}

unsafe fn alloc_with(
    pool: *mut gen_pool,
    size: usize,
    func: usize,
    data: *mut c_void,
    caller: &str,
) -> c_ulong {
    // SAFETY: see the callers' contracts.
    let Some(p) = (unsafe { pool_ref(pool, caller) }) else {
        return 0;
    };
    let mut holder = None;
    // SAFETY: `func` is 0 or a genpool_algo_t, with its data.
    let Some(algo) = (unsafe { resolve(func, data, pool, &mut holder, caller) }) else {
        return 0;
    };
    match p.pool.alloc_algo(size, algo) {
        Ok(a) => a.addr as c_ulong,
        Err(GenPoolError::NoSpace { .. }) => 0,
        Err(e) => {
            kmem_report!("{caller}(pool {pool:p}, {size}): {e}");
            0
        }
    }
}

/// `gen_pool_alloc(pool, size)`: an address, or 0 (size 0 is reported).
///
/// # Safety
/// `pool` is NULL or a live pool from `gen_pool_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_alloc(pool: *mut gen_pool, size: usize) -> c_ulong {
    if pool.is_null() {
        kmem_report!("gen_pool_alloc: NULL pool");
        return 0;
    }
    // SAFETY: `pool` is live; its algorithm and data were set together.
    let (func, data) = unsafe {
        (
            (*pool).algo.load(Ordering::Acquire),
            (*pool).data.load(Ordering::Acquire),
        )
    };
    // SAFETY: as above.
    unsafe { alloc_with(pool, size, func, data, "gen_pool_alloc") }
}

/// `gen_pool_alloc_algo(pool, size, algo, data)`.
///
/// # Safety
/// `pool` is NULL or a live pool; `algo` is NULL or a genpool_algo_t taking `data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_alloc_algo(
    pool: *mut gen_pool,
    size: usize,
    algo: genpool_algo_t,
    data: *mut c_void,
) -> c_ulong {
    let func = algo.map_or(0, |f| f as usize);
    // SAFETY: see the function's contract.
    unsafe { alloc_with(pool, size, func, data, "gen_pool_alloc_algo") }
}

/// `gen_pool_dma_alloc(pool, size, &dma)`: the address (NULL on failure),
/// with its physical address in `*dma` (-1 if the chunk has none).
///
/// # Safety
/// `pool` is NULL or a live pool; `dma` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_dma_alloc(
    pool: *mut gen_pool,
    size: usize,
    dma: *mut phys_addr_t,
) -> *mut c_void {
    if pool.is_null() {
        kmem_report!("gen_pool_dma_alloc: NULL pool");
        return ptr::null_mut();
    }
    // SAFETY: `pool` is live.
    let (func, data) = unsafe {
        (
            (*pool).algo.load(Ordering::Acquire),
            (*pool).data.load(Ordering::Acquire),
        )
    };
    // SAFETY: as in gen_pool_dma_alloc_algo.
    unsafe { dma_alloc_with(pool, size, dma, func, data, "gen_pool_dma_alloc") }
}

/// `gen_pool_dma_alloc_algo(pool, size, &dma, algo, data)`.
///
/// # Safety
/// As `gen_pool_dma_alloc`, and `algo` is NULL or a genpool_algo_t taking `data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_dma_alloc_algo(
    pool: *mut gen_pool,
    size: usize,
    dma: *mut phys_addr_t,
    algo: genpool_algo_t,
    data: *mut c_void,
) -> *mut c_void {
    let func = algo.map_or(0, |f| f as usize);
    // SAFETY: see the function's contract.
    unsafe { dma_alloc_with(pool, size, dma, func, data, "gen_pool_dma_alloc_algo") }
}

/// `gen_pool_dma_alloc_align(pool, size, &dma, align)`.
///
/// # Safety
/// As `gen_pool_dma_alloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_dma_alloc_align(
    pool: *mut gen_pool,
    size: usize,
    dma: *mut phys_addr_t,
    align: c_int,
) -> *mut c_void {
    let mut data = genpool_data_align { align };
    // SAFETY: `data` lives across the call; the algorithm is ours.
    unsafe {
        dma_alloc_with(
            pool,
            size,
            dma,
            gen_pool_first_fit_align as AlgoFn as usize,
            (&mut data as *mut genpool_data_align).cast(),
            "gen_pool_dma_alloc_align",
        )
    }
}

unsafe fn dma_alloc_with(
    pool: *mut gen_pool,
    size: usize,
    dma: *mut phys_addr_t,
    func: usize,
    data: *mut c_void,
    caller: &str,
) -> *mut c_void {
    // SAFETY: see the callers' contracts.
    let addr = unsafe { alloc_with(pool, size, func, data, caller) };
    if addr == 0 {
        return ptr::null_mut();
    }
    if !dma.is_null() {
        // SAFETY: `pool` is live (alloc succeeded); `dma` is writable.
        unsafe { *dma = (*pool).pool.virt_to_phys(addr as usize).unwrap_or(u64::MAX) };
    }
    addr as usize as *mut c_void
}

/// `gen_pool_free(pool, addr, size)`: bad input (an address in no chunk,
/// unaligned, not allocated, running past its chunk, size 0) is reported
/// and changes nothing.
///
/// # Safety
/// `pool` is NULL or a live pool from `gen_pool_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_free(pool: *mut gen_pool, addr: c_ulong, size: usize) {
    // SAFETY: see the function's contract.
    let Some(p) = (unsafe { pool_ref(pool, "gen_pool_free") }) else {
        return;
    };
    if let Err(e) = p.pool.free(addr as usize, size) {
        kmem_report!("gen_pool_free(pool {pool:p}, {addr:#x}, {size}): {e}");
    }
}

/// `gen_pool_virt_to_phys(pool, addr)`: the physical address, or -1.
///
/// # Safety
/// `pool` is NULL or a live pool from `gen_pool_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_virt_to_phys(pool: *mut gen_pool, addr: c_ulong) -> phys_addr_t {
    // SAFETY: see the function's contract.
    let Some(p) = (unsafe { pool_ref(pool, "gen_pool_virt_to_phys") }) else {
        return u64::MAX;
    };
    p.pool.virt_to_phys(addr as usize).unwrap_or(u64::MAX)
}

/// `gen_pool_avail(pool)`: bytes not allocated.
///
/// # Safety
/// `pool` is NULL or a live pool from `gen_pool_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_avail(pool: *mut gen_pool) -> usize {
    // SAFETY: see the function's contract.
    unsafe { pool_ref(pool, "gen_pool_avail") }.map_or(0, |p| p.pool.avail())
}

/// `gen_pool_size(pool)`: bytes in all chunks.
///
/// # Safety
/// `pool` is NULL or a live pool from `gen_pool_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_size(pool: *mut gen_pool) -> usize {
    // SAFETY: see the function's contract.
    unsafe { pool_ref(pool, "gen_pool_size") }.map_or(0, |p| p.pool.size())
}

/// `gen_pool_min_alloc_order(pool)` (an extra): log2 of the granule, or -1.
///
/// # Safety
/// `pool` is NULL or a live pool from `gen_pool_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_min_alloc_order(pool: *mut gen_pool) -> c_int {
    // SAFETY: see the function's contract.
    unsafe { pool_ref(pool, "gen_pool_min_alloc_order") }
        .map_or(-1, |p| p.pool.min_alloc_order() as c_int)
}

/// `gen_pool_set_algo(pool, algo, data)`: NULL means first fit.
///
/// # Safety
/// `pool` is NULL or a live pool; `algo` is NULL or a genpool_algo_t taking
/// `data`, and `data` stays valid while it is the pool's algorithm.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_set_algo(
    pool: *mut gen_pool,
    algo: genpool_algo_t,
    data: *mut c_void,
) {
    // SAFETY: see the function's contract.
    let Some(p) = (unsafe { pool_ref(pool, "gen_pool_set_algo") }) else {
        return;
    };
    p.data.store(data, Ordering::Release);
    p.algo
        .store(algo.map_or(0, |f| f as usize), Ordering::Release);
}

/// `gen_pool_has_addr(pool, start, size)`: whether the range lies in one chunk.
///
/// # Safety
/// `pool` is NULL or a live pool from `gen_pool_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_has_addr(
    pool: *mut gen_pool,
    start: c_ulong,
    size: usize,
) -> bool {
    // SAFETY: see the function's contract.
    unsafe { pool_ref(pool, "gen_pool_has_addr") }
        .is_some_and(|p| p.pool.has_addr(start as usize, size))
}

/// `gen_pool_for_each_chunk(pool, func, data)`: calls `func(pool, chunk, data)`
/// for every chunk, newest first.
///
/// # Safety
/// `pool` is NULL or a live pool; `func` is a valid callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_for_each_chunk(
    pool: *mut gen_pool,
    func: gen_pool_chunk_fn,
    data: *mut c_void,
) {
    // SAFETY: see the function's contract.
    let Some(p) = (unsafe { pool_ref(pool, "gen_pool_for_each_chunk") }) else {
        return;
    };
    let Some(f) = func else {
        kmem_report!("gen_pool_for_each_chunk(pool {pool:p}): NULL callback");
        return;
    };
    for c in p.pool.chunks() {
        // SAFETY: the callback gets a chunk that lives as long as the pool.
        unsafe { f(pool, c.as_ptr() as *mut gen_pool_chunk, data) };
    }
}

#[inline]
unsafe fn chunk<'a>(c: *mut gen_pool_chunk) -> Option<ChunkRef<'a>> {
    // SAFETY: the caller passes a chunk from gen_pool_for_each_chunk of a live pool.
    (!c.is_null()).then(|| unsafe { ChunkRef::from_ptr(c as *const ()) })
}

/// First address of a chunk (an extra; the kernel's `chunk->start_addr`).
///
/// # Safety
/// `c` is NULL or a chunk passed to a `gen_pool_for_each_chunk` callback, of a live pool.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_chunk_start(c: *mut gen_pool_chunk) -> c_ulong {
    // SAFETY: see the function's contract.
    unsafe { chunk(c) }.map_or(0, |c| c.start_addr() as c_ulong)
}

/// Last address of a chunk (inclusive; `chunk->end_addr`).
///
/// # Safety
/// As `gen_pool_chunk_start`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_chunk_end(c: *mut gen_pool_chunk) -> c_ulong {
    // SAFETY: see the function's contract.
    unsafe { chunk(c) }.map_or(0, |c| c.end_addr() as c_ulong)
}

/// Physical address of a chunk's start (`chunk->phys_addr`; -1 if none).
///
/// # Safety
/// As `gen_pool_chunk_start`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_chunk_phys(c: *mut gen_pool_chunk) -> phys_addr_t {
    // SAFETY: see the function's contract.
    unsafe { chunk(c) }.map_or(u64::MAX, |c| c.phys_addr())
}

/// Bytes of a chunk not allocated (`chunk->avail`).
///
/// # Safety
/// As `gen_pool_chunk_start`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gen_pool_chunk_avail(c: *mut gen_pool_chunk) -> usize {
    // SAFETY: see the function's contract.
    unsafe { chunk(c) }.map_or(0, |c| c.avail())
}

/// Runs one of kmem's algorithms over a raw C bitmap, as C code calling
/// `gen_pool_first_fit(map, ...)` directly expects.
// The seven arguments of genpool_algo_t, plus which algorithm and its name.
#[allow(clippy::too_many_arguments)]
unsafe fn run_algo(
    name: &str,
    algo: Option<Algo<'static>>,
    map: *mut c_ulong,
    size: c_ulong,
    start: c_ulong,
    nr: c_uint,
    pool: *mut gen_pool,
    start_addr: c_ulong,
) -> c_ulong {
    if map.is_null() {
        kmem_report!("{name}: NULL bitmap");
        return size;
    }
    let Some(algo) = algo else { return size };
    let order = if pool.is_null() {
        0
    } else {
        // SAFETY: a non-NULL pool is live.
        unsafe { (*pool).pool.min_alloc_order() }
    };
    if algo.validate(1 << order).is_err() || nr == 0 {
        return size;
    }
    let words = (size as usize).div_ceil(64);
    // SAFETY: the caller passes a bitmap of `size` bits; unsigned long and
    // AtomicU64 share size and alignment on LP64.
    let words = unsafe { core::slice::from_raw_parts(map as *const AtomicU64, words) };
    let bitmap = Bitmap::new(words, size as usize);
    let ctx = ChunkCtx {
        start_addr: start_addr as usize,
        min_alloc_order: order,
    };
    algo.find_linear(&bitmap, start as usize, nr as usize, &ctx)
        .map_or(size, |b| b as c_ulong)
}

macro_rules! c_algo {
    ($(#[$doc:meta])* $name:ident, |$data:ident| $make:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// `map` holds `size` bits; `data` is what the algorithm needs; `pool` is NULL or live.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            map: *mut c_ulong,
            size: c_ulong,
            start: c_ulong,
            nr: c_uint,
            data: *mut c_void,
            pool: *mut gen_pool,
            start_addr: c_ulong,
        ) -> c_ulong {
            let $data = data;
            let algo: Option<Algo<'static>> = $make;
            // SAFETY: the function's contract is passed on.
            unsafe { run_algo(stringify!($name), algo, map, size, start, nr, pool, start_addr) }
        }
    };
}

c_algo!(
    /// `gen_pool_first_fit`: the first free run that fits.
    gen_pool_first_fit, |_d| Some(Algo::FirstFit)
);
c_algo!(
    /// `gen_pool_first_fit_align`: first fit at an address aligned to
    /// `((struct genpool_data_align *)data)->align`.
    gen_pool_first_fit_align,
    |d| if d.is_null() {
        kmem_report!("gen_pool_first_fit_align: NULL genpool_data_align");
        None
    } else {
        // SAFETY: `data` is a genpool_data_align for this algorithm.
        let align = unsafe { (*d.cast::<genpool_data_align>()).align };
        Some(Algo::FirstFitAlign { align: usize::try_from(align).unwrap_or(0) })
    }
);
c_algo!(
    /// `gen_pool_first_fit_order_align`: first fit aligned to the size rounded up to a power of two.
    gen_pool_first_fit_order_align, |_d| Some(Algo::FirstFitOrderAlign)
);
c_algo!(
    /// `gen_pool_best_fit`: the smallest free run that fits.
    gen_pool_best_fit, |_d| Some(Algo::BestFit)
);
c_algo!(
    /// `gen_pool_worst_fit` (an extra): the largest free run.
    gen_pool_worst_fit, |_d| Some(Algo::WorstFit)
);
c_algo!(
    /// `gen_pool_fixed_alloc`: exactly at `((struct genpool_data_fixed *)data)->offset` in a chunk.
    gen_pool_fixed_alloc,
    |d| if d.is_null() {
        kmem_report!("gen_pool_fixed_alloc: NULL genpool_data_fixed");
        None
    } else {
        // SAFETY: `data` is a genpool_data_fixed for this algorithm.
        Some(Algo::Fixed { offset: unsafe { (*d.cast::<genpool_data_fixed>()).offset } as usize })
    }
);
