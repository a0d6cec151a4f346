//! Loom models of the wait/wake protocol: free, alloc and wait interleaved in
//! every way loom can find (within a preemption bound), with the retry timer
//! switched off — a lost wake-up shows up as a deadlock, which loom reports.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p kmem-mempool --release --test loom`
#![cfg(loom)]

use std::ptr::NonNull;

use kmem_mempool::{Backend, Gfp, Mempool, Opaque};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A backend with a budget of elements (then it fails) that can be healed.
/// Elements are fake addresses; the pool never dereferences them.
struct Budget {
    left: AtomicUsize,
    next: AtomicUsize,
    healed: AtomicBool,
}

impl Budget {
    fn new(n: usize) -> Self {
        Budget {
            left: AtomicUsize::new(n),
            next: AtomicUsize::new(1),
            healed: AtomicBool::new(false),
        }
    }
}

// SAFETY: `Opaque` is zero-sized; the fake addresses are never dereferenced.
unsafe impl Backend for Budget {
    type Elem = Opaque;
    fn alloc(&self, _gfp: Gfp) -> Option<NonNull<Opaque>> {
        let ok = self.healed.load(Ordering::SeqCst)
            || self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        ok.then(|| {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            NonNull::new(std::ptr::without_provenance_mut::<Opaque>(i * 64)).unwrap()
        })
    }
    unsafe fn free(&self, _e: NonNull<Opaque>) {}
}

type Pool = Mempool<Budget>;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = runs.clone();
    b.check(move || {
        r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    eprintln!(
        "loom explored {} interleavings",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn alloc(pool: &Pool) -> usize {
    pool.alloc_raw(Gfp::KERNEL)
        .expect("GFP_KERNEL never fails")
        .as_ptr() as usize
}

fn free(pool: &Pool, addr: usize) {
    let p = NonNull::new(std::ptr::without_provenance_mut::<Opaque>(addr)).unwrap();
    // SAFETY: `addr` is an element this pool handed out, freed once.
    unsafe { pool.free_raw(p).unwrap() };
}

/// The reserve's only element is out; a waiter must get it when it is freed.
#[test]
fn a_free_wakes_the_waiter_with_its_element() {
    model(|| {
        let pool = Arc::new(Mempool::new(1, Budget::new(1)).unwrap());
        let e = alloc(&pool);
        let p2 = pool.clone();
        let t = loom::thread::spawn(move || alloc(&p2));
        free(&pool, e);
        assert_eq!(t.join().unwrap(), e);
        free(&pool, e);
    });
}

/// Two waiters, two frees from two threads: both waiters are served.
#[test]
fn two_waiters_two_frees() {
    model(|| {
        let pool = Arc::new(Mempool::new(2, Budget::new(2)).unwrap());
        let a = alloc(&pool);
        let b = alloc(&pool);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let p = pool.clone();
                loom::thread::spawn(move || alloc(&p))
            })
            .collect();
        free(&pool, a);
        free(&pool, b);
        let mut got: Vec<usize> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        got.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(got, want);
        for e in got {
            free(&pool, e);
        }
    });
}

/// The freer and the waiter are both other threads, racing each other.
#[test]
fn free_from_another_thread_races_the_wait() {
    model(|| {
        let pool = Arc::new(Mempool::new(1, Budget::new(1)).unwrap());
        let e = alloc(&pool);
        let p1 = pool.clone();
        let freer = loom::thread::spawn(move || free(&p1, e));
        let p2 = pool.clone();
        let waiter = loom::thread::spawn(move || alloc(&p2));
        freer.join().unwrap();
        assert_eq!(waiter.join().unwrap(), e);
        assert_eq!(pool.curr_nr(), 0);
        free(&pool, e);
    });
}

/// `min_nr == 0`: the one-slot reserve still hands a free to a waiter.
#[test]
fn zero_minimum_pool_wakes_the_waiter() {
    model(|| {
        let pool = Arc::new(Mempool::new(0, Budget::new(1)).unwrap());
        let e = alloc(&pool); // the backend's only element
        let p2 = pool.clone();
        let t = loom::thread::spawn(move || alloc(&p2));
        free(&pool, e);
        assert_eq!(t.join().unwrap(), e);
        free(&pool, e);
    });
}

/// A resize that adds elements wakes a waiter (no free ever happens).
#[test]
fn a_growing_resize_wakes_the_waiter() {
    model(|| {
        let pool = Arc::new(Mempool::new(1, Budget::new(1)).unwrap());
        let e = alloc(&pool);
        let p2 = pool.clone();
        let t = loom::thread::spawn(move || alloc(&p2));
        pool.backend().healed.store(true, Ordering::SeqCst);
        pool.resize(2).unwrap();
        let got = t.join().unwrap();
        assert_ne!(got, e);
        free(&pool, got);
        free(&pool, e);
    });
}
