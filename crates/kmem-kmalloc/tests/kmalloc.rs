//! kmalloc's behaviour: classes, alignment, large and huge paths, bad input.

use kmem_kmalloc::*;
use kmem_page::Gfp;
use kmem_platform::diag::capture;

const G: Gfp = Gfp::KERNEL;

#[test]
fn every_class_serves_its_sizes_aligned() {
    for (c, &size) in KMALLOC_SIZES.iter().enumerate() {
        let mut v = Vec::new();
        for _ in 0..if cfg!(miri) { 3 } else { 40 } {
            let p = kmalloc(size, G).unwrap();
            assert_eq!(ksize(p.as_ptr()).unwrap(), size);
            assert_eq!(
                p.as_ptr() as usize % KMALLOC_ALIGN[c],
                0,
                "{}",
                KMALLOC_NAMES[c]
            );
            // SAFETY: `size` bytes of a live allocation.
            unsafe { p.as_ptr().write_bytes(c as u8, size) };
            v.push(p);
        }
        for p in v {
            // SAFETY: allocated above.
            unsafe { assert_eq!(*p.as_ptr().add(size - 1), c as u8) };
            // SAFETY: pointers from kmalloc in this test, live until their one free.
            unsafe { kfree(p.as_ptr()).unwrap() };
        }
    }
}

#[test]
fn zero_size_and_null() {
    let z = kmalloc(0, G).unwrap();
    assert_eq!(z.as_ptr(), ZERO_SIZE_PTR);
    assert!(zero_or_null_ptr(z.as_ptr()));
    assert_eq!(ksize(z.as_ptr()).unwrap(), 0);
    // SAFETY: ZERO_SIZE_PTR and NULL are no-ops.
    unsafe {
        kfree(z.as_ptr()).unwrap();
        kfree(core::ptr::null()).unwrap();
        let p = krealloc(core::ptr::null_mut(), 10, G).unwrap();
        assert_eq!(ksize(p.as_ptr()).unwrap(), 16);
        assert_eq!(krealloc(p.as_ptr(), 0, G).unwrap().as_ptr(), ZERO_SIZE_PTR);
    }
}

#[test]
fn large_and_huge() {
    let cases: &[(usize, usize)] = if cfg!(miri) {
        &[(8193, 16384), (20_000, 32768)]
    } else {
        &[(8193, 16384), (100_000, 131072), (4 << 20, 4 << 20)]
    };
    for &(size, usable) in cases {
        let p = kzalloc(size, G).unwrap();
        assert_eq!(ksize(p.as_ptr()).unwrap(), usable);
        assert_eq!(
            p.as_ptr() as usize % usable,
            0,
            "blocks are aligned to their size"
        );
        // SAFETY: `size` zeroed bytes.
        assert!(
            // SAFETY: pointers from kmalloc in this test, live until their one free.
            unsafe { core::slice::from_raw_parts(p.as_ptr(), size) }
                .iter()
                .all(|&b| b == 0)
        );
        // SAFETY: pointers from kmalloc in this test, live until their one free.
        unsafe { kfree(p.as_ptr()).unwrap() };
    }
    if !cfg!(miri) {
        let p = kmalloc((5 << 20) + 1, G).unwrap();
        assert_eq!(ksize(p.as_ptr()).unwrap(), (5 << 20) + 4096);
        assert!(stats().huge_allocs >= 1);
        // SAFETY: pointers from kmalloc in this test, live until their one free.
        unsafe { kfree(p.as_ptr()).unwrap() };
    }
}

#[test]
fn overflow_and_impossible_sizes() {
    assert!(matches!(
        kmalloc_array(usize::MAX / 2 + 1, 2, G),
        Err(KmallocError::Overflow { .. })
    ));
    assert!(matches!(
        kcalloc(1 << 33, 1 << 33, G),
        Err(KmallocError::Overflow { .. })
    ));
    let nw = G | Gfp::NOWARN;
    assert!(matches!(
        kmalloc(usize::MAX, nw),
        Err(KmallocError::NoMemory { .. })
    ));
    assert!(matches!(
        kmalloc_aligned(8, 3, nw),
        Err(KmallocError::BadAlign { align: 3 })
    ));
    assert!(matches!(
        kmalloc_aligned(8, 8 << 20, nw),
        Err(KmallocError::BadAlign { .. })
    ));
}

#[test]
fn aligned_requests() {
    for shift in 3..=if cfg!(miri) { 13 } else { 22 } {
        let align = 1usize << shift;
        for size in [1, 24, 100, 5000, if cfg!(miri) { 9000 } else { 70000 }] {
            let p = kmalloc_aligned(size, align, G).unwrap();
            assert_eq!(p.as_ptr() as usize % align, 0, "size {size} align {align}");
            assert!(ksize(p.as_ptr()).unwrap() >= size);
            // SAFETY: pointers from kmalloc in this test, live until their one free.
            unsafe { kfree(p.as_ptr()).unwrap() };
        }
    }
}

#[test]
fn bad_frees_are_refused_and_reported() {
    let local = 0u64;
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    let (r, rep) = capture(|| unsafe { kfree(&local as *const u64 as *const u8) });
    assert!(matches!(r, Err(KmallocError::NotKmem { .. })));
    assert!(
        rep[0].contains("kfree") && rep[0].contains("not memory kmem manages"),
        "{rep:?}"
    );

    let p = kmalloc(64, G).unwrap();
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    let (r, rep) = capture(|| unsafe { kfree(p.as_ptr().add(8)) });
    assert!(matches!(r, Err(KmallocError::Interior { .. })), "{r:?}");
    assert!(rep[0].contains("kmalloc-64"), "{rep:?}");
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    unsafe { kfree(p.as_ptr()).unwrap() };
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    let (r, rep) = capture(|| unsafe { kfree(p.as_ptr()) });
    assert!(matches!(r, Err(KmallocError::NotAllocated { .. })), "{r:?}");
    assert!(rep[0].contains("double free"), "{rep:?}");

    let big = kmalloc(50_000, G).unwrap();
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    let (r, rep) = capture(|| unsafe { kfree(big.as_ptr().add(4096)) });
    assert!(matches!(r, Err(KmallocError::Interior { .. })));
    assert!(rep[0].contains("into the large kmalloc block"), "{rep:?}");
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    unsafe { kfree(big.as_ptr()).unwrap() };
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    let (r, rep) = capture(|| unsafe { kfree(big.as_ptr()) });
    assert!(r.is_err());
    assert_eq!(rep.len(), 1, "{rep:?}");

    // Another cache's object, and a page block.
    let c = kmem_slab::KmemCache::new("not_kmalloc", 64, 0).unwrap();
    let o = c.alloc(G).unwrap();
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    let (r, rep) = capture(|| unsafe { kfree(o.as_ptr()) });
    assert!(matches!(r, Err(KmallocError::NotKmalloc { .. })), "{r:?}");
    assert!(rep[0].contains("not_kmalloc"), "{rep:?}");
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    unsafe { c.free(o).unwrap() };
    let pg = kmem_page::global().alloc_raw(0, G).unwrap();
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    let (r, rep) = capture(|| unsafe { kfree(pg.as_ptr()) });
    assert!(matches!(r, Err(KmallocError::NotKmalloc { .. })));
    assert!(rep[0].contains("pages"), "{rep:?}");
    let (r, _) = capture(|| ksize(pg.as_ptr()));
    assert!(r.is_err());
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    unsafe { kmem_page::global().free_raw(pg, 0).unwrap() };
}

#[test]
fn krealloc_in_place_and_moves() {
    let p = kmalloc(100, G).unwrap();
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    unsafe {
        p.as_ptr().write_bytes(7, 100);
        assert_eq!(krealloc(p.as_ptr(), 128, G).unwrap(), p);
        let q = krealloc(p.as_ptr(), 3000, G).unwrap();
        assert_ne!(q, p);
        assert!(
            core::slice::from_raw_parts(q.as_ptr(), 100)
                .iter()
                .all(|&b| b == 7)
        );
        let r = krealloc(q.as_ptr(), 1 << 20, G).unwrap();
        assert!(
            core::slice::from_raw_parts(r.as_ptr(), 100)
                .iter()
                .all(|&b| b == 7)
        );
        // A large block shrunk to a quarter moves to a smaller one.
        let s = krealloc(r.as_ptr(), 1000, G).unwrap();
        assert_eq!(ksize(s.as_ptr()).unwrap(), 1024);
        assert!(
            core::slice::from_raw_parts(s.as_ptr(), 100)
                .iter()
                .all(|&b| b == 7)
        );
        kfree(s.as_ptr()).unwrap();
    }
}

#[test]
fn helpers() {
    let s = kstrdup(c"hello", G).unwrap();
    assert_eq!(
        // SAFETY: pointers from kmalloc in this test, live until their one free.
        unsafe { core::ffi::CStr::from_ptr(s.as_ptr().cast()) },
        c"hello"
    );
    let m = kmemdup(&[1, 2, 3], G).unwrap();
    assert_eq!(
        // SAFETY: pointers from kmalloc in this test, live until their one free.
        unsafe { core::slice::from_raw_parts(m.as_ptr(), 3) },
        [1, 2, 3]
    );
    let z = kcalloc(10, 10, G).unwrap();
    assert!(
        // SAFETY: pointers from kmalloc in this test, live until their one free.
        unsafe { core::slice::from_raw_parts(z.as_ptr(), 100) }
            .iter()
            .all(|&b| b == 0)
    );
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    unsafe {
        kfree(s.as_ptr()).unwrap();
        kfree(m.as_ptr()).unwrap();
        z.as_ptr().write_bytes(0xaa, 128);
        kfree_sensitive(z.as_ptr()).unwrap();
    }
    // The object comes back zeroed over its whole bucket (it is the next one handed out).
    let again = kmalloc(128, G).unwrap();
    if again == z {
        assert!(
            // SAFETY: pointers from kmalloc in this test, live until their one free.
            unsafe { core::slice::from_raw_parts(again.as_ptr(), 128) }
                .iter()
                .all(|&b| b == 0)
        );
    }
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    unsafe { kfree(again.as_ptr()).unwrap() };
}

#[test]
fn stats_and_slabinfo() {
    let p = kmalloc(1 << 16, G).unwrap();
    let q = kmalloc(90, G).unwrap();
    let mut s = String::new();
    write_stats(&mut s).unwrap();
    assert!(s.contains("kmalloc-96") && s.contains("large"), "{s}");
    let rows = slabinfo();
    assert_eq!(rows.len(), NR_KMALLOC_CLASSES);
    assert!(rows[4].1.active_objs >= 1);
    // SAFETY: pointers from kmalloc in this test, live until their one free.
    unsafe {
        kfree(p.as_ptr()).unwrap();
        kfree(q.as_ptr()).unwrap();
    }
}

#[test]
fn frees_from_other_threads() {
    let v: Vec<usize> = (0..if cfg!(miri) { 20 } else { 2000 })
        .map(|i| kmalloc(1 + i % 300, G).unwrap().as_ptr() as usize)
        .collect();
    std::thread::spawn(move || {
        for p in v {
            // SAFETY: pointers from kmalloc in this test, live until their one free.
            unsafe { kfree(p as *const u8).unwrap() };
        }
    })
    .join()
    .unwrap();
}

/// Other layers mark their big blocks `Large` too (the region pool does, with
/// its pool in the owner word): kfree and ksize must refuse them, not free
/// memory another pool still lists.
#[test]
fn large_blocks_of_another_layer_are_refused() {
    let pages = kmem_page::global();
    let other = pages
        .alloc_kind(2, Gfp::KERNEL, kmem_page::PageKind::Large)
        .unwrap();
    let d = kmem_page::lookup(other.as_ptr() as usize).unwrap();
    d.set_owner(0x1234_5000); // another pool's id
    let (r, reports) = capture(|| {
        // SAFETY: refused: the block is not kmalloc's.
        unsafe { kfree(other.as_ptr()) }
    });
    assert!(matches!(r, Err(KmallocError::NotKmalloc { .. })), "{r:?}");
    assert!(
        reports.iter().any(|l| l.contains("not from kmalloc")),
        "{reports:?}"
    );
    let (r, _) = capture(|| ksize(other.as_ptr()));
    assert!(r.is_err());
    // Nothing was freed: the block is still allocated, whole, and the other
    // pool's (the block's own descriptor: the process-wide page count moves
    // with the other tests of this binary, which run in parallel).
    let b = kmem_page::lookup_block(other.as_ptr() as usize + 4096).unwrap();
    assert_eq!(
        (b.addr, b.order, b.desc.kind(), b.desc.owner()),
        (
            other.as_ptr() as usize,
            2,
            kmem_page::PageKind::Large,
            0x1234_5000
        ),
        "nothing was freed"
    );
    // kmalloc's own large blocks still work.
    let mine = kmalloc(20_000, Gfp::KERNEL).unwrap();
    assert_eq!(ksize(mine.as_ptr()).unwrap(), 32768);
    // SAFETY: a live kmalloc allocation.
    unsafe { kfree(mine.as_ptr()).unwrap() };
    // SAFETY: the block belongs to this test, allocated above as Large.
    unsafe {
        pages
            .free_kind(other, 2, kmem_page::PageKind::Large)
            .unwrap()
    };
}
