//! `free_tagged` / `tagged_object_size`: the one-lookup free that kmalloc's
//! `kfree` uses, for objects on a slab's first page and on its later pages.

use kmem_page::Gfp;
use kmem_slab::{KmemCache, free_tagged, tagged_object_size};

#[test]
fn objects_on_every_page_of_a_multi_page_slab() {
    // 3000-byte objects: SLAB's order rule gives 4-page slabs, so most
    // objects start on a tail page (where `lookup_head` says nothing).
    let c = KmemCache::builder("tagged-3000", 3000)
        .tag(0x51)
        .create()
        .unwrap();
    assert!(c.geometry().order > 0, "{:?}", c.geometry());
    let objs: Vec<_> = (0..40).map(|_| c.alloc(Gfp::KERNEL).unwrap()).collect();
    let mut on_tail = 0;
    for &p in &objs {
        let addr = p.as_ptr() as usize;
        let b = kmem_page::lookup_block(addr).unwrap();
        if kmem_page::lookup_head(addr).is_none() {
            on_tail += 1;
        }
        assert_eq!(tagged_object_size(b.desc, 0x51), Some(3000));
        assert_eq!(tagged_object_size(b.desc, 0x52), None);
    }
    assert!(on_tail > 0, "some objects start on a tail page");
    for &p in &objs {
        let b = kmem_page::lookup_block(p.as_ptr() as usize).unwrap();
        // SAFETY: a live object of `c`, freed once.
        assert!(unsafe { free_tagged(p, b.desc, 0x51) }.unwrap().is_ok());
    }
    let (st, reports) = kmem_platform::diag::capture(|| {
        let p = objs[0];
        let b = kmem_page::lookup_block(p.as_ptr() as usize).unwrap();
        // SAFETY: a double free: refused, nothing changes.
        unsafe { free_tagged(p, b.desc, 0x51) }
    });
    assert!(st.unwrap().is_err());
    assert!(
        reports.iter().any(|r| r.contains("double free")),
        "{reports:?}"
    );
    c.shrink(); // objects sitting in array caches count as active until drained
    assert_eq!(c.active_objects(), 0);
}

#[test]
fn interior_pointers_and_other_tags_are_refused() {
    let c = KmemCache::builder("tagged-64", 64)
        .tag(0x77)
        .create()
        .unwrap();
    let p = c.alloc(Gfp::KERNEL).unwrap();
    let addr = p.as_ptr() as usize;
    let head = kmem_page::lookup_head(addr).unwrap();
    // SAFETY: nothing is freed: the tag does not match.
    assert!(unsafe { free_tagged(p, head, 0x78) }.is_none());
    // SAFETY: refused: not the start of an object.
    let (r, reports) = kmem_platform::diag::capture(|| unsafe {
        free_tagged(
            core::ptr::NonNull::new_unchecked((addr + 8) as *mut u8),
            head,
            0x77,
        )
    });
    assert!(r.unwrap().is_err());
    assert!(
        reports.iter().any(|r| r.contains("tagged-64")),
        "{reports:?}"
    );
    // SAFETY: the real object, once.
    assert!(unsafe { free_tagged(p, head, 0x77) }.unwrap().is_ok());
}
