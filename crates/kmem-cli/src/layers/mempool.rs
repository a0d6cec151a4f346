//! `kmem` report, mempool section: a page pool under simulated memory
//! pressure — what the reserve did, and what it costs.

use std::io::{self, Write};
use std::time::Instant;

use kmem::Gfp;
use kmem::mempool::{Mempool, PageBackend};
use kmem::page::{Config, PageAllocator};
use kmem::platform::TestPlatform;

const MIN_NR: usize = 16;
const ROUNDS: u32 = 20_000;

/// Nanoseconds per call of `f`, over `ROUNDS` calls.
fn ns_per(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..ROUNDS {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
}

/// Runs the workload and prints the report.
pub fn report(out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "== mempool: a reserve of {MIN_NR} order-0 pages over a 4 MiB page allocator ==")?;
    let pages = PageAllocator::with_config(TestPlatform::new(), Config { keep_free_pages: 0, max_pages: 1024 });
    let pool = match Mempool::new(MIN_NR, PageBackend::new(&pages, 0).map_err(io::Error::other)?) {
        Ok(p) => p,
        Err(e) => return writeln!(out, "could not create the pool: {e}"),
    };

    // Healthy: the backend serves; the reserve is untouched.
    let direct = ns_per(|| {
        if let Ok(p) = pages.alloc_raw(0, Gfp::NOWAIT) {
            // SAFETY: an order-0 block just allocated from `pages`.
            unsafe { pages.free_raw(p, 0).ok() };
        }
    });
    let healthy = ns_per(|| drop(pool.try_alloc()));

    // Memory pressure: a hog takes every free page; the pool lives on its reserve.
    let hog: Vec<_> = std::iter::from_fn(|| pages.alloc_raw(0, Gfp::NOWAIT).ok()).collect();
    let mut held = Vec::new();
    while let Some(e) = pool.try_alloc() {
        held.push(e);
    }
    let served_under_pressure = held.len();
    drop(held); // back into the reserve
    let reserve = ns_per(|| drop(pool.try_alloc()));
    for p in hog {
        // SAFETY: order-0 blocks the hog allocated from `pages`.
        unsafe { pages.free_raw(p, 0).ok() };
    }

    writeln!(out, "  allocations served with the page allocator exhausted: {served_under_pressure} (= min_nr)")?;
    writeln!(out, "  alloc+free latency, healthy backend : {healthy:7.1} ns  (page layer alone {direct:.1} ns, ratio {:.2})", healthy / direct)?;
    writeln!(out, "  alloc+free latency, from the reserve: {reserve:7.1} ns  (ratio to page layer {:.2})", reserve / direct)?;
    writeln!(out, "  {}", pool.stats())?;
    drop(pool);
    writeln!(out, "  pages still allocated after mempool_destroy: {}", pages.stats().allocated_pages)
}
