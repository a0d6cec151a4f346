//! A page source over the heap, for tests: counts what it does and fails on demand.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::PageSource;

/// Plain heap memory standing in for the OS, so that upper layers are testable
/// without system calls (and under Miri). It counts mappings and bytes, can be
/// given a limit in bytes, and can be told to fail the next `n` mappings — the
/// fault injection that memory-pressure tests need.
///
/// ```
/// use kmem_platform::{PageSource, TestPlatform};
/// let t = TestPlatform::new();
/// t.set_limit(8192);
/// let a = t.map(8192, 4096).unwrap();
/// assert!(t.map(4096, 4096).is_none(), "over the limit");
/// assert_eq!(t.failures(), 1);
/// // SAFETY: `a` is a live mapping of `t` with this size and alignment.
/// unsafe { t.unmap(a, 8192, 4096) };
/// assert_eq!(t.live_bytes(), 0);
/// ```
#[derive(Debug)]
pub struct TestPlatform {
    live_bytes: AtomicUsize,
    maps: AtomicUsize,
    unmaps: AtomicUsize,
    discards: AtomicUsize,
    failures: AtomicUsize,
    limit: AtomicUsize,
    fail_next: AtomicUsize,
}

impl Default for TestPlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPlatform {
    /// A source with no limit.
    pub const fn new() -> Self {
        TestPlatform {
            live_bytes: AtomicUsize::new(0),
            maps: AtomicUsize::new(0),
            unmaps: AtomicUsize::new(0),
            discards: AtomicUsize::new(0),
            failures: AtomicUsize::new(0),
            limit: AtomicUsize::new(usize::MAX),
            fail_next: AtomicUsize::new(0),
        }
    }
    /// Refuse mappings that would take the live total above `bytes`.
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::SeqCst);
    }
    /// Fail the next `n` calls to `map`.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
    /// Bytes mapped and not yet unmapped.
    pub fn live_bytes(&self) -> usize {
        self.live_bytes.load(Ordering::SeqCst)
    }
    /// Successful `map` calls so far.
    pub fn maps(&self) -> usize {
        self.maps.load(Ordering::SeqCst)
    }
    /// `unmap` calls so far.
    pub fn unmaps(&self) -> usize {
        self.unmaps.load(Ordering::SeqCst)
    }
    /// `discard` calls so far.
    pub fn discards(&self) -> usize {
        self.discards.load(Ordering::SeqCst)
    }
    /// `map` calls refused (limit or injected failure).
    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }
}

// SAFETY: each mapping is a fresh zeroed heap allocation of the requested
// layout, owned by the caller until `unmap` deallocates it with the same layout.
unsafe impl PageSource for TestPlatform {
    fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let injected = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let live = self.live_bytes.fetch_add(size, Ordering::SeqCst);
        if injected || live.saturating_add(size) > self.limit.load(Ordering::SeqCst) {
            self.live_bytes.fetch_sub(size, Ordering::SeqCst);
            self.failures.fetch_add(1, Ordering::SeqCst);
            return None;
        }
        let layout = std::alloc::Layout::from_size_align(size, align.max(crate::PAGE_SIZE)).ok()?;
        // SAFETY: `size` is non-zero (a multiple of the page size).
        let p = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) });
        if let Some(_q) = p {
            #[cfg(miri)]
            crate::miri_roots::add(_q.as_ptr());
            self.maps.fetch_add(1, Ordering::SeqCst);
        } else {
            self.live_bytes.fetch_sub(size, Ordering::SeqCst);
            self.failures.fetch_add(1, Ordering::SeqCst);
        }
        p
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize, align: usize) {
        let layout = std::alloc::Layout::from_size_align(size, align.max(crate::PAGE_SIZE))
            .expect("layout of a live mapping");
        #[cfg(miri)]
        crate::miri_roots::remove(ptr.as_ptr());
        // SAFETY: the caller passes a live allocation made by `map` with this layout.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
        self.live_bytes.fetch_sub(size, Ordering::SeqCst);
        self.unmaps.fetch_add(1, Ordering::SeqCst);
    }

    unsafe fn discard(&self, ptr: NonNull<u8>, size: usize) -> bool {
        // SAFETY: the caller passes a range inside a live mapping; like
        // MADV_DONTNEED, the range reads back as zero.
        unsafe { core::ptr::write_bytes(ptr.as_ptr(), 0, size) };
        self.discards.fetch_add(1, Ordering::SeqCst);
        true
    }

    fn name(&self) -> &'static str {
        "test"
    }
}
