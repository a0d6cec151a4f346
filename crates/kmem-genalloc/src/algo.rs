//! Allocation algorithms: where in a chunk a run of granules goes.
//!
//! Each built-in algorithm has two implementations that return the same
//! answer on the same bitmap:
//!
//! * the kernel's, over the bitmap word by word ([`Algo::find_linear`]; the
//!   linear search mode, the C functions `gen_pool_first_fit` & co. when C
//!   code calls them directly, and the reference in the tests), and
//! * the summarised one, which asks the chunk's summary tree where to look,
//!   so its cost does not grow with the chunk.
//!
//! User algorithms implement [`GenAlgo`] (Rust) or the kernel's
//! `genpool_algo_t` (C); they always see the bitmap itself.

use core::fmt;

use crate::bitmap::Bitmap;
use crate::error::GenPoolError;
use crate::summary::Finder;

/// What an algorithm is told about the chunk it searches, besides its bitmap
/// (the kernel passes `pool` and `start_addr`).
///
/// ```
/// let ctx = kmem_genalloc::ChunkCtx { start_addr: 0x1000, min_alloc_order: 12 };
/// assert_eq!(ctx.granule(), 4096);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkCtx {
    /// First address of the chunk.
    pub start_addr: usize,
    /// The pool's `min_alloc_order` (a granule is `1 << min_alloc_order` bytes).
    pub min_alloc_order: u32,
}

impl ChunkCtx {
    /// Bytes per granule (per bit).
    ///
    /// ```
    /// assert_eq!(kmem_genalloc::ChunkCtx { start_addr: 0, min_alloc_order: 5 }.granule(), 32);
    /// ```
    pub fn granule(&self) -> usize {
        1 << self.min_alloc_order
    }
}

/// A user-supplied allocation algorithm (the kernel's `genpool_algo_t`).
///
/// `find` gets the chunk's bitmap, the bit to start searching at, and the
/// number of granules wanted; it returns the first bit of a run of `nr`
/// clear bits, or `None`. The pool then sets the bits atomically; if another
/// thread took one of them meanwhile, it calls `find` again with `start` set
/// to the rejected bit (as the kernel does). A result that does not fit in
/// the bitmap counts as `None`.
///
/// ```
/// use kmem_genalloc::{Algo, Bitmap, ChunkCtx, GenAlgo, GenPool};
/// /// Last fit: the highest free run.
/// struct LastFit;
/// impl GenAlgo for LastFit {
///     fn find(&self, map: &Bitmap<'_>, start: usize, nr: usize, _: &ChunkCtx) -> Option<usize> {
///         (start..=map.len().checked_sub(nr)?)
///             .rev()
///             .find(|&p| (p..p + nr).all(|b| !map.test_bit(b)))
///     }
/// }
/// static LAST_FIT: LastFit = LastFit;
/// let pool = GenPool::new(12).unwrap();
/// pool.add(0x10000, 0x10000).unwrap();
/// let a = pool.alloc_algo(4096, Algo::Custom(&LAST_FIT)).unwrap();
/// assert_eq!(a.addr, 0x1f000);
/// # pool.free(a.addr, a.size).unwrap();
/// ```
pub trait GenAlgo: Sync {
    /// The first bit of a free run of `nr` bits at or after `start`, or `None`.
    fn find(&self, map: &Bitmap<'_>, start: usize, nr: usize, ctx: &ChunkCtx) -> Option<usize>;
}

/// Which algorithm an allocation uses (`gen_pool_set_algo`, `gen_pool_alloc_algo`).
///
/// ```
/// use kmem_genalloc::{Algo, GenPool};
/// let pool = GenPool::new(12).unwrap();
/// pool.add(0x10_0000, 1 << 20).unwrap();
/// let a = pool.alloc_algo(4096, Algo::FirstFitAlign { align: 64 << 10 }).unwrap();
/// assert_eq!(a.addr % (64 << 10), 0);
/// let b = pool.alloc_algo(4096, Algo::Fixed { offset: 0x8000 }).unwrap();
/// assert_eq!(b.addr, 0x10_8000);
/// # pool.free(a.addr, a.size).unwrap(); pool.free(b.addr, b.size).unwrap();
/// ```
#[derive(Clone, Copy, Default)]
pub enum Algo<'a> {
    /// The first free run that fits (`gen_pool_first_fit`; the default).
    #[default]
    FirstFit,
    /// The first free run that fits at an address aligned to `align` bytes (a
    /// power of two) (`gen_pool_first_fit_align`, `struct genpool_data_align`).
    ///
    /// The granule index `start_addr / granule + bit` is aligned, so the
    /// address is aligned whenever the chunk starts on a granule boundary.
    /// (The kernel aligns the bit index within the chunk, which gives aligned
    /// addresses only when the chunk itself starts aligned.)
    FirstFitAlign {
        /// Alignment in bytes; a power of two.
        align: usize,
    },
    /// The first free run that fits at an address aligned to the request's
    /// size rounded up to a power of two (`gen_pool_first_fit_order_align`).
    FirstFitOrderAlign,
    /// The smallest free run that fits; the first of equals; an exact fit
    /// ends the search (`gen_pool_best_fit`).
    BestFit,
    /// The largest free run; the first of equals. Keeps small requests out
    /// of small holes (the seed's 最坏适应).
    WorstFit,
    /// Exactly at `offset` bytes from the start of a chunk, or nothing
    /// (`gen_pool_fixed_alloc`, `struct genpool_data_fixed`). Like the kernel,
    /// every chunk is tried at that offset; `offset` must be a multiple of
    /// the granule.
    Fixed {
        /// Offset in bytes from the chunk's start.
        offset: usize,
    },
    /// A user algorithm; it searches the bitmap itself.
    Custom(&'a dyn GenAlgo),
}

impl fmt::Debug for Algo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algo::FirstFit => f.write_str("FirstFit"),
            Algo::FirstFitAlign { align } => write!(f, "FirstFitAlign({align})"),
            Algo::FirstFitOrderAlign => f.write_str("FirstFitOrderAlign"),
            Algo::BestFit => f.write_str("BestFit"),
            Algo::WorstFit => f.write_str("WorstFit"),
            Algo::Fixed { offset } => write!(f, "Fixed({offset:#x})"),
            Algo::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// An alignment in granules, as the kernel computes it: `align_mask` and the
/// offset of the chunk's first granule within an alignment unit.
#[inline]
fn align_bits(align: usize, ctx: &ChunkCtx) -> (usize, usize) {
    // ((alignment + granule - 1) >> order) - 1; `align` is a power of two.
    let mask = align.div_ceil(ctx.granule()).max(1) - 1;
    (mask, (ctx.start_addr >> ctx.min_alloc_order) & mask)
}

#[inline]
fn order_align_bits(nr: usize, ctx: &ChunkCtx) -> (usize, usize) {
    let mask = nr.next_power_of_two() - 1;
    (mask, (ctx.start_addr >> ctx.min_alloc_order) & mask)
}

#[inline]
fn align_up(p: usize, mask: usize, off: usize) -> usize {
    ((p + off + mask) & !mask) - off
}

#[inline]
fn fits(map: &Bitmap<'_>, p: usize, nr: usize) -> Option<usize> {
    (p < map.len() && nr <= map.len() - p).then_some(p)
}

impl Algo<'_> {
    /// Refuses parameters no search can honour (an alignment that is not a
    /// power of two, a fixed offset off the granule grid).
    ///
    /// ```
    /// use kmem_genalloc::{Algo, GenPoolError};
    /// assert_eq!(Algo::FirstFitAlign { align: 24 }.validate(4096),
    ///            Err(GenPoolError::BadAlign { align: 24 }));
    /// assert!(Algo::Fixed { offset: 8192 }.validate(4096).is_ok());
    /// ```
    pub fn validate(&self, granule: usize) -> Result<(), GenPoolError> {
        match *self {
            Algo::FirstFitAlign { align } if !align.is_power_of_two() => {
                Err(GenPoolError::BadAlign { align })
            }
            Algo::Fixed { offset } if offset % granule != 0 => {
                Err(GenPoolError::BadOffset { offset, granule })
            }
            _ => Ok(()),
        }
    }

    /// The kernel's search for this algorithm, over the bitmap word by word:
    /// the first bit of where `nr` granules go, searching from `start`.
    ///
    /// ```
    /// use core::sync::atomic::AtomicU64;
    /// use kmem_genalloc::{Algo, Bitmap, ChunkCtx};
    /// let w = [AtomicU64::new(0b0000_1110_0001)];
    /// let map = Bitmap::new(&w, 16);
    /// let ctx = ChunkCtx { start_addr: 0, min_alloc_order: 0 };
    /// assert_eq!(Algo::FirstFit.find_linear(&map, 0, 3, &ctx), Some(1), "run 1..5");
    /// assert_eq!(Algo::FirstFit.find_linear(&map, 0, 5, &ctx), Some(8));
    /// assert_eq!(Algo::BestFit.find_linear(&map, 0, 3, &ctx), Some(1));
    /// assert_eq!(Algo::WorstFit.find_linear(&map, 0, 3, &ctx), Some(8));
    /// ```
    pub fn find_linear(
        &self,
        map: &Bitmap<'_>,
        start: usize,
        nr: usize,
        ctx: &ChunkCtx,
    ) -> Option<usize> {
        match *self {
            Algo::FirstFit => fits(map, map.find_next_zero_area(start, nr, 0), nr),
            Algo::FirstFitAlign { align } => {
                let (mask, off) = align_bits(align, ctx);
                fits(map, map.find_next_zero_area_off(start, nr, mask, off), nr)
            }
            Algo::FirstFitOrderAlign => {
                let (mask, off) = order_align_bits(nr, ctx);
                fits(map, map.find_next_zero_area_off(start, nr, mask, off), nr)
            }
            Algo::BestFit => best_fit_linear(map, start, nr),
            Algo::WorstFit => worst_fit_linear(map, start, nr),
            Algo::Fixed { offset } => {
                if offset % ctx.granule() != 0 {
                    return None;
                }
                let bit = offset >> ctx.min_alloc_order;
                let k = map.find_next_zero_area(start.checked_add(bit)?, nr, 0);
                (k == bit).then_some(k).and_then(|k| fits(map, k, nr))
            }
            Algo::Custom(a) => a.find(map, start, nr, ctx).and_then(|p| fits(map, p, nr)),
        }
    }

    /// The same search through the chunk's summary (falls back to the linear
    /// search for user algorithms and fixed offsets, whose cost is already
    /// independent of the chunk's size).
    pub(crate) fn find_summarised(
        &self,
        f: &Finder<'_>,
        start: usize,
        nr: usize,
        ctx: &ChunkCtx,
    ) -> Option<usize> {
        match *self {
            Algo::FirstFit => f.first_fit(start, nr),
            Algo::FirstFitAlign { align } => {
                let (mask, off) = align_bits(align, ctx);
                aligned_fit(f, start, nr, mask, off)
            }
            Algo::FirstFitOrderAlign => {
                let (mask, off) = order_align_bits(nr, ctx);
                aligned_fit(f, start, nr, mask, off)
            }
            Algo::BestFit => {
                let mut best: Option<(usize, usize)> = None;
                let mut pos = start;
                while let Some((s, e)) = f.next_run(pos, nr) {
                    if best.is_none_or(|(_, l)| e - s < l) {
                        best = Some((s, e - s));
                        if e - s == nr {
                            break;
                        }
                    }
                    pos = e;
                }
                best.map(|(s, _)| s)
            }
            Algo::WorstFit => {
                let mut best: Option<(usize, usize)> = None;
                let mut pos = start;
                while let Some((s, e)) = f.next_run(pos, nr) {
                    if best.is_none_or(|(_, l)| e - s > l) {
                        best = Some((s, e - s));
                    }
                    pos = e;
                }
                best.map(|(s, _)| s)
            }
            Algo::Fixed { .. } | Algo::Custom(_) => self.find_linear(&f.map, start, nr, ctx),
        }
    }
}

/// The first `p >= start` with `(p + off) & mask == 0` and `p..p + nr` free,
/// found run by run through the summary.
fn aligned_fit(f: &Finder<'_>, start: usize, nr: usize, mask: usize, off: usize) -> Option<usize> {
    let mut pos = start;
    loop {
        let (s, e) = f.next_run(pos, nr)?;
        let a = align_up(s, mask, off);
        if a <= e && e - a >= nr {
            return Some(a);
        }
        pos = e;
    }
}

/// `gen_pool_best_fit` as the kernel writes it.
fn best_fit_linear(map: &Bitmap<'_>, start: usize, nr: usize) -> Option<usize> {
    let size = map.len();
    let (mut start_bit, mut len) = (size, size + 1);
    let mut index = map.find_next_zero_area(start, nr, 0);
    while index < size {
        let next_bit = map.find_next_bit(index + nr);
        if next_bit - index < len {
            len = next_bit - index;
            start_bit = index;
            if len == nr {
                return fits(map, start_bit, nr);
            }
        }
        index = map.find_next_zero_area(next_bit + 1, nr, 0);
    }
    fits(map, start_bit, nr)
}

/// Worst fit in the kernel's style: the largest run, the first of equals.
fn worst_fit_linear(map: &Bitmap<'_>, start: usize, nr: usize) -> Option<usize> {
    let size = map.len();
    let (mut start_bit, mut len) = (size, 0);
    let mut index = map.find_next_zero_area(start, nr, 0);
    while index < size {
        let next_bit = map.find_next_bit(index + nr);
        if next_bit - index > len {
            len = next_bit - index;
            start_bit = index;
        }
        index = map.find_next_zero_area(next_bit + 1, nr, 0);
    }
    fits(map, start_bit, nr)
}
