//! The `mp_pool_stats` view of a page allocator: exact counts and bytes for
//! known sequences, across threads, with failures and huge mappings.

use kmem_page::{Gfp, PCP_SETS, PageKind};
use kmem_platform::stats::PoolStats;

mod common;
use common::fresh;

const PAGE: usize = 4096;

#[test]
fn a_known_sequence_gives_exact_stats() {
    let pages = fresh();
    // All on cpu 0's per-cpu lists, so that the sequence is the same wherever the thread runs.
    let alloc = |o| {
        let p = pages.alloc_kind_on(0, o, Gfp::KERNEL, PageKind::Pages);
        (p.unwrap(), o)
    };
    // SAFETY: every call passes a live block of `pages` of its order, not used again.
    let free = |(p, o)| unsafe { pages.free_kind_on(0, p, o, PageKind::Pages).unwrap() };
    let blocks: Vec<_> = (0..=4).map(alloc).collect();
    // 1 + 2 + 4 + 8 + 16 pages. Orders 0..=3 each refilled cpu 0's list with
    // 16 pages' worth (pcp->batch), so 80 pages left the buddy lists: the peak.
    let s = pages.pool_stats();
    assert_eq!(pages.stats().cached_pages, 80 - 31);
    assert_eq!(
        s,
        PoolStats {
            total_allocated: 31 * PAGE,
            current_allocated: 31 * PAGE,
            peak_allocated: 80 * PAGE,
            allocation_count: 5,
            free_count: 0,
            failed_count: 0,
        }
    );
    blocks.into_iter().for_each(free);
    let b = alloc(1);
    let s = pages.pool_stats();
    assert_eq!(
        (s.total_allocated, s.current_allocated, s.peak_allocated),
        (33 * PAGE, 2 * PAGE, 80 * PAGE)
    );
    assert_eq!((s.allocation_count, s.free_count), (6, 5));
    free(b);
    assert_eq!(pages.pool_stats().current_allocated, 0);
    // Drained, the peak is what was handed out at most plus what the lists held.
    pages.drain();
    assert_eq!(pages.pool_stats().peak_allocated, 80 * PAGE);
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
    // At least one order-2 block (4 pages) was out; at most one block per
    // thread (8 pages) plus what the per-cpu lists of the cpus in use can hold
    // (64 pages per order, 3 orders used).
    let sets = kmem_platform::cpu::nr_cpus().min(PCP_SETS);
    assert!(s.peak_allocated >= 4 * PAGE, "{}", s.peak_allocated);
    assert!(
        s.peak_allocated <= (8 + sets * 3 * 64) * PAGE,
        "{}",
        s.peak_allocated
    );
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
