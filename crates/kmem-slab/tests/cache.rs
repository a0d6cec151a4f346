//! Behaviour of a cache: geometry, alignment, colouring, constructors, bad
//! input, destroy, cross-thread frees, thread exit, shrink, slabinfo.
// Every unsafe block here frees or touches an object the test itself allocated
// from the cache it frees it to; the safety argument is the same throughout.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kmem_page::Gfp;
use kmem_platform::diag::capture;
use kmem_slab::{CacheGeometry, KmemCache, ObjectCache, SlabError, SlabFlags};

#[macro_use]
mod common;

#[test]
fn geometry_follows_slab() {
    // 100 bytes: word-rounded to 104, order 0, 39 objects, 40 bytes left.
    let g = CacheGeometry::compute(100, 0, SlabFlags::empty(), 2).unwrap();
    assert_eq!(
        (g.size, g.order, g.num, g.left_over, g.colour),
        (104, 0, 39, 40, 0)
    );
    // 2100 bytes: order 0 wastes 48%, order 1 23%, order 2 10% <= 1/8.
    let g = CacheGeometry::compute(2100, 0, SlabFlags::empty(), 2).unwrap();
    assert_eq!((g.size, g.order, g.num), (2104, 2, 7));
    assert_eq!(g.left_over, 16384 - 7 * 2104);
    assert_eq!(g.colour, g.left_over / 64);
    // Tunables by size (enable_cpucache), shared only with more than one cpu.
    for (size, limit) in [(32, 120), (300, 54), (2000, 24), (8192, 8), (200_000, 1)] {
        let g = CacheGeometry::compute(size, 0, SlabFlags::empty(), 4).unwrap();
        assert_eq!(g.limit, limit, "size {size}");
        assert_eq!(g.batchcount, limit.div_ceil(2));
        assert_eq!(g.shared, if g.size <= 4096 { 8 } else { 0 });
    }
    assert_eq!(
        CacheGeometry::compute(64, 0, SlabFlags::empty(), 1)
            .unwrap()
            .shared,
        0
    );
    // HWCACHE_ALIGN halves the line while two objects fit.
    assert_eq!(
        CacheGeometry::compute(20, 0, SlabFlags::HWCACHE_ALIGN, 1)
            .unwrap()
            .align,
        32
    );
    assert_eq!(
        CacheGeometry::compute(40, 0, SlabFlags::HWCACHE_ALIGN, 1)
            .unwrap()
            .align,
        64
    );
    assert_eq!(
        CacheGeometry::compute(8, 0, SlabFlags::HWCACHE_ALIGN, 1)
            .unwrap()
            .align,
        8
    );
    // Bad sizes and alignments.
    assert!(matches!(
        CacheGeometry::compute(0, 0, SlabFlags::empty(), 1),
        Err(SlabError::BadSize { .. })
    ));
    assert!(matches!(
        CacheGeometry::compute(8, 3, SlabFlags::empty(), 1),
        Err(SlabError::BadAlign { .. })
    ));
    assert!(matches!(
        CacheGeometry::compute(8, 8192, SlabFlags::empty(), 1),
        Err(SlabError::BadAlign { .. })
    ));
    assert!(CacheGeometry::compute(5 << 20, 0, SlabFlags::empty(), 1).is_err());
}

#[test]
fn objects_are_aligned() {
    let pages = test_pages!();
    for (size, align, flags) in [
        (24, 0, SlabFlags::empty()),
        (24, 0, SlabFlags::HWCACHE_ALIGN),
        (100, 64, SlabFlags::empty()),
        (100, 256, SlabFlags::empty()),
        (3000, 1024, SlabFlags::empty()),
        (5000, 4096, SlabFlags::empty()),
    ] {
        let c = KmemCache::builder("align", size)
            .align(align)
            .flags(flags)
            .pages(pages)
            .create()
            .unwrap();
        let want = c.align();
        assert!(want >= align.max(8));
        let n = if cfg!(miri) { 20 } else { 300 };
        let v: Vec<_> = (0..n).map(|_| c.alloc(Gfp::KERNEL).unwrap()).collect();
        for p in &v {
            assert_eq!(p.as_ptr() as usize % want, 0, "size {size} align {align}");
        }
        for p in v {
            unsafe { c.free(p).unwrap() };
        }
        c.check().unwrap();
    }
}

#[test]
fn slabs_are_coloured() {
    let pages = test_pages!();
    // 3000-byte objects: order 2, 5 per slab, 1384 bytes left: 21 colours of 64 bytes.
    let c = KmemCache::builder("colour", 3000)
        .pages(pages)
        .create()
        .unwrap();
    let g = c.geometry();
    assert_eq!((g.order, g.num, g.colour_off, g.colour), (2, 5, 64, 21));
    let slab_size = 4096 << g.order;
    let slabs = if cfg!(miri) { 4 } else { 25 };
    let v: Vec<_> = (0..slabs * g.num)
        .map(|_| c.alloc(Gfp::KERNEL).unwrap())
        .collect();
    // Objects of one slab come out together (one slab refills the array), so
    // the first object of each new slab shows its colour offset.
    let mut offsets = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in &v {
        let a = p.as_ptr() as usize;
        let base = a & !(slab_size - 1);
        if seen.insert(base) {
            offsets.push((a - base) % g.size);
        }
    }
    assert_eq!(offsets.len(), slabs);
    for (i, off) in offsets.iter().enumerate() {
        assert_eq!(*off, (i % g.colour) * g.colour_off, "slab {i}");
    }
    for p in v {
        unsafe { c.free(p).unwrap() };
    }
}

#[test]
fn constructor_runs_once_per_object_at_slab_creation() {
    let pages = test_pages!();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = calls.clone();
    let c = KmemCache::builder("ctor", 64)
        .pages(pages)
        .ctor(move |p: NonNull<u8>| {
            k.fetch_add(1, Ordering::SeqCst);
            unsafe { p.as_ptr().write_bytes(0x5a, 64) };
        })
        .create()
        .unwrap();
    let num = c.geometry().num;
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no slab yet");
    let p = c.alloc(Gfp::KERNEL).unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        num,
        "one slab: every object constructed"
    );
    assert!(
        unsafe { std::slice::from_raw_parts(p.as_ptr(), 64) }
            .iter()
            .all(|&b| b == 0x5a)
    );
    // The user changes it and gives it back; the next allocation gets it
    // back as left (LIFO), not re-constructed.
    unsafe { p.as_ptr().write(7) };
    unsafe { c.free(p).unwrap() };
    let q = c.alloc(Gfp::KERNEL).unwrap();
    assert_eq!(q, p);
    assert_eq!(unsafe { *q.as_ptr() }, 7);
    assert_eq!(calls.load(Ordering::SeqCst), num, "reuse never constructs");
    // zalloc zeroes after construction.
    unsafe { c.free(q).unwrap() };
    let z = c.zalloc(Gfp::KERNEL).unwrap();
    assert!(
        unsafe { std::slice::from_raw_parts(z.as_ptr(), 64) }
            .iter()
            .all(|&b| b == 0)
    );
    unsafe { c.free(z).unwrap() };
    // A second slab constructs num more.
    let v: Vec<_> = (0..num + 1)
        .map(|_| c.alloc(Gfp::KERNEL).unwrap())
        .collect();
    assert_eq!(calls.load(Ordering::SeqCst), 2 * num);
    for p in v {
        unsafe { c.free(p).unwrap() };
    }
    drop(c);
}

#[test]
fn bad_frees_are_refused_and_reported() {
    let pages = test_pages!();
    let a = KmemCache::builder("cache_a", 64)
        .pages(pages)
        .create()
        .unwrap();
    let b = KmemCache::builder("cache_b", 64)
        .pages(pages)
        .create()
        .unwrap();
    let pa = a.alloc(Gfp::KERNEL).unwrap();
    let pa2 = a.alloc(Gfp::KERNEL).unwrap();
    let pb = b.alloc(Gfp::KERNEL).unwrap();
    let on_stack = 0u64;
    let page = pages.alloc(0, Gfp::KERNEL).unwrap();

    let cases: Vec<(NonNull<u8>, &str)> = vec![
        (NonNull::from(&on_stack).cast(), "not memory kmem manages"),
        (pb, "belongs to cache cache_b"),
        (
            unsafe { NonNull::new_unchecked(pa.as_ptr().add(8)) },
            "8 bytes into the object",
        ),
        (NonNull::new(page.as_ptr()).unwrap(), "is not a slab object"),
    ];
    for (p, msg) in cases {
        let (r, reports) = capture(|| unsafe { a.free(p) });
        assert!(r.is_err(), "{msg}");
        assert_eq!(reports.len(), 1, "{msg}");
        assert!(
            reports[0].contains("kmem_cache_free(cache_a)"),
            "{}",
            reports[0]
        );
        assert!(reports[0].contains(msg), "{} / {msg}", reports[0]);
    }
    // Never handed out: another object of pa's slab that sits free.
    let other = {
        let mut x = None;
        for i in 1..a.geometry().num {
            let q = unsafe { pa.as_ptr().add(i * 64) };
            if q != pa2.as_ptr() {
                x = Some(NonNull::new(q).unwrap());
                break;
            }
        }
        x.unwrap()
    };
    let (r, reports) = capture(|| unsafe { a.free(other) });
    assert!(matches!(r, Err(SlabError::NotAllocated { .. })));
    assert!(reports[0].contains("cache_a"));
    // Double free.
    unsafe { a.free(pa).unwrap() };
    let (r, reports) = capture(|| unsafe { a.free(pa) });
    assert_eq!(
        r,
        Err(SlabError::NotAllocated {
            addr: pa.as_ptr() as usize
        })
    );
    assert!(reports[0].contains("double free"), "{}", reports[0]);
    // Everything still consistent and usable.
    a.check().unwrap();
    b.check().unwrap();
    let again = a.alloc(Gfp::KERNEL).unwrap();
    unsafe {
        a.free(again).unwrap();
        a.free(pa2).unwrap();
        b.free(pb).unwrap();
    }
    assert_eq!(a.shrink(), 1);
    assert_eq!(a.info().active_objs, 0);
}

#[test]
fn destroy_with_live_objects_keeps_the_cache() {
    let pages = test_pages!();
    let c = KmemCache::builder("busy_cache", 128)
        .pages(pages)
        .create()
        .unwrap();
    let v: Vec<_> = (0..3).map(|_| c.alloc(Gfp::KERNEL).unwrap()).collect();
    for p in &v {
        unsafe { p.as_ptr().write_bytes(0xee, 128) };
    }
    let ((c, e), reports) = capture(|| c.destroy().unwrap_err());
    assert_eq!(e, SlabError::Busy { live: 3 });
    assert_eq!(reports.len(), 1);
    assert!(
        reports[0].contains("kmem_cache_destroy(busy_cache): 3 objects still in use"),
        "{}",
        reports[0]
    );
    // Still usable, objects intact.
    for p in &v {
        assert!(
            unsafe { std::slice::from_raw_parts(p.as_ptr(), 128) }
                .iter()
                .all(|&b| b == 0xee)
        );
    }
    let extra = c.alloc(Gfp::KERNEL).unwrap();
    unsafe { c.free(extra).unwrap() };
    for p in v {
        unsafe { c.free(p).unwrap() };
    }
    c.destroy().map_err(|(_, e)| e).unwrap();
    assert_eq!(
        pages.stats().allocated_pages,
        0,
        "slabs, management and descriptor all returned"
    );
}

#[test]
fn destroy_twice_through_raw_is_refused() {
    let raw = KmemCache::new("twice", 32, 0).unwrap().into_raw();
    unsafe { kmem_slab::destroy_raw(raw.as_ptr()).unwrap() };
    let (r, reports) = capture(|| unsafe { kmem_slab::destroy_raw(raw.as_ptr()) });
    assert!(r.is_err());
    assert!(reports[0].contains("not a live cache"), "{}", reports[0]);
    assert!(KmemCache::with_raw(raw.as_ptr(), |_| ()).is_none());
}

#[test]
fn cross_thread_frees_and_thread_exit_flush() {
    let pages = test_pages!();
    let c = KmemCache::builder("xthread", 48)
        .pages(pages)
        .create()
        .unwrap();
    let n = if cfg!(miri) { 50 } else { 5000 };
    let objs: Vec<usize> = std::thread::scope(|s| {
        s.spawn(|| {
            (0..n)
                .map(|i| {
                    let p = c.alloc(Gfp::KERNEL).unwrap();
                    unsafe { p.as_ptr().cast::<usize>().write(i) };
                    p.as_ptr() as usize
                })
                .collect()
        })
        .join()
        .unwrap()
    });
    // The allocating thread has exited: its array went back to the slabs.
    assert_eq!(c.info().active_objs, n);
    // (An explicit join waits for the thread's exit destructors; a scope's
    // implicit join only for its closure.)
    std::thread::scope(|s| {
        s.spawn(|| {
            for (i, &a) in objs.iter().enumerate() {
                assert_eq!(unsafe { *(a as *const usize) }, i);
                unsafe { c.free(NonNull::new(a as *mut u8).unwrap()).unwrap() };
            }
        })
        .join()
        .unwrap();
    });
    // The freeing thread exited too: nothing held by a thread, nothing lost
    // (slabinfo counts the shared array's objects as active, as Linux does).
    let i = c.info();
    assert_eq!(i.active_objs, i.sharedavail);
    c.check().unwrap();
    c.shrink();
    assert_eq!(c.info().num_slabs, 0);
}

#[test]
fn destroy_drains_arrays_of_live_threads() {
    let pages = test_pages!();
    let c = KmemCache::builder("drain_live", 64)
        .pages(pages)
        .create()
        .unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let cr = &c;
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            // Fill this thread's array for `c`, then wait alive.
            let v: Vec<_> = (0..50).map(|_| cr.alloc(Gfp::KERNEL).unwrap()).collect();
            for p in v {
                unsafe { cr.free(p).unwrap() };
            }
            ready_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        });
        ready_rx.recv().unwrap();
        assert!(
            c.info().active_objs >= 50,
            "objects sit in the other thread's array"
        );
        // shrink reaches into the live thread's array.
        c.shrink();
        assert_eq!(c.info().active_objs, 0);
        assert_eq!(c.info().num_slabs, 0);
        go_tx.send(()).unwrap();
        h.join().unwrap();
    });
    c.destroy().map_err(|(_, e)| e).unwrap();
    assert_eq!(pages.stats().allocated_pages, 0);

    // A thread that used a cache stays alive while the cache is destroyed,
    // then uses a new cache that may reuse the id: it must not see the old array.
    let (tx1, rx1) = std::sync::mpsc::channel::<usize>();
    let (tx2, rx2) = std::sync::mpsc::channel::<usize>();
    let t = std::thread::spawn(move || {
        let c = KmemCache::new("old", 64, 0).unwrap();
        let p = c.alloc(Gfp::KERNEL).unwrap();
        unsafe { c.free(p).unwrap() };
        tx1.send(c.into_raw().as_ptr() as usize).unwrap();
        let raw = rx2.recv().unwrap();
        // A new cache, created by the main thread after `old` was destroyed.
        KmemCache::with_raw(raw as *mut _, |n| {
            let q = n.alloc(Gfp::KERNEL).unwrap();
            assert!(n.info().active_objs >= 1);
            unsafe { n.free(q).unwrap() };
        })
        .unwrap();
    });
    let old = rx1.recv().unwrap();
    unsafe { kmem_slab::destroy_raw(old as *mut _).unwrap() };
    let new = KmemCache::new("new", 64, 0).unwrap().into_raw();
    tx2.send(new.as_ptr() as usize).unwrap();
    t.join().unwrap();
    unsafe { kmem_slab::destroy_raw(new.as_ptr()).unwrap() };
}

#[test]
fn free_limit_releases_emptied_slabs() {
    let pages = test_pages!();
    let c = KmemCache::builder("free_limit", 1024)
        .pages(pages)
        .create()
        .unwrap();
    let g = c.geometry();
    let free_limit = (1 + kmem_platform::cpu::nr_cpus()) * g.batchcount as usize + g.num;
    let n = 4 * free_limit + (g.limit + g.shared * g.batchcount) as usize;
    let v: Vec<_> = (0..n).map(|_| c.alloc(Gfp::KERNEL).unwrap()).collect();
    let slabs_before = c.info().num_slabs;
    for p in v {
        unsafe { c.free(p).unwrap() };
    }
    let i = c.info();
    // Objects held in arrays and the shared array are at most limit + shared*batch.
    let free_in_slabs = i.num_objs - i.active_objs;
    assert!(
        free_in_slabs <= free_limit + g.num,
        "{free_in_slabs} free objects kept, limit {free_limit}"
    );
    assert!(i.num_slabs < slabs_before);
    c.check().unwrap();
}

#[test]
fn bulk_is_all_or_nothing() {
    let pages = test_pages!();
    let c = KmemCache::builder("bulk", 512)
        .pages(pages)
        .create()
        .unwrap();
    let mut v = vec![std::ptr::null_mut(); 100];
    c.alloc_bulk(Gfp::KERNEL, &mut v).unwrap();
    assert!(v.iter().all(|p| !p.is_null()));
    assert_eq!(unsafe { c.free_bulk(&v) }, 100);
    c.shrink();
    // No more regions than the one mapped: a bulk bigger than it must fail
    // and leave nothing behind.
    pages.set_max_pages(1024);
    let huge = KmemCache::builder("bulk_big", 32768)
        .pages(pages)
        .create()
        .unwrap();
    let mut big = vec![std::ptr::null_mut(); 200];
    let (r, _) = capture(|| huge.alloc_bulk(Gfp::KERNEL, &mut big));
    assert_eq!(r, Err(SlabError::NoMemory));
    assert!(big.iter().all(|p| p.is_null()));
    huge.shrink();
    assert_eq!(huge.info().active_objs, 0);
    huge.check().unwrap();
    // And it works again once memory is there.
    let mut few = vec![std::ptr::null_mut(); 10];
    huge.alloc_bulk(Gfp::KERNEL, &mut few).unwrap();
    assert_eq!(unsafe { huge.free_bulk(&few) }, 10);
    pages.set_max_pages(usize::MAX);
}

#[test]
fn slabinfo_has_linux_layout() {
    let c = KmemCache::builder("slabinfo_test_cache", 200)
        .flags(SlabFlags::HWCACHE_ALIGN)
        .create()
        .unwrap();
    let p = c.alloc(Gfp::KERNEL).unwrap();
    let mut s = String::new();
    kmem_slab::write_slabinfo(&mut s).unwrap();
    let mut lines = s.lines();
    assert_eq!(lines.next(), Some("slabinfo - version: 2.1"));
    assert_eq!(
        lines.next(),
        Some(
            "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>"
        )
    );
    let row = s
        .lines()
        .find(|l| l.starts_with("slabinfo_test_cache "))
        .unwrap();
    let i = c.info();
    let want = format!(
        "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
        "slabinfo_test_cache",
        i.active_objs,
        i.num_objs,
        256,
        16,
        1,
        120,
        60,
        i.sharedfactor,
        1,
        1,
        0
    );
    assert_eq!(row, want);
    unsafe { c.free(p).unwrap() };
}

#[test]
fn typed_cache_drops_objects_with_their_slabs() {
    struct Counted(Arc<AtomicUsize>, [u8; 40]);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let (d, m) = (drops.clone(), made.clone());
    let c = ObjectCache::new("counted", move || {
        m.fetch_add(1, Ordering::SeqCst);
        Counted(d.clone(), [1; 40])
    })
    .unwrap();
    {
        let a = c.alloc().unwrap();
        let b = c.alloc().unwrap();
        assert_eq!(a.1[39], 1);
        assert_ne!(Obj::as_ptr(&a), Obj::as_ptr(&b));
        std::thread::scope(|s| {
            s.spawn(move || drop(a)); // freed by another thread
        });
        drop(b);
    }
    let made_now = made.load(Ordering::SeqCst);
    assert_eq!(made_now, c.raw().geometry().num);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "objects are not dropped on free"
    );
    c.shrink();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        made_now,
        "dropped with their slab"
    );
    drop(c);
}
use kmem_slab::Obj;

#[test]
fn large_objects_without_a_shared_array() {
    let pages = test_pages!();
    // 200 000 B: limit 1, no shared array (objects above a page), order 6.
    let c = KmemCache::builder("large", 200_000)
        .pages(pages)
        .create()
        .unwrap();
    let g = c.geometry();
    assert_eq!((g.limit, g.batchcount, g.shared), (1, 1, 0));
    assert_eq!((g.order, g.num), (6, 1));
    let n = if cfg!(miri) { 3 } else { 20 };
    let v: Vec<_> = (0..n).map(|_| c.alloc(Gfp::KERNEL).unwrap()).collect();
    for (i, p) in v.iter().enumerate() {
        unsafe { p.as_ptr().add(199_999).write(i as u8) };
    }
    for (i, p) in v.iter().enumerate() {
        assert_eq!(unsafe { *p.as_ptr().add(199_999) }, i as u8);
    }
    std::thread::scope(|s| {
        let v: Vec<usize> = v.iter().map(|p| p.as_ptr() as usize).collect();
        let c = &c;
        s.spawn(move || {
            for p in v {
                unsafe { c.free(NonNull::new(p as *mut u8).unwrap()).unwrap() };
            }
        })
        .join()
        .unwrap();
    });
    c.check().unwrap();
    assert_eq!(c.info().active_objs, 0);
    assert_eq!(c.info().sharedavail, 0);
    c.shrink();
    assert_eq!(c.info().num_slabs, 0);
    drop(c);
    assert_eq!(pages.stats().allocated_pages, 0);
}
