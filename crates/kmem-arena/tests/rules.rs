//! Each rule of the region pool, one test each (nginx's `ngx_palloc.c` is the
//! reference). Pools run over a `TestPlatform` page allocator, so these tests
//! also run under Miri.

use core::ffi::c_void;
use std::cell::RefCell;
use std::rc::Rc;

use kmem_arena::{Arena, BlockInfo, FreeError, MP_ALIGNMENT, Pool};
use kmem_page::{Config, PageAllocator};
use kmem_platform::TestPlatform;

#[macro_use]
mod common;

fn blocks<P: kmem_arena::PageBackend>(pool: &Pool<P>) -> Vec<BlockInfo> {
    let mut v = Vec::new();
    pool.for_each_block(|b| v.push(b));
    v
}

/// A pool whose 4096-byte blocks take exactly one allocation of `max` (4000) bytes.
const ONE_PER_BLOCK: usize = 4000;

#[test]
fn max_separates_small_from_large() {
    let pages = &pages!();
    let small = Pool::new(pages, 100).unwrap();
    assert_eq!(small.max(), 100);
    small.alloc(100).unwrap();
    assert_eq!(small.large_entries(), (0, 0));
    small.alloc(101).unwrap();
    assert_eq!(small.large_entries(), (1, 0), "above max: large");
    let big = Pool::new(pages, 1 << 20).unwrap();
    assert_eq!(big.max(), 4095, "max = min(size, PAGE_SIZE - 1)");
    big.alloc(4095).unwrap();
    assert_eq!(big.large_entries(), (0, 0));
    big.alloc(4096).unwrap();
    assert_eq!(big.large_entries(), (1, 0));
}

#[test]
fn failure_counting_and_current_follow_nginx() {
    let pages = &pages!();
    let pool = Pool::new(pages, ONE_PER_BLOCK).unwrap();
    assert_eq!(pool.block_size(), 4096);
    // The nginx model: blocks' failure counts and the index of `current`.
    let (mut failed, mut current): (Vec<usize>, usize) = (Vec::new(), 0);
    for n in 0..20 {
        pool.alloc(ONE_PER_BLOCK).unwrap();
        if n > 0 {
            // No block has room: a new one; every block from `current` that has a
            // successor counts a failure, and `current` passes those above 4.
            for (i, f) in failed.iter_mut().enumerate().skip(current) {
                if i + 1 == n {
                    break; // the old last block has no successor yet
                }
                if *f > 4 {
                    current = i + 1;
                }
                *f += 1;
            }
        }
        failed.push(0);
        let got = blocks(&pool);
        assert_eq!(
            got.iter().map(|b| b.failed).collect::<Vec<_>>(),
            failed,
            "after {} allocations",
            n + 1
        );
        assert_eq!(
            got.iter().position(|b| b.is_current),
            Some(current),
            "after {} allocations",
            n + 1
        );
    }
    // `current` first moves on the 8th block: the head had failed 5 times.
    assert_eq!(current, 13);
}

#[test]
fn current_moves_after_more_than_four_failures() {
    let pages = &pages!();
    let pool = Pool::new(pages, ONE_PER_BLOCK).unwrap();
    for _ in 0..7 {
        pool.alloc(ONE_PER_BLOCK).unwrap();
    }
    assert_eq!(
        blocks(&pool)[0],
        BlockInfo {
            failed: 5,
            free: 4096 - 48 - ONE_PER_BLOCK,
            is_current: true
        }
    );
    pool.alloc(ONE_PER_BLOCK).unwrap();
    let b = blocks(&pool);
    assert_eq!(
        (b[0].failed, b[0].is_current, b[1].is_current),
        (6, false, true)
    );
}

#[test]
fn search_starts_at_current_and_takes_the_first_block_with_room() {
    let pages = &pages!();
    let pool = Pool::new(pages, ONE_PER_BLOCK).unwrap();
    let first = pool.alloc(ONE_PER_BLOCK).unwrap().as_ptr() as usize;
    let second = pool.alloc(ONE_PER_BLOCK).unwrap().as_ptr() as usize;
    assert_ne!(first & !4095, second & !4095);
    // 48 bytes are left at the end of the head block: a small request goes there,
    // not to the newer block it was last bumping in.
    let p = pool.alloc(32).unwrap().as_ptr() as usize;
    assert_eq!(p & !4095, first & !4095);
    assert_eq!(p, first + ONE_PER_BLOCK);
    // Now the head has 16 left; 32 bytes go to the second block.
    let q = pool.alloc(32).unwrap().as_ptr() as usize;
    assert_eq!(q & !4095, second & !4095);
    // After `current` has moved past the head, its room is never used again.
    for _ in 0..7 {
        pool.alloc(ONE_PER_BLOCK).unwrap();
    }
    assert!(!blocks(&pool)[0].is_current);
    let r = pool.nalloc(8).unwrap().as_ptr() as usize;
    assert_ne!(r & !4095, first & !4095);
}

#[test]
fn new_blocks_have_the_first_blocks_size() {
    let pages = &pages!();
    let pool = Pool::new(pages, 10_000).unwrap();
    assert_eq!(pool.block_size(), 16384);
    for _ in 0..40 {
        pool.alloc(4000).unwrap();
    }
    assert_eq!(blocks(&pool).len(), 10);
    assert_eq!(
        pages.stats().allocated_pages,
        41,
        "10 blocks of 4 pages each, and one page of block index"
    );
}

#[test]
fn large_allocations_are_listed_and_entries_reused() {
    let pages = &pages!();
    let pool = Pool::new(pages, 1024).unwrap();
    let a = pool.alloc(5000).unwrap();
    let b = pool.alloc(70_000).unwrap();
    assert_eq!(pool.large_entries(), (2, 0));
    // SAFETY: neither is used afterwards.
    unsafe {
        assert_eq!(pool.free(a.as_ptr()), Ok(()));
        assert_eq!(pool.free(b.as_ptr()), Ok(()));
    }
    assert_eq!(pool.large_entries(), (0, 2));
    let used = pages.stats().allocated_pages;
    let c = pool.alloc(2000).unwrap();
    assert_eq!(pool.large_entries(), (1, 1), "an idle entry was reused");
    pool.alloc(3000).unwrap();
    assert_eq!(pool.large_entries(), (2, 0), "and the other one");
    pool.alloc(3000).unwrap();
    assert_eq!(
        pool.large_entries(),
        (3, 0),
        "a new entry once none is idle"
    );
    // Large blocks are pages of their own: 1 page each for 2000/3000 bytes.
    assert_eq!(pages.stats().allocated_pages, used + 3);
    // SAFETY: `c` is not used afterwards.
    assert_eq!(unsafe { pool.free(c.as_ptr()) }, Ok(()));
}

#[test]
fn free_declines_everything_but_large_starts() {
    let pages = &pages!();
    let pool = Pool::new(pages, 1024).unwrap();
    let other = Pool::new(pages, 1024).unwrap();
    let small = pool.alloc(10).unwrap().as_ptr();
    let big = pool.alloc(10_000).unwrap().as_ptr();
    let others = other.alloc(10_000).unwrap().as_ptr();
    let on_stack = 7u64;
    let heap = Box::new(7u64);
    // SAFETY: every call below is refused and frees nothing.
    unsafe {
        assert!(matches!(pool.free(small), Err(FreeError::Small { .. })));
        assert!(
            matches!(pool.free(big.add(16)), Err(FreeError::Inside { start, .. }) if start == big as usize)
        );
        assert!(matches!(
            pool.free(others),
            Err(FreeError::OtherPool { .. })
        ));
        assert!(matches!(
            pool.free(&on_stack as *const u64 as *mut u8),
            Err(FreeError::Foreign { .. })
        ));
        assert!(matches!(
            pool.free(&*heap as *const u64 as *mut u8),
            Err(FreeError::Foreign { .. })
        ));
        assert_eq!(pool.free(core::ptr::null_mut()), Err(FreeError::Null));
    }
    let cleanup = pool.cleanup_add(64).unwrap();
    // SAFETY: the record is live; freeing its data is refused.
    unsafe {
        let data = (*cleanup.as_ptr()).data.cast::<u8>();
        assert!(matches!(pool.free(data), Err(FreeError::Small { .. })));
    }
    let s = pool.stats();
    assert_eq!(
        (s.free_count, s.allocation_count),
        (0, 2),
        "nothing was freed"
    );
    // SAFETY: `big` is not used afterwards; the second free is a double free, refused.
    unsafe {
        assert_eq!(pool.free(big), Ok(()));
        assert!(pool.free(big).is_err());
    }
    assert_eq!(pool.stats().free_count, 1);
}

unsafe extern "C-unwind" fn record(data: *mut c_void) {
    // SAFETY: each test's data is a `(log, tag)` pair that outlives the pool.
    let (log, tag) = unsafe { &*data.cast::<(*const RefCell<Vec<u32>>, u32)>() };
    // SAFETY: as above.
    unsafe { (**log).borrow_mut().push(*tag) };
}

#[test]
fn cleanups_run_lifo_on_destroy_not_on_reset() {
    let pages = &pages!();
    let log = RefCell::new(Vec::new());
    let mut pool = Pool::new(pages, 256).unwrap();
    for tag in 1..=3u32 {
        let c = pool
            .cleanup_add(size_of::<(*const RefCell<Vec<u32>>, u32)>())
            .unwrap();
        // SAFETY: a fresh record with room for the pair.
        unsafe {
            (*c.as_ptr())
                .data
                .cast::<(*const RefCell<Vec<u32>>, u32)>()
                .write((&log, tag));
            (*c.as_ptr()).handler = Some(record);
        }
    }
    pool.cleanup_add(0).unwrap(); // no handler: skipped
    pool.reset();
    // Overwrite every block after the reset: the cleanup data must survive.
    while blocks(&pool).len() < 4 {
        pool.calloc(200).unwrap();
    }
    pool.reset();
    assert!(
        log.borrow().is_empty(),
        "reset keeps cleanups and does not run them"
    );
    drop(pool);
    assert_eq!(*log.borrow(), [3, 2, 1]);
}

#[test]
fn reset_frees_large_and_rewinds_small() {
    let pages = &pages!();
    let mut pool = Pool::new(pages, ONE_PER_BLOCK).unwrap();
    let firsts: Vec<usize> = (0..9)
        .map(|_| pool.alloc(ONE_PER_BLOCK).unwrap().as_ptr() as usize)
        .collect();
    pool.alloc(100_000).unwrap();
    let with_large = pages.stats().allocated_pages;
    pool.reset();
    assert_eq!(
        pages.stats().allocated_pages,
        with_large - 32,
        "the large block went back"
    );
    assert_eq!(pool.large_entries(), (0, 0));
    let b = blocks(&pool);
    assert_eq!(b.len(), 9, "blocks are kept");
    assert!(b.iter().all(|b| b.failed == 0 && b.free == 4096 - 48));
    assert!(b[0].is_current);
    let again: Vec<usize> = (0..9)
        .map(|_| pool.alloc(ONE_PER_BLOCK).unwrap().as_ptr() as usize)
        .collect();
    assert_eq!(again, firsts, "the same memory, in the same order");
    assert_eq!(blocks(&pool).len(), 9, "no new block was needed");
}

#[test]
fn destroy_gives_every_page_back() {
    let pages = &pages!();
    {
        let pool = Pool::new(pages, 1000).unwrap();
        for i in 0..50 {
            pool.alloc(i * 37 + 1).unwrap();
        }
        pool.memalign(10, 1 << 16).unwrap();
        pool.cleanup_add(10_000).unwrap();
        assert!(pages.stats().allocated_pages > 0);
    }
    assert_eq!(pages.stats().allocated_pages, 0);
    pages.check().unwrap();
}

#[test]
fn alignment_of_every_entry_point() {
    let pages = &pages!();
    let pool = Pool::new(pages, 4096).unwrap();
    for size in [1, 3, 15, 16, 17, 100, 4095, 4096, 10_000] {
        pool.nalloc(1).unwrap();
        assert_eq!(
            pool.alloc(size).unwrap().as_ptr() as usize % MP_ALIGNMENT,
            0,
            "mp_alloc({size})"
        );
        pool.nalloc(1).unwrap();
        let z = pool.calloc(size).unwrap();
        assert_eq!(z.as_ptr() as usize % MP_ALIGNMENT, 0, "mp_calloc({size})");
        // SAFETY: `size` bytes just allocated.
        let bytes = unsafe { core::slice::from_raw_parts(z.as_ptr(), size) };
        assert!(bytes.iter().all(|&b| b == 0));
    }
    // mp_nalloc packs.
    let a = pool.nalloc(3).unwrap().as_ptr() as usize;
    let b = pool.nalloc(3).unwrap().as_ptr() as usize;
    assert_eq!(b, a + 3);
    let top = if cfg!(miri) { 14 } else { 24 };
    for shift in 0..=top {
        for size in [1, 100, 5000] {
            pool.nalloc(1).unwrap();
            let p = pool.memalign(size, 1 << shift).unwrap().as_ptr() as usize;
            assert_eq!(p % (1 << shift), 0, "mp_memalign({size}, {})", 1 << shift);
        }
    }
    // Typed and Layout entry points.
    let arena = Arena::new_in(pages);
    #[repr(align(64))]
    struct A64(#[allow(dead_code)] u8);
    #[repr(align(4096))]
    struct A4k(#[allow(dead_code)] u8);
    #[repr(align(8192))]
    struct A8k(#[allow(dead_code)] u8);
    for _ in 0..3 {
        arena.alloc(1u8);
        assert_eq!(arena.alloc(A64(1)) as *mut A64 as usize % 64, 0);
        assert_eq!(arena.alloc(A4k(1)) as *mut A4k as usize % 4096, 0);
        assert_eq!(arena.alloc(A8k(1)) as *mut A8k as usize % 8192, 0);
        assert_eq!(
            arena.alloc(1u128) as *mut u128 as usize % align_of::<u128>(),
            0
        );
        assert_eq!(arena.alloc_slice_copy(&[1u64, 2]).as_ptr() as usize % 8, 0);
        for shift in 0..=13 {
            let l = core::alloc::Layout::from_size_align(24, 1 << shift).unwrap();
            assert_eq!(arena.alloc_layout(l).as_ptr() as usize % (1 << shift), 0);
        }
    }
    assert!(pool.memalign(8, 3).is_none());
    assert!(pool.memalign(8, 0).is_none());
}

#[test]
fn bad_sizes_have_defined_answers() {
    let pages = &pages!();
    assert!(Pool::new(pages, 0).is_err());
    assert!(Pool::new(pages, usize::MAX).is_err());
    let pool = Pool::new(pages, 64).unwrap();
    assert!(pool.alloc(0).is_none());
    assert!(pool.nalloc(0).is_none());
    assert!(pool.calloc(0).is_none());
    assert!(pool.alloc(usize::MAX).is_none());
    assert!(pool.alloc(isize::MAX as usize).is_none());
    assert!(pool.memalign(16, 1 << 63).is_none());
    assert!(pool.cleanup_add(usize::MAX).is_err());
    let s = pool.stats();
    assert_eq!((s.failed_count, s.allocation_count), (6, 0));
    // The pool is still fine.
    assert!(pool.alloc(10).is_some());
}

#[test]
fn out_of_memory_is_a_failure_not_a_crash() {
    let pages = &pages!(1024);
    let pool = Pool::new(pages, 4000).unwrap();
    let mut got = 0;
    while pool.alloc(4000).is_some() {
        got += 1;
        assert!(got <= 1024);
    }
    assert!(got >= 1000);
    assert!(pool.alloc(100_000).is_none());
    assert_eq!(pool.stats().failed_count, 2);
    assert_eq!(pool.stats().allocation_count, got);
}

#[test]
fn statistics_count_what_they_say() {
    let pages = &pages!();
    let mut pool = Pool::new(pages, 256).unwrap();
    pool.alloc(10).unwrap();
    pool.nalloc(7).unwrap();
    let big = pool.alloc(1000).unwrap();
    pool.memalign(300, 64).unwrap();
    let s = pool.stats();
    assert_eq!(s.allocation_count, 4);
    assert_eq!(s.total_allocated, 10 + 7 + 1000 + 300);
    assert_eq!(s.current_allocated, s.total_allocated);
    // SAFETY: not used afterwards.
    unsafe { pool.free(big.as_ptr()).unwrap() };
    let s = pool.stats();
    assert_eq!(
        (s.current_allocated, s.peak_allocated, s.free_count),
        (317, 1317, 1)
    );
    pool.cleanup_add(100).unwrap(); // bookkeeping: not counted
    assert_eq!(pool.stats().current_allocated, 317);
    pool.alloc(2).unwrap();
    pool.reset();
    let s = pool.stats();
    assert_eq!(
        (s.current_allocated, s.total_allocated, s.peak_allocated),
        (0, 1319, 1317)
    );
    assert_eq!(
        (s.allocation_count, s.free_count),
        (5, 5),
        "a reset gives back every live allocation"
    );
    assert!(pool.alloc(0).is_none());
    assert_eq!(pool.stats().failed_count, 1);
}

#[derive(Debug)]
struct Noisy(Rc<RefCell<Vec<u32>>>, u32);
impl Drop for Noisy {
    fn drop(&mut self) {
        self.0.borrow_mut().push(self.1);
    }
}

thread_local!(static COUNTED: core::cell::Cell<u32> = const { core::cell::Cell::new(0) });
struct Counted;
impl Drop for Counted {
    fn drop(&mut self) {
        COUNTED.with(|c| c.set(c.get() + 1));
    }
}

#[test]
fn arena_drops_values_on_reset_and_drop_newest_first() {
    let pages = &pages!();
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut arena = Arena::new_in(pages);
    arena.alloc(Noisy(log.clone(), 1));
    arena.alloc_slice_fill_with(2, |i| Noisy(log.clone(), 10 + i as u32));
    arena.alloc(Noisy(log.clone(), 2));
    arena.alloc_no_drop(Counted); // never dropped
    arena.alloc_with(|| [0u8; 10_000]); // large: still fine
    arena.alloc(Box::new([Noisy(log.clone(), 3)])); // dropped through its Box
    arena.reset();
    assert_eq!(*log.borrow(), [3, 2, 10, 11, 1]);
    log.borrow_mut().clear();
    arena.alloc(Noisy(log.clone(), 4));
    arena.on_destroy({
        let log = log.clone();
        move || log.borrow_mut().push(100)
    });
    drop(arena);
    assert_eq!(*log.borrow(), [100, 4], "cleanups first, then drops");
    assert_eq!(
        COUNTED.with(|c| c.get()),
        0,
        "alloc_no_drop values are never dropped"
    );
    assert_eq!(pages.stats().allocated_pages, 0);
}

#[test]
fn zero_sized_values_with_drop_are_dropped() {
    let pages = &pages!();
    thread_local!(static DROPS: core::cell::Cell<u32> = const { core::cell::Cell::new(0) });
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            DROPS.with(|d| d.set(d.get() + 1));
        }
    }
    let mut arena = Arena::new_in(pages);
    arena.alloc(Guard);
    arena.alloc_from_iter([Guard, Guard]);
    arena.reset();
    assert_eq!(DROPS.with(|d| d.get()), 3);
}

#[test]
fn a_panicking_drop_leaves_the_rest_registered() {
    let pages = &pages!();
    let log = Rc::new(RefCell::new(Vec::new()));
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("boom");
        }
    }
    let mut arena = Arena::new_in(pages);
    arena.alloc(Noisy(log.clone(), 1));
    arena.alloc(Bomb);
    arena.alloc(Noisy(log.clone(), 2));
    let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| arena.reset()));
    assert!(r.is_err());
    assert_eq!(*log.borrow(), [2]);
    arena.reset();
    assert_eq!(
        *log.borrow(),
        [2, 1],
        "the rest is dropped later, nothing twice"
    );
}

#[test]
fn padding_and_bookkeeping_are_not_counted() {
    let pages = &pages!();
    let mut arena = Arena::new_in(pages);
    arena.alloc(String::from("x")); // 24 bytes, plus a drop record (bookkeeping)
    arena.alloc(1u8);
    arena.alloc(2u64); // 7 bytes of padding first
    arena.alloc_str("abc");
    arena.alloc(7u32); // 1 byte of padding
    arena.alloc([0u8; 5000]); // large, plus a large-list entry (bookkeeping)
    let s = arena.stats();
    assert_eq!(s.allocation_count, 6);
    assert_eq!(s.current_allocated, 24 + 1 + 8 + 3 + 4 + 5000);
    for i in 0..10_000u32 {
        arena.alloc(i); // across several blocks
    }
    assert_eq!(
        arena.stats().current_allocated,
        24 + 1 + 8 + 3 + 4 + 5000 + 40_000
    );
    arena.reset();
    let s = arena.stats();
    assert_eq!(
        (s.current_allocated, s.allocation_count, s.free_count),
        (0, 10_006, 10_006)
    );
}
