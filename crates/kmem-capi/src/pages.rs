//! The page functions: `__get_free_pages`, `get_zeroed_page`, `free_pages`,
//! `free_page`, and `kmem_buddyinfo_write`, over the process-wide
//! [`kmem_page::global`] allocator.

use core::ptr::NonNull;

use kmem_page::{Gfp, MAX_PAGE_ORDER, PageError, global};
use kmem_platform::kmem_report;

/// `unsigned long __get_free_pages(gfp_t gfp, unsigned int order)`: a block of
/// `2^order` pages aligned to its size, or 0 (reported on stderr unless
/// `__GFP_NOWARN`).
///
/// # Safety
///
/// Always safe to call; `unsafe` only because it is an exported C function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __get_free_pages(gfp: u32, order: u32) -> usize {
    match global().alloc_raw(order, Gfp(gfp)) {
        Ok(p) => p.as_ptr() as usize,
        Err(e) => {
            if !Gfp(gfp).nowarn() || matches!(e, PageError::OrderTooLarge { .. }) {
                kmem_report!("__get_free_pages(gfp={}, order={order}): {e}", Gfp(gfp));
            }
            0
        }
    }
}

/// `unsigned long get_zeroed_page(gfp_t gfp)`: one zeroed page, or 0.
///
/// # Safety
///
/// Always safe to call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn get_zeroed_page(gfp: u32) -> usize {
    // SAFETY: always safe.
    unsafe { __get_free_pages(gfp | Gfp::ZERO.0, 0) }
}

/// `void free_pages(unsigned long addr, unsigned int order)`. `addr == 0` is a
/// no-op, as in the kernel. An address kmem never handed out, an interior
/// address, a wrong order, a double free or a block of another layer is
/// reported on stderr and changes nothing.
///
/// # Safety
///
/// If `addr` heads a live order-`order` block, the caller gives it up.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_pages(addr: usize, order: u32) {
    let Some(p) = NonNull::new(addr as *mut u8) else {
        return;
    };
    // SAFETY: the caller gives the block up; anything else is refused.
    if let Err(e) = unsafe { global().free_raw(p, order) } {
        kmem_report!("free_pages({addr:#x}, order={order}): {e}; nothing freed");
    }
}

/// `void free_page(unsigned long addr)`: `free_pages(addr, 0)`.
///
/// # Safety
///
/// As for [`free_pages`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_page(addr: usize) {
    // SAFETY: passed on.
    unsafe { free_pages(addr, 0) }
}

/// `int kmem_buddyinfo_write(int fd)`: writes the `/proc/buddyinfo` line of the
/// process-wide page allocator to `fd`. Returns 0, or `-errno`.
///
/// # Safety
///
/// Always safe to call (a bad `fd` gives `-EBADF`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmem_buddyinfo_write(fd: i32) -> i32 {
    match global().buddyinfo_to_fd(fd) {
        Ok(()) => 0,
        Err(e) => -e,
    }
}

const _: () = assert!(MAX_PAGE_ORDER == 10, "kmem.h says MAX_PAGE_ORDER 10");
