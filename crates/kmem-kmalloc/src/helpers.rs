//! The rest of the family: `kzalloc`, `kcalloc`, `kmalloc_array`, `kstrdup`,
//! `kmemdup`, `kfree_sensitive`.

use core::ptr::NonNull;

use kmem_page::Gfp;

use crate::{KmallocError, kfree, kmalloc, ksize};

/// Allocates `size` zeroed bytes (`kzalloc`).
///
/// ```
/// let p = kmem_kmalloc::kzalloc(64, kmem_page::Gfp::KERNEL)?;
/// assert!(unsafe { core::slice::from_raw_parts(p.as_ptr(), 64) }.iter().all(|&b| b == 0));
/// # unsafe { kmem_kmalloc::kfree(p.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
#[inline]
#[cfg_attr(feature = "trace", track_caller)]
pub fn kzalloc(size: usize, gfp: Gfp) -> Result<NonNull<u8>, KmallocError> {
    kmalloc(size, gfp | Gfp::ZERO)
}

/// Allocates an array of `n` elements of `size` bytes (`kmalloc_array`);
/// [`KmallocError::Overflow`] if `n * size` overflows.
///
/// ```
/// use kmem_kmalloc::{kmalloc_array, KmallocError};
/// use kmem_page::Gfp;
/// assert!(matches!(kmalloc_array(usize::MAX, 2, Gfp::KERNEL), Err(KmallocError::Overflow { .. })));
/// let p = kmalloc_array(10, 8, Gfp::KERNEL)?;
/// # unsafe { kmem_kmalloc::kfree(p.as_ptr())? };
/// # Ok::<(), KmallocError>(())
/// ```
#[inline]
#[cfg_attr(feature = "trace", track_caller)]
pub fn kmalloc_array(n: usize, size: usize, gfp: Gfp) -> Result<NonNull<u8>, KmallocError> {
    match n.checked_mul(size) {
        Some(bytes) => kmalloc(bytes, gfp),
        None => Err(KmallocError::Overflow { n, size }),
    }
}

/// [`kmalloc_array`], zeroed (`kcalloc`).
///
/// ```
/// let p = kmem_kmalloc::kcalloc(4, 4, kmem_page::Gfp::KERNEL)?;
/// assert_eq!(unsafe { *p.as_ptr().cast::<u32>().add(3) }, 0);
/// # unsafe { kmem_kmalloc::kfree(p.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
#[inline]
#[cfg_attr(feature = "trace", track_caller)]
pub fn kcalloc(n: usize, size: usize, gfp: Gfp) -> Result<NonNull<u8>, KmallocError> {
    kmalloc_array(n, size, gfp | Gfp::ZERO)
}

/// Copies `src` into a new allocation (`kmemdup`).
///
/// ```
/// let p = kmem_kmalloc::kmemdup(b"abc", kmem_page::Gfp::KERNEL)?;
/// assert_eq!(unsafe { core::slice::from_raw_parts(p.as_ptr(), 3) }, b"abc");
/// # unsafe { kmem_kmalloc::kfree(p.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
#[cfg_attr(feature = "trace", track_caller)]
pub fn kmemdup(src: &[u8], gfp: Gfp) -> Result<NonNull<u8>, KmallocError> {
    let p = kmalloc(src.len(), gfp)?;
    if !src.is_empty() {
        // SAFETY: a fresh allocation of `src.len()` bytes, distinct from `src`.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len()) };
    }
    Ok(p)
}

/// Copies a NUL-terminated string, terminator included (`kstrdup`).
///
/// ```
/// let p = kmem_kmalloc::kstrdup(c"eth0", kmem_page::Gfp::KERNEL)?;
/// assert_eq!(unsafe { core::ffi::CStr::from_ptr(p.as_ptr().cast()) }, c"eth0");
/// # unsafe { kmem_kmalloc::kfree(p.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
#[cfg_attr(feature = "trace", track_caller)]
pub fn kstrdup(s: &core::ffi::CStr, gfp: Gfp) -> Result<NonNull<u8>, KmallocError> {
    kmemdup(s.to_bytes_with_nul(), gfp)
}

/// Zeroes the whole allocation ([`ksize`] bytes, so no copy of a secret
/// survives in the slack) and frees it (`kfree_sensitive`).
///
/// ```
/// let p = kmem_kmalloc::kmemdup(b"secret", kmem_page::Gfp::KERNEL)?;
/// unsafe { kmem_kmalloc::kfree_sensitive(p.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
///
/// # Safety
///
/// As for [`kfree`].
#[cfg_attr(feature = "trace", track_caller)]
pub unsafe fn kfree_sensitive(p: *mut u8) -> Result<(), KmallocError> {
    let n = ksize(p)?;
    if n > 0 {
        // SAFETY: `ksize` bytes of a live allocation are ours to write.
        unsafe { core::ptr::write_bytes(p, 0, n) };
        // The stores must not be elided as dead before the free.
        core::hint::black_box(p);
    }
    // SAFETY: per the contract.
    unsafe { kfree(p) }
}
