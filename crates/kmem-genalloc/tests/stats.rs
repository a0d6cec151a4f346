//! The `mp_pool_stats` view of a genalloc pool: exact counts and bytes for a
//! known sequence, failures, partial frees, sums over threads, and
//! `current_allocated == size() - avail()`.

use kmem_genalloc::{Algo, GenPool};
use kmem_platform::stats::PoolStats;

#[test]
fn a_known_sequence_gives_exact_stats() {
    let pool = GenPool::new(12).unwrap();
    pool.add(0x100_0000, 0x10_0000).unwrap(); // 256 granules of 4 KiB
    let a = pool.alloc(1).unwrap(); // one granule
    let b = pool.alloc(0x2001).unwrap(); // three
    let c = pool
        .alloc_algo(0x4000, Algo::Fixed { offset: 0x8_0000 })
        .unwrap();
    assert!(pool.alloc(0).is_err());
    assert!(pool.alloc(0x20_0000).is_err());
    assert!(
        pool.alloc_algo(0x1000, Algo::Fixed { offset: 0x8_0000 })
            .is_err()
    );
    assert!(
        pool.free(a.addr + 1, 1).is_err(),
        "a refused free counts nothing"
    );
    pool.free_alloc(a).unwrap();
    // Free the middle granule of b: a partial free, as the kernel allows.
    pool.free(b.addr + 0x1000, 0x1000).unwrap();
    assert_eq!(
        pool.pool_stats(),
        PoolStats {
            total_allocated: 0x1000 + 0x3000 + 0x4000,
            current_allocated: 0x2000 + 0x4000,
            peak_allocated: 0x8000,
            allocation_count: 3,
            free_count: 2,
            failed_count: 3,
        }
    );
    assert_eq!(
        pool.pool_stats().current_allocated,
        pool.size() - pool.avail()
    );
    pool.free(b.addr, 0x1000).unwrap();
    pool.free(b.addr + 0x2000, 0x1000).unwrap();
    pool.free_alloc(c).unwrap();
    let s = pool.pool_stats();
    assert_eq!(
        (s.current_allocated, s.free_count, s.peak_allocated),
        (0, 5, 0x8000)
    );
}

#[test]
fn counts_add_up_across_threads() {
    let per = if cfg!(miri) { 20 } else { 2000 };
    let pool = GenPool::new(6).unwrap();
    pool.add(0x1000_0000, 1 << 20).unwrap();
    std::thread::scope(|sc| {
        for t in 1..=4usize {
            let pool = &pool;
            sc.spawn(move || {
                for _ in 0..per {
                    let a = pool.alloc(t * 64).unwrap();
                    pool.free_alloc(a).unwrap();
                }
            });
        }
    });
    let s = pool.pool_stats();
    assert_eq!(
        (s.allocation_count, s.free_count, s.failed_count),
        (4 * per, 4 * per, 0)
    );
    assert_eq!(s.total_allocated, (1 + 2 + 3 + 4) * 64 * per);
    assert_eq!(s.current_allocated, 0);
    assert!(s.peak_allocated >= 4 * 64 && s.peak_allocated <= 10 * 64);
    assert_eq!(pool.avail(), pool.size());
}
