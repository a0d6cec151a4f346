//! `Arena`: the safe, typed Rust face of the region pool.
//!
//! Values are bumped into the pool and handed back as `&mut T` that live as
//! long as the borrow of the arena (bumpalo's shape). Unlike bumpalo, **the
//! arena drops what it holds**: every value with drop glue is dropped, newest
//! first, when the arena is [`reset`](Arena::reset) or dropped.

use core::alloc::Layout;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::mem::{align_of, needs_drop, size_of};
use core::ptr::{self, NonNull};

use crate::error::ArenaError;
use crate::pages::{Global, PageBackend};
use crate::pool::{MP_ALIGNMENT, Pool};
use crate::small::NODE_SIZE;
use crate::stats::PoolStats;

/// A value (or slice of values) the pool drops at reset or destroy. Lives in
/// the pool's blocks, newest first.
#[repr(C)]
pub(crate) struct DropRecord {
    /// The record pushed before this one.
    next: *mut DropRecord,
    /// The first value.
    ptr: *mut u8,
    /// How many values.
    len: usize,
    /// `drop_in_place` for `[T; len]` at `ptr`.
    drop_fn: unsafe fn(*mut u8, usize),
}

/// Drops `len` values of type `T` at `p`.
///
/// # Safety
///
/// `p` holds `len` initialised `T`s that nothing uses any more.
unsafe fn drop_slice<T>(p: *mut u8, len: usize) {
    // SAFETY: passed on from our caller.
    unsafe { ptr::drop_in_place(ptr::slice_from_raw_parts_mut(p.cast::<T>(), len)) }
}

impl<P: PageBackend> Pool<P> {
    /// Room for one drop record (pool bookkeeping, not counted).
    #[inline]
    pub(crate) fn drop_record(&self) -> Result<NonNull<DropRecord>, ArenaError> {
        self.alloc_internal(size_of::<DropRecord>(), align_of::<DropRecord>())
            .map(NonNull::cast)
            .ok_or(ArenaError::NoMemory {
                size: size_of::<DropRecord>(),
            })
    }

    /// Registers `len` `T`s at `p` to be dropped at reset or destroy.
    ///
    /// # Safety
    ///
    /// `rec` came from [`drop_record`](Self::drop_record) on this pool and is
    /// unused; `p` holds `len` initialised `T`s that live in this pool (or are
    /// zero-sized) and may be dropped on whatever thread resets or drops the pool.
    #[inline]
    pub(crate) unsafe fn push_drop<T>(&self, rec: NonNull<DropRecord>, p: *mut T, len: usize) {
        // SAFETY: `rec` is room for one record.
        unsafe {
            rec.as_ptr().write(DropRecord {
                next: self.drops.get(),
                ptr: p.cast(),
                len,
                drop_fn: drop_slice::<T>,
            })
        };
        self.drops.set(rec.as_ptr());
    }

    /// Drops every registered value, newest first. Each record is taken off
    /// the list before its value is dropped, so a panicking `Drop` leaves the
    /// rest registered and nothing is dropped twice.
    ///
    /// # Safety
    ///
    /// Nothing may use the values any more.
    pub(crate) unsafe fn run_drops(&self) {
        loop {
            let r = self.drops.get();
            if r.is_null() {
                return;
            }
            // SAFETY: records on the list are live and describe live values.
            unsafe {
                self.drops.set((*r).next);
                ((*r).drop_fn)((*r).ptr, (*r).len);
            }
        }
    }
}

/// A region pool with a safe, typed API: `alloc(value) -> &mut T`, slices,
/// strings, cleanup closures, and an [`allocator_api2::alloc::Allocator`] so
/// collections can live in it.
///
/// # Values are dropped
///
/// **Every value with a destructor that you put in an `Arena` is dropped when
/// the arena is [`reset`](Arena::reset) or dropped** (newest first), so a
/// `String`, `Vec` or `Box` in the arena does not leak its heap memory, and a
/// guard's `Drop` runs. This is the opposite of `bumpalo`, which never runs
/// destructors. Values you explicitly do not want dropped go in with
/// [`alloc_no_drop`](Arena::alloc_no_drop).
///
/// The price of dropping safely is a lifetime rule: a value dropped by the
/// arena must outlive the arena (`T: 'p`), so it cannot hold references *into*
/// the arena (its destructor could otherwise see values already dropped). For
/// graphs of arena references, use [`alloc_no_drop`](Arena::alloc_no_drop)
/// (types without drop glue, or whose drop you are happy to skip), or
/// `Copy` data.
///
/// ```
/// use kmem_arena::Arena;
/// use std::cell::Cell;
/// let mut arena = Arena::new();
/// let name: &mut String = arena.alloc(String::from("pool"));
/// name.push_str("-1");
/// let nums = arena.alloc_slice_copy(&[1u32, 2, 3]);
/// nums[0] = 10;
/// let s = arena.alloc_str("hello");
/// assert_eq!((name.as_str(), &nums[..], &*s), ("pool-1", &[10, 2, 3][..], "hello"));
///
/// // A graph of arena references: no drop glue, so `alloc_no_drop`.
/// struct Node<'a> { val: u32, next: Cell<Option<&'a Node<'a>>> }
/// let a = arena.alloc_no_drop(Node { val: 1, next: Cell::new(None) });
/// let b = arena.alloc_no_drop(Node { val: 2, next: Cell::new(Some(&*a)) });
/// a.next.set(Some(&*b));
/// assert_eq!(a.next.get().unwrap().next.get().unwrap().val, 1);
///
/// arena.reset(); // drops the String; the memory is reused
/// ```
///
/// The lifetime rule, enforced: a dropped value cannot borrow the arena.
///
/// ```compile_fail
/// use kmem_arena::Arena;
/// use std::cell::Cell;
/// struct Loud<'a>(Cell<Option<&'a String>>);
/// impl Drop for Loud<'_> { fn drop(&mut self) {} }
/// let arena = Arena::new();
/// let a = arena.alloc(Loud(Cell::new(None)));
/// let s = arena.alloc(String::from("x"));
/// a.0.set(Some(s));
/// ```
///
/// # Threads
///
/// An `Arena` is neither `Send` nor `Sync` (it may hold `Rc`s and other
/// thread-bound values, which it drops wherever it is dropped). To share a
/// pool between threads, or to move one, use [`SyncArena`](crate::SyncArena),
/// which takes a lock per allocation and only accepts `Send` values.
pub struct Arena<'p, P: PageBackend = Global> {
    pool: Pool<P>,
    /// Invariant in `'p` (values dropped by the arena outlive `'p`, and `'p`
    /// cannot be shortened by variance), and `!Send + !Sync`.
    _values: PhantomData<*mut &'p ()>,
}

/// Block size of [`Arena::new`]: 64 KiB blocks, the header included (nginx
/// uses 16 KiB; larger blocks leave fewer gaps for the first-fit search to
/// fill, which measured about 25% faster on mixed sizes). Choose smaller
/// blocks with [`Arena::with_block_size`] when you keep many arenas.
pub const DEFAULT_BLOCK_SIZE: usize = 64 * 1024 - NODE_SIZE - MP_ALIGNMENT;

/// The pool size of an arena asked for `size`: at least `MP_MAX_ALLOC_FROM_POOL`.
pub(crate) fn arena_block_size(size: usize) -> Result<usize, ArenaError> {
    if size == 0 {
        Err(ArenaError::ZeroSize)
    } else {
        Ok(size.max(crate::pool::MP_MAX_ALLOC_FROM_POOL))
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn oom(e: ArenaError) -> ! {
    panic!("kmem-arena: {e}")
}

impl Arena<'_, Global> {
    /// An arena over the process's page allocator with 64 KiB blocks. Takes no
    /// memory until the first allocation.
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// assert_eq!(*arena.alloc(5u8), 5);
    /// ```
    pub fn new() -> Self {
        Self::new_in(Global)
    }

    /// An arena whose blocks hold at least `size` bytes, and never less than
    /// 4095: values up to 4095 bytes are bumped from the blocks, larger ones
    /// get their own pages. (Unlike `mp_create_pool`, whose `max` follows a
    /// small `size` down, an arena's small limit is always 4095; this keeps the
    /// size test off the hot path for values whose size is known at compile
    /// time.)
    ///
    /// ```
    /// let arena = kmem_arena::Arena::with_block_size(1 << 20)?;
    /// assert_eq!(arena.block_size(), 2 << 20);
    /// # Ok::<(), kmem_arena::ArenaError>(())
    /// ```
    pub fn with_block_size(size: usize) -> Result<Self, ArenaError> {
        Self::with_block_size_in(size, Global)
    }
}

impl Default for Arena<'_, Global> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'p, P: PageBackend> Arena<'p, P> {
    /// An arena with 64 KiB blocks from `pages`.
    ///
    /// ```
    /// use kmem_page::PageAllocator;
    /// use kmem_platform::TestPlatform;
    /// let pages = PageAllocator::new(TestPlatform::new());
    /// let arena = kmem_arena::Arena::new_in(&pages);
    /// arena.alloc([0u8; 100]);
    /// assert_eq!(pages.stats().allocated_pages, 16);
    /// ```
    pub fn new_in(pages: P) -> Self {
        match Self::with_block_size_in(DEFAULT_BLOCK_SIZE, pages) {
            Ok(a) => a,
            Err(e) => oom(e),
        }
    }

    /// An arena whose blocks hold at least `size` bytes (at least 4095), from `pages`.
    ///
    /// ```
    /// let arena = kmem_arena::Arena::with_block_size_in(100, kmem_arena::Global)?;
    /// assert_eq!(arena.small_limit(), 4095);
    /// assert_eq!(arena.block_size(), 8192);
    /// # Ok::<(), kmem_arena::ArenaError>(())
    /// ```
    pub fn with_block_size_in(size: usize, pages: P) -> Result<Self, ArenaError> {
        Ok(Arena {
            pool: Pool::new(pages, arena_block_size(size)?)?,
            _values: PhantomData,
        })
    }

    /// The largest allocation bumped from a block (always `PAGE_SIZE - 1`);
    /// larger ones get their own pages.
    ///
    /// ```
    /// assert_eq!(kmem_arena::Arena::new().small_limit(), 4095);
    /// ```
    pub fn small_limit(&self) -> usize {
        self.pool.max()
    }

    /// Bytes per block, header included.
    ///
    /// ```
    /// assert_eq!(kmem_arena::Arena::new().block_size(), 65536);
    /// ```
    pub fn block_size(&self) -> usize {
        self.pool.block_size()
    }

    /// The arena's statistics (see [`PoolStats`]).
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// arena.alloc(1u64);
    /// arena.alloc_slice_copy(&[0u8; 10]);
    /// let s = arena.stats();
    /// assert_eq!((s.allocation_count, s.current_allocated), (2, 18));
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Calls `f` for every block, first to last (see [`BlockInfo`](crate::BlockInfo)).
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// arena.alloc(1u8);
    /// let mut n = 0;
    /// arena.for_each_block(|b| { n += 1; assert!(b.is_current); });
    /// assert_eq!(n, 1);
    /// ```
    pub fn for_each_block(&self, f: impl FnMut(crate::BlockInfo)) {
        self.pool.for_each_block(f)
    }

    /// The large list: `(live, idle)` entries (see [`Pool::large_entries`]).
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// arena.alloc([0u8; 5000]);
    /// assert_eq!(arena.large_entries(), (1, 0));
    /// ```
    pub fn large_entries(&self) -> (usize, usize) {
        self.pool.large_entries()
    }

    /// Moves `value` into the arena. It is dropped when the arena is reset or
    /// dropped. Panics if the page layer has no memory (see [`try_alloc`](Self::try_alloc)).
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// let v = arena.alloc(vec![1, 2, 3]);
    /// v.push(4);
    /// assert_eq!(v.len(), 4);
    /// ```
    #[inline(always)]
    pub fn alloc<T: 'p>(&self, value: T) -> &mut T {
        match self.try_alloc(value) {
            Ok(r) => r,
            Err(e) => oom(e),
        }
    }

    /// Moves `value` into the arena, or returns an error (dropping `value`)
    /// if the page layer has no memory.
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// assert_eq!(*arena.try_alloc(7i32)?, 7);
    /// # Ok::<(), kmem_arena::ArenaError>(())
    /// ```
    #[inline(always)]
    pub fn try_alloc<T: 'p>(&self, value: T) -> Result<&mut T, ArenaError> {
        self.alloc_value(|| value, true)
    }

    /// Builds a value in the arena with `f`, writing it straight into arena
    /// memory (no copy of a large value through the stack). Dropped at reset.
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// let big = arena.alloc_with(|| [7u8; 100_000]);
    /// assert_eq!(big[99_999], 7);
    /// ```
    #[inline(always)]
    pub fn alloc_with<T: 'p>(&self, f: impl FnOnce() -> T) -> &mut T {
        match self.alloc_value(f, true) {
            Ok(r) => r,
            Err(e) => oom(e),
        }
    }

    /// Moves `value` into the arena and never drops it (bumpalo's behaviour).
    /// The value may borrow from the arena: this is the way to build graphs of
    /// arena references. Its destructor, if it has one, does not run.
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// let a = arena.alloc_no_drop(1u32);
    /// let pair = arena.alloc_no_drop((&*a, 2u32));
    /// assert_eq!(*pair.0 + pair.1, 3);
    /// ```
    #[inline(always)]
    pub fn alloc_no_drop<T>(&self, value: T) -> &mut T {
        match self.alloc_value(|| value, false) {
            Ok(r) => r,
            Err(e) => oom(e),
        }
    }

    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn alloc_value<T>(&self, f: impl FnOnce() -> T, track: bool) -> Result<&mut T, ArenaError> {
        let rec = if track && needs_drop::<T>() {
            Some(self.pool.drop_record()?)
        } else {
            None
        };
        let p: *mut T = if size_of::<T>() == 0 {
            NonNull::dangling().as_ptr()
        } else {
            match self.pool.alloc_fixed(size_of::<T>(), align_of::<T>()) {
                Some(p) => p.as_ptr().cast(),
                None => {
                    return Err(ArenaError::NoMemory {
                        size: size_of::<T>(),
                    });
                }
            }
        };
        // SAFETY: `p` is fresh arena memory for one `T` (or a dangling,
        // aligned pointer for a zero-sized `T`), used by nothing else.
        unsafe {
            p.write(f());
            if let Some(rec) = rec {
                // `T: 'p` (checked by the callers that track), and the arena is
                // `!Send`: the value is dropped on this thread, before `'p` ends.
                self.pool.push_drop(rec, p, 1);
            }
            Ok(&mut *p)
        }
    }

    /// Room for `len` `T`s: the run-time-size hot path, with zero sizes and
    /// everything else in [`alloc_array_slow`](Self::alloc_array_slow).
    #[inline(always)]
    fn alloc_array<T>(&self, len: usize) -> Result<*mut T, ArenaError> {
        let size = size_of::<T>()
            .checked_mul(len)
            .ok_or(ArenaError::TooLarge { size: usize::MAX })?;
        // Size 0 fails the hot path's `size >= lo` test (`lo >= 1`).
        match self.pool.try_bump(size, align_of::<T>()) {
            Some(p) => Ok(p.as_ptr().cast()),
            None => self
                .alloc_array_slow(size, align_of::<T>())
                .map(|p| p.cast()),
        }
    }

    /// What [`alloc_array`](Self::alloc_array)'s hot path does not do: zero
    /// sizes (a dangling, aligned pointer), the aligning bump, the slow path.
    #[cold]
    #[inline(never)]
    fn alloc_array_slow(&self, size: usize, align: usize) -> Result<*mut u8, ArenaError> {
        if size == 0 {
            return Ok(ptr::without_provenance_mut(align));
        }
        match self.pool.alloc_pad(size, align) {
            Some(p) => Ok(p.as_ptr()),
            None => Err(if size > isize::MAX as usize {
                ArenaError::TooLarge { size }
            } else {
                ArenaError::NoMemory { size }
            }),
        }
    }

    /// Copies a slice into the arena.
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// let s = arena.alloc_slice_copy(&[1u16, 2, 3]);
    /// s[1] = 20;
    /// assert_eq!(s, &[1, 20, 3]);
    /// ```
    #[inline]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        match self.try_alloc_slice_copy(src) {
            Ok(s) => s,
            Err(e) => oom(e),
        }
    }

    /// Copies a slice into the arena, or returns an error.
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// assert_eq!(arena.try_alloc_slice_copy(b"abc")?, b"abc");
    /// # Ok::<(), kmem_arena::ArenaError>(())
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], ArenaError> {
        let p = self.alloc_array::<T>(src.len())?;
        // SAFETY: `p` is fresh room for `src.len()` `T`s; `T: Copy`.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), p, src.len());
            Ok(core::slice::from_raw_parts_mut(p, src.len()))
        }
    }

    /// Clones a slice into the arena; the clones are dropped at reset.
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// let s = arena.alloc_slice_clone(&[String::from("a"), String::from("b")]);
    /// assert_eq!(s.concat(), "ab");
    /// ```
    pub fn alloc_slice_clone<T: Clone + 'p>(&self, src: &[T]) -> &mut [T] {
        self.alloc_slice_fill_with(src.len(), |i| src[i].clone())
    }

    /// A slice of `len` values made by `f(index)`; dropped at reset. If `f`
    /// panics, the values made so far are leaked (never dropped twice).
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// let s = arena.alloc_slice_fill_with(4, |i| i * i);
    /// assert_eq!(s, &[0, 1, 4, 9]);
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_fill_with<T: 'p>(
        &self,
        len: usize,
        mut f: impl FnMut(usize) -> T,
    ) -> &mut [T] {
        self.fill_from(len, (0..len).map(&mut f))
    }

    /// A slice of `len` copies of `value`.
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// assert_eq!(arena.alloc_slice_fill_copy(3, 9u8), &[9, 9, 9]);
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_fill_copy<T: Copy>(&self, len: usize, value: T) -> &mut [T] {
        let p = self.alloc_array::<T>(len).unwrap_or_else(|e| oom(e));
        // SAFETY: fresh room for `len` `T`s, each written before the slice is made.
        unsafe {
            for i in 0..len {
                p.add(i).write(value);
            }
            core::slice::from_raw_parts_mut(p, len)
        }
    }

    /// Collects an iterator of known length into an arena slice; the values are
    /// dropped at reset. If the iterator yields fewer items than it said, the
    /// slice is shorter; extra items are not taken.
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// let s = arena.alloc_from_iter((1..4).map(|i| i.to_string()));
    /// assert_eq!(s.join(","), "1,2,3");
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_from_iter<T: 'p, I>(&self, iter: I) -> &mut [T]
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let it = iter.into_iter();
        let len = it.len();
        self.fill_from(len, it)
    }

    #[allow(clippy::mut_from_ref)]
    fn fill_from<T>(&self, len: usize, mut it: impl Iterator<Item = T>) -> &mut [T] {
        let rec = if needs_drop::<T>() {
            Some(self.pool.drop_record().unwrap_or_else(|e| oom(e)))
        } else {
            None
        };
        let p = self.alloc_array::<T>(len).unwrap_or_else(|e| oom(e));
        let mut n = 0;
        while n < len {
            let Some(v) = it.next() else { break };
            // SAFETY: `p` has room for `len` `T`s; slot `n` is fresh.
            unsafe { p.add(n).write(v) };
            n += 1;
        }
        // SAFETY: `n` values were written at `p`; they live in this arena
        // (`T: 'p` at every caller), which is `!Send`.
        unsafe {
            if let Some(rec) = rec {
                self.pool.push_drop(rec, p, n);
            }
            core::slice::from_raw_parts_mut(p, n)
        }
    }

    /// Copies a string into the arena.
    ///
    /// ```
    /// let arena = kmem_arena::Arena::new();
    /// let s = arena.alloc_str("région");
    /// s.make_ascii_uppercase();
    /// assert_eq!(s, "RéGION");
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_str(&self, s: &str) -> &mut str {
        let b = self.alloc_slice_copy(s.as_bytes());
        // SAFETY: a copy of valid UTF-8.
        unsafe { core::str::from_utf8_unchecked_mut(b) }
    }

    /// Raw memory for `layout` (never dropped, never freed before reset unless
    /// large and given back through the [`Allocator`](allocator_api2::alloc::Allocator) impl).
    /// Zero-sized layouts get a dangling, aligned pointer.
    ///
    /// ```
    /// use core::alloc::Layout;
    /// let arena = kmem_arena::Arena::new();
    /// let p = arena.alloc_layout(Layout::from_size_align(100, 64).unwrap());
    /// assert_eq!(p.as_ptr() as usize % 64, 0);
    /// ```
    #[inline]
    pub fn alloc_layout(&self, layout: Layout) -> NonNull<u8> {
        match self.try_alloc_layout(layout) {
            Ok(p) => p,
            Err(e) => oom(e),
        }
    }

    /// Raw memory for `layout`, or an error.
    ///
    /// ```
    /// use core::alloc::Layout;
    /// let arena = kmem_arena::Arena::new();
    /// assert!(arena.try_alloc_layout(Layout::new::<[u64; 4]>()).is_ok());
    /// ```
    #[inline]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, ArenaError> {
        if layout.size() == 0 {
            // SAFETY: an alignment is never 0.
            return Ok(unsafe {
                NonNull::new_unchecked(ptr::without_provenance_mut(layout.align()))
            });
        }
        self.pool
            .alloc_typed(layout.size(), layout.align())
            .ok_or(ArenaError::NoMemory {
                size: layout.size(),
            })
    }

    /// Registers `f` to run when the arena is dropped (not when it is reset),
    /// after the handlers registered later (LIFO, like `mp_cleanup_add`).
    /// Handlers run before the arena drops its values.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// let log = RefCell::new(Vec::new());
    /// {
    ///     let mut arena = kmem_arena::Arena::new();
    ///     arena.on_destroy(|| log.borrow_mut().push("first"));
    ///     arena.on_destroy(|| log.borrow_mut().push("second"));
    ///     arena.reset();
    ///     assert!(log.borrow().is_empty());
    /// }
    /// assert_eq!(*log.borrow(), ["second", "first"]);
    /// ```
    pub fn on_destroy<F: FnOnce() + 'p>(&self, f: F) {
        if let Err(e) = add_closure(&self.pool, f) {
            oom(e)
        }
    }

    /// Drops every value in the arena (newest first), frees its large
    /// allocations and rewinds its blocks for reuse. Cleanup handlers stay.
    ///
    /// ```
    /// let mut arena = kmem_arena::Arena::new();
    /// let first = arena.alloc(1u64) as *mut u64;
    /// arena.reset();
    /// assert_eq!(arena.alloc(2u64) as *mut u64, first);
    /// ```
    pub fn reset(&mut self) {
        self.pool.reset();
    }

    pub(crate) fn pool(&self) -> &Pool<P> {
        &self.pool
    }
}

/// Stores `f` in a cleanup record of `pool` with a handler that calls it.
pub(crate) fn add_closure<P: PageBackend, F: FnOnce()>(
    pool: &Pool<P>,
    f: F,
) -> Result<(), ArenaError> {
    unsafe extern "C-unwind" fn call_once<F: FnOnce()>(data: *mut c_void) {
        // SAFETY: `data` holds the `F` written by `add_closure`; the pool runs
        // each record once.
        let f = unsafe { data.cast::<F>().read() };
        f()
    }
    let extra = if align_of::<F>() > MP_ALIGNMENT {
        align_of::<F>()
    } else {
        0
    };
    let c = pool.cleanup_add(size_of::<F>() + extra)?;
    // SAFETY: `c` is a fresh record of `pool` with `size_of::<F>() + extra`
    // bytes of 16-aligned data (or none, for a zero-sized `F`).
    unsafe {
        let data = (*c.as_ptr()).data.cast::<u8>();
        let slot: *mut F = if size_of::<F>() == 0 {
            NonNull::dangling().as_ptr()
        } else {
            data.add(data.align_offset(align_of::<F>())).cast()
        };
        slot.write(f);
        (*c.as_ptr()).data = slot.cast();
        (*c.as_ptr()).handler = Some(call_once::<F>);
    }
    Ok(())
}

/// Runs the cleanups, drops the values, gives every page back. (A `Drop`
/// impl on `Arena` itself, so the borrow checker knows that dropping an
/// `Arena<'p>` may use `'p`: values with references shorter than the arena
/// cannot go in.)
impl<P: PageBackend> Drop for Arena<'_, P> {
    fn drop(&mut self) {
        self.pool.destroy();
    }
}

impl<P: PageBackend> core::fmt::Debug for Arena<'_, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Arena").field("pool", &self.pool).finish()
    }
}
