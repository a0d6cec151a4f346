//! # kmem — the Linux kernel's memory pools, in user space
//!
//! This facade re-exports every layer of kmem. The layers, bottom up (each
//! depends only on those below it):
//!
//! | layer | crate | what it is |
//! |---|---|---|
//! | platform | `kmem-platform` | the only code that talks to the OS |
//! | page | `kmem-page` | the buddy page allocator ([`page`]) |
//! | slab | `kmem-slab` | `kmem_cache`: object caches over slabs ([`slab`]) |
//! | genalloc | `kmem-genalloc` | bitmap allocator over caller-supplied address ranges ([`genalloc`]) |
//! | kmalloc | `kmem-kmalloc` | size classes `kmalloc-8` … `kmalloc-8k` over slab caches, larger from pages; a `GlobalAlloc` ([`kmalloc`], [`Kmalloc`]) |
//! | mempool | `kmem-mempool` | a reserve of `min_nr` elements over any backend ([`mempool`]) |
//! | arena | `kmem-arena` | the region pool, nginx's design ([`arena`]): bump blocks, listed large allocations, cleanups, reset |
//!
//! ## Glossary
//!
//! * **page** — 4096 bytes, the unit the page layer hands out.
//! * **order** — a block of `2^order` contiguous pages, aligned to its size
//!   (order 0 = 4 KiB, order 10 = 4 MiB, `MAX_PAGE_ORDER`).
//! * **buddy** — the block of the same order next to a block, at page frame
//!   `pfn ^ (1 << order)`; two free buddies merge into one block of the next order.
//! * **page descriptor** — the record of one page (free, head, tail, slab,
//!   large, order, owner), kept beside the memory, never inside it.
//! * **region** — a 4 MiB, 4 MiB-aligned piece of memory from the OS: one
//!   block of the largest order.
//! * **watermark** — the number of free pages the page layer keeps mapped
//!   rather than give back to the OS.
//! * **region pool / arena** — memory handed out one piece at a time and given
//!   back all at once, at reset or destroy (nginx's `ngx_pool_t`, the seed's
//!   `mp_pool_t`) ([`Arena`], [`arena::Pool`]).
//! * **small / large** — in a region pool, allocations up to `max = min(size,
//!   PAGE_SIZE - 1)` are bumped from the pool's blocks; larger ones get pages of
//!   their own and can be freed early (`mp_free`).
//! * **current** — the block a region pool's search starts at; it moves past a
//!   block that failed more than 4 times (was passed over when blocks were added).
//! * **cleanup handler** — a function a region pool calls, newest first, when
//!   it is destroyed (`mp_cleanup_add`).
//! * **gfp** — "get free pages" flags: may the call wait, must memory be zeroed,
//!   may it fail ([`Gfp`]).
//! * **slab** — a block of `2^order` pages cut into `num` objects of one cache
//!   ([`KmemCache`]); it is on its node's `slabs_full`, `slabs_partial` or
//!   `slabs_free` list.
//! * **array cache** — a per-thread LIFO stack of free objects of one cache
//!   (SLAB's per-cpu `array_cache`): `avail`, `limit`, `batchcount`, `touched`.
//! * **seat** — one of the first `SEATS` (8) threads using kmem at once: its
//!   array caches live in the caches' descriptors, at the seat's offset, so its
//!   fast path finds them without a load (Linux's per-cpu `array` pointers in
//!   `struct kmem_cache`, indexed by seat instead of cpu); other threads reach
//!   theirs through their TLS slot table.
//! * **shared array** — the node's second-level stack that array caches refill
//!   from and flush to in batches.
//! * **colouring** — starting each slab's objects at a different cache-line
//!   offset (`colour_off * colour_next`) so slabs do not share cache sets.
//! * **constructor** — runs once per object when its slab is created; objects
//!   go back to the cache in constructed state.
//! * **slab_debug** — Linux's per-cache debug checks, letters F (consistency
//!   checks), Z (red zones: `0xbb` free / `0xcc` allocated guard bytes around
//!   each object), P (poison: free objects hold `0x6b`, last byte `0xa5`), U
//!   (user tracking: allocating and freeing call site, thread, time); set by
//!   `SLAB_*` flags or `KMEM_DEBUG=FZPU[,cache...]`; reports `BUG <cache>: ...`
//!   and leak reports grouped by site ([`slab::debug`]).
//! * **reaping** — giving idle objects and free slabs back (`cache_reap`,
//!   every 2 s / 4 s).
//! * **freeze** — how another thread (the reaper, `kmem_cache_shrink`,
//!   `kmem_cache_destroy`, `fork`) gets a thread's array caches without the
//!   owner ever locking on its fast path: it closes the arrays' bounds, runs
//!   `membarrier(2)` (the user-space stand-in for the kernel's IPI to every
//!   cpu), and waits until the owner's busy marks — its hit counters, odd
//!   while it is inside an operation — are even.
//! * **pcp** — the page layer's per-cpu lists (`struct per_cpu_pages`): small
//!   blocks kept hot per cpu under their own lock, refilled from and drained
//!   to the buddy lists `batch` at a time, at most `high`.
//! * **size class** — one of kmalloc's object sizes (8, 16, 32, 64, 96, 128,
//!   192, 256, 512, 1k, 2k, 4k, 8k), each a slab cache named `kmalloc-<size>`;
//!   a request is rounded up to the first class that holds it.
//! * **ZERO_SIZE_PTR** — what `kmalloc(0)` returns, `(void *)16`: not NULL (so
//!   not mistaken for a failure), never dereferenceable; `kfree` ignores it.
//! * **ksize** — the usable size of a kmalloc allocation: its class's size,
//!   or its page block's; all of it may be written.
//! * **gen_pool** — a genalloc pool ([`GenPool`]): address ranges you add
//!   (device memory, SRAM, file offsets), handed out in granules; the pool
//!   never touches the memory.
//! * **chunk** — one contiguous range of a gen_pool, with its own bitmap.
//! * **granule / `min_alloc_order`** — a gen_pool's unit, `2^min_alloc_order`
//!   bytes; one bitmap bit per granule.
//! * **summary** — kmem's tree of hints over a chunk's bitmap that keeps
//!   genalloc's search cost flat as chunks grow (the kernel scans linearly).
//! * **mempool** — a pool that keeps `min_nr` elements allocated in advance so
//!   that a path which must not fail (I/O, a device's read) still gets memory
//!   when the backend has none ([`Mempool`]).
//! * **min_nr / curr_nr** — a mempool's reserve target and its current level;
//!   the **low-water mark** is the lowest the level has been.
//! * **backend** — where a mempool's elements normally come from: pages of an
//!   order, a slab cache, a kmalloc size, or user functions (`mempool_alloc_t`).
//! * **pool statistics** — the seed's `struct mp_pool_stats` ([`PoolStats`]:
//!   total, current and peak bytes, allocation, free and failure counts),
//!   which every pool reports through `pool_stats()`.
//! * **cpustat** — SLAB's per-cpu hit/miss counts of a cache (`allochit`,
//!   `allocmiss`, `freehit`, `freemiss`; [`slab::CacheStats`]): whether the
//!   thread's array cache served the call or the node had to. kmem keeps
//!   them per thread and sums them on read; `globalstat` is the node's side.
//! * **tracepoint** — a named event with fields, as the kernel's
//!   `kmem:kmalloc`, `kmem:kfree`, `kmem:kmem_cache_alloc`,
//!   `kmem:kmem_cache_free`, `kmem:mm_page_alloc`, `kmem:mm_page_free`;
//!   kmem raises them through the `tracing` crate with the feature `trace`.
//!
//! ```
//! use kmem::{Gfp, page};
//! let block = page::global().alloc(2, Gfp::KERNEL)?;
//! assert_eq!(block.len(), 4 * 4096);
//! # Ok::<(), kmem::page::PageError>(())
//! ```
#![no_std]

/// The platform layer: OS memory, locks, clocks, diagnostics.
pub use kmem_platform as platform;

/// The page layer: the buddy allocator.
pub use kmem_page as page;

/// The mempool: a reserve of preallocated elements over any backend.
pub use kmem_mempool as mempool;

pub use kmem_mempool::{Mempool, MempoolError};
pub use kmem_page::{Gfp, PageAllocator, PageError, Pages};
pub use kmem_platform::stats::PoolStats;

/// The slab layer: `kmem_cache` with per-thread array caches.
pub use kmem_slab as slab;

pub use kmem_slab::{KmemCache, Obj, ObjectCache, SlabError, SlabFlags};

/// kmalloc: size classes over slab caches, large requests from pages.
pub use kmem_kmalloc as kmalloc;

pub use kmem_kmalloc::{Kmalloc, KmallocError, ZERO_SIZE_PTR};

/// genalloc: the kernel's general-purpose pool over address ranges.
pub use kmem_genalloc as genalloc;

pub use kmem_genalloc::{Algo, Allocation, GenPool, GenPoolError};

/// The region pool (nginx's design): [`Arena`], [`SyncArena`], [`arena::Pool`].
pub use kmem_arena as arena;

pub use kmem_arena::{Arena, SyncArena};
