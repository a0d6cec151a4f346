//! Allocation cost against chunk size (1 MiB → 1 TiB, 4 KiB granules) and
//! fill level (0–95%): genalloc with its summary, genalloc with the kernel's
//! linear scan, and a TLSF free-list allocator over offsets
//! (`offset-allocator`), all in the same run.
//!
//! The chunk is filled the way a first-fit pool fills: from the front. The
//! first part of the chunk is allocated except for one free granule in every
//! 64 (pinholes left by earlier frees), sized so that `fill` of all granules
//! are in use; the rest is free. Each iteration allocates 8 KiB (two
//! granules, which no pinhole fits) and frees it again.
//!
//! Run: `cargo bench -p kmem-genalloc --bench genalloc` (about two minutes);
//! then `cargo run --release -p kmem-genalloc --example bench_plot` writes
//! the table and docs/genalloc-bench.svg from criterion's results.

// criterion_group! makes an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kmem_genalloc::{Algo, GenPool, PoolConfig, Search};
use kmem_platform::Os;

const ORDER: u32 = 12;
const GRANULE: usize = 1 << ORDER;
const BASE: usize = 0x1_0000_0000_0000; // unmapped: the pool never touches it
const REQ: usize = 2 * GRANULE;

/// Chunk sizes and their labels.
pub const SIZES: [(usize, &str); 4] = [
    (1 << 20, "1MiB"),
    (256 << 20, "256MiB"),
    (64 << 30, "64GiB"),
    (1 << 40, "1TiB"),
];
/// Fill levels in percent.
pub const FILLS: [usize; 4] = [0, 50, 90, 95];

/// Granules `[0, prefix)` hold the pinhole pattern; `fill`% of all granules are used.
fn prefix(n: usize, fill: usize) -> usize {
    ((n as u128 * fill as u128 * 64 / (63 * 100)) as usize / 64 * 64).min(n)
}

fn genpool(bytes: usize, fill: usize, search: Search) -> GenPool {
    let pool = GenPool::with_config(
        Os::new(),
        PoolConfig {
            search,
            ..PoolConfig::new(ORDER)
        },
    )
    .unwrap();
    pool.add(BASE, bytes).unwrap();
    let n = bytes / GRANULE;
    for block in (0..prefix(n, fill)).step_by(64) {
        // Granule `block` stays free; the next 63 are allocated.
        pool.alloc_algo(
            63 * GRANULE,
            Algo::Fixed {
                offset: (block + 1) * GRANULE,
            },
        )
        .unwrap();
    }
    pool
}

fn offset_alloc(bytes: usize, fill: usize) -> offset_allocator::Allocator {
    let n = bytes / GRANULE;
    let p = prefix(n, fill);
    let mut a = offset_allocator::Allocator::with_max_allocs(n as u32, (p / 32 + 1024) as u32);
    let mut holes = Vec::with_capacity(p / 64);
    for _ in (0..p).step_by(64) {
        holes.push(a.allocate(1).unwrap());
        a.allocate(63).unwrap();
    }
    for h in holes {
        a.free(h);
    }
    a
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("genalloc_alloc_free_8k");
    for &(bytes, label) in &SIZES {
        for &fill in &FILLS {
            let id = format!("{label}_f{fill}");
            {
                let pool = genpool(bytes, fill, Search::Summary);
                g.bench_with_input(BenchmarkId::new("summary", &id), &pool, |b, pool| {
                    b.iter(|| {
                        let a = pool.alloc(black_box(REQ)).unwrap();
                        pool.free_alloc(a).unwrap();
                    })
                });
            }
            {
                let pool = genpool(bytes, fill, Search::Linear);
                g.bench_with_input(BenchmarkId::new("linear", &id), &pool, |b, pool| {
                    b.iter(|| {
                        let a = pool.alloc(black_box(REQ)).unwrap();
                        pool.free_alloc(a).unwrap();
                    })
                });
            }
            {
                let mut oa = offset_alloc(bytes, fill);
                g.bench_function(BenchmarkId::new("offset_allocator", &id), |b| {
                    b.iter(|| {
                        let a = oa.allocate(black_box(2)).unwrap();
                        oa.free(a);
                    })
                });
            }
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
