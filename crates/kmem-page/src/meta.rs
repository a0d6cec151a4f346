//! Memory for kmem's own bookkeeping: registry nodes and region metadata.
//!
//! kmem never calls the system allocator for its own bookkeeping. This module
//! takes large chunks from the OS (the heap under Miri, which cannot `mmap`)
//! and bumps small pieces out of them. Pieces are never given back to the OS:
//! region metadata is recycled through [`MetaPool`] instead, so that a lookup
//! racing with a region's release still reads mapped memory.

use core::ptr::{self, NonNull};

use kmem_platform::{Mutex, PAGE_SIZE};

/// Chunk size for bookkeeping memory.
const CHUNK: usize = 256 * 1024;

struct Bump {
    cur: usize,
    end: usize,
}

static BUMP: Mutex<Bump> = Mutex::new(Bump { cur: 0, end: 0 });

#[cfg(all(unix, not(miri)))]
fn chunk(size: usize) -> Option<NonNull<u8>> {
    use kmem_platform::PageSource;
    kmem_platform::Os::new().map(size, PAGE_SIZE)
}

/// Every chunk, kept as a pointer: pieces are handed out through integer
/// addresses, so without this Miri's leak check would call the chunks lost.
#[cfg(all(any(not(unix), miri), feature = "std"))]
static CHUNKS: [core::sync::atomic::AtomicPtr<u8>; 1024] =
    [const { core::sync::atomic::AtomicPtr::new(ptr::null_mut()) }; 1024];

#[cfg(all(any(not(unix), miri), feature = "std"))]
fn chunk(size: usize) -> Option<NonNull<u8>> {
    extern crate std;
    use core::sync::atomic::Ordering;
    let layout = std::alloc::Layout::from_size_align(size, PAGE_SIZE).ok()?;
    // SAFETY: size is non-zero. The memory is never freed: it is reachable from
    // `CHUNKS` for the life of the process.
    let c = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
    let null = ptr::null_mut();
    let _ = CHUNKS.iter().any(|s| s.compare_exchange(null, c.as_ptr(), Ordering::AcqRel, Ordering::Relaxed).is_ok());
    Some(c)
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
    let mut start = (b.cur + align - 1) & !(align - 1);
    if b.cur == 0 || start + size > b.end {
        let c = chunk(CHUNK)?;
        b.cur = c.as_ptr() as usize;
        b.end = b.cur + CHUNK;
        start = b.cur;
    }
    b.cur = start + size;
    NonNull::new(start as *mut u8)
}

/// A recycling list of equally sized metadata blocks.
pub(crate) struct MetaPool {
    size: usize,
    free: Mutex<*mut u8>,
}

// SAFETY: the free list is only touched under its mutex; the blocks on it are
// owned by the pool.
unsafe impl Sync for MetaPool {}

impl MetaPool {
    pub(crate) const fn new(size: usize) -> Self {
        MetaPool { size, free: Mutex::new(ptr::null_mut()) }
    }

    /// A block of `self.size` bytes, 64-aligned. Its contents are whatever the
    /// previous user left (or zero when new): the caller initialises it.
    pub(crate) fn get(&self) -> Option<NonNull<u8>> {
        {
            let mut head = self.free.lock();
            if let Some(p) = NonNull::new(*head) {
                // SAFETY: every block on the list stores the next pointer in its
                // first word, written by `put`.
                *head = unsafe { p.as_ptr().cast::<*mut u8>().read() };
                return Some(p);
            }
        }
        alloc_permanent(self.size, 64)
    }

    /// Puts a block back for reuse.
    ///
    /// # Safety
    ///
    /// `p` came from `get` on this pool and its user no longer writes it.
    pub(crate) unsafe fn put(&self, p: NonNull<u8>) {
        let mut head = self.free.lock();
        // SAFETY: the block is at least one pointer long and 64-aligned.
        unsafe { p.as_ptr().cast::<*mut u8>().write(*head) };
        *head = p.as_ptr();
    }
}
