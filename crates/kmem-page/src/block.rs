//! `Pages`: an owned block of pages that frees itself.

use core::fmt;
use core::ptr::NonNull;

use kmem_platform::{Os, PAGE_SIZE, PageSource};

use crate::PageAllocator;

/// A block of `2^order` pages from a [`PageAllocator`], freed when dropped.
///
/// ```
/// use kmem_page::{Gfp, PageAllocator};
/// let pages = PageAllocator::new_os();
/// let mut b = pages.alloc(1, Gfp::KERNEL | Gfp::ZERO).unwrap();
/// assert!(b.as_slice().iter().all(|&x| x == 0));
/// b.as_mut_slice().fill(7);
/// let raw = b.into_raw();          // keep it past the handle…
/// // SAFETY: `raw` is the order-1 block just released from its handle.
/// let b = unsafe { kmem_page::Pages::from_raw(&pages, raw, 1) };
/// assert_eq!(b.as_slice()[8191], 7);
/// ```
pub struct Pages<'a, S: PageSource = Os> {
    alloc: &'a PageAllocator<S>,
    /// The block's first page; an allocated `Pages` block of `order` in `alloc`.
    ptr: NonNull<u8>,
    order: u32,
}

// SAFETY: the handle owns its block exclusively; the allocator is Sync.
unsafe impl<S: PageSource> Send for Pages<'_, S> {}
// SAFETY: shared access only reads through `&self`.
unsafe impl<S: PageSource> Sync for Pages<'_, S> {}

impl<'a, S: PageSource> Pages<'a, S> {
    /// Wraps a raw block.
    ///
    /// # Safety
    ///
    /// `ptr` must be an allocated order-`order` block of `alloc` (from
    /// `alloc_raw` or `into_raw`) that nothing else owns.
    pub unsafe fn from_raw(alloc: &'a PageAllocator<S>, ptr: NonNull<u8>, order: u32) -> Self {
        Pages { alloc, ptr, order }
    }

    /// Gives up ownership without freeing; free it later with `free_raw`.
    pub fn into_raw(self) -> NonNull<u8> {
        let p = self.ptr;
        core::mem::forget(self);
        p
    }

    /// The first byte of the block.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The block's order.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// The block's length in bytes (`4096 << order`).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        PAGE_SIZE << self.order
    }

    /// The block's bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the block is ours, `len()` bytes long, and initialised (pages
        // come zeroed from the source and are only ever written with bytes).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len()) }
    }

    /// The block's bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len()) }
    }
}

impl<S: PageSource> Drop for Pages<'_, S> {
    fn drop(&mut self) {
        // SAFETY: the handle owns an allocated block of this order.
        let r = unsafe { self.alloc.free_raw(self.ptr, self.order) };
        debug_assert!(
            r.is_ok(),
            "a Pages handle freed a block it did not own: {r:?}"
        );
    }
}

impl<S: PageSource> fmt::Debug for Pages<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages")
            .field("ptr", &self.ptr)
            .field("order", &self.order)
            .finish()
    }
}
