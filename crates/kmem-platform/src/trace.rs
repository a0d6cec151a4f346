//! The machinery behind every layer's trace events: [`tracepoint!`](crate::tracepoint).
//!
//! The page, slab and kmalloc layers each raise the kernel's tracepoints
//! (`mm_page_alloc`, `kmem_cache_alloc`, `kmalloc`, …) through the
//! [`tracing`](https://docs.rs/tracing) crate when *their own* cargo feature
//! `trace` is on. What each layer writes is only its events: a `#[cold]`
//! out-of-line function that builds the event, and a one-line macro that hands
//! it to [`tracepoint!`](crate::tracepoint). The platform crate itself has no
//! `trace` feature and does not depend on `tracing`: the macro's
//! `cfg(feature = "trace")` is part of its expansion, so it is decided by the
//! crate the tracepoint is written in.

/// Raises a trace event from a hot path, or compiles to nothing.
///
/// `tracepoint!(event_fn, arg, …)` expands, in the crate that writes it, to
///
/// * with that crate's feature `trace` on: one check of `tracing`'s global
///   level filter (a relaxed load and a branch) and, if `TRACE` is enabled, a
///   call `event_fn(arg, …)` — the function that builds the event, which
///   should be `#[cold]` and `#[inline(never)]` so the hot path keeps only the
///   check. The arguments are evaluated only then;
/// * with it off: an `if false` block that only borrows the arguments (so
///   values used for nothing else raise no "unused" warning) and that the
///   compiler removes. `event_fn` is not named at all, so it may be
///   `#[cfg(feature = "trace")]` itself.
///
/// The calling crate must declare a feature `trace` (that turns on its
/// optional `tracing` dependency).
///
/// ```
/// // A crate without a `trace` feature: the tracepoint is compiled out and
/// // `page_alloc_event` is never named.
/// fn alloc(order: u32) -> usize {
///     let addr = 0x1000 << order;
///     kmem_platform::tracepoint!(page_alloc_event, addr, order);
///     addr
/// }
/// assert_eq!(alloc(2), 0x4000);
/// ```
#[macro_export]
macro_rules! tracepoint {
    ($event:path $(, $arg:expr)* $(,)?) => {{
        #[cfg(feature = "trace")]
        {
            if ::tracing::level_enabled!(::tracing::Level::TRACE) {
                $event($($arg),*);
            }
        }
        #[cfg(not(feature = "trace"))]
        {
            if false {
                $(let _ = &$arg;)*
            }
        }
    }};
}
