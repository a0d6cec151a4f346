//! One module per layer; each prints its part of the default report.
//!
//! To add a layer: create `layers/<layer>.rs` with
//! `pub fn report(out: &mut dyn Write) -> io::Result<()>`, declare it here,
//! and call it from [`report_all`] in layer order (bottom up).

use std::io::{self, Write};

pub mod arena;
pub mod genalloc;
pub mod kmalloc;
pub mod mempool;
pub mod pages;
pub mod slab;
pub mod stats;

/// The default report: every layer's workload and view, bottom up.
pub fn report_all(out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "kmem {} — the Linux kernel's memory pools in user space",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(
        out,
        "Each section runs a short workload through one layer and shows what it did."
    )?;
    section(out, "page layer: the buddy allocator")?;
    pages::report(out)?;
    section(out, "slab layer: kmem_cache")?;
    slab::report(out)?;
    section(out, "kmalloc: size classes over the slab caches")?;
    kmalloc::report(out)?;
    section(out, "genalloc: a bitmap pool over address ranges")?;
    genalloc::report(out)?;
    section(out, "mempool: a reserve for paths that must not fail")?;
    mempool::report(out)?;
    section(out, "region pool: nginx's design (mp_pool, Arena)")?;
    arena::report(out)?;
    section(
        out,
        "statistics: every pool's mp_pool_stats, SLAB's cpustat",
    )?;
    stats::report(out)?;
    Ok(())
}

/// Runs the page, slab and kmalloc sections' workloads with their output
/// discarded, so that `kmem buddyinfo` and `kmem slabinfo` have something to
/// show (the kmalloc caches outlive their workload).
pub fn warm_up() -> io::Result<()> {
    let mut sink = io::sink();
    pages::report(&mut sink)?;
    slab::report(&mut sink)?;
    kmalloc::report(&mut sink)
}

/// Prints a section heading.
pub fn section(out: &mut dyn Write, title: &str) -> io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "== {title} {}",
        "=".repeat(70usize.saturating_sub(title.len() + 4))
    )
}
