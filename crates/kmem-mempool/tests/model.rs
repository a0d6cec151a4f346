//! Model-based test: random single-threaded sequences of allocations
//! (waiting and not), frees, backend failures and resizes, checked step by
//! step against a few lines of reference model of what `mm/mempool.c` does.
#![cfg(not(loom))]

use kmem_mempool::{BoxBackend, Element, FaultyBackend, Gfp, Mempool, MempoolError};
use proptest::prelude::*;

type B = FaultyBackend<BoxBackend<u32, fn() -> u32>>;

#[derive(Clone, Debug)]
enum Op {
    /// `GFP_NOWAIT` (never waits) or `GFP_KERNEL` (only issued when it cannot block).
    Alloc {
        may_wait: bool,
    },
    Free(usize),
    Failing(bool),
    Resize(usize),
    Zero,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(|may_wait| Op::Alloc { may_wait }),
        4 => any::<usize>().prop_map(Op::Free),
        2 => any::<bool>().prop_map(Op::Failing),
        1 => (0usize..12).prop_map(Op::Resize),
        1 => Just(Op::Zero),
    ]
}

/// The reference: counts only.
#[derive(Debug, Default)]
struct Model {
    min_nr: usize,
    curr_nr: usize,
    outstanding: usize,
    backend_live: usize,
    low_water: usize,
    failing: bool,
}

impl Model {
    fn wants(&self) -> bool {
        self.curr_nr < self.min_nr || (self.min_nr == 0 && self.curr_nr == 0)
    }
    /// `Some(true)`: from the backend, `Some(false)`: from the reserve, `None`: fails.
    fn alloc(&mut self) -> Option<bool> {
        if !self.failing {
            self.backend_live += 1;
            self.outstanding += 1;
            Some(true)
        } else if self.curr_nr > 0 {
            self.curr_nr -= 1;
            self.low_water = self.low_water.min(self.curr_nr);
            self.outstanding += 1;
            Some(false)
        } else {
            None
        }
    }
    fn free(&mut self) {
        self.outstanding -= 1;
        if self.wants() {
            self.curr_nr += 1;
        } else {
            self.backend_live -= 1;
        }
    }
    fn resize(&mut self, n: usize) {
        if n <= self.min_nr {
            self.min_nr = n;
            while self.curr_nr > n {
                self.curr_nr -= 1;
                self.backend_live -= 1;
            }
        } else {
            self.min_nr = n;
            while self.curr_nr < n && !self.failing {
                self.curr_nr += 1;
                self.backend_live += 1;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn pool_matches_the_model(min_nr in 0usize..6, ops in proptest::collection::vec(op(), 0..if cfg!(miri) { 40 } else { 200 })) {
        let pool: Mempool<B> = Mempool::new(min_nr, FaultyBackend::new(BoxBackend::new((|| 0u32) as fn() -> u32))).unwrap();
        let mut m = Model { min_nr, curr_nr: min_nr, backend_live: min_nr, low_water: min_nr, ..Model::default() };
        let mut held: Vec<Element<'_, B>> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc { may_wait } => {
                    // A waiting allocation is only issued when the model says it
                    // will not block (single thread: nobody would free).
                    let blocks = m.failing && m.curr_nr == 0;
                    if may_wait && !blocks {
                        let e = pool.alloc();
                        prop_assert!(m.alloc().is_some());
                        held.push(e);
                    } else {
                        let got = pool.try_alloc();
                        let want = m.alloc();
                        prop_assert_eq!(got.is_some(), want.is_some());
                        held.extend(got);
                    }
                }
                Op::Free(i) => {
                    if !held.is_empty() {
                        drop(held.swap_remove(i % held.len()));
                        m.free();
                    }
                }
                Op::Failing(f) => {
                    pool.backend().set_failing(f);
                    m.failing = f;
                }
                Op::Resize(n) => {
                    let r = pool.resize(n);
                    if n == 0 {
                        prop_assert_eq!(r, Err(MempoolError::InvalidMinNr { min_nr: 0 }));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        m.resize(n);
                    }
                }
                Op::Zero => {
                    prop_assert_eq!(pool.alloc_gfp(Gfp::NOWAIT | Gfp::ZERO).err(), Some(MempoolError::ZeroUnsupported));
                }
            }
            let s = pool.stats();
            prop_assert_eq!(
                (s.min_nr, s.curr_nr, s.outstanding, s.low_water),
                (m.min_nr, m.curr_nr, m.outstanding, m.low_water),
                "{:?}", m
            );
            prop_assert_eq!(pool.backend().live(), m.backend_live, "backend elements out");
        }
        drop(held);
        let live = pool.backend().live();
        prop_assert_eq!(live, pool.curr_nr());
        drop(pool);
    }
}
