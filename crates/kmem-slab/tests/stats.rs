//! Statistics of a cache: SLAB's `cpustat` (array hits and misses) and
//! `globalstat`, exact for known sequences; sums across threads; counts that
//! outlive their thread; the seed's `mp_pool_stats` view; the slabinfo
//! statistics columns.
// Every unsafe block here frees an object the test itself allocated from the
// cache it frees it to; the safety argument is the same throughout.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::ptr::NonNull;
use std::sync::{Arc, Barrier};

use kmem_page::Gfp;
use kmem_platform::diag::capture;
use kmem_slab::{CacheStats, KmemCache};

#[macro_use]
mod common;

/// `kmem_slab::reap()` works on every cache of the process: a pass that runs
/// while another test of this binary allocates drains and regrows that
/// test's cache and moves its exact counts (seen in ~1 run of 10). The test
/// that reaps holds this lock for writing; every other test holds it for
/// reading (they run in parallel with each other, never with a reap).
static REAP: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn counts_stay_ours() -> std::sync::RwLockReadGuard<'static, ()> {
    REAP.read().unwrap_or_else(|e| e.into_inner())
}

/// Raw object addresses, to hand objects to another thread.
struct Objs(Vec<usize>);

fn alloc_n(c: &KmemCache, n: usize) -> Objs {
    Objs(
        (0..n)
            .map(|_| c.alloc(Gfp::KERNEL).unwrap().as_ptr() as usize)
            .collect(),
    )
}

fn free_all(c: &KmemCache, o: Objs) {
    for p in o.0 {
        unsafe { c.free(NonNull::new(p as *mut u8).unwrap()).unwrap() };
    }
}

/// What SLAB's refill does to one thread allocating `n` objects from a fresh
/// cache with nothing in the shared array and nobody else allocating: every
/// allocation from an empty array is a miss that refills `batchcount`
/// objects (16 while the array was never touched), from the free objects
/// of the slabs, growing one slab when there are none. Returns the expected
/// (allochit, allocmiss, listallocs, grown, objects left in the array).
fn model_allocs(n: usize, batchcount: usize, num: usize) -> (u64, u64, u64, u64, usize) {
    let (mut hit, mut miss, mut listallocs, mut grown) = (0, 0, 0, 0);
    let (mut avail, mut free_in_slabs, mut touched) = (0usize, 0usize, false);
    for _ in 0..n {
        if avail == 0 {
            miss += 1;
            let batch = if touched {
                batchcount
            } else {
                batchcount.min(16)
            };
            if free_in_slabs == 0 {
                free_in_slabs += num;
                grown += 1;
            }
            let t = batch.min(free_in_slabs);
            free_in_slabs -= t;
            avail = t;
            listallocs += t as u64;
        } else {
            hit += 1;
        }
        avail -= 1;
        touched = true;
    }
    (hit, miss, listallocs, grown, avail)
}

#[test]
fn a_known_sequence_gives_exact_cpustat() {
    let _reap = counts_stay_ours();
    let c = KmemCache::builder("stats_exact", 64)
        .pages(test_pages!())
        .create()
        .unwrap();
    let g = c.geometry();
    assert_eq!((g.limit, g.batchcount, g.num), (120, 60, 64));
    std::thread::scope(|s| {
        s.spawn(|| {
            // Fresh thread, fresh array: the first allocation refills 16.
            let a = alloc_n(&c, 16);
            let st = c.stats();
            assert_eq!((st.allochit, st.allocmiss), (15, 1));
            assert_eq!((st.listallocs, st.grown, st.high_mark), (16, 1, 16));
            // 16 frees into a non-full array: hits (the first through the
            // slow path, which validates the slab; the rest fast).
            free_all(&c, a);
            let st = c.stats();
            assert_eq!((st.freehit, st.freemiss), (16, 0));
            // The 16 come back from the array: hits; the 17th refills.
            let b = alloc_n(&c, 17);
            let st = c.stats();
            assert_eq!((st.allochit, st.allocmiss), (15 + 16, 2));
            free_all(&c, b);
            let st = c.stats();
            assert_eq!((st.freehit, st.freemiss), (33, 0));
            assert_eq!(c.pool_stats().current_allocated, 0);
        })
        .join()
        .unwrap();
    });
    // The thread's counts survived its exit (folded into the node).
    let st = c.stats();
    assert_eq!(
        (st.allochit, st.allocmiss, st.freehit, st.freemiss),
        (31, 2, 33, 0)
    );
}

#[test]
fn misses_follow_slabs_refill_and_flush() {
    let _reap = counts_stay_ours();
    let n = if cfg!(miri) { 150 } else { 1000 };
    let c = KmemCache::builder("stats_refill_flush", 64)
        .pages(test_pages!())
        .create()
        .unwrap();
    let g = c.geometry();
    let (limit, batch) = (g.limit as usize, g.batchcount as usize);
    // One thread allocates n objects...
    let objs = std::thread::scope(|s| s.spawn(|| alloc_n(&c, n)).join().unwrap());
    let (hit, miss, listallocs, grown, _) = model_allocs(n, batch, g.num);
    let st = c.stats();
    assert_eq!((st.allochit, st.allocmiss), (hit, miss));
    assert_eq!((st.listallocs, st.grown), (listallocs, grown));
    assert_eq!(st.high_mark as u64, listallocs);
    // ...another frees them all into its empty array: `limit` hits, then a
    // miss (a flush of `batchcount`) every `batchcount` frees.
    std::thread::scope(|s| {
        s.spawn(|| free_all(&c, objs));
    });
    let misses = if n > limit {
        1 + (n - limit - 1) / batch
    } else {
        0
    };
    let st = c.stats();
    assert_eq!(st.freemiss as usize, misses);
    assert_eq!(st.freehit as usize, n - misses);
    assert_eq!(st.allocs(), n as u64);
    assert_eq!(st.frees(), n as u64);
    let p = c.pool_stats();
    assert_eq!(
        (p.allocation_count, p.free_count, p.failed_count),
        (n, n, 0)
    );
    assert_eq!((p.total_allocated, p.current_allocated), (n * 64, 0));
    assert_eq!(p.peak_allocated, st.high_mark * 64);
    assert!(p.peak_allocated >= n * 64);
}

#[test]
fn counts_sum_over_live_threads_and_survive_their_exit() {
    let _reap = counts_stay_ours();
    const THREADS: usize = 4;
    let per = if cfg!(miri) { 40 } else { 500 };
    let c = Arc::new(
        KmemCache::builder("stats_threads", 48)
            .pages(test_pages!())
            .create()
            .unwrap(),
    );
    let counted = Arc::new(Barrier::new(THREADS + 1));
    let read = Arc::new(Barrier::new(THREADS + 1));
    let hs: Vec<_> = (0..THREADS)
        .map(|i| {
            let (c, counted, read) = (c.clone(), counted.clone(), read.clone());
            std::thread::spawn(move || {
                // Each thread keeps i+1 objects and frees the rest.
                let keep = alloc_n(&c, i + 1);
                for _ in 0..per {
                    let p = c.alloc(Gfp::KERNEL).unwrap();
                    unsafe { c.free(p).unwrap() };
                }
                counted.wait();
                read.wait(); // alive while the main thread reads
                free_all(&c, keep);
            })
        })
        .collect();
    counted.wait();
    let live: usize = (1..=THREADS).sum();
    let st = c.stats();
    assert_eq!(st.allocs() as usize, THREADS * per + live);
    assert_eq!(st.frees() as usize, THREADS * per);
    let p = c.pool_stats();
    assert_eq!(p.current_allocated, live * 48);
    assert_eq!(p.allocation_count - p.free_count, live);
    read.wait();
    for h in hs {
        h.join().unwrap();
    }
    let after = c.stats();
    assert_eq!(after.allocs() as usize, THREADS * per + live);
    assert_eq!(after.frees() as usize, THREADS * per + live);
    assert_eq!(c.pool_stats().current_allocated, 0);
    // Shrinking drains arrays but keeps them: counts do not change.
    c.shrink();
    let shrunk = c.stats();
    assert_eq!(
        (
            shrunk.allochit,
            shrunk.allocmiss,
            shrunk.freehit,
            shrunk.freemiss
        ),
        (
            after.allochit,
            after.allocmiss,
            after.freehit,
            after.freemiss
        )
    );
}

#[test]
fn failed_allocations_are_counted() {
    let _reap = counts_stay_ours();
    let pages = test_pages!();
    let c = KmemCache::builder("stats_fail", 1 << 20)
        .pages(pages)
        .create()
        .unwrap();
    // One region of 4 MiB, part of it already used for the descriptor: at
    // most three 1 MiB slabs fit.
    pages.set_max_pages(1024);
    let mut held = Vec::new();
    let (r, reports) = capture(|| {
        loop {
            match c.alloc(Gfp::KERNEL) {
                Ok(p) => held.push(p),
                Err(e) => break e,
            }
        }
    });
    assert_eq!(r, kmem_slab::SlabError::NoMemory);
    assert!(
        reports.iter().any(|l| l.contains("stats_fail")),
        "{reports:?}"
    );
    let st = c.stats();
    assert_eq!(st.errors, 1);
    assert_eq!(st.allocs() as usize, held.len());
    let p = c.pool_stats();
    assert_eq!((p.failed_count, p.allocation_count), (1, held.len()));
    assert_eq!(p.current_allocated, held.len() << 20);
    for q in held {
        unsafe { c.free(q).unwrap() };
    }
    pages.set_max_pages(usize::MAX);
    assert_eq!(c.stats().grown as usize, c.stats().allocs() as usize);
}

#[test]
fn reaped_and_max_freeable_follow_the_node() {
    let _reap = REAP.write().unwrap_or_else(|e| e.into_inner());
    let c = KmemCache::builder("stats_reap", 256)
        .pages(test_pages!())
        .create()
        .unwrap();
    let o = alloc_n(&c, 100);
    free_all(&c, o);
    c.shrink(); // everything back in the slabs
    let st = c.stats();
    assert!(st.max_freeable >= 100 && st.max_freeable <= st.grown as usize * c.geometry().num);
    assert_eq!(st.reaped, 0, "shrink is not a reap");
    assert_eq!(c.info().num_slabs, 0);
    // One slab again, its object resting in this thread's array.
    let o = alloc_n(&c, 1);
    free_all(&c, o);
    assert_eq!(c.info().num_slabs, 1);
    // The first pass only clears the touched marks; later ones take the
    // array's objects back a part at a time, then release the free slab.
    let mut passes = 0;
    while c.info().num_slabs > 0 && passes < 20 {
        assert_eq!(c.stats().reaped, 0);
        kmem_slab::reap();
        passes += 1;
    }
    assert_eq!(c.info().num_slabs, 0);
    assert_eq!(c.stats().reaped, 1);
}

#[test]
fn slabinfo_statistics_columns() {
    let _reap = counts_stay_ours();
    let c = KmemCache::builder("stats_slabinfo", 128)
        .pages(test_pages!())
        .create()
        .unwrap();
    let o = alloc_n(&c, 3);
    let mut s = String::new();
    kmem_slab::write_slabinfo_stats(&mut s).unwrap();
    let mut lines = s.lines();
    assert_eq!(lines.next(), Some(kmem_slab::SLABINFO_HEADER_1));
    assert_eq!(lines.next(), Some(kmem_slab::SLABINFO_STATS_HEADER_2));
    let row = s
        .lines()
        .find(|l| l.starts_with("stats_slabinfo "))
        .unwrap();
    // The 2.1 row is unchanged at the front…
    let mut plain = String::new();
    kmem_slab::write_slabinfo_row(&mut plain, "stats_slabinfo", &c.info()).unwrap();
    assert!(row.starts_with(plain.trim_end()));
    // …and the statistics follow in Linux's order.
    let cols: Vec<&str> = row.split(" : ").collect();
    assert_eq!(cols.len(), 5);
    let num = |part: &str| -> Vec<u64> {
        part.split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap())
            .collect()
    };
    assert_eq!(num(cols[3]), vec![16, 16, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(num(cols[4]), vec![2, 1, 0, 0]);
    // The default slabinfo has no statistics columns.
    let mut d = String::new();
    kmem_slab::write_slabinfo(&mut d).unwrap();
    assert!(!d.contains("cpustat"));
    free_all(&c, o);
    assert_eq!(
        c.stats(),
        CacheStats {
            allochit: 2,
            allocmiss: 1,
            freehit: 3,
            freemiss: 0,
            listallocs: 16,
            high_mark: 16,
            grown: 1,
            reaped: 0,
            errors: 0,
            max_freeable: 0,
        }
    );
}
