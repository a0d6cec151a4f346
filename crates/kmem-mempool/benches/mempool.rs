//! mempool benchmarks: alloc+free latency with a healthy backend and with the
//! backend failing (served from the reserve), against the page layer alone
//! and a hand-rolled `Mutex<Vec>` reserve; and the hand-off latency from a
//! free to a thread waiting in `alloc`, against a `std::sync::mpsc` ping-pong.
//!
//! `cargo bench -p kmem-mempool --bench mempool -- --warm-up-time 1 --measurement-time 2`
#![allow(missing_docs)]

use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kmem_mempool::{Backend, BoxBackend, FaultyBackend, Gfp, Mempool, Page, PageBackend};
use kmem_page::{Config, PageAllocator};
use kmem_platform::Os;

const MIN_NR: usize = 16;

/// The obvious hand-written emergency reserve: a locked stack of spare
/// elements in front of the backend. Takes from the backend first (as a
/// mempool does), falls back to the stack, refills it on free.
struct NaiveReserve<B: Backend<Elem = Page>> {
    backend: B,
    spare: Mutex<Vec<NonNull<Page>>>,
}

// SAFETY: the spare pointers are owned page blocks, only touched under the lock.
unsafe impl<B: Backend<Elem = Page>> Sync for NaiveReserve<B> {}

impl<B: Backend<Elem = Page>> NaiveReserve<B> {
    fn alloc(&self) -> Option<NonNull<Page>> {
        if let Some(p) = self.backend.alloc(Gfp::NOWAIT) {
            return Some(p);
        }
        self.spare.lock().unwrap().pop()
    }
    fn free(&self, p: NonNull<Page>) {
        let mut s = self.spare.lock().unwrap();
        if s.len() < MIN_NR {
            s.push(p);
        } else {
            drop(s);
            // SAFETY: `p` came from this backend.
            unsafe { self.backend.free(p) };
        }
    }
}

fn alloc_free(c: &mut Criterion) {
    let pages: &'static PageAllocator<Os> = Box::leak(Box::new(PageAllocator::with_config(
        Os::new(),
        Config::DEFAULT,
    )));

    let mut g = c.benchmark_group("alloc+free, healthy backend (order-0 pages)");
    g.bench_function("page layer alone", |b| {
        b.iter(|| {
            let p = pages.alloc_raw(0, Gfp::NOWAIT).unwrap();
            // SAFETY: just allocated, order 0.
            unsafe { pages.free_raw(black_box(p), 0).unwrap() };
        })
    });
    let pool = Mempool::new(MIN_NR, PageBackend::new(pages, 0).unwrap()).unwrap();
    g.bench_function("mempool", |b| {
        b.iter(|| drop(black_box(pool.try_alloc().unwrap())))
    });
    let naive = NaiveReserve {
        backend: PageBackend::new(pages, 0).unwrap(),
        spare: Mutex::new(Vec::new()),
    };
    g.bench_function("Mutex<Vec> reserve", |b| {
        b.iter(|| naive.free(black_box(naive.alloc().unwrap())))
    });
    g.finish();

    let mut g = c.benchmark_group("alloc+free, backend failing (from the reserve)");
    let failing = Mempool::new(
        MIN_NR,
        FaultyBackend::new(PageBackend::new(pages, 0).unwrap()),
    )
    .unwrap();
    failing.backend().set_failing(true);
    g.bench_function("mempool", |b| {
        b.iter(|| drop(black_box(failing.try_alloc().unwrap())))
    });
    let naive = NaiveReserve {
        backend: FaultyBackend::new(PageBackend::new(pages, 0).unwrap()),
        spare: Mutex::new(Vec::new()),
    };
    for _ in 0..MIN_NR {
        naive
            .spare
            .lock()
            .unwrap()
            .push(naive.backend.alloc(Gfp::KERNEL).unwrap());
    }
    naive.backend.set_failing(true);
    g.bench_function("Mutex<Vec> reserve", |b| {
        b.iter(|| naive.free(black_box(naive.alloc().unwrap())))
    });
    g.finish();
}

/// Ping-pong between two threads through two pools whose backends fail and
/// whose reserves (1 element) are empty: each free wakes the other thread
/// waiting in `alloc`. One round = two hand-offs.
fn handoff(c: &mut Criterion) {
    let mut g = c.benchmark_group("hand-off: free -> waiting thread (per hand-off)");
    g.sample_size(20);
    type P = Mempool<FaultyBackend<BoxBackend<u64, fn() -> u64>>>;
    let mk = || -> P {
        let p = Mempool::new(
            1,
            FaultyBackend::new(BoxBackend::new((|| 0u64) as fn() -> u64)),
        )
        .unwrap();
        p.backend().set_failing(true);
        p
    };
    let (p1, p2) = (mk(), mk());
    g.bench_function("mempool free -> alloc wake-up", |b| {
        b.iter_custom(|iters| {
            let rounds = iters.div_ceil(2);
            let mut a_held = p1.alloc().into_raw();
            let b_ptr = p2.alloc().into_raw().as_ptr() as usize; // raw pointers are not Send
            let (p1, p2) = (&p1, &p2);
            let start = Instant::now();
            std::thread::scope(|s| {
                s.spawn(move || {
                    let mut held = NonNull::new(b_ptr as *mut u64).unwrap();
                    for r in 0..rounds {
                        let (wait_on, give_to) = if r % 2 == 0 { (p1, p2) } else { (p2, p1) };
                        let new = wait_on.alloc().into_raw();
                        // SAFETY: `held` is a live element of `give_to`.
                        unsafe { give_to.free_raw(held).unwrap() };
                        held = new;
                    }
                    let last = if rounds % 2 == 0 { p2 } else { p1 };
                    // SAFETY: as above; the last one goes back to its pool.
                    unsafe { last.free_raw(held).unwrap() };
                });
                for r in 0..rounds {
                    let (give_to, wait_on) = if r % 2 == 0 { (p1, p2) } else { (p2, p1) };
                    // SAFETY: `a_held` is a live element of `give_to`.
                    unsafe { give_to.free_raw(a_held).unwrap() };
                    a_held = wait_on.alloc().into_raw();
                }
            });
            let t = start.elapsed();
            let last = if rounds % 2 == 0 { &p1 } else { &p2 };
            // SAFETY: a live element of `last`.
            unsafe { last.free_raw(a_held).unwrap() };
            t.mul_f64(iters as f64 / (2 * rounds) as f64)
        })
    });
    // How many hand-offs found the other thread already asleep on the futex.
    for (name, p) in [("p1", &p1), ("p2", &p2)] {
        let st = p.stats();
        eprintln!(
            "hand-off pool {name}: reserve_allocs {} waits {} wakeups {}",
            st.reserve_allocs, st.waits, st.wakeups
        );
    }
    g.bench_function("std mpsc ping-pong", |b| {
        b.iter_custom(|iters| {
            let rounds = iters.div_ceil(2);
            let (to_b, from_a) = std::sync::mpsc::channel::<u64>();
            let (to_a, from_b) = std::sync::mpsc::channel::<u64>();
            let start = Instant::now();
            std::thread::scope(|s| {
                s.spawn(move || {
                    for _ in 0..rounds {
                        let v = from_a.recv().unwrap();
                        to_a.send(v + 1).unwrap();
                    }
                });
                let mut v = 0;
                for _ in 0..rounds {
                    to_b.send(v).unwrap();
                    v = from_b.recv().unwrap();
                }
                black_box(v);
            });
            start.elapsed().mul_f64(iters as f64 / (2 * rounds) as f64)
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = alloc_free, handoff }
criterion_main!(benches);
