//! # kmem-kmalloc — kmalloc over the slab caches
//!
//! What Linux's `kmalloc` (`mm/slab_common.c`) does, in user space: thirteen
//! **size classes** — `kmalloc-8`, `-16`, `-32`, `-64`, `-96`, `-128`, `-192`,
//! `-256`, `-512`, `-1k`, `-2k`, `-4k`, `-8k`, named as in Linux's slabinfo —
//! each a [`kmem_slab::KmemCache`] with per-thread array caches. A request is
//! rounded up to its class by a small table (Linux's `size_index`) and served
//! by that cache's fast path. Requests above 8 KiB take a block of `2^order`
//! pages from the page layer (marked [`PageKind::Large`](kmem_page::PageKind)),
//! and above the largest order (4 MiB) a mapping of their own.
//!
//! [`kfree`] needs no size: the page descriptor of any address says what it
//! is — a slab of one of the kmalloc caches (its owner word names the cache),
//! or a large block. A pointer kmalloc never handed out, an interior pointer
//! or a double free is refused with a report, and nothing changes.
//!
//! Objects of power-of-two classes are aligned to their size; every object
//! is aligned to 8 bytes, and to 16 from 16 bytes on.
//!
//! ```
//! use kmem_kmalloc::{kfree, kmalloc, krealloc, ksize, ZERO_SIZE_PTR};
//! use kmem_page::Gfp;
//!
//! let p = kmalloc(50, Gfp::KERNEL)?;            // kmalloc-64
//! assert_eq!(ksize(p.as_ptr())?, 64);
//! let p = unsafe { krealloc(p.as_ptr(), 60, Gfp::KERNEL)? }; // fits: in place
//! let big = kmalloc(100_000, Gfp::KERNEL)?;     // an order-5 page block
//! assert_eq!(ksize(big.as_ptr())?, 128 << 10);
//! assert_eq!(kmalloc(0, Gfp::KERNEL)?.as_ptr(), ZERO_SIZE_PTR);
//! unsafe {
//!     kfree(p.as_ptr())?;
//!     kfree(big.as_ptr())?;
//!     assert!(kfree(big.as_ptr()).is_err());    // double free: refused
//! }
//! # Ok::<(), kmem_kmalloc::KmallocError>(())
//! ```
//!
//! [`Kmalloc`] is the same allocator as Rust's `#[global_allocator]`.
//!
//! ## Without `std`
//!
//! The slab layer then has no per-thread caches; every call goes to the
//! cache's node under its lock.
#![no_std]

#[cfg(feature = "std")]
extern crate std;

mod alloc;
mod caches;
mod class;
mod error;
#[cfg(not(loom))]
pub mod fork;
mod global;
mod helpers;
mod stats;
mod trace;

pub use alloc::{
    KMALLOC_MAX_ALIGN, ZERO_SIZE_PTR, cache_name, kfree, kfree_fast, kmalloc, kmalloc_aligned,
    kmalloc_fast, krealloc, ksize, zero_or_null_ptr,
};
pub use class::{
    KMALLOC_ALIGN, KMALLOC_MAX_CACHE_SIZE, KMALLOC_NAMES, KMALLOC_SIZES, NR_KMALLOC_CLASSES,
    get_order, size_class, size_class_aligned,
};
pub use error::KmallocError;
pub use global::Kmalloc;
pub use helpers::{kcalloc, kfree_sensitive, kmalloc_array, kmemdup, kstrdup, kzalloc};
pub use kmem_platform::stats::PoolStats;
pub use stats::{KmallocStats, pool_stats, stats, write_stats};

/// The kmalloc caches' slabinfo rows, smallest class first (empty before the
/// first allocation).
///
/// ```
/// let p = kmem_kmalloc::kmalloc(8, kmem_page::Gfp::KERNEL)?;
/// let rows = kmem_kmalloc::slabinfo();
/// assert_eq!(rows[0].1.objsize, 8);
/// # unsafe { kmem_kmalloc::kfree(p.as_ptr())? };
/// # Ok::<(), kmem_kmalloc::KmallocError>(())
/// ```
pub fn slabinfo() -> heapless_rows::Rows {
    let mut rows = heapless_rows::Rows::new();
    if let Some(cs) = caches::caches_if_ready() {
        for (i, c) in cs.iter().enumerate() {
            rows.push(KMALLOC_NAMES[i], c.info());
        }
    }
    rows
}

/// Runs [`KmemCache::validate`](kmem_slab::KmemCache::validate) on every
/// kmalloc cache: reports every corruption the debug checks can see (red
/// zones, poison; see [`kmem_slab::debug`]) and returns how many it found.
///
/// ```
/// assert_eq!(kmem_kmalloc::validate(), 0);
/// ```
pub fn validate() -> usize {
    caches::caches_if_ready().map_or(0, |cs| cs.iter().map(|c| c.validate()).sum())
}

/// A fixed-capacity list of slabinfo rows (no allocation).
pub mod heapless_rows {
    /// Up to [`NR_KMALLOC_CLASSES`](crate::NR_KMALLOC_CLASSES) `(name, row)` pairs.
    #[derive(Debug, Clone)]
    pub struct Rows {
        rows: [Option<(&'static str, kmem_slab::SlabInfo)>; crate::NR_KMALLOC_CLASSES],
        len: usize,
    }
    impl Rows {
        pub(crate) fn new() -> Self {
            Rows {
                rows: [None; crate::NR_KMALLOC_CLASSES],
                len: 0,
            }
        }
        pub(crate) fn push(&mut self, name: &'static str, info: kmem_slab::SlabInfo) {
            self.rows[self.len] = Some((name, info));
            self.len += 1;
        }
        /// The rows.
        pub fn iter(&self) -> impl Iterator<Item = &(&'static str, kmem_slab::SlabInfo)> {
            self.rows[..self.len].iter().flatten()
        }
        /// Number of rows.
        pub fn len(&self) -> usize {
            self.len
        }
        /// Whether there is no row.
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }
    }
    impl core::ops::Index<usize> for Rows {
        type Output = (&'static str, kmem_slab::SlabInfo);
        fn index(&self, i: usize) -> &Self::Output {
            self.rows[..self.len][i].as_ref().expect("rows are dense")
        }
    }
}
