//! The stock backends: what `mempool_create_page_pool`,
//! `mempool_create_slab_pool` and `mempool_create_kmalloc_pool` plug in.
//!
//! * **pages** — [`PageBackend`]: blocks of `2^order` pages from a
//!   [`PageAllocator`] (the process-wide [`kmem_page::global`] by default, or
//!   any other, e.g. one over a limited
//!   [`TestPlatform`](kmem_platform::TestPlatform) to simulate memory
//!   pressure). The C pair `mempool_alloc_pages`/`mempool_free_pages` (with the
//!   order as `pool_data`) is [`PageBackend::global`] behind function pointers.
//! * **slab cache** — [`SlabBackend`]: objects of a [`KmemCache`], the backend
//!   of `mempool_create_slab_pool` (the C pair `mempool_alloc_slab`/
//!   `mempool_free_slab`, with the cache as `pool_data`).
//! * **kmalloc size** — [`KmallocBackend`]: `kmalloc(size)` / `kfree`, the
//!   backend of `mempool_create_kmalloc_pool` (the C pair `mempool_kmalloc`/
//!   `mempool_kfree`, with the size as `pool_data`).
//!
//! The pool itself only ever sees the [`Backend`] trait.

use core::fmt;
use core::ptr::NonNull;

use kmem_page::{Gfp, PAGE_SIZE, PageAllocator};
use kmem_platform::{Os, PageSource};
use kmem_slab::KmemCache;

use crate::Backend;

/// One page of memory: what a page pool's element points at (its first page;
/// [`Element::as_bytes_mut`](crate::Element::as_bytes_mut) gives the whole
/// block).
#[repr(C, align(4096))]
pub struct Page(pub [u8; PAGE_SIZE]);

/// Blocks of `2^order` pages from a page allocator: the backend of
/// `mempool_create_page_pool(min_nr, order)`.
///
/// ```
/// use kmem_mempool::{Mempool, PageBackend};
/// let pool = Mempool::new(4, PageBackend::global(1)?)?;   // four 8 KiB blocks held back
/// let mut block = pool.alloc();
/// assert_eq!(block.as_bytes_mut().len(), 8192);
/// # drop(block); drop(pool); kmem_page::global().trim(0); // hand the cached region back (Miri checks for leaks)
/// # Ok::<(), kmem_mempool::MempoolError>(())
/// ```
pub struct PageBackend<'a, S: PageSource = Os> {
    pages: &'a PageAllocator<S>,
    order: u32,
}

impl<'a, S: PageSource> PageBackend<'a, S> {
    /// Blocks of `2^order` pages from `pages`. Fails for `order > MAX_PAGE_ORDER`.
    ///
    /// ```
    /// use kmem_mempool::PageBackend;
    /// use kmem_page::PageAllocator;
    /// use kmem_platform::TestPlatform;
    /// let pages = PageAllocator::new(TestPlatform::new());
    /// assert!(PageBackend::new(&pages, 0).is_ok());
    /// assert!(PageBackend::new(&pages, 11).is_err());
    /// ```
    pub fn new(pages: &'a PageAllocator<S>, order: u32) -> Result<Self, crate::MempoolError> {
        if order > kmem_page::MAX_PAGE_ORDER {
            return Err(crate::MempoolError::BadOrder { order });
        }
        Ok(PageBackend { pages, order })
    }

    /// The order of each element.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Bytes per element.
    pub fn element_size(&self) -> usize {
        PAGE_SIZE << self.order
    }

    /// The page allocator.
    pub fn pages(&self) -> &'a PageAllocator<S> {
        self.pages
    }
}

impl PageBackend<'static, Os> {
    /// Blocks of `2^order` pages from the process-wide page allocator (what the
    /// C `mempool_alloc_pages` uses).
    ///
    /// ```
    /// assert_eq!(kmem_mempool::PageBackend::global(2)?.element_size(), 16384);
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn global(order: u32) -> Result<Self, crate::MempoolError> {
        Self::new(kmem_page::global(), order)
    }
}

// SAFETY: the page allocator hands out each block to one owner, aligned to its
// size (so to `Page`'s 4096), and its memory is always initialised (zero when
// fresh, whatever was written since); `free` returns it with the same order.
unsafe impl<S: PageSource> Backend for PageBackend<'_, S> {
    type Elem = Page;
    fn elem_bytes(&self) -> usize {
        self.element_size()
    }
    #[inline]
    fn alloc(&self, gfp: Gfp) -> Option<NonNull<Page>> {
        self.pages
            .alloc_raw(self.order, gfp)
            .ok()
            .map(NonNull::cast)
    }
    #[inline]
    unsafe fn free(&self, elem: NonNull<Page>) {
        // SAFETY: `elem` is an order-`order` block of `pages` (our contract).
        if let Err(e) = unsafe { self.pages.free_raw(elem.cast(), self.order) } {
            kmem_platform::kmem_report!("mempool page backend (order {}): {}", self.order, e);
        }
    }
    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        write!(
            out,
            "pages order {} ({})",
            self.order,
            self.pages.source().name()
        )
    }
}

impl<'p, S: PageSource> crate::Element<'p, PageBackend<'_, S>> {
    /// The whole block (`PAGE_SIZE << order` bytes).
    ///
    /// ```
    /// use kmem_mempool::{Mempool, PageBackend};
    /// let pool = Mempool::new(1, PageBackend::global(0)?)?;
    /// let e = pool.alloc();
    /// assert_eq!(e.as_bytes().len(), 4096);
    /// # drop(e); drop(pool); kmem_page::global().trim(0); // hand the cached region back (Miri checks for leaks)
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        let len = self.pool().backend().element_size();
        // SAFETY: the element is a whole block of `len` initialised bytes owned
        // by this handle.
        unsafe { core::slice::from_raw_parts(self.as_ptr().as_ptr().cast(), len) }
    }

    /// The whole block, writable.
    ///
    /// ```
    /// use kmem_mempool::{Mempool, PageBackend};
    /// let pool = Mempool::new(1, PageBackend::global(0)?)?;
    /// let mut e = pool.alloc();
    /// e.as_bytes_mut().fill(0xab);
    /// # drop(e); drop(pool); kmem_page::global().trim(0); // hand the cached region back (Miri checks for leaks)
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        let len = self.pool().backend().element_size();
        // SAFETY: as in `as_bytes`, and the handle is borrowed mutably.
        unsafe { core::slice::from_raw_parts_mut(self.as_ptr().as_ptr().cast(), len) }
    }
}

/// The first byte of a slab object: what a slab pool's element points at
/// ([`Element::as_bytes_mut`](crate::Element::as_bytes_mut) gives the whole
/// object, [`KmemCache::object_size`] bytes).
#[repr(C)]
pub struct SlabObject(pub u8);

/// Objects of a slab cache: the backend of `mempool_create_slab_pool(min_nr,
/// cache)` (elements from `kmem_cache_alloc`, back with `kmem_cache_free`).
///
/// ```
/// use kmem_mempool::{Mempool, SlabBackend};
/// use kmem_slab::KmemCache;
/// let cache = KmemCache::new("bio", 192, 8).unwrap();
/// let pool = Mempool::new(16, SlabBackend::new(&cache))?;   // 16 objects held back
/// let mut bio = pool.alloc();
/// bio.as_bytes_mut().fill(0);
/// assert_eq!(bio.as_bytes().len(), 192);
/// drop(bio);
/// drop(pool);
/// cache.destroy().map_err(|(_, e)| e).unwrap();             // nothing left outstanding
/// # Ok::<(), kmem_mempool::MempoolError>(())
/// ```
pub struct SlabBackend<'a> {
    cache: &'a KmemCache,
}

impl<'a> SlabBackend<'a> {
    /// Objects of `cache`.
    pub fn new(cache: &'a KmemCache) -> Self {
        SlabBackend { cache }
    }

    /// The cache.
    pub fn cache(&self) -> &'a KmemCache {
        self.cache
    }
}

// SAFETY: a slab cache hands each object to one owner; its memory is
// initialised (constructed, or whatever its last user wrote; the cache never
// hands out uninitialised bytes it has not zeroed or constructed — objects
// come from pages that are zero when fresh); `free` returns it to the same cache.
unsafe impl Backend for SlabBackend<'_> {
    type Elem = SlabObject;
    fn elem_bytes(&self) -> usize {
        self.cache.object_size()
    }
    #[inline]
    fn alloc(&self, gfp: Gfp) -> Option<NonNull<SlabObject>> {
        self.cache.alloc(gfp).ok().map(NonNull::cast)
    }
    #[inline]
    unsafe fn free(&self, elem: NonNull<SlabObject>) {
        // SAFETY: `elem` came from this cache (our contract); the cache checks
        // it anyway and reports a foreign pointer instead of taking it.
        if let Err(e) = unsafe { self.cache.free(elem.cast()) } {
            kmem_platform::kmem_report!("mempool slab backend ({}): {}", self.cache.name(), e);
        }
    }
    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        write!(
            out,
            "slab cache {} ({} bytes)",
            self.cache.name(),
            self.cache.object_size()
        )
    }
}

impl<'p> crate::Element<'p, SlabBackend<'_>> {
    /// The whole object ([`KmemCache::object_size`] bytes).
    pub fn as_bytes(&self) -> &[u8] {
        let len = self.pool().backend().cache().object_size();
        // SAFETY: the element is a whole object of `len` initialised bytes
        // owned by this handle.
        unsafe { core::slice::from_raw_parts(self.as_ptr().cast::<u8>().as_ptr(), len) }
    }

    /// The whole object, writable.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        let len = self.pool().backend().cache().object_size();
        // SAFETY: as above, and `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.as_ptr().cast::<u8>().as_ptr(), len) }
    }
}

/// The first byte of a kmalloc element (the whole element is
/// [`KmallocBackend::size`] bytes, [`Element::as_bytes_mut`](crate::Element::as_bytes_mut)).
#[repr(C)]
pub struct KmallocObject(pub u8);

/// `size`-byte allocations from kmalloc: the backend of
/// `mempool_create_kmalloc_pool(min_nr, size)`.
///
/// ```
/// use kmem_mempool::{KmallocBackend, Mempool};
/// let pool = Mempool::new(4, KmallocBackend::new(200)?)?;   // four 200-byte buffers held back
/// let mut buf = pool.alloc();
/// buf.as_bytes_mut().fill(7);
/// assert_eq!(buf.as_bytes().len(), 200);
/// # Ok::<(), kmem_mempool::MempoolError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct KmallocBackend {
    size: usize,
}

impl KmallocBackend {
    /// Elements of `size` bytes. Size 0 is refused (kmalloc would hand out
    /// `ZERO_SIZE_PTR`, which cannot hold anything).
    ///
    /// ```
    /// assert!(kmem_mempool::KmallocBackend::new(0).is_err());
    /// ```
    pub fn new(size: usize) -> Result<Self, crate::MempoolError> {
        if size == 0 || size > isize::MAX as usize {
            return Err(crate::MempoolError::BadSize { size });
        }
        Ok(KmallocBackend { size })
    }

    /// Bytes per element.
    pub fn size(&self) -> usize {
        self.size
    }
}

// SAFETY: kmalloc hands each allocation to one owner, at least `size` bytes,
// aligned for any object of that size; its bytes are initialised (pages are
// zero when fresh and only ever written); `kfree` finds the owner itself.
unsafe impl Backend for KmallocBackend {
    type Elem = KmallocObject;
    fn elem_bytes(&self) -> usize {
        self.size
    }
    #[inline]
    fn alloc(&self, gfp: Gfp) -> Option<NonNull<KmallocObject>> {
        kmem_kmalloc::kmalloc(self.size, gfp)
            .ok()
            .map(NonNull::cast)
    }
    #[inline]
    unsafe fn free(&self, elem: NonNull<KmallocObject>) {
        // SAFETY: `elem` came from `kmalloc` (our contract); `kfree` checks
        // it anyway and reports (and refuses) anything else.
        let _ = unsafe { kmem_kmalloc::kfree(elem.as_ptr().cast::<u8>()) };
    }
    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        write!(out, "kmalloc {} bytes", self.size)
    }
}

impl<'p> crate::Element<'p, KmallocBackend> {
    /// The whole element ([`KmallocBackend::size`] bytes).
    pub fn as_bytes(&self) -> &[u8] {
        let len = self.pool().backend().size();
        // SAFETY: the element is an allocation of at least `len` initialised
        // bytes owned by this handle.
        unsafe { core::slice::from_raw_parts(self.as_ptr().cast::<u8>().as_ptr(), len) }
    }

    /// The whole element, writable.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        let len = self.pool().backend().size();
        // SAFETY: as above, and `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.as_ptr().cast::<u8>().as_ptr(), len) }
    }
}
