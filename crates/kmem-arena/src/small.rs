//! Small allocations: bumped from fixed-size blocks (nginx's
//! `ngx_palloc_small` and `ngx_palloc_block`).
//!
//! The hot paths are a few instructions on the pool's *window* (the block the
//! last search ended in): [`Pool::alloc_fixed`] for Rust values (bumpalo's
//! shape: one aligned-cursor test, one add, one compare, one store, one
//! counter), [`Pool::try_bump`] for run-time sizes, and the aligning
//! [`Pool::bump`] (`mp_alloc`, and the typed paths' out-of-line fallback
//! [`Pool::alloc_pad`]). Everything else — searching the blocks from
//! `current`, adding a block, counting failures, moving `current` — is
//! [`Pool::alloc_slow`], kept cold.

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

/// The largest free room (`end - last`) of the blocks before the window.
///
/// Every block ends on a page boundary, so in a block with room `r` an
/// allocation aligned to `a <= PAGE_SIZE` can take at most `r & !(a - 1)`
/// bytes (`end - align_up(last, a)`, exactly). That is monotone in `r`, so
/// over several blocks the most an allocation of alignment `a` could take is
/// `front & !(a - 1)`: one number bounds every alignment class.
pub(crate) type Front = usize;

/// The alignment class of `align`.
#[inline(always)]
fn class(align: usize) -> usize {
    (align.trailing_zeros() as usize).min(FRONT_CLASSES - 1)
}

/// Folds a block with cursor `last` and end `end` into `front`.
#[inline(always)]
fn add_front(front: &mut Front, last: usize, end: usize) {
    *front = (*front).max(end - last);
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
    /// The typed hot path, for a value whose size and alignment are known at
    /// compile time (`size` a non-zero multiple of `align`, as for every
    /// sized Rust type; the pool's `max` is `MP_MAX_ALLOC_FROM_POOL`, as for
    /// every `Arena`): with constants, the small/large test folds away and
    /// what is left is bumpalo's shape — load the cursor, one test that it
    /// is aligned (none for bytes), one add, one compare against a bound,
    /// one store — plus one counter increment for the statistics.
    ///
    /// Everything else (a misaligned cursor, an earlier block that could take
    /// the value, the window's end) goes to [`alloc_pad`](Self::alloc_pad).
    #[inline(always)]
    pub(crate) fn alloc_fixed(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        debug_assert_eq!(self.max, MP_MAX_ALLOC_FROM_POOL);
        debug_assert!(size > 0 && size.is_multiple_of(align));
        if size <= MP_MAX_ALLOC_FROM_POOL && align <= PAGE_SIZE && size >= 1 << class(align) {
            let c = self.cur.get();
            // `size >= 1 << class(align)`: past `tend` means "not first fit or
            // no room"; below it, the window is the nginx answer.
            if c & (align - 1) == 0 && c + size <= self.tend[class(align)].get() {
                return Some(self.take(c, size));
            }
        }
        self.alloc_pad(size, align)
    }

    /// The hot path for a size known only at run time (slices, layouts) in a
    /// pool whose `max` is `MP_MAX_ALLOC_FROM_POOL`: as
    /// [`alloc_fixed`](Self::alloc_fixed) with the size tested against the
    /// front bound `lo`. Returns `None` (counting nothing) for everything it
    /// does not do, size 0 included; callers go on to
    /// [`alloc_pad`](Self::alloc_pad).
    #[inline(always)]
    pub(crate) fn try_bump(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        debug_assert_eq!(self.max, MP_MAX_ALLOC_FROM_POOL);
        if size <= MP_MAX_ALLOC_FROM_POOL
            && align <= PAGE_SIZE
            && size >= self.lo[class(align)].get()
        {
            let c = self.cur.get();
            if c & (align - 1) == 0 && c + size <= self.end.get() {
                return Some(self.take(c, size));
            }
        }
        None
    }

    /// [`try_bump`](Self::try_bump), then [`alloc_pad`](Self::alloc_pad).
    #[inline(always)]
    pub(crate) fn alloc_typed(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        match self.try_bump(size, align) {
            Some(p) => Some(p),
            None => self.alloc_pad(size, align),
        }
    }

    /// Hands out `[c, c + size)` of the window (`c` is the cursor and the
    /// range fits) and counts the allocation.
    #[inline(always)]
    fn take(&self, c: usize, size: usize) -> NonNull<u8> {
        self.cur.set(c + size);
        self.count.set(self.count.get() + 1);
        // SAFETY: `c` lies in the live window block, whose addresses are never 0.
        unsafe { NonNull::new_unchecked(self.base.get().with_addr(c)) }
    }

    /// The typed hot paths' fallback: the aligning bump (padding skipped
    /// and set aside), then the slow path. Out of line, so the hot paths stay
    /// a few instructions at every call site, and marked cold so that the
    /// compiler lays the hot path out as the straight line (a stream of
    /// mixed types — a string, then a struct — comes here often, and pays a
    /// call, not a search).
    #[cold]
    #[inline(never)]
    pub(crate) fn alloc_pad(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        if align <= PAGE_SIZE
            && let Some(p) = self.bump(size, align)
        {
            return Some(p);
        }
        self.alloc_slow(size, align)
    }

    /// The aligning bump: `size` bytes aligned to `align` in the window, if
    /// the window is where the first-fit search from `current` would put
    /// them (`front[c] < size <= max`), counting the allocation and the
    /// padding it skips. `align` must be a power of two no larger than
    /// `PAGE_SIZE`. (The C path's hot path: `mp_alloc` aligns every request
    /// to 16.)
    #[inline(always)]
    pub(crate) fn bump(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        self.bump_with::<true>(size, align)
    }

    /// The aligning bump for an allocation (`COUNT`) or for the pool's own
    /// bookkeeping (not counted; its bytes are added to `fold_mark`).
    #[inline(always)]
    fn bump_with<const COUNT: bool>(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        debug_assert!(align.is_power_of_two() && align <= PAGE_SIZE);
        let k = class(align);
        if size.wrapping_sub(self.lo[k].get()) >= self.span[k].get() {
            return None;
        }
        // Here `0 < size <= max < PAGE_SIZE`, and the cursor is a block
        // address below 2^47 (or 0 before the first block): nothing overflows.
        let c = self.cur.get();
        let p = (c + align - 1) & !(align - 1);
        let next = p + size;
        if next > self.end.get() {
            return None;
        }
        self.cur.set(next);
        if COUNT {
            self.count.set(self.count.get() + 1);
            if p != c {
                // The padding is not counted.
                self.fold_mark.set(self.fold_mark.get() + (p - c));
            }
        } else {
            // Bookkeeping: none of it is counted.
            self.fold_mark.set(self.fold_mark.get() + (next - c));
        }
        // SAFETY: `p` lies in the live window block, whose addresses are never
        // 0 (with no window, `end` is 0 and nothing fits).
        Some(unsafe { NonNull::new_unchecked(self.base.get().with_addr(p)) })
    }

    /// Moves the bytes the hot paths handed out since the last fold (the
    /// distance the cursor moved, less padding and bookkeeping) into the
    /// statistics. (Allocations need no fold: `count` is the total.)
    #[inline]
    pub(crate) fn fold(&self) {
        let c = self.cur.get();
        self.stats.add_bytes(c - self.fold_mark.get());
        self.fold_mark.set(c);
    }

    /// The window cursor's address.
    #[inline]
    pub(crate) fn cursor(&self) -> usize {
        self.cur.get()
    }

    /// Allocates `size` bytes aligned to `align` (a power of two): bumped from
    /// the blocks if small, its own pages if large. Counts the result.
    #[inline(always)]
    pub(crate) fn alloc_layout_inner(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        if align <= PAGE_SIZE
            && let Some(p) = self.bump(size, align)
        {
            return Some(p);
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
            Some(_) => {
                self.count.set(self.count.get() + 1);
                self.stats.add_bytes(size);
            }
            None => self.stats.count_failed(),
        }
        r
    }

    /// A small allocation for the pool's own bookkeeping (not counted).
    pub(crate) fn alloc_internal(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        match self.bump_with::<false>(size, align) {
            Some(p) => Some(p),
            None => self.alloc_small_slow(size, align),
        }
    }

    /// Makes `node` (block number `idx`) the window; `front` is the largest
    /// room of the blocks from `current` up to (not including) `node`.
    #[inline]
    pub(crate) fn set_window(&self, node: *mut Node, idx: usize, front: Front) {
        self.fold();
        self.open_window(node, idx, front);
    }

    /// [`set_window`](Self::set_window) once the hot paths' counts are folded.
    #[inline]
    pub(crate) fn open_window(&self, node: *mut Node, idx: usize, front: Front) {
        self.window.set(node);
        self.win_idx.set(idx);
        self.dirty_hi.set(self.dirty_hi.get().max(idx));
        // SAFETY: `node` is a live block of this pool.
        let (last, end, start) = unsafe { ((*node).last, (*node).end, (*node).start) };
        let a = last as usize;
        self.cur.set(a);
        self.fold_mark.set(a);
        self.base.set(start);
        // The bounds depend on `front` and `end` only: a reset that leaves
        // the window in the same block with nothing before it rewrites none.
        if end != self.end.get() || front != self.front.get() {
            self.end.set(end);
            self.set_front(front);
        }
    }

    /// Sets the hot paths' front bounds (`lo`, `span`, `tend`) from `front`,
    /// for the window as it is (`end` set).
    #[inline]
    fn set_front(&self, front: Front) {
        self.front.set(front);
        let end = self.end.get();
        for c in 0..FRONT_CLASSES {
            // What an allocation of alignment `1 << c` could take before the window.
            let f = front & !((1 << c) - 1);
            self.lo[c].set(f + 1);
            self.span[c].set(self.max.saturating_sub(f));
            self.tend[c].set(if f < 1 << c { end } else { 0 });
        }
    }

    /// Closes the window (after a fold): nothing fits until the next
    /// [`set_window`](Self::set_window).
    pub(crate) fn close_window(&self) {
        self.cur.set(0);
        self.end.set(0);
        for t in &self.tend {
            t.set(0);
        }
        self.base.set(ptr::null_mut());
        self.fold_mark.set(0);
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
        // With no window (never here after the first block) every fit moves it.
        let win = if self.window.get().is_null() {
            0
        } else {
            self.win_idx.get()
        };
        // A request larger than anything before the window can take goes no
        // earlier than the window: start there, with the front as it is.
        let (from, mut front) = if win > 0 && size > self.front.get() & !(align - 1) {
            (win, self.front.get())
        } else {
            (self.cur_idx.get(), 0)
        };
        for i in from..n {
            let (last, end) = self.block_cursor(i);
            let pad = last.wrapping_neg() & (align - 1);
            if pad <= end - last && size <= end - last - pad {
                let node = self.block(i);
                let p = last + pad;
                // SAFETY: `node` is a live block of this pool; `[p, p + size)` is free in it.
                unsafe { (*node).last = (*node).start.with_addr(p + size) };
                self.index.set_last(i, p + size);
                if i < win {
                    // First fit is a block before the window (the leftover
                    // of a block the window moved past): serve it there and
                    // keep the window, with the front bound recomputed, so
                    // the next request that does not fit the leftover needs
                    // no second trip here to move the window back.
                    for j in i..win {
                        let (last, end) = self.block_cursor(j);
                        add_front(&mut front, last, end);
                    }
                    self.set_front(front);
                } else {
                    self.set_window(node, i, front);
                }
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
        // `current` may have moved: the front is recomputed from it.
        let mut front: Front = 0;
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
