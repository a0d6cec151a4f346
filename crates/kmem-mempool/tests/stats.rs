//! The `mp_pool_stats` view of a mempool: exact counts, bytes and peak for
//! known sequences (backend and reserve), failures, sums over threads.

use kmem_mempool::{BoxBackend, FaultyBackend, Gfp, KmallocBackend, Mempool};
use kmem_platform::stats::PoolStats;

#[test]
fn a_known_sequence_gives_exact_stats() {
    let pool = Mempool::new(2, FaultyBackend::new(BoxBackend::new(|| [0u8; 24]))).unwrap();
    assert_eq!(
        pool.pool_stats(),
        PoolStats::default(),
        "the prefill is not an allocation"
    );
    let a = pool.alloc();
    let b = pool.alloc();
    // The backend fails: the next two come from the reserve.
    pool.backend().set_failing(true);
    let c = pool.alloc();
    let d = pool.alloc();
    drop(a);
    let s = pool.pool_stats();
    assert_eq!(
        s,
        PoolStats {
            total_allocated: 4 * 24,
            current_allocated: 3 * 24,
            peak_allocated: 4 * 24,
            allocation_count: 4,
            free_count: 1,
            failed_count: 0,
        }
    );
    // One back in the reserve (it was short): a fifth allocation takes it;
    // a sixth finds nothing and cannot wait.
    let e = pool.try_alloc().expect("from the reserve");
    assert!(pool.try_alloc().is_none());
    // __GFP_ZERO is refused: a failed call too.
    assert!(pool.alloc_raw(Gfp::KERNEL | Gfp::ZERO).is_err());
    let s = pool.pool_stats();
    assert_eq!(
        (s.allocation_count, s.failed_count, s.peak_allocated),
        (5, 2, 4 * 24)
    );
    drop((b, c, d, e));
    let s = pool.pool_stats();
    assert_eq!(
        (s.free_count, s.current_allocated, s.total_allocated),
        (5, 0, 5 * 24)
    );
}

#[test]
fn stock_backends_know_their_element_size() {
    let pool = Mempool::new(1, KmallocBackend::new(100).unwrap()).unwrap();
    let a = pool.alloc();
    assert_eq!(pool.pool_stats().current_allocated, 100);
    drop(a);
}

#[test]
fn counts_add_up_across_threads() {
    let per = if cfg!(miri) { 20 } else { 1000 };
    let pool = Mempool::new(4, BoxBackend::new(|| 7u32)).unwrap();
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..per {
                    let x = pool.alloc();
                    assert_eq!(*x, 7);
                }
            });
        }
    });
    let s = pool.pool_stats();
    assert_eq!(
        (s.allocation_count, s.free_count, s.failed_count),
        (4 * per, 4 * per, 0)
    );
    assert_eq!((s.total_allocated, s.current_allocated), (16 * per, 0));
    assert!((4..=16).contains(&s.peak_allocated));
}
