//! # kmem-arena — the region pool (nginx's design, the seed's `mp_pool`)
//!
//! A region pool hands out memory that is given back all at once: when the
//! pool is reset (for the next request, frame, or query) or destroyed. It is
//! the pool of nginx (`ngx_palloc.c`) and of the seed's §4.1, over kmem's page
//! layer:
//!
//! * **small** allocations (up to `max = min(size, PAGE_SIZE - 1)` bytes) are
//!   bumped from blocks of a fixed size ([`small`]): the search starts at the
//!   `current` block; a block passed over when a new block is added counts a
//!   failure, and after more than 4 failures the search starts past it;
//! * **large** allocations get their own pages and an entry in the large list
//!   ([`large`]); they can be freed one by one ([`Pool::free`], `mp_free`),
//!   and the entries are reused;
//! * **cleanup** handlers run, newest first, when the pool is destroyed
//!   ([`cleanup`]);
//! * **reset** frees the large allocations and rewinds the blocks;
//!   **destroy** runs the cleanups and frees everything;
//! * **statistics** as the seed's `struct mp_pool_stats` ([`stats`]).
//!
//! Memory comes from kmem's page layer ([`PageBackend`]: the process's
//! [`kmem_page::global()`] by default, or any `&PageAllocator<S>`), never from
//! the system allocator.
//!
//! | type | for | threads |
//! |---|---|---|
//! | [`Arena`] | Rust: `alloc(value) -> &mut T`, slices, strings, collections via [`allocator_api2`] | one (`!Send`, `!Sync`) |
//! | [`SyncArena`] | the same, shared | any (`Send + Sync`, a lock per call, `T: Send`) |
//! | [`Pool`] | raw memory with the C API's semantics | one (`Send`) |
//! | [`LockedPool`] | what C's `mp_pool_t *` points to | any (a lock per call) |
//!
//! **`Arena` drops the values it holds** when it is reset or dropped (unlike
//! `bumpalo`): see [`Arena`].
//!
//! ```
//! use kmem_arena::Arena;
//! use allocator_api2::vec::Vec;
//!
//! let mut arena = Arena::new();
//! for request in 0..3 {
//!     let name = arena.alloc_str("GET /index.html");
//!     let headers = arena.alloc(vec![("host", "example.org")]);
//!     let mut body: Vec<u8, _> = Vec::new_in(&arena);
//!     body.extend_from_slice(b"hello");
//!     assert_eq!((name.len(), headers.len(), body.len(), request < 3), (15, 1, 5, true));
//!     drop(body);
//!     arena.reset(); // everything above is gone; `headers` was dropped
//! }
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

mod alloc_api;
pub mod cleanup;
mod error;
pub mod large;
mod locked;
mod pages;
mod pool;
pub mod small;
pub mod stats;
mod sync;
mod typed;

pub use cleanup::{Cleanup, CleanupFn};
pub use error::{ArenaError, FreeError};
pub use locked::LockedPool;
pub use pages::{Global, PageBackend};
pub use pool::{MP_ALIGNMENT, MP_MAX_ALLOC_FROM_POOL, Pool};
pub use small::BlockInfo;
pub use stats::PoolStats;
pub use sync::SyncArena;
pub use typed::{Arena, DEFAULT_BLOCK_SIZE};

/// The default page size (4096): the seed's `MP_PAGE_SIZE`.
pub use kmem_page::PAGE_SIZE;
