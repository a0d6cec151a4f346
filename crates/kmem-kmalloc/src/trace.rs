//! Trace events of kmalloc: `kmalloc` and `kfree`, the kernel's tracepoints
//! (`include/trace/events/kmem.h`), through the
//! [`tracing`](https://docs.rs/tracing) crate at `TRACE` level, target
//! `kmem`, with the event's name set to the tracepoint's.
//!
//! Only with the cargo feature `trace` (which turns on the slab and page
//! layers' events too: `kmem_cache_alloc`/`kmem_cache_free` for caches of
//! your own, `mm_page_alloc`/`mm_page_free` for every page block, including
//! kmalloc's large ones and the classes' slabs). The macros are
//! [`kmem_platform::tracepoint!`]s: without the feature they expand to an
//! `if false` block the compiler removes. With it and no
//! subscriber listening, each event costs a relaxed load and a branch.
//!
//! Fields — `kmalloc`: `call_site`, `ptr` (0 if the allocation failed),
//! `bytes_req` (the size asked for), `bytes_alloc` (what the allocation
//! really has: its class, or its page block, as [`ksize`](crate::ksize)),
//! `gfp_flags` (Linux bit values). `kfree`: `call_site`, `ptr`; emitted on
//! entry for every call, as the kernel does (NULL and refused frees too).
//! An allocation served by a class cache emits `kmalloc` only, not also
//! `kmem_cache_alloc` (kmalloc uses the caches' `_notrace` calls, as Linux
//! does).
//!
//! `call_site` is the caller's source location (`file:line:column`): with
//! the feature on, the entry points (`kmalloc`, `kmalloc_aligned`, `kfree`,
//! `kzalloc`, `kcalloc`, `kmalloc_array`, `kmemdup`, `kstrdup`, `krealloc`,
//! `kfree_sensitive`) are `#[track_caller]`. The kernel records the return
//! address; stable Rust cannot read it, so a C caller through `libkmem`
//! gets the location of the C entry point, and the `GlobalAlloc` impl its own.
//! Events raised while a subscriber is itself allocating through kmem are
//! dropped by `tracing` (it does not re-enter a dispatcher).

/// `kmalloc`: `$r` (a `Result<NonNull<u8>, _>`) for a request of `$size` bytes.
macro_rules! trace_kmalloc {
    ($size:expr, $r:expr, $gfp:expr) => {
        kmem_platform::tracepoint!(
            $crate::trace::kmalloc_event,
            $size,
            $r.as_ref().map_or(0, |p| p.as_ptr() as usize),
            $gfp
        )
    };
}

/// `kfree`: `$p` is being freed.
macro_rules! trace_kfree {
    ($p:expr) => {
        kmem_platform::tracepoint!($crate::trace::kfree_event, $p as usize)
    };
}

/// Raises `kmalloc` (out of line; `call_site` through `#[track_caller]`).
#[cfg(feature = "trace")]
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn kmalloc_event(size: usize, ptr: usize, gfp: kmem_page::Gfp) {
    let bytes_alloc = if ptr == 0 {
        0
    } else {
        crate::ksize(ptr as *const u8).unwrap_or(0)
    };
    tracing::event!(
        name: "kmalloc",
        target: "kmem",
        tracing::Level::TRACE,
        call_site = %core::panic::Location::caller(),
        ptr = ptr as u64,
        bytes_req = size as u64,
        bytes_alloc = bytes_alloc as u64,
        gfp_flags = gfp.0 as u64,
    )
}

/// Raises `kfree` (out of line).
#[cfg(feature = "trace")]
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn kfree_event(ptr: usize) {
    tracing::event!(
        name: "kfree",
        target: "kmem",
        tracing::Level::TRACE,
        call_site = %core::panic::Location::caller(),
        ptr = ptr as u64,
    )
}

pub(crate) use {trace_kfree, trace_kmalloc};
