//! Memory for kmem's own bookkeeping: registry nodes and region metadata.
//!
//! kmem never calls the system allocator for its own bookkeeping. This module
//! takes large chunks from the OS (the heap under Miri, which cannot `mmap`)
//! and bumps small pieces out of them. Pieces are never given back to the OS:
//! region metadata is recycled through [`MetaPool`] instead, so that a lookup
//! racing with a region's release still reads mapped memory.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

use kmem_platform::{Mutex, PAGE_SIZE};

/// Chunk size for bookkeeping memory.
const CHUNK: usize = 256 * 1024;

/// The chunk being bumped through.
pub(crate) struct Bump {
    /// The current chunk (kept as a pointer so the chunk stays reachable, which
    /// is what Miri's leak check looks for); null before the first chunk.
    chunk: *mut u8,
    /// Bytes of `chunk` handed out so far; `used <= CHUNK`.
    used: usize,
}

// SAFETY: the pointer is only followed under the mutex.
unsafe impl Send for Bump {}

pub(crate) static BUMP: Mutex<Bump> = Mutex::new(Bump {
    chunk: ptr::null_mut(),
    used: 0,
});

#[cfg(all(unix, not(miri)))]
fn chunk(size: usize) -> Option<NonNull<u8>> {
    use kmem_platform::PageSource;
    kmem_platform::Os::new().map(size, PAGE_SIZE)
}

#[cfg(all(any(not(unix), miri), feature = "std"))]
fn chunk(size: usize) -> Option<NonNull<u8>> {
    extern crate std;
    let layout = std::alloc::Layout::from_size_align(size, PAGE_SIZE).ok()?;
    // SAFETY: size is non-zero. The memory is never freed: it is reachable from
    // the statics of this module for the life of the process.
    NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
}

#[cfg(all(any(not(unix), miri), not(feature = "std")))]
fn chunk(_size: usize) -> Option<NonNull<u8>> {
    None
}

/// Returns `size` bytes of zeroed memory aligned to `align` (≤ PAGE_SIZE) that
/// lives for the rest of the process, or `None` if the OS has none.
pub(crate) fn alloc_permanent(size: usize, align: usize) -> Option<NonNull<u8>> {
    debug_assert!(align.is_power_of_two() && align <= PAGE_SIZE);
    if size > CHUNK / 4 {
        return chunk(size.next_multiple_of(PAGE_SIZE));
    }
    let mut b = BUMP.lock();
    let mut start = (b.used + align - 1) & !(align - 1);
    if b.chunk.is_null() || start + size > CHUNK {
        b.chunk = chunk(CHUNK)?.as_ptr();
        start = 0;
    }
    b.used = start + size;
    // SAFETY: `start + size <= CHUNK`, inside the current chunk.
    NonNull::new(unsafe { b.chunk.add(start) })
}

/// A recycling list of equally sized metadata blocks.
pub(crate) struct MetaPool {
    size: usize,
    pub(crate) free: Mutex<*mut u8>,
}

// SAFETY: the free list is only touched under its mutex; the blocks on it are
// owned by the pool.
unsafe impl Sync for MetaPool {}

impl MetaPool {
    pub(crate) const fn new(size: usize) -> Self {
        MetaPool {
            size,
            free: Mutex::new(ptr::null_mut()),
        }
    }

    /// A block of `self.size` bytes, 64-aligned: zero bytes when new, or a
    /// retired block of the same kind when recycled. Its first word is an
    /// `AtomicPtr<u8>` the pool uses as its free-list link.
    pub(crate) fn get(&self) -> Option<NonNull<u8>> {
        {
            let mut head = self.free.lock();
            if let Some(p) = NonNull::new(*head) {
                // SAFETY: every block on the list starts with the pool's
                // `AtomicPtr<u8>` link, written by `put`.
                *head = unsafe { link(p) }.load(Ordering::Relaxed);
                return Some(p);
            }
        }
        alloc_permanent(self.size, 64)
    }

    /// Puts a block back for reuse.
    ///
    /// # Safety
    ///
    /// `p` came from `get` on this pool, starts with an `AtomicPtr<u8>` reserved
    /// for the pool, and its user no longer writes it.
    pub(crate) unsafe fn put(&self, p: NonNull<u8>) {
        let mut head = self.free.lock();
        // SAFETY: the caller guarantees the first word is the pool's link.
        unsafe { link(p) }.store(*head, Ordering::Relaxed);
        *head = p.as_ptr();
    }
}

/// The pool's link word at the start of a block.
///
/// # Safety
///
/// `p` must point to a live block whose first word is an `AtomicPtr<u8>`.
unsafe fn link<'a>(p: NonNull<u8>) -> &'a AtomicPtr<u8> {
    // SAFETY: guaranteed by the caller.
    unsafe { &*p.as_ptr().cast::<AtomicPtr<u8>>() }
}
