//! Seats (`cpu_cache`, "Seats"): the first `SEATS` threads using kmem at once
//! keep their array caches in the caches' descriptors. Which threads get one,
//! that a seat comes back when its thread exits, that a seat's array starts
//! empty for its next thread, and that seated and unseated threads allocate
//! and free the same way (remote frees, shrink draining live seated threads).
//!
//! One test function: seats are process-wide, and a second test of this
//! binary running at the same time would take seats of its own.
// Every unsafe block frees an object the test allocated from the same cache.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::collections::BTreeSet;
use std::sync::{Barrier, Mutex};

use kmem_page::Gfp;
use kmem_slab::{KmemCache, SEATS, seats_in_use, thread_seat};

/// What one worker saw: its seat, and whether its objects kept their contents.
struct Seen {
    seat: Option<usize>,
    intact: bool,
}

/// Allocates `n` objects, stamps them with the thread's number, waits until
/// every worker holds its objects, checks the stamps, frees half of them
/// here and hands the other half to `give` (freed by another thread).
fn work(c: &KmemCache, me: usize, n: usize, all_hold: &Barrier, give: &Mutex<Vec<usize>>) -> Seen {
    let objs: Vec<*mut u64> = (0..n)
        .map(|_| c.alloc(Gfp::KERNEL).unwrap().as_ptr().cast::<u64>())
        .collect();
    for (i, &p) in objs.iter().enumerate() {
        unsafe { p.write((me << 32 | i) as u64) };
    }
    all_hold.wait();
    let intact = objs
        .iter()
        .enumerate()
        .all(|(i, &p)| unsafe { p.read() } == (me << 32 | i) as u64);
    let (mine, theirs) = objs.split_at(n / 2);
    for &p in mine {
        unsafe { c.free(std::ptr::NonNull::new(p.cast()).unwrap()).unwrap() };
    }
    give.lock()
        .unwrap()
        .extend(theirs.iter().map(|&p| p as usize));
    Seen {
        seat: thread_seat(),
        intact,
    }
}

#[test]
fn seats_go_to_the_first_threads_and_come_back_at_exit() {
    let c = KmemCache::new("seats", 64, 0).unwrap();
    assert_eq!(
        seats_in_use(),
        0,
        "no thread of this binary has used kmem yet"
    );
    assert_eq!(
        thread_seat(),
        None,
        "before its first use a thread holds no seat"
    );

    // The first thread to use kmem takes seat 0.
    let p = c.alloc(Gfp::KERNEL).unwrap();
    unsafe { c.free(p).unwrap() };
    assert_eq!(thread_seat(), Some(0));
    assert_eq!(seats_in_use(), 1);

    // SEATS + 3 more threads alive at once: SEATS - 1 get the other seats,
    // 4 get none; all of them allocate past their array's limit (slow paths,
    // flushes) and free objects of the others.
    let n = SEATS + 3;
    let per = 300;
    let all_hold = Barrier::new(n);
    let give = Mutex::new(Vec::new());
    let seen: Vec<Seen> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|me| {
                let (c, all_hold, give) = (&c, &all_hold, &give);
                s.spawn(move || work(c, me, per, all_hold, give))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        seen.iter().all(|s| s.intact),
        "an object changed under its owner"
    );
    let seats: BTreeSet<usize> = seen.iter().filter_map(|s| s.seat).collect();
    assert_eq!(
        seats,
        (1..SEATS).collect::<BTreeSet<_>>(),
        "the other seats, each to one thread"
    );
    assert_eq!(seen.iter().filter(|s| s.seat.is_none()).count(), 4);
    assert_eq!(
        seats_in_use(),
        1,
        "the workers' seats came back when they exited"
    );

    // Objects of every worker, freed here (remote frees into seat 0's array).
    let theirs = give.into_inner().unwrap();
    assert_eq!(theirs.len(), n * (per - per / 2));
    for p in theirs {
        unsafe {
            c.free(std::ptr::NonNull::new(p as *mut u8).unwrap())
                .unwrap()
        };
    }
    // Nothing is in use: the exited threads' arrays were flushed, and shrink
    // drains ours (seat 0) and the shared array.
    c.shrink();
    assert_eq!(c.active_objects(), 0);
    assert_eq!(c.info().active_slabs, 0, "every slab is free and released");

    // A new thread takes the lowest free seat, and that seat's array for `c`
    // starts closed: after the thread has its seat (its first use of kmem,
    // through another cache), its first free into `c` (of an object from
    // this thread) goes to the slow path, which builds the array and
    // registers it in the thread's slot, so shrink (from here) finds the
    // object there. (Had the array been left open by the seat's previous
    // thread, the free would land in an array no slot points to, out of
    // reach of shrink and of the exit flush: the object would stay in use
    // for good.)
    let other = KmemCache::new("seats_other", 32, 0).unwrap();
    let x = c.alloc(Gfp::KERNEL).unwrap().as_ptr() as usize;
    let freed = Barrier::new(2);
    let shrunk = Barrier::new(2);
    let seat = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let o = other.alloc(Gfp::KERNEL).unwrap();
            unsafe { other.free(o).unwrap() };
            let first = thread_seat();
            unsafe {
                c.free(std::ptr::NonNull::new(x as *mut u8).unwrap())
                    .unwrap()
            };
            freed.wait();
            shrunk.wait();
            let b = c.alloc(Gfp::KERNEL).unwrap();
            unsafe { c.free(b).unwrap() };
            assert_eq!(first, thread_seat());
            first
        });
        freed.wait();
        c.shrink();
        let active = c.active_objects();
        shrunk.wait();
        // Asserted once the thread is past its last wait: a panic here
        // before it would leave it blocked and the scope with it.
        assert_eq!(active, 0, "shrink found the object in the new seat's array");
        h.join().unwrap()
    });
    assert_eq!(seat, Some(1));
    assert_eq!(
        c.active_objects(),
        0,
        "the exiting thread flushed its array"
    );
    assert_eq!(seats_in_use(), 1);

    // A live seated thread's objects are drained by shrink from another
    // thread (the freeze protocol works on a seat's array as on any).
    let ready = Barrier::new(2);
    let done = Barrier::new(2);
    std::thread::scope(|s| {
        let (c, ready, done) = (&c, &ready, &done);
        s.spawn(move || {
            let objs: Vec<_> = (0..50).map(|_| c.alloc(Gfp::KERNEL).unwrap()).collect();
            for p in objs {
                unsafe { c.free(p).unwrap() };
            }
            let seat = thread_seat();
            ready.wait();
            done.wait();
            assert_eq!(seat, Some(1));
            // The array was emptied meanwhile: allocating again still works.
            let p = c.alloc(Gfp::KERNEL).unwrap();
            unsafe { c.free(p).unwrap() };
        });
        ready.wait();
        c.shrink();
        let active = c.active_objects();
        done.wait();
        assert_eq!(active, 0, "shrink took the live thread's cached objects");
    });
    c.destroy().map_err(|(_, e)| e).unwrap();
    other.destroy().map_err(|(_, e)| e).unwrap();
}
