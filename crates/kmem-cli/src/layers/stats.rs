//! Statistics: every pool's `mp_pool_stats` (the seed's §4.3.3 fields) side
//! by side after a short workload, and SLAB's `cpustat` for a cache used by
//! several threads — how often the per-thread array served a call by itself.

use std::io::{self, Write};

use kmem::Gfp;
use kmem::PoolStats;
use kmem::slab::{self, KmemCache};

/// Runs the workload and prints the statistics part of the report.
pub fn report(out: &mut dyn Write) -> io::Result<()> {
    // A cache used by four threads: bursts of allocations, frees in reverse.
    let cache = KmemCache::new("stats_demo", 200, 0).map_err(io::Error::other)?;
    std::thread::scope(|s| {
        for t in 0..4 {
            let cache = &cache;
            s.spawn(move || {
                let mut held = Vec::with_capacity(300);
                for round in 0..50 {
                    for _ in 0..(50 + 50 * ((round + t) % 5)) {
                        held.push(cache.alloc(Gfp::KERNEL).expect("memory"));
                    }
                    while let Some(p) = held.pop() {
                        // SAFETY: allocated just above from this cache, not used again.
                        unsafe { cache.free(p).expect("our object") };
                    }
                }
            });
        }
    });
    let st = cache.stats();
    writeln!(
        out,
        "SLAB cpustat of `stats_demo` (4 threads, 50 bursts each, summed over threads that have exited):"
    )?;
    let pct = |hit: u64, miss: u64| 100.0 * hit as f64 / (hit + miss).max(1) as f64;
    writeln!(
        out,
        "  alloc  hit {:>7}  miss {:>5}  ({:.1}% served by the thread's array)",
        st.allochit,
        st.allocmiss,
        pct(st.allochit, st.allocmiss)
    )?;
    writeln!(
        out,
        "  free   hit {:>7}  miss {:>5}  ({:.1}%)",
        st.freehit,
        st.freemiss,
        pct(st.freehit, st.freemiss)
    )?;
    writeln!(
        out,
        "  globalstat: {} objects taken off the slab lists, high mark {}, {} slabs grown, {} reaped, {} errors",
        st.listallocs, st.high_mark, st.grown, st.reaped, st.errors
    )?;
    let mut row = String::new();
    slab::write_slabinfo_stats_columns(&mut row, &st).map_err(io::Error::other)?;
    writeln!(out, "  slabinfo statistics columns:{row}")?;

    // Every pool, the same six fields.
    let km = kmem::kmalloc::kmalloc(100, Gfp::KERNEL).map_err(io::Error::other)?;
    let gp = kmem::GenPool::new(12).map_err(io::Error::other)?;
    gp.add(0x1000_0000, 1 << 20).map_err(io::Error::other)?;
    let ga = gp.alloc(10_000).map_err(io::Error::other)?;
    let _ = gp.alloc(1 << 21); // fails: counted
    let mp = kmem::Mempool::new(
        4,
        kmem::mempool::KmallocBackend::new(256).map_err(io::Error::other)?,
    )
    .map_err(io::Error::other)?;
    let e1 = mp.alloc();
    drop(mp.alloc());
    let arena = kmem::arena::Pool::new(kmem::arena::Global, 4096).map_err(io::Error::other)?;
    for n in [10, 100, 1000, 10_000] {
        arena.alloc(n);
    }
    writeln!(out)?;
    writeln!(
        out,
        "mp_pool_stats of every pool (bytes in each pool's unit: object, bucket, block, granule, element, request):"
    )?;
    writeln!(
        out,
        "  {:<26} {:>12} {:>12} {:>12} {:>9} {:>9} {:>7}",
        "pool", "total", "current", "peak", "allocs", "frees", "failed"
    )?;
    let row = |out: &mut dyn Write, name: &str, s: PoolStats| {
        writeln!(
            out,
            "  {:<26} {:>12} {:>12} {:>12} {:>9} {:>9} {:>7}",
            name,
            s.total_allocated,
            s.current_allocated,
            s.peak_allocated,
            s.allocation_count,
            s.free_count,
            s.failed_count
        )
    };
    row(
        out,
        "pages (global buddy)",
        kmem::page::global().pool_stats(),
    )?;
    row(out, "slab cache stats_demo", cache.pool_stats())?;
    row(out, "kmalloc (all classes)", kmem::kmalloc::pool_stats())?;
    row(out, "genalloc (4 KiB granules)", gp.pool_stats())?;
    row(out, "mempool (kmalloc 256)", mp.pool_stats())?;
    row(out, "region pool (mp_pool)", arena.stats())?;
    drop(e1);
    gp.free_alloc(ga).map_err(io::Error::other)?;
    // SAFETY: from kmalloc above, not used again.
    unsafe { kmem::kmalloc::kfree(km.as_ptr()) }.map_err(io::Error::other)?;
    Ok(())
}
