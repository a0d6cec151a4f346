//! Slab benchmarks, against glibc malloc, mimalloc and a mutex-protected
//! `Vec` free list, in one run:
//!
//! * `hot_pair/<size>`: one alloc + free that hits the thread's array cache,
//!   every contender behind the same trait object (an indirect call each);
//! * `hot_pair_static/<size>`: the same with static dispatch, as Rust code
//!   calls them (kmem's fast path inlines; malloc/mimalloc are calls);
//! * `batch_1000/<size>`: 1000 allocations, then 1000 frees;
//! * `producer_consumer/64`: one thread allocates, another frees (batches of 64
//!   pointers through a bounded channel); time per object.
//!
//! `cargo bench -p kmem-slab --bench slab -- --warm-up-time 1 --measurement-time 2`
// Every unsafe block here frees or touches an object the test itself allocated
// from the cache it frees it to; the safety argument is the same throughout.
#![allow(clippy::undocumented_unsafe_blocks)]
// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kmem_page::Gfp;
use kmem_slab::KmemCache;
use mimalloc::MiMalloc;

/// The allocators under test, behind one small interface.
trait Alloc: Sync {
    fn alloc(&self) -> *mut u8;
    /// # Safety
    /// `p` came from `alloc` on `self`.
    unsafe fn free(&self, p: *mut u8);
}

struct Slab(KmemCache);
// `inline(always)`: with `#[inline]` alone the compiler kept `free` a call in
// `hot_pair_static`, so that group did not measure what it says (kmem's
// fast path inlined where Rust code calls `KmemCache::free` directly).
impl Alloc for Slab {
    #[inline(always)]
    fn alloc(&self) -> *mut u8 {
        self.0.alloc(Gfp::KERNEL).unwrap().as_ptr()
    }
    #[inline(always)]
    unsafe fn free(&self, p: *mut u8) {
        unsafe { self.0.free(NonNull::new_unchecked(p)).unwrap() }
    }
}

struct Glibc(usize);
impl Alloc for Glibc {
    #[inline]
    fn alloc(&self) -> *mut u8 {
        unsafe { libc::malloc(self.0).cast() }
    }
    #[inline]
    unsafe fn free(&self, p: *mut u8) {
        unsafe { libc::free(p.cast()) }
    }
}

struct Mi(Layout);
impl Alloc for Mi {
    #[inline]
    fn alloc(&self) -> *mut u8 {
        unsafe { MiMalloc.alloc(self.0) }
    }
    #[inline]
    unsafe fn free(&self, p: *mut u8) {
        unsafe { MiMalloc.dealloc(p, self.0) }
    }
}

/// The naive pool: a free list in a `Vec` behind a mutex, over a leaked arena
/// that grows by chunks.
struct MutexVec {
    size: usize,
    free: Mutex<Vec<usize>>,
}
impl MutexVec {
    fn new(size: usize) -> Self {
        MutexVec {
            size,
            free: Mutex::new(Vec::with_capacity(1 << 16)),
        }
    }
}
impl Alloc for MutexVec {
    #[inline]
    fn alloc(&self) -> *mut u8 {
        let mut f = self.free.lock().unwrap();
        if let Some(p) = f.pop() {
            return p as *mut u8;
        }
        let chunk: &'static mut [u8] = Box::leak(vec![0u8; self.size * 256].into_boxed_slice());
        let base = chunk.as_mut_ptr() as usize;
        f.extend((1..256).map(|i| base + i * self.size));
        base as *mut u8
    }
    #[inline]
    unsafe fn free(&self, p: *mut u8) {
        self.free.lock().unwrap().push(p as usize);
    }
}

fn contenders(size: usize) -> Vec<(&'static str, Box<dyn Alloc>)> {
    vec![
        (
            "kmem_slab",
            Box::new(Slab(KmemCache::new("bench", size, 0).unwrap())),
        ),
        ("glibc_malloc", Box::new(Glibc(size))),
        (
            "mimalloc",
            Box::new(Mi(Layout::from_size_align(size, 8).unwrap())),
        ),
        ("mutex_vec", Box::new(MutexVec::new(size))),
    ]
}

/// One alloc + free through `a` with static dispatch: how Rust code calls
/// each allocator (kmem's fast path inlined into the caller; glibc's and
/// mimalloc's `malloc`/`free` are calls into their libraries either way).
#[inline(always)]
fn pair<A: Alloc>(a: &A) {
    let p = black_box(a.alloc());
    unsafe { a.free(p) };
}

fn hot_pair_static(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot_pair_static");
    for size in [64usize, 256] {
        let slab = Slab(KmemCache::new("bench-static", size, 0).unwrap());
        pair(&slab);
        g.bench_with_input(BenchmarkId::new("kmem_slab", size), &slab, |b, a| {
            b.iter(|| pair(a))
        });
        let glibc = Glibc(size);
        g.bench_with_input(BenchmarkId::new("glibc_malloc", size), &glibc, |b, a| {
            b.iter(|| pair(a))
        });
        let mi = Mi(Layout::from_size_align(size, 8).unwrap());
        pair(&mi);
        g.bench_with_input(BenchmarkId::new("mimalloc", size), &mi, |b, a| {
            b.iter(|| pair(a))
        });
    }
    g.finish();
}

fn hot_pair(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot_pair");
    for size in [64usize, 256] {
        for (name, a) in contenders(size) {
            // Warm the thread's cache.
            let p = a.alloc();
            unsafe { a.free(p) };
            g.bench_with_input(BenchmarkId::new(name, size), &a, |b, a| {
                b.iter(|| {
                    let p = black_box(a.alloc());
                    unsafe { a.free(p) };
                })
            });
        }
    }
    g.finish();
}

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_1000");
    for size in [64usize, 256] {
        for (name, a) in contenders(size) {
            let mut v = vec![std::ptr::null_mut::<u8>(); 1000];
            g.bench_with_input(BenchmarkId::new(name, size), &a, |b, a| {
                b.iter(|| {
                    for s in v.iter_mut() {
                        *s = a.alloc();
                    }
                    for &p in v.iter().rev() {
                        unsafe { a.free(black_box(p)) };
                    }
                })
            });
        }
    }
    g.finish();
}

fn producer_consumer(c: &mut Criterion) {
    let mut g = c.benchmark_group("producer_consumer");
    for (name, a) in contenders(64) {
        g.bench_with_input(BenchmarkId::new(name, 64), &a, |b, a| {
            b.iter_custom(|iters| {
                let a: &dyn Alloc = &**a;
                let batches = iters.div_ceil(64);
                let (tx, rx) = std::sync::mpsc::sync_channel::<[usize; 64]>(16);
                let t0 = Instant::now();
                std::thread::scope(|s| {
                    s.spawn(move || {
                        for batch in rx {
                            for p in batch {
                                unsafe { a.free(p as *mut u8) };
                            }
                        }
                    });
                    for _ in 0..batches {
                        let mut batch = [0usize; 64];
                        for slot in batch.iter_mut() {
                            *slot = a.alloc() as usize;
                        }
                        tx.send(batch).unwrap();
                    }
                    drop(tx);
                });
                let d = t0.elapsed();
                // Scale to exactly `iters` objects.
                Duration::from_nanos((d.as_nanos() as u64).saturating_mul(iters) / (batches * 64))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, hot_pair, hot_pair_static, batch, producer_consumer);
criterion_main!(benches);
