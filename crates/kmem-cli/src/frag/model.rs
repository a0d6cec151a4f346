//! Property tests: every algorithm against a reference model, the set of
//! live intervals. The model checks that blocks never overlap and stay
//! inside the heap, that free bytes and the largest satisfiable request are
//! what they claim, that first, best and worst fit pick exactly the gap their
//! policy names, that buddy fails only when no aligned free block of the
//! order exists, and that freeing everything restores the empty heap.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::buddy::{Buddy, order_for};
use super::freelist::{Fit, FreeList};
use super::heap::{Block, GRANULE, Heap, granules};
use super::slab::Slab;

/// Live blocks, offset → block.
#[derive(Default)]
struct Model {
    live: BTreeMap<u64, Block>,
}

impl Model {
    /// The free gaps `[start, end)` of `[0, cap)`, in address order.
    fn gaps(&self, cap: u64) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        let mut at = 0;
        for b in self.live.values() {
            if b.offset > at {
                v.push((at, b.offset));
            }
            at = b.end();
        }
        if at < cap {
            v.push((at, cap));
        }
        v
    }

    fn add(&mut self, b: Block, cap: u64) {
        assert!(
            b.len > 0 && b.end() <= cap,
            "{b:?} outside the heap of {cap}"
        );
        assert_eq!(b.offset % GRANULE, 0, "{b:?} misaligned");
        if let Some((_, p)) = self.live.range(..b.offset).next_back() {
            assert!(p.end() <= b.offset, "{b:?} overlaps {p:?}");
        }
        if let Some((_, n)) = self.live.range(b.offset..).next() {
            assert!(b.end() <= n.offset, "{b:?} overlaps {n:?}");
        }
        self.live.insert(b.offset, b);
    }

    fn allocated(&self) -> u64 {
        self.live.values().map(|b| b.len).sum()
    }
}

/// The largest aligned block of `GRANULE << k` bytes inside a gap.
fn largest_aligned(gaps: &[(u64, u64)]) -> u64 {
    gaps.iter()
        .filter_map(|&(a, b)| {
            (0..40)
                .rev()
                .map(|k| GRANULE << k)
                .find(|&l| a.next_multiple_of(l) + l <= b)
        })
        .max()
        .unwrap_or(0)
}

#[derive(Clone, Debug)]
enum Step {
    Alloc(u64),
    Free(usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let size = prop_oneof![
        6 => 1u64..=300,
        3 => 1u64..=5000,
        1 => 1u64..=70_000,
    ];
    let step = prop_oneof![
        3 => size.prop_map(Step::Alloc),
        2 => any::<usize>().prop_map(Step::Free),
    ];
    proptest::collection::vec(step, 1..if cfg!(miri) { 20 } else { 250 })
}

/// Runs `steps` on `h`, checking it against the model after every step;
/// `policy(model, size, result)` checks the placement.
fn check<H: Heap + Clone>(
    mut h: H,
    steps: &[Step],
    policy: impl Fn(&Model, u64, Option<Block>),
) -> Result<(), TestCaseError> {
    let cap = h.capacity();
    let empty_largest = h.largest_request();
    let mut m = Model::default();
    let mut order: Vec<Block> = Vec::new();
    for step in steps {
        match *step {
            Step::Alloc(size) => {
                let got = h.alloc(size);
                policy(&m, size, got);
                if let Some(b) = got {
                    prop_assert!(b.len >= size);
                    m.add(b, cap);
                    order.push(b);
                }
            }
            Step::Free(i) => {
                if !order.is_empty() {
                    let b = order.swap_remove(i % order.len());
                    m.live.remove(&b.offset);
                    h.free(b);
                }
            }
        }
        prop_assert_eq!(h.free_bytes(), cap - m.allocated());
        // The largest request succeeds, and one byte more does not.
        let largest = h.largest_request();
        if largest > 0 {
            prop_assert!(
                h.clone().alloc(largest).is_some(),
                "largest {largest} fails"
            );
        }
        prop_assert!(
            h.clone().alloc(largest + 1).is_none(),
            "{} succeeds",
            largest + 1
        );
    }
    for b in order {
        h.free(b);
    }
    prop_assert_eq!(h.free_bytes(), cap);
    prop_assert_eq!(h.largest_request(), empty_largest);
    Ok(())
}

/// The gap a free-list policy must pick for `need` bytes.
fn expected_gap(fit: Fit, gaps: &[(u64, u64)], need: u64) -> Option<u64> {
    let fitting = gaps.iter().filter(|&&(a, b)| b - a >= need);
    match fit {
        Fit::First => fitting.map(|&(a, _)| a).next(),
        // min_by_key / max_by_key: the first / last of equals, so negate the
        // address for worst fit to get the lowest among equals.
        Fit::Best => fitting.min_by_key(|&&(a, b)| (b - a, a)).map(|&(a, _)| a),
        Fit::Worst => fitting
            .max_by_key(|&&(a, b)| (b - a, u64::MAX - a))
            .map(|&(a, _)| a),
    }
}

fn heaps() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(4096u64),
        Just(3 * 4096),
        Just(16 * 4096),
        Just(21 * 4096)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 96 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn free_lists_match_the_model(cap in heaps(), steps in steps()) {
        for fit in [Fit::First, Fit::Best, Fit::Worst] {
            check(FreeList::new(fit, cap), &steps, |m, size, got| {
                let want = expected_gap(fit, &m.gaps(cap), granules(size));
                assert_eq!(got.map(|b| b.offset), want, "{fit:?} of {size}");
                if let Some(b) = got {
                    assert_eq!(b.len, granules(size));
                }
            })?;
        }
    }

    #[test]
    fn buddy_matches_the_model(cap in heaps(), steps in steps()) {
        check(Buddy::new(cap), &steps, |m, size, got| {
            let len = GRANULE << order_for(size);
            let possible = largest_aligned(&m.gaps(cap)) >= len;
            assert_eq!(got.is_some(), possible, "buddy alloc of {size}");
            if let Some(b) = got {
                assert_eq!(b.len, len);
                assert_eq!(b.offset % len, 0);
            }
        })?;
    }

    #[test]
    fn slab_matches_the_model(cap in heaps(), steps in steps()) {
        check(Slab::new(cap), &steps, |m, size, got| {
            if let Some(b) = got {
                match super::slab::class_for(size) {
                    Some(c) => assert_eq!(b.len, super::slab::CLASSES[c]),
                    None => {
                        assert_eq!(b.len, size.next_multiple_of(4096));
                        assert_eq!(b.offset % 4096, 0);
                    }
                }
            } else if super::slab::class_for(size).is_none() {
                // A large request fails only when no run of free pages holds it.
                let pages = size.div_ceil(4096) * 4096;
                let fits = m.gaps(cap).iter().any(|&(a, b)| {
                    a.next_multiple_of(4096) + pages <= b
                });
                assert!(!fits, "large alloc of {size} failed with room");
            }
        })?;
    }
}
