//! # kmem-slab — the slab allocator
//!
//! What Linux's SLAB (`mm/slab.c`, until 6.8) does, in user space. A
//! [`KmemCache`] hands out objects of one size. Objects live in **slabs** —
//! blocks of `2^order` pages from the page layer — and travel through three
//! levels, each cheaper than the next:
//!
//! 1. **per-thread array caches** (SLAB's per-cpu `array_cache`): a LIFO stack
//!    of free objects per thread and cache. Allocation pops, free pushes; no
//!    lock and no atomic read-modify-write ([`cpu_cache`](crate#per-thread-array-caches)).
//! 2. the **shared array** of the cache's node: refilled from and flushed to in
//!    batches of `batchcount`, under the node lock.
//! 3. the **slab lists** of the node (`slabs_partial`, `slabs_full`,
//!    `slabs_free`), and the page layer when they run dry.
//!
//! Slabs are **coloured**: successive slabs start their objects at different
//! cache-line offsets (`colour_off * colour_next`) so that objects of
//! different slabs do not compete for the same cache sets. A **constructor**
//! runs once per object when its slab is created, never on reuse. Slab
//! management data — the freelist of object indices, the count of objects in
//! use, a state byte per object — is kept **off-slab**, in kmem's own pages;
//! the page descriptor of every slab names its cache and its management area,
//! so any object address finds both in O(1), and a pointer the cache did not
//! hand out is recognised and refused.
//!
//! **Reaping** gives back what sits idle ([`reap`], [`start_reaper`]),
//! [`KmemCache::shrink`] releases free slabs now, and [`write_slabinfo`]
//! prints `/proc/slabinfo` (version 2.1).
//!
//! ```
//! use kmem_slab::{KmemCache, ObjectCache, SlabFlags};
//! use kmem_page::Gfp;
//!
//! // The raw cache: addresses in and out.
//! let cache = KmemCache::builder("skbuff_head_cache", 232).flags(SlabFlags::HWCACHE_ALIGN).create()?;
//! let skb = cache.alloc(Gfp::KERNEL)?;
//! // SAFETY: `skb` came from `cache` and is not used afterwards.
//! unsafe { cache.free(skb)? };
//!
//! // The typed cache: owned handles, a constructor closure.
//! let conns = ObjectCache::new("conn", || [0u8; 64])?;
//! let c = conns.alloc()?;
//! assert_eq!(c[0], 0);
//!
//! let mut info = String::new();
//! kmem_slab::write_slabinfo(&mut info).unwrap();
//! assert!(info.contains("skbuff_head_cache"));
//! # Ok::<(), kmem_slab::SlabError>(())
//! ```
//!
//! ## Per-thread array caches
//!
//! A thread's array caches are reachable through one TLS slot holding a
//! plain pointer (const-initialised, no destructor), live in kmem's own
//! pages, and are flushed back when the thread exits (a `pthread_key_create`
//! destructor). An object freed by another thread than the one that
//! allocated it goes into the freeing thread's array cache, as in SLAB.
//! Other threads' arrays are reached (reap, shrink, destroy) through a
//! freeze protocol with `membarrier(2)`; see the `cpu_cache` module source.
//! The first [`SEATS`] threads that use kmem at once hold a *seat*: their
//! arrays live in the caches' descriptors, where the fast path reaches them
//! without a load ([`thread_seat`]; the hot alloc + free pair runs in 7.8
//! cycles for seat 0, 9.6 for the other seats and 12 without a seat on the
//! project's machine, docs/BENCHMARKS.md).
//!
//! ## Destroying a cache others have used
//!
//! [`KmemCache::destroy`] first drains and frees every thread's array cache
//! for the cache (the other threads are frozen for an instant), so no thread
//! keeps a pointer into a destroyed cache. The cache's id may then be reused.
//! Using a cache while it is being destroyed is a caller error, as in Linux;
//! the Rust API makes it impossible (`destroy` takes the handle by value).
//!
//! ## Debug checks
//!
//! Double free, foreign, interior and wrong-cache frees are caught always,
//! cheaply, through the page descriptors. Linux's `slab_debug` checks come
//! on per cache with [`SlabFlags::CONSISTENCY_CHECKS`], [`SlabFlags::RED_ZONE`],
//! [`SlabFlags::POISON`] and [`SlabFlags::STORE_USER`], or for every cache
//! (or named ones) with `KMEM_DEBUG=FZPU[,cache,...]` or
//! [`debug::set_global`]: poisoned free objects, red zones, allocation and
//! free sites, SLUB-style reports, [`KmemCache::validate`], and leak reports
//! ([`debug::leak_report`]). A debug cache never takes the per-thread fast
//! path, so the checks cost nothing on caches without them. See [`debug`].
//!
//! ## Without `std`
//!
//! Without the `std` feature there are no per-thread caches (no TLS): every
//! allocation and free goes to the node under its lock.
#![no_std]

#[cfg(feature = "std")]
extern crate std;

mod backend;
mod cache;
mod cpu_cache;
pub mod debug;
mod error;
#[cfg(not(loom))]
mod fork;
mod info;
mod leak;
mod list;
mod node;
mod pool;
mod reap;
mod slab;
mod stats;
mod sync;
mod trace;
mod typed;

#[cfg(loom)]
#[doc(hidden)]
pub mod loom_model;

pub use backend::SlabPages;
pub use cache::{
    CacheBuilder, CacheGeometry, KmemCache, MAX_OBJECT_SIZE, NAME_MAX, SLAB_MAX_ORDER,
    SLAB_OBJ_MAX_NUM, destroy_raw, free_tagged, free_tagged_fast, tagged_object_size,
};
pub use cpu_cache::{MAX_CACHES, SEATS, seats_in_use, thread_seat};
pub use error::SlabError;
#[cfg(not(loom))]
pub use fork::{fork_child, fork_parent, fork_prepare};
pub use info::{
    SLABINFO_HEADER_1, SLABINFO_HEADER_2, SlabInfo, slabinfo_write_fd, write_slabinfo,
    write_slabinfo_row,
};
pub use kmem_platform::stats::PoolStats;
pub use reap::{REAPTIMEOUT_AC_NS, REAPTIMEOUT_NODE_NS, ReapStats, reap};
#[cfg(feature = "std")]
pub use reap::{reaper_passes, reaper_running, start_reaper, stop_reaper};
pub use stats::{
    CacheStats, SLABINFO_STATS_HEADER_2, slabinfo_stats_write_fd, write_slabinfo_stats,
    write_slabinfo_stats_columns,
};
pub use typed::{Obj, ObjectCache};

/// Slab creation flags (`slab_flags_t`), with Linux's bit values.
///
/// ```
/// use kmem_slab::SlabFlags;
/// let f = SlabFlags::HWCACHE_ALIGN | SlabFlags::PANIC;
/// assert_eq!(f.bits(), 0x2000 | 0x40000);
/// assert!(f.contains(SlabFlags::PANIC));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
#[repr(transparent)]
pub struct SlabFlags(pub u32);

impl SlabFlags {
    /// `SLAB_CONSISTENCY_CHECKS` (`slab_debug` letter F): sanity checks of
    /// the slab state on every allocation and free, with detailed reports.
    pub const CONSISTENCY_CHECKS: SlabFlags = SlabFlags(0x0000_0100);
    /// `SLAB_RED_ZONE` (Z): guard bytes on both sides of every object,
    /// checked on free and by [`KmemCache::validate`].
    pub const RED_ZONE: SlabFlags = SlabFlags(0x0000_0400);
    /// `SLAB_POISON` (P): free objects filled with `0x6b` (last byte
    /// `0xa5`), checked when the object is handed out again. Not applied to
    /// caches with a constructor (their free objects hold constructed state).
    pub const POISON: SlabFlags = SlabFlags(0x0000_0800);
    /// `SLAB_HWCACHE_ALIGN`: align objects to the cache line.
    pub const HWCACHE_ALIGN: SlabFlags = SlabFlags(0x0000_2000);
    /// `SLAB_STORE_USER` (U): remember the allocating and freeing call site,
    /// thread and time of every object (for reports and leak reports).
    pub const STORE_USER: SlabFlags = SlabFlags(0x0001_0000);
    /// `SLAB_PANIC`: abort if the cache cannot be created (C API).
    pub const PANIC: SlabFlags = SlabFlags(0x0004_0000);

    /// Every debug flag: F, Z, P and U (`slab_debug=FZPU`).
    ///
    /// ```
    /// use kmem_slab::SlabFlags;
    /// assert!(SlabFlags::DEBUG_ALL.contains(SlabFlags::POISON | SlabFlags::RED_ZONE));
    /// assert!(!SlabFlags::DEBUG_ALL.contains(SlabFlags::HWCACHE_ALIGN));
    /// ```
    pub const DEBUG_ALL: SlabFlags =
        SlabFlags(0x0000_0100 | 0x0000_0400 | 0x0000_0800 | 0x0001_0000);

    /// No flags.
    pub const fn empty() -> SlabFlags {
        SlabFlags(0)
    }
    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: SlabFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether any bit of `other` is set.
    pub const fn intersects(self, other: SlabFlags) -> bool {
        self.0 & other.0 != 0
    }
    /// The bits set in both.
    pub const fn intersection(self, other: SlabFlags) -> SlabFlags {
        SlabFlags(self.0 & other.0)
    }
    /// `self` without the bits of `other`.
    pub const fn without(self, other: SlabFlags) -> SlabFlags {
        SlabFlags(self.0 & !other.0)
    }
}

impl core::ops::BitOr for SlabFlags {
    type Output = SlabFlags;
    fn bitor(self, rhs: SlabFlags) -> SlabFlags {
        SlabFlags(self.0 | rhs.0)
    }
}
