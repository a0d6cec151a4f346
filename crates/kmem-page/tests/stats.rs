//! The `mp_pool_stats` view of a page allocator: exact counts and bytes for
//! known sequences, across threads, with failures and huge mappings.

use kmem_page::{Config, Gfp, PageAllocator};
use kmem_platform::TestPlatform;
use kmem_platform::stats::PoolStats;

const PAGE: usize = 4096;

fn fresh() -> PageAllocator<TestPlatform> {
    PageAllocator::with_config(
        TestPlatform::new(),
        Config {
            keep_free_pages: 0,
            max_pages: usize::MAX,
        },
    )
}

#[test]
fn a_known_sequence_gives_exact_stats() {
    let pages = fresh();
    let blocks: Vec<_> = (0..=4)
        .map(|o| pages.alloc(o, Gfp::KERNEL).unwrap())
        .collect();
    // 1 + 2 + 4 + 8 + 16 pages.
    let s = pages.pool_stats();
    assert_eq!(
        s,
        PoolStats {
            total_allocated: 31 * PAGE,
            current_allocated: 31 * PAGE,
            peak_allocated: 31 * PAGE,
            allocation_count: 5,
            free_count: 0,
            failed_count: 0,
        }
    );
    drop(blocks);
    let b = pages.alloc(1, Gfp::KERNEL).unwrap();
    let s = pages.pool_stats();
    assert_eq!(
        (s.total_allocated, s.current_allocated, s.peak_allocated),
        (33 * PAGE, 2 * PAGE, 31 * PAGE)
    );
    assert_eq!((s.allocation_count, s.free_count), (6, 5));
    drop(b);
    assert_eq!(pages.pool_stats().current_allocated, 0);
}

#[test]
fn failures_are_counted() {
    let pages = fresh();
    let a = pages.alloc(0, Gfp::KERNEL).unwrap();
    pages.set_max_pages(1024); // no second region
    let (r, _) = kmem_platform::diag::capture(|| pages.alloc(10, Gfp::KERNEL | Gfp::NOWARN));
    assert!(r.is_err());
    let s = pages.pool_stats();
    assert_eq!((s.allocation_count, s.failed_count), (1, 1));
    assert_eq!(s.current_allocated, PAGE);
    drop(a);
}

#[test]
fn counts_add_up_across_threads() {
    let pages = fresh();
    let per = if cfg!(miri) { 20 } else { 500 };
    std::thread::scope(|sc| {
        for t in 0..4u32 {
            let pages = &pages;
            sc.spawn(move || {
                for _ in 0..per {
                    drop(pages.alloc(t % 3, Gfp::KERNEL).unwrap());
                }
            });
        }
    });
    let s = pages.pool_stats();
    assert_eq!((s.allocation_count, s.free_count), (4 * per, 4 * per));
    // Orders 0, 1, 2, 0: 1 + 2 + 4 + 1 pages per round.
    assert_eq!(s.total_allocated, 8 * per * PAGE);
    assert_eq!(s.current_allocated, 0);
    assert!(s.peak_allocated >= 4 * PAGE && s.peak_allocated <= 8 * PAGE);
}

#[test]
#[cfg_attr(miri, ignore = "maps 5 MiB")]
fn huge_mappings_count() {
    let pages = fresh();
    let p = pages.alloc_huge(5 << 20, Gfp::KERNEL).unwrap();
    let s = pages.pool_stats();
    assert_eq!(
        (s.allocation_count, s.current_allocated, s.total_allocated),
        (1, 5 << 20, 5 << 20)
    );
    // SAFETY: the mapping just made, not used again.
    unsafe { pages.free_huge(p).unwrap() };
    let s = pages.pool_stats();
    assert_eq!(
        (s.free_count, s.current_allocated, s.peak_allocated),
        (1, 0, 5 << 20)
    );
}
