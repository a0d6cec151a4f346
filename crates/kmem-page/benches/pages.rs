//! Allocate + free of order-0 and order-3 blocks: kmem's buddy allocator
//! against mmap/munmap and against the system malloc of the same size, in one
//! run. A second group writes one byte per page before freeing, which is where
//! mmap pays for page faults and kmem (reusing hot pages) does not.
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

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
