//! Trace events of the slab layer: `kmem_cache_alloc` and
//! `kmem_cache_free`, the kernel's tracepoints (`include/trace/events/kmem.h`),
//! through the [`tracing`](https://docs.rs/tracing) crate at `TRACE` level,
//! target `kmem`, with the event's name set to the tracepoint's.
//!
//! Only with the cargo feature `trace` (which also turns on the page
//! layer's events; the macros are [`kmem_platform::tracepoint!`]s); without
//! it they expand to an `if false` block the compiler removes, and [`KmemCache::alloc`](crate::KmemCache::alloc) /
//! [`free`](crate::KmemCache::free) are exactly their `_notrace` twins. With
//! it and no subscriber listening, each event costs a relaxed load and a
//! branch (`tracing`'s global level filter).
//!
//! Fields — `kmem_cache_alloc`: `call_site`, `ptr` (0 if the allocation
//! failed), `bytes_req` (the object size asked for), `bytes_alloc` (the
//! object stride), `gfp_flags` (Linux bit values), `name` (the cache's).
//! `kmem_cache_free`: `call_site`, `ptr`, `name`; emitted on entry, for
//! every call, as the kernel does (a refused free is traced too).
//!
//! `call_site` is the caller's source location (`file:line:column`): with
//! the feature on, `alloc` and `free` are `#[track_caller]`. (The kernel
//! records the return address; stable Rust has no way to read it. A C
//! caller through `libkmem` gets the location of the C entry point.)

/// `kmem_cache_alloc`: `$r` (a `Result<NonNull<u8>, _>`) from cache `$c`.
/// Inline: one check of `tracing`'s level filter; the event itself is built
/// out of line.
macro_rules! trace_kmem_cache_alloc {
    ($c:expr, $r:expr, $gfp:expr) => {
        kmem_platform::tracepoint!(
            $crate::trace::kmem_cache_alloc_event,
            $c,
            $r.as_ref().map_or(0, |p| p.as_ptr() as usize),
            $gfp
        )
    };
}

/// `kmem_cache_free`: `$p` is being freed into cache `$c`.
macro_rules! trace_kmem_cache_free {
    ($c:expr, $p:expr) => {
        kmem_platform::tracepoint!(
            $crate::trace::kmem_cache_free_event,
            $c,
            $p.as_ptr() as usize
        )
    };
}

/// Raises `kmem_cache_alloc` (out of line; `call_site` is the caller's
/// caller through `#[track_caller]`).
#[cfg(feature = "trace")]
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn kmem_cache_alloc_event(
    c: &crate::cache::CacheInner,
    ptr: usize,
    gfp: kmem_page::Gfp,
) {
    tracing::event!(
        name: "kmem_cache_alloc",
        target: "kmem",
        tracing::Level::TRACE,
        call_site = %core::panic::Location::caller(),
        ptr = ptr as u64,
        bytes_req = c.object_size as u64,
        bytes_alloc = c.size as u64,
        gfp_flags = gfp.0 as u64,
        name = c.name(),
    )
}

/// Raises `kmem_cache_free` (out of line).
#[cfg(feature = "trace")]
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn kmem_cache_free_event(c: &crate::cache::CacheInner, ptr: usize) {
    tracing::event!(
        name: "kmem_cache_free",
        target: "kmem",
        tracing::Level::TRACE,
        call_site = %core::panic::Location::caller(),
        ptr = ptr as u64,
        name = c.name(),
    )
}

pub(crate) use {trace_kmem_cache_alloc, trace_kmem_cache_free};
