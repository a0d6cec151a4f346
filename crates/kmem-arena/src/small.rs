//! Small allocations: bumped from fixed-size blocks (nginx's
//! `ngx_palloc_small` and `ngx_palloc_block`).
//!
//! The hot path ([`Pool::bump`]) is a few instructions on the pool's *window*
//! (the block the last search ended in): align the cursor, check, store.
//! Everything else — searching the blocks from `current`, adding a block,
//! counting failures, moving `current` — is [`Pool::alloc_slow`], kept cold.

use core::ptr::{self, NonNull};

use kmem_page::{PAGE_SIZE, PageError};

use core::cell::Cell;

use crate::pages::{self, PageBackend, Span};
use crate::pool::{MP_ALIGNMENT, MP_MAX_ALLOC_FROM_POOL, Pool};

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

/// Alignment classes with their own front bound: 1, 2, 4, 8 and 16 bytes
/// (larger alignments use the 16-byte bound, which is never smaller).
pub(crate) const FRONT_CLASSES: usize = 5;

/// Per alignment class, the most an allocation of that alignment could take
/// in some block before the window.
pub(crate) type Front = [usize; FRONT_CLASSES];

/// The alignment class of `align`.
#[inline(always)]
fn class(align: usize) -> usize {
    (align.trailing_zeros() as usize).min(FRONT_CLASSES - 1)
}

/// Folds a block with cursor `last` and end `end` into `front`.
#[inline]
fn add_front(front: &mut Front, last: usize, end: usize) {
    for (c, f) in front.iter_mut().enumerate() {
        let a = (last + (1 << c) - 1) & !((1 << c) - 1);
        *f = (*f).max(end.saturating_sub(a));
    }
}

/// Bytes a block header takes (a multiple of `MP_ALIGNMENT`).
pub(crate) const NODE_SIZE: usize = core::mem::size_of::<Node>().next_multiple_of(MP_ALIGNMENT);

impl Node {
    /// The span this block lives in; `reserve` bytes precede the node in the head block.
    pub(crate) fn span(&self, reserve: usize) -> Span {
        let base = self.end - self.bytes;
        debug_assert!(self as *const Node as usize == base + reserve);
        // `start` points into the block, with the block's provenance.
        Span {
            base: NonNull::new(self.start.with_addr(base)).expect("a block is never at 0"),
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
    /// the window is where the first-fit search from `current` would put
    /// them, and counts the allocation. `size` must be non-zero and `align` a
    /// power of two no larger than `PAGE_SIZE`.
    #[inline(always)]
    pub(crate) fn bump(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        self.bump_with::<1>(size, align)
    }

    /// The hot path for `COUNT` = 1 (an allocation) or 0 (the pool's own
    /// bookkeeping, whose bytes are set aside as `internal`).
    #[inline(always)]
    fn bump_with<const COUNT: u64>(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let c = class(align);
        if size.wrapping_sub(self.lo[c].get()) < self.span[c].get() {
            self.bump_core::<COUNT>(size, align)
        } else {
            None
        }
    }

    /// The allocation hot path of pools whose `max` is `MP_MAX_ALLOC_FROM_POOL`
    /// (every `Arena` and `SyncArena`): for a size known at compile time the
    /// small/large test folds away, and only `front_max < size` is checked.
    #[inline(always)]
    pub(crate) fn alloc_typed(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        debug_assert_eq!(self.max, MP_MAX_ALLOC_FROM_POOL);
        if size <= MP_MAX_ALLOC_FROM_POOL
            && align <= PAGE_SIZE
            && size >= self.lo[class(align)].get()
        {
            if let Some(p) = self.bump_core::<1>(size, align) {
                return Some(p);
            }
        }
        self.alloc_slow(size, align)
    }

    /// The bump itself, once `front_max < size <= max` is known.
    #[inline(always)]
    fn bump_core<const COUNT: u64>(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        debug_assert!(align.is_power_of_two() && align <= PAGE_SIZE);
        debug_assert!(size > 0 && size <= self.max);
        {
            // Here `size <= max < PAGE_SIZE`, and the cursor's address is a
            // block address below 2^47 (or 0 before the first block).
            let e = self.enc.get();
            let m = ((align - 1) as u64) << 16;
            let next = if size & (align - 1) == 0 {
                // `size` is a multiple of `align` (always, for a Rust type):
                // align_up(a) + size == align_up(a + size), one step shorter
                // on the chain from one allocation to the next.
                (e + ((size as u64) << 16) + m + COUNT) & !m
            } else {
                ((e + m) & !m) + ((size as u64) << 16) + COUNT
            };
            if next <= self.end_enc.get() {
                self.enc.set(next);
                let p = (next >> 16) as usize - size;
                if COUNT == 0 {
                    let used = (next >> 16) as usize - (e >> 16) as usize;
                    self.internal.set(self.internal.get() + used);
                } else if align > 1 && e & m != 0 {
                    // The cursor was not aligned: padding was skipped (rare
                    // in a stream of one type; never for bytes).
                    self.pad.set(self.pad.get() + (p - (e >> 16) as usize));
                }
                // SAFETY: `p` lies in the live window block, whose addresses
                // are never 0 (with no window, `end_enc` is 0 and nothing fits).
                return Some(unsafe { NonNull::new_unchecked(self.base.get().with_addr(p)) });
            }
        }
        None
    }

    /// Moves what the hot path counted into the statistics counters.
    #[inline]
    pub(crate) fn fold(&self) {
        let e = self.enc.get();
        let addr = (e >> 16) as usize;
        let moved = addr.wrapping_sub(self.fold_addr.get());
        let bytes = moved
            .wrapping_sub(self.pad.replace(0))
            .wrapping_sub(self.internal.replace(0));
        self.stats.add_folded((e & 0xFFFF) as usize, bytes);
        self.enc.set(e & !0xFFFF);
        self.fold_addr.set(addr);
    }

    /// The window cursor's address.
    #[inline]
    pub(crate) fn cursor(&self) -> usize {
        (self.enc.get() >> 16) as usize
    }

    /// Allocates `size` bytes aligned to `align` (a power of two): bumped from
    /// the blocks if small, its own pages if large. Counts the result.
    #[inline(always)]
    pub(crate) fn alloc_layout_inner(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        if align <= PAGE_SIZE {
            if let Some(p) = self.bump(size, align) {
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
        self.fold();
        match r {
            Some(_) => self.stats.count_wide(size),
            None => self.stats.count_failed(),
        }
        r
    }

    /// A small allocation for the pool's own bookkeeping (not counted).
    pub(crate) fn alloc_internal(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        match self.bump_with::<0>(size, align) {
            Some(p) => Some(p),
            None => self.alloc_small_slow(size, align),
        }
    }

    /// Makes `node` (block number `idx`) the window; `front` bounds, per
    /// alignment class, what the blocks from `current` up to (not including)
    /// `node` could take.
    #[inline]
    pub(crate) fn set_window(&self, node: *mut Node, idx: usize, front: Front) {
        self.fold();
        self.window.set(node);
        self.win_idx.set(idx);
        // SAFETY: `node` is a live block of this pool.
        let (last, end, start) = unsafe { ((*node).last, (*node).end, (*node).start) };
        let a = last as usize;
        self.enc.set((a as u64) << 16);
        self.fold_addr.set(a);
        self.end_enc
            .set(((end.min(a + 0xFFFF) as u64) << 16) | 0xFFFF);
        self.base.set(start);
        for (c, &f) in front.iter().enumerate() {
            self.lo[c].set(f + 1);
            self.span[c].set(self.max.saturating_sub(f));
        }
    }

    /// Writes the window's cursor back into its node and the index.
    #[inline]
    pub(crate) fn sync_window(&self) {
        let w = self.window.get();
        if !w.is_null() {
            // SAFETY: the window is a live block of this pool.
            unsafe {
                (*w).last = (*w).start.with_addr(self.cursor());
                self.index.set_last(self.win_idx.get(), self.cursor());
            }
        }
    }

    /// The nginx search: the first block from `current` with room; else a new
    /// block, with failure counting. `size` is non-zero and small.
    ///
    /// The blocks' free bytes are kept in a dense array ([`BlockIndex`]), so
    /// the search reads a few cache lines instead of one block header per
    /// block; a block's header is only read when its room is large enough.
    fn alloc_small_slow(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        if self.head.get().is_null() {
            self.create_head().ok()?;
        }
        self.fold();
        self.sync_window();
        let n = self.index.len().max(1);
        let mut front = [0; FRONT_CLASSES];
        for i in self.cur_idx.get()..n {
            let (last, end) = self.block_cursor(i);
            let pad = last.wrapping_neg() & (align - 1);
            if pad <= end - last && size <= end - last - pad {
                let node = self.block(i);
                let p = last + pad;
                // SAFETY: `node` is a live block of this pool; `[p, p + size)` is free in it.
                unsafe { (*node).last = (*node).start.with_addr(p + size) };
                self.index.set_last(i, p + size);
                self.set_window(node, i, front);
                // SAFETY: as above.
                return NonNull::new(unsafe { (*node).start.with_addr(p) });
            }
            add_front(&mut front, last, end);
        }
        let new = self.new_block().ok()?;
        if self.index.push(&self.pages, self.head.get(), new).is_err() {
            // SAFETY: the block was never linked or used.
            unsafe { pages::free_span(&self.pages, (*new).span(0)) };
            return None;
        }
        // Failure counting, exactly as ngx_palloc_block: every block from
        // `current` that has a successor counts a failure, and `current` moves
        // past each one that had already failed more than 4 times.
        for i in self.cur_idx.get()..n - 1 {
            let b = self.block(i);
            // SAFETY: live blocks of this pool.
            unsafe {
                if (*b).failed > 4 {
                    self.cur_idx.set(i + 1);
                    self.current.set((*b).next);
                }
                (*b).failed += 1;
            }
        }
        // SAFETY: the tail is a live block; `new` is fresh.
        unsafe { (*self.tail.get()).next = new };
        self.tail.set(new);
        // SAFETY: `new` is a fresh block of this pool, empty and large enough
        // for any small request (`is_small`).
        let node = unsafe { &mut *new };
        let m = node.fit(size, align)?;
        node.last = m.wrapping_add(size);
        self.index.set_last(n, node.last as usize);
        let mut front = [0; FRONT_CLASSES];
        for i in self.cur_idx.get()..n {
            let (last, end) = self.block_cursor(i);
            add_front(&mut front, last, end);
        }
        self.set_window(new, n, front);
        NonNull::new(m)
    }

    /// Block `i`'s cursor address and end.
    #[inline]
    fn block_cursor(&self, i: usize) -> (usize, usize) {
        if self.index.len() == 0 {
            // SAFETY: the head is a live block.
            unsafe { ((*self.head.get()).last as usize, (*self.head.get()).end) }
        } else {
            (self.index.last(i), self.index.end(i))
        }
    }

    /// Block number `i` (`i` < number of blocks).
    #[inline]
    fn block(&self, i: usize) -> *mut Node {
        if self.index.len() == 0 {
            self.head.get()
        } else {
            self.index.node(i)
        }
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

/// The pool's blocks in a dense array: block `i`'s cursor address, end and
/// header. Exact for every block but the window, whose cursor the slow path
/// writes back before it reads the array. The first-fit search reads these
/// few cache lines instead of one block header per block (each in a page of
/// its own). Lives in pages of its own, taken when the pool gets its second
/// block and doubled when full.
pub(crate) struct BlockIndex {
    /// `cap` entries.
    mem: Cell<*mut Entry>,
    /// Entries in use (0 until the second block).
    len: Cell<usize>,
    /// Entries that fit in `mem`.
    cap: Cell<usize>,
    /// The pages behind `mem`.
    span: Cell<Option<Span>>,
}

/// One block in the [`BlockIndex`].
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Entry {
    /// The block's cursor address (`Node::last`).
    last: usize,
    /// The block's end (`Node::end`).
    end: usize,
    /// The block's header.
    node: *mut Node,
}

impl BlockIndex {
    pub(crate) const fn new() -> Self {
        BlockIndex {
            mem: Cell::new(ptr::null_mut()),
            len: Cell::new(0),
            cap: Cell::new(0),
            span: Cell::new(None),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.get()
    }

    #[inline]
    fn entry(&self, i: usize) -> Entry {
        debug_assert!(i < self.len.get());
        // SAFETY: `i < len <= cap`; entries below `len` are initialised.
        unsafe { *self.mem.get().add(i) }
    }

    /// Block `i`'s cursor address (`i < len`).
    #[inline]
    pub(crate) fn last(&self, i: usize) -> usize {
        self.entry(i).last
    }

    /// Block `i`'s end (`i < len`).
    #[inline]
    pub(crate) fn end(&self, i: usize) -> usize {
        self.entry(i).end
    }

    /// Block `i`'s header (`i < len`).
    #[inline]
    pub(crate) fn node(&self, i: usize) -> *mut Node {
        self.entry(i).node
    }

    /// Records block `i`'s cursor (ignored while there is no index).
    #[inline]
    pub(crate) fn set_last(&self, i: usize, last: usize) {
        if i < self.len.get() {
            // SAFETY: `i < len <= cap`.
            unsafe { (*self.mem.get().add(i)).last = last };
        }
    }

    /// Appends `new` (making the index on the second block, with `head`
    /// first).
    pub(crate) fn push<P: PageBackend>(
        &self,
        pages: &P,
        head: *mut Node,
        new: *mut Node,
    ) -> Result<(), ()> {
        let len = self.len.get();
        if len == 0 {
            self.grow(pages, PAGE_SIZE / size_of::<Entry>())?;
            self.put(0, head);
            self.put(1, new);
            self.len.set(2);
            return Ok(());
        }
        if len == self.cap.get() {
            self.grow(pages, 2 * len)?;
        }
        self.put(len, new);
        self.len.set(len + 1);
        Ok(())
    }

    fn put(&self, i: usize, node: *mut Node) {
        // SAFETY: `i < cap`; `node` is a live block.
        unsafe {
            self.mem.get().add(i).write(Entry {
                last: (*node).last as usize,
                end: (*node).end,
                node,
            })
        };
    }

    /// Moves the entries to new pages with room for `cap`.
    fn grow<P: PageBackend>(&self, pages: &P, cap: usize) -> Result<(), ()> {
        let span =
            pages::alloc_span(pages, cap * size_of::<Entry>(), PAGE_SIZE, 0, 0).map_err(|_| ())?;
        let mem = span.base.as_ptr().cast::<Entry>();
        let len = self.len.get();
        if len > 0 {
            // SAFETY: the new span holds `cap >= len` entries; the old one `len`.
            unsafe { ptr::copy_nonoverlapping(self.mem.get(), mem, len) };
        }
        self.mem.set(mem);
        self.cap.set(cap);
        if let Some(old) = self.span.replace(Some(span)) {
            // SAFETY: the old array was copied and is not used any more.
            unsafe { pages::free_span(pages, old) };
        }
        Ok(())
    }

    /// Forgets the index, returning its pages for the caller to free.
    pub(crate) fn take(&self) -> Option<Span> {
        self.mem.set(ptr::null_mut());
        self.len.set(0);
        self.cap.set(0);
        self.span.take()
    }
}
