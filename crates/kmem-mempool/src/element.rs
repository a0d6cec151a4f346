//! `Element`: an element owned by the caller, returned to its pool on drop.

use core::fmt;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use crate::{Backend, Mempool};

/// An element of a [`Mempool`], owned by the caller; dropping it frees it to
/// the pool (refilling the reserve or returning it to the backend).
///
/// It dereferences to the backend's element type.
///
/// ```
/// use kmem_mempool::{BoxBackend, Mempool};
/// let pool = Mempool::new(1, BoxBackend::new(|| String::with_capacity(64)))?;
/// {
///     let mut s = pool.alloc();
///     s.push_str("request 1");
/// } // back to the pool here
/// assert_eq!(pool.outstanding(), 0);
/// # Ok::<(), kmem_mempool::MempoolError>(())
/// ```
pub struct Element<'p, B: Backend> {
    /// The element; owned by this handle until it drops or `into_raw`.
    ptr: NonNull<B::Elem>,
    pool: &'p Mempool<B>,
}

// SAFETY: the handle owns its element exclusively; sending it sends the
// element (`Elem: Send`) and a shared reference to the pool (which is `Sync`
// under the same bound).
unsafe impl<B: Backend> Send for Element<'_, B> where B::Elem: Send {}
// SAFETY: sharing the handle shares `&Elem` (`Elem: Sync`) and `&Mempool`.
unsafe impl<B: Backend> Sync for Element<'_, B> where B::Elem: Sync + Send {}

impl<'p, B: Backend> Element<'p, B> {
    /// Takes ownership of a raw element of `pool`.
    ///
    /// ```
    /// use kmem_mempool::{BoxBackend, Element, Gfp, Mempool};
    /// let pool = Mempool::new(1, BoxBackend::new(|| 0u8))?;
    /// let raw = pool.alloc_raw(Gfp::KERNEL)?;
    /// // SAFETY: `raw` is a live element of `pool`, owned by nobody else.
    /// let e = unsafe { Element::from_raw(&pool, raw) };
    /// drop(e);
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    ///
    /// # Safety
    ///
    /// `ptr` must be an element `pool` handed out and not freed, and nothing
    /// else may use or free it afterwards.
    #[inline]
    pub unsafe fn from_raw(pool: &'p Mempool<B>, ptr: NonNull<B::Elem>) -> Self {
        Element { ptr, pool }
    }

    /// The element's address.
    ///
    /// ```
    /// # use kmem_mempool::{BoxBackend, Mempool};
    /// let pool = Mempool::new(1, BoxBackend::new(|| 0u64))?;
    /// let e = pool.alloc();
    /// assert_eq!(e.as_ptr().as_ptr() as usize % 8, 0);
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    #[inline]
    pub fn as_ptr(&self) -> NonNull<B::Elem> {
        self.ptr
    }

    /// Gives up ownership without freeing; free it later with
    /// [`Mempool::free_raw`] (it still counts as outstanding).
    ///
    /// ```
    /// # use kmem_mempool::{BoxBackend, Mempool};
    /// let pool = Mempool::new(1, BoxBackend::new(|| 0u8))?;
    /// let p = pool.alloc().into_raw();
    /// assert_eq!(pool.outstanding(), 1);
    /// // SAFETY: `p` is a live element of `pool`.
    /// unsafe { pool.free_raw(p)? };
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    #[inline]
    pub fn into_raw(self) -> NonNull<B::Elem> {
        let p = self.ptr;
        core::mem::forget(self);
        p
    }

    /// The pool the element belongs to.
    ///
    /// ```
    /// # use kmem_mempool::{BoxBackend, Mempool};
    /// let pool = Mempool::new(1, BoxBackend::new(|| 0u8))?;
    /// let e = pool.alloc();
    /// assert!(core::ptr::eq(e.pool(), &pool));
    /// # Ok::<(), kmem_mempool::MempoolError>(())
    /// ```
    #[inline]
    pub fn pool(&self) -> &'p Mempool<B> {
        self.pool
    }
}

impl<B: Backend> Deref for Element<'_, B> {
    type Target = B::Elem;
    #[inline]
    fn deref(&self) -> &B::Elem {
        // SAFETY: the backend contract makes the element a valid, initialised
        // `Elem`, and this handle owns it.
        unsafe { self.ptr.as_ref() }
    }
}

impl<B: Backend> DerefMut for Element<'_, B> {
    #[inline]
    fn deref_mut(&mut self) -> &mut B::Elem {
        // SAFETY: as in `deref`, and the handle is borrowed mutably.
        unsafe { self.ptr.as_mut() }
    }
}

impl<B: Backend> Drop for Element<'_, B> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the handle owned a live element of this pool; it is not used
        // again. (Only unsafe misuse of `free_raw` elsewhere can have used up
        // its outstanding count; then the free is refused and the element kept.)
        let _ = unsafe { self.pool.free_raw(self.ptr) };
    }
}

impl<B: Backend> fmt::Debug for Element<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Element({:p})", self.ptr)
    }
}
