//! # kmem-capi — kmem's C ABI
//!
//! The functions of `include/kmem.h`, with the kernel's names and signatures.
//! They are linked into `libkmem.so` (crate `libkmem`) and into
//! `libkmem_preload.so`. Every function is thread-safe and never crashes on bad
//! input: where the kernel would `BUG()`, kmem reports on stderr and returns
//! without changing state.
#![allow(clippy::missing_safety_doc)]

#[macro_use]
pub mod caller;
pub mod arena;
pub mod genalloc;
pub mod kmalloc;
pub mod mempool;
pub mod pages;
pub mod slab;
