//! A chunk: one contiguous address range of the pool, with its bitmap and
//! summary. The chunk's header, bitmap and summary live together in one
//! mapping from the pool's [`PageSource`] — never in the managed range, which
//! the pool neither reads nor writes (it may be device memory, or nothing).

use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use kmem_platform::{PAGE_SIZE, PageSource};

use crate::bitmap::{BITS_PER_LONG, Bitmap};
use crate::error::GenPoolError;
use crate::summary::{Finder, Summary};

/// The header at the start of a chunk's bookkeeping mapping (the kernel's
/// `struct gen_pool_chunk`), followed by `nwords` bitmap words and then the
/// summary's cells.
#[repr(C)]
pub(crate) struct Chunk {
    /// The next (older) chunk. A chunk is linked in, fully built, with a
    /// `Release` store of the pool's head; readers follow with `Acquire`.
    /// Chunks are only unlinked when the pool itself goes away.
    pub(crate) next: AtomicPtr<Chunk>,
    /// First address of the range (`start_addr`).
    pub(crate) start_addr: usize,
    /// Bytes in the range; `start_addr + size` does not wrap. The last byte
    /// is the kernel's `end_addr`. Bytes past `nbits << order` (a size that is
    /// not a multiple of the granule) belong to the chunk but are never handed out.
    pub(crate) size: usize,
    /// Physical (or DMA, or device) address of `start_addr`; `u64::MAX` if unknown.
    pub(crate) phys_addr: u64,
    /// Bytes not allocated: `size` minus `granule` times the set bits (the
    /// kernel's `avail`; also counts the unusable tail).
    pub(crate) avail: AtomicUsize,
    /// Granules: bits of the bitmap that are in use as such.
    pub(crate) nbits: usize,
    /// The bitmap: `nbits.div_ceil(64)` words, right after the header.
    words: NonNull<AtomicU64>,
    /// The summary, if the pool summarises (its cells follow the bitmap).
    summary: Option<Summary>,
    /// Bytes of the whole mapping (header + bitmap + summary), to unmap it.
    map_bytes: usize,
}

/// A borrowed, read-only look at one chunk of a pool: what `gen_pool_for_each_chunk`
/// hands its callback.
///
/// ```
/// let pool = kmem_genalloc::GenPool::new(12).unwrap();
/// pool.add_virt(0x10_0000, 0x8000_0000, 1 << 20).unwrap();
/// let a = pool.alloc(8192).unwrap();
/// pool.for_each_chunk(|c| {
///     assert_eq!(c.start_addr(), 0x10_0000);
///     assert_eq!(c.end_addr(), 0x10_0000 + (1 << 20) - 1);
///     assert_eq!(c.phys_addr(), 0x8000_0000);
///     assert_eq!(c.avail(), (1 << 20) - 8192);
///     assert!(c.bitmap().test_bit(0) && c.bitmap().test_bit(1));
/// });
/// pool.free(a.addr, a.size).unwrap();
/// ```
#[derive(Clone, Copy)]
pub struct ChunkRef<'a> {
    pub(crate) chunk: &'a Chunk,
}

impl core::fmt::Debug for ChunkRef<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Chunk")
            .field("start_addr", &format_args!("{:#x}", self.start_addr()))
            .field("end_addr", &format_args!("{:#x}", self.end_addr()))
            .field("avail", &self.avail())
            .finish()
    }
}

impl<'a> ChunkRef<'a> {
    /// First address of the chunk.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x4000, 0x4000).unwrap();
    /// pool.for_each_chunk(|c| assert_eq!(c.start_addr(), 0x4000));
    /// ```
    pub fn start_addr(&self) -> usize {
        self.chunk.start_addr
    }
    /// Last address of the chunk (inclusive, the kernel's `end_addr`).
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x4000, 0x4000).unwrap();
    /// pool.for_each_chunk(|c| assert_eq!(c.end_addr(), 0x7fff));
    /// ```
    pub fn end_addr(&self) -> usize {
        self.chunk.end_addr()
    }
    /// Bytes in the chunk.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x4000, 0x4000).unwrap();
    /// pool.for_each_chunk(|c| assert_eq!(c.size(), 0x4000));
    /// ```
    pub fn size(&self) -> usize {
        self.chunk.size
    }
    /// Physical address of the chunk's start (`u64::MAX` when added without one).
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x4000, 0x4000).unwrap();
    /// pool.for_each_chunk(|c| assert_eq!(c.phys_addr(), u64::MAX));
    /// ```
    pub fn phys_addr(&self) -> u64 {
        self.chunk.phys_addr
    }
    /// Bytes of the chunk not allocated.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x4000, 0x4000).unwrap();
    /// pool.for_each_chunk(|c| assert_eq!(c.avail(), 0x4000));
    /// ```
    pub fn avail(&self) -> usize {
        self.chunk.avail.load(Ordering::Relaxed)
    }
    /// The chunk as an opaque pointer (the C API's `struct gen_pool_chunk *`).
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x4000, 0x4000).unwrap();
    /// let c = pool.chunks().next().unwrap();
    /// // SAFETY: the pointer came from a chunk of `pool`, which is still alive.
    /// let again = unsafe { kmem_genalloc::ChunkRef::from_ptr(c.as_ptr()) };
    /// assert_eq!(again.start_addr(), 0x4000);
    /// ```
    pub fn as_ptr(&self) -> *const () {
        (self.chunk as *const Chunk).cast()
    }
    /// The chunk behind a pointer from [`as_ptr`](Self::as_ptr).
    ///
    /// # Safety
    ///
    /// `p` must come from `as_ptr` on a chunk of a pool that outlives `'a`.
    pub unsafe fn from_ptr(p: *const ()) -> ChunkRef<'a> {
        // SAFETY: the caller promises `p` is a live chunk for `'a`.
        let chunk = unsafe { &*p.cast::<Chunk>() };
        ChunkRef { chunk }
    }
    /// Levels of the chunk's summary tree (0 in linear search mode).
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0, 1 << 30).unwrap(); // 2^12 bitmap words: 4096 bytes, then 64
    /// pool.for_each_chunk(|c| assert_eq!(c.summary_depth(), 2));
    /// ```
    pub fn summary_depth(&self) -> usize {
        self.chunk.summary().map_or(0, |s| s.depth())
    }
    /// Bytes of bookkeeping for this chunk (header, bitmap, summary), as mapped.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0, 1 << 30).unwrap(); // 2^18 granules: a 32 KiB bitmap
    /// pool.for_each_chunk(|c| assert!(c.bookkeeping_bytes() >= 32 << 10));
    /// ```
    pub fn bookkeeping_bytes(&self) -> usize {
        self.chunk.map_bytes
    }
    /// The chunk's allocation bitmap.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x4000, 0x4000).unwrap();
    /// pool.for_each_chunk(|c| assert_eq!(c.bitmap().len(), 4));
    /// ```
    pub fn bitmap(&self) -> Bitmap<'a> {
        self.chunk.bitmap()
    }
}

impl Chunk {
    /// Builds a chunk over `[virt, virt + size)` with its bookkeeping mapped
    /// from `source`.
    pub(crate) fn create<S: PageSource>(
        source: &S,
        virt: usize,
        phys: u64,
        size: usize,
        order: u32,
        summarise: bool,
    ) -> Result<NonNull<Chunk>, GenPoolError> {
        let nbits = size >> order;
        if nbits == 0 || virt.checked_add(size - 1).is_none() {
            return Err(GenPoolError::BadChunk { addr: virt, size });
        }
        let nwords = nbits.div_ceil(BITS_PER_LONG);
        let header = core::mem::size_of::<Chunk>().next_multiple_of(64);
        let cells = if summarise {
            Summary::cells_for(nwords)
        } else {
            0
        };
        let bytes = (nwords + cells)
            .checked_mul(8)
            .and_then(|b| b.checked_add(header))
            .and_then(|b| b.checked_next_multiple_of(PAGE_SIZE))
            .ok_or(GenPoolError::NoMemory { bytes: usize::MAX })?;
        let base = source
            .map(bytes, PAGE_SIZE)
            .ok_or(GenPoolError::NoMemory { bytes })?;
        // SAFETY: the mapping is `bytes` long, zeroed and page-aligned; the
        // header fits before `header`, the words and cells after it, all
        // 8-byte aligned. Zeroed memory is a valid `AtomicU64` of value 0.
        unsafe {
            let words = NonNull::new_unchecked(base.as_ptr().add(header).cast::<AtomicU64>());
            let map = Bitmap::new(core::slice::from_raw_parts(words.as_ptr(), nwords), nbits);
            let summary = if summarise {
                Some(Summary::init(words.as_ptr().add(nwords), &map))
            } else {
                None
            };
            let chunk = base.cast::<Chunk>();
            chunk.as_ptr().write(Chunk {
                next: AtomicPtr::new(core::ptr::null_mut()),
                start_addr: virt,
                size,
                phys_addr: phys,
                avail: AtomicUsize::new(size),
                nbits,
                words,
                summary,
                map_bytes: bytes,
            });
            Ok(chunk)
        }
    }

    /// Gives the chunk's bookkeeping back to `source`.
    ///
    /// # Safety
    ///
    /// `chunk` came from [`Chunk::create`] with this `source`, is unlinked, and
    /// nothing refers to it any more.
    pub(crate) unsafe fn destroy<S: PageSource>(chunk: NonNull<Chunk>, source: &S) {
        // SAFETY: the caller hands over a live chunk no one else uses.
        let bytes = unsafe { chunk.as_ref().map_bytes };
        // SAFETY: the mapping was made by `source.map(bytes, PAGE_SIZE)`.
        unsafe { source.unmap(chunk.cast(), bytes, PAGE_SIZE) };
    }

    /// The last address of the chunk (inclusive).
    #[inline]
    pub(crate) fn end_addr(&self) -> usize {
        self.start_addr + (self.size - 1)
    }

    /// Whether `addr` is inside the chunk.
    #[inline]
    pub(crate) fn contains(&self, addr: usize) -> bool {
        addr >= self.start_addr && addr <= self.end_addr()
    }

    /// The allocation bitmap.
    #[inline]
    pub(crate) fn bitmap(&self) -> Bitmap<'_> {
        // SAFETY: `words` points to `nbits.div_ceil(64)` atomics inside the
        // chunk's mapping, which lives as long as `self`.
        let words = unsafe {
            core::slice::from_raw_parts(self.words.as_ptr(), self.nbits.div_ceil(BITS_PER_LONG))
        };
        Bitmap::new(words, self.nbits)
    }

    /// The summary, in summarised mode.
    #[inline]
    pub(crate) fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// A searcher over this chunk (through the summary if there is one).
    #[inline]
    pub(crate) fn finder(&self) -> Finder<'_> {
        Finder {
            map: self.bitmap(),
            sum: self.summary.as_ref(),
        }
    }

    /// Marks granules `start..start + nr` allocated, or returns the position
    /// of a granule someone else holds (and changes nothing).
    #[inline]
    pub(crate) fn take(&self, start: usize, nr: usize, order: u32) -> Result<(), usize> {
        let map = self.bitmap();
        map.set_run(start, nr)?;
        if let Some(s) = &self.summary {
            s.refresh(
                &map,
                start / BITS_PER_LONG,
                (start + nr - 1) / BITS_PER_LONG,
            );
        }
        self.avail.fetch_sub(nr << order, Ordering::Relaxed);
        Ok(())
    }

    /// Marks granules `start..start + nr` free, or returns the position of a
    /// granule in the range that is already free (and changes nothing).
    #[inline]
    pub(crate) fn give_back(&self, start: usize, nr: usize, order: u32) -> Result<(), usize> {
        let map = self.bitmap();
        map.clear_run(start, nr)?;
        if let Some(s) = &self.summary {
            s.refresh(
                &map,
                start / BITS_PER_LONG,
                (start + nr - 1) / BITS_PER_LONG,
            );
        }
        self.avail.fetch_add(nr << order, Ordering::Relaxed);
        Ok(())
    }
}
