//! The pool's behaviour against the kernel's: reserve fallback, the gfp order
//! of backend calls, waiting and waking, resize, destroy, bad input.
#![cfg(not(loom))]

use std::collections::HashSet;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::time::Duration;

use kmem_mempool::{
    Backend, BoxBackend, FaultyBackend, GFP_NOMEMALLOC, Gfp, Mempool, MempoolError, PageBackend,
};
use kmem_page::{Config, PageAllocator};
use kmem_platform::TestPlatform;

fn boxed() -> FaultyBackend<BoxBackend<u64, fn() -> u64>> {
    FaultyBackend::new(BoxBackend::new((|| 0u64) as fn() -> u64))
}

/// Waits (polling) until `cond` holds; the waiter threads in these tests
/// register under the pool lock, so this only orders the test's steps.
fn until(cond: impl Fn() -> bool) {
    while !cond() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn backend_failing_completely_exactly_min_nr_allocations_succeed() {
    for min_nr in [1usize, 2, 8, 33] {
        let pool = Mempool::new(min_nr, boxed()).unwrap();
        pool.backend().set_failing(true);
        let mut held = Vec::new();
        for i in 0..min_nr {
            held.push(
                pool.try_alloc()
                    .unwrap_or_else(|| panic!("allocation {i} of {min_nr} failed")),
            );
        }
        assert!(pool.try_alloc().is_none());
        assert_eq!(
            pool.alloc_gfp(Gfp::ATOMIC).unwrap_err(),
            MempoolError::Exhausted { gfp: Gfp::ATOMIC }
        );
        assert!(pool.alloc_timeout(Duration::from_millis(5)).is_none());
        let s = pool.stats();
        assert_eq!((s.curr_nr, s.low_water, s.outstanding), (0, 0, min_nr));
        assert_eq!(s.reserve_allocs, min_nr as u64);
        assert_eq!(s.exhausted, 2);
        assert_eq!(s.timeouts, 1);
        let distinct: HashSet<usize> = held.iter().map(|e| e.as_ptr().as_ptr() as usize).collect();
        assert_eq!(
            distinct.len(),
            min_nr,
            "every reserve element handed out once"
        );
        drop(held);
        assert_eq!(pool.curr_nr(), min_nr, "frees refill the reserve");
        assert_eq!(
            pool.backend().live(),
            min_nr,
            "nothing went back to the backend"
        );
    }
}

#[test]
fn creation_fails_cleanly_and_frees_what_it_got() {
    let pages = PageAllocator::with_config(
        TestPlatform::new(),
        Config {
            keep_free_pages: 0,
            max_pages: 1024,
        },
    );
    let hog = pages.alloc_raw(9, Gfp::KERNEL).unwrap(); // 512 of 1024 pages
    let backend = FaultyBackend::new(PageBackend::new(&pages, 8).unwrap()); // 256-page elements
    match Mempool::new(3, backend) {
        Err(MempoolError::Prefill { got: 2, min_nr: 3 }) => {}
        other => panic!("expected a prefill failure, got {other:?}"),
    }
    assert_eq!(
        pages.stats().allocated_pages,
        512,
        "the two elements it got were freed"
    );
    // SAFETY: an order-9 block of `pages`, freed once.
    unsafe { pages.free_raw(hog, 9).unwrap() };
    let pool = Mempool::new(3, PageBackend::new(&pages, 8).unwrap()).unwrap();
    assert_eq!(pages.stats().allocated_pages, 768);
    drop(pool);
    assert_eq!(
        pages.stats().allocated_pages,
        0,
        "destroy returns the reserve"
    );
    pages.check().unwrap();
}

#[test]
fn min_nr_limits() {
    assert_eq!(
        Mempool::new(kmem_mempool::MAX_MIN_NR + 1, boxed()).unwrap_err(),
        MempoolError::TooLarge {
            min_nr: kmem_mempool::MAX_MIN_NR + 1
        }
    );
    let pool = Mempool::new(0, boxed()).unwrap();
    assert_eq!(pool.curr_nr(), 0);
    assert_eq!(
        pool.resize(0),
        Err(MempoolError::InvalidMinNr { min_nr: 0 })
    );
    assert!(matches!(
        pool.resize(usize::MAX),
        Err(MempoolError::TooLarge { .. })
    ));
}

/// A backend that records the gfp of every call and fails while told to.
struct Recording {
    fail: std::sync::atomic::AtomicBool,
    calls: Mutex<Vec<Gfp>>,
}

// SAFETY: boxed, initialised u32s, freed as boxes.
unsafe impl Backend for Recording {
    type Elem = u32;
    fn alloc(&self, gfp: Gfp) -> Option<NonNull<u32>> {
        self.calls.lock().unwrap().push(gfp);
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            None
        } else {
            Some(NonNull::from(Box::leak(Box::new(7))))
        }
    }
    unsafe fn free(&self, e: NonNull<u32>) {
        // SAFETY: from `alloc`.
        drop(unsafe { Box::from_raw(e.as_ptr()) });
    }
}

#[test]
fn backend_calls_follow_the_kernels_order_and_flags() {
    let pool = Mempool::new(
        1,
        Recording {
            fail: false.into(),
            calls: Mutex::new(Vec::new()),
        },
    )
    .unwrap();
    let calls = || std::mem::take(&mut *pool.backend().calls.lock().unwrap());
    assert_eq!(calls(), [Gfp::KERNEL], "prefill uses GFP_KERNEL");
    let extra = Gfp::NORETRY | Gfp::NOWARN | GFP_NOMEMALLOC;

    // Healthy: one backend call, without direct reclaim or I/O.
    let e = pool.alloc();
    let weak = (Gfp::KERNEL | extra).without(Gfp::DIRECT_RECLAIM | Gfp::IO);
    assert_eq!(calls(), [weak]);
    drop(e);

    // Failing, reserve full: one weakened call, then the reserve.
    pool.backend()
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let r = pool.alloc();
    assert_eq!(calls(), [weak]);
    assert_eq!(pool.curr_nr(), 0);

    // Failing, reserve empty, GFP_KERNEL with a deadline: weakened, then the
    // caller's full flags, then waits and retries with the full flags.
    assert!(pool.alloc_timeout(Duration::from_millis(20)).is_none());
    let c = calls();
    assert_eq!(c[..2], [weak, Gfp::KERNEL | extra]);
    assert!(c[2..].iter().all(|&g| g == Gfp::KERNEL | extra), "{c:?}");

    // GFP_ATOMIC has nothing to weaken: one call, then NULL without waiting.
    let waits = pool.stats().waits;
    assert!(pool.alloc_gfp(Gfp::ATOMIC).is_err());
    assert_eq!(calls(), [Gfp::ATOMIC | extra]);
    assert_eq!(pool.stats().waits, waits, "GFP_ATOMIC never waits");

    // GFP_NOWAIT likewise.
    assert!(pool.alloc_gfp(Gfp::NOWAIT).is_err());
    assert_eq!(calls(), [Gfp::NOWAIT | extra]);
    drop(r);
}

#[test]
fn zero_is_refused_before_anything_happens() {
    let pool = Mempool::new(1, boxed()).unwrap();
    let before = pool.backend().allocs() + pool.backend().failures();
    for gfp in [Gfp::KERNEL | Gfp::ZERO, Gfp::ATOMIC | Gfp::ZERO] {
        assert_eq!(
            pool.alloc_gfp(gfp).unwrap_err(),
            MempoolError::ZeroUnsupported
        );
    }
    assert_eq!(
        pool.backend().allocs() + pool.backend().failures(),
        before,
        "backend not called"
    );
    let s = pool.stats();
    assert_eq!((s.refused, s.curr_nr, s.outstanding), (2, 1, 0));
}

#[test]
fn free_refills_the_reserve_first_then_returns_to_the_backend() {
    let pool = Mempool::new(2, boxed()).unwrap();
    pool.backend().set_failing(true);
    let a = pool.alloc();
    let b = pool.alloc();
    pool.backend().set_failing(false);
    let c = pool.alloc(); // from the healthy backend
    assert_eq!(pool.backend().allocs(), 3);
    drop(c); // reserve is 0 < 2: refill
    drop(b); // 1 < 2: refill
    drop(a); // full: backend
    let s = pool.stats();
    assert_eq!((s.curr_nr, s.reserve_refills), (2, 2));
    assert_eq!(pool.backend().frees(), 1);
    assert_eq!(pool.backend().live(), 2);
}

#[test]
fn unbalanced_free_is_refused_and_changes_nothing() {
    let pool = Mempool::new(1, boxed()).unwrap();
    let p = pool.alloc().into_raw();
    // SAFETY: `p` is a live element; the second free is refused by the count
    // before `p` is touched.
    unsafe {
        pool.free_raw(p).unwrap();
        let before = (pool.curr_nr(), pool.backend().frees());
        assert_eq!(
            pool.free_raw(p),
            Err(MempoolError::Unbalanced {
                addr: p.as_ptr() as usize
            })
        );
        assert_eq!((pool.curr_nr(), pool.backend().frees()), before);
    }
    assert_eq!(pool.stats().refused, 1);
}

#[test]
fn destroy_refuses_while_elements_are_out_and_drop_reports_them() {
    let pool = Mempool::new(2, boxed()).unwrap();
    let p = pool.alloc().into_raw();
    let (pool, err) = pool.destroy().unwrap_err();
    assert_eq!(err, MempoolError::Outstanding { count: 1 });
    assert_eq!(pool.curr_nr(), 2, "refused destroy changed nothing");
    let ((), reports) = kmem_platform::diag::capture(|| drop(pool));
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].contains("mempool_destroy")
            && reports[0].contains("1 element(s) still allocated")
    );
    // The element is a backend element now.
    // SAFETY: the BoxBackend made it with Box::new.
    drop(unsafe { Box::from_raw(p.as_ptr()) });
}

#[test]
fn a_waiter_is_woken_by_a_free_and_receives_that_element() {
    let pool = Mempool::new(2, boxed()).unwrap();
    pool.set_retry_interval(Duration::from_secs(3600)); // only a wake-up can end the sleep
    pool.backend().set_failing(true);
    let a = pool.alloc();
    let b = pool.alloc();
    let freed = a.as_ptr().as_ptr() as usize;
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            // A deadline far away; if the wake-up were lost the sleep would run
            // out and `expired` would say so.
            let e = pool
                .alloc_timeout(Duration::from_secs(60))
                .expect("woken with an element");
            e.as_ptr().as_ptr() as usize
        });
        until(|| pool.stats().waiters == 1);
        drop(a);
        assert_eq!(
            waiter.join().unwrap(),
            freed,
            "the waiter got the element just freed"
        );
    });
    let s = pool.stats();
    assert_eq!((s.waits, s.expired), (1, 0), "{s}");
    assert!(s.wakeups >= 1);
    drop(b);
}

#[test]
fn many_waiters_each_get_an_element() {
    let n = if cfg!(miri) { 3 } else { 8 };
    let pool = Mempool::new(n, boxed()).unwrap();
    pool.backend().set_failing(true);
    let held: Vec<_> = (0..n).map(|_| pool.alloc()).collect();
    std::thread::scope(|s| {
        let waiters: Vec<_> = (0..n)
            .map(|_| s.spawn(|| pool.alloc().as_ptr().as_ptr() as usize))
            .collect();
        until(|| pool.stats().waiters == n);
        drop(held);
        let served = waiters
            .into_iter()
            .map(|w| w.join().unwrap())
            .filter(|&a| a != 0)
            .count();
        assert_eq!(served, n, "every waiter returned with an element");
    });
    assert_eq!(pool.curr_nr(), n);
    assert_eq!(pool.stats().expired, 0);
}

#[test]
fn zero_minimum_pool_hands_a_free_to_a_waiter() {
    let pool = Mempool::new(0, boxed()).unwrap();
    pool.set_retry_interval(Duration::from_secs(30));
    let e = pool.alloc(); // from the backend
    pool.backend().set_failing(true);
    assert!(pool.try_alloc().is_none());
    let addr = e.as_ptr().as_ptr() as usize;
    std::thread::scope(|s| {
        let w = s.spawn(|| pool.alloc().as_ptr().as_ptr() as usize);
        until(|| pool.stats().waiters == 1);
        drop(e); // the one-slot reserve takes it and wakes the waiter
        assert_eq!(w.join().unwrap(), addr);
    });
    assert_eq!(
        pool.curr_nr(),
        1,
        "the waiter's free kept it in the one slot"
    );
    assert_eq!(pool.stats().expired, 0);
}

#[test]
fn the_retry_interval_lets_a_waiter_notice_a_recovered_backend() {
    let pool = Mempool::new(1, boxed()).unwrap();
    pool.set_retry_interval(Duration::from_millis(5));
    pool.backend().set_failing(true);
    let held = pool.alloc();
    std::thread::scope(|s| {
        let w = s.spawn(|| drop(pool.alloc()));
        until(|| pool.stats().waits >= 1);
        pool.backend().set_failing(false); // no free happens: only the retry can see this
        w.join().unwrap();
    });
    assert!(pool.stats().expired >= 1);
    drop(held);
}

#[test]
fn resize_grows_best_effort_and_shrinks_to_the_backend() {
    let pool = Mempool::new(2, boxed()).unwrap();
    pool.backend().set_failing(true);
    pool.resize(5).unwrap(); // nothing to fill with: still succeeds
    assert_eq!((pool.min_nr(), pool.curr_nr()), (5, 2));
    // Frees top the reserve up to the new minimum.
    pool.backend().set_failing(false);
    let extra: Vec<_> = (0..3).map(|_| pool.alloc()).collect();
    drop(extra);
    assert_eq!(pool.curr_nr(), 5);
    // Grow past one page of slots: the array is replaced, elements kept.
    pool.backend().set_failing(true);
    let before: HashSet<usize> = {
        let v: Vec<_> = (0..5).map(|_| pool.alloc()).collect();
        v.iter().map(|e| e.as_ptr().as_ptr() as usize).collect()
    };
    pool.backend().set_failing(false);
    pool.resize(700).unwrap();
    assert_eq!((pool.min_nr(), pool.curr_nr()), (700, 700));
    pool.backend().set_failing(true);
    let all: Vec<_> = (0..700).map(|_| pool.alloc()).collect();
    let after: HashSet<usize> = all.iter().map(|e| e.as_ptr().as_ptr() as usize).collect();
    assert_eq!(after.len(), 700);
    assert!(
        before.is_subset(&after),
        "the old reserve's elements moved to the new array"
    );
    drop(all);
    let frees = pool.backend().frees();
    pool.resize(3).unwrap();
    assert_eq!((pool.min_nr(), pool.curr_nr()), (3, 3));
    assert_eq!(
        pool.backend().frees() - frees,
        697,
        "the surplus went back to the backend"
    );
    assert_eq!(pool.backend().live(), 3);
    assert_eq!(pool.stats().resizes, 3);
}

#[test]
fn resize_wakes_waiters_when_it_adds_elements() {
    let pool = Mempool::new(1, boxed()).unwrap();
    pool.set_retry_interval(Duration::from_secs(30));
    pool.backend().set_failing(true);
    let held = pool.alloc();
    std::thread::scope(|s| {
        let w = s.spawn(|| pool.alloc_timeout(Duration::from_secs(60)).is_some());
        until(|| pool.stats().waiters == 1);
        pool.backend().set_failing(false);
        pool.resize(2).unwrap();
        assert!(w.join().unwrap());
    });
    assert_eq!(
        pool.stats().expired,
        0,
        "woken by the resize, not by the timer"
    );
    drop(held);
}

#[test]
fn resize_under_concurrent_use() {
    let (threads, rounds) = if cfg!(miri) { (2, 20) } else { (4, 3000) };
    let pool = Mempool::new(4, boxed()).unwrap();
    pool.set_retry_interval(Duration::from_millis(2));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..threads {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..rounds {
                    let mut e = if (i + t) % 3 == 0 {
                        pool.try_alloc()
                    } else {
                        Some(pool.alloc())
                    };
                    if let Some(e) = e.as_mut() {
                        **e += 1;
                    }
                }
            });
        }
        let pool = &pool;
        let stop = &stop;
        s.spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                pool.backend().set_failing(!i.is_multiple_of(3));
                i += 1;
                std::thread::yield_now();
            }
            pool.backend().set_failing(false);
        });
        let sizes = [1usize, 7, 2, 600, 3, 40, 1, 513];
        let n = if cfg!(miri) { 8 } else { 400 };
        for i in 0..n {
            pool.resize(sizes[i % sizes.len()]).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(pool.outstanding(), 0);
    let s = pool.stats();
    assert!(s.curr_nr <= s.min_nr, "{s}");
    assert_eq!(
        pool.backend().live(),
        s.curr_nr,
        "every element the backend has out is in the reserve"
    );
    pool.resize(1000).unwrap();
    assert_eq!(pool.curr_nr(), 1000, "a healthy backend fills a resize");
    assert_eq!(pool.backend().live(), 1000);
}

#[test]
fn page_pool_elements_are_whole_blocks() {
    let pages = PageAllocator::with_config(
        TestPlatform::new(),
        Config {
            keep_free_pages: 0,
            max_pages: 1024,
        },
    );
    let pool = Mempool::new(2, PageBackend::new(&pages, 2).unwrap()).unwrap();
    let mut e = pool.alloc();
    assert_eq!(e.as_bytes_mut().len(), 4 * 4096);
    assert_eq!(e.as_ptr().as_ptr() as usize % (4 * 4096), 0);
    e.as_bytes_mut().fill(0x5a);
    assert!(e.as_bytes().iter().all(|&b| b == 0x5a));
    assert_eq!(
        kmem_page::lookup_block(e.as_ptr().as_ptr() as usize)
            .unwrap()
            .order,
        2
    );
    drop(e);
    assert_eq!(
        PageBackend::new(&pages, 11).err(),
        Some(MempoolError::BadOrder { order: 11 })
    );
    drop(pool);
    assert_eq!(pages.stats().allocated_pages, 0);
}

#[test]
fn debug_and_stats_name_the_pool() {
    let pages = PageAllocator::new(TestPlatform::new());
    let pool = Mempool::new(1, PageBackend::new(&pages, 0).unwrap()).unwrap();
    let d = format!("{pool:?}");
    assert!(
        d.starts_with("mempool 0x")
            && d.contains("pages order 0 (test)")
            && d.contains("reserve 1/1"),
        "{d}"
    );
}
