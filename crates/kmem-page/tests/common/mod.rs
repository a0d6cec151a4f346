//! Helpers shared by the page layer's integration tests. Each test file is its
//! own crate and includes this module with `mod common;`; each uses only some
//! of the helpers, hence `dead_code` is allowed here.
#![allow(dead_code)]

use std::ptr::NonNull;

use kmem_page::{Config, PAGE_SIZE, PageAllocator};
use kmem_platform::{PageSource, TestPlatform};

/// A page allocator over test memory ([`TestPlatform`]) that keeps
/// `keep_free_pages` free pages mapped (the watermark) and maps at most
/// `max_pages` pages.
pub fn test_pages(keep_free_pages: usize, max_pages: usize) -> PageAllocator<TestPlatform> {
    PageAllocator::with_config(
        TestPlatform::new(),
        Config {
            keep_free_pages,
            max_pages,
        },
    )
}

/// A page allocator over test memory with no watermark (a wholly free region
/// goes back to the source at once) and no limit: counts of pages, regions
/// and mappings then follow from the test's own calls only.
pub fn fresh() -> PageAllocator<TestPlatform> {
    test_pages(0, usize::MAX)
}

/// Writes `tag` into the first and the last word of the block of `order` at `p`.
///
/// # Safety
/// `p` is a live block of `2^order` pages that the caller owns.
pub unsafe fn tag_block(p: NonNull<u8>, order: u32, tag: u64) {
    // SAFETY: both words lie inside the caller's block (a page is 4 KiB).
    unsafe {
        p.as_ptr().cast::<u64>().write(tag);
        p.as_ptr()
            .add((PAGE_SIZE << order) - 8)
            .cast::<u64>()
            .write(tag);
    }
}

/// Asserts that the block of `order` at `addr` still holds `tag` in its first
/// and its last word (as [`tag_block`] wrote them): nobody else wrote there.
///
/// # Safety
/// `addr` is a live block of `2^order` pages that the caller owns.
pub unsafe fn check_tag(addr: usize, order: u32, tag: u64) {
    // SAFETY: both words lie inside the caller's block.
    unsafe {
        assert_eq!((addr as *const u64).read(), tag, "block clobbered");
        assert_eq!(
            ((addr + (PAGE_SIZE << order) - 8) as *const u64).read(),
            tag,
            "block clobbered at its end"
        );
    }
}

/// Checks the tags of the tagged blocks `(address, order, tag)` of `pages`
/// that the test still holds, and frees each with `free_raw`.
///
/// # Safety
/// Every block is a live block of `pages` of its order, tagged with
/// [`tag_block`], and not used again.
pub unsafe fn free_tagged<S: PageSource>(
    pages: &PageAllocator<S>,
    blocks: impl IntoIterator<Item = (usize, u32, u64)>,
) {
    for (a, o, tag) in blocks {
        // SAFETY: the caller's blocks, as promised.
        unsafe {
            check_tag(a, o, tag);
            pages
                .free_raw(NonNull::new(a as *mut u8).unwrap(), o)
                .unwrap();
        }
    }
}
