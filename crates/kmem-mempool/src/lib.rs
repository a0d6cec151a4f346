//! # kmem-mempool — a reserve that keeps critical paths working under memory pressure
//!
//! What the kernel's `mm/mempool.c` does, in user space. A [`Mempool`] keeps
//! `min_nr` elements allocated in advance in front of a [`Backend`] (pages of
//! an order, a slab cache, a kmalloc size, or your own functions). Allocation
//! asks the backend first and only takes from the reserve when the backend
//! fails, so the reserve is there when memory is short; a caller that may
//! wait is never failed — it waits until another thread frees an element,
//! which the free hands straight to the reserve.
//!
//! | part | file | kernel |
//! |---|---|---|
//! | the pool: create, destroy, stats | `mempool.rs` | `mempool_create`, `mempool_destroy` |
//! | allocation, in the kernel's order | `alloc.rs` | `mempool_alloc` |
//! | free: refill or give back | `free.rs` | `mempool_free` |
//! | resize | `resize.rs` | `mempool_resize` |
//! | the reserve array (from the page layer) | `pool.rs` | `pool->elements`, `curr_nr`, `min_nr` |
//! | wait queue and its wake-up protocol | `wait.rs` | `pool->wait` |
//! | backends: trait, closures, C function pointers, fault injection | `backend.rs` | `mempool_alloc_t`, `mempool_free_t`, `pool_data` |
//! | stock backends: pages (slab, kmalloc to come) | `stock.rs` | `mempool_alloc_pages` … |
//! | counters | `stats.rs` | — |
//!
//! ```
//! use kmem_mempool::{FaultyBackend, Mempool, PageBackend};
//! // A pool of 4 pages whose backend we can make fail.
//! let pool = Mempool::new(4, FaultyBackend::new(PageBackend::global(0)?))?;
//! pool.backend().set_failing(true);            // memory pressure
//! let held: Vec<_> = (0..4).map(|_| pool.alloc()).collect();   // all from the reserve
//! assert!(pool.try_alloc().is_none());          // reserve empty: a waiting caller would sleep
//! drop(held);                                   // back into the reserve
//! assert_eq!(pool.stats().curr_nr, 4);
//! # drop(pool); kmem_page::global().trim(0); // hand the cached region back (Miri checks for leaks)
//! # Ok::<(), kmem_mempool::MempoolError>(())
//! ```
//!
//! Differences from the kernel, on purpose: `__GFP_ZERO` is refused with an
//! error (the kernel only warns, then hands out reserve elements that are not
//! zeroed); the pool counts the elements it has handed out, refuses a free
//! when none is outstanding, and refuses to be destroyed while some are; a
//! resize that adds elements wakes the waiters (the kernel lets them sleep
//! out their 5 s retry interval).
#![no_std]

#[cfg(any(feature = "std", loom, test))]
extern crate std;

mod alloc;
mod backend;
mod element;
mod error;
mod free;
mod mempool;
mod pool;
mod resize;
mod stats;
mod stock;
mod sync;
mod wait;

pub use alloc::GFP_NOMEMALLOC;
#[cfg(feature = "std")]
pub use backend::BoxBackend;
pub use backend::{
    Backend, CBackend, FaultyBackend, FnBackend, MempoolAllocFn, MempoolFreeFn, Opaque,
};
pub use element::Element;
pub use error::MempoolError;
pub use kmem_page::Gfp;
pub use mempool::{Mempool, RETRY_INTERVAL};
pub use pool::MAX_MIN_NR;
pub use stats::MempoolStats;
pub use stock::{KmallocBackend, KmallocObject, Page, PageBackend, SlabBackend, SlabObject};
