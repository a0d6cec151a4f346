//! `kmalloc`, `kfree`, `ksize`, `krealloc`: the hot paths and the large path.
//!
//! Requests of 1 to 8192 bytes go to the slab cache of their class (the
//! cache's per-thread array cache is the fast path). Larger requests take a
//! block of `2^order` pages marked [`PageKind::Large`]; above the largest
//! order (4 MiB) a mapping of their own ([`PageAllocator::alloc_huge`]).
//! `kfree` needs no size: the page descriptor of the address says whether it
//! is a slab object (its owner word names the cache) or a large block.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use kmem_page::{BlockRef, Gfp, MAX_PAGE_ORDER, PageKind};
use kmem_platform::kmem_report;

use crate::KmallocError;
use crate::caches::{KMALLOC_TAG, caches, caches_if_ready};
use crate::class::{
    KMALLOC_MAX_CACHE_SIZE, KMALLOC_NAMES, get_order, size_class, size_class_aligned,
};

/// What `kmalloc(0)` returns (Linux's `ZERO_SIZE_PTR`, `(void *)16`): not
/// NULL, so callers do not take it for a failure, but never dereferenceable.
/// `kfree` and `ksize` accept it.
///
/// ```
/// use kmem_kmalloc::{ZERO_SIZE_PTR, kmalloc};
/// assert_eq!(kmalloc(0, kmem_page::Gfp::KERNEL).unwrap().as_ptr(), ZERO_SIZE_PTR);
/// ```
pub const ZERO_SIZE_PTR: *mut u8 = 16 as *mut u8;

/// Whether `p` is NULL or [`ZERO_SIZE_PTR`] (Linux `ZERO_OR_NULL_PTR`).
///
/// ```
/// assert!(kmem_kmalloc::zero_or_null_ptr(core::ptr::null()));
/// assert!(kmem_kmalloc::zero_or_null_ptr(kmem_kmalloc::ZERO_SIZE_PTR));
/// ```
#[inline(always)]
pub fn zero_or_null_ptr(p: *const u8) -> bool {
    p as usize <= ZERO_SIZE_PTR as usize
}

/// The largest alignment kmem can give (a huge mapping's, 4 MiB).
pub const KMALLOC_MAX_ALIGN: usize = kmem_page::REGION_SIZE;

/// Counters of the large path (the classes' counters are their slabinfo rows).
pub(crate) struct LargeCounters {
    pub(crate) allocs: AtomicUsize,
    pub(crate) frees: AtomicUsize,
    pub(crate) bytes: AtomicUsize,
    pub(crate) huge_allocs: AtomicUsize,
    pub(crate) huge_frees: AtomicUsize,
    pub(crate) huge_bytes: AtomicUsize,
    pub(crate) failures: AtomicUsize,
    pub(crate) bad_frees: AtomicUsize,
    /// Bytes of every large block and huge mapping handed out (never falls).
    pub(crate) bytes_total: AtomicUsize,
    /// The most bytes in large blocks and huge mappings at once.
    pub(crate) peak: AtomicUsize,
}

impl LargeCounters {
    /// Counts `n` bytes handed out on the large path and raises the peak.
    fn count_bytes(&self, live: &AtomicUsize, n: usize) {
        live.fetch_add(n, Ordering::Relaxed);
        self.bytes_total.fetch_add(n, Ordering::Relaxed);
        let now = self.bytes.load(Ordering::Relaxed) + self.huge_bytes.load(Ordering::Relaxed);
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
}

pub(crate) static LARGE: LargeCounters = LargeCounters {
    allocs: AtomicUsize::new(0),
    frees: AtomicUsize::new(0),
    bytes: AtomicUsize::new(0),
    huge_allocs: AtomicUsize::new(0),
    huge_frees: AtomicUsize::new(0),
    huge_bytes: AtomicUsize::new(0),
    failures: AtomicUsize::new(0),
    bad_frees: AtomicUsize::new(0),
    bytes_total: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

/// Allocates `size` bytes (`kmalloc`). `size == 0` gives [`ZERO_SIZE_PTR`].
/// Objects of a power-of-two class are aligned to their size; every object
/// is aligned to at least 8 bytes (16 from 16 bytes on). With [`Gfp::ZERO`]
/// the memory is zeroed.
///
/// ```
/// use kmem_kmalloc::{kfree, kmalloc, ksize};
/// use kmem_page::Gfp;
/// let p = kmalloc(100, Gfp::KERNEL)?;
/// assert_eq!(ksize(p.as_ptr())?, 128);
/// assert_eq!(p.as_ptr() as usize % 128, 0);
/// // SAFETY: `p` came from kmalloc and is not used again.
/// unsafe { kfree(p.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
#[inline(always)]
#[track_caller]
pub fn kmalloc(size: usize, gfp: Gfp) -> Result<NonNull<u8>, KmallocError> {
    let r = kmalloc_notrace(size, gfp);
    crate::trace::trace_kmalloc!(size, r, gfp);
    r
}

/// [`kmalloc`] without its trace event.
#[inline]
#[track_caller]
fn kmalloc_notrace(size: usize, gfp: Gfp) -> Result<NonNull<u8>, KmallocError> {
    if size.wrapping_sub(1) < KMALLOC_MAX_CACHE_SIZE {
        let c = &caches()?[size_class(size)];
        return c
            .alloc_notrace(gfp)
            .map_err(|_| KmallocError::NoMemory { size });
    }
    kmalloc_large(size, gfp)
}

/// [`kmalloc`]'s fast path alone: an object of the class for `size` from
/// the calling thread's array cache, or `None` for anything more (a size of
/// 0 or above the classes, the caches not made yet, an empty array, a debug
/// cache) — then call [`kmalloc`]. It calls nothing, so a hot path built on
/// it (the malloc replacement's `malloc`) saves no registers; it raises no
/// trace event (callers that trace go through `kmalloc`).
///
/// ```
/// use kmem_kmalloc::{kfree, kmalloc, kmalloc_fast};
/// let p = kmalloc_fast(100).map_or_else(|| kmalloc(100, kmem_page::Gfp::KERNEL), Ok).unwrap();
/// unsafe { kfree(p.as_ptr()).unwrap() };
/// assert!(kmalloc_fast(0).is_none());
/// ```
#[inline(always)]
pub fn kmalloc_fast(size: usize) -> Option<NonNull<u8>> {
    if size.wrapping_sub(1) >= KMALLOC_MAX_CACHE_SIZE || cfg!(feature = "trace") {
        return None;
    }
    caches_if_ready()?[size_class(size)].alloc_fast()
}

/// Zero, or above the classes.
#[cold]
#[inline(never)]
fn kmalloc_large(size: usize, gfp: Gfp) -> Result<NonNull<u8>, KmallocError> {
    if size == 0 {
        // SAFETY: 16 is not 0.
        return Ok(unsafe { NonNull::new_unchecked(ZERO_SIZE_PTR) });
    }
    alloc_pages(size, gfp)
}

/// What kmalloc writes into the owner word of its large blocks' head page
/// descriptors. Other layers mark blocks `PageKind::Large` too (the region
/// pool's large blocks carry its pool id there), so `kfree` and `ksize` only
/// take a large block whose owner word is this tag.
static LARGE_TAG: u8 = 0;

#[inline]
fn large_tag() -> usize {
    &LARGE_TAG as *const u8 as usize
}

/// Whether `b` is a large block of kmalloc's own (not of another layer).
#[inline]
fn is_kmalloc_large(b: &BlockRef) -> bool {
    b.desc.kind() == PageKind::Large && b.desc.owner() == large_tag()
}

/// Marks a freshly allocated large block as kmalloc's.
fn tag_large(p: NonNull<u8>) {
    if let Some(b) = kmem_page::lookup_block(p.as_ptr() as usize) {
        b.desc.set_owner(large_tag());
    }
}

/// A large allocation: a block of the order that holds `size` (aligned to
/// its own size), or a huge mapping (aligned to 4 MiB) above the largest order.
fn alloc_pages(size: usize, gfp: Gfp) -> Result<NonNull<u8>, KmallocError> {
    let pages = kmem_page::global();
    let order = get_order(size);
    let r = if order <= MAX_PAGE_ORDER {
        pages.alloc_kind(order, gfp, PageKind::Large).inspect(|&p| {
            tag_large(p);
            LARGE.allocs.fetch_add(1, Ordering::Relaxed);
            LARGE.count_bytes(&LARGE.bytes, kmem_platform::PAGE_SIZE << order);
        })
    } else if size > isize::MAX as usize {
        Err(kmem_page::PageError::TooLarge { size })
    } else {
        pages.alloc_huge(size, gfp).inspect(|&p| {
            tag_large(p);
            LARGE.huge_allocs.fetch_add(1, Ordering::Relaxed);
            LARGE.count_bytes(
                &LARGE.huge_bytes,
                size.next_multiple_of(kmem_platform::PAGE_SIZE),
            );
        })
    };
    r.map_err(|e| {
        LARGE.failures.fetch_add(1, Ordering::Relaxed);
        if !gfp.nowarn() {
            kmem_report!("kmalloc({size}): out of memory ({e})");
        }
        KmallocError::NoMemory { size }
    })
}

/// Allocates `size` bytes aligned to `align` (a power of two up to 4 MiB):
/// the first class whose objects all have that alignment, else a page block
/// (blocks are aligned to their size). What [`Kmalloc`](crate::Kmalloc)
/// and `posix_memalign` use.
///
/// ```
/// use kmem_kmalloc::{kfree, kmalloc_aligned};
/// use kmem_page::Gfp;
/// let p = kmalloc_aligned(100, 4096, Gfp::KERNEL)?;
/// assert_eq!(p.as_ptr() as usize % 4096, 0);
/// unsafe { kfree(p.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
#[inline]
#[track_caller]
pub fn kmalloc_aligned(size: usize, align: usize, gfp: Gfp) -> Result<NonNull<u8>, KmallocError> {
    if !align.is_power_of_two() || align > KMALLOC_MAX_ALIGN {
        return Err(KmallocError::BadAlign { align });
    }
    if align <= 8 {
        return kmalloc(size.max(1), gfp);
    }
    let r = match size_class_aligned(size, align) {
        Some(c) => caches()?[c]
            .alloc_notrace(gfp)
            .map_err(|_| KmallocError::NoMemory { size }),
        None => alloc_pages(size.max(align), gfp),
    };
    crate::trace::trace_kmalloc!(size, r, gfp);
    r
}

/// Frees what [`kmalloc`] returned (`kfree`); no size is needed: the page
/// descriptor of `p` names its cache, or says it is a large block. NULL and
/// [`ZERO_SIZE_PTR`] are no-ops. A pointer kmalloc never handed out — not
/// kmem memory, another cache's object, a page block, an interior pointer,
/// a double free — is refused with a report, and nothing changes.
///
/// ```
/// use kmem_kmalloc::{kfree, kmalloc, KmallocError};
/// let p = kmalloc(20000, kmem_page::Gfp::KERNEL)?;
/// unsafe {
///     kfree(p.as_ptr())?;
///     assert!(kfree(p.as_ptr()).is_err()); // double free: refused, reported
///     kfree(core::ptr::null())?;          // NULL: nothing to do
/// }
/// # Ok::<(), KmallocError>(())
/// ```
///
/// # Safety
///
/// If `p` is a live kmalloc allocation, nothing may use it afterwards.
#[inline(always)]
#[track_caller]
pub unsafe fn kfree(p: *const u8) -> Result<(), KmallocError> {
    crate::trace::trace_kfree!(p);
    let addr = p as usize;
    if addr <= ZERO_SIZE_PTR as usize {
        return Ok(());
    }
    if let Some(d) = kmem_page::lookup_fast(addr) {
        // SAFETY: `addr` is non-null; the cache refuses anything that is not
        // an allocated object of it; the caller gives it up.
        let r = unsafe {
            kmem_slab::free_tagged(NonNull::new_unchecked(addr as *mut u8), d, KMALLOC_TAG)
        };
        if let Some(r) = r {
            return r.map_err(|e| KmallocError::from_slab_free(e, addr));
        }
    }
    // SAFETY: passed on.
    unsafe { kfree_slow(addr) }
}

/// [`kfree`]'s fast path alone: `true` if `p` was an object at the start of
/// an order-0..n slab page of a kmalloc cache and went onto the calling
/// thread's array; `false` for anything more (NULL or `ZERO_SIZE_PTR`, a
/// later page of a slab, a large block, a full array, a debug cache, a bad
/// pointer) — then call [`kfree`], which frees or refuses and reports. It
/// calls nothing, so a hot path built on it (the malloc replacement's `free`)
/// saves no registers; no trace event.
///
/// ```
/// use kmem_kmalloc::{kfree, kfree_fast, kmalloc};
/// let p = kmalloc(64, kmem_page::Gfp::KERNEL).unwrap();
/// unsafe {
///     if !kfree_fast(p.as_ptr()) {
///         kfree(p.as_ptr()).unwrap();
///     }
///     assert!(!kfree_fast(p.as_ptr()), "a double free is left to kfree");
///     assert!(kfree(p.as_ptr()).is_err());
/// }
/// ```
///
/// # Safety
///
/// As for [`kfree`].
#[inline(always)]
pub unsafe fn kfree_fast(p: *const u8) -> bool {
    let addr = p as usize;
    if addr <= ZERO_SIZE_PTR as usize || cfg!(feature = "trace") {
        return false;
    }
    match kmem_page::lookup_fast(addr) {
        // SAFETY: `addr` is non-null; the cache refuses anything that is not
        // an allocated object of it; the caller gives it up.
        Some(d) => unsafe {
            kmem_slab::free_tagged_fast(NonNull::new_unchecked(addr as *mut u8), d, KMALLOC_TAG)
        },
        None => false,
    }
}

/// The rest of `kfree`: an object in a slab's later page, a large block, or
/// a pointer to refuse.
///
/// # Safety
/// As for [`kfree`].
#[cold]
#[inline(never)]
#[track_caller]
unsafe fn kfree_slow(addr: usize) -> Result<(), KmallocError> {
    let Some(b) = kmem_page::lookup_block(addr) else {
        return Err(bad_free_unmapped(addr));
    };
    // SAFETY: as in `kfree`.
    if let Some(r) = unsafe {
        kmem_slab::free_tagged(NonNull::new_unchecked(addr as *mut u8), b.desc, KMALLOC_TAG)
    } {
        return r.map_err(|e| KmallocError::from_slab_free(e, addr));
    }
    // SAFETY: passed on.
    unsafe { kfree_large(addr, b) }
}

/// The free of a large block, or the report of a pointer that is kmem
/// memory but no kmalloc object.
///
/// # Safety
/// As for [`kfree`].
#[cold]
#[inline(never)]
unsafe fn kfree_large(addr: usize, b: BlockRef) -> Result<(), KmallocError> {
    if !is_kmalloc_large(&b) {
        return Err(bad_free_kind(addr, b));
    }
    if b.addr != addr {
        LARGE.bad_frees.fetch_add(1, Ordering::Relaxed);
        kmem_report!(
            "kfree: {addr:#x} points {} bytes into the large kmalloc block at {:#x}",
            addr - b.addr,
            b.addr
        );
        return Err(KmallocError::Interior {
            addr,
            object: b.addr,
        });
    }
    let pages = kmem_page::global();
    // SAFETY: `addr` heads an allocated Large block; the caller gives it up.
    let p = unsafe { NonNull::new_unchecked(addr as *mut u8) };
    let r = if b.order > MAX_PAGE_ORDER {
        // SAFETY: as above: a huge mapping made by `alloc_pages`.
        unsafe { pages.free_huge(p) }.map(|size| {
            LARGE.huge_frees.fetch_add(1, Ordering::Relaxed);
            LARGE.huge_bytes.fetch_sub(size, Ordering::Relaxed);
        })
    } else {
        // SAFETY: as above: an order-`b.order` Large block.
        unsafe { pages.free_kind(p, b.order, PageKind::Large) }.map(|()| {
            LARGE.frees.fetch_add(1, Ordering::Relaxed);
            LARGE.bytes.fetch_sub(b.size, Ordering::Relaxed);
        })
    };
    r.map_err(|e| {
        // Two threads freeing the same block at once: the page layer refuses the second.
        LARGE.bad_frees.fetch_add(1, Ordering::Relaxed);
        kmem_report!("kfree: {addr:#x}: the page layer refused it: {e}");
        KmallocError::NotAllocated { addr }
    })
}

#[cold]
#[inline(never)]
fn bad_free_unmapped(addr: usize) -> KmallocError {
    LARGE.bad_frees.fetch_add(1, Ordering::Relaxed);
    if kmem_page::is_kmem(addr) {
        kmem_report!("kfree: double free of {addr:#x} (the memory is free: not allocated)");
        KmallocError::NotAllocated { addr }
    } else {
        kmem_report!("kfree: {addr:#x} is not memory kmem manages (not from kmalloc)");
        KmallocError::NotKmem { addr }
    }
}

#[cold]
#[inline(never)]
fn bad_free_kind(addr: usize, b: BlockRef) -> KmallocError {
    LARGE.bad_frees.fetch_add(1, Ordering::Relaxed);
    let kind = b.desc.kind();
    if kind == PageKind::Slab && b.desc.owner() != 0 {
        let owner = b.desc.owner();
        let named = kmem_slab::KmemCache::with_raw(owner as *mut core::ffi::c_void, |c| {
            kmem_report!(
                "kfree: {addr:#x} is an object of slab cache {}, not of kmalloc (use kmem_cache_free)",
                c.name()
            );
        });
        if named.is_none() {
            kmem_report!("kfree: {addr:#x} is in a slab of another cache, not of kmalloc");
        }
    } else {
        kmem_report!(
            "kfree: {addr:#x} is in a block of {} pages at {:#x}, not from kmalloc",
            kind.name(),
            b.addr
        );
    }
    KmallocError::NotKmalloc { addr, kind }
}

/// The usable size of a kmalloc allocation (`ksize`): its class's size, or
/// its block's. All of it may be used. NULL and [`ZERO_SIZE_PTR`] give 0. A
/// pointer that is not the start of a kmalloc allocation is refused with a
/// report.
///
/// ```
/// use kmem_kmalloc::{kmalloc, ksize};
/// let p = kmalloc(9000, kmem_page::Gfp::KERNEL)?;
/// assert_eq!(ksize(p.as_ptr())?, 16384);
/// assert_eq!(ksize(core::ptr::null())?, 0);
/// # unsafe { kmem_kmalloc::kfree(p.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
#[inline]
pub fn ksize(p: *const u8) -> Result<usize, KmallocError> {
    let addr = p as usize;
    if addr <= ZERO_SIZE_PTR as usize {
        return Ok(0);
    }
    let Some(b) = kmem_page::lookup_block(addr) else {
        return Err(bad_ksize(addr, None));
    };
    match b.desc.kind() {
        PageKind::Slab => match kmem_slab::tagged_object_size(b.desc, KMALLOC_TAG) {
            Some(size) => Ok(size),
            None => Err(bad_ksize(addr, Some(b))),
        },
        PageKind::Large if b.addr == addr && is_kmalloc_large(&b) => Ok(b.size),
        _ => Err(bad_ksize(addr, Some(b))),
    }
}

#[cold]
#[inline(never)]
fn bad_ksize(addr: usize, b: Option<BlockRef>) -> KmallocError {
    match b {
        None => {
            kmem_report!(
                "ksize: {addr:#x} is not an allocation of kmalloc (not kmem memory, or free)"
            );
            if kmem_page::is_kmem(addr) {
                KmallocError::NotAllocated { addr }
            } else {
                KmallocError::NotKmem { addr }
            }
        }
        Some(b) if is_kmalloc_large(&b) => {
            kmem_report!(
                "ksize: {addr:#x} points {} bytes into the large kmalloc block at {:#x}",
                addr - b.addr,
                b.addr
            );
            KmallocError::Interior {
                addr,
                object: b.addr,
            }
        }
        Some(b) => {
            kmem_report!(
                "ksize: {addr:#x} is kmem memory ({}) but not from kmalloc",
                b.desc.kind().name()
            );
            KmallocError::NotKmalloc {
                addr,
                kind: b.desc.kind(),
            }
        }
    }
}

/// The name of the cache that serves `size`-byte requests, or `None` above the classes.
///
/// ```
/// assert_eq!(kmem_kmalloc::cache_name(100), Some("kmalloc-128"));
/// assert_eq!(kmem_kmalloc::cache_name(10000), None);
/// ```
pub fn cache_name(size: usize) -> Option<&'static str> {
    (1..=KMALLOC_MAX_CACHE_SIZE)
        .contains(&size)
        .then(|| KMALLOC_NAMES[size_class(size)])
}

/// Resizes an allocation (`krealloc`). It stays where it is when `new_size`
/// fits its bucket ([`ksize`]) — except that a large block more than four
/// times the new size moves to a smaller one, so that shrinking gives memory
/// back; otherwise the contents move to a new allocation and the old one is
/// freed. NULL or [`ZERO_SIZE_PTR`] allocate; `new_size == 0` frees and
/// gives [`ZERO_SIZE_PTR`]. On failure the old allocation is untouched.
///
/// ```
/// use kmem_kmalloc::{kmalloc, krealloc, ksize};
/// use kmem_page::Gfp;
/// let p = kmalloc(10, Gfp::KERNEL)?;
/// unsafe {
///     p.as_ptr().write(42);
///     let q = krealloc(p.as_ptr(), 16, Gfp::KERNEL)?;
///     assert_eq!(q, p);                      // fits kmalloc-16: in place
///     let r = krealloc(q.as_ptr(), 5000, Gfp::KERNEL)?;
///     assert_eq!(*r.as_ptr(), 42);           // moved, contents kept
///     kmem_kmalloc::kfree(r.as_ptr())?;
/// }
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
///
/// # Safety
///
/// `p` is NULL, [`ZERO_SIZE_PTR`] or a live kmalloc allocation; if this
/// returns a different pointer, `p` is freed and may not be used again.
#[track_caller]
pub unsafe fn krealloc(p: *mut u8, new_size: usize, gfp: Gfp) -> Result<NonNull<u8>, KmallocError> {
    if zero_or_null_ptr(p) {
        return kmalloc(new_size, gfp);
    }
    let old = ksize(p)?;
    if new_size == 0 {
        // SAFETY: per the contract.
        unsafe { kfree(p)? };
        // SAFETY: 16 is not 0.
        return Ok(unsafe { NonNull::new_unchecked(ZERO_SIZE_PTR) });
    }
    if new_size <= old && (old <= KMALLOC_MAX_CACHE_SIZE || new_size > old / 4) {
        if gfp.zero() {
            // SAFETY: bytes `new_size..old` are part of the allocation.
            unsafe { core::ptr::write_bytes(p.add(new_size), 0, old - new_size) };
        }
        // SAFETY: `p` is not null.
        return Ok(unsafe { NonNull::new_unchecked(p) });
    }
    let q = kmalloc(new_size, gfp)?;
    // SAFETY: both are live allocations of at least `min(old, new_size)`
    // bytes; a fresh allocation never overlaps a live one.
    unsafe {
        core::ptr::copy_nonoverlapping(p, q.as_ptr(), old.min(new_size));
        kfree(p)?;
    }
    Ok(q)
}
