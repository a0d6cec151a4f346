//! # kmem-page — the buddy page allocator
//!
//! What `mm/page_alloc.c` does, in user space. Memory comes from a
//! [`PageSource`](kmem_platform::PageSource) in 4 MiB regions aligned to their
//! size; each region is one free block of the largest order. Blocks of
//! `2^order` pages (order `0..=MAX_PAGE_ORDER`, 4 KiB to 4 MiB) are split off on
//! allocation and merged with their buddy (`pfn ^ (1 << order)`) on free.
//!
//! Every page has a [`PageDesc`] in a side table, never inside the memory, and
//! a process-wide registry maps any address to its descriptor in O(1)
//! ([`lookup`], [`lookup_block`], [`is_kmem`]). That is how upper layers find
//! the owner of any pointer, and how a pointer kmem never handed out is
//! recognised and refused.
//!
//! Blocks of orders 0–3 are recycled through per-cpu lists (Linux's
//! `per_cpu_pages`): one set per cpu, each under its own lock, refilled from
//! and trimmed back to the buddy lists a batch at a time, so that threads on
//! different cpus do not meet on the zone lock ([`PageAllocator::drain`]
//! empties them).
//!
//! Wholly free regions go back to the source once more than a watermark of
//! free pages ([`Config::keep_free_pages`]) is mapped. `no_std` users hand the
//! allocator memory of their own with [`PageAllocator::add_static_region`].
//!
//! ```
//! use kmem_page::{Gfp, PageAllocator};
//! let pages = PageAllocator::new_os();
//! let a = pages.alloc(0, Gfp::KERNEL)?;                 // one page
//! let b = pages.alloc(3, Gfp::KERNEL | Gfp::ZERO)?;     // eight, zeroed
//! assert_eq!(b.as_ptr() as usize % (8 * 4096), 0);
//! let mut info = String::new();
//! pages.write_buddyinfo(&mut info).unwrap();
//! println!("{info}");
//! drop((a, b));
//! pages.check().unwrap();
//! # Ok::<(), kmem_page::PageError>(())
//! ```
#![no_std]

#[cfg(feature = "std")]
extern crate std;

mod allocator;
mod block;
mod buddy;
mod desc;
mod error;
mod fork;
mod gfp;
mod global;
mod info;
mod meta;
mod pcp;
mod region;
mod registry;
mod shrink;
mod stats;
mod trace;

pub use allocator::{Config, PageAllocator, PageStats};
pub use block::Pages;
pub use desc::{PageDesc, PageKind};
pub use error::PageError;
pub use fork::{fork_child, fork_parent, fork_prepare};
pub use gfp::Gfp;
pub use global::global;
pub use kmem_platform::{PAGE_SHIFT, PAGE_SIZE};
pub use pcp::PCP_SETS;
pub use registry::{
    ADDRESS_LIMIT, BlockRef, is_kmem, lookup, lookup_block, lookup_fast, lookup_head,
};
pub use shrink::{register_shrinker, run_shrinkers};

/// The largest order (`MAX_PAGE_ORDER`): blocks go up to `2^10` pages, 4 MiB.
pub const MAX_PAGE_ORDER: u32 = 10;
/// Number of orders (`NR_PAGE_ORDERS`, 0 to `MAX_PAGE_ORDER`).
pub const NR_PAGE_ORDERS: usize = MAX_PAGE_ORDER as usize + 1;
/// log2 of a region's size: one block of the largest order.
pub const REGION_SHIFT: usize = PAGE_SHIFT + MAX_PAGE_ORDER as usize;
/// A region's size (4 MiB); regions are aligned to it.
pub const REGION_SIZE: usize = 1 << REGION_SHIFT;
