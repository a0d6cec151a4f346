//! Trace events of the page layer: `mm_page_alloc` and `mm_page_free`, the
//! kernel's tracepoints (`include/trace/events/kmem.h`), through the
//! [`tracing`](https://docs.rs/tracing) crate at `TRACE` level, target
//! `kmem`, with the event's name set to the tracepoint's.
//!
//! Only with the cargo feature `trace` (the macros are
//! [`kmem_platform::tracepoint!`]s); without it they expand to
//! an `if false` block that the compiler removes (it only keeps the
//! arguments "used"), so they are compiled out. With it and no
//! subscriber listening, each event costs a relaxed load and a branch
//! (`tracing`'s global level filter).
//!
//! Fields — `mm_page_alloc`: `page` (the block's address), `pfn`
//! (`page >> PAGE_SHIFT`), `order`, `gfp_flags` (Linux bit values),
//! `migratetype` (kmem's nearest equivalent: what the block is for,
//! [`PageKind::name`](crate::PageKind::name): `slab`, `large block`, `pages`).
//! `mm_page_free`: `page`, `pfn`, `order`. Events are emitted for blocks
//! from [`alloc_kind`](crate::PageAllocator::alloc_kind) (and so `alloc`,
//! `alloc_raw`, the slab layer's slabs, kmalloc's large blocks) and for
//! every [`free_kind`](crate::PageAllocator::free_kind) call (also refused
//! ones, as the kernel traces a free before checking it).

/// `mm_page_alloc`: a block of `2^order` pages at `$addr` was handed out.
macro_rules! trace_mm_page_alloc {
    ($addr:expr, $order:expr, $gfp:expr, $kind:expr) => {
        kmem_platform::tracepoint!(
            $crate::trace::mm_page_alloc_event,
            $addr as usize,
            $order,
            $gfp,
            $kind
        )
    };
}

/// `mm_page_free`: the block of `2^order` pages at `$addr` is being freed.
macro_rules! trace_mm_page_free {
    ($addr:expr, $order:expr) => {
        kmem_platform::tracepoint!($crate::trace::mm_page_free_event, $addr as usize, $order)
    };
}

/// Raises `mm_page_alloc` (out of line).
#[cfg(feature = "trace")]
#[cold]
#[inline(never)]
pub(crate) fn mm_page_alloc_event(addr: usize, order: u32, gfp: crate::Gfp, kind: crate::PageKind) {
    tracing::event!(
        name: "mm_page_alloc",
        target: "kmem",
        tracing::Level::TRACE,
        page = addr as u64,
        pfn = (addr >> kmem_platform::PAGE_SHIFT) as u64,
        order = order as u64,
        gfp_flags = gfp.0 as u64,
        migratetype = kind.name(),
    )
}

/// Raises `mm_page_free` (out of line).
#[cfg(feature = "trace")]
#[cold]
#[inline(never)]
pub(crate) fn mm_page_free_event(addr: usize, order: u32) {
    tracing::event!(
        name: "mm_page_free",
        target: "kmem",
        tracing::Level::TRACE,
        page = addr as u64,
        pfn = (addr >> kmem_platform::PAGE_SHIFT) as u64,
        order = order as u64,
    )
}

pub(crate) use {trace_mm_page_alloc, trace_mm_page_free};
