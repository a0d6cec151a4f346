//! The mempool's part of the report: a page pool under simulated memory
//! pressure — what the reserve did, and what it costs against the page layer.

use std::io::{self, Write};

use kmem::Gfp;
use kmem::mempool::{Mempool, PageBackend};
use kmem::page::{Config, PageAllocator};
use kmem::platform::TestPlatform;

use crate::timing::{fmt_ns, median_ns};

const MIN_NR: usize = 16;

/// Runs the mempool workload and prints its part of the report.
pub fn report(out: &mut dyn Write) -> io::Result<()> {
    // A 4 MiB page allocator, so that a "hog" can exhaust it.
    let pages = PageAllocator::with_config(
        TestPlatform::new(),
        Config {
            keep_free_pages: 0,
            max_pages: 1024,
        },
    );
    let backend = PageBackend::new(&pages, 0).map_err(io::Error::other)?;
    let pool = Mempool::new(MIN_NR, backend).map_err(io::Error::other)?;
    writeln!(
        out,
        "a reserve of {MIN_NR} order-0 pages over a 4 MiB page allocator (mempool_create_page_pool)"
    )?;

    // Healthy: the page layer serves, the reserve is untouched.
    let direct = median_ns(5, 20_000, || {
        if let Ok(p) = pages.alloc_raw(0, Gfp::NOWAIT) {
            // SAFETY: an order-0 block just allocated from `pages`.
            unsafe { pages.free_raw(p, 0).ok() };
        }
    });
    let healthy = median_ns(5, 20_000, || drop(pool.try_alloc()));

    // Memory pressure: a hog takes every free page; the pool lives on its reserve.
    let hog: Vec<_> = std::iter::from_fn(|| pages.alloc_raw(0, Gfp::NOWAIT).ok()).collect();
    let mut held = Vec::new();
    while let Some(e) = pool.try_alloc() {
        held.push(e);
    }
    let served = held.len();
    drop(held); // back into the reserve
    let reserve = median_ns(5, 20_000, || drop(pool.try_alloc()));
    for p in hog {
        // SAFETY: order-0 blocks the hog allocated from `pages`.
        unsafe { pages.free_raw(p, 0).ok() };
    }

    writeln!(
        out,
        "with the page allocator exhausted, GFP_NOWAIT allocations served: {served} (= min_nr), then NULL"
    )?;
    writeln!(
        out,
        "{:44} {:>10} {:>18}",
        "alloc+free (median)", "time", "vs page layer"
    )?;
    writeln!(
        out,
        "{:44} {:>10} {:>18}",
        "page layer alone",
        fmt_ns(direct),
        "1.00"
    )?;
    writeln!(
        out,
        "{:44} {:>10} {:>18.2}",
        "mempool, healthy backend",
        fmt_ns(healthy),
        healthy / direct
    )?;
    writeln!(
        out,
        "{:44} {:>10} {:>18.2}",
        "mempool, backend failing (from the reserve)",
        fmt_ns(reserve),
        reserve / direct
    )?;
    writeln!(out, "pool: {}", pool.stats())?;
    drop(pool);
    writeln!(
        out,
        "pages still allocated after mempool_destroy: {}",
        pages.stats().allocated_pages
    )
}
