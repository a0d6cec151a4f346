//! Where a pool's memory comes from: the page layer, never the system allocator.
//!
//! Every block a pool bumps from, every large allocation and every block of
//! cleanup records is one *span*: a buddy block of `2^order` pages (up to
//! 4 MiB, aligned to its size) or, above 4 MiB, a huge mapping
//! ([`PageAllocator::alloc_huge`]). Spans are marked [`PageKind::Large`] in
//! their page descriptor, whose `owner` word holds the pool's id and whose
//! `private` word holds the large-list entry (0 for the pool's own blocks):
//! that is how [`Pool::free`](crate::Pool::free) recognises its large
//! allocations in O(1) and declines anything else without touching it.

use core::ptr::NonNull;

use kmem_page::{Gfp, PAGE_SHIFT, PAGE_SIZE, PageAllocator, PageError, PageKind, REGION_SIZE};
use kmem_platform::{Os, PageSource};

/// A page allocator a pool takes its blocks from: [`Global`] (the process's
/// page allocator, the default) or a `&PageAllocator<S>` of your own (tests,
/// Miri, `no_std` users with a static region).
///
/// ```
/// use kmem_arena::{Arena, PageBackend};
/// use kmem_page::PageAllocator;
/// use kmem_platform::TestPlatform;
/// let pages = PageAllocator::new(TestPlatform::new());
/// assert_eq!((&pages).page_allocator().stats().allocated_pages, 0);
/// let arena = Arena::new_in(&pages);
/// arena.alloc(7u32);
/// assert_eq!(pages.stats().allocated_pages, 16); // one 64 KiB block
/// ```
pub trait PageBackend {
    /// The page source under the allocator.
    type Source: PageSource;
    /// The page allocator itself.
    fn page_allocator(&self) -> &PageAllocator<Self::Source>;
}

/// The process-wide page allocator, [`kmem_page::global()`].
///
/// ```
/// use kmem_arena::{Global, PageBackend};
/// assert!(core::ptr::eq(Global.page_allocator(), kmem_page::global()));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Global;

impl PageBackend for Global {
    type Source = Os;
    #[inline]
    fn page_allocator(&self) -> &PageAllocator<Os> {
        kmem_page::global()
    }
}

impl<S: PageSource> PageBackend for &PageAllocator<S> {
    type Source = S;
    #[inline]
    fn page_allocator(&self) -> &PageAllocator<S> {
        self
    }
}

/// A run of pages a pool owns: a buddy block (`bytes <= REGION_SIZE`, a power
/// of two of pages) or a huge mapping (`bytes > REGION_SIZE`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    /// First byte; aligned to `bytes` for a buddy block, to 4 MiB for a huge one.
    pub base: NonNull<u8>,
    /// Usable bytes. Decides how the span is freed (order vs huge).
    pub bytes: usize,
}

/// The order of a buddy block of at least `bytes` (`bytes <= REGION_SIZE`).
#[inline]
fn order_for(bytes: usize) -> u32 {
    let pages = bytes.div_ceil(PAGE_SIZE).max(1);
    usize::BITS - (pages - 1).leading_zeros()
}

/// The bytes of the span [`alloc_span`] would take for `size` bytes aligned to
/// `align`, or `None` on overflow.
pub(crate) fn span_bytes(size: usize, align: usize) -> Option<usize> {
    let want = size.max(1);
    if want <= REGION_SIZE && align <= REGION_SIZE {
        Some(PAGE_SIZE << order_for(want.max(align)))
    } else {
        let extra = align.saturating_sub(REGION_SIZE);
        let total = want.checked_add(extra)?;
        if total > isize::MAX as usize - REGION_SIZE {
            return None;
        }
        Some(total.next_multiple_of(PAGE_SIZE))
    }
}

/// Takes a span of at least `size` bytes, aligned to `align` (a power of two),
/// from the page layer, marked `Large` with `owner`/`private` in its descriptor.
pub(crate) fn alloc_span<P: PageBackend>(
    pages: &P,
    size: usize,
    align: usize,
    owner: usize,
    private: usize,
) -> Result<Span, PageError> {
    let bytes = span_bytes(size, align).ok_or(PageError::TooLarge { size })?;
    let pa = pages.page_allocator();
    let base = if bytes <= REGION_SIZE {
        pa.alloc_kind(order_for(bytes), Gfp::KERNEL, PageKind::Large)?
    } else {
        pa.alloc_huge(bytes, Gfp::KERNEL)?
    };
    let span = Span { base, bytes };
    set_owner(span, owner, private);
    Ok(span)
}

/// Writes the pool's words into the span's head page descriptor.
pub(crate) fn set_owner(span: Span, owner: usize, private: usize) {
    if let Some(b) = kmem_page::lookup_block(span.base.as_ptr() as usize) {
        b.desc.set_owner(owner);
        b.desc.set_private(private);
    }
}

/// Gives a span back to the page layer.
///
/// # Safety
///
/// `span` came from [`alloc_span`] on `pages` and nothing uses its memory any more.
pub(crate) unsafe fn free_span<P: PageBackend>(pages: &P, span: Span) {
    set_owner(span, 0, 0);
    let pa = pages.page_allocator();
    let r = if span.bytes <= REGION_SIZE {
        // SAFETY: passed on from our caller; the order is the one `alloc_span` used.
        unsafe {
            pa.free_kind(
                span.base,
                (span.bytes >> PAGE_SHIFT).trailing_zeros(),
                PageKind::Large,
            )
        }
    } else {
        // SAFETY: passed on from our caller.
        unsafe { pa.free_huge(span.base).map(|_| ()) }
    };
    if let Err(e) = r {
        kmem_platform::kmem_report!("arena: freeing the span at {:p} failed: {}", span.base, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_sizes() {
        assert_eq!(span_bytes(1, 1), Some(4096));
        assert_eq!(span_bytes(4097, 16), Some(8192));
        assert_eq!(span_bytes(10, 8192), Some(8192));
        assert_eq!(span_bytes(REGION_SIZE, 16), Some(REGION_SIZE));
        assert_eq!(
            span_bytes(REGION_SIZE + 1, 16),
            Some(REGION_SIZE + PAGE_SIZE)
        );
        assert_eq!(
            span_bytes(1, 2 * REGION_SIZE),
            Some(REGION_SIZE + PAGE_SIZE)
        );
        assert_eq!(span_bytes(usize::MAX, 16), None);
        assert_eq!(span_bytes(1, 1 << 63), None);
    }
}
