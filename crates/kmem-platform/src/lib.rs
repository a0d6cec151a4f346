//! # kmem-platform — the only layer that talks to the operating system
//!
//! Every system call kmem makes lives here: mapping and unmapping memory
//! (`mmap`/`munmap`/`madvise`), cpu and thread ids, clocks, futex-based locks
//! and writing diagnostics to a file descriptor. The layers above (page, slab,
//! kmalloc, …) name none of these directly; they ask for memory through a
//! [`PageSource`], which lets the same allocator run over
//!
//! * [`Os`] — anonymous memory from the kernel (the default on Linux),
//! * [`TestPlatform`] — plain heap memory with counters and failure injection
//!   (`std` only), so upper layers are testable without system calls and under Miri,
//! * [`NoPages`] — no source at all, for `no_std` users that hand the page layer
//!   a region of their own.
//!
//! ```
//! use kmem_platform::{Os, PageSource, PAGE_SIZE};
//! let os = Os::new();
//! let p = os.map(4 * PAGE_SIZE, 4 * PAGE_SIZE).expect("mmap");
//! assert_eq!(p.as_ptr() as usize % (4 * PAGE_SIZE), 0);
//! // SAFETY: `p` came from `os.map` with this size and alignment and is not used again.
//! unsafe { os.unmap(p, 4 * PAGE_SIZE, 4 * PAGE_SIZE) };
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

pub mod cpu;
pub mod diag;
#[cfg(unix)]
pub mod ipc;
pub mod lock;
#[cfg(miri)]
mod miri_roots;
mod os;
pub mod process;
mod source;
pub mod stats;
#[cfg(feature = "std")]
mod test_source;
pub mod thread;
pub mod time;
pub mod tls;
pub mod trace;

pub use lock::{Mutex, MutexGuard, RawLock};
pub use os::{Os, os_page_size};
pub use source::{NoPages, PageSource};
#[cfg(feature = "std")]
pub use test_source::TestPlatform;

/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: usize = 12;
/// The page size kmem manages memory in (4 KiB, as on x86-64 Linux).
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;
/// The size of a cache line, used for `SLAB_HWCACHE_ALIGN` and to keep hot
/// per-thread data apart.
pub const CACHE_LINE: usize = 64;
