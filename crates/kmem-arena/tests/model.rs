//! The pool against a reference model of nginx's rules: a property test.
//!
//! The model predicts, for every small allocation, which block and which
//! offset it lands at (first fit from `current`, failure counting, new
//! blocks), keeps the large list (live and idle entries), and keeps the
//! statistics by their definitions. After every operation the pool must agree
//! exactly, and no two live allocations may overlap (each is filled with its
//! own byte and checked).

use kmem_arena::{FreeError, Pool};
use kmem_page::{Config, PageAllocator};
use kmem_platform::TestPlatform;
use proptest::prelude::*;

const HEADER: usize = 48; // block header (`NODE_SIZE`)
const ENTRY: (usize, usize) = (48, 8); // a large-list entry: size, align

#[derive(Clone, Debug)]
enum Op {
    /// `kind`: 0 mp_alloc, 1 mp_nalloc, 2 mp_memalign(1 << shift)
    Alloc {
        size: usize,
        kind: u8,
        shift: u32,
    },
    FreeLarge(usize),
    FreeSmall(usize),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![6 => 1usize..200, 3 => 200usize..4200, 1 => 4200usize..40_000];
    prop_oneof![
        10 => (size, 0u8..3, 0u32..13).prop_map(|(size, kind, shift)| Op::Alloc { size, kind, shift }),
        2 => any::<usize>().prop_map(Op::FreeLarge),
        1 => any::<usize>().prop_map(Op::FreeSmall),
        1 => Just(Op::Reset),
    ]
}

#[derive(Default)]
struct Model {
    block_bytes: usize,
    max: usize,
    /// (cursor offset, failed) per block.
    blocks: Vec<(usize, usize)>,
    current: usize,
    live_entries: usize,
    idle_entries: usize,
    // statistics
    total: usize,
    cur: usize,
    peak: usize,
    count: usize,
    frees: usize,
    failed: usize,
}

impl Model {
    fn is_small(&self, size: usize, align: usize) -> bool {
        size <= self.max
            && (align <= 16
                || (align <= 4096 && HEADER.next_multiple_of(align) + size <= self.block_bytes))
    }

    /// Where a small allocation goes: (block, offset).
    fn place(&mut self, size: usize, align: usize) -> (usize, usize) {
        if self.blocks.is_empty() {
            self.blocks.push((HEADER, 0));
        }
        let fit = |last: usize| {
            let off = last.next_multiple_of(align);
            (off + size <= self.block_bytes).then_some(off)
        };
        for i in self.current..self.blocks.len() {
            if let Some(off) = fit(self.blocks[i].0) {
                self.blocks[i].0 = off + size;
                return (i, off);
            }
        }
        let n = self.blocks.len();
        for i in self.current..n - 1 {
            if self.blocks[i].1 > 4 {
                self.current = i + 1;
            }
            self.blocks[i].1 += 1;
        }
        let off = fit(HEADER).expect("a small request fits a fresh block");
        self.blocks.push((off + size, 0));
        (n, off)
    }

    fn count(&mut self, size: usize) {
        self.total += size;
        self.cur += size;
        self.peak = self.peak.max(self.cur);
        self.count += 1;
    }
}

struct Live {
    ptr: *mut u8,
    size: usize,
    fill: u8,
    large: bool,
}

fn check_contents(live: &[Live]) {
    for a in live {
        // SAFETY: a live allocation of `size` bytes, filled when made.
        let bytes = unsafe { core::slice::from_raw_parts(a.ptr, a.size) };
        assert!(
            bytes.iter().all(|&b| b == a.fill),
            "an allocation was overwritten"
        );
    }
}

fn run(pool_size: usize, ops: Vec<Op>) {
    let pages = &PageAllocator::with_config(
        TestPlatform::new(),
        Config {
            keep_free_pages: 0,
            ..Config::DEFAULT
        },
    );
    let mut pool = Pool::new(pages, pool_size).unwrap();
    let mut m = Model {
        block_bytes: pool.block_size(),
        max: pool.max(),
        ..Model::default()
    };
    let mut bases: Vec<usize> = Vec::new();
    let mut live: Vec<Live> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Alloc { size, kind, shift } => {
                let align = match kind {
                    0 => 16,
                    1 => 1,
                    _ => 1 << shift,
                };
                let p = match kind {
                    0 => pool.alloc(size),
                    1 => pool.nalloc(size),
                    _ => pool.memalign(size, align),
                }
                .expect("no memory limit in this test")
                .as_ptr();
                assert_eq!(p as usize % align, 0);
                let large = !m.is_small(size, align);
                if large {
                    if m.idle_entries > 0 {
                        m.idle_entries -= 1;
                    } else {
                        m.place(ENTRY.0, ENTRY.1);
                    }
                    m.live_entries += 1;
                    assert!(
                        !bases
                            .iter()
                            .any(|&b| (b..b + m.block_bytes).contains(&(p as usize)))
                    );
                } else {
                    let (block, off) = m.place(size, align);
                    let base = p as usize - off;
                    if block == bases.len() {
                        bases.push(base);
                    }
                    assert_eq!(
                        base, bases[block],
                        "step {step}: {size} bytes went to the wrong block"
                    );
                }
                m.count(size);
                let fill = (step % 251) as u8 + 1;
                // SAFETY: `size` bytes just handed out.
                unsafe { core::ptr::write_bytes(p, fill, size) };
                live.push(Live {
                    ptr: p,
                    size,
                    fill,
                    large,
                });
            }
            Op::FreeLarge(i) => {
                let larges: Vec<usize> = (0..live.len()).filter(|&j| live[j].large).collect();
                if larges.is_empty() {
                    continue;
                }
                let j = larges[i % larges.len()];
                let a = live.swap_remove(j);
                // SAFETY: `a` is dropped from `live`: nothing uses it any more.
                assert_eq!(unsafe { pool.free(a.ptr) }, Ok(()));
                m.cur -= a.size;
                m.frees += 1;
                m.live_entries -= 1;
                m.idle_entries += 1;
            }
            Op::FreeSmall(i) => {
                let smalls: Vec<usize> = (0..live.len()).filter(|&j| !live[j].large).collect();
                if smalls.is_empty() {
                    continue;
                }
                let a = &live[smalls[i % smalls.len()]];
                // SAFETY: refused: nothing is freed.
                let r = unsafe { pool.free(a.ptr) };
                assert!(matches!(r, Err(FreeError::Small { .. })));
            }
            Op::Reset => {
                check_contents(&live);
                live.clear();
                pool.reset();
                m.cur = 0;
                m.frees = m.count;
                m.live_entries = 0;
                m.idle_entries = 0;
                m.current = 0;
                for b in &mut m.blocks {
                    *b = (HEADER, 0);
                }
            }
        }
        let s = pool.stats();
        assert_eq!(
            (
                s.total_allocated,
                s.current_allocated,
                s.peak_allocated,
                s.allocation_count,
                s.free_count,
                s.failed_count
            ),
            (m.total, m.cur, m.peak, m.count, m.frees, m.failed),
            "statistics after step {step}"
        );
        let mut got = Vec::new();
        pool.for_each_block(|b| got.push((m.block_bytes - b.free, b.failed, b.is_current)));
        let want: Vec<_> = m
            .blocks
            .iter()
            .enumerate()
            .map(|(i, &(last, f))| (last, f, i == m.current))
            .collect();
        assert_eq!(got, want, "blocks after step {step}");
        assert_eq!(
            pool.large_entries(),
            (m.live_entries, m.idle_entries),
            "large list after step {step}"
        );
    }
    check_contents(&live);
    drop(pool);
    assert_eq!(
        pages.stats().allocated_pages,
        0,
        "destroy gives every page back"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn pool_matches_the_nginx_model(
        pool_size in prop_oneof![Just(100usize), Just(1000), Just(4000), Just(8000)],
        ops in prop::collection::vec(op(), 1..if cfg!(miri) { 25 } else { 300 }),
    ) {
        run(pool_size, ops);
    }
}
