//! The stock backends: what `mempool_create_page_pool`,
//! `mempool_create_slab_pool` and `mempool_create_kmalloc_pool` plug in.
//!
//! * **pages** — [`PageBackend`]: blocks of `2^order` pages from a
//!   [`PageAllocator`] (the process-wide [`kmem_page::global`] by default, or
//!   any other, e.g. one over a limited
//!   [`TestPlatform`](kmem_platform::TestPlatform) to simulate memory
//!   pressure). The C pair `mempool_alloc_pages`/`mempool_free_pages` (with the
//!   order as `pool_data`) is [`PageBackend::global`] behind function pointers.
//! * **slab cache** and **kmalloc size** — *not here yet*: they depend on the
//!   slab and kmalloc layers, which are being built. Each will be one more
//!   `Backend` impl in this file (`SlabBackend` holding the cache, elements
//!   from `kmem_cache_alloc`; `KmallocBackend` holding the size, elements from
//!   `kmalloc`) plus the C pair `mempool_alloc_slab`/`mempool_free_slab`
//!   (`pool_data` = the cache) and `mempool_kmalloc`/`mempool_kfree`
//!   (`pool_data` = the size), and the C constructors
//!   `mempool_create_slab_pool`/`mempool_create_kmalloc_pool` are then
//!   `mempool_create` with those pairs, exactly as the page pool is. Nothing
//!   else in the pool changes: it only ever sees the [`Backend`] trait.

use core::fmt;
use core::ptr::NonNull;

use kmem_page::{Gfp, PAGE_SIZE, PageAllocator};
use kmem_platform::{Os, PageSource};

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
