//! [`Kmalloc`]: kmalloc as Rust's global allocator.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

use kmem_page::Gfp;

use crate::caches::caches_if_ready;
use crate::class::size_class_aligned;
use crate::{kfree, kfree_fast, kmalloc_aligned, kmalloc_fast, ksize};

/// kmalloc as a [`GlobalAlloc`]:
///
/// ```
/// #[global_allocator]
/// static A: kmem_kmalloc::Kmalloc = kmem_kmalloc::Kmalloc::new();
///
/// let v: Vec<u64> = (0..1000).collect();
/// assert!(kmem_page::is_kmem(v.as_ptr() as usize));
/// ```
///
/// Alignments above a class's are served by a larger class whose objects
/// have them, or by page blocks (aligned to their size); up to 4 MiB.
/// `alloc_zeroed` uses `__GFP_ZERO` (fresh page blocks are not cleared
/// again); `realloc` stays in place while the new size keeps its size class
/// (or, for page blocks, fits the block and uses more than a quarter of it).
/// `alloc` and `dealloc` try the calling thread's array first without a
/// call ([`kmalloc_fast`], [`kfree_fast`]); past it, `dealloc` goes by the
/// layout to the class's cache.
/// Nothing on these paths uses the system allocator, so the first
/// allocation of a thread (which sets up its array caches) cannot recurse.
#[derive(Debug, Default, Clone, Copy)]
pub struct Kmalloc {
    _private: (),
}

impl Kmalloc {
    /// The allocator (a unit: every instance shares the process's caches).
    pub const fn new() -> Self {
        Kmalloc { _private: () }
    }
}

const GFP: Gfp = Gfp(Gfp::KERNEL.0 | Gfp::NOWARN.0);

// SAFETY: every pointer returned is a fresh kmalloc allocation of at least
// `layout.size()` bytes aligned to `layout.align()` (see `kmalloc_aligned`),
// or null; `dealloc` and `realloc` take only such pointers.
unsafe impl GlobalAlloc for Kmalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Every class is aligned to 8 at least: the calling thread's array
        // first, with no call (as the malloc replacement does).
        if layout.align() <= 8
            && let Some(p) = kmalloc_fast(layout.size())
        {
            return p.as_ptr();
        }
        alloc_slow(layout)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        kmalloc_aligned(layout.size().max(1), layout.align(), GFP | Gfp::ZERO)
            .map_or(ptr::null_mut(), |p| p.as_ptr())
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // Onto the calling thread's array through the page descriptor, with
        // no call (`kfree_fast`, as the malloc replacement's `free`).
        // SAFETY: `p` came from this allocator and is given up
        // (GlobalAlloc's contract).
        if unsafe { kfree_fast(p) } {
            return;
        }
        // SAFETY: as above.
        unsafe { dealloc_slow(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        let new_class = size_class_aligned(new_size, align);
        match size_class_aligned(layout.size(), align) {
            // In place while the class stays the same (so that `dealloc`,
            // which goes by the layout, finds the right cache).
            Some(c) if new_class == Some(c) => return p,
            Some(_) => {}
            // A page block: in place while the new size needs pages too and
            // uses more than a quarter of the block.
            None => {
                let old = ksize(p).unwrap_or(0);
                if new_class.is_none() && new_size <= old && new_size > old / 4 {
                    return p;
                }
            }
        }
        let Ok(q) = kmalloc_aligned(new_size.max(1), align, GFP) else {
            return ptr::null_mut();
        };
        // SAFETY: both allocations hold at least `min(old size, new_size)`
        // bytes and do not overlap; `p` is given up by the caller.
        unsafe {
            ptr::copy_nonoverlapping(p, q.as_ptr(), layout.size().min(new_size));
            self.dealloc(p, layout);
        }
        q.as_ptr()
    }
}

/// [`Kmalloc::alloc`] past the thread's array: alignments above 8, sizes
/// of zero or above the classes, an empty array.
#[cold]
#[inline(never)]
fn alloc_slow(layout: Layout) -> *mut u8 {
    kmalloc_aligned(layout.size().max(1), layout.align(), GFP)
        .map_or(ptr::null_mut(), |p| p.as_ptr())
}

/// [`Kmalloc::dealloc`] past the thread's array: a full array, a page
/// block, a debug cache. The layout names the class (`realloc` keeps an
/// object in place only within its class), so the free goes to the class's
/// cache; page blocks go to `kfree`.
///
/// # Safety
///
/// `p` came from [`Kmalloc`] with `layout` and is given up.
#[cold]
#[inline(never)]
unsafe fn dealloc_slow(p: *mut u8, layout: Layout) {
    if let Some(c) = size_class_aligned(layout.size(), layout.align())
        && let Some(cs) = caches_if_ready()
    {
        // SAFETY: `p` came from this allocator with `layout`, hence from
        // class `c`'s cache (GlobalAlloc's contract).
        let _ = unsafe { cs[c].free(ptr::NonNull::new_unchecked(p)) };
        return;
    }
    // SAFETY: `p` came from this allocator (GlobalAlloc's contract).
    let _ = unsafe { kfree(p) };
}
