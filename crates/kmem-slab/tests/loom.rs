//! A `loom` model of the exchange between per-thread array caches, the
//! shared array and the node's slab lists, and of the freeze protocol that
//! lets a remote thread drain another thread's arrays.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p kmem-slab --release --test loom`
// Every unsafe block here frees or touches an object the test itself allocated
// from the cache it frees it to; the safety argument is the same throughout.
#![allow(clippy::undocumented_unsafe_blocks)]
#![cfg(loom)]

use kmem_slab::loom_model::{FreezeModel, Model};
use loom::sync::Arc;

/// Two threads allocate and free through tiny arrays (limit 2, batch 1), so
/// every few operations refill from or flush to the shared array and slabs
/// under the node lock. Afterwards no object is lost or duplicated: the
/// counters add up and every slab is consistent.
#[test]
fn exchange_conserves_objects() {
    // Exhaustive: no preemption bound (a few seconds in release).
    loom::model(|| {
        let m = Arc::new(Model::new(64));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                loom::thread::spawn(move || {
                    let mut l = m.local(2, 1);
                    let a = l.alloc();
                    let b = l.alloc();
                    let c = l.alloc();
                    assert!(a != b && b != c && a != c);
                    l.free(a);
                    l.free(b);
                    let d = l.alloc();
                    l.free(c);
                    l.free(d);
                    drop(l);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        m.check().unwrap();
        assert_eq!(
            m.active(),
            m.shared_avail(),
            "every object is back in a slab or the shared array"
        );
        m.shrink();
        m.check().unwrap();
        assert_eq!(m.active(), 0);
    });
}

/// Objects allocated by one thread and freed by another go into the freeing
/// thread's array and come back out of it.
#[test]
fn cross_thread_free() {
    // Exhaustive: no preemption bound (a few seconds in release).
    loom::model(|| {
        let m = Arc::new(Model::new(32));
        let (tx, rx) = loom::sync::mpsc::channel();
        let m1 = m.clone();
        let p = loom::thread::spawn(move || {
            let mut l = m1.local(2, 1);
            for _ in 0..3 {
                tx.send(l.alloc() as usize).unwrap();
            }
        });
        let m2 = m.clone();
        let q = loom::thread::spawn(move || {
            let mut l = m2.local(2, 1);
            for _ in 0..3 {
                let o = rx.recv().unwrap();
                l.free(o as *mut u8);
            }
        });
        p.join().unwrap();
        q.join().unwrap();
        m.check().unwrap();
        assert_eq!(m.active(), m.shared_avail());
        m.shrink();
        assert_eq!(m.active(), 0);
    });
}

/// The owner's lock-free fast path and a remote drain never touch the
/// owner's arrays at the same time, and no operation is lost.
#[test]
fn freeze_protocol_excludes() {
    loom::model(|| {
        let f = Arc::new(FreezeModel::default());
        let f1 = f.clone();
        let owner = loom::thread::spawn(move || {
            f1.owner_op();
            f1.owner_op();
        });
        f.remote_op();
        owner.join().unwrap();
        assert_eq!(f.value(), 102);
        assert!(
            f.hits() <= 2,
            "only fast-path operations are counted as hits"
        );
    });
}
