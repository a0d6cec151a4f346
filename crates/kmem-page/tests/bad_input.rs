//! Every kind of bad input to the page layer is refused with an error and changes nothing.

use std::ptr::NonNull;

use kmem_page::{Gfp, PageAllocator, PageError, PageKind};
use kmem_platform::TestPlatform;

mod common;
use common::fresh;

/// Runs `f` and checks that the allocator's state is the same before and after.
fn unchanged<S: kmem_platform::PageSource>(pages: &PageAllocator<S>, f: impl FnOnce()) {
    let before = pages.stats();
    f();
    let after = pages.stats();
    assert_eq!(before.free_per_order, after.free_per_order);
    assert_eq!(before.allocated_pages, after.allocated_pages);
    assert_eq!(before.regions, after.regions);
    pages.check().unwrap();
}

#[test]
fn address_kmem_never_handed_out() {
    let pages = fresh();
    let _keep = pages.alloc(0, Gfp::KERNEL).unwrap();
    let mut on_stack = [0u8; 8192];
    let p = NonNull::new(on_stack.as_mut_ptr()).unwrap();
    unchanged(&pages, || {
        // SAFETY: the call is refused before anything is touched.
        let e = unsafe { pages.free_raw(p, 0) }.unwrap_err();
        assert_eq!(
            e,
            PageError::NotKmem {
                addr: p.as_ptr() as usize
            }
        );
        assert!(e.to_string().contains("not memory kmem handed out"));
    });
}

#[test]
fn wrong_order() {
    let pages = fresh();
    let p = pages.alloc_raw(3, Gfp::KERNEL).unwrap();
    unchanged(&pages, || {
        for wrong in [0, 2, 4, 10] {
            // SAFETY: refused.
            let e = unsafe { pages.free_raw(p, wrong) }.unwrap_err();
            assert_eq!(
                e,
                PageError::WrongOrder {
                    addr: p.as_ptr() as usize,
                    given: wrong,
                    actual: 3
                }
            );
        }
    });
    // SAFETY: the right order frees it.
    unsafe { pages.free_raw(p, 3).unwrap() };
}

#[test]
fn double_free() {
    let pages = fresh();
    let keep = pages.alloc_raw(0, Gfp::KERNEL).unwrap();
    let p = pages.alloc_raw(2, Gfp::KERNEL).unwrap();
    // SAFETY: first free is right.
    unsafe { pages.free_raw(p, 2).unwrap() };
    unchanged(&pages, || {
        // SAFETY: refused.
        let e = unsafe { pages.free_raw(p, 2) }.unwrap_err();
        assert_eq!(
            e,
            PageError::NotAllocated {
                addr: p.as_ptr() as usize
            }
        );
        assert!(e.to_string().contains("double free"));
    });
    // SAFETY: `keep` is live.
    unsafe { pages.free_raw(keep, 0).unwrap() };
}

#[test]
fn order_above_maximum() {
    let pages = fresh();
    assert_eq!(
        pages.alloc_raw(11, Gfp::KERNEL).unwrap_err(),
        PageError::OrderTooLarge { order: 11 }
    );
    assert_eq!(
        pages.alloc(u32::MAX, Gfp::KERNEL).unwrap_err(),
        PageError::OrderTooLarge { order: u32::MAX }
    );
    let p = pages.alloc_raw(0, Gfp::KERNEL).unwrap();
    unchanged(&pages, || {
        // SAFETY: refused.
        let e = unsafe { pages.free_raw(p, 11) }.unwrap_err();
        assert_eq!(e, PageError::OrderTooLarge { order: 11 });
        assert!(e.to_string().contains("MAX_PAGE_ORDER"));
    });
    // SAFETY: live block.
    unsafe { pages.free_raw(p, 0).unwrap() };
}

#[test]
fn interior_and_misaligned_pointers() {
    let pages = fresh();
    let p = pages.alloc_raw(2, Gfp::KERNEL).unwrap();
    let base = p.as_ptr() as usize;
    unchanged(&pages, || {
        let inner = NonNull::new((base + 4096) as *mut u8).unwrap();
        // SAFETY: refused.
        let r1 = unsafe { pages.free_raw(inner, 2) };
        assert_eq!(
            r1.unwrap_err(),
            PageError::NotHead {
                addr: base + 4096,
                head: base
            }
        );
        let odd = NonNull::new((base + 10) as *mut u8).unwrap();
        // SAFETY: refused.
        let r2 = unsafe { pages.free_raw(odd, 2) };
        assert_eq!(
            r2.unwrap_err(),
            PageError::NotHead {
                addr: base + 10,
                head: base
            }
        );
    });
    // A page inside a free block is not allocated.
    // SAFETY: live block.
    unsafe { pages.free_raw(p, 2).unwrap() };
    let q = pages.alloc_raw(0, Gfp::KERNEL).unwrap();
    let free_inside = NonNull::new((q.as_ptr() as usize + 3 * 4096) as *mut u8).unwrap();
    unchanged(&pages, || {
        // SAFETY: refused.
        let e = unsafe { pages.free_raw(free_inside, 0) }.unwrap_err();
        assert!(matches!(e, PageError::NotAllocated { .. }), "{e:?}");
    });
    // SAFETY: live block.
    unsafe { pages.free_raw(q, 0).unwrap() };
}

#[test]
fn block_of_another_layer_or_allocator() {
    let a = fresh();
    let b = fresh();
    let slab = a.alloc_kind(1, Gfp::KERNEL, PageKind::Slab).unwrap();
    unchanged(&a, || {
        // SAFETY: refused.
        let e = unsafe { a.free_raw(slab, 1) }.unwrap_err();
        assert_eq!(
            e,
            PageError::WrongKind {
                addr: slab.as_ptr() as usize,
                kind: PageKind::Slab
            }
        );
    });
    let pb = b.alloc_raw(0, Gfp::KERNEL).unwrap();
    unchanged(&a, || {
        // SAFETY: refused.
        let e = unsafe { a.free_raw(pb, 0) }.unwrap_err();
        assert_eq!(
            e,
            PageError::WrongAllocator {
                addr: pb.as_ptr() as usize
            }
        );
    });
    // SAFETY: live blocks, right owners.
    unsafe {
        a.free_kind(slab, 1, PageKind::Slab).unwrap();
        b.free_raw(pb, 0).unwrap();
    }
}

#[test]
fn huge_bad_input() {
    let pages = fresh();
    let h = pages.alloc_huge(5 << 20, Gfp::KERNEL).unwrap();
    let base = h.as_ptr() as usize;
    // SAFETY: refused: freeing a huge mapping as pages.
    let r3 = unsafe { pages.free_raw(h, 10) };
    assert!(matches!(r3, Err(PageError::WrongKind { .. })));
    let inner = NonNull::new((base + 8192) as *mut u8).unwrap();
    // SAFETY: refused.
    let r4 = unsafe { pages.free_huge(inner) };
    assert_eq!(
        r4.unwrap_err(),
        PageError::NotHead {
            addr: base + 8192,
            head: base
        }
    );
    let small = pages.alloc_raw(0, Gfp::KERNEL).unwrap();
    // SAFETY: refused: a buddy block is not huge.
    let r5 = unsafe { pages.free_huge(small) };
    assert!(matches!(r5, Err(PageError::WrongKind { .. })));
    // SAFETY: right calls.
    unsafe {
        assert_eq!(pages.free_huge(h).unwrap(), 5 << 20);
        assert!(matches!(pages.free_huge(h), Err(PageError::NotKmem { .. })));
        pages.free_raw(small, 0).unwrap();
    }
    assert_eq!(
        pages.alloc_huge(usize::MAX, Gfp::KERNEL).unwrap_err(),
        PageError::TooLarge { size: usize::MAX }
    );
}

#[test]
fn out_of_memory_is_an_error_and_recoverable() {
    let pages = common::test_pages(0, 1024); // one region at the most
    let all = pages.alloc_raw(10, Gfp::KERNEL).unwrap();
    assert_eq!(
        pages.alloc_raw(0, Gfp::ATOMIC).unwrap_err(),
        PageError::NoMemory { order: 0 }
    );
    assert_eq!(pages.stats().failures, 1);
    // SAFETY: live block.
    unsafe { pages.free_raw(all, 10).unwrap() };
    assert!(pages.alloc(0, Gfp::KERNEL).is_ok());
    // The source failing is the same as the limit.
    let p2 = PageAllocator::new(TestPlatform::new());
    p2.source().fail_next(1);
    assert!(p2.alloc(0, Gfp::NOWAIT).is_err());
    assert!(p2.alloc(0, Gfp::NOWAIT).is_ok());
}
