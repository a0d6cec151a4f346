//! What each debug check costs when it is on: one alloc + free pair on a
//! cache with no checks (the per-thread fast path), and on caches with F
//! (consistency checks: every call takes the locked slow path), Z (red
//! zones), P (poison), U (user tracking) and all four — at 64 and 1024
//! bytes (poisoning and its check touch every byte of the object). glibc's
//! malloc/free pair is in the same run as a reference point.
//!
//! `cargo bench -p kmem-slab --bench debug -- --warm-up-time 1 --measurement-time 2`
// Every unsafe block frees an object the benchmark allocated from the same cache.
#![allow(clippy::undocumented_unsafe_blocks)]
// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kmem_page::Gfp;
use kmem_slab::{KmemCache, SlabFlags};

fn pair(c: &mut Criterion) {
    let configs: [(&str, SlabFlags); 6] = [
        ("off", SlabFlags::empty()),
        ("F", SlabFlags::CONSISTENCY_CHECKS),
        ("Z", SlabFlags::RED_ZONE),
        ("P", SlabFlags::POISON),
        ("U", SlabFlags::STORE_USER),
        ("FZPU", SlabFlags::DEBUG_ALL),
    ];
    for size in [64usize, 1024] {
        let mut g = c.benchmark_group(format!("debug_pair/{size}"));
        for (name, flags) in configs {
            let cache = KmemCache::builder("bench_debug", size)
                .debug(flags)
                .create()
                .unwrap();
            // Warm: one slab exists, so no pair grows the cache.
            let keep = cache.alloc(Gfp::KERNEL).unwrap();
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    let p = cache.alloc(Gfp::KERNEL).unwrap();
                    unsafe { cache.free(black_box(p)).unwrap() };
                })
            });
            unsafe { cache.free(keep).unwrap() };
            assert_eq!(cache.validate(), 0);
        }
        g.bench_function(BenchmarkId::from_parameter("glibc"), |b| {
            b.iter(|| unsafe {
                let p = libc::malloc(size);
                libc::free(black_box(p));
            })
        });
        g.finish();
    }
}

criterion_group!(benches, pair);
criterion_main!(benches);
