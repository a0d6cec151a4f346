//! Errors of the region pool. Every one leaves the pool as it was.

use core::fmt;

/// Why a pool could not be created or an allocation could not be made.
///
/// ```
/// use kmem_arena::{Arena, ArenaError};
/// let arena = Arena::new();
/// assert_eq!(arena.try_alloc_slice_copy(&[0u64; 0]).map(|s| s.len()), Ok(0));
/// assert!(matches!(Arena::with_block_size(0), Err(ArenaError::ZeroSize)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArenaError {
    /// A pool of size 0 (or, in C, an allocation of 0 bytes).
    ZeroSize,
    /// The size cannot be represented (it overflows with its header or alignment).
    TooLarge {
        /// The size asked for.
        size: usize,
    },
    /// The page layer has no memory for it.
    NoMemory {
        /// The size asked for.
        size: usize,
    },
    /// The alignment is not a power of two.
    BadAlign {
        /// The alignment asked for.
        align: usize,
    },
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ArenaError::ZeroSize => f.write_str("size 0"),
            ArenaError::TooLarge { size } => write!(f, "size {size} is too large"),
            ArenaError::NoMemory { size } => write!(f, "out of memory for {size} bytes"),
            ArenaError::BadAlign { align } => write!(f, "alignment {align} is not a power of two"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ArenaError {}

/// Why [`Pool::free`](crate::Pool::free) (`mp_free`) declined a pointer.
/// Nothing was changed.
///
/// ```
/// use kmem_arena::{FreeError, Global, Pool};
/// let pool = Pool::new(Global, 4096)?;
/// let small = pool.alloc(10).unwrap();
/// // SAFETY: both are refused, nothing is freed.
/// unsafe {
///     assert!(matches!(pool.free(small.as_ptr()), Err(FreeError::Small { .. })));
///     assert_eq!(pool.free(core::ptr::null_mut()), Err(FreeError::Null));
/// }
/// # Ok::<(), kmem_arena::ArenaError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// A null pointer.
    Null,
    /// A small allocation (or cleanup data) of this pool: it is given back at
    /// reset or destroy, not one by one. Not an error in C code: nginx's
    /// `ngx_pfree` declines these too.
    Small {
        /// The pointer given.
        addr: usize,
    },
    /// Not memory of this pool (not kmem's, or a page-layer block of another kind).
    Foreign {
        /// The pointer given.
        addr: usize,
    },
    /// Memory of another region pool.
    OtherPool {
        /// The pointer given.
        addr: usize,
    },
    /// Inside one of this pool's large allocations, but not its start.
    Inside {
        /// The pointer given.
        addr: usize,
        /// The start of the large allocation it lies in.
        start: usize,
    },
}

impl FreeError {
    /// Whether declining this pointer deserves a report: a null or small
    /// pointer is an ordinary call in nginx-style code; the others are bugs.
    ///
    /// ```
    /// use kmem_arena::FreeError;
    /// assert!(!FreeError::Small { addr: 16 }.is_bug());
    /// assert!(FreeError::Foreign { addr: 16 }.is_bug());
    /// ```
    pub fn is_bug(&self) -> bool {
        !matches!(self, FreeError::Null | FreeError::Small { .. })
    }
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FreeError::Null => f.write_str("null pointer"),
            FreeError::Small { addr } => {
                write!(
                    f,
                    "{addr:#x} is a small allocation of this pool (freed at reset or destroy)"
                )
            }
            FreeError::Foreign { addr } => write!(f, "{addr:#x} was not allocated from this pool"),
            FreeError::OtherPool { addr } => write!(f, "{addr:#x} belongs to another pool"),
            FreeError::Inside { addr, start } => {
                write!(
                    f,
                    "{addr:#x} is inside the large allocation at {start:#x}, not its start"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FreeError {}
