//! Why a pool call was refused. Every error leaves the pool as it was.

use core::fmt;

use kmem_page::Gfp;

/// Why a [`Mempool`](crate::Mempool) call failed.
///
/// ```
/// use kmem_mempool::{BoxBackend, Gfp, Mempool, MempoolError};
/// let pool = Mempool::new(1, BoxBackend::new(|| 0u8))?;
/// let err = pool.alloc_gfp(Gfp::KERNEL | Gfp::ZERO).unwrap_err();
/// assert_eq!(err, MempoolError::ZeroUnsupported);
/// assert!(err.to_string().contains("__GFP_ZERO"));
/// # Ok::<(), MempoolError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MempoolError {
    /// `min_nr` is negative (C) or, for a resize, zero (the kernel `BUG()`s).
    InvalidMinNr {
        /// The value given.
        min_nr: i64,
    },
    /// `min_nr` is above [`MAX_MIN_NR`](crate::MAX_MIN_NR).
    TooLarge {
        /// The value given.
        min_nr: usize,
    },
    /// A kmalloc pool's element size is 0 (`kmalloc(0)` is `ZERO_SIZE_PTR`,
    /// which holds nothing) or larger than any allocation can be.
    BadSize {
        /// The size given.
        size: usize,
    },
    /// No pages for the reserve's slot array.
    NoReserveArray {
        /// The slots needed.
        slots: usize,
    },
    /// The backend could not fill the reserve at creation; what it gave was
    /// freed again.
    Prefill {
        /// Elements the backend gave before failing.
        got: usize,
        /// Elements needed.
        min_nr: usize,
    },
    /// The page order of a page pool is above `MAX_PAGE_ORDER`.
    BadOrder {
        /// The order given.
        order: u32,
    },
    /// `__GFP_ZERO` was asked for: a pool cannot zero the elements it keeps in
    /// reserve, so it refuses rather than hand out dirty memory as zeroed.
    ZeroUnsupported,
    /// The caller may not wait (`GFP_ATOMIC`, `GFP_NOWAIT`), the backend
    /// failed and the reserve is empty.
    Exhausted {
        /// The caller's flags.
        gfp: Gfp,
    },
    /// `alloc_timeout` found no element in time.
    TimedOut,
    /// The pool still has elements handed out (destroy refused).
    Outstanding {
        /// How many.
        count: usize,
    },
    /// An element was freed while none was outstanding: a double free or an
    /// element of another pool. Nothing was changed.
    Unbalanced {
        /// The element's address.
        addr: usize,
    },
}

impl fmt::Display for MempoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MempoolError::InvalidMinNr { min_nr } => write!(f, "min_nr {min_nr} is not allowed"),
            MempoolError::BadSize { size } => {
                write!(
                    f,
                    "element size {size} cannot be a kmalloc pool's (0, or too large)"
                )
            }
            MempoolError::TooLarge { min_nr } => {
                write!(
                    f,
                    "min_nr {min_nr} is above the largest reserve ({})",
                    crate::MAX_MIN_NR
                )
            }
            MempoolError::NoReserveArray { slots } => {
                write!(f, "no pages for a reserve array of {slots} slots")
            }
            MempoolError::Prefill { got, min_nr } => write!(
                f,
                "the backend gave only {got} of the {min_nr} elements the reserve needs (all freed again)"
            ),
            MempoolError::BadOrder { order } => {
                write!(
                    f,
                    "order {order} is above MAX_PAGE_ORDER ({})",
                    kmem_page::MAX_PAGE_ORDER
                )
            }
            MempoolError::ZeroUnsupported => f.write_str(
                "__GFP_ZERO is not supported: reserve elements cannot be handed out zeroed",
            ),
            MempoolError::Exhausted { gfp } => {
                write!(
                    f,
                    "no element: the backend failed, the reserve is empty and {gfp} may not wait"
                )
            }
            MempoolError::TimedOut => f.write_str("no element became free in time"),
            MempoolError::Outstanding { count } => {
                write!(f, "{count} element(s) still allocated")
            }
            MempoolError::Unbalanced { addr } => write!(
                f,
                "{addr:#x} freed while no element is outstanding (double free, or not this pool's)"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MempoolError {}
