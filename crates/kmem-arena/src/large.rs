//! Large allocations: each has its own pages and an entry in the pool's large
//! list (the seed's `mp_large_s`, nginx's `ngx_pool_large_t`).
//!
//! Entries live in the pool's blocks and are never freed before a reset: when
//! a large allocation is freed its entry goes on a free list and the next
//! large allocation reuses it (nginx reuses an entry whose `alloc` is NULL).
//! The page descriptor of a large allocation's first page names the pool
//! (`owner`) and the entry (`private`), so [`Pool::free`] finds the entry in
//! O(1) instead of walking the list, and can tell a pointer that is not one of
//! its large allocations without reading the memory it points to.

use core::ptr::{self, NonNull};

use crate::error::FreeError;
use crate::pages::{self, PageBackend, Span};
use crate::pool::Pool;

/// An entry of the large list.
#[repr(C)]
pub(crate) struct Large {
    /// The next entry of the list of all entries.
    pub next: *mut Large,
    /// The allocation handed out; null while the entry waits for reuse.
    pub alloc: *mut u8,
    /// The size asked for (for the statistics).
    pub size: usize,
    /// The pages behind `alloc` (`alloc` is `span.base` aligned up).
    pub span: Span,
    /// The next entry waiting for reuse (valid while `alloc` is null).
    pub next_free: *mut Large,
}

impl<P: PageBackend> Pool<P> {
    /// A large allocation: its own span, listed. Counts nothing.
    pub(crate) fn alloc_large(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let reused = self.free_large.get();
        let entry = if reused.is_null() {
            let e = self
                .alloc_internal(size_of::<Large>(), align_of::<Large>())?
                .as_ptr()
                .cast::<Large>();
            // SAFETY: `e` is fresh pool memory for one entry.
            unsafe {
                e.write(Large {
                    next: self.large.get(),
                    alloc: ptr::null_mut(),
                    size: 0,
                    span: Span {
                        base: NonNull::dangling(),
                        bytes: 0,
                    },
                    next_free: ptr::null_mut(),
                })
            };
            self.large.set(e);
            e
        } else {
            // SAFETY: entries on the free list are live entries of this pool.
            self.free_large.set(unsafe { (*reused).next_free });
            reused
        };
        let span = match pages::alloc_span(&self.pages, size, align, self.id.get(), entry as usize)
        {
            Ok(s) => s,
            Err(_) => {
                self.push_free_entry(entry);
                return None;
            }
        };
        let p = span.base.as_ptr();
        let p = p.wrapping_add((p as usize).wrapping_neg() & (align - 1));
        // SAFETY: `entry` is ours and not in use.
        unsafe {
            (*entry).alloc = p;
            (*entry).size = size;
            (*entry).span = span;
            (*entry).next_free = ptr::null_mut();
        }
        NonNull::new(p)
    }

    fn push_free_entry(&self, entry: *mut Large) {
        // SAFETY: `entry` is a live entry of this pool with no allocation.
        unsafe {
            (*entry).alloc = ptr::null_mut();
            (*entry).next_free = self.free_large.get();
        }
        self.free_large.set(entry);
    }

    /// The entry of the large allocation `p`, found through its page descriptor.
    pub(crate) fn find_large(&self, p: *mut u8) -> Result<*mut Large, FreeError> {
        let addr = p as usize;
        if p.is_null() {
            return Err(FreeError::Null);
        }
        let Some(block) = kmem_page::lookup_block(addr) else {
            return Err(FreeError::Foreign { addr });
        };
        let d = block.desc;
        let id = self.id.get();
        if d.kind() != kmem_page::PageKind::Large || id == 0 || d.owner() != id {
            return Err(
                if d.kind() == kmem_page::PageKind::Large && d.owner() != 0 {
                    FreeError::OtherPool { addr }
                } else {
                    FreeError::Foreign { addr }
                },
            );
        }
        let e = d.private() as *mut Large;
        if e.is_null() {
            return Err(FreeError::Small { addr });
        }
        // SAFETY: the descriptor names this pool, so `private` is one of our
        // live entries (we clear both words before a span goes back).
        let alloc = unsafe { (*e).alloc };
        if alloc != p {
            return Err(FreeError::Inside {
                addr,
                start: alloc as usize,
            });
        }
        Ok(e)
    }

    /// `mp_free`: gives the large allocation `p` back now.
    pub(crate) fn free_large(&self, p: *mut u8) -> Result<(), FreeError> {
        let e = self.find_large(p)?;
        // SAFETY: `e` is a live entry in use (checked by `find_large`).
        let (span, size) = unsafe { ((*e).span, (*e).size) };
        self.fold();
        self.stats.count_free(size);
        // SAFETY: the span is ours; the caller gives the allocation up.
        unsafe { pages::free_span(&self.pages, span) };
        self.push_free_entry(e);
        Ok(())
    }

    /// Frees every large allocation and forgets the list (its entries live in
    /// blocks about to be rewound).
    pub(crate) fn free_all_large(&self) {
        let mut e = self.large.replace(ptr::null_mut());
        self.free_large.set(ptr::null_mut());
        while !e.is_null() {
            // SAFETY: live entries of this pool; spans in use are ours.
            unsafe {
                if !(*e).alloc.is_null() {
                    pages::free_span(&self.pages, (*e).span);
                    (*e).alloc = ptr::null_mut();
                }
                e = (*e).next;
            }
        }
    }

    /// The large list: `(live, idle)` — entries holding an allocation, and
    /// entries whose allocation was freed, waiting for reuse.
    ///
    /// ```
    /// let pool = kmem_arena::Pool::new(kmem_arena::Global, 256).unwrap();
    /// let a = pool.alloc(5000).unwrap();
    /// // SAFETY: `a` is not used afterwards.
    /// unsafe { pool.free(a.as_ptr()).unwrap() };
    /// assert_eq!(pool.large_entries(), (0, 1));
    /// pool.alloc(6000).unwrap();                  // reuses the entry
    /// assert_eq!(pool.large_entries(), (1, 0));
    /// ```
    pub fn large_entries(&self) -> (usize, usize) {
        let (mut live, mut idle) = (0, 0);
        let mut e = self.large.get();
        while !e.is_null() {
            // SAFETY: live entries of this pool.
            unsafe {
                if (*e).alloc.is_null() {
                    idle += 1;
                } else {
                    live += 1;
                }
                e = (*e).next;
            }
        }
        (live, idle)
    }
}
