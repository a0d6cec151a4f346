//! `Pool`: the region pool itself (the seed's `mp_pool_s`, nginx's `ngx_pool_t`).
//!
//! A pool owns a list of equally sized *blocks* that small allocations are
//! bumped from ([`small`](crate::small)), a list of *large* allocations that
//! each have their own pages ([`large`](crate::large)), a LIFO list of
//! *cleanup* handlers ([`cleanup`](crate::cleanup)) and, for the typed Rust
//! API, a LIFO list of values to drop. [`reset`](Pool::reset) drops the
//! values, frees the large allocations and rewinds every block;
//! destroying the pool (dropping it) runs the cleanups, then does what reset
//! does, then gives every block back to the page layer.

use core::cell::Cell;
use core::ptr::{self, NonNull};

use kmem_page::{PAGE_SIZE, PageError};

use crate::cleanup::{Cleanup, KeepBlock};
use crate::error::{ArenaError, FreeError};
use crate::large::Large;
use crate::pages::{self, PageBackend, Span};
use crate::small::{BlockIndex, FRONT_CLASSES, NODE_SIZE, Node};
use crate::stats::{Counters, PoolStats};
use crate::typed::DropRecord;

/// `MP_ALIGNMENT`: what [`Pool::alloc`] (`mp_alloc`) aligns to.
pub const MP_ALIGNMENT: usize = 16;
/// `MP_MAX_ALLOC_FROM_POOL`: the most a pool ever serves from its blocks
/// (`PAGE_SIZE - 1`); anything larger is a large allocation.
pub const MP_MAX_ALLOC_FROM_POOL: usize = PAGE_SIZE - 1;

/// The region pool: small allocations bumped from fixed-size blocks, large
/// ones listed, cleanup handlers run on destroy (nginx's `ngx_pool_t`, the
/// seed's `mp_pool_s`). This is the raw, C-semantics layer that `mp_*` uses;
/// Rust code normally wants the typed [`Arena`](crate::Arena).
///
/// The rules (each has a test):
///
/// * `max = min(size, PAGE_SIZE - 1)` separates small from large.
/// * A small allocation goes to the first block, searching from `current`,
///   that has room. If none has, a new block of the first block's size is
///   added, and every block from `current` that already has a successor counts
///   a failure; `current` moves past a block that had already failed more than
///   4 times (nginx's `if (p->d.failed++ > 4) pool->current = p->d.next`).
/// * A large allocation gets its own pages and an entry in the large list;
///   [`free`](Pool::free) gives it back at once and leaves the entry for reuse.
/// * [`reset`](Pool::reset) frees the large allocations and rewinds the
///   blocks; cleanups stay. Dropping the pool runs the cleanups (LIFO) and
///   frees everything.
///
/// A `Pool` is `Send` but not `Sync`: one thread at a time. [`LockedPool`]
/// (what `mp_pool_t` points to) puts one behind a lock.
///
/// ```
/// use kmem_arena::{Global, Pool};
/// let mut pool = Pool::new(Global, 4096)?;
/// let a = pool.alloc(24).unwrap();              // small: bumped, 16-aligned
/// assert_eq!(a.as_ptr() as usize % 16, 0);
/// let big = pool.alloc(100_000).unwrap();       // large: its own pages
/// // SAFETY: neither pointer is used after being freed.
/// unsafe {
///     assert_eq!(pool.free(big.as_ptr()), Ok(()));
///     assert!(pool.free(a.as_ptr()).is_err());  // small ones go at reset
/// }
/// pool.reset();
/// assert_eq!(pool.stats().current_allocated, 0);
/// # Ok::<(), kmem_arena::ArenaError>(())
/// ```
///
/// [`LockedPool`]: crate::LockedPool
pub struct Pool<P: PageBackend> {
    // ---- the window: the block the hot path bumps in (first cache line) ----
    /// The window's cursor: `[window start, cur)` is handed out, `[cur, end)`
    /// is free. Authoritative for the window block, whose `Node::last` is
    /// stale while it is the window. 0 with no window.
    pub(crate) cur: Cell<usize>,
    /// The window block's end; 0 with no window (then nothing fits:
    /// `cur + size <= end` fails for every non-zero size).
    pub(crate) end: Cell<usize>,
    /// Allocations that succeeded since the pool was made, by every path:
    /// the statistics' `allocation_count`, kept here, next to the cursor, so
    /// the hot path's one counter needs no folding. (Their bytes are not
    /// counted one by one: they are the distance `cur` moved, see
    /// [`fold`](Pool::fold).)
    pub(crate) count: Cell<usize>,
    /// Per alignment class `c`: `end` if `front[c] < 1 << c`, else 0. A
    /// value whose size is fixed at compile time (a multiple of its
    /// alignment, so at least `1 << c`) is then larger than anything the
    /// blocks before the window could take, and the typed hot path
    /// ([`Pool::alloc_fixed`]) needs no size test: `cur + size <= tend[c]`
    /// says both "first fit is the window" and "it fits".
    pub(crate) tend: [Cell<usize>; FRONT_CLASSES],
    /// Per alignment class `c` (alignment `1 << c`, classes above 4 use 4):
    /// `front[c] + 1`, where `front[c]` is the most an allocation of that
    /// alignment could take in any block of `[current, window)`, the blocks
    /// first-fit tries before the window (`front & !((1 << c) - 1)`, see
    /// [`Front`](crate::small::Front)). The hot paths bump `size` in
    /// the window only if `front[c] < size <= max`: then no earlier block can
    /// take it, and the result is the one the nginx search from `current`
    /// would give. (Per class, because 8 free bytes at an address that is not
    /// 16-aligned take no 16-aligned allocation: a bound that ignored
    /// alignment would send every `mp_alloc(8)` down the slow path.)
    pub(crate) lo: [Cell<usize>; FRONT_CLASSES],
    /// Per alignment class: `max - front[c]` (0 when `front[c] >= max`: every
    /// small size of that class takes the slow path); `size` is in
    /// `(front[c], max]` iff `size.wrapping_sub(lo[c]) < span[c]`.
    pub(crate) span: [Cell<usize>; FRONT_CLASSES],
    /// A pointer into the window block, whose provenance the hot path's
    /// results carry (`base.with_addr(..)`).
    pub(crate) base: Cell<*mut u8>,
    /// The largest room of the blocks in `[current, window)` (see
    /// [`Front`](crate::small::Front)), from which `lo`, `span` and `tend`
    /// were set.
    pub(crate) front: Cell<usize>,
    /// The statistics counters, as of the last fold.
    pub(crate) stats: Counters,
    /// `cur` at the last fold, plus the bytes bumped in the window since
    /// that are not counted as allocated (alignment padding, the pool's own
    /// bookkeeping): `fold_mark <= cur`, and the next fold counts
    /// `cur - fold_mark` bytes.
    pub(crate) fold_mark: Cell<usize>,
    /// The block the hot path bumps in: at or after `current` in the list.
    pub(crate) window: Cell<*mut Node>,
    /// Where the first-fit search starts (nginx's `current`). Only moves
    /// forward, except at reset (back to `head`).
    pub(crate) current: Cell<*mut Node>,
    /// The first block (null until the first allocation). For a
    /// [`LockedPool`](crate::LockedPool) it also holds the pool itself.
    pub(crate) head: Cell<*mut Node>,
    /// The last block: new blocks are linked after it.
    pub(crate) tail: Cell<*mut Node>,
    /// Index of `current` among the blocks (first block = 0).
    pub(crate) cur_idx: Cell<usize>,
    /// Index of `window` among the blocks.
    pub(crate) win_idx: Cell<usize>,
    /// The highest block index that was the window since the last reset.
    /// Blocks after it have not moved since (a block's cursor or failure
    /// count only changes while it is the window, before the window, or when
    /// a new block — which becomes the window — is added), so they are still
    /// empty and reset need not touch them.
    pub(crate) dirty_hi: Cell<usize>,
    /// The blocks in a dense array, for the first-fit search.
    pub(crate) index: BlockIndex,
    /// Largest small allocation: `min(size, PAGE_SIZE - 1)`.
    pub(crate) max: usize,
    /// The size of every block (span bytes: a power of two of pages, or a huge mapping).
    pub(crate) block_bytes: usize,
    /// Bytes at the start of the head block that belong to a header living in
    /// it (a `LockedPool`), not to the pool's data.
    pub(crate) reserve: usize,
    /// The pool's id in page descriptors: the head block's address (0 until it exists).
    pub(crate) id: Cell<usize>,
    /// Every large-list entry, in use or not (nginx's `large`).
    pub(crate) large: Cell<*mut Large>,
    /// Entries whose allocation was freed, ready for reuse.
    pub(crate) free_large: Cell<*mut Large>,
    /// Values to drop at reset/destroy, newest first (typed API only).
    pub(crate) drops: Cell<*mut DropRecord>,
    /// Cleanup handlers, newest first (nginx's `cleanup`).
    pub(crate) cleanups: Cell<*mut Cleanup>,
    /// Blocks holding cleanup records and their data; reset leaves them alone.
    pub(crate) keep: Cell<*mut KeepBlock>,
    /// Where the pages come from.
    pub(crate) pages: P,
}

// SAFETY: a pool owns its blocks and large allocations outright (raw pointers
// into memory no one else frees). Moving it to another thread moves that
// ownership. The only thread-bound things it could hold are values to drop:
// those are registered by `Arena` (which is `!Send`) and `SyncArena` (which
// requires `T: Send`), never through `Pool`'s own API.
unsafe impl<P: PageBackend + Send> Send for Pool<P> {}

impl<P: PageBackend> Pool<P> {
    /// A pool whose blocks hold at least `size` bytes each (the block is `size`
    /// plus its header, rounded up to a power of two of pages up to 4 MiB, to
    /// whole pages above). Allocations up to `min(size, PAGE_SIZE - 1)` are
    /// small. Takes no memory until the first allocation. Blocks are limited
    /// to 2 GiB ([`ArenaError::TooLarge`] beyond).
    ///
    /// ```
    /// use kmem_arena::{ArenaError, Global, Pool};
    /// assert_eq!(Pool::new(Global, 1024)?.max(), 1024);
    /// assert_eq!(Pool::new(Global, 1 << 20)?.max(), 4095);
    /// assert_eq!(Pool::new(Global, 0).err(), Some(ArenaError::ZeroSize));
    /// assert_eq!(Pool::new(Global, 3 << 30).err(), Some(ArenaError::TooLarge { size: 3 << 30 }));
    /// # Ok::<(), ArenaError>(())
    /// ```
    pub fn new(pages: P, size: usize) -> Result<Self, ArenaError> {
        Self::with_reserve(pages, size, 0)
    }

    /// As [`new`](Self::new), keeping `reserve` bytes at the start of the head
    /// block for a header stored there.
    pub(crate) fn with_reserve(pages: P, size: usize, reserve: usize) -> Result<Self, ArenaError> {
        if size == 0 {
            return Err(ArenaError::ZeroSize);
        }
        let need = size
            .checked_add(reserve)
            .and_then(|n| n.checked_add(NODE_SIZE + MP_ALIGNMENT))
            .ok_or(ArenaError::TooLarge { size })?;
        let block_bytes = pages::span_bytes(need, PAGE_SIZE)
            .filter(|&b| b <= crate::stats::MAX_BLOCK_BYTES)
            .ok_or(ArenaError::TooLarge { size })?;
        Ok(Pool {
            cur: Cell::new(0),
            end: Cell::new(0),
            count: Cell::new(0),
            tend: [const { Cell::new(0) }; FRONT_CLASSES],
            lo: [const { Cell::new(1) }; FRONT_CLASSES],
            span: core::array::from_fn(|_| Cell::new(size.min(MP_MAX_ALLOC_FROM_POOL))),
            base: Cell::new(ptr::null_mut()),
            front: Cell::new(0),
            stats: Counters::default(),
            fold_mark: Cell::new(0),
            window: Cell::new(ptr::null_mut()),
            current: Cell::new(ptr::null_mut()),
            head: Cell::new(ptr::null_mut()),
            tail: Cell::new(ptr::null_mut()),
            cur_idx: Cell::new(0),
            win_idx: Cell::new(0),
            dirty_hi: Cell::new(0),
            index: BlockIndex::new(),
            max: size.min(MP_MAX_ALLOC_FROM_POOL),
            block_bytes,
            reserve: reserve.next_multiple_of(MP_ALIGNMENT),
            id: Cell::new(0),
            large: Cell::new(ptr::null_mut()),
            free_large: Cell::new(ptr::null_mut()),
            drops: Cell::new(ptr::null_mut()),
            cleanups: Cell::new(ptr::null_mut()),
            keep: Cell::new(ptr::null_mut()),
            pages,
        })
    }

    /// The largest small allocation, `min(size, PAGE_SIZE - 1)` (nginx's `max`).
    ///
    /// ```
    /// let pool = kmem_arena::Pool::new(kmem_arena::Global, 100).unwrap();
    /// assert_eq!(pool.max(), 100);
    /// ```
    pub fn max(&self) -> usize {
        self.max
    }

    /// The size of each block in bytes, header included (a power of two of pages).
    ///
    /// ```
    /// let pool = kmem_arena::Pool::new(kmem_arena::Global, 4096).unwrap();
    /// assert_eq!(pool.block_size(), 8192); // 4096 bytes of data need a second page for the header
    /// ```
    pub fn block_size(&self) -> usize {
        self.block_bytes
    }

    /// The page backend.
    ///
    /// ```
    /// let pool = kmem_arena::Pool::new(kmem_arena::Global, 100).unwrap();
    /// assert_eq!(*pool.pages(), kmem_arena::Global);
    /// ```
    pub fn pages(&self) -> &P {
        &self.pages
    }

    /// The pool's statistics (see [`PoolStats`] for what each field counts).
    ///
    /// ```
    /// let pool = kmem_arena::Pool::new(kmem_arena::Global, 4096).unwrap();
    /// pool.alloc(10).unwrap();
    /// assert_eq!(pool.stats().allocation_count, 1);
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.fold();
        self.stats.snapshot(self.count.get())
    }

    /// Counts a call that failed before reaching the pool (bad arguments).
    ///
    /// ```
    /// let pool = kmem_arena::Pool::new(kmem_arena::Global, 64).unwrap();
    /// pool.note_failed();
    /// assert_eq!(pool.stats().failed_count, 1);
    /// ```
    pub fn note_failed(&self) {
        self.stats.count_failed();
    }

    /// Frees the large allocation `p` at once (`mp_free`). Anything else is
    /// declined and left alone: a small allocation of this pool
    /// ([`FreeError::Small`], freed at reset), or a pointer that is not this
    /// pool's ([`FreeError::Foreign`], [`FreeError::OtherPool`],
    /// [`FreeError::Inside`]). Never touches memory it does not own, so a stray
    /// pointer cannot crash it.
    ///
    /// ```
    /// use kmem_arena::{FreeError, Global, Pool};
    /// let pool = Pool::new(Global, 256)?;
    /// let big = pool.alloc(1000).unwrap();
    /// let x = 5;
    /// // SAFETY: nothing uses `big` after it is freed; the others are refused.
    /// unsafe {
    ///     assert_eq!(pool.free(big.as_ptr()), Ok(()));
    ///     assert!(matches!(pool.free(big.as_ptr()), Err(FreeError::Foreign { .. })));
    ///     assert!(matches!(pool.free(&x as *const i32 as *mut u8), Err(FreeError::Foreign { .. })));
    /// }
    /// # Ok::<(), kmem_arena::ArenaError>(())
    /// ```
    ///
    /// # Safety
    ///
    /// If `p` is a large allocation of this pool, nothing may use it afterwards.
    pub unsafe fn free(&self, p: *mut u8) -> Result<(), FreeError> {
        self.free_large(p)
    }

    /// Rewinds the pool (`mp_reset_pool`): drops the values the typed API put in
    /// it (newest first), frees every large allocation, and makes every block
    /// empty again with `current` back at the first block. Keeps the blocks and
    /// the cleanup handlers.
    ///
    /// ```
    /// let mut pool = kmem_arena::Pool::new(kmem_arena::Global, 4096).unwrap();
    /// let a = pool.alloc(100).unwrap();
    /// pool.reset();
    /// assert_eq!(pool.alloc(100).unwrap(), a); // the same memory again
    /// ```
    pub fn reset(&mut self) {
        self.reset_shared();
    }

    /// Reset through a shared reference, for owners that know no allocation is in use.
    #[inline]
    pub(crate) fn reset_shared(&self) {
        if self.dirty_hi.get() == 0 && (self.drops.get() as usize | self.large.get() as usize) == 0
        {
            // Only the head block was the window since the last reset (or
            // there is no block: then `base`, `cur` and `end` are 0), and
            // nothing is to be dropped or freed. The window is the head with
            // nothing before it (`current` is the head; no block was added,
            // so no failures), and rewinding it is rewinding the cursor:
            // `base` points at the head's first data byte.
            debug_assert_eq!(self.window.get(), self.head.get());
            self.fold();
            self.stats.count_reset(self.count.get());
            let start = self.base.get() as usize;
            self.cur.set(start);
            self.fold_mark.set(start);
            return;
        }
        self.reset_full();
    }

    /// [`reset_shared`](Self::reset_shared) when more than the head block
    /// moved, or values are to be dropped, or large allocations freed.
    #[inline(never)]
    fn reset_full(&self) {
        if !self.drops.get().is_null() {
            // SAFETY: the owner guarantees nothing handed out is used any more.
            unsafe { self.run_drops() };
        }
        self.fold();
        self.stats.count_reset(self.count.get());
        if !self.large.get().is_null() {
            self.free_all_large();
        }
        let head = self.head.get();
        if head.is_null() {
            return;
        }
        self.rewind_blocks();
        self.current.set(head);
        self.cur_idx.set(0);
        self.open_window(head, 0, 0);
    }

    /// Makes every block empty with no failures, as nginx's reset does. Only
    /// blocks `0..=dirty_hi` can have moved since the last reset (see
    /// [`dirty_hi`](Self::dirty_hi)); the rest are still rewound.
    #[inline]
    fn rewind_blocks(&self) {
        let n = self.index.len();
        if n == 0 {
            // The head alone (no successor, so no failures).
            let head = self.head.get();
            // SAFETY: the head is a live block of this pool.
            unsafe { (*head).last = (*head).start };
        } else {
            for i in 0..=self.dirty_hi.get().min(n - 1) {
                let node = self.index.node(i);
                // SAFETY: blocks in the index are live and owned by this pool.
                unsafe {
                    (*node).last = (*node).start;
                    (*node).failed = 0;
                    self.index.set_last(i, (*node).start as usize);
                }
            }
        }
        self.dirty_hi.set(0);
    }

    /// Runs the cleanups (newest first), drops the values, frees the large
    /// allocations, the cleanup blocks and every block but the head, which it
    /// returns. Leaves the pool empty.
    ///
    /// # Safety
    ///
    /// Nothing the pool handed out may be used afterwards, and the pool may not
    /// be used again except to free the returned head block.
    pub(crate) unsafe fn teardown(&self) -> Option<Span> {
        // SAFETY: handlers were installed for destroy time, which this is.
        unsafe { self.run_cleanups() };
        // SAFETY: passed on from our caller.
        unsafe { self.run_drops() };
        self.free_all_large();
        // SAFETY: the cleanups have run; nothing refers to their blocks.
        unsafe { self.free_keep_blocks() };
        let head = self.head.replace(ptr::null_mut());
        if head.is_null() {
            return None;
        }
        // SAFETY: `head` is a live block; its successors are live blocks of this pool.
        let (mut n, head_span) = unsafe { ((*head).next, (*head).span(self.reserve)) };
        while !n.is_null() {
            // SAFETY: as above; `n` is read before its memory is freed.
            let (next, span) = unsafe { ((*n).next, (*n).span(0)) };
            // SAFETY: the block is this pool's and no longer used.
            unsafe { pages::free_span(&self.pages, span) };
            n = next;
        }
        if let Some(span) = self.index.take() {
            // SAFETY: the index is the pool's own and no longer used.
            unsafe { pages::free_span(&self.pages, span) };
        }
        self.current.set(ptr::null_mut());
        self.window.set(ptr::null_mut());
        self.tail.set(ptr::null_mut());
        self.cur_idx.set(0);
        self.win_idx.set(0);
        self.dirty_hi.set(0);
        self.fold();
        self.close_window();
        Some(head_span)
    }

    /// Creates the head block now (a [`LockedPool`](crate::LockedPool) lives in
    /// its first `reserve` bytes). Returns the head block's first byte.
    pub(crate) fn create_head(&self) -> Result<NonNull<u8>, PageError> {
        debug_assert!(self.head.get().is_null());
        let node = self.new_block()?;
        self.head.set(node);
        self.tail.set(node);
        self.current.set(node);
        self.cur_idx.set(0);
        self.set_window(node, 0, 0);
        Ok(NonNull::new(self.id.get() as *mut u8).expect("the head block exists"))
    }
}

impl<P: PageBackend> Pool<P> {
    /// Destroys the pool's contents now (`mp_destroy_pool` without freeing
    /// the pool itself): cleanups, drops, every page. The pool is empty and
    /// usable afterwards.
    pub(crate) fn destroy(&mut self) {
        // SAFETY: `&mut self`: nothing borrowed from the pool is alive.
        if let Some(head) = unsafe { self.teardown() } {
            // SAFETY: the head block is the pool's and nothing uses it any more.
            unsafe { pages::free_span(&self.pages, head) };
        }
        self.id.set(0);
    }
}

impl<P: PageBackend> Drop for Pool<P> {
    fn drop(&mut self) {
        self.destroy();
    }
}

impl<P: PageBackend> core::fmt::Debug for Pool<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pool")
            .field("id", &format_args!("{:#x}", self.id.get()))
            .field("max", &self.max)
            .field("block_bytes", &self.block_bytes)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The allocation entry points with the C API's semantics (`mp_alloc`,
/// `mp_nalloc`, `mp_calloc`, `mp_memalign`). Each returns `None` for size 0,
/// a bad alignment, a size too large to represent, or when the page layer has
/// no memory; every `None` counts in `failed_count`.
impl<P: PageBackend> Pool<P> {
    /// `mp_alloc`: `size` bytes aligned to [`MP_ALIGNMENT`] (16).
    ///
    /// ```
    /// let pool = kmem_arena::Pool::new(kmem_arena::Global, 4096).unwrap();
    /// let a = pool.nalloc(3).unwrap();
    /// let b = pool.alloc(8).unwrap();
    /// assert_eq!(b.as_ptr() as usize % 16, 0);
    /// assert!(b.as_ptr() as usize > a.as_ptr() as usize);
    /// assert!(pool.alloc(0).is_none());
    /// ```
    #[inline]
    pub fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        self.alloc_layout_inner(size, MP_ALIGNMENT)
    }

    /// `mp_nalloc`: `size` bytes with no alignment (packs strings tightly).
    ///
    /// ```
    /// let pool = kmem_arena::Pool::new(kmem_arena::Global, 4096).unwrap();
    /// let a = pool.nalloc(3).unwrap();
    /// let b = pool.nalloc(5).unwrap();
    /// assert_eq!(b.as_ptr() as usize, a.as_ptr() as usize + 3);
    /// ```
    #[inline]
    pub fn nalloc(&self, size: usize) -> Option<NonNull<u8>> {
        self.alloc_layout_inner(size, 1)
    }

    /// `mp_calloc`: as [`alloc`](Self::alloc), zeroed.
    ///
    /// ```
    /// let pool = kmem_arena::Pool::new(kmem_arena::Global, 4096).unwrap();
    /// let p = pool.calloc(64).unwrap();
    /// // SAFETY: 64 bytes just allocated.
    /// assert!(unsafe { core::slice::from_raw_parts(p.as_ptr(), 64) }.iter().all(|&b| b == 0));
    /// ```
    pub fn calloc(&self, size: usize) -> Option<NonNull<u8>> {
        let p = self.alloc(size)?;
        // SAFETY: `size` bytes at `p` were just handed out to us.
        unsafe { ptr::write_bytes(p.as_ptr(), 0, size) };
        Some(p)
    }

    /// `mp_memalign`: `size` bytes aligned to `align`, any power of two. Small
    /// if it fits a block with its alignment; otherwise its own pages (a buddy
    /// block is aligned to its size; above 4 MiB a huge mapping is
    /// over-allocated and the pointer aligned inside it).
    ///
    /// ```
    /// let pool = kmem_arena::Pool::new(kmem_arena::Global, 4096).unwrap();
    /// for shift in [0, 4, 6, 12, 16, 23] {
    ///     let p = pool.memalign(100, 1 << shift).unwrap();
    ///     assert_eq!(p.as_ptr() as usize % (1 << shift), 0);
    /// }
    /// assert!(pool.memalign(100, 3).is_none());
    /// ```
    pub fn memalign(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        if !align.is_power_of_two() {
            self.stats.count_failed();
            return None;
        }
        self.alloc_layout_inner(size, align)
    }
}
