//! kmalloc's C ABI: `kmalloc`, `kzalloc`, `kcalloc`, `kmalloc_array`,
//! `krealloc`, `kfree`, `kfree_sensitive`, `ksize`, `kstrdup`, `kmemdup`
//! (C-ABI.md's kmalloc section), and `kmem_stats_print`.
//!
//! Failures give NULL (or 0 for `ksize`); bad pointers are reported on
//! stderr by the kmalloc layer and change nothing.

use core::ffi::{CStr, c_char, c_int, c_uint, c_void};
use core::ptr;

use kmem_kmalloc as km;
use kmem_page::Gfp;

fn out(r: Result<core::ptr::NonNull<u8>, km::KmallocError>) -> *mut c_void {
    r.map_or(ptr::null_mut(), |p| p.as_ptr().cast())
}

c_entry_with_caller! {
    /// `void *kmalloc(size_t size, gfp_t gfp)`: `size` bytes, or NULL;
    /// `ZERO_SIZE_PTR` for 0.
    ///
    /// (A trampoline passing its caller's address to `kmalloc_from`.)
    pub unsafe extern "C" fn kmalloc(size: usize, gfp: c_uint) -> *mut c_void
        = kmalloc_from, 2 => kmalloc_imp(size, gfp);
}

/// The body of `kmalloc`.
fn kmalloc_imp(size: usize, gfp: c_uint) -> *mut c_void {
    out(km::kmalloc(size, Gfp(gfp)))
}

c_entry_with_caller! {
    /// `void *kzalloc(size_t size, gfp_t gfp)`: zeroed `kmalloc`.
    ///
    /// (A trampoline passing its caller's address to `kzalloc_from`.)
    pub unsafe extern "C" fn kzalloc(size: usize, gfp: c_uint) -> *mut c_void
        = kzalloc_from, 2 => kzalloc_imp(size, gfp);
}

/// The body of `kzalloc`.
fn kzalloc_imp(size: usize, gfp: c_uint) -> *mut c_void {
    out(km::kzalloc(size, Gfp(gfp)))
}

c_entry_with_caller! {
    /// `void *kcalloc(size_t n, size_t size, gfp_t gfp)`: zeroed array; NULL
    /// on overflow.
    ///
    /// (A trampoline passing its caller's address to `kcalloc_from`.)
    pub unsafe extern "C" fn kcalloc(n: usize, size: usize, gfp: c_uint) -> *mut c_void
        = kcalloc_from, 3 => kcalloc_imp(n, size, gfp);
}

/// The body of `kcalloc`.
fn kcalloc_imp(n: usize, size: usize, gfp: c_uint) -> *mut c_void {
    out(km::kcalloc(n, size, Gfp(gfp)))
}

c_entry_with_caller! {
    /// `void *kmalloc_array(size_t n, size_t size, gfp_t gfp)`: NULL on overflow.
    ///
    /// (A trampoline passing its caller's address to `kmalloc_array_from`.)
    pub unsafe extern "C" fn kmalloc_array(n: usize, size: usize, gfp: c_uint) -> *mut c_void
        = kmalloc_array_from, 3 => kmalloc_array_imp(n, size, gfp);
}

/// The body of `kmalloc_array`.
fn kmalloc_array_imp(n: usize, size: usize, gfp: c_uint) -> *mut c_void {
    out(km::kmalloc_array(n, size, Gfp(gfp)))
}

c_entry_with_caller! {
    /// `void *krealloc(const void *p, size_t new_size, gfp_t gfp)`: in place
    /// when the new size fits the bucket; NULL on failure (the old object is
    /// kept) or for a pointer kmalloc did not hand out (reported).
    ///
    /// # Safety
    ///
    /// `p` is NULL, `ZERO_SIZE_PTR` or a live kmalloc object, given up if the
    /// result differs from it.
    ///
    /// (A trampoline passing its caller's address to `krealloc_from`.)
    pub unsafe extern "C" fn krealloc(p: *const c_void, new_size: usize, gfp: c_uint) -> *mut c_void
        = krealloc_from, 3 => krealloc_imp(p, new_size, gfp);
}

/// The body of `krealloc`.
#[allow(unused_unsafe)]
unsafe fn krealloc_imp(p: *const c_void, new_size: usize, gfp: c_uint) -> *mut c_void {
    // SAFETY: per the contract.
    out(unsafe { km::krealloc(p as *mut u8, new_size, Gfp(gfp)) })
}

c_entry_with_caller! {
    /// `void kfree(const void *p)`: NULL and `ZERO_SIZE_PTR` are no-ops; a
    /// pointer kmalloc did not hand out is reported and refused.
    ///
    /// # Safety
    ///
    /// If `p` is a live kmalloc object, nothing uses it afterwards.
    ///
    /// (A trampoline passing its caller's address to `kfree_from`.)
    pub unsafe extern "C" fn kfree(p: *const c_void)
        = kfree_from, 1 => kfree_imp(p);
}

/// The body of `kfree`.
#[allow(unused_unsafe)]
unsafe fn kfree_imp(p: *const c_void) {
    // SAFETY: per the contract.
    let _ = unsafe { km::kfree(p.cast()) };
}

c_entry_with_caller! {
    /// `void kfree_sensitive(const void *p)`: zeroes all `ksize(p)` bytes, then frees.
    ///
    /// # Safety
    ///
    /// As for [`kfree`].
    ///
    /// (A trampoline passing its caller's address to `kfree_sensitive_from`.)
    pub unsafe extern "C" fn kfree_sensitive(p: *const c_void)
        = kfree_sensitive_from, 1 => kfree_sensitive_imp(p);
}

/// The body of `kfree_sensitive`.
#[allow(unused_unsafe)]
unsafe fn kfree_sensitive_imp(p: *const c_void) {
    // SAFETY: per the contract.
    let _ = unsafe { km::kfree_sensitive(p as *mut u8) };
}

/// `size_t ksize(const void *p)`: the usable size; 0 for NULL,
/// `ZERO_SIZE_PTR` and (reported) pointers kmalloc did not hand out.
///
/// # Safety
///
/// None: any pointer is checked through the page descriptors.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ksize(p: *const c_void) -> usize {
    km::ksize(p.cast()).unwrap_or(0)
}

c_entry_with_caller! {
    /// `char *kstrdup(const char *s, gfp_t gfp)`: a copy of `s`; NULL for NULL.
    ///
    /// # Safety
    ///
    /// `s` is NULL or a NUL-terminated string.
    ///
    /// (A trampoline passing its caller's address to `kstrdup_from`.)
    pub unsafe extern "C" fn kstrdup(s: *const c_char, gfp: c_uint) -> *mut c_char
        = kstrdup_from, 2 => kstrdup_imp(s, gfp);
}

/// The body of `kstrdup`.
#[allow(unused_unsafe)]
unsafe fn kstrdup_imp(s: *const c_char, gfp: c_uint) -> *mut c_char {
    if s.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: per the contract.
    let s = unsafe { CStr::from_ptr(s) };
    out(km::kstrdup(s, Gfp(gfp))).cast()
}

c_entry_with_caller! {
    /// `void *kmemdup(const void *src, size_t len, gfp_t gfp)`: a copy of
    /// `len` bytes; NULL if `src` is NULL with `len > 0`.
    ///
    /// # Safety
    ///
    /// `src` is valid for reads of `len` bytes.
    ///
    /// (A trampoline passing its caller's address to `kmemdup_from`.)
    pub unsafe extern "C" fn kmemdup(src: *const c_void, len: usize, gfp: c_uint) -> *mut c_void
        = kmemdup_from, 3 => kmemdup_imp(src, len, gfp);
}

/// The body of `kmemdup`.
#[allow(unused_unsafe)]
unsafe fn kmemdup_imp(src: *const c_void, len: usize, gfp: c_uint) -> *mut c_void {
    if src.is_null() {
        if len > 0 {
            kmem_platform::kmem_report!("kmemdup: NULL source of {len} bytes");
            return ptr::null_mut();
        }
        return out(km::kmalloc(0, Gfp(gfp)));
    }
    // SAFETY: per the contract.
    let s = unsafe { core::slice::from_raw_parts(src.cast::<u8>(), len) };
    out(km::kmemdup(s, Gfp(gfp)))
}

/// `int kmem_stats_print(int fd)`: the page layer's counters, kmalloc's
/// classes and large path, the `mp_pool_stats` of both, and slabinfo with
/// Linux's statistics columns (`globalstat`, `cpustat`), to `fd`; 0 or -errno.
///
/// # Safety
///
/// None beyond `fd` being a descriptor the caller may write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmem_stats_print(fd: c_int) -> c_int {
    match stats_print(fd) {
        Ok(()) => 0,
        Err(e) => -e,
    }
}

/// Writes the stats report to `fd` through a stack buffer (no allocation).
pub fn stats_print(fd: c_int) -> Result<(), c_int> {
    use core::fmt::Write;
    struct Fd {
        fd: c_int,
        buf: kmem_platform::diag::StackBuf<4096>,
        err: c_int,
    }
    impl Fd {
        fn flush(&mut self) {
            if self.err == 0
                && let Err(e) = kmem_platform::diag::write_fd(self.fd, self.buf.as_bytes())
            {
                self.err = e;
            }
            self.buf.clear();
        }
    }
    impl Write for Fd {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            if self.buf.as_bytes().len() + s.len() > 3072 {
                self.flush();
            }
            if s.len() > 3072 {
                if let Err(e) = kmem_platform::diag::write_fd(self.fd, s.as_bytes()) {
                    self.err = e;
                }
                return Ok(());
            }
            self.buf.write_str(s)
        }
    }
    let mut w = Fd {
        fd,
        buf: kmem_platform::diag::StackBuf::new(),
        err: 0,
    };
    let s = kmem_page::global().stats();
    let _ = writeln!(
        w,
        "kmem: pages: managed {} free {} allocated {} (huge mappings {} pages)",
        s.managed_pages, s.free_pages, s.allocated_pages, s.huge_pages
    );
    let _ = km::write_stats(&mut w);
    // The seed's mp_pool_stats of the page layer and of kmalloc as a whole.
    let _ = writeln!(w, "kmem: pages pool: {}", kmem_page::global().pool_stats());
    let _ = writeln!(w, "kmem: kmalloc pool: {}", km::pool_stats());
    w.flush();
    if w.err != 0 {
        return Err(w.err);
    }
    // slabinfo with Linux's statistics columns (globalstat, cpustat).
    kmem_slab::slabinfo_stats_write_fd(fd)
}
