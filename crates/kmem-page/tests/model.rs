//! Model-based property test: random allocate/free sequences against a simple
//! reference model. No two live blocks overlap, every block is aligned to its
//! size, counts match the model, and when everything is freed the free lists
//! are back to their initial state.
//!
//! Allocations and frees run on different per-cpu sets (chosen by the test,
//! through `alloc_kind_on`/`free_kind_on`, including cpu numbers above
//! `PCP_SETS` that wrap), and `check()` — which walks every set's lists — runs
//! after each step.

use std::collections::BTreeMap;

use kmem_page::{Gfp, PAGE_SIZE, PCP_SETS, PageKind};
use proptest::prelude::*;

mod common;

#[derive(Debug, Clone)]
enum Op {
    /// Order, `__GFP_ZERO`, cpu.
    Alloc(u32, bool, usize),
    /// Which live block, cpu.
    Free(usize, usize),
    Trim,
    Drain,
}

/// A cpu: mostly the first few sets, sometimes one that wraps around.
fn cpu() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..4, 1 => Just(PCP_SETS + 1)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..=10, any::<bool>(), cpu()).prop_map(|(o, z, c)| Op::Alloc(o.min(if o > 6 { o - 4 } else { o }), z, c)),
        4 => (any::<usize>(), cpu()).prop_map(|(i, c)| Op::Free(i, c)),
        1 => Just(Op::Trim),
        1 => Just(Op::Drain),
    ]
}

fn cases() -> u32 {
    if cfg!(miri) { 3 } else { 256 }
}

fn max_ops() -> usize {
    if cfg!(miri) { 16 } else { 300 }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn buddy_matches_model(ops in proptest::collection::vec(op(), 1..max_ops()), keep in 0usize..3) {
        let pages = common::test_pages(keep * 1024, 3 * 1024);
        // The model: live blocks by address -> (order, fill byte).
        let mut live: BTreeMap<usize, (u32, u8)> = BTreeMap::new();
        let mut fill = 1u8;
        let mut peak = 0usize;
        for op in ops {
            match op {
                Op::Alloc(order, zero, cpu) => {
                    let gfp = if zero { Gfp::KERNEL | Gfp::ZERO } else { Gfp::NOWAIT };
                    let used: usize = live.values().map(|(o, _)| 1usize << o).sum();
                    match pages.alloc_kind_on(cpu, order, gfp, PageKind::Pages) {
                        Ok(p) => {
                            let a = p.as_ptr() as usize;
                            let len = PAGE_SIZE << order;
                            prop_assert_eq!(a % len, 0, "block not aligned to its size");
                            // No overlap with any live block.
                            if let Some((&b, &(bo, _))) = live.range(..a + len).next_back() {
                                prop_assert!(b + (PAGE_SIZE << bo) <= a, "overlaps the live block at {:#x}", b);
                            }
                            let blk = kmem_page::lookup_block(a + len - 1).unwrap();
                            prop_assert_eq!(blk.addr, a);
                            prop_assert_eq!(blk.order, order);
                            // The fast lookups (regions from the page source cover
                            // their registry slot exactly) agree with the region's.
                            let head = kmem_page::lookup_fast(a + 8).expect("a slot of one page-source region");
                            prop_assert!(std::ptr::eq(head, blk.desc));
                            prop_assert!(kmem_page::lookup_head(a).is_some_and(|d| std::ptr::eq(d, blk.desc)));
                            if order > 0 {
                                prop_assert_eq!(kmem_page::lookup_fast(a + len - 1).unwrap().kind(), PageKind::Tail);
                                prop_assert!(kmem_page::lookup_head(a + len - 1).is_none());
                            }
                            // SAFETY: the block is ours, `len` bytes.
                            let bytes = unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len) };
                            if zero {
                                prop_assert!(bytes.iter().all(|&b| b == 0), "__GFP_ZERO block not zero");
                            }
                            bytes[0] = fill;
                            bytes[len - 1] = fill;
                            live.insert(a, (order, fill));
                            fill = fill.wrapping_add(1).max(1);
                        }
                        Err(e) => {
                            // Only allowed when the limit (3 regions) is reached and no
                            // free block of this order or larger exists.
                            let s = pages.stats();
                            prop_assert_eq!(s.regions, 3, "failed ({}) before the limit; used {}", e, used);
                            prop_assert!(s.free_per_order[order as usize..].iter().all(|&n| n == 0), "failed although a block was free");
                        }
                    }
                }
                Op::Free(i, cpu) => {
                    if live.is_empty() { continue; }
                    let (&a, &(o, f)) = live.iter().nth(i % live.len()).unwrap();
                    let len = PAGE_SIZE << o;
                    // SAFETY: a live block of ours.
                    let bytes = unsafe { std::slice::from_raw_parts(a as *const u8, len) };
                    prop_assert_eq!(bytes[0], f, "block contents changed while live");
                    prop_assert_eq!(bytes[len - 1], f);
                    live.remove(&a);
                    // SAFETY: a live block of `pages` of order `o`.
                    unsafe { pages.free_kind_on(cpu, std::ptr::NonNull::new(a as *mut u8).unwrap(), o, PageKind::Pages) }.unwrap();
                    prop_assert!(kmem_page::lookup_head(a).is_none(), "a freed block still heads an allocation");
                    // (None once the block's region went back to the source.)
                    prop_assert!(kmem_page::lookup_fast(a).is_none_or(|d| !d.kind().is_allocated()));
                }
                Op::Trim => { pages.trim(0); prop_assert_eq!(pages.stats().cached_pages, 0); }
                Op::Drain => {
                    let cached = pages.stats().cached_pages;
                    prop_assert_eq!(pages.drain(), cached);
                    prop_assert_eq!(pages.stats().cached_pages, 0);
                }
            }
            pages.check().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let s = pages.stats();
            let model_pages: usize = live.values().map(|(o, _)| 1usize << o).sum();
            prop_assert_eq!(s.allocated_pages, model_pages);
            prop_assert_eq!(s.free_pages + s.cached_pages + s.allocated_pages, s.managed_pages);
            let ps = pages.pool_stats();
            prop_assert_eq!(ps.current_allocated, model_pages * PAGE_SIZE);
            prop_assert_eq!(ps.allocation_count - ps.free_count, live.len());
            // The peak counts pages out of the buddy lists: handed out or cached.
            peak = peak.max(model_pages + s.cached_pages);
            prop_assert_eq!(ps.peak_allocated, peak * PAGE_SIZE);
        }
        for (&a, &(o, _)) in &live {
            // SAFETY: live blocks of `pages`.
            unsafe { pages.free_raw(std::ptr::NonNull::new(a as *mut u8).unwrap(), o) }.unwrap();
        }
        // Back to the initial state once the per-cpu lists are drained: every
        // region is one free order-10 block (or was given back to the source).
        pages.drain();
        pages.check().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let s = pages.stats();
        prop_assert_eq!(s.allocated_pages, 0);
        prop_assert_eq!(&s.free_per_order[..10], &[0; 10][..]);
        prop_assert_eq!(s.free_per_order[10], s.regions);
        prop_assert!(s.free_pages <= keep * 1024 + 1024, "watermark not honoured: {} free", s.free_pages);
        pages.trim(0);
        prop_assert_eq!(pages.stats().regions, 0);
        prop_assert_eq!(pages.source().live_bytes(), 0);
    }
}
