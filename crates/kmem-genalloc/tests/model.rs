//! Model-based tests: every algorithm, in both search modes, against a
//! reference built on a sorted set of free ranges.

use std::collections::BTreeMap;

use kmem_genalloc::{Algo, Bitmap, ChunkCtx, GenAlgo, GenPool, GenPoolError, PoolConfig, Search};
use kmem_platform::TestPlatform;
use proptest::prelude::*;

/// Last fit: the highest run that fits (a user algorithm).
struct LastFit;
impl GenAlgo for LastFit {
    fn find(&self, map: &Bitmap<'_>, start: usize, nr: usize, _: &ChunkCtx) -> Option<usize> {
        let mut best = None;
        let mut p = map.find_next_zero_area(start, nr, 0);
        while p + nr <= map.len() {
            let end = map.find_next_bit(p);
            best = Some(end - nr);
            p = map.find_next_zero_area(end, nr, 0);
        }
        best
    }
}
static LAST_FIT: LastFit = LastFit;

#[derive(Debug, Clone, Copy)]
enum A {
    First,
    Align(u32),
    OrderAlign,
    Best,
    Worst,
    Fixed(usize),
    Last,
}

impl A {
    fn algo(self, granule: usize) -> Algo<'static> {
        match self {
            A::First => Algo::FirstFit,
            A::Align(s) => Algo::FirstFitAlign { align: 1 << s },
            A::OrderAlign => Algo::FirstFitOrderAlign,
            A::Best => Algo::BestFit,
            A::Worst => Algo::WorstFit,
            A::Fixed(bit) => Algo::Fixed {
                offset: bit * granule,
            },
            A::Last => Algo::Custom(&LAST_FIT),
        }
    }
}

/// One chunk of the model: its free runs of granules as `start -> end`.
#[derive(Debug, Clone)]
struct MChunk {
    addr: usize,
    size: usize,
    nbits: usize,
    free: BTreeMap<usize, usize>,
    used_bits: usize,
}

impl MChunk {
    fn avail(&self, order: u32) -> usize {
        self.size - (self.used_bits << order)
    }
    fn find(&self, a: A, nr: usize, order: u32) -> Option<usize> {
        let runs = self
            .free
            .iter()
            .map(|(&s, &e)| (s, e))
            .filter(|&(s, e)| e - s >= nr);
        let gidx = self.addr >> order;
        let aligned = |mask: usize| {
            let off = gidx & mask;
            self.free.iter().find_map(|(&s, &e)| {
                let p = ((s + off + mask) & !mask) - off;
                (p + nr <= e).then_some(p)
            })
        };
        match a {
            A::First => runs.map(|(s, _)| s).next(),
            A::Align(shift) => aligned(((1usize << shift).div_ceil(1 << order)).max(1) - 1),
            A::OrderAlign => aligned(nr.next_power_of_two() - 1),
            A::Best => runs
                .fold(None::<(usize, usize)>, |b, (s, e)| match b {
                    Some((_, l)) if l <= e - s => b,
                    _ => Some((s, e - s)),
                })
                .map(|(s, _)| s),
            A::Worst => runs
                .fold(None::<(usize, usize)>, |b, (s, e)| match b {
                    Some((_, l)) if l >= e - s => b,
                    _ => Some((s, e - s)),
                })
                .map(|(s, _)| s),
            A::Fixed(bit) => self
                .free
                .range(..=bit)
                .next_back()
                .and_then(|(&s, &e)| (s <= bit && bit + nr <= e).then_some(bit)),
            A::Last => self
                .free
                .iter()
                .rev()
                .find(|&(&s, &e)| e - s >= nr)
                .map(|(_, &e)| e - nr),
        }
    }
    fn take(&mut self, p: usize, nr: usize) {
        let (&s, &e) = self.free.range(..=p).next_back().unwrap();
        assert!(s <= p && p + nr <= e);
        self.free.remove(&s);
        if s < p {
            self.free.insert(s, p);
        }
        if p + nr < e {
            self.free.insert(p + nr, e);
        }
        self.used_bits += nr;
    }
    fn is_free(&self, bit: usize) -> bool {
        self.free
            .range(..=bit)
            .next_back()
            .is_some_and(|(_, &e)| bit < e)
    }
    fn give(&mut self, p: usize, nr: usize) {
        let (mut s, mut e) = (p, p + nr);
        if let Some((&ps, &pe)) = self.free.range(..p).next_back()
            && pe == p
        {
            self.free.remove(&ps);
            s = ps;
        }
        if let Some(ne) = self.free.remove(&e) {
            e = ne;
        }
        self.free.insert(s, e);
        self.used_bits -= nr;
    }
}

struct Model {
    order: u32,
    chunks: Vec<MChunk>, // oldest first; the pool searches newest first
}

impl Model {
    fn alloc(&mut self, size: usize, a: A) -> Result<(usize, usize), GenPoolError> {
        let nr = size.div_ceil(1 << self.order);
        let order = self.order;
        for c in self.chunks.iter_mut().rev() {
            if size > c.avail(order) {
                continue;
            }
            if let Some(p) = c.find(a, nr, order) {
                c.take(p, nr);
                return Ok((c.addr + (p << order), nr << order));
            }
        }
        Err(GenPoolError::NoSpace { size })
    }
    fn free(&mut self, addr: usize, size: usize) -> Result<(), GenPoolError> {
        let order = self.order;
        let c = self
            .chunks
            .iter_mut()
            .rev()
            .find(|c| addr >= c.addr && addr < c.addr + c.size)
            .ok_or(GenPoolError::NotInPool { addr })?;
        let off = addr - c.addr;
        if !off.is_multiple_of(1 << order) {
            return Err(GenPoolError::Unaligned {
                addr,
                granule: 1 << order,
            });
        }
        let (bit, nr) = (off >> order, size.div_ceil(1 << order));
        if bit + nr > c.nbits {
            return Err(GenPoolError::PastChunkEnd {
                addr,
                size,
                chunk_end: c.addr + c.size - 1,
            });
        }
        if let Some(z) = (bit..bit + nr).find(|&b| c.is_free(b)) {
            return Err(GenPoolError::NotAllocated {
                addr,
                size,
                first_free: c.addr + (z << order),
            });
        }
        c.give(bit, nr);
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Op {
    Alloc {
        granules: usize,
        extra: usize,
        algo: A,
    },
    Free {
        pick: usize,
        part: u8,
    },
    BadFree {
        pick: usize,
        kind: u8,
    },
}

fn algo() -> impl Strategy<Value = A> {
    prop_oneof![
        3 => Just(A::First),
        1 => (0u32..10).prop_map(A::Align),
        1 => Just(A::OrderAlign),
        1 => Just(A::Best),
        1 => Just(A::Worst),
        1 => (0usize..300).prop_map(A::Fixed),
        1 => Just(A::Last),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (prop_oneof![4 => 1usize..8, 2 => 8usize..80, 1 => 60usize..400], 0usize..3, algo())
            .prop_map(|(granules, extra, algo)| Op::Alloc { granules, extra, algo }),
        3 => (any::<usize>(), 0u8..3).prop_map(|(pick, part)| Op::Free { pick, part }),
        1 => (any::<usize>(), 0u8..5).prop_map(|(pick, kind)| Op::BadFree { pick, kind }),
    ]
}

fn run(order: u32, chunk_sizes: &[usize], ops: &[Op]) -> Result<(), TestCaseError> {
    let g = 1usize << order;
    let src = TestPlatform::new();
    let mk = |search| {
        GenPool::with_config(
            &src,
            PoolConfig {
                search,
                ..PoolConfig::new(order)
            },
        )
        .unwrap()
    };
    let pools = [mk(Search::Summary), mk(Search::Linear)];
    let mut model = Model {
        order,
        chunks: Vec::new(),
    };
    for (i, &bytes) in chunk_sizes.iter().enumerate() {
        // Unmapped fake addresses far apart; the second one not aligned to much.
        let addr = 0x1_0000_0000_0000 + i * (1 << 36) + (i % 2) * 3 * g;
        for p in &pools {
            p.add_virt(addr, 0x8000_0000 + i as u64 * 0x100_0000, bytes)
                .unwrap();
        }
        let nbits = bytes >> order;
        model.chunks.push(MChunk {
            addr,
            size: bytes,
            nbits,
            free: BTreeMap::from([(0, nbits)]),
            used_bits: 0,
        });
    }
    let mut live: Vec<(usize, usize)> = Vec::new();
    for op in ops {
        match *op {
            Op::Alloc {
                granules,
                extra,
                algo,
            } => {
                let size = (granules * g).saturating_sub(extra.min(g - 1));
                let want = model.alloc(size, algo);
                for p in &pools {
                    let got = p.alloc_algo(size, algo.algo(g)).map(|a| (a.addr, a.size));
                    prop_assert_eq!(got, want, "{:?} {:?} size {}", p.search(), algo, size);
                }
                if let Ok(a) = want {
                    live.push(a);
                }
            }
            Op::Free { pick, part } if !live.is_empty() => {
                let i = pick % live.len();
                let (addr, size) = live.swap_remove(i);
                // Free whole, or in two pieces (the kernel allows partial frees).
                let pieces: Vec<(usize, usize)> = if part == 0 || size == g {
                    vec![(addr, size)]
                } else {
                    let cut = (size / g / 2).max(1) * g;
                    vec![(addr + cut, size - cut), (addr, cut)]
                };
                for (a, s) in pieces {
                    prop_assert_eq!(model.free(a, s), Ok(()));
                    for p in &pools {
                        prop_assert_eq!(p.free(a, s), Ok(()));
                    }
                }
            }
            Op::BadFree { pick, kind } => {
                let (addr, size) = match (kind, live.is_empty()) {
                    (0, _) => (0x10, g),                                  // no chunk
                    (1, false) => (live[pick % live.len()].0 + g / 2, g), // unaligned (if g > 1)
                    (2, false) => {
                        let (a, s) = live[pick % live.len()];
                        (a, s + g) // runs into a granule that may be free
                    }
                    (3, _) => {
                        let c = &model.chunks[pick % model.chunks.len()];
                        (c.addr + ((c.nbits - 1) << order), 2 * g) // past the end
                    }
                    _ => {
                        let c = &model.chunks[pick % model.chunks.len()];
                        (c.addr + (((pick >> 8) % c.nbits) << order), g) // maybe free
                    }
                };
                let want = model.free(addr, size);
                for p in &pools {
                    let before = (p.avail(), snapshot(p));
                    prop_assert_eq!(p.free(addr, size), want);
                    if want.is_err() {
                        prop_assert_eq!(
                            (p.avail(), snapshot(p)),
                            before,
                            "refused free changed state"
                        );
                    }
                }
                if want.is_ok() {
                    // It was a legal free of allocated granules: drop them
                    // from the live set so they are not freed twice.
                    let (b, e) = (addr, addr + size.div_ceil(g) * g);
                    let mut rest = Vec::new();
                    for &(a, s) in &live {
                        let (lo, hi) = (a.max(b), (a + s).min(e));
                        if lo < hi {
                            if a < lo {
                                rest.push((a, lo - a));
                            }
                            if hi < a + s {
                                rest.push((hi, a + s - hi));
                            }
                        } else {
                            rest.push((a, s));
                        }
                    }
                    live = rest;
                }
            }
            _ => {}
        }
        for p in &pools {
            p.check()
                .map_err(|e| TestCaseError::fail(format!("{:?}: {e}", p.search())))?;
            let model_avail: usize = model.chunks.iter().map(|c| c.avail(order)).sum();
            prop_assert_eq!(p.avail(), model_avail);
        }
    }
    for (a, s) in live {
        for p in &pools {
            p.free(a, s).unwrap();
        }
    }
    for p in pools {
        prop_assert_eq!(p.avail(), p.size());
        p.destroy().unwrap();
    }
    prop_assert_eq!(src.live_bytes(), 0, "all bookkeeping given back");
    Ok(())
}

fn snapshot<S: kmem_platform::PageSource>(p: &GenPool<S>) -> Vec<u64> {
    let mut v = Vec::new();
    p.for_each_chunk(|c| {
        v.extend(
            c.bitmap()
                .words()
                .iter()
                .map(|w| w.load(std::sync::atomic::Ordering::Relaxed)),
        )
    });
    v
}

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn pool_matches_model(
        order in 0u32..7,
        sizes in prop::collection::vec(1usize..1500, 1..4),
        ops in prop::collection::vec(op(), 1..if cfg!(miri) { 25 } else { 160 }),
    ) {
        let g = 1usize << order;
        // Chunk sizes in bytes, some not a multiple of the granule.
        let chunk_sizes: Vec<usize> = sizes.iter().enumerate().map(|(i, &n)| n * g + (i % 2) * (g / 2)).collect();
        run(order, &chunk_sizes, &ops)?;
    }

    /// Big chunks: runs longer than the summary's cap of 64 granules and
    /// several summary levels.
    #[test]
    fn big_chunk_matches_model(
        ops in prop::collection::vec(op(), 1..if cfg!(miri) { 15 } else { 120 }),
    ) {
        let bits = if cfg!(miri) { 64 * 80 } else { 64 * 64 * 70 + 5 };
        run(0, &[bits], &ops)?;
    }
}
