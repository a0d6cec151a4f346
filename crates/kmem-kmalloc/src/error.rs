//! Errors of kmalloc.

use core::fmt;

use kmem_page::PageKind;
use kmem_slab::SlabError;

/// Why a kmalloc call failed. Every variant that names a pointer was also
/// reported on stderr (one `kmem:` line) when it happened.
///
/// ```
/// use kmem_kmalloc::KmallocError;
/// let e = KmallocError::Overflow { n: usize::MAX, size: 2 };
/// assert!(e.to_string().contains("overflows"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmallocError {
    /// No memory for a request of `size` bytes.
    NoMemory {
        /// Bytes asked for.
        size: usize,
    },
    /// `n * size` overflows (`kcalloc`, `kmalloc_array`).
    Overflow {
        /// Number of elements.
        n: usize,
        /// Size of each.
        size: usize,
    },
    /// An alignment that is not a power of two, or above what kmem can give (4 MiB).
    BadAlign {
        /// The alignment asked for.
        align: usize,
    },
    /// The address is not memory kmem manages.
    NotKmem {
        /// The address.
        addr: usize,
    },
    /// The address points inside an object or block, not at its start.
    Interior {
        /// The address.
        addr: usize,
        /// The start of the object it points into.
        object: usize,
    },
    /// The address is not allocated (double free, or never handed out).
    NotAllocated {
        /// The address.
        addr: usize,
    },
    /// The address is kmem memory, but not from kmalloc (another slab cache,
    /// page blocks from `__get_free_pages`).
    NotKmalloc {
        /// The address.
        addr: usize,
        /// What the memory is.
        kind: PageKind,
    },
}

impl fmt::Display for KmallocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            KmallocError::NoMemory { size } => write!(f, "out of memory for {size} bytes"),
            KmallocError::Overflow { n, size } => {
                write!(f, "{n} elements of {size} bytes: the size overflows")
            }
            KmallocError::BadAlign { align } => {
                write!(f, "alignment {align} is not a power of two up to 4 MiB")
            }
            KmallocError::NotKmem { addr } => write!(f, "{addr:#x} is not memory kmem manages"),
            KmallocError::Interior { addr, object } => {
                write!(f, "{addr:#x} points inside the allocation at {object:#x}")
            }
            KmallocError::NotAllocated { addr } => write!(
                f,
                "{addr:#x} is not allocated (double free, or never handed out)"
            ),
            KmallocError::NotKmalloc { addr, kind } => write!(
                f,
                "{addr:#x} is kmem memory ({}) but not from kmalloc",
                kind.name()
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for KmallocError {}

impl KmallocError {
    /// Maps an error of a kmalloc cache's `free`.
    pub(crate) fn from_slab_free(e: SlabError, addr: usize) -> Self {
        match e {
            SlabError::Interior { addr, object } => KmallocError::Interior { addr, object },
            SlabError::NotKmem { addr } => KmallocError::NotKmem { addr },
            SlabError::WrongCache { addr } => KmallocError::NotKmalloc {
                addr,
                kind: PageKind::Slab,
            },
            _ => KmallocError::NotAllocated { addr },
        }
    }
}
