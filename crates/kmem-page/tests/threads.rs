//! Many threads allocating and freeing at once: no block is handed out twice,
//! contents survive, and everything is accounted for at the end.

use std::sync::{Arc, Mutex};

use kmem_page::{Gfp, PAGE_SIZE, PageAllocator, PageKind};
use kmem_platform::TestPlatform;

mod common;
use common::{check_tag, free_tagged, tag_block};

#[test]
fn stress_many_threads() {
    let threads = 4;
    let rounds = if cfg!(miri) { 20 } else { 4000 };
    let pages = Arc::new(common::test_pages(1024, usize::MAX));
    // Blocks handed between threads, so that frees happen on other threads.
    let exchange: Arc<Mutex<Vec<(usize, u32, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let pages = pages.clone();
            let exchange = exchange.clone();
            std::thread::spawn(move || {
                let mut mine: Vec<(usize, u32, u64)> = Vec::new();
                let mut x = 0x9e3779b97f4a7c15u64 ^ t as u64;
                for i in 0..rounds {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let order = (x % 5) as u32;
                    let p = pages.alloc_raw(order, Gfp::KERNEL).unwrap();
                    let tag = (t as u64) << 32 | i as u64;
                    // SAFETY: the block is ours.
                    unsafe { tag_block(p, order, tag) };
                    mine.push((p.as_ptr() as usize, order, tag));
                    if x.is_multiple_of(3) {
                        exchange
                            .lock()
                            .unwrap()
                            .push(mine.swap_remove((x as usize / 3) % mine.len()));
                    }
                    if mine.len() > 16 || x.is_multiple_of(4) {
                        let (a, o, tag) = if x.is_multiple_of(2) {
                            match exchange.lock().unwrap().pop() {
                                Some(e) => e,
                                None => continue,
                            }
                        } else {
                            match mine.pop() {
                                Some(e) => e,
                                None => continue,
                            }
                        };
                        // SAFETY: a live block of order `o`, owned by this thread now.
                        unsafe {
                            check_tag(a, o, tag);
                            pages
                                .free_raw(std::ptr::NonNull::new(a as *mut u8).unwrap(), o)
                                .unwrap();
                        }
                    }
                }
                mine
            })
        })
        .collect();
    let mut rest: Vec<(usize, u32, u64)> = Vec::new();
    for h in hs {
        rest.extend(h.join().unwrap());
    }
    rest.extend(exchange.lock().unwrap().drain(..));
    rest.sort();
    for w in rest.windows(2) {
        assert!(
            w[0].0 + (PAGE_SIZE << w[0].1) <= w[1].0,
            "two live blocks overlap"
        );
    }
    // SAFETY: live tagged blocks of `pages`.
    unsafe { free_tagged(&*pages, rest) };
    pages.check().unwrap();
    pages.drain();
    pages.check().unwrap();
    let s = pages.stats();
    assert_eq!(s.allocated_pages, 0);
    assert_eq!(s.free_per_order[10], s.regions);
    pages.trim(0);
    assert_eq!(pages.source().live_bytes(), 0);
}

#[test]
fn concurrent_double_free_is_refused_once() {
    // Two threads race to free the same block: exactly one succeeds.
    let rounds = if cfg!(miri) { 5 } else { 500 };
    let pages = Arc::new(PageAllocator::new(TestPlatform::new()));
    for _ in 0..rounds {
        let p = pages.alloc_raw(1, Gfp::KERNEL).unwrap().as_ptr() as usize;
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let pages = pages.clone();
                // SAFETY: one of the two frees is right; the other must be refused.
                std::thread::spawn(move || unsafe {
                    pages
                        .free_raw(std::ptr::NonNull::new(p as *mut u8).unwrap(), 1)
                        .is_ok()
                })
            })
            .collect();
        let ok: usize = hs.into_iter().map(|h| h.join().unwrap() as usize).sum();
        assert_eq!(ok, 1);
    }
    pages.check().unwrap();
    assert_eq!(pages.stats().allocated_pages, 0);
}

#[test]
fn allocate_on_one_cpu_free_on_another() {
    // Thread `t` allocates on per-cpu set `t` and frees, on set `t`, blocks
    // that thread `t - 1` allocated on its set: every block changes set
    // between its allocation and its free. A fifth thread runs `check()` and
    // `stats()` (every set's lock, then the zone's) all the while.
    let threads = 4;
    let rounds = if cfg!(miri) { 30 } else { 20_000 };
    let pages = common::fresh();
    let start = pages.stats();
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| std::sync::mpsc::channel::<(usize, u32, u64)>())
        .unzip();
    let done = std::sync::atomic::AtomicBool::new(false);
    let leftovers: Vec<(usize, u32, u64)> = std::thread::scope(|sc| {
        let pages = &pages;
        let done = &done;
        let checker = sc.spawn(move || {
            let mut checks = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                pages.check().unwrap();
                let s = pages.stats();
                assert_eq!(
                    s.free_pages + s.cached_pages + s.allocated_pages,
                    s.managed_pages
                );
                checks += 1;
                std::thread::yield_now();
            }
            checks
        });
        let mut rxs = rxs.into_iter();
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let tx = txs[(t + 1) % threads].clone();
                let rx = rxs.next().unwrap();
                sc.spawn(move || {
                    let mut x = 0x2545f4914f6cdd1du64 ^ (t as u64) << 17;
                    for i in 0..rounds {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let order = (x % 5) as u32; // 0..=3 on the lists, 4 beside them
                        let p = pages
                            .alloc_kind_on(t, order, Gfp::KERNEL, PageKind::Pages)
                            .unwrap();
                        let tag = (t as u64) << 32 | i as u64;
                        // SAFETY: the block is ours.
                        unsafe { tag_block(p, order, tag) };
                        tx.send((p.as_ptr() as usize, order, tag)).unwrap();
                        // Free what the neighbour sent, a few at a time.
                        while let Ok((a, o, tag)) = rx.try_recv() {
                            // SAFETY: a live block of order `o`, handed to this thread.
                            unsafe {
                                check_tag(a, o, tag);
                                pages
                                    .free_kind_on(
                                        t,
                                        std::ptr::NonNull::new(a as *mut u8).unwrap(),
                                        o,
                                        PageKind::Pages,
                                    )
                                    .unwrap();
                            }
                            if x.is_multiple_of(3) {
                                break;
                            }
                        }
                    }
                    drop(tx);
                    rx
                })
            })
            .collect();
        let rxs: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(checker.join().unwrap() > 0);
        drop(txs);
        rxs.into_iter().flat_map(|rx| rx.into_iter()).collect()
    });
    // SAFETY: live tagged blocks of `pages`, owned by no thread any more.
    unsafe { free_tagged(&pages, leftovers) };
    pages.check().unwrap();
    let s = pages.stats();
    assert_eq!(s.allocated_pages, 0);
    assert_eq!(s.allocs_per_order, s.frees_per_order);
    assert!(s.cached_pages > 0, "the frees left hot pages on the lists");
    assert_eq!(pages.drain(), s.cached_pages);
    pages.check().unwrap();
    let s = pages.stats();
    assert_eq!(s.cached_pages, 0);
    assert_eq!(s.free_pages, s.managed_pages);
    assert_eq!(s.free_per_order[10], s.regions);
    assert_eq!(pages.pool_stats().current_allocated, 0);
    pages.trim(0);
    let end = pages.stats();
    assert_eq!(
        (end.managed_pages, end.free_pages, end.regions),
        (start.managed_pages, start.free_pages, start.regions)
    );
    assert_eq!(pages.source().live_bytes(), 0);
}
