//! An allocation that frees itself: the RAII option.

use core::ops::Deref;

use kmem_platform::{Os, PageSource};

use crate::algo::Algo;
use crate::error::GenPoolError;
use crate::pool::{Allocation, GenPool};

/// An [`Allocation`] that is given back to its pool when dropped. It borrows
/// the pool, so the pool cannot be destroyed while it lives.
///
/// ```
/// let pool = kmem_genalloc::GenPool::new(12).unwrap();
/// pool.add(0x10_0000, 0x10_0000).unwrap();
/// {
///     let buf = pool.alloc_guard(8192).unwrap();
///     assert_eq!(buf.addr, 0x10_0000);
///     assert_eq!(pool.avail(), 0x10_0000 - 8192);
/// }
/// assert_eq!(pool.avail(), 0x10_0000, "freed on drop");
/// ```
#[must_use = "dropping the guard frees the allocation at once"]
pub struct PoolAlloc<'p, S: PageSource = Os> {
    pool: &'p GenPool<S>,
    alloc: Allocation,
}

impl<S: PageSource> core::fmt::Debug for PoolAlloc<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.alloc.fmt(f)
    }
}

impl<'p, S: PageSource> PoolAlloc<'p, S> {
    /// Keeps the allocation: the guard is dropped without freeing it.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10_0000, 0x10_0000).unwrap();
    /// let a = pool.alloc_guard(4096).unwrap().into_inner();
    /// assert_eq!(pool.avail(), 0x10_0000 - 4096);
    /// pool.free_alloc(a).unwrap();
    /// ```
    pub fn into_inner(self) -> Allocation {
        let a = self.alloc;
        core::mem::forget(self);
        a
    }

    /// The pool the allocation came from.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10_0000, 0x10_0000).unwrap();
    /// let g = pool.alloc_guard(1).unwrap();
    /// assert_eq!(g.pool().name(), "genpool");
    /// ```
    pub fn pool(&self) -> &'p GenPool<S> {
        self.pool
    }
}

impl<S: PageSource> Deref for PoolAlloc<'_, S> {
    type Target = Allocation;
    fn deref(&self) -> &Allocation {
        &self.alloc
    }
}

impl<S: PageSource> Drop for PoolAlloc<'_, S> {
    fn drop(&mut self) {
        if let Err(e) = self.pool.free_alloc(self.alloc) {
            // Only possible if someone freed the range behind the guard's back.
            kmem_platform::kmem_report!("genalloc: pool '{}': guard drop: {}", self.pool.name(), e);
        }
    }
}

impl<S: PageSource> GenPool<S> {
    /// Allocates `size` bytes as a guard that frees them when dropped.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10_0000, 0x2000).unwrap();
    /// let a = pool.alloc_guard(4096).unwrap();
    /// let b = pool.alloc_guard(4096).unwrap();
    /// assert!(pool.alloc_guard(4096).is_err());
    /// drop(a);
    /// assert!(pool.alloc_guard(4096).is_ok());
    /// # drop(b);
    /// ```
    pub fn alloc_guard(&self, size: usize) -> Result<PoolAlloc<'_, S>, GenPoolError> {
        self.alloc_guard_algo(size, self.algo())
    }

    /// [`alloc_guard`](Self::alloc_guard) with a given algorithm.
    ///
    /// ```
    /// use kmem_genalloc::Algo;
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10_0000, 0x10_0000).unwrap();
    /// let g = pool.alloc_guard_algo(4096, Algo::Fixed { offset: 0x5000 }).unwrap();
    /// assert_eq!(g.addr, 0x10_5000);
    /// ```
    pub fn alloc_guard_algo(
        &self,
        size: usize,
        algo: Algo<'_>,
    ) -> Result<PoolAlloc<'_, S>, GenPoolError> {
        let alloc = self.alloc_algo(size, algo)?;
        Ok(PoolAlloc { pool: self, alloc })
    }
}
