//! Multi-thread stress: objects carry their id and a checksum of it, and are
//! freed by other threads than the ones that allocated them. No corruption,
//! no loss, and every count returns to zero.
// Every unsafe block here frees or touches an object the test itself allocated
// from the cache it frees it to; the safety argument is the same throughout.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::ptr::NonNull;
use std::sync::mpsc;

use kmem_page::{Gfp, PageAllocator};
use kmem_platform::TestPlatform;
use kmem_slab::KmemCache;

#[macro_use]
mod common;

const SIZE: usize = 96;

fn checksum(id: u64) -> u64 {
    id.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0xdead_beef
}

fn fill(p: *mut u8, id: u64) {
    unsafe {
        let w = p.cast::<u64>();
        w.write(id);
        w.add(1).write(checksum(id));
        for i in 2..SIZE / 8 {
            w.add(i).write(id ^ i as u64);
        }
    }
}

fn verify(p: *mut u8) -> u64 {
    unsafe {
        let w = p.cast::<u64>();
        let id = w.read();
        assert_eq!(w.add(1).read(), checksum(id), "object {p:p} corrupted");
        for i in 2..SIZE / 8 {
            assert_eq!(w.add(i).read(), id ^ i as u64, "object {p:p} corrupted");
        }
        id
    }
}

#[test]
fn objects_freed_by_other_threads_stay_intact() {
    let pages = test_pages!();
    let c = KmemCache::builder("stress", SIZE)
        .pages(pages)
        .create()
        .unwrap();
    let threads = 4usize;
    let per = if cfg!(miri) { 200 } else { 100_000 };
    // Thread i sends its objects to thread (i + 1) % n, which frees them.
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| mpsc::sync_channel::<Vec<usize>>(64))
        .unzip();
    let mut rxs: Vec<Option<_>> = rxs.into_iter().map(Some).collect();
    let freed_ids: Vec<Vec<u64>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|i| {
                let tx = txs[(i + 1) % threads].clone();
                let rx = rxs[i].take().unwrap();
                let c = &c;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    let mut got = Vec::new();
                    let mut batch = Vec::with_capacity(64);
                    for k in 0..per {
                        let id = (i * per + k) as u64;
                        let p = c.alloc(Gfp::KERNEL).unwrap().as_ptr();
                        fill(p, id);
                        // Keep some objects a while, free some locally, pass most on.
                        if k % 7 == 0 {
                            mine.push(p as usize);
                            if mine.len() > 50 {
                                let q = mine.swap_remove(k % mine.len());
                                got.push(verify(q as *mut u8));
                                unsafe { c.free(NonNull::new(q as *mut u8).unwrap()).unwrap() };
                            }
                        } else {
                            batch.push(p as usize);
                            if batch.len() == 64 {
                                tx.send(std::mem::take(&mut batch)).unwrap();
                            }
                        }
                        while let Ok(v) = rx.try_recv() {
                            for q in v {
                                got.push(verify(q as *mut u8));
                                unsafe { c.free(NonNull::new(q as *mut u8).unwrap()).unwrap() };
                            }
                        }
                    }
                    tx.send(batch).unwrap();
                    for q in mine {
                        got.push(verify(q as *mut u8));
                        unsafe { c.free(NonNull::new(q as *mut u8).unwrap()).unwrap() };
                    }
                    drop(tx);
                    for v in rx {
                        for q in v {
                            got.push(verify(q as *mut u8));
                            unsafe { c.free(NonNull::new(q as *mut u8).unwrap()).unwrap() };
                        }
                    }
                    got
                })
            })
            .collect();
        drop(txs);
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = freed_ids.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(all.len(), threads * per, "every object freed once");
    assert!(
        all.iter().enumerate().all(|(i, &id)| id == i as u64),
        "no id lost or duplicated"
    );
    // Every thread exited (arrays flushed); drain the shared array and free slabs.
    let i = c.info();
    assert_eq!(i.active_objs, i.sharedavail);
    shrink_to_nothing(c, pages);
}

/// Checks the cache, releases every slab and destroys it: nothing may be
/// left, in the cache or in its page allocator.
fn shrink_to_nothing(c: KmemCache, pages: &PageAllocator<TestPlatform>) {
    c.check().unwrap();
    c.shrink();
    let i = c.info();
    assert_eq!((i.active_objs, i.num_slabs, i.sharedavail), (0, 0, 0));
    drop(c);
    assert_eq!(pages.stats().allocated_pages, 0);
}

/// The freeze protocol under load: worker threads allocate, fill, verify and
/// free on their fast paths while the main thread keeps draining their
/// arrays from outside (`shrink` and `reap` freeze every thread, take its
/// objects and thaw it). No object is handed out twice (each carries its
/// owner's id while held), none is corrupted, the hit counters add up to
/// the operations made, and every count returns to zero.
#[test]
fn remote_drains_while_threads_allocate() {
    let pages = test_pages!();
    let c = KmemCache::builder("freeze-stress", SIZE)
        .pages(pages)
        .create()
        .unwrap();
    let threads = 3u64;
    // Release: 200 000 rounds catch a broken protocol every time (measured
    // by breaking it); a debug build runs each round ~10x slower, so 20 000
    // give the remote thread as many chances in about the same time.
    let rounds = if cfg!(miri) {
        30
    } else if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let drains = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let c = &c;
                s.spawn(move || {
                    let mut held: Vec<NonNull<u8>> = Vec::new();
                    for r in 0..rounds {
                        // A few live objects at a time, so the array both
                        // empties (refills) and fills (flushes).
                        let n = 1 + (r % 37) as usize;
                        while held.len() < n {
                            let p = c.alloc(Gfp::KERNEL).unwrap();
                            fill(p.as_ptr(), t << 32 | held.len() as u64);
                            held.push(p);
                        }
                        while held.len() > n / 2 {
                            let p = held.pop().unwrap();
                            assert_eq!(verify(p.as_ptr()) >> 32, t, "object of another thread");
                            unsafe { c.free(p).unwrap() };
                        }
                    }
                    for p in held {
                        verify(p.as_ptr());
                        unsafe { c.free(p).unwrap() };
                    }
                })
            })
            .collect();
        let mut drains = 0u64;
        let stopper = s.spawn(|| {
            for h in hs {
                h.join().unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Release);
        });
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            c.shrink();
            kmem_slab::reap();
            drains += 1;
        }
        stopper.join().unwrap();
        drains
    });
    assert!(drains > 0);
    let st = c.stats();
    assert_eq!(
        st.allocs(),
        st.frees(),
        "every allocation freed once: {st:?}"
    );
    shrink_to_nothing(c, pages);
}
