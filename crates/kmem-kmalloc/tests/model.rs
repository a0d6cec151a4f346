//! Model-based test: random kmalloc / krealloc / kfree against a model of
//! live allocations. Checks no overlap, ksize >= size, alignment of
//! power-of-two classes, and that contents survive krealloc.

use kmem_kmalloc::*;
use kmem_page::Gfp;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Alloc(usize),
    Realloc(usize, usize),
    Free(usize),
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..=256,
        3 => 257usize..=8192,
        1 => 8193usize..=(if cfg!(miri) { 20_000 } else { 300_000 }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => size().prop_map(Op::Alloc),
        2 => (any::<usize>(), size()).prop_map(|(i, s)| Op::Realloc(i, s)),
        3 => any::<usize>().prop_map(Op::Free),
    ]
}

struct Live {
    p: *mut u8,
    size: usize,
    tag: u8,
}

fn check(l: &Live) {
    if l.size > 0 {
        // SAFETY: `size` bytes of a live allocation.
        let s = unsafe { core::slice::from_raw_parts(l.p, l.size) };
        assert!(
            s.iter().all(|&b| b == l.tag),
            "contents of {:p} changed",
            l.p
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 64 }, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn kmalloc_matches_model(ops in prop::collection::vec(op(), 1..if cfg!(miri) { 24 } else { 200 })) {
        let mut live: Vec<Live> = Vec::new();
        let mut tag = 0u8;
        for o in ops {
            tag = tag.wrapping_add(1);
            match o {
                Op::Alloc(size) => {
                    let p = kmalloc(size, Gfp::KERNEL).unwrap().as_ptr();
                    if size == 0 {
                        prop_assert_eq!(p, ZERO_SIZE_PTR);
                        continue;
                    }
                    let ks = ksize(p).unwrap();
                    prop_assert!(ks >= size);
                    if ks.is_power_of_two() {
                        prop_assert_eq!(p as usize % ks.min(1 << 22), 0);
                    }
                    for l in &live {
                        let a = ksize(l.p).unwrap();
                        prop_assert!(p as usize + ks <= l.p as usize || l.p as usize + a <= p as usize,
                            "{:p}+{} overlaps {:p}+{}", p, ks, l.p, a);
                    }
                    // SAFETY: `size` bytes of a fresh allocation.
                    unsafe { p.write_bytes(tag, size) };
                    live.push(Live { p, size, tag });
                }
                Op::Realloc(i, size) if !live.is_empty() => {
                    let i = i % live.len();
                    check(&live[i]);
                    // SAFETY: a live allocation, replaced by the result.
                    let q = unsafe { krealloc(live[i].p, size, Gfp::KERNEL) }.unwrap().as_ptr();
                    let l = live.swap_remove(i);
                    if size == 0 {
                        prop_assert_eq!(q, ZERO_SIZE_PTR);
                        continue;
                    }
                    prop_assert!(ksize(q).unwrap() >= size);
                    let kept = l.size.min(size);
                    // SAFETY: pointers from kmalloc in this test, live until their one free.
                    let s = unsafe { core::slice::from_raw_parts(q, kept) };
                    prop_assert!(s.iter().all(|&b| b == l.tag), "krealloc lost contents");
                    // SAFETY: pointers from kmalloc in this test, live until their one free.
                    unsafe { q.write_bytes(tag, size) };
                    live.push(Live { p: q, size, tag });
                }
                Op::Free(i) if !live.is_empty() => {
                    let l = live.swap_remove(i % live.len());
                    check(&l);
                    // SAFETY: pointers from kmalloc in this test, live until their one free.
                    unsafe { kfree(l.p) }.unwrap();
                }
                _ => {}
            }
        }
        for l in live {
            check(&l);
            // SAFETY: pointers from kmalloc in this test, live until their one free.
            unsafe { kfree(l.p) }.unwrap();
        }
    }
}
