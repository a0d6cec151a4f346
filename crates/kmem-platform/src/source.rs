//! Where the page layer gets its memory from.

use core::ptr::NonNull;

/// A supplier of page-aligned, zero-filled memory: the OS, the heap (tests), or nothing.
///
/// The page layer asks a `PageSource` for large, size-aligned regions and hands
/// them back when they are wholly free. Every source is `Sync`: one source serves
/// every thread.
///
/// # Safety
///
/// An implementation must guarantee that a successful [`map`](PageSource::map)
/// returns memory that is valid for reads and writes of `size` bytes, aligned to
/// `align`, reads as zero, and is aliased by no other live mapping until it is
/// passed to [`unmap`](PageSource::unmap).
///
/// ```
/// use kmem_platform::{NoPages, PageSource};
/// assert!(NoPages.map(4096, 4096).is_none());
/// ```
pub unsafe trait PageSource: Sync {
    /// Maps `size` bytes aligned to `align`. Both are multiples of
    /// [`PAGE_SIZE`](crate::PAGE_SIZE) and `align` is a power of two.
    /// Returns `None` when the memory cannot be had.
    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>>;

    /// Gives a mapping back.
    ///
    /// # Safety
    ///
    /// `ptr`, `size` and `align` must be exactly those of one earlier successful
    /// `map` on this source that has not been unmapped yet, and nothing may use
    /// the memory afterwards.
    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize, align: usize);

    /// Tells the source that the contents of `[ptr, ptr + size)` are no longer
    /// needed; the range stays mapped. Returns `true` if the range now reads as
    /// zero (the OS dropped the pages), `false` if nothing was done.
    ///
    /// # Safety
    ///
    /// The range must lie inside one live mapping of this source and be
    /// page-aligned; its contents may be lost.
    unsafe fn discard(&self, ptr: NonNull<u8>, size: usize) -> bool {
        let _ = (ptr, size);
        false
    }

    /// A short name for reports ("os", "test", "none").
    fn name(&self) -> &'static str;
}

/// A source that never has memory: the page allocator then only manages the
/// regions its user adds by hand (the `no_std` case).
///
/// ```
/// use kmem_platform::{NoPages, PageSource};
/// assert_eq!(NoPages.name(), "none");
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPages;

// SAFETY: `map` never succeeds, so there is no mapping to describe.
unsafe impl PageSource for NoPages {
    fn map(&self, _size: usize, _align: usize) -> Option<NonNull<u8>> {
        None
    }
    unsafe fn unmap(&self, _ptr: NonNull<u8>, _size: usize, _align: usize) {}
    fn name(&self) -> &'static str {
        "none"
    }
}

// SAFETY: forwarding to a source that upholds the contract.
unsafe impl<S: PageSource + ?Sized> PageSource for &S {
    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        (**self).map(size, align)
    }
    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize, align: usize) {
        // SAFETY: the caller's promise is passed on unchanged.
        unsafe { (**self).unmap(ptr, size, align) }
    }
    unsafe fn discard(&self, ptr: NonNull<u8>, size: usize) -> bool {
        // SAFETY: the caller's promise is passed on unchanged.
        unsafe { (**self).discard(ptr, size) }
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
}
