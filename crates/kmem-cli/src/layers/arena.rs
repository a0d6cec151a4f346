//! The region pool's part of the default report: a short request-style
//! workload (allocate, use, reset), its statistics, its blocks, and its speed
//! next to malloc on the same workload.

use std::hint::black_box;
use std::io::{self, Write};
use std::time::Instant;

use kmem::arena::{Arena, PoolStats};

const REQUESTS: usize = 2000;
const SMALL_PER_REQUEST: usize = 200;

/// A fixed, irregular sequence of small sizes (8..=200 bytes).
fn sizes() -> Vec<usize> {
    let mut x = 0x2545_f491_u32;
    (0..SMALL_PER_REQUEST)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            8 + (x % 193) as usize
        })
        .collect()
}

/// Runs the workload and prints what a user of the pool wants to see.
pub fn report(out: &mut dyn Write) -> io::Result<()> {
    let sizes = sizes();
    let src = [0x5au8; 256];
    let mut arena = Arena::new();
    writeln!(out, "region pool (kmem::arena, nginx's design)")?;
    writeln!(
        out,
        "  workload: {REQUESTS} requests; each: {SMALL_PER_REQUEST} small allocations (8-200 B), one String, one 64 KiB buffer, then reset"
    )?;
    writeln!(
        out,
        "  blocks of {} B; small = up to {} B, larger gets its own pages",
        arena.block_size(),
        arena.small_limit()
    )?;

    let mut before_reset = PoolStats::default();
    let mut blocks = Vec::new();
    let t = Instant::now();
    for r in 0..REQUESTS {
        for &n in &sizes {
            black_box(arena.alloc_slice_copy(&src[..n]));
        }
        arena.alloc(format!("request {r}"));
        black_box(arena.alloc_slice_fill_copy(64 * 1024, 0u8));
        if r == REQUESTS - 1 {
            before_reset = arena.stats();
            arena.for_each_block(|b| blocks.push(b));
        }
        arena.reset();
    }
    let pool_ns = t.elapsed().as_nanos() as f64;

    let t = Instant::now();
    for r in 0..REQUESTS {
        let mut keep: Vec<Box<[u8]>> = Vec::with_capacity(SMALL_PER_REQUEST + 2);
        for &n in &sizes {
            keep.push(black_box(Box::from(&src[..n])));
        }
        let s = format!("request {r}");
        keep.push(black_box(vec![0u8; 64 * 1024].into_boxed_slice()));
        drop(black_box(s));
        drop(keep);
    }
    let malloc_ns = t.elapsed().as_nanos() as f64;

    let s = arena.stats();
    writeln!(out, "  mp_pool_stats after the run:")?;
    writeln!(
        out,
        "    total_allocated   {:>12} B  (every allocation ever)",
        s.total_allocated
    )?;
    writeln!(
        out,
        "    current_allocated {:>12} B  (live now: 0 after a reset)",
        s.current_allocated
    )?;
    writeln!(out, "    peak_allocated    {:>12} B", s.peak_allocated)?;
    writeln!(out, "    allocation_count  {:>12}", s.allocation_count)?;
    writeln!(
        out,
        "    free_count        {:>12}  (large frees + everything live at each reset)",
        s.free_count
    )?;
    writeln!(out, "    failed_count      {:>12}", s.failed_count)?;
    writeln!(
        out,
        "  last request before its reset: {} B live in {} allocations",
        before_reset.current_allocated,
        before_reset.allocation_count - before_reset.free_count
    )?;
    let failed: Vec<usize> = blocks.iter().map(|b| b.failed).collect();
    let cur = blocks.iter().position(|b| b.is_current).unwrap_or(0);
    writeln!(
        out,
        "  blocks: {} (kept across resets); search starts at block {cur}; failures per block {failed:?}",
        blocks.len()
    )?;
    let (live, idle) = arena.large_entries();
    writeln!(
        out,
        "  large list after the last reset: {live} live, {idle} idle entries"
    )?;
    let allocs = (REQUESTS * (SMALL_PER_REQUEST + 2)) as f64;
    writeln!(
        out,
        "  time per allocation (incl. reset/free): arena {:.1} ns, malloc/free {:.1} ns ({:.1}x)",
        pool_ns / allocs,
        malloc_ns / allocs,
        malloc_ns / pool_ns
    )?;
    Ok(())
}
