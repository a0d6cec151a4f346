//! Where a pool's elements come from when the reserve is not needed: the
//! [`Backend`] trait and the user-supplied backends — Rust closures
//! ([`FnBackend`], [`BoxBackend`]), C function pointers ([`CBackend`], the
//! kernel's `mempool_alloc_t`/`mempool_free_t` with `pool_data`) — and a
//! fault-injecting wrapper ([`FaultyBackend`]) for testing code that must
//! survive memory pressure. The stock backends (pages, and later slab and
//! kmalloc) are in [`stock`](crate::stock).

use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use kmem_page::Gfp;

/// A pool's element allocator (the kernel's `pool->alloc`/`pool->free` pair
/// with its `pool_data`).
///
/// The pool calls [`alloc`](Backend::alloc) first on every allocation and
/// only falls back to its reserve when it returns `None`; it calls
/// [`free`](Backend::free) for elements the reserve does not need. Neither is
/// ever called with the pool's lock held, so a backend may block (when `gfp`
/// allows), take its own locks, or call into another pool.
///
/// # Safety
///
/// An implementation promises that every pointer `alloc` returns is a valid,
/// aligned, initialised `Self::Elem` that nothing else uses until it is passed
/// to `free` of the same backend (the pool hands it out as `&mut Elem`), and
/// that `alloc` and `free` may be called from any thread at the same time.
///
/// ```
/// use core::ptr::NonNull;
/// use kmem_mempool::{Backend, Gfp, Mempool};
///
/// /// Elements are boxed `u64`s (any allocator would do).
/// struct Counters;
/// // SAFETY: `alloc` returns fresh, initialised boxes; `free` takes them back.
/// unsafe impl Backend for Counters {
///     type Elem = u64;
///     fn alloc(&self, _gfp: Gfp) -> Option<NonNull<u64>> {
///         Some(NonNull::from(Box::leak(Box::new(0))))
///     }
///     unsafe fn free(&self, e: NonNull<u64>) {
///         // SAFETY: `e` came from `alloc` above (the pool's promise).
///         drop(unsafe { Box::from_raw(e.as_ptr()) });
///     }
/// }
/// let pool = Mempool::new(2, Counters)?;
/// *pool.alloc() += 1;
/// # Ok::<(), kmem_mempool::MempoolError>(())
/// ```
pub unsafe trait Backend: Sync {
    /// What an element is.
    type Elem;

    /// Allocates one element, behaving as `gfp` allows (the pool passes the
    /// caller's flags, first without `__GFP_DIRECT_RECLAIM`/`__GFP_IO`).
    /// `None` when no element can be had now.
    fn alloc(&self, gfp: Gfp) -> Option<NonNull<Self::Elem>>;

    /// Frees an element.
    ///
    /// # Safety
    ///
    /// `elem` came from [`alloc`](Backend::alloc) of this backend and is not
    /// used afterwards.
    unsafe fn free(&self, elem: NonNull<Self::Elem>);

    /// Bytes of one element, for the pool's statistics
    /// ([`Mempool::pool_stats`](crate::Mempool::pool_stats)). By default
    /// `size_of::<Elem>()` (0 for the opaque elements of C functions, whose
    /// size the pool cannot know).
    fn elem_bytes(&self) -> usize {
        core::mem::size_of::<Self::Elem>()
    }

    /// Names the backend in reports and `Debug` output (e.g. `pages order 2`).
    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        out.write_str(core::any::type_name::<Self>())
    }
}

/// An element whose contents the pool knows nothing about: a C function
/// pointer backend's elements. Zero-sized, so a reference to it claims nothing
/// about the memory; use [`Element::as_ptr`](crate::Element::as_ptr).
///
/// ```
/// assert_eq!(core::mem::size_of::<kmem_mempool::Opaque>(), 0);
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct Opaque {
    _private: [u8; 0],
}

/// A backend made of two Rust closures: `alloc(gfp) -> Option<NonNull<T>>`
/// and `free(NonNull<T>)`.
///
/// ```
/// use core::ptr::NonNull;
/// use kmem_mempool::{FnBackend, Gfp, Mempool};
/// // SAFETY: the closures allocate and free boxed `[u8; 64]` buffers.
/// let backend = unsafe {
///     FnBackend::new(
///         |_gfp: Gfp| Some(NonNull::from(Box::leak(Box::new([0u8; 64])))),
///         |p: NonNull<[u8; 64]>| drop(Box::from_raw(p.as_ptr())),
///     )
/// };
/// let pool = Mempool::new(4, backend)?;
/// let mut buf = pool.alloc();
/// buf[0] = 7;
/// # Ok::<(), kmem_mempool::MempoolError>(())
/// ```
pub struct FnBackend<T, A, F> {
    alloc: A,
    free: F,
    _elem: PhantomData<fn() -> T>,
}

impl<T, A, F> FnBackend<T, A, F>
where
    A: Fn(Gfp) -> Option<NonNull<T>> + Sync,
    F: Fn(NonNull<T>) + Sync,
{
    /// A backend calling `alloc` and `free`.
    ///
    /// # Safety
    ///
    /// The closures must together keep the [`Backend`] contract: `alloc`
    /// returns valid, initialised, unaliased `T`s, `free` accepts them, and
    /// both are callable from any thread at once.
    pub unsafe fn new(alloc: A, free: F) -> Self {
        FnBackend {
            alloc,
            free,
            _elem: PhantomData,
        }
    }
}

// SAFETY: the constructor's caller promised the contract.
unsafe impl<T, A, F> Backend for FnBackend<T, A, F>
where
    A: Fn(Gfp) -> Option<NonNull<T>> + Sync,
    F: Fn(NonNull<T>) + Sync,
{
    type Elem = T;
    #[inline]
    fn alloc(&self, gfp: Gfp) -> Option<NonNull<T>> {
        (self.alloc)(gfp)
    }
    #[inline]
    unsafe fn free(&self, elem: NonNull<T>) {
        (self.free)(elem)
    }
    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        write!(out, "closures<{}>", core::any::type_name::<T>())
    }
}

/// A safe, typed backend: each element is a `Box<T>` made by `init()`.
/// Elements keep their contents when they pass through the reserve (as in the
/// kernel, the pool never re-initialises an element).
///
/// ```
/// use kmem_mempool::{BoxBackend, Mempool};
/// let pool = Mempool::new(8, BoxBackend::new(|| Vec::<u8>::with_capacity(512)))?;
/// let mut v = pool.alloc();
/// v.extend_from_slice(b"request");
/// assert!(v.capacity() >= 512);
/// # Ok::<(), kmem_mempool::MempoolError>(())
/// ```
#[cfg(feature = "std")]
pub struct BoxBackend<T, F> {
    init: F,
    _elem: PhantomData<fn() -> T>,
}

#[cfg(feature = "std")]
impl<T, F: Fn() -> T + Sync> BoxBackend<T, F> {
    /// A backend boxing `init()` for each element.
    pub fn new(init: F) -> Self {
        BoxBackend {
            init,
            _elem: PhantomData,
        }
    }
}

#[cfg(feature = "std")]
// SAFETY: `Box::new` gives a valid, initialised, unaliased `T`; `free`
// rebuilds exactly that box.
unsafe impl<T, F: Fn() -> T + Sync> Backend for BoxBackend<T, F> {
    type Elem = T;
    fn alloc(&self, _gfp: Gfp) -> Option<NonNull<T>> {
        Some(NonNull::from(std::boxed::Box::leak(std::boxed::Box::new(
            (self.init)(),
        ))))
    }
    unsafe fn free(&self, elem: NonNull<T>) {
        // SAFETY: `elem` came from `Box::leak` in `alloc` (the trait's contract).
        drop(unsafe { std::boxed::Box::from_raw(elem.as_ptr()) });
    }
    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        write!(out, "Box<{}>", core::any::type_name::<T>())
    }
}

/// The kernel's `mempool_alloc_t`: `void *(gfp_t gfp_mask, void *pool_data)`.
pub type MempoolAllocFn = unsafe extern "C" fn(gfp: u32, pool_data: *mut c_void) -> *mut c_void;
/// The kernel's `mempool_free_t`: `void (void *element, void *pool_data)`.
pub type MempoolFreeFn = unsafe extern "C" fn(element: *mut c_void, pool_data: *mut c_void);

/// A backend of C functions, as `mempool_create` takes them: `alloc_fn(gfp,
/// pool_data)` returns an element or NULL, `free_fn(element, pool_data)` frees
/// it.
///
/// ```
/// use core::ffi::c_void;
/// use kmem_mempool::{CBackend, Mempool};
/// unsafe extern "C" fn alloc_page(gfp: u32, order: *mut c_void) -> *mut c_void {
///     kmem_page::global()
///         .alloc_raw(order as usize as u32, kmem_page::Gfp(gfp))
///         .map_or(core::ptr::null_mut(), |p| p.as_ptr().cast())
/// }
/// unsafe extern "C" fn free_page(e: *mut c_void, order: *mut c_void) {
///     let e = core::ptr::NonNull::new(e.cast::<u8>()).unwrap();
///     // SAFETY: the pool only passes elements `alloc_page` returned.
///     unsafe { kmem_page::global().free_raw(e, order as usize as u32).unwrap() };
/// }
/// // SAFETY: the functions are thread-safe and free what they allocate.
/// let backend = unsafe { CBackend::new(alloc_page, free_page, core::ptr::null_mut()) };
/// let pool = Mempool::new(2, backend)?;
/// let e = pool.alloc();
/// assert_eq!(e.as_ptr().as_ptr() as usize % 4096, 0);
/// # drop(e); drop(pool); kmem_page::global().trim(0); // hand the cached region back (Miri checks for leaks)
/// # Ok::<(), kmem_mempool::MempoolError>(())
/// ```
#[derive(Clone, Copy)]
pub struct CBackend {
    alloc_fn: MempoolAllocFn,
    free_fn: MempoolFreeFn,
    pool_data: *mut c_void,
}

// SAFETY: the C ABI requires `alloc_fn`/`free_fn` to be callable from any
// thread; `pool_data` is only passed back to them.
unsafe impl Send for CBackend {}
// SAFETY: as above.
unsafe impl Sync for CBackend {}

impl CBackend {
    /// A backend calling `alloc_fn(gfp, pool_data)` and `free_fn(element, pool_data)`.
    ///
    /// # Safety
    ///
    /// The functions must be thread-safe, `alloc_fn` must return NULL or an
    /// element nothing else uses, and `free_fn` must accept what `alloc_fn`
    /// returned, for as long as the pool lives.
    pub unsafe fn new(
        alloc_fn: MempoolAllocFn,
        free_fn: MempoolFreeFn,
        pool_data: *mut c_void,
    ) -> Self {
        CBackend {
            alloc_fn,
            free_fn,
            pool_data,
        }
    }

    /// The `pool_data` given at creation.
    pub fn pool_data(&self) -> *mut c_void {
        self.pool_data
    }

    /// The allocation function.
    pub fn alloc_fn(&self) -> MempoolAllocFn {
        self.alloc_fn
    }

    /// The free function.
    pub fn free_fn(&self) -> MempoolFreeFn {
        self.free_fn
    }
}

// SAFETY: the constructor's caller promised the C functions keep the
// contract; `Opaque` is zero-sized, so a reference to an element claims nothing.
unsafe impl Backend for CBackend {
    type Elem = Opaque;
    #[inline]
    fn alloc(&self, gfp: Gfp) -> Option<NonNull<Opaque>> {
        // SAFETY: the constructor's caller promised `alloc_fn` is callable so.
        NonNull::new(unsafe { (self.alloc_fn)(gfp.0, self.pool_data) }.cast())
    }
    #[inline]
    unsafe fn free(&self, elem: NonNull<Opaque>) {
        // SAFETY: `elem` came from `alloc_fn` (this method's contract).
        unsafe { (self.free_fn)(elem.as_ptr().cast(), self.pool_data) }
    }
    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        write!(
            out,
            "alloc_fn {:p}, free_fn {:p}, pool_data {:p}",
            self.alloc_fn as *const (), self.free_fn as *const (), self.pool_data
        )
    }
}

impl fmt::Debug for CBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f)
    }
}

/// Wraps a backend and makes it fail on demand: all the time
/// ([`set_failing`](Self::set_failing)) or for the next `n` allocations
/// ([`fail_next`](Self::fail_next)). It counts what passes through, so tests
/// can check that the pool fell back to its reserve exactly when it should.
///
/// ```
/// use kmem_mempool::{BoxBackend, FaultyBackend, Mempool};
/// let pool = Mempool::new(2, FaultyBackend::new(BoxBackend::new(|| 0u32)))?;
/// pool.backend().set_failing(true);
/// let a = pool.try_alloc().expect("from the reserve");
/// let b = pool.try_alloc().expect("from the reserve");
/// assert!(pool.try_alloc().is_none(), "reserve empty, backend failing");
/// assert_eq!(pool.backend().failures(), 3);
/// # drop((a, b));
/// # Ok::<(), kmem_mempool::MempoolError>(())
/// ```
pub struct FaultyBackend<B> {
    inner: B,
    /// Fail every allocation while set.
    failing: AtomicBool,
    /// Fail this many more allocations.
    fail_next: AtomicUsize,
    allocs: AtomicUsize,
    failures: AtomicUsize,
    frees: AtomicUsize,
}

impl<B: Backend> FaultyBackend<B> {
    /// `inner`, healthy until told otherwise.
    pub fn new(inner: B) -> Self {
        FaultyBackend {
            inner,
            failing: AtomicBool::new(false),
            fail_next: AtomicUsize::new(0),
            allocs: AtomicUsize::new(0),
            failures: AtomicUsize::new(0),
            frees: AtomicUsize::new(0),
        }
    }
    /// Fail every allocation (`true`) or none (`false`, after `fail_next` runs out).
    pub fn set_failing(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
    /// Fail the next `n` allocations.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
    /// Successful allocations so far.
    pub fn allocs(&self) -> usize {
        self.allocs.load(Ordering::SeqCst)
    }
    /// Allocations refused so far.
    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }
    /// Elements freed back so far.
    pub fn frees(&self) -> usize {
        self.frees.load(Ordering::SeqCst)
    }
    /// Elements allocated and not yet freed back (what the backend has out).
    pub fn live(&self) -> usize {
        self.allocs() - self.frees()
    }
    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

// SAFETY: elements come from and go to `inner`, which keeps the contract.
unsafe impl<B: Backend> Backend for FaultyBackend<B> {
    type Elem = B::Elem;
    fn elem_bytes(&self) -> usize {
        self.inner.elem_bytes()
    }
    fn alloc(&self, gfp: Gfp) -> Option<NonNull<B::Elem>> {
        let injected = self.failing.load(Ordering::SeqCst)
            || self
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        let got = if injected {
            None
        } else {
            self.inner.alloc(gfp)
        };
        match got {
            Some(_) => self.allocs.fetch_add(1, Ordering::SeqCst),
            None => self.failures.fetch_add(1, Ordering::SeqCst),
        };
        got
    }
    unsafe fn free(&self, elem: NonNull<B::Elem>) {
        self.frees.fetch_add(1, Ordering::SeqCst);
        // SAFETY: passed on from our caller.
        unsafe { self.inner.free(elem) }
    }
    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        out.write_str("faulty ")?;
        self.inner.describe(out)
    }
}
