//! kmalloc's `mp_pool_stats` view: exact deltas for a known sequence (one
//! test function, so no other test allocates in this process meanwhile),
//! sums over threads that exited, failures.
// Every unsafe block frees what the test itself allocated just before.
#![allow(clippy::undocumented_unsafe_blocks)]

use kmem_kmalloc::{PoolStats, kfree, kmalloc, pool_stats};
use kmem_page::Gfp;

fn delta(a: &PoolStats, b: &PoolStats) -> [isize; 6] {
    let d = |x: usize, y: usize| y as isize - x as isize;
    [
        d(a.total_allocated, b.total_allocated),
        d(a.current_allocated, b.current_allocated),
        d(a.peak_allocated, b.peak_allocated),
        d(a.allocation_count, b.allocation_count),
        d(a.free_count, b.free_count),
        d(a.failed_count, b.failed_count),
    ]
}

#[test]
fn kmalloc_pool_stats() {
    // Deltas from whatever the process had before (the peaks are upper
    // bounds, so only their relation to `current` is checked).
    let s0 = pool_stats();
    let a: Vec<_> = (0..3).map(|_| kmalloc(100, Gfp::KERNEL).unwrap()).collect();
    let big = kmalloc(20_000, Gfp::KERNEL).unwrap();
    let s1 = pool_stats();
    let d = delta(&s0, &s1);
    assert_eq!(
        d[0],
        3 * 128 + 32768,
        "total: classes count their bucket, large blocks their pages"
    );
    assert_eq!(d[1], 3 * 128 + 32768, "current");
    assert_eq!((d[3], d[4], d[5]), (4, 0, 0));
    assert!(s1.peak_allocated >= s1.current_allocated);
    unsafe {
        kfree(big.as_ptr()).unwrap();
        kfree(a[0].as_ptr()).unwrap();
    }
    let s2 = pool_stats();
    let d = delta(&s1, &s2);
    assert_eq!((d[0], d[1], d[3], d[4]), (0, -(128 + 32768), 0, 2));
    assert!(s2.peak_allocated >= s1.current_allocated - s0.current_allocated);

    // Threads that allocate, free and exit: their counts stay.
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..100 {
                    let p = kmalloc(40, Gfp::KERNEL).unwrap();
                    unsafe { kfree(p.as_ptr()).unwrap() };
                }
            });
        }
    });
    let s3 = pool_stats();
    let d = delta(&s2, &s3);
    assert_eq!((d[0], d[1], d[3], d[4]), (400 * 64, 0, 400, 400));

    // A failure.
    assert!(kmalloc(1 << 62, Gfp::KERNEL | Gfp::NOWARN).is_err());
    let s4 = pool_stats();
    assert_eq!(delta(&s3, &s4)[5], 1);
    assert_eq!(delta(&s3, &s4)[3], 0);
    unsafe {
        kfree(a[1].as_ptr()).unwrap();
        kfree(a[2].as_ptr()).unwrap();
    }
    assert_eq!(pool_stats().current_allocated, s0.current_allocated);
}
