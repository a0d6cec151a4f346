//! Errors of the slab layer.

use core::fmt;

/// Why a slab call was refused. Every variant leaves the cache as it was.
///
/// ```
/// use kmem_slab::{KmemCache, SlabError};
/// assert!(matches!(KmemCache::new("x", 0, 0), Err(SlabError::BadSize { .. })));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlabError {
    /// The page layer had no memory for a new slab.
    NoMemory,
    /// The object size is 0 or too large for any slab order.
    BadSize {
        /// The size asked for.
        size: usize,
    },
    /// The alignment is not a power of two or larger than a page.
    BadAlign {
        /// The alignment asked for.
        align: usize,
    },
    /// Every cache id is taken (at most [`MAX_CACHES`](crate::MAX_CACHES) caches live at once).
    TooManyCaches,
    /// The address is not in memory kmem manages.
    NotKmem {
        /// The address given.
        addr: usize,
    },
    /// The address is kmem's but not in a slab of this cache (another cache, or not a slab page).
    WrongCache {
        /// The address given.
        addr: usize,
    },
    /// The address lies inside an object but is not its start.
    Interior {
        /// The address given.
        addr: usize,
        /// Where the object starts.
        object: usize,
    },
    /// The object is not allocated: a double free, or an object never handed out.
    NotAllocated {
        /// The address given.
        addr: usize,
    },
    /// The cache still has objects in use and was not destroyed.
    Busy {
        /// Objects still in use.
        live: usize,
    },
}

impl fmt::Display for SlabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SlabError::NoMemory => write!(f, "out of memory"),
            SlabError::BadSize { size } => write!(f, "object size {size} is not supported"),
            SlabError::BadAlign { align } => {
                write!(f, "alignment {align} is not a power of two up to 4096")
            }
            SlabError::TooManyCaches => {
                write!(f, "too many caches (at most {})", crate::MAX_CACHES)
            }
            SlabError::NotKmem { addr } => write!(f, "{addr:#x} is not memory kmem manages"),
            SlabError::WrongCache { addr } => write!(f, "{addr:#x} is not an object of this cache"),
            SlabError::Interior { addr, object } => {
                write!(f, "{addr:#x} points inside the object at {object:#x}")
            }
            SlabError::NotAllocated { addr } => {
                write!(
                    f,
                    "{addr:#x} is not allocated (double free, or never handed out)"
                )
            }
            SlabError::Busy { live } => write!(f, "{live} objects are still in use"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SlabError {}
