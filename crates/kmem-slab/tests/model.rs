//! Model-based property test: random alloc / free / shrink / reap sequences
//! against a reference model (the set of live objects). Checks no overlap,
//! alignment, object contents, and that slabinfo's counts match the model.
// Every unsafe block here frees or touches an object the test itself allocated
// from the cache it frees it to; the safety argument is the same throughout.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::collections::BTreeMap;
use std::ptr::NonNull;

use kmem_page::{Config, Gfp, PageAllocator};
use kmem_platform::TestPlatform;
use kmem_slab::{KmemCache, SlabFlags};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Alloc,
    Free(usize),
    Shrink,
    Reap,
    FreeFromOtherThread(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Alloc),
        4 => any::<usize>().prop_map(Op::Free),
        1 => Just(Op::Shrink),
        1 => Just(Op::Reap),
        1 => any::<usize>().prop_map(Op::FreeFromOtherThread),
    ]
}

fn cases() -> u32 {
    if cfg!(miri) { 2 } else { 64 }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn cache_matches_model(
        size in prop_oneof![Just(8usize), Just(24), Just(64), Just(200), Just(1000), Just(5000)],
        align_pow in 0u32..8,
        hw in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 20 } else { 400 }),
    ) {
        let pages: &'static PageAllocator<TestPlatform> = Box::leak(Box::new(PageAllocator::with_config(
            TestPlatform::new(),
            Config { keep_free_pages: 0, max_pages: usize::MAX },
        )));
        let align = 1usize << (align_pow + 3);
        let flags = if hw { SlabFlags::HWCACHE_ALIGN } else { SlabFlags::empty() };
        let c = KmemCache::builder("model", size).align(align).flags(flags).pages(pages).create().unwrap();
        let g = c.geometry();
        // The model: live objects by address, with the tag written into them.
        let mut live: BTreeMap<usize, u64> = BTreeMap::new();
        let mut tag = 0u64;
        // The statistics' model: calls that succeeded.
        let (mut allocs, mut frees) = (0u64, 0u64);
        for op in ops {
            match op {
                Op::Alloc => {
                    let p = c.alloc(Gfp::KERNEL).unwrap().as_ptr() as usize;
                    prop_assert_eq!(p % g.align, 0);
                    prop_assert_eq!(p % align, 0);
                    // No overlap with any live object.
                    if let Some((&a, _)) = live.range(..=p).next_back() {
                        prop_assert!(a + g.size <= p, "overlap {:#x} {:#x}", a, p);
                    }
                    if let Some((&b, _)) = live.range(p + 1..).next() {
                        prop_assert!(p + g.size <= b, "overlap {:#x} {:#x}", p, b);
                    }
                    tag += 1;
                    unsafe {
                        (p as *mut u64).write(tag);
                        if size >= 16 {
                            ((p + size - 8) as *mut u64).write(!tag);
                        }
                    }
                    live.insert(p, tag);
                    allocs += 1;
                }
                Op::Free(i) | Op::FreeFromOtherThread(i) if !live.is_empty() => {
                    let (&p, &t) = live.iter().nth(i % live.len()).unwrap();
                    unsafe {
                        prop_assert_eq!((p as *const u64).read(), t);
                        if size >= 16 {
                            prop_assert_eq!(((p + size - 8) as *const u64).read(), !t);
                        }
                    }
                    live.remove(&p);
                    frees += 1;
                    let q = NonNull::new(p as *mut u8).unwrap();
                    if matches!(op, Op::FreeFromOtherThread(_)) {
                        let qa = q.as_ptr() as usize;
                        std::thread::scope(|s| { s.spawn(|| unsafe { c.free(NonNull::new(qa as *mut u8).unwrap()) }.unwrap()); });
                    } else {
                        unsafe { c.free(q) }.unwrap();
                    }
                }
                Op::Free(_) | Op::FreeFromOtherThread(_) => {}
                Op::Shrink => {
                    c.shrink();
                    let i = c.info();
                    // After a shrink nothing sits in arrays and no slab is free:
                    // active objects are exactly the model's.
                    prop_assert_eq!(i.active_objs, live.len());
                    prop_assert_eq!(i.num_slabs, i.active_slabs);
                    prop_assert!(i.num_slabs >= live.len().div_ceil(g.num));
                    prop_assert!(i.num_slabs <= live.len());
                }
                Op::Reap => {
                    kmem_slab::reap();
                }
            }
            let i = c.info();
            prop_assert_eq!(i.num_objs, i.num_slabs * g.num);
            prop_assert!(i.active_objs >= live.len());
            prop_assert!(i.active_slabs <= i.num_slabs);
            prop_assert_eq!((i.objsize, i.objperslab, i.pagesperslab), (g.size, g.num, 1 << g.order));
            c.check().map_err(TestCaseError::fail)?;
            // Every thread that touched the cache has exited or is this one:
            // the summed cpustat is exact.
            let st = c.stats();
            prop_assert_eq!((st.allocs(), st.frees()), (allocs, frees));
            let ps = c.pool_stats();
            prop_assert_eq!(ps.current_allocated, live.len() * size);
            prop_assert!(ps.peak_allocated >= ps.current_allocated);
            prop_assert!(st.high_mark >= i.active_objs, "high mark below active objects");
        }
        for &p in live.keys() {
            unsafe { c.free(NonNull::new(p as *mut u8).unwrap()) }.unwrap();
        }
        c.shrink();
        prop_assert_eq!(c.info().active_objs, 0);
        prop_assert_eq!(c.info().num_slabs, 0);
        drop(c);
        prop_assert_eq!(pages.stats().allocated_pages, 0);
    }
}
