//! Small allocations: bumped from fixed-size blocks (nginx's
//! `ngx_palloc_small` and `ngx_palloc_block`).
//!
//! The hot path ([`Pool::bump`]) is a few instructions on the pool's *window*
//! (the block the last search ended in): align the cursor, check, store.
//! Everything else — searching the blocks from `current`, adding a block,
//! counting failures, moving `current` — is [`Pool::alloc_slow`], kept cold.

use core::ptr::{self, NonNull};

use kmem_page::{PAGE_SIZE, PageError};

use crate::pages::{self, PageBackend, Span};
use crate::pool::{MP_ALIGNMENT, Pool};

/// The header at the start of every block (the seed's `mp_node_s`, nginx's
/// `ngx_pool_data_t`).
#[repr(C)]
pub(crate) struct Node {
    /// Cursor: `[start, last)` is handed out, `[last, end)` is free;
    /// `start <= last <= end`. Stale while this block is the pool's window.
    pub last: *mut u8,
    /// One past the block's last byte (page-aligned).
    pub end: usize,
    /// The next block, or null.
    pub next: *mut Node,
    /// How many times a new block was added while this block sat between
    /// `current` and the last block (nginx's `failed`). Reset clears it.
    pub failed: usize,
    /// The first data byte: after this header (and, in the head block of a
    /// `LockedPool`, after the pool), aligned to `MP_ALIGNMENT`.
    pub start: *mut u8,
    /// The block's size in bytes (its span).
    pub bytes: usize,
}

/// Bytes a block header takes (a multiple of `MP_ALIGNMENT`).
pub(crate) const NODE_SIZE: usize = core::mem::size_of::<Node>().next_multiple_of(MP_ALIGNMENT);

impl Node {
    /// The span this block lives in; `reserve` bytes precede the node in the head block.
    pub(crate) fn span(&self, reserve: usize) -> Span {
        let base = self.end - self.bytes;
        debug_assert!(self as *const Node as usize == base + reserve);
        // SAFETY: a block's base is its span's first byte, never null.
        Span {
            base: unsafe {
                NonNull::new_unchecked((self as *const Node as *mut u8).wrapping_sub(reserve))
            },
            bytes: self.bytes,
        }
    }

    /// Bytes free in this block (using `last` as stored).
    #[inline]
    fn room(&self) -> usize {
        self.end - self.last as usize
    }

    /// Where `size` bytes aligned to `align` would go in this block, if they fit.
    #[inline]
    fn fit(&self, size: usize, align: usize) -> Option<*mut u8> {
        let last = self.last;
        let pad = (last as usize).wrapping_neg() & (align - 1);
        let room = self.room();
        if pad <= room && size <= room - pad {
            Some(last.wrapping_add(pad))
        } else {
            None
        }
    }
}

impl<P: PageBackend> Pool<P> {
    /// The hot path: bumps `size` bytes aligned to `align` in the window, if
    /// the window is where the first-fit search from `current` would put them.
    /// Counts nothing. `size` must be non-zero and `align` a power of two no
    /// larger than `PAGE_SIZE`.
    #[inline(always)]
    pub(crate) fn bump(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        debug_assert!(align.is_power_of_two() && align <= PAGE_SIZE);
        if size.wrapping_sub(self.lo.get()) < self.span.get() {
            let last = self.last.get();
            let p = last.wrapping_add((last as usize).wrapping_neg() & (align - 1));
            // `end` is page-aligned and `last <= end`, so `p <= end`.
            if size <= self.end.get() - p as usize {
                self.last.set(p.wrapping_add(size));
                // SAFETY: `p` lies in a live block, whose addresses are never 0.
                return Some(unsafe { NonNull::new_unchecked(p) });
            }
        }
        None
    }

    /// Allocates `size` bytes aligned to `align` (a power of two): bumped from
    /// the blocks if small, its own pages if large. Counts the result.
    #[inline(always)]
    pub(crate) fn alloc_layout_inner(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        if align <= PAGE_SIZE {
            if let Some(p) = self.bump(size, align) {
                self.stats.count(size);
                return Some(p);
            }
        }
        self.alloc_slow(size, align)
    }

    /// Whether `size` bytes aligned to `align` are served from the blocks: at
    /// most `max` bytes, and (for alignments above `MP_ALIGNMENT`) they fit in
    /// a fresh block.
    #[inline]
    pub(crate) fn is_small(&self, size: usize, align: usize) -> bool {
        size <= self.max
            && (align <= MP_ALIGNMENT
                || (align <= PAGE_SIZE
                    && NODE_SIZE.next_multiple_of(align) + size <= self.block_bytes))
    }

    /// Everything the hot path does not do: zero sizes, the first-fit search,
    /// new blocks, large allocations. Counts the result (success or failure).
    #[cold]
    #[inline(never)]
    pub(crate) fn alloc_slow(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let r = if size == 0 || !align.is_power_of_two() {
            None
        } else if self.is_small(size, align) {
            self.alloc_small_slow(size, align)
        } else {
            self.alloc_large(size, align)
        };
        match r {
            Some(_) => self.stats.count(size),
            None => self.stats.count_failed(),
        }
        r
    }

    /// A small allocation for the pool's own bookkeeping (not counted).
    pub(crate) fn alloc_internal(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        match self.bump(size, align) {
            Some(p) => Some(p),
            None => self.alloc_small_slow(size, align),
        }
    }

    /// Makes `node` the window; `front_max` bounds the free bytes of the blocks
    /// from `current` up to (not including) `node`.
    #[inline]
    pub(crate) fn set_window(&self, node: *mut Node, front_max: usize) {
        self.window.set(node);
        // SAFETY: `node` is a live block of this pool.
        unsafe {
            self.last.set((*node).last);
            self.end.set((*node).end);
        }
        self.lo.set(front_max + 1);
        self.span.set(self.max.saturating_sub(front_max));
    }

    /// Writes the window's cursor back into its node.
    #[inline]
    pub(crate) fn sync_window(&self) {
        let w = self.window.get();
        if !w.is_null() {
            // SAFETY: the window is a live block of this pool.
            unsafe { (*w).last = self.last.get() };
        }
    }

    /// The nginx search: the first block from `current` with room; else a new
    /// block, with failure counting. `size` is non-zero and small.
    fn alloc_small_slow(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        if self.head.get().is_null() {
            self.create_head().ok()?;
        }
        self.sync_window();
        let mut front_max = 0;
        let mut n = self.current.get();
        while !n.is_null() {
            // SAFETY: blocks from `current` on are live blocks of this pool.
            let node = unsafe { &mut *n };
            if let Some(p) = node.fit(size, align) {
                node.last = p.wrapping_add(size);
                self.set_window(n, front_max);
                return NonNull::new(p);
            }
            front_max = front_max.max(node.room());
            n = node.next;
        }
        let new = self.new_block().ok()?;
        // Failure counting, exactly as ngx_palloc_block: every block from
        // `current` that has a successor counts a failure, and `current` moves
        // past each one that had already failed more than 4 times.
        let mut p = self.current.get();
        // SAFETY: `current` and its successors are live blocks of this pool.
        unsafe {
            while !(*p).next.is_null() {
                if (*p).failed > 4 {
                    self.current.set((*p).next);
                }
                (*p).failed += 1;
                p = (*p).next;
            }
            (*self.tail.get()).next = new;
        }
        self.tail.set(new);
        // SAFETY: `new` is a fresh block of this pool, empty and large enough
        // for any small request (`is_small`).
        let node = unsafe { &mut *new };
        let m = node.fit(size, align)?;
        node.last = m.wrapping_add(size);
        let mut front_max = 0;
        let mut n = self.current.get();
        while n != new {
            // SAFETY: live blocks between `current` and the new tail.
            unsafe {
                front_max = front_max.max((*n).room());
                n = (*n).next;
            }
        }
        self.set_window(new, front_max);
        NonNull::new(m)
    }

    /// Takes a fresh block from the page layer and writes its header. The
    /// first block of a pool becomes its id and keeps `reserve` bytes in front.
    pub(crate) fn new_block(&self) -> Result<*mut Node, PageError> {
        let first = self.head.get().is_null();
        let span = pages::alloc_span(&self.pages, self.block_bytes, PAGE_SIZE, self.id.get(), 0)?;
        let base = span.base.as_ptr();
        if first {
            self.id.set(base as usize);
            pages::set_owner(span, base as usize, 0);
        }
        let reserve = if first { self.reserve } else { 0 };
        let node = base.wrapping_add(reserve).cast::<Node>();
        let start = base.wrapping_add(reserve + NODE_SIZE);
        // SAFETY: the span is fresh, ours, page-aligned and larger than
        // `reserve + NODE_SIZE` (see `Pool::with_reserve`).
        unsafe {
            node.write(Node {
                last: start,
                end: base as usize + span.bytes,
                next: ptr::null_mut(),
                failed: 0,
                start,
                bytes: span.bytes,
            })
        };
        Ok(node)
    }

    /// Calls `f` for every block, first to last: how often it failed, how
    /// many bytes are free at its end, and whether the search starts there.
    ///
    /// ```
    /// let pool = kmem_arena::Pool::new(kmem_arena::Global, 4000).unwrap();
    /// assert_eq!(pool.block_size(), 4096);
    /// for _ in 0..3 { pool.alloc(4000).unwrap(); }     // one per block
    /// let mut blocks = Vec::new();
    /// pool.for_each_block(|b| blocks.push((b.failed, b.is_current)));
    /// // The third block was added after passing over two: the head counts a
    /// // failure; the second had no successor yet, so (as in nginx) it does not.
    /// assert_eq!(blocks, [(1, true), (0, false), (0, false)]);
    /// ```
    pub fn for_each_block(&self, mut f: impl FnMut(BlockInfo)) {
        self.sync_window();
        let mut n = self.head.get();
        while !n.is_null() {
            // SAFETY: live blocks of this pool.
            unsafe {
                f(BlockInfo {
                    failed: (*n).failed,
                    free: (*n).room(),
                    is_current: n == self.current.get(),
                });
                n = (*n).next;
            }
        }
    }
}

/// The state of one block, from [`Pool::for_each_block`].
///
/// ```
/// let b = kmem_arena::BlockInfo { failed: 0, free: 100, is_current: true };
/// assert!(b.is_current);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// Times a new block was added while this one sat between `current` and the end.
    pub failed: usize,
    /// Free bytes at the block's end.
    pub free: usize,
    /// Whether the first-fit search starts at this block.
    pub is_current: bool,
}
