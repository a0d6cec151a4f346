//! `ObjectCache<T>`: a safe, typed slab cache. Objects are owned handles
//! that go back to the cache when dropped, so a double free cannot be
//! written; the constructor is a closure that runs once per object when its
//! slab is created.

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use kmem_page::Gfp;

use crate::{CacheBuilder, KmemCache, SlabError, SlabFlags, SlabInfo, SlabPages};

/// A cache of `T`s (Linux `KMEM_CACHE(struct t, flags)` with a constructor).
///
/// Every object is built once by the constructor, when the slab it lives in
/// is created; [`alloc`](ObjectCache::alloc) hands out an object in whatever
/// state its last user left it (Linux's contract: give objects back in
/// constructed state), and dropping the handle returns it without dropping
/// the `T`. The `T`s are dropped when their slab is released (shrink, reap,
/// destroy).
///
/// ```
/// use kmem_slab::ObjectCache;
/// #[derive(Debug)]
/// struct Conn { fd: i32, buf: [u8; 128] }
/// let cache = ObjectCache::new("conn", || Conn { fd: -1, buf: [0; 128] }).unwrap();
/// let mut c = cache.alloc().unwrap();
/// assert_eq!(c.fd, -1);
/// c.fd = 3;
/// c.fd = -1;                   // back to the constructed state
/// drop(c);                     // returns to the cache
/// std::thread::scope(|s| {
///     s.spawn(|| assert_eq!(cache.alloc().unwrap().fd, -1));
/// });
/// ```
pub struct ObjectCache<T> {
    raw: ManuallyDrop<KmemCache>,
    _t: PhantomData<fn() -> T>,
}

// SAFETY: objects move between threads through the cache, so `T: Send` is
// required; the constructor is `Send + Sync`; the raw cache is thread-safe.
unsafe impl<T: Send> Send for ObjectCache<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for ObjectCache<T> {}

impl<T: Send + 'static> ObjectCache<T> {
    /// A cache of `T`s built by `ctor`, over [`kmem_page::global()`].
    pub fn new(
        name: &str,
        ctor: impl Fn() -> T + Send + Sync + 'static,
    ) -> Result<Self, SlabError> {
        Self::build(name, SlabFlags::empty(), None, ctor)
    }

    /// Like [`new`](Self::new), with flags and (optionally) other pages.
    ///
    /// ```
    /// use kmem_slab::{ObjectCache, SlabFlags};
    /// let c = ObjectCache::with_options("hot", SlabFlags::HWCACHE_ALIGN, None, || [0u64; 3]).unwrap();
    /// assert_eq!(c.raw().size(), 32);
    /// ```
    pub fn with_options(
        name: &str,
        flags: SlabFlags,
        pages: Option<&'static dyn SlabPages>,
        ctor: impl Fn() -> T + Send + Sync + 'static,
    ) -> Result<Self, SlabError> {
        Self::build(name, flags, pages, ctor)
    }

    fn build(
        name: &str,
        flags: SlabFlags,
        pages: Option<&'static dyn SlabPages>,
        ctor: impl Fn() -> T + Send + Sync + 'static,
    ) -> Result<Self, SlabError> {
        unsafe fn drop_t<T>(p: *mut u8) {
            // SAFETY: slabs of a typed cache hold constructed `T`s.
            unsafe { core::ptr::drop_in_place(p.cast::<T>()) }
        }
        let mut b = CacheBuilder::new(name, core::mem::size_of::<T>().max(1))
            .align(core::mem::align_of::<T>())
            .flags(flags)
            .ctor(move |p: NonNull<u8>| {
                // SAFETY: `p` is a fresh object of `size_of::<T>()` bytes aligned for `T`.
                unsafe { p.cast::<T>().as_ptr().write(ctor()) }
            });
        if let Some(pages) = pages {
            b = b.pages(pages);
        }
        if core::mem::needs_drop::<T>() {
            b = b.dtor(drop_t::<T>);
        }
        Ok(ObjectCache {
            raw: ManuallyDrop::new(b.create()?),
            _t: PhantomData,
        })
    }

    /// Takes an object (constructed once, when its slab was made).
    pub fn alloc(&self) -> Result<Obj<'_, T>, SlabError> {
        let p = self.raw.alloc(Gfp::KERNEL)?;
        Ok(Obj {
            ptr: p.cast(),
            cache: self,
        })
    }

    /// The raw cache underneath (for slabinfo, geometry, shrink).
    pub fn raw(&self) -> &KmemCache {
        &self.raw
    }

    /// The cache's slabinfo row.
    pub fn info(&self) -> SlabInfo {
        self.raw.info()
    }

    /// Releases every free slab now (dropping their `T`s). Returns slabs released.
    pub fn shrink(&self) -> usize {
        self.raw.shrink()
    }
}

impl<T> Drop for ObjectCache<T> {
    fn drop(&mut self) {
        // SAFETY: dropped once; no `Obj` can outlive `self` (they borrow it),
        // so only leaked handles can keep objects in use, and then the cache
        // is kept (reported) so they stay valid.
        let raw = unsafe { ManuallyDrop::take(&mut self.raw) };
        if let Err((raw, _)) = raw.destroy() {
            core::mem::forget(raw);
        }
    }
}

impl<T> fmt::Debug for ObjectCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ObjectCache").field(&*self.raw).finish()
    }
}

/// An object of an [`ObjectCache`], owned: dropping it gives it back.
pub struct Obj<'c, T> {
    /// An allocated object of `cache`.
    ptr: NonNull<T>,
    cache: &'c ObjectCache<T>,
}

// SAFETY: the handle owns its `T` exclusively.
unsafe impl<T: Send> Send for Obj<'_, T> {}
// SAFETY: shared access only hands out `&T`.
unsafe impl<T: Sync> Sync for Obj<'_, T> {}

impl<T> Obj<'_, T> {
    /// The object's address.
    pub fn as_ptr(this: &Self) -> *mut T {
        this.ptr.as_ptr()
    }
}

impl<T> Deref for Obj<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a constructed `T` owned by this handle.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for Obj<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, exclusively.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for Obj<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the handle owns an allocated object of this cache.
        let r = unsafe { self.cache.raw.free(self.ptr.cast()) };
        debug_assert!(r.is_ok());
    }
}

impl<T: fmt::Debug> fmt::Debug for Obj<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
