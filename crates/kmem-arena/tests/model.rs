//! The pool against a reference model of nginx's rules: a property test.
//!
//! The model predicts, for every small allocation, which block and which
//! offset it lands at (first fit from `current`, failure counting, new
//! blocks), keeps the large list (live and idle entries), and keeps the
//! statistics by their definitions. After every operation the pool must agree
//! exactly, and no two live allocations may overlap (each is filled with its
//! own byte and checked).

use core::alloc::Layout;

use kmem_arena::{Arena, FreeError, Pool};
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

/// What the typed `Arena` is asked for: values of fixed types (its
/// `alloc_fixed` hot path), slices of run-time length (`try_bump`), raw
/// layouts, and resets.
#[derive(Clone, Debug)]
enum TOp {
    /// A value of type number `ty` (see `put_value`).
    Value(u8),
    /// `alloc_slice_copy` of `len` bytes (`wide`: `len` `u32`s).
    Slice {
        len: usize,
        wide: bool,
    },
    /// `alloc_layout(size, 1 << shift)`.
    Layout {
        size: usize,
        shift: u32,
    },
    Reset,
}

fn top() -> impl Strategy<Value = TOp> {
    prop_oneof![
        8 => (0u8..14).prop_map(TOp::Value),
        4 => (prop_oneof![8 => 0usize..300, 1 => 300usize..5000], any::<bool>())
            .prop_map(|(len, wide)| TOp::Slice { len, wide }),
        2 => (0usize..300, 0u32..13).prop_map(|(size, shift)| TOp::Layout { size, shift }),
        1 => Just(TOp::Reset),
    ]
}

// Only their layouts matter (the test fills the memory itself).
#[derive(Clone, Copy)]
#[allow(dead_code)]
#[repr(align(32))]
struct A32([u8; 32]);
#[derive(Clone, Copy)]
#[allow(dead_code)]
#[repr(align(64))]
struct A64([u8; 192]);
#[derive(Clone, Copy)]
#[allow(dead_code)]
#[repr(align(4096))]
struct A4096([u8; 4096]);

/// Allocates a value of type number `ty`: its address, size and alignment.
fn put_value<P: kmem_arena::PageBackend>(a: &Arena<'_, P>, ty: u8) -> (*mut u8, usize, usize) {
    fn put<T: Copy, P: kmem_arena::PageBackend>(a: &Arena<'_, P>, v: T) -> (*mut u8, usize, usize) {
        let r: *mut T = a.alloc_no_drop(v);
        (r.cast(), size_of::<T>(), align_of::<T>())
    }
    match ty {
        0 => put(a, 1u8),
        1 => put(a, 2u16),
        2 => put(a, 3u32),
        3 => put(a, 4u64),
        4 => put(a, 5u128),
        5 => put(a, [6u8; 3]),
        6 => put(a, [7u64; 100]),
        7 => put(a, A32([8; 32])),
        8 => put(a, A64([9; 192])),
        9 => put(a, [10u8; 4095]),  // the largest small value
        10 => put(a, [11u8; 4096]), // the smallest large one
        11 => put(a, A4096([12; 4096])),
        12 => put(a, ()),
        _ => put(a, (13u32, 14u8)),
    }
}

fn run_typed(block: usize, ops: Vec<TOp>) {
    let pages = &PageAllocator::with_config(
        TestPlatform::new(),
        Config {
            keep_free_pages: 0,
            ..Config::DEFAULT
        },
    );
    let mut arena = Arena::with_block_size_in(block, pages).unwrap();
    let mut m = Model {
        block_bytes: arena.block_size(),
        max: arena.small_limit(),
        ..Model::default()
    };
    let mut bases: Vec<usize> = Vec::new();
    let mut live: Vec<Live> = Vec::new();
    let src = [0u32; 5000];
    for (step, op) in ops.into_iter().enumerate() {
        let (p, size, align) = match op {
            TOp::Value(ty) => put_value(&arena, ty),
            TOp::Slice { len, wide: false } => {
                let s = arena.alloc_slice_copy(&[0u8; 5000][..len]);
                (s.as_mut_ptr(), len, 1)
            }
            TOp::Slice { len, wide: true } => {
                let s = arena.alloc_slice_copy(&src[..len]);
                (s.as_mut_ptr().cast(), 4 * len, 4)
            }
            TOp::Layout { size, shift } => {
                let l = Layout::from_size_align(size, 1 << shift).unwrap();
                (arena.alloc_layout(l).as_ptr(), size, 1 << shift)
            }
            TOp::Reset => {
                check_contents(&live);
                live.clear();
                arena.reset();
                m.cur = 0;
                m.frees = m.count;
                m.live_entries = 0;
                m.idle_entries = 0;
                m.current = 0;
                for b in &mut m.blocks {
                    *b = (HEADER, 0);
                }
                continue;
            }
        };
        assert_eq!(p as usize % align, 0, "step {step}: misaligned");
        if size == 0 {
            // Zero-sized: a dangling, aligned pointer; nothing counted.
            assert_eq!(p as usize, align, "step {step}: zero-sized");
            continue;
        }
        let large = !m.is_small(size, align);
        if large {
            if m.idle_entries > 0 {
                m.idle_entries -= 1;
            } else {
                m.place(ENTRY.0, ENTRY.1);
            }
            m.live_entries += 1;
        } else {
            let (block, off) = m.place(size, align);
            let base = p as usize - off;
            if block == bases.len() {
                bases.push(base);
            }
            assert_eq!(
                base, bases[block],
                "step {step}: {size} bytes (align {align}) went to the wrong block"
            );
        }
        m.count(size);
        let fill = (step % 251) as u8 + 1;
        // SAFETY: `size` bytes just handed out (never read through the
        // typed reference again).
        unsafe { core::ptr::write_bytes(p, fill, size) };
        live.push(Live {
            ptr: p,
            size,
            fill,
            large,
        });
        let s = arena.stats();
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
        arena.for_each_block(|b| got.push((m.block_bytes - b.free, b.failed, b.is_current)));
        let want: Vec<_> = m
            .blocks
            .iter()
            .enumerate()
            .map(|(i, &(last, f))| (last, f, i == m.current))
            .collect();
        assert_eq!(got, want, "blocks after step {step}");
        assert_eq!(arena.large_entries(), (m.live_entries, m.idle_entries));
    }
    check_contents(&live);
    drop(arena);
    assert_eq!(pages.stats().allocated_pages, 0);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The typed hot paths (`alloc_fixed`, `try_bump`, the aligning fallback
    /// and the in-place service of an earlier block's leftover) place every
    /// value where nginx's first fit would, and count exactly.
    #[test]
    fn arena_matches_the_nginx_model(
        block in prop_oneof![Just(4095usize), Just(8000), Just(20_000)],
        ops in prop::collection::vec(top(), 1..if cfg!(miri) { 25 } else { 400 }),
    ) {
        run_typed(block, ops);
    }
}
