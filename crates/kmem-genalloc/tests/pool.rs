//! Concurrency, bad input, alignment/fixed cases, and pools over unmapped
//! address ranges.

use std::sync::atomic::{AtomicU32, Ordering};

use kmem_genalloc::{Algo, GenPool, GenPoolError, PoolConfig, Search};
use kmem_platform::TestPlatform;

const FAKE: usize = 0x1_0000_0000_0000; // nothing is mapped here

fn pool(src: &TestPlatform, order: u32, search: Search) -> GenPool<&TestPlatform> {
    GenPool::with_config(
        src,
        PoolConfig {
            search,
            ..PoolConfig::new(order).name("test")
        },
    )
    .unwrap()
}

fn state<S: kmem_platform::PageSource>(p: &GenPool<S>) -> (usize, usize, Vec<u64>) {
    let mut bits = Vec::new();
    p.for_each_chunk(|c| bits.extend(c.bitmap().words().iter().map(|w| w.load(Ordering::Relaxed))));
    (p.size(), p.avail(), bits)
}

/// Threads allocate, check that no one else holds what they got, and free.
fn hammer(search: Search, algo: Algo<'static>) {
    let src = TestPlatform::new();
    let order = 12;
    let granules = if cfg!(miri) { 256 } else { 1 << 14 };
    let p = pool(&src, order, search);
    // Two chunks, so allocation also moves between chunks.
    p.add_virt(FAKE, 0x4000_0000, (granules / 2) << order)
        .unwrap();
    p.add_virt(FAKE + (1 << 40), 0x8000_0000, (granules / 2) << order)
        .unwrap();
    let owner: Vec<AtomicU32> = (0..granules).map(|_| AtomicU32::new(0)).collect();
    let index = |addr: usize| {
        if addr >= FAKE + (1 << 40) {
            granules / 2 + ((addr - FAKE - (1 << 40)) >> order)
        } else {
            (addr - FAKE) >> order
        }
    };
    let threads = if cfg!(miri) { 2 } else { 4 };
    let rounds = if cfg!(miri) { 30 } else { 20_000 };
    std::thread::scope(|s| {
        for t in 1..=threads {
            let (p, owner) = (&p, &owner);
            s.spawn(move || {
                let mut held = Vec::new();
                let mut x = t as u64 * 0x9e37_79b9;
                for _ in 0..rounds {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if held.len() < 24 && !x.is_multiple_of(3) {
                        let size = ((x >> 8) % 9 + 1) as usize * 4096 - (x >> 20) as usize % 4096;
                        if let Ok(a) = p.alloc_algo(size, algo) {
                            let first = index(a.addr);
                            for (g, o) in owner[first..first + (a.size >> order)].iter().enumerate()
                            {
                                let prev = o.swap(t, Ordering::SeqCst);
                                assert_eq!(prev, 0, "granule {} handed out twice", first + g);
                            }
                            held.push(a);
                        }
                    } else if !held.is_empty() {
                        let a = held.swap_remove((x >> 30) as usize % held.len());
                        let first = index(a.addr);
                        for o in &owner[first..first + (a.size >> order)] {
                            assert_eq!(o.swap(0, Ordering::SeqCst), t);
                        }
                        p.free_alloc(a).unwrap();
                    }
                }
                for a in held {
                    let first = index(a.addr);
                    for o in &owner[first..first + (a.size >> order)] {
                        o.store(0, Ordering::SeqCst);
                    }
                    p.free_alloc(a).unwrap();
                }
            });
        }
    });
    p.check().unwrap();
    assert_eq!(p.avail(), p.size());
}

#[test]
fn concurrent_first_fit_summary() {
    hammer(Search::Summary, Algo::FirstFit);
}

#[test]
fn concurrent_first_fit_linear() {
    hammer(Search::Linear, Algo::FirstFit);
}

#[test]
fn concurrent_best_fit_and_align() {
    hammer(Search::Summary, Algo::BestFit);
    hammer(Search::Summary, Algo::FirstFitAlign { align: 16 << 10 });
}

#[test]
fn every_bad_input_is_refused_and_changes_nothing() {
    for search in [Search::Summary, Search::Linear] {
        let src = TestPlatform::new();
        let p = pool(&src, 12, search);
        p.add_virt(FAKE, 0x1000_0000, 0x10_0000).unwrap();
        let a = p.alloc(0x3000).unwrap();
        let b = p.alloc(0x1000).unwrap();
        let before = state(&p);
        let cases: [(Result<(), GenPoolError>, GenPoolError); 8] = [
            (
                p.free(FAKE + 0x20_0000, 4096),
                GenPoolError::NotInPool {
                    addr: FAKE + 0x20_0000,
                },
            ),
            (
                p.free(a.addr + 8, 4096),
                GenPoolError::Unaligned {
                    addr: a.addr + 8,
                    granule: 4096,
                },
            ),
            (
                p.free(a.addr, 0x5000),
                GenPoolError::NotAllocated {
                    addr: a.addr,
                    size: 0x5000,
                    first_free: FAKE + 0x4000,
                },
            ),
            (
                p.free(FAKE + 0xff000, 0x2000),
                GenPoolError::PastChunkEnd {
                    addr: FAKE + 0xff000,
                    size: 0x2000,
                    chunk_end: FAKE + 0xfffff,
                },
            ),
            (p.free(a.addr, 0), GenPoolError::ZeroSize),
            (p.alloc(0).map(|_| ()), GenPoolError::ZeroSize),
            (
                p.add(FAKE + 0xff000, 0x2000),
                GenPoolError::Overlap {
                    addr: FAKE + 0xff000,
                    size: 0x2000,
                    other: FAKE,
                    other_size: 0x10_0000,
                },
            ),
            (p.add(FAKE - 0x1000, 0), GenPoolError::ZeroSize),
        ];
        for (got, want) in cases {
            assert_eq!(got, Err(want));
            assert!(!want.to_string().is_empty());
            assert_eq!(state(&p), before, "{want} changed the pool");
        }
        // A double free: the second one is refused.
        p.free_alloc(b).unwrap();
        let before = state(&p);
        assert!(matches!(
            p.free_alloc(b),
            Err(GenPoolError::NotAllocated { .. })
        ));
        assert_eq!(state(&p), before);
        // More bad input.
        assert_eq!(
            p.alloc(0x10_0000),
            Err(GenPoolError::NoSpace { size: 0x10_0000 })
        );
        assert_eq!(
            p.alloc_algo(4096, Algo::FirstFitAlign { align: 0 }),
            Err(GenPoolError::BadAlign { align: 0 })
        );
        assert_eq!(
            p.alloc_algo(4096, Algo::Fixed { offset: 100 }),
            Err(GenPoolError::BadOffset {
                offset: 100,
                granule: 4096
            })
        );
        assert_eq!(
            p.add(usize::MAX - 0xfff, 0x2000),
            Err(GenPoolError::BadChunk {
                addr: usize::MAX - 0xfff,
                size: 0x2000
            })
        );
        assert_eq!(
            p.add(0x1000, 0xfff),
            Err(GenPoolError::BadChunk {
                addr: 0x1000,
                size: 0xfff
            })
        );
        assert_eq!(state(&p), before);
        // Destroy with a live allocation: refused, pool intact and usable.
        let e = p.destroy().unwrap_err();
        assert_eq!(
            e.error,
            GenPoolError::LiveAllocations {
                bytes: 0x3000,
                first: a.addr
            }
        );
        let p = e.pool;
        assert_eq!(state(&p), before);
        p.free_alloc(a).unwrap();
        p.check().unwrap();
        p.destroy().unwrap();
        assert_eq!(src.live_bytes(), 0);
    }
}

#[test]
fn bad_order_and_no_memory() {
    let src = TestPlatform::new();
    assert_eq!(
        GenPool::with_source(&src, 63).unwrap_err(),
        GenPoolError::BadOrder { order: 63 }
    );
    let p = pool(&src, 12, Search::Summary);
    src.fail_next(1);
    assert!(matches!(
        p.add(FAKE, 1 << 20),
        Err(GenPoolError::NoMemory { .. })
    ));
    assert_eq!(p.size(), 0, "nothing added");
    p.add(FAKE, 1 << 20).unwrap();
    assert_eq!(p.size(), 1 << 20);
}

#[test]
fn alignment_and_fixed_offsets() {
    let src = TestPlatform::new();
    for search in [Search::Summary, Search::Linear] {
        let p = pool(&src, 12, search);
        // A chunk that starts 3 granules past a 64 KiB boundary.
        let base = FAKE + 3 * 4096;
        p.add(base, 1 << 20).unwrap();
        let a = p
            .alloc_algo(4096, Algo::FirstFitAlign { align: 64 << 10 })
            .unwrap();
        assert_eq!(a.addr, FAKE + (64 << 10), "absolute address aligned");
        let o = p.alloc_algo(3 * 4096, Algo::FirstFitOrderAlign).unwrap();
        assert_eq!(o.addr % (4 * 4096), 0);
        assert_eq!(o.addr, FAKE + 4 * 4096);
        let f = p.alloc_algo(4096, Algo::Fixed { offset: 0x8000 }).unwrap();
        assert_eq!(f.addr, base + 0x8000);
        assert_eq!(
            p.alloc_algo(4096, Algo::Fixed { offset: 0x2000 }),
            Err(GenPoolError::NoSpace { size: 4096 }),
            "taken by the order-aligned run"
        );
        assert_eq!(
            p.alloc_algo(
                0x2000,
                Algo::Fixed {
                    offset: (1 << 20) - 0x1000
                }
            ),
            Err(GenPoolError::NoSpace { size: 0x2000 }),
            "fixed run past the chunk end"
        );
        // Granules below the aligned one are still there for first fit.
        let ff = p.alloc(4096).unwrap();
        assert_eq!(ff.addr, base);
        for x in [a, o, f, ff] {
            p.free_alloc(x).unwrap();
        }
        p.check().unwrap();
    }
}

#[test]
fn best_worst_first_on_holes() {
    let src = TestPlatform::new();
    for search in [Search::Summary, Search::Linear] {
        let p = pool(&src, 0, search);
        p.add(FAKE, 100).unwrap();
        // Holes of 5 (at 0), 2 (at 10), 3 (at 20), 70 (at 30).
        for (at, n) in [(5, 5), (12, 8), (23, 7)] {
            p.alloc_algo(n, Algo::Fixed { offset: at }).unwrap();
        }
        assert_eq!(
            p.alloc_algo(2, Algo::BestFit).unwrap().addr,
            FAKE + 10,
            "exact fit"
        );
        assert_eq!(p.alloc_algo(3, Algo::BestFit).unwrap().addr, FAKE + 20);
        assert_eq!(p.alloc_algo(1, Algo::WorstFit).unwrap().addr, FAKE + 30);
        assert_eq!(p.alloc_algo(4, Algo::FirstFit).unwrap().addr, FAKE);
        p.check().unwrap();
    }
}

#[test]
fn huge_unmapped_range() {
    // 1 TiB at 4 KiB granules, 2^28 bits, at an address with nothing behind it.
    let src = TestPlatform::new();
    let tib = if cfg!(miri) { 1 << 26 } else { 1 << 40 };
    let p = pool(&src, 12, Search::Summary);
    p.add_virt(FAKE, 0x10_0000_0000, tib).unwrap();
    assert!(
        src.live_bytes() < tib / 4096 / 8 * 2 + 8192,
        "bookkeeping is ~1/32768 of the range"
    );
    let big = p.alloc(tib / 2).unwrap();
    assert_eq!(big.addr, FAKE);
    let small = p.alloc(4096).unwrap();
    assert_eq!(small.addr, FAKE + tib / 2);
    let last = p
        .alloc_algo(4096, Algo::Fixed { offset: tib - 4096 })
        .unwrap();
    assert_eq!(
        p.virt_to_phys(last.addr),
        Some(0x10_0000_0000 + (tib - 4096) as u64)
    );
    assert!(p.has_addr(FAKE, tib) && !p.has_addr(FAKE, tib + 1));
    assert_eq!(
        p.alloc_algo(tib / 2, Algo::FirstFit),
        Err(GenPoolError::NoSpace { size: tib / 2 })
    );
    let worst = p.alloc_algo(4096, Algo::WorstFit).unwrap();
    assert_eq!(worst.addr, FAKE + tib / 2 + 4096);
    for a in [big, small, last, worst] {
        p.free_alloc(a).unwrap();
    }
    p.check().unwrap();
    assert_eq!(p.avail(), tib);
}

#[test]
fn chunks_are_searched_newest_first_and_skipped_by_avail() {
    let src = TestPlatform::new();
    let p = pool(&src, 12, Search::Summary);
    p.add(FAKE, 0x4000).unwrap();
    p.add(FAKE + 0x10_0000, 0x2000).unwrap();
    assert_eq!(
        p.alloc(4096).unwrap().addr,
        FAKE + 0x10_0000,
        "the newer chunk first"
    );
    assert_eq!(
        p.alloc(0x2000).unwrap().addr,
        FAKE,
        "the newer one has too little avail"
    );
    let mut n = 0;
    p.for_each_chunk(|c| {
        n += 1;
        assert!(c.summary_depth() >= 1);
    });
    assert_eq!(n, 2);
}

#[test]
fn dropping_a_pool_with_allocations_reports_it() {
    let src = TestPlatform::new();
    let ((), reports) = kmem_platform::diag::capture(|| {
        let p = pool(&src, 12, Search::Summary);
        p.add(FAKE, 0x10000).unwrap();
        p.alloc(4096).unwrap();
    });
    assert_eq!(reports.len(), 1);
    assert!(
        reports[0].contains("'test' dropped with 4096 bytes"),
        "{}",
        reports[0]
    );
    assert_eq!(src.live_bytes(), 0, "bookkeeping freed anyway");
}

#[test]
fn guard_frees_on_drop() {
    let src = TestPlatform::new();
    let p = pool(&src, 12, Search::Summary);
    p.add(FAKE, 0x10000).unwrap();
    let g = p.alloc_guard(0x8000).unwrap();
    assert_eq!(p.avail(), 0x8000);
    let h = p
        .alloc_guard_algo(0x1000, Algo::Fixed { offset: 0x8000 })
        .unwrap();
    assert_eq!(h.addr, FAKE + 0x8000);
    drop(g);
    drop(h);
    assert_eq!(p.avail(), 0x10000);
}

#[test]
fn contended_words_leave_an_exact_summary() {
    // Threads fight over the same two bitmap words and the same summary
    // bytes; when they are done, every summary byte must match the bitmap
    // (the refresh protocol's promise), and everything is free again.
    let src = TestPlatform::new();
    let p = pool(&src, 0, Search::Summary);
    p.add(FAKE, 128).unwrap();
    p.add(FAKE + 4096, 64 * 70).unwrap(); // a second, two-level chunk
    let rounds = if cfg!(miri) { 20 } else { 50_000 };
    std::thread::scope(|s| {
        for t in 0..if cfg!(miri) { 2 } else { 4 } {
            let p = &p;
            s.spawn(move || {
                let mut x = 0x2545_f491_4f6c_dd1du64 ^ t;
                let mut held = Vec::new();
                for _ in 0..rounds {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if held.len() < 4 && x & 1 == 0 {
                        if let Ok(a) = p.alloc((x >> 8) as usize % 70 + 1) {
                            held.push(a);
                        }
                    } else if let Some(a) = held.pop() {
                        p.free_alloc(a).unwrap();
                    }
                }
                for a in held {
                    p.free_alloc(a).unwrap();
                }
            });
        }
    });
    p.check().unwrap();
    assert_eq!(p.avail(), p.size());
    assert_eq!(
        p.alloc(128).unwrap().addr,
        FAKE + 4096,
        "the long run is found again"
    );
}
