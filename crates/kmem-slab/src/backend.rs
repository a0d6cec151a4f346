//! Where a cache gets its pages: any [`PageAllocator`], behind a small trait
//! object so that caches over different page sources share one type.

use core::ptr::NonNull;

use kmem_page::{Gfp, PageAllocator, PageKind};
use kmem_platform::PageSource;

/// The page-layer calls a cache makes: blocks for slabs ([`PageKind::Slab`])
/// and for its own bookkeeping ([`PageKind::Pages`]).
///
/// # Safety
///
/// `alloc_block` must return a block of the kmem page layer — aligned to its
/// size, registered so that [`kmem_page::lookup_block`] finds its head
/// descriptor, marked `kind`, and used by nothing else until `free_block`.
/// The slab layer keeps its cache and slab in that descriptor and trusts it.
///
/// Implemented for every [`PageAllocator`], so a cache can live over
/// [`kmem_page::global()`] (the default), a [`TestPlatform`](kmem_platform::TestPlatform)
/// or a `no_std` region.
///
/// ```
/// use kmem_slab::SlabPages;
/// use kmem_page::{Gfp, PageKind};
/// let pages: &'static dyn SlabPages = kmem_page::global();
/// let p = pages.alloc_block(0, Gfp::KERNEL, PageKind::Slab).unwrap();
/// // SAFETY: `p` is the order-0 slab block just allocated.
/// unsafe { pages.free_block(p, 0, PageKind::Slab) };
/// ```
pub unsafe trait SlabPages: Sync + 'static {
    /// A block of `2^order` pages marked `kind`, aligned to its size, or `None`.
    fn alloc_block(&self, order: u32, gfp: Gfp, kind: PageKind) -> Option<NonNull<u8>>;
    /// Gives a block back.
    ///
    /// # Safety
    ///
    /// `p` must be a live block from `alloc_block(order, _, kind)` of this
    /// allocator that nothing uses any more.
    unsafe fn free_block(&self, p: NonNull<u8>, order: u32, kind: PageKind);
}

// SAFETY: a `PageAllocator` hands out registered, size-aligned blocks of the
// requested kind, owned by the caller until freed.
unsafe impl<S: PageSource + 'static> SlabPages for PageAllocator<S> {
    fn alloc_block(&self, order: u32, gfp: Gfp, kind: PageKind) -> Option<NonNull<u8>> {
        self.alloc_kind(order, gfp, kind).ok()
    }
    unsafe fn free_block(&self, p: NonNull<u8>, order: u32, kind: PageKind) {
        // SAFETY: passed on from our caller.
        let r = unsafe { self.free_kind(p, order, kind) };
        if let Err(e) = r {
            kmem_platform::kmem_report!(
                "slab: page layer refused a block the slab layer owned: {e:?}"
            );
        }
    }
}

/// The default pages of caches: the process-wide allocator over OS memory.
pub(crate) fn global_pages() -> &'static dyn SlabPages {
    kmem_page::global()
}
