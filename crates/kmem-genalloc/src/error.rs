//! What can go wrong, and what each failure means.

use core::fmt;

/// Why a genalloc call refused. Every refusal leaves the pool exactly as it was.
///
/// The `Display` text names the address and what was wrong, so a report built
/// from it ("kmem: gen_pool_free(sram): ...") is enough to find the bug.
///
/// ```
/// use kmem_genalloc::{GenPool, GenPoolError};
/// let pool = GenPool::new(12).unwrap();
/// pool.add(0x1_0000_0000, 1 << 20).unwrap();
/// let e = pool.free(0x2_0000_0000, 4096).unwrap_err();
/// assert_eq!(e, GenPoolError::NotInPool { addr: 0x2_0000_0000 });
/// assert!(e.to_string().contains("0x200000000"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenPoolError {
    /// A size of zero bytes was asked for (allocation, free or chunk).
    ZeroSize,
    /// `min_alloc_order` is too large for an address (granule of `2^order` bytes).
    BadOrder {
        /// The order that was given.
        order: u32,
    },
    /// No chunk has a free run that the algorithm accepts for this size.
    NoSpace {
        /// The size asked for, in bytes.
        size: usize,
    },
    /// The platform could not supply memory for a chunk's bitmap and summary.
    NoMemory {
        /// Bytes of bookkeeping that were asked for.
        bytes: usize,
    },
    /// A chunk is smaller than one granule, or `addr + size` wraps around.
    BadChunk {
        /// Start of the chunk that was refused.
        addr: usize,
        /// Its size in bytes.
        size: usize,
    },
    /// A new chunk overlaps a chunk the pool already has.
    Overlap {
        /// Start of the chunk that was refused.
        addr: usize,
        /// Its size in bytes.
        size: usize,
        /// Start of the existing chunk it overlaps.
        other: usize,
        /// Size of the existing chunk.
        other_size: usize,
    },
    /// The address lies in no chunk of the pool.
    NotInPool {
        /// The address given.
        addr: usize,
    },
    /// The address is not on a granule boundary of its chunk.
    Unaligned {
        /// The address given.
        addr: usize,
        /// The pool's granule (`1 << min_alloc_order`).
        granule: usize,
    },
    /// `addr + size` runs past the end of the chunk that holds `addr`.
    PastChunkEnd {
        /// The address given.
        addr: usize,
        /// The size given, in bytes.
        size: usize,
        /// The last byte of the chunk (inclusive, like the kernel's `end_addr`).
        chunk_end: usize,
    },
    /// Part of the range is not allocated (a double free or a wrong size).
    NotAllocated {
        /// The address given.
        addr: usize,
        /// The size given, in bytes.
        size: usize,
        /// The first address in the range that is free.
        first_free: usize,
    },
    /// The pool still has allocations; it was not destroyed.
    LiveAllocations {
        /// Bytes still allocated.
        bytes: usize,
        /// The first allocated address found.
        first: usize,
    },
    /// An alignment that is zero or not a power of two.
    BadAlign {
        /// The alignment given.
        align: usize,
    },
    /// A fixed-offset request whose offset is not a multiple of the granule.
    BadOffset {
        /// The offset given.
        offset: usize,
        /// The pool's granule.
        granule: usize,
    },
}

impl fmt::Display for GenPoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GenPoolError::*;
        match *self {
            ZeroSize => write!(f, "size 0 is not a valid size"),
            BadOrder { order } => write!(f, "min_alloc_order {order} is too large (at most 62)"),
            NoSpace { size } => write!(f, "no free run of {size} bytes in any chunk"),
            NoMemory { bytes } => {
                write!(f, "out of memory for {bytes} bytes of chunk bookkeeping")
            }
            BadChunk { addr, size } => write!(
                f,
                "chunk {addr:#x}+{size:#x} is smaller than one granule or wraps the address space"
            ),
            Overlap {
                addr,
                size,
                other,
                other_size,
            } => write!(
                f,
                "chunk {addr:#x}..{:#x} overlaps chunk {other:#x}..{:#x} already in the pool",
                addr.wrapping_add(size),
                other.wrapping_add(other_size)
            ),
            NotInPool { addr } => write!(f, "{addr:#x} is in no chunk of this pool"),
            Unaligned { addr, granule } => {
                write!(
                    f,
                    "{addr:#x} is not on a {granule}-byte granule boundary of its chunk"
                )
            }
            PastChunkEnd {
                addr,
                size,
                chunk_end,
            } => write!(
                f,
                "{addr:#x}+{size:#x} runs past the end of its chunk (last byte {chunk_end:#x})"
            ),
            NotAllocated {
                addr,
                size,
                first_free,
            } => write!(
                f,
                "{addr:#x}+{size:#x} is not allocated ({first_free:#x} is free): double free or wrong size"
            ),
            LiveAllocations { bytes, first } => write!(
                f,
                "pool still has {bytes} bytes allocated (first at {first:#x}); not destroyed"
            ),
            BadAlign { align } => write!(f, "alignment {align} is not a power of two"),
            BadOffset { offset, granule } => {
                write!(
                    f,
                    "fixed offset {offset:#x} is not a multiple of the {granule}-byte granule"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for GenPoolError {}
