//! Anonymous memory from the kernel: `mmap`, `munmap`, `madvise`.

use core::ptr::NonNull;

use crate::{PAGE_SIZE, PageSource};

/// Memory straight from the operating system.
///
/// Alignments above the page size are made by over-mapping and trimming the
/// ends with `munmap`, so a 4 MiB region aligned to 4 MiB costs one `mmap` and at
/// most two `munmap`s. Under Miri, which cannot run `mmap`, the heap stands in.
///
/// ```
/// use kmem_platform::{Os, PageSource};
/// let p = Os::new().map(8192, 8192).unwrap();
/// // SAFETY: mapped just above, unmapped once with the same size and alignment.
/// unsafe { Os::new().unmap(p, 8192, 8192) };
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Os;

impl Os {
    /// The OS source (it has no state).
    pub const fn new() -> Self {
        Os
    }
}

#[cfg(all(unix, not(miri)))]
mod imp {
    use super::*;

    pub(super) fn map(size: usize, align: usize) -> Option<NonNull<u8>> {
        let span = if align > PAGE_SIZE {
            size.checked_add(align - PAGE_SIZE)?
        } else {
            size
        };
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing touches no existing memory.
        let raw = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                span,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let start = raw as usize;
        let aligned = (start + align - 1) & !(align - 1);
        let head = aligned - start;
        let tail = span - head - size;
        if head > 0 {
            // SAFETY: `[start, aligned)` is the unused front of the mapping just made.
            unsafe { libc::munmap(raw, head) };
        }
        if tail > 0 {
            // SAFETY: `[aligned + size, start + span)` is the unused end of that mapping.
            unsafe { libc::munmap((aligned + size) as *mut libc::c_void, tail) };
        }
        NonNull::new(aligned as *mut u8)
    }

    pub(super) unsafe fn unmap(ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller passes a live mapping made by `map` above.
        unsafe { libc::munmap(ptr.as_ptr().cast(), size) };
    }

    pub(super) unsafe fn discard(ptr: NonNull<u8>, size: usize) -> bool {
        // SAFETY: the caller passes a page-aligned range inside a live private
        // anonymous mapping; MADV_DONTNEED makes it read back as zero.
        unsafe { libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_DONTNEED) == 0 }
    }
}

#[cfg(any(not(unix), miri))]
mod imp {
    use super::*;

    #[cfg(feature = "std")]
    pub(super) fn map(size: usize, align: usize) -> Option<NonNull<u8>> {
        let layout = std::alloc::Layout::from_size_align(size, align).ok()?;
        // SAFETY: `size` is a non-zero multiple of the page size.
        let p = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) });
        #[cfg(miri)]
        if let Some(p) = p {
            crate::miri_roots::add(p.as_ptr());
        }
        p
    }
    #[cfg(feature = "std")]
    pub(super) unsafe fn unmap_aligned(ptr: NonNull<u8>, size: usize, align: usize) {
        let layout =
            std::alloc::Layout::from_size_align(size, align).expect("layout of a live mapping");
        #[cfg(miri)]
        crate::miri_roots::remove(ptr.as_ptr());
        // SAFETY: allocated by `map` above with this layout.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
    }
    #[cfg(not(feature = "std"))]
    pub(super) fn map(_size: usize, _align: usize) -> Option<NonNull<u8>> {
        None
    }
    pub(super) unsafe fn discard(_ptr: NonNull<u8>, _size: usize) -> bool {
        false
    }
}

// SAFETY: `mmap` of an anonymous private mapping returns fresh zero-filled
// memory that nothing else maps; alignment is made by trimming.
unsafe impl PageSource for Os {
    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        debug_assert!(size.is_multiple_of(PAGE_SIZE) && align.is_power_of_two());
        imp::map(size, align.max(PAGE_SIZE))
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize, align: usize) {
        #[cfg(all(unix, not(miri)))]
        {
            let _ = align;
            // SAFETY: the caller passes a live mapping of this source.
            unsafe { imp::unmap(ptr, size) }
        }
        #[cfg(all(any(not(unix), miri), feature = "std"))]
        // SAFETY: the caller passes a live mapping of this source.
        unsafe {
            imp::unmap_aligned(ptr, size, align.max(PAGE_SIZE))
        }
        #[cfg(all(any(not(unix), miri), not(feature = "std")))]
        let _ = (ptr, size, align);
    }

    unsafe fn discard(&self, ptr: NonNull<u8>, size: usize) -> bool {
        // SAFETY: the caller passes a page-aligned range of a live mapping.
        unsafe { imp::discard(ptr, size) }
    }

    fn name(&self) -> &'static str {
        "os"
    }
}

/// The page size the operating system reports (4096 on the machines kmem targets).
///
/// ```
/// assert_eq!(kmem_platform::os_page_size() % 4096, 0);
/// ```
pub fn os_page_size() -> usize {
    #[cfg(all(unix, not(miri)))]
    {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 { n as usize } else { PAGE_SIZE }
    }
    #[cfg(any(not(unix), miri))]
    {
        PAGE_SIZE
    }
}
