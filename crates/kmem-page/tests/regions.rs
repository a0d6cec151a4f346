//! Regions: growth, the watermark, giving memory back, caller-supplied regions,
//! known-zero tracking, huge mappings and the registry.

use std::mem::MaybeUninit;

use kmem_page::{Gfp, PageAllocator, PageError, PageKind};
use kmem_platform::{NoPages, TestPlatform};

mod common;

#[test]
fn regions_are_size_aligned_and_registered() {
    let pages = PageAllocator::new(TestPlatform::new());
    let b = pages.alloc(10, Gfp::KERNEL).unwrap();
    assert_eq!(b.as_ptr() as usize % kmem_page::REGION_SIZE, 0);
    assert!(kmem_page::is_kmem(b.as_ptr() as usize));
    assert!(kmem_page::is_kmem(
        b.as_ptr() as usize + kmem_page::REGION_SIZE - 1
    ));
    assert_eq!(pages.source().maps(), 1);
    for i in 0..1024 {
        let d = kmem_page::lookup(b.as_ptr() as usize + i * 4096).unwrap();
        assert_eq!(
            d.kind(),
            if i == 0 {
                PageKind::Pages
            } else {
                PageKind::Tail
            }
        );
    }
}

#[test]
fn watermark_keeps_free_regions_mapped() {
    let pages = common::test_pages(1024, usize::MAX);
    let a = pages.alloc(10, Gfp::KERNEL).unwrap();
    let b = pages.alloc(10, Gfp::KERNEL).unwrap();
    let c = pages.alloc(10, Gfp::KERNEL).unwrap();
    assert_eq!(pages.stats().regions, 3);
    drop(a); // 1024 free: at the watermark, kept
    assert_eq!(pages.stats().regions, 3);
    drop(b); // 2048 free: one region goes back
    assert_eq!(pages.stats().regions, 2);
    assert_eq!(pages.stats().regions_released, 1);
    drop(c);
    assert_eq!(pages.stats().regions, 1);
    assert_eq!(pages.stats().free_pages, 1024);
    assert_eq!(pages.source().live_bytes(), kmem_page::REGION_SIZE);
    // The kept region is reused without a new mapping.
    let maps = pages.source().maps();
    let _d = pages.alloc(5, Gfp::KERNEL).unwrap();
    assert_eq!(pages.source().maps(), maps);
    pages.set_keep_free_pages(0);
    assert_eq!(pages.trim(0), 0, "a region with a live block stays");
}

#[test]
fn gfp_zero_clears_reused_memory_and_skips_fresh_memory() {
    let pages = PageAllocator::new(TestPlatform::new());
    // All on cpu 0's per-cpu lists, so that the freed block is the next one handed out.
    let alloc = |gfp| pages.alloc_kind_on(0, 2, gfp, PageKind::Pages).unwrap();
    let free = |p| {
        // SAFETY: every call passes a live order-2 block of `pages`, not used again.
        unsafe { pages.free_kind_on(0, p, 2, PageKind::Pages).unwrap() }
    };
    let a = alloc(Gfp::KERNEL | Gfp::ZERO);
    assert_eq!(
        pages.stats().zero_skips,
        1,
        "fresh memory is known to be zero"
    );
    // SAFETY: `a` is a live 16 KiB block of ours.
    unsafe { a.as_ptr().write_bytes(0xaa, 4 * 4096) };
    free(a);
    let b = alloc(Gfp::KERNEL | Gfp::ZERO);
    assert_eq!(b, a, "LIFO reuse of the freed block");
    // SAFETY: `b` is a live 16 KiB block of ours.
    let bytes = unsafe { std::slice::from_raw_parts(b.as_ptr(), 4 * 4096) };
    assert!(bytes.iter().all(|&x| x == 0));
    assert_eq!(pages.stats().zero_fills, 1);
    let c = alloc(Gfp::KERNEL | Gfp::ZERO);
    assert_eq!(
        pages.stats().zero_skips,
        2,
        "the per-cpu list was refilled with fresh blocks, still known zero"
    );
    free(c);
    free(b);
    assert_eq!(pages.stats().allocated_pages, 0);
}

/// A region of `len` bytes that lives for the rest of the process, as an
/// embedded user's static buffer would.
fn static_buffer(len: usize) -> &'static mut [MaybeUninit<u8>] {
    Box::leak(Box::new_uninit_slice(len))
}

#[test]
fn caller_supplied_region_without_a_source() {
    // A `no_std` user's allocator is a static over a static buffer.
    static PAGES: PageAllocator<NoPages> = PageAllocator::new(NoPages);
    let pages = &PAGES;
    let mem = static_buffer(if cfg!(miri) { 1 << 20 } else { 3 << 20 });
    let start = mem.as_ptr() as usize;
    let len = mem.len();
    let added = pages.add_static_region(mem).unwrap();
    let total = len / 4096;
    assert!(added > total - 16 && added < total, "{added} of {total}");
    let s = pages.stats();
    assert_eq!(s.managed_pages, added);
    assert_eq!(s.free_pages, added);
    pages.check().unwrap();
    // Every page can be handed out, in blocks aligned to their size, inside the region.
    let mut got = Vec::new();
    // On one per-cpu set (cpu 0), so that the hot-page count below is that of one list.
    while let Ok(p) = pages.alloc_kind_on(0, 0, Gfp::NOWAIT, PageKind::Pages) {
        let a = p.as_ptr() as usize;
        assert!(a >= start && a + 4096 <= start + len);
        got.push(p);
    }
    assert_eq!(got.len(), added);
    assert_eq!(
        pages.alloc_raw(0, Gfp::NOWAIT).unwrap_err(),
        PageError::NoMemory { order: 0 }
    );
    for p in got {
        // SAFETY: live order-0 blocks of `pages`.
        unsafe { pages.free_kind_on(0, p, 0, PageKind::Pages).unwrap() };
    }
    pages.check().unwrap();
    // The list holds at most pcp->high (64) pages; reaching it, it gives its
    // 16 (pcp->batch) coldest back to the buddy before taking the next.
    let cached = pages.stats().cached_pages;
    assert!(
        (49..=64).contains(&cached),
        "the per-cpu list keeps 49..=64 hot pages, not {cached}"
    );
    assert_eq!(pages.drain(), cached);
    assert_eq!(pages.stats().cached_pages, 0);
    assert_eq!(pages.stats().free_pages, added);
    // The metadata pages at the front are not kmem's to hand out.
    assert!(!kmem_page::is_kmem(start.next_multiple_of(4096)));
}

#[test]
fn caller_regions_may_not_overlap_or_be_tiny() {
    static PAGES: PageAllocator<NoPages> = PageAllocator::new(NoPages);
    let pages = &PAGES;
    let mem = static_buffer(256 << 10);
    let p = mem.as_mut_ptr().cast::<u8>();
    let len = mem.len();
    pages.add_static_region(mem).unwrap();
    // SAFETY: refused before anything is written: the range is already kmem's.
    let e = unsafe { pages.add_region(p, len) }.unwrap_err();
    assert!(matches!(e, PageError::RegionOverlap { .. }), "{e:?}");
    let mut tiny = vec![0u8; 6000];
    // SAFETY: refused before anything is written: too small for metadata and a page.
    let e = unsafe { pages.add_region(tiny.as_mut_ptr(), tiny.len()) }.unwrap_err();
    assert!(matches!(e, PageError::RegionTooSmall { .. }), "{e:?}");
}

#[test]
fn huge_mappings_map_every_address_to_their_head() {
    let pages = PageAllocator::new(TestPlatform::new());
    let h = pages.alloc_huge(9 << 20, Gfp::KERNEL).unwrap();
    let a = h.as_ptr() as usize;
    for off in [0, 4096, (9 << 20) - 1] {
        let b = kmem_page::lookup_block(a + off).unwrap();
        assert_eq!(b.addr, a);
        assert_eq!(b.size, 9 << 20);
        assert_eq!(b.desc.kind(), PageKind::Large);
    }
    assert!(!kmem_page::is_kmem(a + (9 << 20)), "past the usable size");
    assert_eq!(pages.stats().huge_allocations, 1);
    // SAFETY: a live huge mapping.
    unsafe { pages.free_huge(h).unwrap() };
    assert!(!kmem_page::is_kmem(a));
    assert_eq!(pages.source().live_bytes(), 0);
}

#[test]
fn dropping_the_allocator_gives_everything_back() {
    let src = TestPlatform::new();
    {
        let pages = PageAllocator::new(&src);
        let a = pages.alloc_raw(3, Gfp::KERNEL).unwrap();
        let _h = pages.alloc_huge(5 << 20, Gfp::KERNEL).unwrap();
        assert!(src.live_bytes() > 0);
        assert!(kmem_page::is_kmem(a.as_ptr() as usize));
    }
    assert_eq!(src.live_bytes(), 0);
}

#[test]
fn shrinkers_run_before_an_allocation_that_may_wait_fails() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    fn shrinker() -> usize {
        CALLS.fetch_add(1, Ordering::SeqCst);
        0
    }
    assert!(kmem_page::register_shrinker(shrinker));
    let pages = common::test_pages(0, 0); // every allocation fails
    let before = CALLS.load(Ordering::SeqCst);
    assert!(pages.alloc(0, Gfp::NOWAIT).is_err());
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        before,
        "GFP_NOWAIT does not reclaim"
    );
    assert!(pages.alloc(0, Gfp::KERNEL).is_err());
    assert!(
        CALLS.load(Ordering::SeqCst) > before,
        "GFP_KERNEL reclaims before failing"
    );
}

#[test]
fn small_caller_regions_share_a_slot_but_may_not_overlap() {
    static A: PageAllocator<NoPages> = PageAllocator::new(NoPages);
    static B: PageAllocator<NoPages> = PageAllocator::new(NoPages);
    // Two halves of one 512 KiB buffer: certainly in one 4 MiB slot (or two
    // adjacent ones), handed to two different allocators.
    let mem = static_buffer(512 << 10);
    let base = mem.as_mut_ptr().cast::<u8>();
    let (lo, hi) = mem.split_at_mut(256 << 10);
    let lo_start = lo.as_ptr() as usize;
    let hi_start = hi.as_ptr() as usize;
    let na = A.add_static_region(lo).unwrap();
    let nb = B.add_static_region(hi).unwrap();
    assert!(na > 50 && nb > 50);
    let pa = A.alloc_raw(0, Gfp::NOWAIT).unwrap();
    let pb = B.alloc_raw(0, Gfp::NOWAIT).unwrap();
    assert!((pa.as_ptr() as usize) < hi_start && pa.as_ptr() as usize >= lo_start);
    assert!(pb.as_ptr() as usize >= hi_start);
    // Each address maps to its own allocator's descriptor.
    assert_eq!(
        kmem_page::lookup(pa.as_ptr() as usize).unwrap().kind(),
        PageKind::Pages
    );
    // SAFETY: refused: each block belongs to the other allocator.
    let ea = unsafe { B.free_raw(pa, 0) };
    // SAFETY: as above.
    let eb = unsafe { A.free_raw(pb, 0) };
    assert!(
        matches!(ea, Err(PageError::WrongAllocator { .. })),
        "{ea:?}"
    );
    assert!(
        matches!(eb, Err(PageError::WrongAllocator { .. })),
        "{eb:?}"
    );
    // A range inside (or straddling) either region is refused, before anything
    // is written.
    // SAFETY: refused before anything is written.
    let e = unsafe { A.add_region(base.add(100 << 10), 300 << 10) };
    assert!(matches!(e, Err(PageError::RegionOverlap { .. })), "{e:?}");
    // SAFETY: the right owners.
    unsafe {
        A.free_raw(pa, 0).unwrap();
        B.free_raw(pb, 0).unwrap();
    }
    A.check().unwrap();
    B.check().unwrap();
}
