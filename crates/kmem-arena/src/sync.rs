//! `SyncArena`: a region pool behind a lock, shareable between threads.

use core::marker::PhantomData;
use core::mem::{align_of, needs_drop, size_of};
use core::ptr::{self, NonNull};

use kmem_platform::Mutex;

use crate::error::ArenaError;
use crate::pages::{Global, PageBackend};
use crate::pool::Pool;
use crate::stats::PoolStats;
use crate::typed::{DEFAULT_BLOCK_SIZE, add_closure};

/// A thread-safe [`Arena`](crate::Arena): `Send + Sync`, every allocation
/// takes the pool's lock (an uncontended futex lock: one atomic exchange in,
/// one out). Values it drops must be `Send`, because the arena may be reset or
/// dropped on another thread. Values are dropped at reset and drop, as in
/// `Arena`.
///
/// ```
/// use kmem_arena::SyncArena;
/// let arena = SyncArena::new();
/// let total: u64 = std::thread::scope(|s| {
///     let hs: Vec<_> = (0..4u64)
///         .map(|t| {
///             let arena = &arena;
///             s.spawn(move || {
///                 let v = arena.alloc_slice_copy(&[t; 100]);
///                 v.iter().sum::<u64>()
///             })
///         })
///         .collect();
///     hs.into_iter().map(|h| h.join().unwrap()).sum()
/// });
/// assert_eq!(total, 600);
/// assert_eq!(arena.stats().allocation_count, 4);
/// ```
pub struct SyncArena<'p, P: PageBackend + Send = Global> {
    pool: Mutex<Pool<P>>,
    /// Invariant in `'p`, as for `Arena`; `Send + Sync` left to the lock.
    _values: PhantomData<fn(&'p ()) -> &'p ()>,
}

impl SyncArena<'_, Global> {
    /// A shared arena over the process's page allocator with 64 KiB blocks.
    ///
    /// ```
    /// let arena = kmem_arena::SyncArena::new();
    /// assert_eq!(*arena.alloc(3u8), 3);
    /// ```
    pub fn new() -> Self {
        Self::new_in(Global)
    }
}

impl Default for SyncArena<'_, Global> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'p, P: PageBackend + Send> SyncArena<'p, P> {
    /// A shared arena with 64 KiB blocks from `pages`.
    ///
    /// ```
    /// let arena = kmem_arena::SyncArena::new_in(kmem_arena::Global);
    /// assert_eq!(arena.alloc_str("x"), "x");
    /// ```
    pub fn new_in(pages: P) -> Self {
        Self::with_block_size_in(DEFAULT_BLOCK_SIZE, pages)
            .expect("the default block size is valid")
    }

    /// A shared arena whose blocks hold at least `size` bytes (at least 4095,
    /// as for [`Arena::with_block_size`](crate::Arena::with_block_size)).
    ///
    /// ```
    /// let arena = kmem_arena::SyncArena::with_block_size_in(512, kmem_arena::Global)?;
    /// assert_eq!(arena.stats().allocation_count, 0);
    /// # Ok::<(), kmem_arena::ArenaError>(())
    /// ```
    pub fn with_block_size_in(size: usize, pages: P) -> Result<Self, ArenaError> {
        Ok(SyncArena {
            pool: Mutex::new(Pool::new(pages, crate::typed::arena_block_size(size)?)?),
            _values: PhantomData,
        })
    }

    pub(crate) fn with_pool<R>(&self, f: impl FnOnce(&Pool<P>) -> R) -> R {
        f(&self.pool.lock())
    }

    /// Moves `value` into the arena; dropped at reset or drop. Panics if out of memory.
    ///
    /// ```
    /// let arena = kmem_arena::SyncArena::new();
    /// arena.alloc(String::from("shared")).push('!');
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn alloc<T: Send + 'p>(&self, value: T) -> &mut T {
        self.try_alloc(value)
            .unwrap_or_else(|e| panic!("kmem-arena: {e}"))
    }

    /// Moves `value` into the arena, or returns an error.
    ///
    /// ```
    /// let arena = kmem_arena::SyncArena::new();
    /// assert_eq!(*arena.try_alloc(1u32)?, 1);
    /// # Ok::<(), kmem_arena::ArenaError>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc<T: Send + 'p>(&self, value: T) -> Result<&mut T, ArenaError> {
        let pool = self.pool.lock();
        let rec = if needs_drop::<T>() {
            Some(pool.drop_record()?)
        } else {
            None
        };
        let p: *mut T = if size_of::<T>() == 0 {
            NonNull::dangling().as_ptr()
        } else {
            pool.alloc_fixed(size_of::<T>(), align_of::<T>())
                .ok_or(ArenaError::NoMemory {
                    size: size_of::<T>(),
                })?
                .as_ptr()
                .cast()
        };
        // SAFETY: fresh arena memory for one `T`; `T: Send + 'p`, so the pool
        // may drop it on any thread before `'p` ends.
        unsafe {
            p.write(value);
            if let Some(rec) = rec {
                pool.push_drop(rec, p, 1);
            }
            Ok(&mut *p)
        }
    }

    /// Copies a slice into the arena.
    ///
    /// ```
    /// let arena = kmem_arena::SyncArena::new();
    /// assert_eq!(arena.alloc_slice_copy(&[1, 2]), &[1, 2]);
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        let size = size_of_val(src);
        let p: *mut T = if size == 0 {
            NonNull::dangling().as_ptr()
        } else {
            match self.with_pool(|pool| pool.alloc_typed(size, align_of::<T>())) {
                Some(p) => p.as_ptr().cast(),
                None => panic!("kmem-arena: {}", ArenaError::NoMemory { size }),
            }
        };
        // SAFETY: fresh room for `src.len()` `T`s; `T: Copy` is never dropped.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), p, src.len());
            core::slice::from_raw_parts_mut(p, src.len())
        }
    }

    /// Copies a string into the arena.
    ///
    /// ```
    /// let arena = kmem_arena::SyncArena::new();
    /// assert_eq!(arena.alloc_str("abc"), "abc");
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_str(&self, s: &str) -> &mut str {
        let b = self.alloc_slice_copy(s.as_bytes());
        // SAFETY: a copy of valid UTF-8.
        unsafe { core::str::from_utf8_unchecked_mut(b) }
    }

    /// Registers `f` to run when the arena is dropped (LIFO; not on reset).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// let hits = AtomicU32::new(0);
    /// drop({ let a = kmem_arena::SyncArena::new(); a.on_destroy(|| { hits.fetch_add(1, Ordering::Relaxed); }); a });
    /// assert_eq!(hits.load(Ordering::Relaxed), 1);
    /// ```
    pub fn on_destroy<F: FnOnce() + Send + 'p>(&self, f: F) {
        if let Err(e) = self.with_pool(|pool| add_closure(pool, f)) {
            panic!("kmem-arena: {e}")
        }
    }

    /// Drops every value, frees large allocations, rewinds the blocks.
    ///
    /// ```
    /// let mut arena = kmem_arena::SyncArena::new();
    /// arena.alloc(1u8);
    /// arena.reset();
    /// assert_eq!(arena.stats().current_allocated, 0);
    /// ```
    pub fn reset(&mut self) {
        self.pool.get_mut().reset();
    }

    /// The statistics (see [`PoolStats`]).
    ///
    /// ```
    /// let arena = kmem_arena::SyncArena::new();
    /// assert_eq!(arena.stats().failed_count, 0);
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.with_pool(|p| p.stats())
    }
}

/// As for [`Arena`](crate::Arena): dropping may use `'p`.
impl<P: PageBackend + Send> Drop for SyncArena<'_, P> {
    fn drop(&mut self) {
        self.pool.get_mut().destroy();
    }
}

impl<P: PageBackend + Send> core::fmt::Debug for SyncArena<'_, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SyncArena")
            .field("stats", &self.stats())
            .finish()
    }
}
