//! The [`allocator_api2::alloc::Allocator`] impl: `allocator_api2::vec::Vec`,
//! `hashbrown::HashMap` and friends can live in an [`Arena`] or [`SyncArena`].
//!
//! * `allocate` bumps small layouts and gives large ones their own pages.
//! * `deallocate` gives a large allocation back at once (like `mp_free`); a
//!   small one stays until reset.
//! * `grow` extends the newest small allocation in place when the block has
//!   room (a `Vec` pushed in a loop rarely moves), and otherwise moves it.
//! * `shrink` stays in place.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::{AllocError, Allocator};

use crate::pages::PageBackend;
use crate::pool::Pool;
use crate::sync::SyncArena;
use crate::typed::Arena;

impl<P: PageBackend> Pool<P> {
    #[inline]
    fn api_allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            let p = NonNull::new(ptr::without_provenance_mut(layout.align())).ok_or(AllocError)?;
            return Ok(NonNull::slice_from_raw_parts(p, 0));
        }
        let p = self
            .alloc_typed(layout.size(), layout.align())
            .ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    /// # Safety
    ///
    /// As for [`Allocator::deallocate`].
    #[inline]
    unsafe fn api_deallocate(&self, p: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 && !self.is_small(layout.size(), layout.align()) {
            // A large layout was served from its own pages; give them back.
            // SAFETY: the caller gives the allocation up.
            let _ = unsafe { self.free(p.as_ptr()) };
        }
    }

    /// # Safety
    ///
    /// As for [`Allocator::grow`].
    unsafe fn api_grow(
        &self,
        p: NonNull<u8>,
        old: Layout,
        new: Layout,
        zero: bool,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let (os, ns) = (old.size(), new.size());
        // In place: the newest allocation of the window block, staying small.
        let cursor = self.cursor();
        let limit = self.end.get();
        if os != 0
            && self.is_small(os, old.align())
            && self.is_small(ns, new.align())
            && p.as_ptr() as usize + os == cursor
            && (p.as_ptr() as usize) & (new.align() - 1) == 0
            && ns - os <= limit - cursor
        {
            // Moving the cursor counts the extra bytes at the next fold.
            self.cur.set(cursor + (ns - os));
            if zero {
                // SAFETY: the bytes past `os` are ours now.
                unsafe { ptr::write_bytes(p.as_ptr().add(os), 0, ns - os) };
            }
            return Ok(NonNull::slice_from_raw_parts(p, ns));
        }
        let q = self.api_allocate(new)?;
        // SAFETY: both are live allocations of at least `os` bytes, disjoint.
        unsafe {
            ptr::copy_nonoverlapping(p.as_ptr(), q.as_ptr().cast::<u8>(), os);
            if zero {
                ptr::write_bytes(q.as_ptr().cast::<u8>().add(os), 0, ns - os);
            }
            self.api_deallocate(p, old);
        }
        Ok(q)
    }

    /// # Safety
    ///
    /// As for [`Allocator::shrink`].
    unsafe fn api_shrink(
        &self,
        p: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let small_before = old.size() == 0 || self.is_small(old.size(), old.align());
        let small_after = new.size() == 0 || self.is_small(new.size(), new.align());
        // Stay in place if the pointer suits the new alignment and the
        // allocation stays on the same side of small/large (so `deallocate`
        // with the new layout still finds it).
        if (p.as_ptr() as usize) & (new.align() - 1) == 0
            && small_before == small_after
            && new.size() != 0
        {
            return Ok(NonNull::slice_from_raw_parts(p, new.size()));
        }
        let q = self.api_allocate(new)?;
        // SAFETY: both live; `new.size() <= old.size()`.
        unsafe {
            ptr::copy_nonoverlapping(p.as_ptr(), q.as_ptr().cast::<u8>(), new.size());
            self.api_deallocate(p, old);
        }
        Ok(q)
    }
}

// SAFETY: memory handed out stays valid until it is deallocated or the arena
// is reset or dropped; both need the arena borrowed mutably or moved, which
// the `&Arena` inside any collection forbids. Blocks never move.
unsafe impl<P: PageBackend> Allocator for &Arena<'_, P> {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.pool().api_allocate(layout)
    }
    #[inline]
    unsafe fn deallocate(&self, p: NonNull<u8>, layout: Layout) {
        // SAFETY: passed on.
        unsafe { self.pool().api_deallocate(p, layout) }
    }
    unsafe fn grow(
        &self,
        p: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: passed on.
        unsafe { self.pool().api_grow(p, old, new, false) }
    }
    unsafe fn grow_zeroed(
        &self,
        p: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: passed on.
        unsafe { self.pool().api_grow(p, old, new, true) }
    }
    unsafe fn shrink(
        &self,
        p: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: passed on.
        unsafe { self.pool().api_shrink(p, old, new) }
    }
}

// SAFETY: as for `Arena`; every call holds the arena's lock.
unsafe impl<P: PageBackend + Send> Allocator for &SyncArena<'_, P> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.with_pool(|pool| pool.api_allocate(layout))
    }
    unsafe fn deallocate(&self, p: NonNull<u8>, layout: Layout) {
        // SAFETY: passed on.
        self.with_pool(|pool| unsafe { pool.api_deallocate(p, layout) })
    }
    unsafe fn grow(
        &self,
        p: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: passed on.
        self.with_pool(|pool| unsafe { pool.api_grow(p, old, new, false) })
    }
    unsafe fn grow_zeroed(
        &self,
        p: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: passed on.
        self.with_pool(|pool| unsafe { pool.api_grow(p, old, new, true) })
    }
    unsafe fn shrink(
        &self,
        p: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: passed on.
        self.with_pool(|pool| unsafe { pool.api_shrink(p, old, new) })
    }
}
