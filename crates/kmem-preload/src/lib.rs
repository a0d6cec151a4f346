//! # libkmem_preload.so — malloc over kmem's kmalloc
//!
//! `LD_PRELOAD=target/release/libkmem_preload.so PROGRAM` runs any
//! dynamically linked program on kmem: `malloc`, `free`, `calloc`,
//! `realloc`, `reallocarray`, `posix_memalign`, `aligned_alloc`, `memalign`,
//! `valloc`, `pvalloc` and `malloc_usable_size` are kmalloc's size classes
//! and page blocks. kmem's whole C ABI (`kmem.h`) is exported as well.
//!
//! Where such libraries usually break:
//!
//! * **start-up** — nothing is set up before the first `malloc`, which may
//!   come from the dynamic loader before any constructor ran: the kmalloc
//!   caches are created on first use from kmem's own pages, with no
//!   allocation and no call back into `malloc`. The constructor only reads
//!   the `KMEM_*` variables (`getenv`, no allocation) and registers the
//!   `fork` handlers.
//! * **TLS** — the slab layer's per-thread slot is a `const`-initialised
//!   `thread_local!` holding a plain pointer: no destructor registration,
//!   no lazy initialisation, so the first access of a thread never
//!   allocates. In a `cdylib` it uses the general-dynamic model (a call to
//!   `__tls_get_addr`, which for a library loaded at start-up finds its
//!   block in static TLS without allocating); initial-exec would save that
//!   call but cannot be set per crate on stable cargo (see
//!   docs/BENCHMARKS.md for what it costs).
//! * **thread exit** — a `pthread_key_create` destructor (the slab layer's)
//!   flushes the thread's array caches back to the slabs.
//! * **fork** — `pthread_atfork` handlers take every allocator lock and stop
//!   every other thread's fast path before `fork`, release them in the
//!   parent, and reset them in the child (whose only thread then gives the
//!   caches of the vanished threads back): see [`kmem_kmalloc::fork`].
//! * **failure** — `errno = ENOMEM` and NULL; `calloc`/`reallocarray`
//!   overflow is ENOMEM; huge sizes fail cleanly; `malloc(0)` is a unique
//!   minimal object (as glibc's).
//! * **foreign pointers** — `free` of a pointer kmem never handed out is
//!   refused with one `kmem:` line on stderr, not a crash.
//!
//! It prints nothing unless asked: `KMEM_SHOW_STATS=1` prints the stats
//! and slabinfo to stderr at exit; `KMEM_SLABINFO=PATH` writes slabinfo to
//! PATH at exit; `KMEM_STATS=PATH` (or `1` for `/tmp/kmem-<pid>.sock`)
//! serves the live slabinfo on a Unix socket for `kmem top` and
//! `kmem slabinfo --pid` (see `stats_server.rs` for the format, `fork` and
//! exit).
//!
//! Debugging: `KMEM_DEBUG=FZPU` (Linux's `slab_debug=` letters, optionally
//! limited to caches: `KMEM_DEBUG=ZP,kmalloc-64`) turns on the slab debug
//! checks — poison, red zones, user tracking, consistency checks — with
//! `kmem: BUG <cache>: ...` reports naming the caller's return address;
//! `KMEM_LEAKS=1` tracks every allocation's call site and prints the objects
//! still allocated at exit, grouped by site (see `kmem_slab::debug`). Both
//! are read when the first cache is created (possibly inside the loader's
//! first `malloc`, before any constructor) and again, harmlessly, by the
//! constructor. Every malloc-family entry point is a two-instruction
//! trampoline that passes its caller's return address on
//! (`kmem_capi::caller`).

pub use kmem_capi;
use kmem_capi::c_entry;

mod stats_server;

use core::ffi::{c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use kmem_kmalloc as km;
use kmem_page::Gfp;
use kmem_platform::diag::set_errno;

/// Flags of every malloc-family allocation: may wait for memory, no report
/// on failure (malloc reports through errno).
const GFP: Gfp = Gfp(Gfp::KERNEL.0 | Gfp::NOWARN.0);
/// The smallest alignment the malloc family promises (`alignof(max_align_t)`
/// for sizes of 16 bytes and more; smaller objects get 8).
const PAGE: usize = kmem_platform::PAGE_SIZE;

#[inline(always)]
fn ret(r: Result<core::ptr::NonNull<u8>, km::KmallocError>) -> *mut c_void {
    match r {
        Ok(p) => p.as_ptr().cast(),
        Err(_) => nomem(),
    }
}

#[cold]
fn nomem() -> *mut c_void {
    set_errno(libc::ENOMEM);
    ptr::null_mut()
}

c_entry! {
    /// `malloc(size)`: a kmalloc object; `malloc(0)` is a unique 8-byte object.
    ///
    /// # Safety
    ///
    /// None (C's contract).
    pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void = malloc_from, 1;
}

/// `malloc` called from the C return address `ret` (the debug checks' call
/// site; see `kmem_capi::caller`).
///
/// The hot path is kmalloc's fast path alone, which calls nothing, so this
/// function saves no registers when it hits; everything else is one tail
/// call. A debug cache has no per-thread array, so with debug checks on its
/// allocations always reach `malloc_slow`, which records the call site.
unsafe extern "C" fn malloc_from(size: usize, ret: usize) -> *mut c_void {
    if let Some(p) = km::kmalloc_fast(size) {
        return p.as_ptr().cast();
    }
    // SAFETY: the caller's contract, passed on.
    unsafe { malloc_slow(size, ret) }
}

/// The rest of `malloc`: kmalloc's slow paths, with the C call site known.
///
/// # Safety
///
/// As for `malloc`.
#[cold]
#[inline(never)]
unsafe fn malloc_slow(size: usize, ret: usize) -> *mut c_void {
    // SAFETY: the caller's contract, passed on.
    kmem_slab::debug::with_caller(ret, || unsafe { malloc_imp(size) })
}

/// The body of `malloc`.
///
/// # Safety
///
/// As for `malloc`.
#[inline(always)]
unsafe fn malloc_imp(size: usize) -> *mut c_void {
    ret(km::kmalloc(size.max(1), GFP))
}

c_entry! {
    /// `free(p)`: NULL is a no-op; a pointer kmem never handed out is refused
    /// with a report.
    ///
    /// # Safety
    ///
    /// `p` is not used afterwards.
    pub unsafe extern "C" fn free(p: *mut c_void) = free_from, 1;
}

/// `free` called from the C return address `ret` (the debug checks' call
/// site; see `kmem_capi::caller`).
///
/// As `malloc_from`: kfree's fast path alone, then one tail call for
/// everything else (NULL, large blocks, bad pointers — refused and reported
/// there — and frees into debug caches, which record the call site).
unsafe extern "C" fn free_from(p: *mut c_void, ret: usize) {
    // SAFETY: C's contract; anything but a valid object is left to `free_slow`.
    if unsafe { km::kfree_fast(p.cast()) } {
        return;
    }
    // SAFETY: the caller's contract, passed on.
    unsafe { free_slow(p, ret) }
}

/// The rest of `free`, with the C call site known.
///
/// # Safety
///
/// As for `free`.
#[cold]
#[inline(never)]
unsafe fn free_slow(p: *mut c_void, ret: usize) {
    // SAFETY: the caller's contract, passed on.
    kmem_slab::debug::with_caller(ret, || unsafe { free_imp(p) })
}

/// The body of `free`.
///
/// # Safety
///
/// As for `free`.
#[inline(always)]
unsafe fn free_imp(p: *mut c_void) {
    // SAFETY: C's contract; kfree checks the pointer.
    let _ = unsafe { km::kfree(p.cast()) };
}

c_entry! {
    /// `calloc(n, size)`: zeroed; ENOMEM on overflow.
    ///
    /// # Safety
    ///
    /// None.
    pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void = calloc_from, 2;
}

/// `calloc` called from the C return address `ret` (the debug checks' call
/// site; see `kmem_capi::caller`).
unsafe extern "C" fn calloc_from(n: usize, size: usize, ret: usize) -> *mut c_void {
    // SAFETY: the caller's contract, passed on.
    kmem_slab::debug::with_caller(ret, || unsafe { calloc_imp(n, size) })
}

/// The body of `calloc`.
///
/// # Safety
///
/// As for `calloc`.
unsafe fn calloc_imp(n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        Some(b) => ret(km::kzalloc(b.max(1), GFP)),
        None => nomem(),
    }
}

c_entry! {
    /// `realloc(p, size)`: in place while the size fits the bucket; NULL `p` is
    /// malloc; size 0 frees `p` and returns NULL (as glibc). On failure NULL,
    /// ENOMEM, and `p` is untouched.
    ///
    /// # Safety
    ///
    /// `p` is NULL or live from this malloc; if the result differs, `p` is gone.
    pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void = realloc_from, 2;
}

/// `realloc` called from the C return address `ret` (the debug checks' call
/// site; see `kmem_capi::caller`).
unsafe extern "C" fn realloc_from(p: *mut c_void, size: usize, ret: usize) -> *mut c_void {
    // SAFETY: the caller's contract, passed on.
    kmem_slab::debug::with_caller(ret, || unsafe { realloc_imp(p, size) })
}

/// The body of `realloc`.
///
/// # Safety
///
/// As for `realloc`.
unsafe fn realloc_imp(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        return ret(km::kmalloc(size.max(1), GFP));
    }
    if size == 0 {
        // SAFETY: C's contract.
        unsafe { free_imp(p) };
        return ptr::null_mut();
    }
    // SAFETY: C's contract; krealloc checks the pointer (ksize) first.
    match unsafe { km::krealloc(p.cast(), size, GFP) } {
        Ok(q) => q.as_ptr().cast(),
        Err(km::KmallocError::NoMemory { .. }) => nomem(),
        Err(_) => {
            set_errno(libc::EINVAL);
            ptr::null_mut()
        }
    }
}

c_entry! {
    /// `reallocarray(p, n, size)`: `realloc(p, n * size)`, ENOMEM on overflow.
    ///
    /// # Safety
    ///
    /// As for [`realloc`].
    pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void = reallocarray_from, 3;
}

/// `reallocarray` called from the C return address `ret` (the debug checks' call
/// site; see `kmem_capi::caller`).
unsafe extern "C" fn reallocarray_from(
    p: *mut c_void,
    n: usize,
    size: usize,
    ret: usize,
) -> *mut c_void {
    // SAFETY: the caller's contract, passed on.
    kmem_slab::debug::with_caller(ret, || unsafe { reallocarray_imp(p, n, size) })
}

/// The body of `reallocarray`.
///
/// # Safety
///
/// As for `reallocarray`.
unsafe fn reallocarray_imp(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: passed on.
        Some(b) => unsafe { realloc_imp(p, b) },
        None => nomem(),
    }
}

fn aligned(align: usize, size: usize) -> *mut c_void {
    ret(km::kmalloc_aligned(size.max(1), align, GFP))
}

c_entry! {
    /// `posix_memalign(&p, align, size)`: 0, EINVAL (alignment not a power of
    /// two multiple of `sizeof(void *)`) or ENOMEM.
    ///
    /// # Safety
    ///
    /// `memptr` is valid for a write.
    pub unsafe extern "C" fn posix_memalign(memptr: *mut *mut c_void, align: usize, size: usize) -> c_int = posix_memalign_from, 3;
}

/// `posix_memalign` called from the C return address `ret` (the debug checks' call
/// site; see `kmem_capi::caller`).
unsafe extern "C" fn posix_memalign_from(
    memptr: *mut *mut c_void,
    align: usize,
    size: usize,
    ret: usize,
) -> c_int {
    // SAFETY: the caller's contract, passed on.
    kmem_slab::debug::with_caller(ret, || unsafe { posix_memalign_imp(memptr, align, size) })
}

/// The body of `posix_memalign`.
///
/// # Safety
///
/// As for `posix_memalign`.
unsafe fn posix_memalign_imp(memptr: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<usize>()) {
        return libc::EINVAL;
    }
    match km::kmalloc_aligned(size.max(1), align, GFP) {
        Ok(p) => {
            // SAFETY: C's contract.
            unsafe { *memptr = p.as_ptr().cast() };
            0
        }
        Err(_) => libc::ENOMEM,
    }
}

c_entry! {
    /// `aligned_alloc(align, size)`: NULL with EINVAL if `align` is not a power of two.
    ///
    /// # Safety
    ///
    /// None.
    pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void = aligned_alloc_from, 2;
}

/// `aligned_alloc` called from the C return address `ret` (the debug checks' call
/// site; see `kmem_capi::caller`).
unsafe extern "C" fn aligned_alloc_from(align: usize, size: usize, ret: usize) -> *mut c_void {
    // SAFETY: the caller's contract, passed on.
    kmem_slab::debug::with_caller(ret, || unsafe { aligned_alloc_imp(align, size) })
}

/// The body of `aligned_alloc`.
///
/// # Safety
///
/// As for `aligned_alloc`.
unsafe fn aligned_alloc_imp(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    aligned(align, size)
}

c_entry! {
    /// `memalign(align, size)`: an alignment that is not a power of two is
    /// rounded up to one (as glibc).
    ///
    /// # Safety
    ///
    /// None.
    pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void = memalign_from, 2;
}

/// `memalign` called from the C return address `ret` (the debug checks' call
/// site; see `kmem_capi::caller`).
unsafe extern "C" fn memalign_from(align: usize, size: usize, ret: usize) -> *mut c_void {
    // SAFETY: the caller's contract, passed on.
    kmem_slab::debug::with_caller(ret, || unsafe { memalign_imp(align, size) })
}

/// The body of `memalign`.
///
/// # Safety
///
/// As for `memalign`.
unsafe fn memalign_imp(align: usize, size: usize) -> *mut c_void {
    let align = align
        .max(1)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX);
    if align == usize::MAX {
        return nomem();
    }
    aligned(align, size)
}

c_entry! {
    /// `valloc(size)`: page-aligned.
    ///
    /// # Safety
    ///
    /// None.
    pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void = valloc_from, 1;
}

/// `valloc` called from the C return address `ret` (the debug checks' call
/// site; see `kmem_capi::caller`).
unsafe extern "C" fn valloc_from(size: usize, ret: usize) -> *mut c_void {
    // SAFETY: the caller's contract, passed on.
    kmem_slab::debug::with_caller(ret, || unsafe { valloc_imp(size) })
}

/// The body of `valloc`.
///
/// # Safety
///
/// As for `valloc`.
unsafe fn valloc_imp(size: usize) -> *mut c_void {
    aligned(PAGE, size)
}

c_entry! {
    /// `pvalloc(size)`: page-aligned, the size rounded up to whole pages.
    ///
    /// # Safety
    ///
    /// None.
    pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void = pvalloc_from, 1;
}

/// `pvalloc` called from the C return address `ret` (the debug checks' call
/// site; see `kmem_capi::caller`).
unsafe extern "C" fn pvalloc_from(size: usize, ret: usize) -> *mut c_void {
    // SAFETY: the caller's contract, passed on.
    kmem_slab::debug::with_caller(ret, || unsafe { pvalloc_imp(size) })
}

/// The body of `pvalloc`.
///
/// # Safety
///
/// As for `pvalloc`.
unsafe fn pvalloc_imp(size: usize) -> *mut c_void {
    match size.max(1).checked_next_multiple_of(PAGE) {
        Some(n) => aligned(PAGE, n),
        None => nomem(),
    }
}

/// `malloc_usable_size(p)`: the bucket's size (all usable); 0 for NULL.
///
/// # Safety
///
/// None: the pointer is checked through the page descriptors.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    km::ksize(p.cast()).unwrap_or(0)
}

// ---- start-up and exit -------------------------------------------------

static SHOW_STATS: AtomicBool = AtomicBool::new(false);
/// `KMEM_LEAKS` set: a leak report at exit.
static LEAKS: AtomicBool = AtomicBool::new(false);
/// `KMEM_SLABINFO`'s path, NUL-terminated (empty: not set). Written once by
/// the constructor before any other thread can exist.
static mut SLABINFO_PATH: [u8; 4096] = [0; 4096];

unsafe extern "C" fn atfork_prepare() {
    km::fork::prepare();
}
unsafe extern "C" fn atfork_parent() {
    // SAFETY: after `prepare`, on the forking thread.
    unsafe { km::fork::parent() };
}
unsafe extern "C" fn atfork_child() {
    // SAFETY: in the child, first thing after fork.
    unsafe { km::fork::child() };
    stats_server::after_fork_child();
}

/// The constructor: reads the `KMEM_*` variables (no allocation),
/// registers the `fork` handlers and starts the `KMEM_STATS` server.
extern "C" fn kmem_preload_init() {
    use kmem_platform::process;
    // SAFETY: constructors run before the program's code, so nothing changes
    // the environment while we read it; the values are copied at once.
    let (show, slabinfo, leaks) = unsafe {
        (
            process::getenv(c"KMEM_SHOW_STATS"),
            process::getenv(c"KMEM_SLABINFO"),
            process::getenv(c"KMEM_LEAKS"),
        )
    };
    // KMEM_DEBUG and KMEM_LEAKS (user tracking everywhere): read by the slab
    // layer when the first cache was created; this reads them if no cache
    // exists yet.
    kmem_slab::debug::init_from_env();
    if leaks.is_some_and(|s| !s.is_empty() && s != b"0") {
        LEAKS.store(true, Ordering::Relaxed);
    }
    if show.is_some_and(|s| !s.is_empty() && s[0] != b'0') {
        SHOW_STATS.store(true, Ordering::Relaxed);
    }
    if let Some(p) = slabinfo {
        // SAFETY: only this constructor writes SLABINFO_PATH, before any
        // other thread exists.
        let path = unsafe { &mut *ptr::addr_of_mut!(SLABINFO_PATH) };
        let n = p.len().min(path.len() - 1);
        path[..n].copy_from_slice(&p[..n]);
        path[n] = 0;
    }
    process::at_fork(atfork_prepare, atfork_parent, atfork_child);
    // SAFETY: in the constructor, as `init` requires.
    unsafe { stats_server::init() };
}

/// The destructor: removes the `KMEM_STATS` socket, then the reports
/// `KMEM_LEAKS`, `KMEM_SHOW_STATS` and `KMEM_SLABINFO` ask for.
extern "C" fn kmem_preload_fini() {
    stats_server::stop();
    if LEAKS.load(Ordering::Relaxed) {
        kmem_slab::debug::leak_report_stderr();
    }
    if SHOW_STATS.load(Ordering::Relaxed) {
        let _ = kmem_capi::kmalloc::stats_print(2);
    }
    // SAFETY: written only by the constructor.
    let path = unsafe { &*ptr::addr_of!(SLABINFO_PATH) };
    if path[0] != 0 {
        let Ok(path) = core::ffi::CStr::from_bytes_until_nul(path) else {
            return;
        };
        match kmem_platform::process::create_file(path) {
            Ok(fd) => {
                let _ = kmem_slab_write(fd);
                kmem_platform::process::close_fd(fd);
            }
            Err(e) => {
                kmem_platform::kmem_report!(
                    "KMEM_SLABINFO: cannot open the file for writing (errno {e})"
                )
            }
        }
    }
}

fn kmem_slab_write(fd: c_int) -> c_int {
    // SAFETY: `fd` is open for writing.
    unsafe { kmem_capi::slab::kmem_slabinfo_write(fd) }
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = kmem_preload_init;

#[used]
#[unsafe(link_section = ".fini_array")]
static FINI: extern "C" fn() = kmem_preload_fini;
