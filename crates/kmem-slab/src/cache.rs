//! `kmem_cache`: creating a cache (size and alignment rounding, the slab
//! order, colouring, the tunables), the allocation and free paths, bulk
//! calls, shrinking and destroying.

use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use kmem_page::{Gfp, MAX_PAGE_ORDER, PageKind};
use kmem_platform::{CACHE_LINE, PAGE_SIZE, kmem_report};

use crate::cpu_cache::{self, ArrayCache, Entry};
use crate::list::CACHES;
use crate::node::{DestroyList, Node};
use crate::pool::FixedPool;
use crate::slab::{OBJ_ALLOCATED, OBJ_FREE, Slab, mgmt_size};
use crate::{SlabError, SlabFlags, SlabPages};

/// The largest object a cache holds: one object in a block of the largest order.
pub const MAX_OBJECT_SIZE: usize = PAGE_SIZE << MAX_PAGE_ORDER;
/// The most objects in one slab (object indices are `u16`).
pub const SLAB_OBJ_MAX_NUM: usize = u16::MAX as usize;
/// kmem keeps to the 1/8 waste rule up to this order (`PAGE_ALLOC_COSTLY_ORDER`);
/// beyond it, the least wasteful order seen is taken.
pub const SLAB_MAX_ORDER: u32 = 3;
/// The longest cache name kept (longer names are cut at a character boundary).
pub const NAME_MAX: usize = 63;
/// XORed into a cache descriptor's address in its page descriptor's owner word:
/// how a `struct kmem_cache *` from C is recognised in O(1).
const CACHE_MAGIC: usize = 0x6b6d_656d_6361_6368; // "kmemcach"

/// A constructor stored in the cache descriptor's block.
pub(crate) struct Ctor {
    call: unsafe fn(*const u8, *mut u8),
    drop: unsafe fn(*mut u8),
    data: *mut u8,
}

impl Ctor {
    /// Runs the constructor on `obj`.
    ///
    /// # Safety
    /// `obj` is an object of the cache whose descriptor holds this constructor.
    #[inline]
    pub(crate) unsafe fn call(&self, obj: *mut u8) {
        // SAFETY: `data` points at the closure `call` was made for.
        unsafe { (self.call)(self.data, obj) }
    }
}

/// The `memo_bytes` of a cache of `num` objects of `size` bytes: the
/// slab's `num * size` if, with `recip = ceil(2^32 / size)`, every offset
/// `off < num * size` satisfies
///
/// * `(off * recip) >> 32 == off / size` (the index), and
/// * `(off * recip) mod 2^32 < recip` exactly when `off % size == 0`
///
/// (so one multiply and one compare find the index and refuse interior
/// pointers); else 0. Proof: write `size * recip = 2^32 + e` (`0 <= e <
/// size`) and `off = q * size + r`; then `off * recip = q * 2^32 + q * e + r *
/// recip`. The low half is `L = q * e + r * recip` as long as `L < 2^32`; for
/// `r = 0` it is `q * e`, below `recip` if `(num - 1) * e < recip`; for `r >=
/// 1` it is at least `recip`. Both conditions are checked here with
/// `q <= num - 1`, `r <= size - 1`.
pub(crate) fn memo_bytes(size: usize, num: usize) -> usize {
    let size = size as u128;
    let recip = (1u128 << 32).div_ceil(size);
    let e = size * recip - (1u128 << 32);
    let q = (num as u128).saturating_sub(1);
    if recip < (1 << 32) && q * e < recip && q * e + (size - 1) * recip < (1 << 32) {
        num * size as usize
    } else {
        0
    }
}

/// A cache's descriptor (Linux `struct kmem_cache`), in a page block of its
/// own page allocator, followed by the shared array and the constructor.
#[repr(C)]
pub(crate) struct CacheInner {
    /// Index into every thread's array-cache table. Fixed while the cache lives.
    pub(crate) id: u32,
    /// The front end's tag ([`CacheBuilder::tag`]); 0: none. Fixed.
    pub(crate) tag: u32,
    /// Object size after rounding for alignment (Linux `size`): the stride of objects.
    pub(crate) size: u32,
    /// `ceil(2^32 / size)`: object index = `(offset * recip) >> 32` (Linux's reciprocal divide).
    pub(crate) recip: u64,
    /// Objects per slab. Fixed.
    pub(crate) num: u32,
    /// Slab order: a slab is `2^order` pages. Fixed.
    pub(crate) order: u32,
    /// Bytes of a slab's objects: `num * size`.
    pub(crate) slab_bytes: usize,
    /// `slab_bytes` where the free fast path may tell an object's start by the
    /// low half of `offset * recip` alone ([`memo_bytes`]), else 0 (no offset
    /// passes: such caches — objects of tens of KiB — check every free
    /// through the page descriptor). Fixed.
    pub(crate) memo_bytes: usize,
    /// `!(slab block size - 1)`: a slab's block address from any address in it
    /// (blocks are aligned to their size).
    pub(crate) slab_mask: usize,
    /// Bumped before any slab of the cache is destroyed: invalidates the
    /// per-thread memos of validated slabs.
    pub(crate) slab_gen: AtomicUsize,
    /// Per-thread array capacity (SLAB's tunables by size).
    pub(crate) limit: u32,
    /// Objects moved per refill or flush: `(limit + 1) / 2`.
    pub(crate) batchcount: u32,
    /// Shared array factor: the shared array holds `shared * batchcount`.
    pub(crate) shared: u32,
    /// Number of colours: `left_over / colour_off`.
    pub(crate) colour: u32,
    /// Colour step: the cache line, or the alignment if larger.
    pub(crate) colour_off: u32,
    /// Size the user asked for (`kmem_cache_size`).
    pub(crate) object_size: u32,
    /// Alignment of objects.
    pub(crate) align: u32,
    /// Bytes at a slab's end that no object uses (before colouring).
    pub(crate) left_over: u32,
    /// Creation flags, with the debug flags the global configuration added
    /// (and `POISON` dropped if there is a constructor).
    pub(crate) flags: SlabFlags,
    /// Where each object's red zones and tracking records lie (all zero
    /// without debug flags). A cache with `debug.on()` has `limit == 0`: no
    /// per-thread or shared array, so every call takes the slow path, where
    /// the checks run. Fixed.
    pub(crate) debug: crate::debug::DebugLayout,
    /// Where slabs come from.
    pub(crate) pages: &'static dyn SlabPages,
    /// Runs on every object when its slab is created.
    pub(crate) ctor: Option<Ctor>,
    /// Runs on every object when its slab is destroyed (typed caches only).
    pub(crate) dtor: Option<unsafe fn(*mut u8)>,
    /// The node: slab lists and the shared array.
    pub(crate) node: Node,
    /// Off-slab management areas (`mgmt_size(num)` bytes each).
    pub(crate) mgmt: FixedPool,
    /// Slabs taken off the node but not yet destroyed: `destroy` waits for 0.
    pub(crate) pending: AtomicUsize,
    /// Order of the descriptor's block.
    desc_order: u32,
    name: [u8; NAME_MAX],
    name_len: u8,
    /// Links in the cache list. Under the CACHES lock.
    pub(crate) list_next: UnsafeCell<*mut CacheInner>,
    pub(crate) list_prev: UnsafeCell<*mut CacheInner>,
    /// The array caches of the seated threads, one per seat, kept in the
    /// descriptor itself (see `cpu_cache`'s "Seats"): a seated thread's fast
    /// path finds its array at `seats + its seat's offset`, with no load on
    /// the way to the array's address. Whole cache lines each (the seat's
    /// thread writes its array on every operation; other threads read the
    /// fields above). A seat's array is closed (zeroed: empty, bounds `0 /
    /// 0`, both fast paths fail) until its thread's first slow path for this
    /// cache builds it, and closed again (`FastBounds::close`) when it is
    /// freed.
    pub(crate) seats: cpu_cache::SeatArrays,
}

// SAFETY: mutable state is behind the node lock, the pool lock, atomics, or the
// CACHES lock (list links); the constructor is Send + Sync (checked at creation).
unsafe impl Sync for CacheInner {}
// SAFETY: as above.
unsafe impl Send for CacheInner {}

/// How a cache is laid out, computed from its size, alignment and flags
/// (Linux `__kmem_cache_create` + `calculate_slab_order` + `enable_cpucache`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheGeometry {
    /// Object stride after rounding.
    pub size: usize,
    /// Object alignment.
    pub align: usize,
    /// Slab order.
    pub order: u32,
    /// Objects per slab.
    pub num: usize,
    /// Unused bytes per slab.
    pub left_over: usize,
    /// Colour step.
    pub colour_off: usize,
    /// Number of colours.
    pub colour: usize,
    /// Per-thread array capacity.
    pub limit: u32,
    /// Refill / flush batch.
    pub batchcount: u32,
    /// Shared array factor.
    pub shared: u32,
}

impl CacheGeometry {
    /// Computes the geometry of a cache of `size`-byte objects.
    ///
    /// ```
    /// use kmem_slab::{CacheGeometry, SlabFlags};
    /// let g = CacheGeometry::compute(100, 0, SlabFlags::HWCACHE_ALIGN, 2).unwrap();
    /// assert_eq!(g.size, 128);          // rounded to the cache line
    /// assert_eq!((g.order, g.num), (0, 32));
    /// assert_eq!((g.limit, g.batchcount, g.shared), (120, 60, 8));
    /// ```
    pub fn compute(
        size: usize,
        align: usize,
        flags: SlabFlags,
        nr_cpus: usize,
    ) -> Result<Self, SlabError> {
        if size == 0 || size > MAX_OBJECT_SIZE {
            return Err(SlabError::BadSize { size });
        }
        let object_size = size;
        if align != 0 && (!align.is_power_of_two() || align > PAGE_SIZE) {
            return Err(SlabError::BadAlign { align });
        }
        let word = core::mem::size_of::<usize>();
        let mut size = size.next_multiple_of(word);
        // calculate_alignment(): cache-line alignment, halved while two objects fit.
        let mut align = align.max(word);
        if flags.contains(SlabFlags::HWCACHE_ALIGN) {
            let mut ralign = CACHE_LINE;
            while size <= ralign / 2 {
                ralign /= 2;
            }
            align = align.max(ralign);
        }
        size = size.next_multiple_of(align);
        // Debug caches: red zones and tracking records around each object
        // (crate::debug), and no per-thread caching (limit 0, below).
        let debug = crate::debug::DebugLayout::compute(object_size, align, flags);
        if debug.on() {
            size = debug.stride.max(size);
            if size > MAX_OBJECT_SIZE {
                return Err(SlabError::BadSize { size });
            }
        }
        let colour_off = CACHE_LINE.max(align);
        let (order, num, left_over) =
            calculate_slab_order(size).ok_or(SlabError::BadSize { size })?;
        // enable_cpucache(): the tunables by object size.
        let limit = if debug.on() {
            0
        } else if size > 131072 {
            1
        } else if size > PAGE_SIZE {
            8
        } else if size > 1024 {
            24
        } else if size > 256 {
            54
        } else {
            120
        };
        let shared = if size <= PAGE_SIZE && nr_cpus > 1 && !debug.on() {
            8
        } else {
            0
        };
        Ok(CacheGeometry {
            size,
            align,
            order,
            num,
            left_over,
            colour_off,
            colour: left_over / colour_off,
            limit,
            batchcount: limit.div_ceil(2).max(1),
            shared,
        })
    }
}

/// Linux `calculate_slab_order` with the management area off-slab: the first
/// order whose unused tail is at most 1/8 of the slab; past
/// [`SLAB_MAX_ORDER`], the least wasteful order seen. Returns
/// `(order, num, left_over)`.
fn calculate_slab_order(size: usize) -> Option<(u32, usize, usize)> {
    let mut best: Option<(u32, usize, usize)> = None;
    for order in 0..=MAX_PAGE_ORDER {
        let bytes = PAGE_SIZE << order;
        let num = (bytes / size).min(SLAB_OBJ_MAX_NUM);
        if num == 0 {
            continue;
        }
        let left = bytes - num * size;
        let better = match best {
            None => true,
            // Compare waste fractions: left / bytes.
            Some((bo, _, bl)) => {
                (left as u128) * ((PAGE_SIZE as u128) << bo) < (bl as u128) * (bytes as u128)
            }
        };
        if better {
            best = Some((order, num, left));
        }
        if left * 8 <= bytes {
            return Some((order, num, left));
        }
        if order >= SLAB_MAX_ORDER {
            return best;
        }
    }
    best
}

/// A slab cache: objects of one size, handed out from per-thread array caches
/// over slabs of `2^order` pages. The raw interface: addresses in and out.
///
/// Creating one is Linux's `kmem_cache_create`; dropping it is
/// `kmem_cache_destroy` (see [`destroy`](KmemCache::destroy) for what happens
/// when objects are still in use).
///
/// ```
/// use kmem_slab::{KmemCache, SlabFlags};
/// use kmem_page::Gfp;
/// let cache = KmemCache::builder("task_struct", 200).flags(SlabFlags::HWCACHE_ALIGN).create()?;
/// let p = cache.alloc(Gfp::KERNEL)?;
/// assert_eq!(p.as_ptr() as usize % 64, 0);
/// // SAFETY: `p` came from this cache and is not used again.
/// unsafe { cache.free(p)? };
/// # Ok::<(), kmem_slab::SlabError>(())
/// ```
pub struct KmemCache {
    /// A live descriptor, owned by this handle.
    inner: NonNull<CacheInner>,
    /// A copy of the descriptor's `id` (one dependent load less on the fast paths).
    id: u32,
}

// SAFETY: every operation on the descriptor is thread-safe (see `CacheInner`).
unsafe impl Send for KmemCache {}
// SAFETY: as above.
unsafe impl Sync for KmemCache {}

/// Builds a [`KmemCache`]: name and size, then optional alignment, flags,
/// constructor and page allocator.
///
/// ```
/// use core::ptr::NonNull;
/// use kmem_slab::KmemCache;
/// let c = KmemCache::builder("ones", 16)
///     .align(16)
///     .ctor(|p: NonNull<u8>| unsafe { p.as_ptr().write_bytes(1, 16) })
///     .create()
///     .unwrap();
/// let o = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
/// // SAFETY: a 16-byte object fresh from the cache.
/// assert_eq!(unsafe { *o.as_ptr().add(15) }, 1);
/// unsafe { c.free(o).unwrap() };
/// ```
pub struct CacheBuilder<'n, F = fn(NonNull<u8>)> {
    name: &'n str,
    size: usize,
    align: usize,
    flags: SlabFlags,
    pages: Option<&'static dyn SlabPages>,
    ctor: Option<F>,
    dtor: Option<unsafe fn(*mut u8)>,
    tag: u32,
}

impl<'n> CacheBuilder<'n> {
    /// A cache of `size`-byte objects called `name`.
    pub fn new(name: &'n str, size: usize) -> Self {
        CacheBuilder {
            name,
            size,
            align: 0,
            flags: SlabFlags::empty(),
            pages: None,
            ctor: None,
            dtor: None,
            tag: 0,
        }
    }
}

impl<'n, F: Fn(NonNull<u8>) + Send + Sync + 'static> CacheBuilder<'n, F> {
    /// Objects aligned to `align` (a power of two up to a page; 0 = word).
    pub fn align(mut self, align: usize) -> Self {
        self.align = align;
        self
    }
    /// Creation flags.
    pub fn flags(mut self, flags: SlabFlags) -> Self {
        self.flags = flags;
        self
    }
    /// Turns on debug checks for this cache (the debug bits of `flags`:
    /// [`SlabFlags::CONSISTENCY_CHECKS`], [`SlabFlags::RED_ZONE`],
    /// [`SlabFlags::POISON`], [`SlabFlags::STORE_USER`]; see [`crate::debug`]),
    /// on top of its other flags and of the global configuration.
    ///
    /// ```
    /// use kmem_slab::{KmemCache, SlabFlags};
    /// let c = KmemCache::builder("builder_debug", 32).debug(SlabFlags::RED_ZONE).create().unwrap();
    /// assert!(c.flags().contains(SlabFlags::RED_ZONE));
    /// assert_eq!(c.geometry().limit, 0, "debug caches take the slow path");
    /// ```
    pub fn debug(mut self, flags: SlabFlags) -> Self {
        self.flags = self.flags | flags.intersection(SlabFlags::DEBUG_ALL);
        self
    }
    /// Take slabs from `pages` instead of [`kmem_page::global()`].
    pub fn pages(mut self, pages: &'static dyn SlabPages) -> Self {
        self.pages = Some(pages);
        self
    }
    /// The constructor: runs once on every object when its slab is created,
    /// never when an object is reused (objects go back to the cache in
    /// constructed state).
    pub fn ctor<G: Fn(NonNull<u8>) + Send + Sync + 'static>(self, ctor: G) -> CacheBuilder<'n, G> {
        CacheBuilder {
            name: self.name,
            size: self.size,
            align: self.align,
            flags: self.flags,
            pages: self.pages,
            ctor: Some(ctor),
            dtor: self.dtor,
            tag: self.tag,
        }
    }
    /// A tag (non-zero) that a front end puts on its caches, so that
    /// [`free_tagged`] can free an object into whichever of them owns it
    /// from one page-descriptor lookup (kmalloc's `kfree`). 0: none.
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::builder("tagged", 64).tag(7).create().unwrap();
    /// assert_eq!(c.tag(), 7);
    /// ```
    pub fn tag(mut self, tag: u32) -> Self {
        self.tag = tag;
        self
    }
    /// Runs on every object when its slab is destroyed (the typed cache drops its `T`s).
    pub(crate) fn dtor(mut self, dtor: unsafe fn(*mut u8)) -> Self {
        self.dtor = Some(dtor);
        self
    }

    /// Creates the cache (`kmem_cache_create`).
    pub fn create(self) -> Result<KmemCache, SlabError> {
        let mut flags = self.flags | crate::debug::global_flags_for(self.name);
        if self.ctor.is_some() {
            // Free objects of a cache with a constructor hold constructed
            // state: never poisoned (as in SLUB).
            flags = flags.without(SlabFlags::POISON);
        }
        let g =
            CacheGeometry::compute(self.size, self.align, flags, kmem_platform::cpu::nr_cpus())?;
        let debug = crate::debug::DebugLayout::compute(self.size, g.align, flags);
        let pages = self.pages.unwrap_or_else(crate::backend::global_pages);
        crate::reap::register_shrinker_once();

        // The descriptor block: CacheInner, the shared array, the constructor.
        let shared_limit = g.shared * g.batchcount;
        let shared_off = core::mem::size_of::<CacheInner>().next_multiple_of(64);
        let ctor_align = core::mem::align_of::<F>().max(16);
        let ctor_off = (shared_off + ArrayCache::bytes(shared_limit)).next_multiple_of(ctor_align);
        let total = ctor_off + core::mem::size_of::<F>();
        let mut desc_order = 0;
        while (PAGE_SIZE << desc_order) < total {
            desc_order += 1;
            if desc_order > MAX_PAGE_ORDER {
                return Err(SlabError::BadSize { size: total });
            }
        }
        let block = pages
            .alloc_block(desc_order, Gfp::KERNEL, PageKind::Pages)
            .ok_or(SlabError::NoMemory)?;
        let base = block.as_ptr();
        let inner = base.cast::<CacheInner>();
        // SAFETY: the block is fresh, big enough for everything placed in it
        // (computed above), page-aligned, and ours.
        unsafe {
            let shared = if shared_limit > 0 {
                ArrayCache::init(base.add(shared_off), shared_limit, g.batchcount, inner)
            } else {
                ptr::null_mut()
            };
            let ctor = self.ctor.map(|f| {
                let data = base.add(ctor_off);
                data.cast::<F>().write(f);
                unsafe fn call<F: Fn(NonNull<u8>)>(data: *const u8, obj: *mut u8) {
                    // SAFETY: `data` holds an `F` (written at creation); `obj` is non-null.
                    unsafe { (*data.cast::<F>())(NonNull::new_unchecked(obj)) }
                }
                unsafe fn drop_f<F>(data: *mut u8) {
                    // SAFETY: `data` holds an `F`, dropped once at destroy.
                    unsafe { ptr::drop_in_place(data.cast::<F>()) }
                }
                Ctor {
                    call: call::<F>,
                    drop: drop_f::<F>,
                    data,
                }
            });
            let mut name = [0u8; NAME_MAX];
            let mut len = self.name.len().min(NAME_MAX);
            while !self.name.is_char_boundary(len) {
                len -= 1;
            }
            name[..len].copy_from_slice(&self.name.as_bytes()[..len]);
            let free_limit = (1 + kmem_platform::cpu::nr_cpus()) * g.batchcount as usize + g.num;
            inner.write(CacheInner {
                id: u32::MAX,
                tag: self.tag,
                size: g.size as u32,
                recip: (1u64 << 32).div_ceil(g.size as u64),
                num: g.num as u32,
                order: g.order,
                slab_bytes: g.num * g.size,
                memo_bytes: memo_bytes(g.size, g.num),
                slab_mask: !((PAGE_SIZE << g.order) - 1),
                slab_gen: AtomicUsize::new(1),
                limit: g.limit,
                batchcount: g.batchcount,
                shared: g.shared,
                colour: g.colour as u32,
                colour_off: g.colour_off as u32,
                object_size: self.size as u32,
                align: g.align as u32,
                left_over: g.left_over as u32,
                flags,
                debug,
                pages,
                ctor,
                dtor: self.dtor,
                node: Node::new(free_limit, shared),
                mgmt: FixedPool::new(mgmt_size(g.num)),
                pending: AtomicUsize::new(0),
                desc_order,
                name,
                name_len: len as u8,
                list_next: UnsafeCell::new(ptr::null_mut()),
                list_prev: UnsafeCell::new(ptr::null_mut()),
                seats: cpu_cache::SeatArrays::new(),
            });
        }
        {
            let mut list = CACHES.lock();
            let Some(id) = list.alloc_id() else {
                drop(list);
                // SAFETY: the descriptor was never published.
                unsafe { free_descriptor(inner) };
                return Err(SlabError::TooManyCaches);
            };
            // SAFETY: not yet shared with anyone.
            unsafe { (*inner).id = id };
            list.push(inner);
        }
        if let Some(b) = kmem_page::lookup_block(base as usize) {
            b.desc.set_owner(base as usize ^ CACHE_MAGIC);
        }
        crate::debug::cache_created(flags);
        Ok(KmemCache {
            // SAFETY: `inner` is non-null (from a block).
            inner: unsafe { NonNull::new_unchecked(inner) },
            // SAFETY: set above, fixed from now on.
            id: unsafe { (*inner).id },
        })
    }
}

/// Frees a descriptor block: drops the constructor, clears the magic.
///
/// # Safety
/// `inner` is an unlisted descriptor that nothing refers to.
unsafe fn free_descriptor(inner: *mut CacheInner) {
    // SAFETY: per the contract.
    unsafe {
        let pages = (*inner).pages;
        let order = (*inner).desc_order;
        if let Some(c) = (*inner).ctor.take() {
            (c.drop)(c.data);
        }
        if let Some(b) = kmem_page::lookup_block(inner as usize) {
            b.desc.set_owner(0);
        }
        ptr::drop_in_place(inner);
        pages.free_block(NonNull::new_unchecked(inner.cast()), order, PageKind::Pages);
    }
}

impl CacheInner {
    /// The cache's name.
    pub(crate) fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len as usize]).unwrap_or("?")
    }

    /// Checks a pointer given to `free` and marks it free: it must be the
    /// start of an allocated object of this cache. Found through the page
    /// descriptor in O(1); refused with a report otherwise.
    #[cfg_attr(not(loom), allow(dead_code))]
    #[inline]
    pub(crate) fn check_free(&self, addr: usize) -> Result<Entry, SlabError> {
        self.check_free_slab(addr).map(|(e, _)| e)
    }

    /// [`check_free`](Self::check_free), also returning the object's slab.
    #[inline]
    pub(crate) fn check_free_slab(&self, addr: usize) -> Result<(Entry, *const Slab), SlabError> {
        let Some(b) = kmem_page::lookup_block(addr) else {
            return Err(self.bad_free(addr, None));
        };
        let Some((st, s)) = self.resolve(addr, b.desc) else {
            return Err(self.bad_free(addr, Some(b)));
        };
        // SAFETY: `resolve` gives the state byte of an object of a live slab.
        let st = unsafe { &*st };
        if st.load(Ordering::Relaxed) != OBJ_ALLOCATED {
            return Err(self.bad_free(addr, Some(b)));
        }
        st.store(OBJ_FREE, Ordering::Relaxed);
        Ok((
            Entry {
                obj: addr as *mut u8,
                state: st,
            },
            s,
        ))
    }

    /// Resolves `addr` through `desc`, the head page descriptor of the block
    /// it lies in, to the state byte of the object it starts and that
    /// object's slab. `None` unless the block is a slab of this cache and
    /// `addr` the first byte of one of its objects. Lock-free: the owner word
    /// and the slab pointer are read from the descriptor.
    #[inline]
    pub(crate) fn resolve(
        &self,
        addr: usize,
        desc: &kmem_page::PageDesc,
    ) -> Option<(*const AtomicU8, *const Slab)> {
        if desc.owner() != self as *const CacheInner as usize || desc.kind() != PageKind::Slab {
            return None;
        }
        // SAFETY: the owner word names this cache, so `private` is one of our
        // live slabs and `aux` its colour offset (both set before the owner
        // word, cleared before the slab is freed).
        unsafe { self.resolve_in(addr, desc.private() as *const Slab, desc.aux()) }
    }

    /// The second half of [`resolve`](Self::resolve): the state byte of the
    /// object `addr` starts in slab `s`, whose objects start `colour_off`
    /// bytes into its block, if it starts one. Reads nothing of the slab:
    /// the block is `addr & slab_mask` (slabs are aligned to their size) and
    /// the state bytes sit at a fixed offset in the management area. One
    /// multiply and two compares where [`memo_bytes`] allows (every usual
    /// cache); the others, and pointers that fail, take `resolve_exact`.
    ///
    /// # Safety
    ///
    /// `s` is a live slab of this cache and `colour_off` its colour offset.
    #[inline(always)]
    pub(crate) unsafe fn resolve_in(
        &self,
        addr: usize,
        s: *const Slab,
        colour_off: u32,
    ) -> Option<(*const AtomicU8, *const Slab)> {
        // SAFETY: passed on.
        if let Some(st) = unsafe { self.resolve_fast(addr, s, colour_off) } {
            return Some((st, s));
        }
        let off = addr.wrapping_sub((addr & self.slab_mask) + colour_off as usize);
        // SAFETY: passed on.
        unsafe { self.resolve_exact(s, off) }
    }

    /// [`resolve_in`](Self::resolve_in)'s one-multiply test alone: the state
    /// byte, or `None` if the test does not pass (the pointer is not an
    /// object's start, or the cache does not allow the test) — then
    /// `resolve_in` decides.
    ///
    /// # Safety
    ///
    /// As for `resolve_in`.
    #[inline(always)]
    pub(crate) unsafe fn resolve_fast(
        &self,
        addr: usize,
        s: *const Slab,
        colour_off: u32,
    ) -> Option<*const AtomicU8> {
        let s_mem = (addr & self.slab_mask) + colour_off as usize;
        let off = addr.wrapping_sub(s_mem);
        let m = (off as u64).wrapping_mul(self.recip);
        if off < self.memo_bytes && (m as u32) < (self.recip as u32) {
            // SAFETY: `s` is a live slab of this cache (`num` objects), and
            // the index is below `num` (see `memo_bytes`).
            Some(unsafe { Slab::state_in(s, self.num as usize, (m >> 32) as usize) })
        } else {
            None
        }
    }

    /// [`resolve_in`](Self::resolve_in) by division: for caches whose
    /// `memo_bytes` is 0, and to refuse what the fast test refused.
    ///
    /// # Safety
    ///
    /// As for `resolve_in`; `off` is the address minus the slab's `s_mem`.
    #[cold]
    #[inline(never)]
    unsafe fn resolve_exact(
        &self,
        s: *const Slab,
        off: usize,
    ) -> Option<(*const AtomicU8, *const Slab)> {
        let idx = off / self.size as usize;
        if off >= self.slab_bytes || idx * self.size as usize != off {
            return None;
        }
        // SAFETY: `s` is a live slab of this cache (`num` objects), and
        // `idx < num` (off < num * size).
        let st = unsafe { Slab::state_in(s, self.num as usize, idx) };
        Some((st, s))
    }

    /// Works out and reports why `addr` cannot be freed into this cache.
    #[cold]
    #[inline(never)]
    fn bad_free(&self, addr: usize, b: Option<kmem_page::BlockRef>) -> SlabError {
        let name = self.name();
        let Some(b) = b else {
            kmem_report!("kmem_cache_free({name}): {addr:#x} is not memory kmem manages");
            return SlabError::NotKmem { addr };
        };
        if b.desc.owner() != self as *const CacheInner as usize || b.desc.kind() != PageKind::Slab {
            if b.desc.kind() == PageKind::Slab && b.desc.owner() != 0 {
                // SAFETY: a slab page's owner word is its live cache.
                let other = unsafe { (*(b.desc.owner() as *const CacheInner)).name() };
                kmem_report!(
                    "kmem_cache_free({name}): {addr:#x} belongs to cache {other}, not {name}"
                );
            } else {
                kmem_report!(
                    "kmem_cache_free({name}): {addr:#x} is not a slab object ({} pages)",
                    b.desc.kind().name()
                );
            }
            return SlabError::WrongCache { addr };
        }
        let s = b.desc.private() as *const Slab;
        // SAFETY: as in `check_free`.
        let s_mem = unsafe { (*s).s_mem };
        if addr < s_mem || addr - s_mem >= self.slab_bytes {
            kmem_report!(
                "kmem_cache_free({name}): {addr:#x} is in a slab of {name} but outside its objects"
            );
            return SlabError::Interior {
                addr,
                object: s_mem,
            };
        }
        let idx = (addr - s_mem) / self.size as usize;
        let object = s_mem + idx * self.size as usize;
        if object != addr {
            kmem_report!(
                "kmem_cache_free({name}): {addr:#x} points {} bytes into the object at {object:#x}",
                addr - object
            );
            return SlabError::Interior { addr, object };
        }
        kmem_report!(
            "kmem_cache_free({name}): double free of {addr:#x} (the object is not allocated)"
        );
        SlabError::NotAllocated { addr }
    }

    /// The allocation slow path (Linux `cache_alloc_refill`): refill the
    /// thread's array from the shared array or the slabs, growing the cache
    /// when both are empty.
    ///
    /// A debug cache never has an array: its allocations go to
    /// [`crate::debug`] (the caller's location is recorded with `U`).
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub(crate) fn alloc_slow(&self, gfp: Gfp) -> Result<NonNull<u8>, SlabError> {
        if self.debug.on() {
            return crate::debug::alloc(self, gfp, core::panic::Location::caller());
        }
        let p = loop {
            let r = cpu_cache::with_own_array(self, |ac| {
                // SAFETY: the array is ours (thread lock held).
                unsafe {
                    let refill = (*ac).avail == 0;
                    if refill {
                        let mut n = self.node.lists.lock();
                        self.refill_locked(&mut n, ac);
                    }
                    if (*ac).avail == 0 {
                        return None;
                    }
                    (*ac).avail -= 1;
                    (*ac).touched = 1;
                    let e = *ArrayCache::entry(ac, (*ac).avail);
                    (*e.state).store(OBJ_ALLOCATED, Ordering::Relaxed);
                    let st = &(*ac).stat;
                    if refill {
                        st.allocmiss.inc()
                    } else {
                        st.allochit.count()
                    }
                    Some(e.obj)
                }
            });
            match r {
                Some(Some(p)) => break p,
                Some(None) => {
                    if let Err(e) = self.grow(gfp) {
                        self.count_error();
                        if !gfp.nowarn() {
                            kmem_report!(
                                "kmem_cache_alloc({}): out of memory (order {})",
                                self.name(),
                                self.order
                            );
                        }
                        return Err(e);
                    }
                }
                None => break self.node_alloc_one(gfp)?,
            }
        };
        if gfp.zero() {
            // SAFETY: a fresh object of `object_size` bytes, ours.
            unsafe { ptr::write_bytes(p, 0, self.object_size as usize) };
        }
        // SAFETY: objects are never at address 0.
        Ok(unsafe { NonNull::new_unchecked(p) })
    }

    /// The free slow path: checks `addr` through its page descriptor
    /// (refusing bad pointers), remembers its slab in the thread's memo, and
    /// pushes it; if the array is full, `batchcount` of its oldest objects
    /// first go to the shared array or their slabs (Linux `cache_flusharray`).
    ///
    /// Frees into a debug cache go to [`crate::debug`].
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub(crate) fn free_slow(&self, addr: usize) -> Result<(), SlabError> {
        if self.debug.on() {
            return crate::debug::free(self, addr, core::panic::Location::caller());
        }
        let slab_gen = self.slab_gen.load(Ordering::Acquire);
        let (e, s) = self.check_free_slab(addr)?;
        let mut destroy = DestroyList::new();
        let r = cpu_cache::with_own_array(self, |ac| {
            // SAFETY: the array is ours (thread lock held).
            unsafe {
                if (*ac).avail >= (*ac).limit {
                    self.flusharray(ac, &mut destroy);
                    (*ac).stat.freemiss.inc();
                } else {
                    (*ac).stat.freehit.count();
                }
                *ArrayCache::entry(ac, (*ac).avail) = e;
                (*ac).avail += 1;
                (*ac).memo_s_mem = (*s).s_mem;
                (*ac).memo_state = Slab::state(s, 0);
                (*ac).memo_gen = slab_gen;
            }
        });
        if r.is_none() {
            self.node_free_one(e);
        }
        destroy.run();
        Ok(())
    }

    /// Drains every thread's array for this cache and the shared array, then
    /// releases every free slab (`kmem_cache_shrink`). Returns slabs freed.
    pub(crate) fn shrink(&self, drop_arrays: bool) -> usize {
        let mut destroy = DestroyList::new();
        cpu_cache::for_each_thread_exclusive(|t| {
            let slot = &t.slots[self.id as usize];
            let ac = slot.load(Ordering::Relaxed);
            if !ac.is_null() {
                // SAFETY: `t` is frozen (or is us) and its lock is held: the array is ours.
                unsafe {
                    self.node_flush_all(ac, &mut destroy);
                    if drop_arrays {
                        slot.store(ptr::null_mut(), Ordering::Relaxed);
                        cpu_cache::free_array(ac);
                    }
                }
            }
        });
        {
            let mut n = self.node.lists.lock();
            let sh = n.shared;
            if !sh.is_null() {
                // SAFETY: the shared array is ours under the node lock.
                unsafe { self.drain_array_locked(&mut n, sh, true, &mut destroy) };
            }
            self.drain_freelist(&mut n, usize::MAX, &mut destroy);
        }
        destroy.run()
    }

    /// Objects held by users or array caches: `total_slabs * num - free_objects`.
    pub(crate) fn active_objects(&self) -> usize {
        let n = self.node.lists.lock();
        n.total_slabs * self.num as usize - n.free_objects
    }
}

impl KmemCache {
    /// A cache of `size`-byte objects aligned to `align` (0: word), over
    /// [`kmem_page::global()`], no flags, no constructor.
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("dentry", 192, 0).unwrap();
    /// assert_eq!(c.object_size(), 192);
    /// ```
    pub fn new(name: &str, size: usize, align: usize) -> Result<KmemCache, SlabError> {
        CacheBuilder::new(name, size).align(align).create()
    }

    /// A builder for a cache with flags, a constructor or other pages.
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::builder("inode_cache", 600).create().unwrap();
    /// assert_eq!(c.name(), "inode_cache");
    /// ```
    pub fn builder(name: &str, size: usize) -> CacheBuilder<'_> {
        CacheBuilder::new(name, size)
    }

    #[inline(always)]
    pub(crate) fn inner(&self) -> &CacheInner {
        // SAFETY: the handle owns a live descriptor.
        unsafe { self.inner.as_ref() }
    }

    /// Allocates an object (`kmem_cache_alloc`). The fast path pops the
    /// calling thread's array cache: no lock, no atomic read-modify-write.
    /// With [`Gfp::ZERO`] the object is zeroed.
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("x", 32, 0).unwrap();
    /// let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
    /// unsafe { c.free(p).unwrap() };
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn alloc(&self, gfp: Gfp) -> Result<NonNull<u8>, SlabError> {
        let r = self.alloc_notrace(gfp);
        crate::trace::trace_kmem_cache_alloc!(self.inner(), r, gfp);
        r
    }

    /// [`alloc`](Self::alloc) without the `kmem_cache_alloc` trace event
    /// (Linux `kmem_cache_alloc_notrace`): for layers that emit their own
    /// event, as kmalloc does. The same as `alloc` without the `trace` feature.
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("notrace", 32, 0).unwrap();
    /// let p = c.alloc_notrace(kmem_page::Gfp::KERNEL).unwrap();
    /// unsafe { c.free_notrace(p).unwrap() };
    /// ```
    #[inline]
    #[track_caller]
    pub fn alloc_notrace(&self, gfp: Gfp) -> Result<NonNull<u8>, SlabError> {
        let c = self.inner();
        if let Some(p) = cpu_cache::fast_alloc(c, self.id) {
            if gfp.zero() {
                // SAFETY: a fresh object of `object_size` bytes.
                unsafe { ptr::write_bytes(p, 0, c.object_size as usize) };
            }
            // SAFETY: objects are never at address 0.
            return Ok(unsafe { NonNull::new_unchecked(p) });
        }
        c.alloc_slow(gfp)
    }

    /// The allocation fast path alone: an object from the calling thread's
    /// array cache, or `None` when that needs the slow path (empty array,
    /// none yet, a debug cache, the thread frozen or exiting) — then call
    /// [`alloc`](Self::alloc). For front ends that keep their own hot path
    /// free of calls (a function that calls nothing saves no registers):
    /// the malloc replacement's `malloc`. Raises no trace event (like
    /// [`alloc_notrace`](Self::alloc_notrace)): such front ends raise their own.
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("fast", 32, 0).unwrap();
    /// let p = match c.alloc_fast() {
    ///     Some(p) => p,
    ///     None => c.alloc(kmem_page::Gfp::KERNEL).unwrap(), // the first call fills the array
    /// };
    /// unsafe { c.free(p).unwrap() };
    /// assert!(c.alloc_fast().is_some(), "the array holds objects now");
    /// # unsafe { c.free(c.alloc(kmem_page::Gfp::KERNEL).unwrap()).unwrap() };
    /// ```
    #[inline(always)]
    pub fn alloc_fast(&self) -> Option<NonNull<u8>> {
        let p = cpu_cache::fast_alloc(self.inner(), self.id)?;
        // SAFETY: objects are never at address 0.
        Some(unsafe { NonNull::new_unchecked(p) })
    }

    /// Allocates a zeroed object (`kmem_cache_zalloc`).
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("z", 64, 0).unwrap();
    /// let p = c.zalloc(kmem_page::Gfp::KERNEL).unwrap();
    /// assert!(unsafe { core::slice::from_raw_parts(p.as_ptr(), 64) }.iter().all(|&b| b == 0));
    /// unsafe { c.free(p).unwrap() };
    /// ```
    #[track_caller]
    pub fn zalloc(&self, gfp: Gfp) -> Result<NonNull<u8>, SlabError> {
        self.alloc(gfp | Gfp::ZERO)
    }

    /// Frees an object (`kmem_cache_free`). A pointer this cache did not hand
    /// out — foreign memory, another cache's object, an interior pointer, an
    /// object already freed — is refused with a report naming the cache, and
    /// nothing changes.
    ///
    /// Double frees are caught by a state byte per object, kept off-slab and
    /// written with plain atomic stores (no read-modify-write): every free
    /// that follows the object's previous free with no allocation in between
    /// is refused, as is a free of an object the cache never handed out.
    /// Not caught: two threads freeing the same object at the same instant
    /// (both may pass the load before either stores), and a stale pointer
    /// freed after the object was handed out again (that frees the new
    /// owner's object — a use-after-free no allocator can tell from a free).
    ///
    /// The fast path checks the pointer against a per-thread memo of the last
    /// slab it validated through the page descriptors (invalidated whenever a
    /// slab of the cache is destroyed); other pointers take the slow path,
    /// which looks their page descriptor up.
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("f", 48, 0).unwrap();
    /// let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
    /// unsafe {
    ///     c.free(p).unwrap();
    ///     assert!(c.free(p).is_err(), "double free refused");
    /// }
    /// ```
    ///
    /// # Safety
    ///
    /// If `p` is an allocated object of this cache, nothing may use it after
    /// this call.
    #[inline(always)]
    #[track_caller]
    pub unsafe fn free(&self, p: NonNull<u8>) -> Result<(), SlabError> {
        crate::trace::trace_kmem_cache_free!(self.inner(), p);
        // SAFETY: passed on from our caller.
        unsafe { self.free_notrace(p) }
    }

    /// [`free`](Self::free) without the `kmem_cache_free` trace event: for
    /// layers that emit their own (kmalloc's `kfree`).
    ///
    /// # Safety
    ///
    /// As for [`free`](Self::free).
    #[inline]
    #[track_caller]
    pub unsafe fn free_notrace(&self, p: NonNull<u8>) -> Result<(), SlabError> {
        let c = self.inner();
        if cpu_cache::fast_free(c, self.id, p.as_ptr() as usize) {
            return Ok(());
        }
        c.free_slow(p.as_ptr() as usize)
    }

    /// Fills all of `out` with objects, or none (`kmem_cache_alloc_bulk`).
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("b", 64, 0).unwrap();
    /// let mut v = [core::ptr::null_mut(); 100];
    /// c.alloc_bulk(kmem_page::Gfp::KERNEL, &mut v).unwrap();
    /// assert_eq!(unsafe { c.free_bulk(&v) }, 100);
    /// ```
    #[track_caller]
    pub fn alloc_bulk(&self, gfp: Gfp, out: &mut [*mut u8]) -> Result<(), SlabError> {
        for i in 0..out.len() {
            match self.alloc(gfp) {
                Ok(p) => out[i] = p.as_ptr(),
                Err(e) => {
                    for &p in &out[..i] {
                        // SAFETY: allocated just above, never handed out.
                        let _ = unsafe { self.free(NonNull::new_unchecked(p)) };
                    }
                    out[..i].fill(ptr::null_mut());
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Frees every object of `objs` (`kmem_cache_free_bulk`); bad pointers
    /// are reported and skipped. Returns how many were freed.
    ///
    /// # Safety
    ///
    /// As for [`free`](Self::free), for each pointer.
    #[track_caller]
    pub unsafe fn free_bulk(&self, objs: &[*mut u8]) -> usize {
        let mut n = 0;
        for &p in objs {
            if let Some(p) = NonNull::new(p) {
                // SAFETY: per the contract.
                if unsafe { self.free(p) }.is_ok() {
                    n += 1;
                }
            }
        }
        n
    }

    /// Releases every free slab now (`kmem_cache_shrink`), after draining every
    /// thread's array cache and the shared array. Returns the slabs released.
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("s", 64, 0).unwrap();
    /// let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
    /// unsafe { c.free(p).unwrap() };
    /// assert_eq!(c.shrink(), 1);
    /// assert_eq!(c.info().num_slabs, 0);
    /// ```
    pub fn shrink(&self) -> usize {
        self.inner().shrink(false)
    }

    /// Destroys the cache (`kmem_cache_destroy`). Every thread's array cache
    /// is drained first. If objects are still in use, the cache is kept (its
    /// objects stay valid and it stays usable), a report names the cache and
    /// the count, and the handle comes back with [`SlabError::Busy`].
    ///
    /// ```
    /// use kmem_slab::{KmemCache, SlabError};
    /// let c = KmemCache::new("d", 64, 0).unwrap();
    /// let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
    /// let (c, err) = c.destroy().unwrap_err();
    /// assert_eq!(err, SlabError::Busy { live: 1 });
    /// unsafe { c.free(p).unwrap() };
    /// c.destroy().map_err(|(_, e)| e).unwrap();
    /// ```
    pub fn destroy(self) -> Result<(), (KmemCache, SlabError)> {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: the handle owns the descriptor; on success it is gone and
        // the handle is not dropped; on failure we hand the handle back.
        match unsafe { destroy_inner(this.inner.as_ptr()) } {
            Ok(()) => Ok(()),
            Err(e) => Err((core::mem::ManuallyDrop::into_inner(this), e)),
        }
    }

    /// The cache's name.
    pub fn name(&self) -> &str {
        self.inner().name()
    }
    /// The cache's tag ([`CacheBuilder::tag`]; 0: none).
    ///
    /// ```
    /// assert_eq!(kmem_slab::KmemCache::new("untagged", 8, 0).unwrap().tag(), 0);
    /// ```
    pub fn tag(&self) -> u32 {
        self.inner().tag
    }
    /// The object size asked for (`kmem_cache_size`).
    pub fn object_size(&self) -> usize {
        self.inner().object_size as usize
    }
    /// The object stride after rounding (slabinfo's `objsize`).
    pub fn size(&self) -> usize {
        self.inner().size as usize
    }
    /// Object alignment.
    pub fn align(&self) -> usize {
        self.inner().align as usize
    }
    /// The creation flags.
    pub fn flags(&self) -> SlabFlags {
        self.inner().flags
    }
    /// The cache's geometry (order, num, colours, tunables).
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("g", 256, 0).unwrap();
    /// assert_eq!(c.geometry().num, 16);
    /// ```
    pub fn geometry(&self) -> CacheGeometry {
        let c = self.inner();
        CacheGeometry {
            size: c.size as usize,
            align: c.align as usize,
            order: c.order,
            num: c.num as usize,
            left_over: c.left_over as usize,
            colour_off: c.colour_off as usize,
            colour: c.colour as usize,
            limit: c.limit,
            batchcount: c.batchcount,
            shared: c.shared,
        }
    }
    /// The cache's slabinfo row.
    pub fn info(&self) -> crate::SlabInfo {
        crate::info::slabinfo_of(self.inner())
    }
    /// Objects held by users or array caches (slabinfo's `active_objs`).
    pub fn active_objects(&self) -> usize {
        self.inner().active_objects()
    }
    /// Checks the node's lists and counters; returns the first inconsistency.
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("chk", 64, 0).unwrap();
    /// c.check().unwrap();
    /// ```
    pub fn check(&self) -> Result<(), &'static str> {
        self.inner().check()
    }

    /// Walks every slab of the cache and reports every corruption (Linux's
    /// `validate_slab_cache`): with red zones, a free object's must be
    /// `0xbb` and an allocated one's `0xcc`; with poison, free objects must
    /// still hold it; on any cache, the slab lists must agree with their
    /// counters. Each corruption gets a `BUG <cache>: ...` report and is
    /// repaired. Returns how many were found.
    ///
    /// ```
    /// use kmem_slab::{KmemCache, SlabFlags};
    /// let c = KmemCache::builder("validate_doc", 32).debug(SlabFlags::POISON).create()?;
    /// let p = c.alloc(kmem_page::Gfp::KERNEL)?;
    /// unsafe { c.free(p)? };
    /// // SAFETY: a write after free, on purpose (the memory stays mapped).
    /// unsafe { p.as_ptr().write(1) };
    /// let (n, reports) = kmem_platform::diag::capture(|| c.validate());
    /// assert_eq!(n, 1);
    /// assert!(reports[0].contains("BUG validate_doc: Poison overwritten"));
    /// assert_eq!(c.validate(), 0, "repaired");
    /// # Ok::<(), kmem_slab::SlabError>(())
    /// ```
    pub fn validate(&self) -> usize {
        crate::debug::validate(self.inner())
    }

    /// The debug layout of the cache's objects (all zero without debug flags).
    ///
    /// ```
    /// let c = kmem_slab::KmemCache::new("layout_doc", 32, 0).unwrap();
    /// assert!(!c.debug_layout().on());
    /// ```
    pub fn debug_layout(&self) -> crate::debug::DebugLayout {
        self.inner().debug
    }

    /// Writes a leak report of this cache: its objects still allocated,
    /// grouped by allocation site (sites need [`SlabFlags::STORE_USER`]).
    ///
    /// ```
    /// use kmem_slab::{KmemCache, SlabFlags};
    /// let c = KmemCache::builder("leak_doc", 16).debug(SlabFlags::STORE_USER).create()?;
    /// let a = c.alloc(kmem_page::Gfp::KERNEL)?;
    /// let b = c.alloc(kmem_page::Gfp::KERNEL)?;
    /// let mut s = String::new();
    /// let found = c.leak_report(&mut s).unwrap();
    /// assert_eq!((found.objects, found.bytes), (2, 32));
    /// assert!(s.contains("of leak_doc allocated at"));
    /// unsafe { c.free(a)?; c.free(b)? };
    /// # Ok::<(), kmem_slab::SlabError>(())
    /// ```
    pub fn leak_report(
        &self,
        w: &mut dyn core::fmt::Write,
    ) -> Result<crate::debug::LeakSummary, core::fmt::Error> {
        let mut t = crate::leak::LeakTable::new();
        t.collect(self.inner());
        t.write(w, "")?;
        Ok(t.summary())
    }

    /// Gives up the handle (for the C API): the cache lives until
    /// [`destroy_raw`] or [`from_raw`](Self::from_raw).
    pub fn into_raw(self) -> NonNull<core::ffi::c_void> {
        core::mem::ManuallyDrop::new(self).inner.cast()
    }

    /// Takes a handle back from [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    ///
    /// `p` came from `into_raw` and the cache was not destroyed; only one
    /// handle may own it.
    pub unsafe fn from_raw(p: NonNull<core::ffi::c_void>) -> KmemCache {
        // SAFETY: the caller passes a live descriptor.
        let id = unsafe { p.cast::<CacheInner>().as_ref().id };
        KmemCache {
            inner: p.cast(),
            id,
        }
    }

    /// Borrows a cache from a raw pointer without owning it, if `p` is a live
    /// cache descriptor. The check is O(1) and never reads through `p` before
    /// the page descriptor says it is one (a pointer that was never a cache,
    /// or a destroyed one, gives `None`).
    ///
    /// ```
    /// use kmem_slab::KmemCache;
    /// let raw = KmemCache::new("r", 8, 0).unwrap().into_raw();
    /// assert!(KmemCache::with_raw(raw.as_ptr(), |c| c.name().len()) == Some(1));
    /// assert!(KmemCache::with_raw(&0u64 as *const u64 as *mut _, |_| ()).is_none());
    /// unsafe { kmem_slab::destroy_raw(raw.as_ptr().cast()).unwrap() };
    /// ```
    pub fn with_raw<R>(p: *mut core::ffi::c_void, f: impl FnOnce(&KmemCache) -> R) -> Option<R> {
        let a = p as usize;
        let b = kmem_page::lookup_block(a)?;
        if b.addr != a || b.desc.kind() != PageKind::Pages || b.desc.owner() != a ^ CACHE_MAGIC {
            return None;
        }
        let inner = NonNull::new(p)?.cast::<CacheInner>();
        // SAFETY: the page descriptor says `p` is a live cache descriptor.
        let id = unsafe { inner.as_ref().id };
        let h = core::mem::ManuallyDrop::new(KmemCache { inner, id });
        Some(f(&h))
    }
}

/// Destroys the cache `p` from [`KmemCache::into_raw`] (`kmem_cache_destroy`):
/// drains every thread's arrays and the shared array; if no object is in
/// use, releases every slab, the management pool and the descriptor. A
/// pointer that is not a live cache (destroyed twice) is refused with a
/// report; a cache with objects in use is kept, with a report.
///
/// # Safety
///
/// If `p` is a live cache, no other thread may use it during the call, and
/// on success nothing may use it again.
pub unsafe fn destroy_raw(p: *mut core::ffi::c_void) -> Result<(), SlabError> {
    // SAFETY: passed on.
    unsafe { destroy_inner(p.cast()) }
}

/// # Safety
/// As for [`destroy_raw`].
unsafe fn destroy_inner(inner: *mut CacheInner) -> Result<(), SlabError> {
    if !CACHES.lock().contains(inner) {
        kmem_report!(
            "kmem_cache_destroy: {:p} is not a live cache (destroyed twice?)",
            inner
        );
        return Err(SlabError::WrongCache {
            addr: inner as usize,
        });
    }
    // SAFETY: listed, so live; the caller promises no one else uses it now.
    let c = unsafe { &*inner };
    // Drain every thread's array (and free them) and the shared array, and
    // release free slabs. The cache list lock is not held: object
    // destructors of a typed cache run here and may use other caches.
    c.shrink(true);
    let mut list = CACHES.lock();
    if !list.contains(inner) {
        drop(list);
        kmem_report!("kmem_cache_destroy: {:p} was destroyed concurrently", inner);
        return Err(SlabError::WrongCache {
            addr: inner as usize,
        });
    }
    let live = c.active_objects();
    if live > 0 {
        drop(list);
        kmem_report!(
            "kmem_cache_destroy({}): {} objects still in use; the cache is kept",
            c.name(),
            live
        );
        crate::leak::report_destroy(c);
        return Err(SlabError::Busy { live });
    }
    list.remove(inner);
    list.free_id(c.id);
    drop(list);
    while c.pending.load(Ordering::Acquire) != 0 {
        kmem_platform::thread::yield_now();
    }
    if !c.mgmt.release_all(c.pages) {
        kmem_report!(
            "kmem_cache_destroy({}): management areas still in use",
            c.name()
        );
    }
    // SAFETY: unlisted, no slab, no array references it (all drained and freed).
    unsafe { free_descriptor(inner) };
    Ok(())
}

impl Drop for KmemCache {
    fn drop(&mut self) {
        // SAFETY: the handle owns the descriptor; on failure (objects in use)
        // the cache is leaked so its objects stay valid.
        let _ = unsafe { destroy_inner(self.inner.as_ptr()) };
    }
}

impl fmt::Debug for KmemCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.inner();
        f.debug_struct("KmemCache")
            .field("name", &c.name())
            .field("size", &c.size)
            .field("num", &c.num)
            .field("order", &c.order)
            .finish()
    }
}

/// The cache owning the slab whose head page descriptor is `desc`, if it is
/// a cache tagged `tag`.
#[inline(always)]
fn tagged_owner(desc: &kmem_page::PageDesc, tag: u32) -> Option<&CacheInner> {
    let owner = desc.owner();
    if !desc.is_kind(PageKind::Slab) || owner == 0 {
        return None;
    }
    // SAFETY: the owner word of a slab block is its cache's live descriptor
    // (set when the slab is made, cleared before the slab is freed; cache
    // descriptors are freed only after their last slab).
    let c = unsafe { &*(owner as *const CacheInner) };
    (c.tag == tag && tag != 0).then_some(c)
}

/// Frees `p` into the cache that owns it, if that is a cache tagged `tag`
/// ([`CacheBuilder::tag`]), given `desc`, the head page descriptor of the
/// block `p` lies in ([`kmem_page::lookup_head`] or
/// [`kmem_page::lookup_block`]): one descriptor lookup for the whole free —
/// what kmalloc's `kfree` does. `None`: the block is not a slab of a cache
/// with that tag (nothing happened); `Some(Err(_))`: the cache refused `p`
/// (reported, as by [`KmemCache::free`]).
///
/// ```
/// use kmem_slab::{KmemCache, free_tagged};
/// let c = KmemCache::builder("tagged-free", 64).tag(9).create().unwrap();
/// let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
/// let b = kmem_page::lookup_block(p.as_ptr() as usize).unwrap();
/// assert!(unsafe { free_tagged(p, b.desc, 8) }.is_none()); // another tag: untouched
/// assert!(unsafe { free_tagged(p, b.desc, 9) }.unwrap().is_ok());
/// ```
///
/// # Safety
///
/// As for [`KmemCache::free`]: if `p` is a live object, nothing may use it
/// afterwards; the cache must not be destroyed concurrently.
#[inline(always)]
#[track_caller]
pub unsafe fn free_tagged(
    p: NonNull<u8>,
    desc: &kmem_page::PageDesc,
    tag: u32,
) -> Option<Result<(), SlabError>> {
    let c = tagged_owner(desc, tag)?;
    if free_in_owner_fast(c, p, desc) {
        return Some(Ok(()));
    }
    Some(c.free_slow(p.as_ptr() as usize))
}

/// [`free_tagged`]'s fast path alone: `true` if `p` was freed into the
/// calling thread's array; `false` if anything needs more (not a slab of a
/// cache tagged `tag`, a pointer that fails the one-multiply object test, a
/// full array, a frozen thread, a debug cache) — then call `free_tagged`,
/// which decides and reports. Calls nothing, so a caller's hot path that
/// uses it need not save registers.
///
/// ```
/// let c = kmem_slab::KmemCache::builder("tagged-fast", 64).tag(9).create().unwrap();
/// let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
/// let d = kmem_page::lookup_head(p.as_ptr() as usize).unwrap();
/// // SAFETY: our object, freed once.
/// unsafe {
///     if !kmem_slab::free_tagged_fast(p, d, 9) {
///         kmem_slab::free_tagged(p, d, 9).unwrap().unwrap();
///     }
/// }
/// ```
///
/// # Safety
///
/// As for [`free_tagged`].
#[inline(always)]
pub unsafe fn free_tagged_fast(p: NonNull<u8>, desc: &kmem_page::PageDesc, tag: u32) -> bool {
    let Some(c) = tagged_owner(desc, tag) else {
        return false;
    };
    free_in_owner_fast(c, p, desc)
}

/// The fast path of [`free_tagged`] and [`free_tagged_fast`] once the
/// owner `c` is known from `desc` (by `tagged_owner`, so `desc` heads a
/// live slab of `c`): onto the calling thread's array, through the slab and
/// colour offset the descriptor names.
#[inline(always)]
fn free_in_owner_fast(c: &CacheInner, p: NonNull<u8>, desc: &kmem_page::PageDesc) -> bool {
    let s = desc.private() as *const Slab;
    cpu_cache::fast_free_in(c, p.as_ptr() as usize, s, desc.aux())
}

/// The object size of the cache owning the slab whose head page descriptor
/// is `desc`, if that cache is tagged `tag` (kmalloc's `ksize`: the bucket size).
///
/// ```
/// let c = kmem_slab::KmemCache::builder("tagged-size", 96).tag(3).create().unwrap();
/// let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
/// let b = kmem_page::lookup_block(p.as_ptr() as usize).unwrap();
/// assert_eq!(kmem_slab::tagged_object_size(b.desc, 3), Some(96));
/// assert_eq!(kmem_slab::tagged_object_size(b.desc, 4), None);
/// # unsafe { c.free(p).unwrap() };
/// ```
#[inline]
pub fn tagged_object_size(desc: &kmem_page::PageDesc, tag: u32) -> Option<usize> {
    tagged_owner(desc, tag).map(|c| c.object_size as usize)
}

#[cfg(test)]
mod tests {
    /// Wherever `memo_bytes` allows the low-half test, it agrees with
    /// division at every offset of the slab (index, and start-or-interior).
    #[test]
    fn memo_bytes_agrees_with_division() {
        let mut allowed = 0;
        for size in (8..=512)
            .step_by(8)
            .chain([576, 704, 1000, 1024, 2048, 3000, 4096, 8192])
        {
            for num in [1usize, 2, 7, 15, 32, 63, 64, 120, 512] {
                let mb = super::memo_bytes(size, num);
                if mb == 0 {
                    continue;
                }
                allowed += 1;
                assert_eq!(mb, size * num);
                let recip = (1u64 << 32).div_ceil(size as u64);
                let limit = if cfg!(miri) { size * 2 } else { mb };
                for off in 0..limit {
                    let m = (off as u64).wrapping_mul(recip);
                    assert_eq!(
                        (m >> 32) as usize,
                        off / size,
                        "size {size} num {num} off {off}"
                    );
                    assert_eq!(
                        (m as u32) < (recip as u32),
                        off % size == 0,
                        "size {size} num {num} off {off}"
                    );
                }
            }
        }
        assert!(allowed > 500, "the usual caches qualify ({allowed})");
        // Large objects of a size with a rounding error: 70 of 60000 bytes
        // (`e = 12704`, 69 * e > recip): refused. Powers of two are exact.
        assert_eq!(super::memo_bytes(60000, 70), 0);
        assert_eq!(super::memo_bytes(65536, 8), 65536 * 8);
    }

    /// A cache where the one-multiply test is not allowed (`memo_bytes` 0)
    /// frees by division: every object goes back, double and interior
    /// frees are refused.
    #[test]
    fn caches_without_the_fast_index_test_free_by_division() {
        let c = super::KmemCache::new("exact", 200, 0).unwrap();
        // SAFETY: no reference to the descriptor is alive; the field is
        // read only by frees, none of which runs yet.
        unsafe { (*c.inner.as_ptr()).memo_bytes = 0 };
        let n = if cfg!(miri) { 40 } else { 2000 };
        let ps: std::vec::Vec<_> = (0..n)
            .map(|_| c.alloc(kmem_page::Gfp::KERNEL).unwrap())
            .collect();
        for &p in &ps {
            // SAFETY: our objects, freed once.
            unsafe { c.free(p).unwrap() };
        }
        let p = ps[n - 1];
        kmem_platform::diag::capture(|| {
            // SAFETY: refused frees change nothing.
            unsafe {
                assert!(c.free(p).is_err(), "double free refused");
                let q = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
                assert!(c.free(q.add(8)).is_err(), "interior pointer refused");
                c.free(q).unwrap();
            }
        });
        let st = c.stats();
        assert_eq!(st.allocs(), st.frees(), "{st:?}");
        assert_eq!(st.allocs(), n as u64 + 1);
        c.check().unwrap();
    }
}
