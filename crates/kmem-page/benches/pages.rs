//! Allocate + free of order-0 and order-3 blocks: kmem's buddy allocator
//! against mmap/munmap and against the system malloc of the same size, in one
//! run. A second group writes one byte per page before freeing, which is where
//! mmap pays for page faults and kmem (reusing hot pages) does not.
//!
//! A third group runs the alloc+free pair on two threads at once (each
//! holding a few blocks so the lists move), where every pair used to meet on
//! the zone lock and now stays on its cpu's per-cpu list; the time is per pair
//! per thread.
//!
//! `cargo bench -p kmem-page --bench pages`

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kmem_page::{Gfp, PAGE_SIZE, global};
use kmem_platform::{Os, PageSource};

fn touch(p: *mut u8, len: usize) {
    let mut off = 0;
    while off < len {
        // SAFETY: `p..p+len` is a live allocation of ours.
        unsafe { p.add(off).write_volatile(1) };
        off += PAGE_SIZE;
    }
}

fn bench(c: &mut Criterion) {
    for touch_pages in [false, true] {
        let name = if touch_pages {
            "alloc+touch+free"
        } else {
            "alloc+free"
        };
        let mut g = c.benchmark_group(name);
        for order in [0u32, 3] {
            let size = PAGE_SIZE << order;
            g.bench_with_input(
                BenchmarkId::new("kmem", format!("order{order}")),
                &order,
                |b, &order| {
                    let pages = global();
                    b.iter(|| {
                        let p = pages.alloc_raw(order, Gfp::KERNEL).unwrap();
                        if touch_pages {
                            touch(p.as_ptr(), size);
                        }
                        // SAFETY: just allocated with this order.
                        unsafe { pages.free_raw(black_box(p), order).unwrap() };
                    })
                },
            );
            g.bench_with_input(
                BenchmarkId::new("mmap", format!("order{order}")),
                &order,
                |b, _| {
                    let os = Os::new();
                    b.iter(|| {
                        let p = os.map(size, PAGE_SIZE).unwrap();
                        if touch_pages {
                            touch(p.as_ptr(), size);
                        }
                        // SAFETY: just mapped with this size.
                        unsafe { os.unmap(black_box(p), size, PAGE_SIZE) };
                    })
                },
            );
            g.bench_with_input(
                BenchmarkId::new("malloc", format!("order{order}")),
                &order,
                |b, _| {
                    let layout = Layout::from_size_align(size, 16).unwrap();
                    b.iter(|| {
                        // SAFETY: non-zero layout, freed with the same layout.
                        unsafe {
                            let p = System.alloc(layout);
                            assert!(!p.is_null());
                            if touch_pages {
                                touch(p, size);
                            }
                            System.dealloc(black_box(p), layout);
                        }
                    })
                },
            );
        }
        g.finish();
    }
}

/// Two threads, each `iters` times: allocate a block of `order` from `pages`,
/// free the one allocated 8 rounds before. Returns the slower thread's time.
fn two_threads(iters: u64, order: u32) -> std::time::Duration {
    let pages = global();
    let start = std::sync::Barrier::new(2);
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let start = &start;
                sc.spawn(move || {
                    let mut ring = [None; 8];
                    start.wait();
                    let t = std::time::Instant::now();
                    for i in 0..iters {
                        let p = pages.alloc_raw(order, Gfp::KERNEL).unwrap();
                        if let Some(old) = ring[i as usize % 8].replace(p) {
                            // SAFETY: allocated with this order 8 rounds ago.
                            unsafe { pages.free_raw(black_box(old), order).unwrap() };
                        }
                    }
                    let d = t.elapsed();
                    for p in ring.into_iter().flatten() {
                        // SAFETY: as above.
                        unsafe { pages.free_raw(p, order).unwrap() };
                    }
                    d
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).max().unwrap()
    })
}

fn bench_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc+free, 2 threads");
    for order in [0u32, 3] {
        g.bench_with_input(
            BenchmarkId::new("kmem", format!("order{order}")),
            &order,
            |b, &order| b.iter_custom(|iters| two_threads(iters, order)),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench, bench_threads
}
criterion_main!(benches);
