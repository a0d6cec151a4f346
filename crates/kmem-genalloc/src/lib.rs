//! # kmem-genalloc — the kernel's general-purpose pool over address ranges
//!
//! `lib/genalloc.c` in user space, and more. A [`GenPool`] manages address
//! ranges that the caller supplies — device memory, on-chip SRAM, a GPU
//! aperture, offsets in a file — in granules of `1 << min_alloc_order`
//! bytes. Each range ("chunk") has a bitmap, one bit per granule (set = in
//! use); an allocation finds a run of clear bits with the pool's
//! [`Algo`]rithm and sets them with compare-and-swap, rolled back if another
//! thread collides, so `alloc` and `free` are lock-free as in the kernel.
//!
//! **The managed memory is never touched**: all bookkeeping (chunk headers,
//! bitmaps, summaries) lives in memory from a [`PageSource`](kmem_platform::PageSource)
//! — the OS by default — so the ranges may be unmapped.
//!
//! **Beyond the kernel — flat cost.** The kernel scans a bitmap linearly, so
//! first fit slows as chunks grow and fill. Here each bitmap has a summary
//! tree (see [`Search::Summary`]) that finds the first fit in O(log₆₄ n):
//! in the benchmarks (docs/BENCHMARKS.md) allocation in a 1 TiB chunk of
//! 4 KiB granules, 90% full, costs about what it does in a 1 MiB chunk. The
//! bitmap stays the truth; user algorithms search it directly. The kernel's
//! linear search is kept as [`Search::Linear`].
//!
//! | kernel | here |
//! |---|---|
//! | `gen_pool_create(order, nid)` | [`GenPool::new`], [`GenPool::with_config`] |
//! | `gen_pool_add_virt` / `gen_pool_add` | [`GenPool::add_virt`] / [`GenPool::add`] |
//! | `gen_pool_alloc` / `gen_pool_alloc_algo` | [`GenPool::alloc`] / [`GenPool::alloc_algo`], [`GenPool::alloc_guard`] |
//! | `gen_pool_dma_alloc` | [`GenPool::dma_alloc`] |
//! | `gen_pool_free` | [`GenPool::free`] |
//! | `gen_pool_virt_to_phys`, `gen_pool_avail`, `gen_pool_size`, `gen_pool_has_addr` | same names |
//! | `gen_pool_for_each_chunk` | [`GenPool::for_each_chunk`], [`GenPool::chunks`] |
//! | `gen_pool_set_algo` | [`GenPool::set_algo`] |
//! | `gen_pool_destroy` | [`GenPool::destroy`] (refuses while allocations live) |
//! | `gen_pool_first_fit`, `_align`, `_order_align`, `best_fit`, `fixed_alloc` | [`Algo`], plus [`Algo::WorstFit`] and [`GenAlgo`] |
//!
//! Every bad input — a free outside any chunk, unaligned, not allocated or
//! running past its chunk; size zero; overlapping chunks; destroying a pool
//! with live allocations — is an `Err` ([`GenPoolError`]) and changes nothing.
//!
//! ```
//! use kmem_genalloc::{Algo, GenPool};
//! // 64 MiB of device memory at an address the process has not mapped.
//! let pool = GenPool::new(12)?;
//! pool.add_virt(0xdead_0000_0000, 0xc000_0000, 64 << 20)?;
//! let fb = pool.alloc_algo(8 << 20, Algo::FirstFitAlign { align: 2 << 20 })?;
//! assert_eq!(fb.addr % (2 << 20), 0);
//! assert_eq!(pool.virt_to_phys(fb.addr), Some(0xc000_0000));
//! {
//!     let dma = pool.alloc_guard(4096)?; // freed at the end of the block
//!     assert!(pool.has_addr(dma.addr, dma.size));
//! }
//! pool.free_alloc(fb)?;
//! assert_eq!(pool.avail(), 64 << 20);
//! # Ok::<(), kmem_genalloc::GenPoolError>(())
//! ```
#![no_std]

#[cfg(feature = "std")]
extern crate std;

pub mod algo;
pub mod bitmap;
mod chunk;
pub mod error;
pub mod guard;
pub mod pool;
mod stats;
mod summary;

pub use algo::{Algo, ChunkCtx, GenAlgo};
pub use bitmap::Bitmap;
pub use chunk::ChunkRef;
pub use error::GenPoolError;
pub use guard::PoolAlloc;
pub use pool::{
    Allocation, CheckFailure, Chunks, DestroyError, DmaAllocation, GenPool, PoolConfig, Search,
};
