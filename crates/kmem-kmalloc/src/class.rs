//! Size classes: which `kmalloc-N` cache serves a request.
//!
//! Thirteen classes, named as Linux names them in `/proc/slabinfo`. Sizes up
//! to 192 bytes find their class through a 24-entry table indexed by
//! `(size - 1) / 8` (Linux's `size_index`); larger ones by the position of
//! their highest bit (`fls`).

/// The largest size served from a slab cache (`KMALLOC_MAX_CACHE_SIZE`):
/// above it, requests go to the page layer.
pub const KMALLOC_MAX_CACHE_SIZE: usize = 8192;

/// Number of size classes.
pub const NR_KMALLOC_CLASSES: usize = 13;

/// The object size of each class, smallest first.
///
/// ```
/// assert_eq!(kmem_kmalloc::KMALLOC_SIZES[4], 96);
/// assert_eq!(*kmem_kmalloc::KMALLOC_SIZES.last().unwrap(), 8192);
/// ```
pub const KMALLOC_SIZES: [usize; NR_KMALLOC_CLASSES] = [
    8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192,
];

/// The alignment every object of a class has: its size for the powers of
/// two, 32 for kmalloc-96 and 64 for kmalloc-192 (the largest power of two
/// dividing the size; the caches are created with that alignment).
///
/// ```
/// assert_eq!(kmem_kmalloc::KMALLOC_ALIGN[3], 64);
/// assert_eq!(kmem_kmalloc::KMALLOC_ALIGN[4], 32);
/// ```
pub const KMALLOC_ALIGN: [usize; NR_KMALLOC_CLASSES] =
    [8, 16, 32, 64, 32, 128, 64, 256, 512, 1024, 2048, 4096, 8192];

/// The caches' names, as in Linux's slabinfo.
///
/// ```
/// assert_eq!(kmem_kmalloc::KMALLOC_NAMES[12], "kmalloc-8k");
/// ```
pub const KMALLOC_NAMES: [&str; NR_KMALLOC_CLASSES] = [
    "kmalloc-8",
    "kmalloc-16",
    "kmalloc-32",
    "kmalloc-64",
    "kmalloc-96",
    "kmalloc-128",
    "kmalloc-192",
    "kmalloc-256",
    "kmalloc-512",
    "kmalloc-1k",
    "kmalloc-2k",
    "kmalloc-4k",
    "kmalloc-8k",
];

/// Linux's `size_index`: the class of sizes 1..=192, by `(size - 1) / 8`.
const SIZE_INDEX: [u8; 24] = [
    0, // 8
    1, // 16
    2, 2, // 24, 32
    3, 3, 3, 3, // 40 .. 64
    4, 4, 4, 4, // 72 .. 96
    5, 5, 5, 5, // 104 .. 128
    6, 6, 6, 6, 6, 6, 6, 6, // 136 .. 192
];

/// The class of a request of `size` bytes, `1 <= size <= KMALLOC_MAX_CACHE_SIZE`
/// (Linux `kmalloc_index`).
///
/// ```
/// use kmem_kmalloc::{KMALLOC_SIZES, size_class};
/// assert_eq!(KMALLOC_SIZES[size_class(1)], 8);
/// assert_eq!(KMALLOC_SIZES[size_class(65)], 96);
/// assert_eq!(KMALLOC_SIZES[size_class(193)], 256);
/// assert_eq!(KMALLOC_SIZES[size_class(8192)], 8192);
/// ```
#[inline(always)]
pub fn size_class(size: usize) -> usize {
    debug_assert!((1..=KMALLOC_MAX_CACHE_SIZE).contains(&size));
    if size <= 192 {
        SIZE_INDEX[(size - 1) >> 3] as usize
    } else {
        // fls(size - 1) - 1: 193..=256 → 7, …, 4097..=8192 → 12.
        (usize::BITS - (size - 1).leading_zeros()) as usize - 1
    }
}

/// The class of a request of `size` bytes aligned to `align` (a power of
/// two), or `None` if it needs pages: the first class at least `size` whose
/// objects are all aligned to `align`.
///
/// ```
/// use kmem_kmalloc::{KMALLOC_SIZES, size_class_aligned};
/// assert_eq!(size_class_aligned(80, 8).map(|c| KMALLOC_SIZES[c]), Some(96));
/// assert_eq!(size_class_aligned(80, 64).map(|c| KMALLOC_SIZES[c]), Some(128));
/// assert_eq!(size_class_aligned(8, 4096).map(|c| KMALLOC_SIZES[c]), Some(4096));
/// assert_eq!(size_class_aligned(9000, 8), None);
/// ```
#[inline]
pub fn size_class_aligned(size: usize, align: usize) -> Option<usize> {
    let size = size.max(1);
    if size > KMALLOC_MAX_CACHE_SIZE || align > KMALLOC_MAX_CACHE_SIZE {
        return None;
    }
    let mut c = size_class(size);
    if align <= KMALLOC_ALIGN[0] {
        // Every class is aligned to at least 8 (the common case: no search).
        return Some(c);
    }
    while KMALLOC_ALIGN[c] < align {
        c += 1;
    }
    Some(c)
}

/// The page order of a large request: the smallest `order` with
/// `PAGE_SIZE << order >= size` (Linux `get_order`).
///
/// ```
/// assert_eq!(kmem_kmalloc::get_order(8193), 2);
/// assert_eq!(kmem_kmalloc::get_order(4 << 20), 10);
/// ```
#[inline]
pub fn get_order(size: usize) -> u32 {
    let pages = size.max(1).div_ceil(kmem_platform::PAGE_SIZE);
    usize::BITS - (pages - 1).leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_gets_the_smallest_fitting_class() {
        for size in 1..=KMALLOC_MAX_CACHE_SIZE {
            let c = size_class(size);
            assert!(KMALLOC_SIZES[c] >= size, "size {size}");
            if c > 0 {
                assert!(KMALLOC_SIZES[c - 1] < size, "size {size}");
            }
        }
    }

    #[test]
    fn aligned_classes_are_aligned() {
        for size in (1..=KMALLOC_MAX_CACHE_SIZE).step_by(7) {
            for shift in 0..=13 {
                let align = 1 << shift;
                if let Some(c) = size_class_aligned(size, align) {
                    assert!(KMALLOC_SIZES[c] >= size);
                    assert_eq!(KMALLOC_ALIGN[c] % align, 0);
                }
            }
        }
        assert_eq!(size_class_aligned(1, 16384), None);
    }

    #[test]
    fn orders() {
        assert_eq!(get_order(1), 0);
        assert_eq!(get_order(4096), 0);
        assert_eq!(get_order(4097), 1);
        assert_eq!(get_order((4 << 20) + 1), 11);
    }
}
