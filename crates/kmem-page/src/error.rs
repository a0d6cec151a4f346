//! Errors of the page layer.

use core::fmt;

use crate::{MAX_PAGE_ORDER, PageKind};

/// Why a page-layer call was refused. Every variant leaves the allocator as it was.
///
/// ```
/// use kmem_page::{Gfp, PageAllocator, PageError};
/// let pages = PageAllocator::new_os();
/// assert_eq!(pages.alloc_raw(11, Gfp::KERNEL), Err(PageError::OrderTooLarge { order: 11 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageError {
    /// No block of this order could be had (the source is out of memory or the limit is reached).
    NoMemory {
        /// The order asked for.
        order: u32,
    },
    /// The order is above [`MAX_PAGE_ORDER`].
    OrderTooLarge {
        /// The order asked for.
        order: u32,
    },
    /// The address is not in any memory kmem manages.
    NotKmem {
        /// The address given.
        addr: usize,
    },
    /// The address is kmem's but belongs to another page allocator.
    WrongAllocator {
        /// The address given.
        addr: usize,
    },
    /// The address is not page-aligned.
    Misaligned {
        /// The address given.
        addr: usize,
    },
    /// The page is not allocated: a double free, or a page inside a free block.
    NotAllocated {
        /// The address given.
        addr: usize,
    },
    /// The address is inside an allocated block but is not its first page.
    NotHead {
        /// The address given.
        addr: usize,
        /// The block's first address.
        head: usize,
    },
    /// The block has another order than the one given.
    WrongOrder {
        /// The address given.
        addr: usize,
        /// The order given.
        given: u32,
        /// The block's real order.
        actual: u32,
    },
    /// The block belongs to another layer (a slab, a large kmalloc) and must be freed there.
    WrongKind {
        /// The address given.
        addr: usize,
        /// What the block is.
        kind: PageKind,
    },
    /// A region handed to `add_region` overlaps memory kmem already manages
    /// (or lies beyond the addresses kmem can register).
    RegionOverlap {
        /// The region's start.
        addr: usize,
    },
    /// A region handed to `add_region` is too small to hold its metadata and one page.
    RegionTooSmall {
        /// The region's length in bytes.
        len: usize,
    },
    /// A size that cannot be represented (overflow).
    TooLarge {
        /// The size asked for.
        size: usize,
    },
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PageError::NoMemory { order } => write!(f, "out of memory for an order-{order} block"),
            PageError::OrderTooLarge { order } => {
                write!(
                    f,
                    "order {order} is above MAX_PAGE_ORDER ({MAX_PAGE_ORDER})"
                )
            }
            PageError::NotKmem { addr } => write!(f, "{addr:#x} is not memory kmem handed out"),
            PageError::WrongAllocator { addr } => {
                write!(f, "{addr:#x} belongs to another page allocator")
            }
            PageError::Misaligned { addr } => write!(f, "{addr:#x} is not page-aligned"),
            PageError::NotAllocated { addr } => {
                write!(
                    f,
                    "{addr:#x} is not allocated (double free, or inside a free block)"
                )
            }
            PageError::NotHead { addr, head } => {
                write!(
                    f,
                    "{addr:#x} is inside the block at {head:#x}, not its start"
                )
            }
            PageError::WrongOrder {
                addr,
                given,
                actual,
            } => {
                write!(
                    f,
                    "{addr:#x} is an order-{actual} block, freed as order {given}"
                )
            }
            PageError::WrongKind { addr, kind } => {
                write!(
                    f,
                    "{addr:#x} is a {} block and must be freed by its owner",
                    kind.name()
                )
            }
            PageError::RegionOverlap { addr } => {
                write!(
                    f,
                    "region at {addr:#x} overlaps memory kmem already manages"
                )
            }
            PageError::RegionTooSmall { len } => {
                write!(
                    f,
                    "region of {len} bytes is too small for its metadata and one page"
                )
            }
            PageError::TooLarge { size } => write!(f, "size {size} is too large"),
        }
    }
}

#[cfg(feature = "std")]
extern crate std;
#[cfg(feature = "std")]
impl std::error::Error for PageError {}
