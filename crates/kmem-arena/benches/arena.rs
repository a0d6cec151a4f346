//! Region pool vs bumpalo, typed-arena and malloc, in one run.
//!
//! * `alloc_u64`: 10,000 allocations of a `u64`, then a reset (arenas) or
//!   10,000 frees (malloc); typed-arena has no reset, so it is created and
//!   dropped per batch, as its users do.
//! * `alloc_mixed`: 10,000 byte slices of 8..=200 bytes (copied), then reset / free.
//! * `reset`: the reset alone, after 10,000 `u64`s (`large_0`), and after
//!   those plus 50 allocations of 5,000 bytes (`large_50`); typed-arena is
//!   dropped instead (it has no reset), malloc frees every pointer.
//!
//! Run: `cargo bench -p kmem-arena --bench arena -- --warm-up-time 1 --measurement-time 2`
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kmem_arena::{Arena, LockedPool, Pool};

const N: usize = 10_000;

fn sizes() -> Vec<usize> {
    // A fixed, irregular sequence of sizes 8..=200.
    let mut x = 12345u32;
    (0..N)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            8 + (x % 193) as usize
        })
        .collect()
}

fn alloc_u64(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc_u64");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("kmem_arena", |b| {
        let mut arena = Arena::new();
        b.iter(|| {
            for i in 0..N {
                black_box(arena.alloc(i as u64));
            }
            arena.reset();
        })
    });
    g.bench_function("bumpalo", |b| {
        let mut bump = bumpalo::Bump::new();
        b.iter(|| {
            for i in 0..N {
                black_box(bump.alloc(i as u64));
            }
            bump.reset();
        })
    });
    g.bench_function("typed_arena", |b| {
        b.iter(|| {
            let arena = typed_arena::Arena::new();
            for i in 0..N {
                black_box(arena.alloc(i as u64));
            }
        })
    });
    g.bench_function("malloc", |b| {
        let mut ptrs = vec![std::ptr::null_mut::<libc::c_void>(); N];
        b.iter(|| {
            for (i, p) in ptrs.iter_mut().enumerate() {
                // SAFETY: plain malloc; freed below.
                *p = unsafe { libc::malloc(8) };
                // SAFETY: 8 bytes just allocated (or a null we never dereference).
                unsafe { p.cast::<u64>().write(i as u64) };
                black_box(*p);
            }
            for p in &ptrs {
                // SAFETY: each came from malloc above.
                unsafe { libc::free(*p) };
            }
        })
    });
    g.bench_function("kmem_pool_mp_alloc", |b| {
        let mut pool = Pool::new(kmem_arena::Global, 16 * 1024 - 64).unwrap();
        b.iter(|| {
            for i in 0..N {
                let p = pool.alloc(8).unwrap();
                // SAFETY: 8 bytes just allocated.
                unsafe { p.as_ptr().cast::<u64>().write(i as u64) };
                black_box(p);
            }
            pool.reset();
        })
    });
    g.bench_function("kmem_locked_pool_mp_alloc", |b| {
        let lp = LockedPool::create(16 * 1024 - 256).unwrap();
        // SAFETY: live until destroyed below; this thread only.
        let pool = unsafe { lp.as_ref() };
        b.iter(|| {
            for i in 0..N {
                let p = pool.lock().alloc(8).unwrap();
                // SAFETY: 8 bytes just allocated.
                unsafe { p.as_ptr().cast::<u64>().write(i as u64) };
                black_box(p);
            }
            pool.lock().reset();
        });
        // SAFETY: not used afterwards.
        unsafe { LockedPool::destroy(lp) };
    });
    g.finish();
}

fn alloc_mixed(c: &mut Criterion) {
    let sizes = sizes();
    let src = [7u8; 256];
    let mut g = c.benchmark_group("alloc_mixed");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("kmem_arena", |b| {
        let mut arena = Arena::new();
        b.iter(|| {
            for &n in &sizes {
                black_box(arena.alloc_slice_copy(&src[..n]));
            }
            arena.reset();
        })
    });
    g.bench_function("bumpalo", |b| {
        let mut bump = bumpalo::Bump::new();
        b.iter(|| {
            for &n in &sizes {
                black_box(bump.alloc_slice_copy(&src[..n]));
            }
            bump.reset();
        })
    });
    g.bench_function("typed_arena", |b| {
        b.iter(|| {
            let arena = typed_arena::Arena::<u8>::new();
            for &n in &sizes {
                black_box(arena.alloc_extend(src[..n].iter().copied()));
            }
        })
    });
    g.bench_function("malloc", |b| {
        let mut ptrs = vec![std::ptr::null_mut::<libc::c_void>(); N];
        b.iter(|| {
            for (p, &n) in ptrs.iter_mut().zip(&sizes) {
                // SAFETY: plain malloc + copy of `n` bytes; freed below.
                unsafe {
                    *p = libc::malloc(n);
                    std::ptr::copy_nonoverlapping(src.as_ptr(), p.cast(), n);
                }
                black_box(*p);
            }
            for p in &ptrs {
                // SAFETY: each came from malloc above.
                unsafe { libc::free(*p) };
            }
        })
    });
    g.finish();
}

fn reset(c: &mut Criterion) {
    let mut g = c.benchmark_group("reset");
    // `large`: 0 = 10,000 u64s only; 50 = also 50 allocations of 5,000 bytes,
    // which a region pool serves from pages of their own (nginx's large
    // allocations) and must give back one by one at reset.
    for large in [0usize, 50] {
        g.bench_function(format!("kmem_arena/large_{large}"), |b| {
            b.iter_batched(
                || {
                    let arena = Arena::new();
                    for i in 0..N {
                        arena.alloc(i as u64);
                    }
                    for _ in 0..large {
                        arena.alloc_slice_fill_copy(5000, 1u8);
                    }
                    arena
                },
                |mut arena| {
                    arena.reset();
                    arena
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("bumpalo/large_{large}"), |b| {
            b.iter_batched(
                || {
                    let bump = bumpalo::Bump::new();
                    for i in 0..N {
                        bump.alloc(i as u64);
                    }
                    for _ in 0..large {
                        bump.alloc_slice_fill_copy(5000, 1u8);
                    }
                    bump
                },
                |mut bump| {
                    bump.reset();
                    bump
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("malloc_free_all/large_{large}"), |b| {
            b.iter_batched(
                || {
                    (0..N)
                        // SAFETY: plain malloc; freed in the measured routine.
                        .map(|_| unsafe { libc::malloc(8) })
                        .chain((0..large).map(|_| {
                            // SAFETY: as above.
                            unsafe { libc::malloc(5000) }
                        }))
                        .collect::<Vec<_>>()
                },
                |ptrs| {
                    for p in &ptrs {
                        // SAFETY: each came from malloc in the setup.
                        unsafe { libc::free(*p) };
                    }
                    ptrs
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.bench_function("typed_arena_drop/large_0", |b| {
        b.iter_batched(
            || {
                let arena = typed_arena::Arena::new();
                for i in 0..N {
                    arena.alloc(i as u64);
                }
                arena
            },
            drop,
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, alloc_u64, alloc_mixed, reset);
criterion_main!(benches);
