//! genalloc's part of the report: a pool over an unmapped 1 TiB device
//! range, its chunks after a workload, what each algorithm picks, and the
//! cost of an allocation with the summary, with the kernel's linear scan,
//! and with a `Vec`-backed first fit, as the chunk fills.

use std::io::{self, Write};

use kmem::genalloc::{Algo, GenPool, PoolConfig, Search};
use kmem::platform::Os;

use crate::timing::{fmt_ns, median_ns};

const BASE: usize = 0x1_0000_0000_0000; // no memory behind it: the pool never touches it

/// Granules `[0, prefix)` get the fill pattern: all allocated except one
/// granule in every 64, as a first-fit pool fills from the front and frees
/// leave pinholes; `fill_pct`% of the chunk is then in use.
fn prefix(bytes: usize, fill_pct: usize) -> usize {
    let n = bytes >> 12;
    ((n as u128 * fill_pct as u128 * 64 / 6300) as usize / 64 * 64).min(n)
}

fn fill(pool: &GenPool, bytes: usize, fill_pct: usize) {
    for block in (0..prefix(bytes, fill_pct)).step_by(64) {
        pool.alloc_algo(
            63 << 12,
            Algo::Fixed {
                offset: (block + 1) << 12,
            },
        )
        .expect("fill");
    }
}

fn unfill(pool: &GenPool, bytes: usize, fill_pct: usize) {
    for block in (0..prefix(bytes, fill_pct)).step_by(64) {
        pool.free(BASE + ((block + 1) << 12), 63 << 12)
            .expect("unfill");
    }
}

/// Runs the genalloc workload and prints its part of the report.
pub fn report(out: &mut dyn Write) -> io::Result<()> {
    let pool = GenPool::with_config(Os::new(), PoolConfig::new(12).name("vram"))
        .map_err(io::Error::other)?;
    pool.add_virt(BASE, 0x80_0000_0000, 1 << 40)
        .map_err(io::Error::other)?;
    pool.add_virt(BASE + (2 << 40), 0xfe00_0000, 1 << 20)
        .map_err(io::Error::other)?;

    // A workload: buffers of mixed sizes, every third one freed again.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut live = Vec::new();
    for i in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = [4096, 8192, 64 << 10, 2 << 20, 16 << 20][(x % 5) as usize];
        let a = pool.alloc(size).map_err(io::Error::other)?;
        if i % 3 == 0 {
            pool.free_alloc(a).map_err(io::Error::other)?;
        } else {
            live.push(a);
        }
    }
    writeln!(
        out,
        "pool 'vram', 4 KiB granules, two chunks at addresses nothing is mapped at \
         (newest first, as the kernel searches them):"
    )?;
    writeln!(
        out,
        "  {:>18} {:>18} {:>16} {:>12} {:>14} {:>8}",
        "start", "end", "phys", "avail MiB", "bookkeeping", "levels"
    )?;
    for c in pool.chunks() {
        writeln!(
            out,
            "  {:#18x} {:#18x} {:#16x} {:>12} {:>11} KiB {:>8}",
            c.start_addr(),
            c.end_addr(),
            c.phys_addr(),
            c.avail() >> 20,
            c.bookkeeping_bytes() >> 10,
            c.summary_depth()
        )?;
    }
    writeln!(
        out,
        "  {} allocations live, {} MiB of {} GiB allocated",
        live.len(),
        (pool.size() - pool.avail()) >> 20,
        pool.size() >> 30
    )?;

    writeln!(out)?;
    writeln!(
        out,
        "where each algorithm puts 8 KiB in a 256 KiB chunk with holes of 5, 2, 3 and 34 granules:"
    )?;
    let small = GenPool::new(12).map_err(io::Error::other)?;
    small.add(0x4000_0000, 64 << 12).map_err(io::Error::other)?;
    let mut walls = Vec::new();
    for (at, n) in [(5, 5), (12, 8), (23, 7)] {
        walls.push(
            small
                .alloc_algo(n << 12, Algo::Fixed { offset: at << 12 })
                .map_err(io::Error::other)?,
        );
    }
    for (name, algo) in [
        ("first_fit", Algo::FirstFit),
        (
            "first_fit_align 128K",
            Algo::FirstFitAlign { align: 128 << 10 },
        ),
        ("first_fit_order_align", Algo::FirstFitOrderAlign),
        ("best_fit", Algo::BestFit),
        ("worst_fit", Algo::WorstFit),
        ("fixed_alloc @0x3c000", Algo::Fixed { offset: 0x3c000 }),
    ] {
        let a = small.alloc_algo(2 << 12, algo).map_err(io::Error::other)?;
        writeln!(
            out,
            "  {name:22} 8 KiB at granule {:>2}",
            (a.addr - 0x4000_0000) >> 12
        )?;
        small.free_alloc(a).map_err(io::Error::other)?;
    }

    writeln!(out)?;
    writeln!(
        out,
        "alloc+free of 8 KiB in one chunk of 4 KiB granules filled from the front (median):"
    )?;
    writeln!(
        out,
        "  {:>8} {:>6} {:>12} {:>14} {:>10}",
        "chunk", "fill", "summary", "kernel linear", "linear/summary"
    )?;
    for (bytes, label) in [
        (1usize << 20, "1 MiB"),
        (1 << 30, "1 GiB"),
        (1 << 40, "1 TiB"),
    ] {
        for pct in [0, 90] {
            let mk = |search| -> io::Result<GenPool> {
                let p = GenPool::with_config(
                    Os::new(),
                    PoolConfig {
                        search,
                        ..PoolConfig::new(12)
                    },
                )
                .map_err(io::Error::other)?;
                p.add(BASE, bytes).map_err(io::Error::other)?;
                fill(&p, bytes, pct);
                Ok(p)
            };
            let (s, l) = (mk(Search::Summary)?, mk(Search::Linear)?);
            let op = |p: &GenPool| {
                let a = p.alloc(8192).expect("alloc");
                p.free_alloc(a).expect("free");
            };
            let ts = median_ns(5, 2000, || op(&s));
            let iters = if bytes >= 1 << 40 && pct > 0 { 3 } else { 200 };
            let tl = median_ns(3, iters, || op(&l));
            writeln!(
                out,
                "  {label:>8} {:>5}% {:>12} {:>14} {:>9.1}x",
                pct,
                fmt_ns(ts),
                fmt_ns(tl),
                tl / ts
            )?;
            unfill(&s, bytes, pct);
            unfill(&l, bytes, pct);
        }
    }
    for a in live.into_iter().chain(walls) {
        let p = if a.addr >= BASE { &pool } else { &small };
        p.free_alloc(a).map_err(io::Error::other)?;
    }
    pool.destroy().map_err(|e| io::Error::other(e.error))?;
    small.destroy().map_err(|e| io::Error::other(e.error))?;
    Ok(())
}
