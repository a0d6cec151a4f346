//! Region pool vs bumpalo, typed-arena and malloc, in one run.
//!
//! * `alloc_u64`: 10,000 allocations of a `u64`, then a reset (arenas) or
//!   10,000 frees (malloc); typed-arena has no reset, so it is created and
//!   dropped per batch, as its users do.
//! * `alloc_mixed`: 10,000 byte slices of 8..=200 bytes (copied), then reset / free.
//! * `reset`: the reset alone, after 10,000 `u64`s (`large_0`), and after
//!   those plus 50 allocations of 5,000 bytes (`large_50`), in an arena made
//!   for the occasion (its first reset: bumpalo also frees the chunks it grew
//!   through); typed-arena is dropped instead (it has no reset), malloc frees
//!   every pointer.
//! * `reset_cycle`: the steady state of a request loop: 1, 10 or 100 `u64`
//!   allocations, then a reset, on the same arena (typed-arena: created and
//!   dropped; malloc: freed).
//! * `reset_warm`: the same reset in the steady state of a request loop: the
//!   arena was filled and reset once before the fill whose reset is timed
//!   (bumpalo then holds one chunk large enough, kmem the same blocks).
//!
//! The reset groups time the routine on the arena in place
//! (`iter_batched_ref`), so no contender pays for moving its arena struct
//! (kmem's is ~450 bytes, bumpalo's a few words).
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

/// The reset groups time a routine of tens of nanoseconds after a setup
/// (filling an arena) of tens of microseconds, and criterion budgets the
/// *timed* part: with the command line's 1 s + 2 s that would be hours of
/// setup. These budgets keep each benchmark to seconds of wall time
/// (still tens of thousands of timed resets).
fn short_budget(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.sample_size(20);
    g.warm_up_time(std::time::Duration::from_millis(5));
    g.measurement_time(std::time::Duration::from_millis(20));
}

/// The steady state of a request loop: `n` small allocations, then a reset,
/// again and again on the same arena (no setup; the reset is a large part of
/// each iteration when `n` is small).
fn reset_cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("reset_cycle");
    for n in [1usize, 10, 100] {
        g.bench_function(format!("kmem_arena/{n}"), |b| {
            let mut arena = Arena::new();
            b.iter(|| {
                for i in 0..n {
                    black_box(arena.alloc(i as u64));
                }
                arena.reset();
            })
        });
        g.bench_function(format!("bumpalo/{n}"), |b| {
            let mut bump = bumpalo::Bump::new();
            b.iter(|| {
                for i in 0..n {
                    black_box(bump.alloc(i as u64));
                }
                bump.reset();
            })
        });
        g.bench_function(format!("typed_arena/{n}"), |b| {
            b.iter(|| {
                let arena = typed_arena::Arena::new();
                for i in 0..n {
                    black_box(arena.alloc(i as u64));
                }
            })
        });
        g.bench_function(format!("malloc/{n}"), |b| {
            let mut ptrs = vec![std::ptr::null_mut::<libc::c_void>(); n];
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
    }
    g.finish();
}

fn reset(c: &mut Criterion) {
    let mut g = c.benchmark_group("reset");
    short_budget(&mut g);
    // `large`: 0 = 10,000 u64s only; 50 = also 50 allocations of 5,000 bytes,
    // which a region pool serves from pages of their own (nginx's large
    // allocations) and must give back one by one at reset.
    for large in [0usize, 50] {
        g.bench_function(format!("kmem_arena/large_{large}"), |b| {
            b.iter_batched_ref(
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
                |arena| arena.reset(),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("bumpalo/large_{large}"), |b| {
            b.iter_batched_ref(
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
                |bump| bump.reset(),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("malloc_free_all/large_{large}"), |b| {
            b.iter_batched_ref(
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
                    for p in ptrs.iter() {
                        // SAFETY: each came from malloc in the setup.
                        unsafe { libc::free(*p) };
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.bench_function("typed_arena_drop/large_0", |b| {
        b.iter_batched_ref(
            || {
                let arena = typed_arena::Arena::new();
                for i in 0..N {
                    arena.alloc(i as u64);
                }
                Some(arena)
            },
            // typed-arena has no reset: it is dropped (in place).
            |arena| drop(arena.take()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Fills an arena as the `reset` group does.
fn fill_kmem(arena: &Arena<'_>, large: usize) {
    for i in 0..N {
        black_box(arena.alloc(i as u64));
    }
    for _ in 0..large {
        black_box(arena.alloc_slice_fill_copy(5000, 1u8));
    }
}

/// Fills a bumpalo arena as the `reset` group does.
fn fill_bump(bump: &bumpalo::Bump, large: usize) {
    for i in 0..N {
        black_box(bump.alloc(i as u64));
    }
    for _ in 0..large {
        black_box(bump.alloc_slice_fill_copy(5000, 1u8));
    }
}

fn reset_warm(c: &mut Criterion) {
    let mut g = c.benchmark_group("reset_warm");
    short_budget(&mut g);
    for large in [0usize, 50] {
        g.bench_function(format!("kmem_arena/large_{large}"), |b| {
            b.iter_batched_ref(
                || {
                    let mut arena = Arena::new();
                    fill_kmem(&arena, large);
                    arena.reset();
                    fill_kmem(&arena, large);
                    arena
                },
                |arena| arena.reset(),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("bumpalo/large_{large}"), |b| {
            b.iter_batched_ref(
                || {
                    let mut bump = bumpalo::Bump::new();
                    fill_bump(&bump, large);
                    bump.reset();
                    fill_bump(&bump, large);
                    bump
                },
                |bump| bump.reset(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    alloc_u64,
    alloc_mixed,
    reset_cycle,
    reset,
    reset_warm
);
criterion_main!(benches);
