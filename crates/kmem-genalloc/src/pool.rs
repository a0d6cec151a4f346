//! The pool: a name, a granule, an algorithm and a list of chunks.

use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};

use kmem_platform::{Mutex, Os, PageSource};

use crate::algo::{Algo, ChunkCtx};
use crate::chunk::{Chunk, ChunkRef};
use crate::error::GenPoolError;

/// How a pool searches its bitmaps.
///
/// ```
/// use kmem_genalloc::{GenPool, PoolConfig, Search};
/// let cfg = PoolConfig { search: Search::Linear, ..PoolConfig::new(12) };
/// let pool = GenPool::with_config(kmem_platform::Os::new(), cfg).unwrap();
/// assert_eq!(pool.search(), Search::Linear);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Search {
    /// Through a summary tree beside each bitmap: cost O(depth), nearly flat
    /// from 1 MiB to 1 TiB chunks at any fill level (the default).
    #[default]
    Summary,
    /// Word by word, exactly as the kernel does: cost grows with the chunk
    /// and its fill level. No summary memory (8 bytes per 64 granules less).
    Linear,
}

/// How to build a pool.
///
/// ```
/// let cfg = kmem_genalloc::PoolConfig::new(8).name("sram");
/// assert_eq!(cfg.min_alloc_order, 8);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig<'a> {
    /// log2 of the granule: every allocation is a multiple of `1 << min_alloc_order` bytes.
    pub min_alloc_order: u32,
    /// A name for reports (cut to 31 bytes).
    pub name: &'a str,
    /// Summarised or linear search.
    pub search: Search,
}

impl<'a> PoolConfig<'a> {
    /// Granule `1 << min_alloc_order`, name "genpool", summarised search.
    ///
    /// ```
    /// assert_eq!(kmem_genalloc::PoolConfig::new(12).name, "genpool");
    /// ```
    pub const fn new(min_alloc_order: u32) -> Self {
        PoolConfig {
            min_alloc_order,
            name: "genpool",
            search: Search::Summary,
        }
    }
    /// The same, named `name`.
    ///
    /// ```
    /// assert_eq!(kmem_genalloc::PoolConfig::new(12).name("vram").name, "vram");
    /// ```
    pub const fn name(self, name: &'a str) -> Self {
        PoolConfig { name, ..self }
    }
}

/// A pool's name, stored inline (no allocation).
#[derive(Clone, Copy)]
struct Name {
    bytes: [u8; 31],
    len: u8,
}

impl Name {
    fn new(s: &str) -> Name {
        let mut n = s.len().min(31);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        let mut bytes = [0; 31];
        bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
        Name {
            bytes,
            len: n as u8,
        }
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("genpool")
    }
}

/// One allocation: its address and its size in bytes (the request rounded
/// up to the granule, as `gen_pool_alloc` accounts it).
///
/// ```
/// let pool = kmem_genalloc::GenPool::new(12).unwrap();
/// pool.add(0x1_0000_0000_0000, 1 << 30).unwrap();
/// let a = pool.alloc(5000).unwrap();
/// assert_eq!(a, kmem_genalloc::Allocation { addr: 0x1_0000_0000_0000, size: 8192 });
/// pool.free_alloc(a).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Allocation {
    /// First address.
    pub addr: usize,
    /// Bytes, a multiple of the granule.
    pub size: usize,
}

/// The result of [`GenPool::dma_alloc`]: the allocation and the physical
/// (DMA) address of its start.
///
/// ```
/// let pool = kmem_genalloc::GenPool::new(12).unwrap();
/// pool.add_virt(0x10_0000, 0xfe00_0000, 1 << 20).unwrap();
/// let d = pool.dma_alloc(4096).unwrap();
/// assert_eq!(d.dma, 0xfe00_0000);
/// pool.free_alloc(d.alloc).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaAllocation {
    /// The allocation (virtual address and size).
    pub alloc: Allocation,
    /// Physical address of `alloc.addr` (`u64::MAX` if the chunk was added without one).
    pub dma: u64,
}

/// A general-purpose allocator over address ranges the caller supplies (the
/// kernel's `struct gen_pool`).
///
/// The pool hands out addresses inside its chunks in multiples of the
/// granule `1 << min_alloc_order`. It never reads or writes those addresses:
/// they may be device memory, SRAM, offsets in a file, or unmapped. Its own
/// bookkeeping (chunk headers, bitmaps, summaries) comes from the
/// [`PageSource`] `S`.
///
/// `alloc` and `free` are lock-free (compare-and-swap on the bitmap words,
/// rolled back on collision, as in the kernel) and safe from any number of
/// threads; adding a chunk takes a lock.
///
/// ```
/// use kmem_genalloc::{Algo, GenPool};
/// // A 4 GiB range at an address nothing is mapped at, in 4 KiB granules.
/// let pool = GenPool::new(12).unwrap();
/// pool.add_virt(0x1_0000_0000_0000, 0x80_0000_0000, 4 << 30).unwrap();
/// let a = pool.alloc(1 << 20).unwrap();
/// assert_eq!(pool.virt_to_phys(a.addr), Some(0x80_0000_0000));
/// assert_eq!(pool.avail(), (4 << 30) - (1 << 20));
/// pool.free(a.addr, a.size).unwrap();
/// assert!(pool.free(a.addr, a.size).is_err(), "double free is refused");
/// ```
pub struct GenPool<S: PageSource = Os> {
    /// The newest chunk; each chunk links to the one added before it (the
    /// kernel adds at the head, so allocation tries the newest chunk first).
    /// Only ever swung to a fully built chunk, under `add_lock`.
    head: AtomicPtr<Chunk>,
    /// Serialises adding chunks (the overlap check and the link).
    add_lock: Mutex<()>,
    /// log2 of the granule; `<= 62`.
    order: u32,
    /// Summarised or linear search (fixed at creation: chunks are built for it).
    search: Search,
    /// The algorithm `alloc` uses.
    algo: Algo<'static>,
    name: Name,
    source: S,
    /// The `mp_pool_stats` counters.
    pub(crate) counters: crate::stats::Counters,
}

// SAFETY: the chunks are reached through atomics and are immutable apart
// from their atomics; they are freed only by `Drop`, which has `&mut self`.
// `Algo<'static>` holds at most a `&'static dyn GenAlgo`, which is `Sync`.
unsafe impl<S: PageSource + Send> Send for GenPool<S> {}
// SAFETY: as above; every shared mutation is atomic or under `add_lock`.
unsafe impl<S: PageSource> Sync for GenPool<S> {}

/// What [`GenPool::destroy`] gives back when the pool still has allocations.
pub struct DestroyError<S: PageSource = Os> {
    /// The pool, unchanged.
    pub pool: GenPool<S>,
    /// Why it was not destroyed.
    pub error: GenPoolError,
}

impl<S: PageSource> fmt::Debug for DestroyError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DestroyError({:?}: {})", self.pool.name(), self.error)
    }
}

/// An inconsistency found by [`GenPool::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckFailure {
    /// Start of the chunk where it was found.
    pub chunk: usize,
    /// What disagrees.
    pub what: &'static str,
    /// Summary level and index, when the summary disagrees with the bitmap.
    pub at: (usize, usize),
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chunk {:#x}: {} (at {:?})",
            self.chunk, self.what, self.at
        )
    }
}

impl GenPool<Os> {
    /// A pool with granule `1 << min_alloc_order` whose bookkeeping comes
    /// from the OS (`gen_pool_create`).
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(6).unwrap();
    /// assert_eq!(pool.granule(), 64);
    /// assert!(kmem_genalloc::GenPool::new(63).is_err());
    /// ```
    pub fn new(min_alloc_order: u32) -> Result<Self, GenPoolError> {
        Self::with_config(Os::new(), PoolConfig::new(min_alloc_order))
    }
}

impl<S: PageSource> GenPool<S> {
    /// A pool whose bookkeeping comes from `source`.
    ///
    /// ```
    /// let t = kmem_platform::TestPlatform::new();
    /// let pool = kmem_genalloc::GenPool::with_source(&t, 12).unwrap();
    /// pool.add(0x1000, 0x10000).unwrap();
    /// assert_eq!(t.maps(), 1, "one mapping per chunk");
    /// ```
    pub fn with_source(source: S, min_alloc_order: u32) -> Result<Self, GenPoolError> {
        Self::with_config(source, PoolConfig::new(min_alloc_order))
    }

    /// A pool built as `config` says.
    ///
    /// ```
    /// use kmem_genalloc::{GenPool, PoolConfig};
    /// let pool = GenPool::with_config(kmem_platform::Os::new(), PoolConfig::new(12).name("sram")).unwrap();
    /// assert_eq!(pool.name(), "sram");
    /// ```
    pub fn with_config(source: S, config: PoolConfig<'_>) -> Result<Self, GenPoolError> {
        if config.min_alloc_order > 62 {
            return Err(GenPoolError::BadOrder {
                order: config.min_alloc_order,
            });
        }
        Ok(GenPool {
            head: AtomicPtr::new(core::ptr::null_mut()),
            add_lock: Mutex::new(()),
            order: config.min_alloc_order,
            search: config.search,
            algo: Algo::FirstFit,
            name: Name::new(config.name),
            source,
            counters: crate::stats::Counters::default(),
        })
    }

    /// The pool's name.
    ///
    /// ```
    /// assert_eq!(kmem_genalloc::GenPool::new(12).unwrap().name(), "genpool");
    /// ```
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Renames the pool (cut to 31 bytes).
    ///
    /// ```
    /// let mut pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.set_name("ocram");
    /// assert_eq!(pool.name(), "ocram");
    /// ```
    pub fn set_name(&mut self, name: &str) {
        self.name = Name::new(name);
    }

    /// `min_alloc_order`: log2 of the granule.
    ///
    /// ```
    /// assert_eq!(kmem_genalloc::GenPool::new(12).unwrap().min_alloc_order(), 12);
    /// ```
    pub fn min_alloc_order(&self) -> u32 {
        self.order
    }

    /// Bytes per granule (per bitmap bit).
    ///
    /// ```
    /// assert_eq!(kmem_genalloc::GenPool::new(12).unwrap().granule(), 4096);
    /// ```
    pub fn granule(&self) -> usize {
        1 << self.order
    }

    /// How this pool searches.
    ///
    /// ```
    /// assert_eq!(kmem_genalloc::GenPool::new(12).unwrap().search(), kmem_genalloc::Search::Summary);
    /// ```
    pub fn search(&self) -> Search {
        self.search
    }

    /// The algorithm `alloc` uses.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// assert!(matches!(pool.algo(), kmem_genalloc::Algo::FirstFit));
    /// ```
    pub fn algo(&self) -> Algo<'static> {
        self.algo
    }

    /// Sets the algorithm `alloc` uses (`gen_pool_set_algo`).
    ///
    /// ```
    /// use kmem_genalloc::{Algo, GenPool};
    /// let mut pool = GenPool::new(12).unwrap();
    /// pool.add(0, 0x10000).unwrap();
    /// pool.set_algo(Algo::BestFit).unwrap();
    /// let a = pool.alloc(4096).unwrap();
    /// assert_eq!(a.addr, 0);
    /// assert!(pool.set_algo(Algo::FirstFitAlign { align: 3 }).is_err());
    /// # pool.free_alloc(a).unwrap();
    /// ```
    pub fn set_algo(&mut self, algo: Algo<'static>) -> Result<(), GenPoolError> {
        algo.validate(self.granule())?;
        self.algo = algo;
        Ok(())
    }

    /// The chunks, newest first.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x1000, 0x1000).unwrap();
    /// pool.add(0x8000, 0x1000).unwrap();
    /// let starts: Vec<usize> = pool.chunks().map(|c| c.start_addr()).collect();
    /// assert_eq!(starts, [0x8000, 0x1000]);
    /// ```
    pub fn chunks(&self) -> Chunks<'_> {
        // SAFETY: a non-null head points to a live chunk (see `head`).
        let next = unsafe { self.head.load(Ordering::Acquire).as_ref() };
        Chunks { next }
    }

    /// Calls `f` for every chunk, newest first (`gen_pool_for_each_chunk`).
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x1000, 0x3000).unwrap();
    /// let mut total = 0;
    /// pool.for_each_chunk(|c| total += c.size());
    /// assert_eq!(total, 0x3000);
    /// ```
    pub fn for_each_chunk(&self, mut f: impl FnMut(ChunkRef<'_>)) {
        for c in self.chunks() {
            f(c);
        }
    }

    fn chunk_of(&self, addr: usize) -> Option<&Chunk> {
        self.chunks().map(|c| c.chunk).find(|c| c.contains(addr))
    }

    /// Adds the range `[virt, virt + size)`, whose physical address is
    /// `phys`, to the pool (`gen_pool_add_virt`). The range is never
    /// touched; only its bitmap and summary are mapped, from the pool's
    /// page source. Bytes past the last whole granule are never handed out.
    ///
    /// ```
    /// use kmem_genalloc::{GenPool, GenPoolError};
    /// let pool = GenPool::new(12).unwrap();
    /// pool.add_virt(0x10000, 0x9000_0000, 0x10000).unwrap();
    /// assert!(matches!(pool.add(0x1f000, 0x2000), Err(GenPoolError::Overlap { .. })));
    /// assert_eq!(pool.add(0x40000, 100), Err(GenPoolError::BadChunk { addr: 0x40000, size: 100 }));
    /// assert_eq!(pool.size(), 0x10000);
    /// ```
    pub fn add_virt(&self, virt: usize, phys: u64, size: usize) -> Result<(), GenPoolError> {
        if size == 0 {
            return Err(GenPoolError::ZeroSize);
        }
        if size >> self.order == 0 || virt.checked_add(size - 1).is_none() {
            return Err(GenPoolError::BadChunk { addr: virt, size });
        }
        let _guard = self.add_lock.lock();
        let last = virt + (size - 1);
        if let Some(c) = self
            .chunks()
            .find(|c| virt <= c.end_addr() && c.start_addr() <= last)
        {
            return Err(GenPoolError::Overlap {
                addr: virt,
                size,
                other: c.start_addr(),
                other_size: c.size(),
            });
        }
        let chunk = Chunk::create(
            &self.source,
            virt,
            phys,
            size,
            self.order,
            self.search == Search::Summary,
        )?;
        // SAFETY: the chunk is fresh and not yet shared.
        unsafe { chunk.as_ref() }
            .next
            .store(self.head.load(Ordering::Relaxed), Ordering::Relaxed);
        self.head.store(chunk.as_ptr(), Ordering::Release);
        Ok(())
    }

    /// Adds `[addr, addr + size)` with no physical address (`gen_pool_add`):
    /// [`virt_to_phys`](Self::virt_to_phys) then answers `None` for it.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10000, 0x10000).unwrap();
    /// assert_eq!(pool.virt_to_phys(0x10000), None);
    /// ```
    pub fn add(&self, addr: usize, size: usize) -> Result<(), GenPoolError> {
        self.add_virt(addr, u64::MAX, size)
    }

    /// Allocates `size` bytes (rounded up to the granule) with the pool's
    /// algorithm (`gen_pool_alloc`).
    ///
    /// ```
    /// use kmem_genalloc::{GenPool, GenPoolError};
    /// let pool = GenPool::new(12).unwrap();
    /// pool.add(0x1000_0000, 0x4000).unwrap();
    /// let a = pool.alloc(1).unwrap();
    /// assert_eq!((a.addr, a.size), (0x1000_0000, 4096));
    /// assert_eq!(pool.alloc(0), Err(GenPoolError::ZeroSize));
    /// assert_eq!(pool.alloc(0x4000), Err(GenPoolError::NoSpace { size: 0x4000 }));
    /// # pool.free_alloc(a).unwrap();
    /// ```
    #[inline]
    pub fn alloc(&self, size: usize) -> Result<Allocation, GenPoolError> {
        self.alloc_algo(size, self.algo)
    }

    /// Allocates `size` bytes with `algo` instead of the pool's algorithm
    /// (`gen_pool_alloc_algo`).
    ///
    /// ```
    /// use kmem_genalloc::{Algo, GenPool};
    /// let pool = GenPool::new(12).unwrap();
    /// pool.add(0, 0x100000).unwrap();
    /// let a = pool.alloc_algo(3 * 4096, Algo::FirstFitOrderAlign).unwrap();
    /// let b = pool.alloc_algo(3 * 4096, Algo::FirstFitOrderAlign).unwrap();
    /// assert_eq!((a.addr, b.addr), (0, 0x4000), "aligned to 4 granules");
    /// # pool.free_alloc(a).unwrap(); pool.free_alloc(b).unwrap();
    /// ```
    pub fn alloc_algo(&self, size: usize, algo: Algo<'_>) -> Result<Allocation, GenPoolError> {
        let r = self.alloc_algo_uncounted(size, algo);
        match &r {
            Ok(a) => self.counters.alloc(a.size),
            Err(_) => self.counters.failed(),
        }
        r
    }

    /// [`alloc_algo`](Self::alloc_algo) without the statistics.
    #[inline]
    fn alloc_algo_uncounted(
        &self,
        size: usize,
        algo: Algo<'_>,
    ) -> Result<Allocation, GenPoolError> {
        if size == 0 {
            return Err(GenPoolError::ZeroSize);
        }
        algo.validate(self.granule())?;
        let nr = size.div_ceil(self.granule());
        for c in self.chunks() {
            let chunk = c.chunk;
            if size > chunk.avail.load(Ordering::Relaxed) {
                continue;
            }
            if let Some(bit) = self.alloc_in(chunk, nr, algo) {
                return Ok(Allocation {
                    addr: chunk.start_addr + (bit << self.order),
                    size: nr << self.order,
                });
            }
        }
        Err(Self::no_space(size))
    }

    #[cold]
    fn no_space(size: usize) -> GenPoolError {
        GenPoolError::NoSpace { size }
    }

    /// Finds and takes `nr` granules in `chunk`; on a collision with another
    /// thread, searches again from the rejected bit (the kernel's `retry`).
    #[inline]
    fn alloc_in(&self, chunk: &Chunk, nr: usize, algo: Algo<'_>) -> Option<usize> {
        let ctx = ChunkCtx {
            start_addr: chunk.start_addr,
            min_alloc_order: self.order,
        };
        let mut start = 0;
        let mut collisions = 0u32;
        loop {
            let bit = match self.search {
                Search::Summary => algo.find_summarised(&chunk.finder(), start, nr, &ctx),
                Search::Linear => algo.find_linear(&chunk.bitmap(), start, nr, &ctx),
            }?;
            match chunk.take(bit, nr, self.order) {
                Ok(()) => return Some(bit),
                Err(_) => {
                    // A user algorithm may keep answering a bit that is in
                    // use; give up on this chunk rather than spin forever.
                    collisions += 1;
                    if matches!(algo, Algo::Custom(_)) && collisions > 1000 {
                        return None;
                    }
                    start = bit;
                }
            }
        }
    }

    /// Allocates and also returns the physical (DMA) address (`gen_pool_dma_alloc`).
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add_virt(0x7000_0000, 0x1000_0000, 0x10000).unwrap();
    /// let a = pool.alloc(4096).unwrap();
    /// let d = pool.dma_alloc(4096).unwrap();
    /// assert_eq!(d.dma, 0x1000_1000);
    /// # pool.free_alloc(a).unwrap(); pool.free_alloc(d.alloc).unwrap();
    /// ```
    pub fn dma_alloc(&self, size: usize) -> Result<DmaAllocation, GenPoolError> {
        self.dma_alloc_algo(size, self.algo)
    }

    /// [`dma_alloc`](Self::dma_alloc) with a given algorithm (`gen_pool_dma_alloc_algo`).
    ///
    /// ```
    /// use kmem_genalloc::{Algo, GenPool};
    /// let pool = GenPool::new(12).unwrap();
    /// pool.add_virt(0x7000_0000, 0x1000_0000, 0x10000).unwrap();
    /// let d = pool.dma_alloc_algo(4096, Algo::Fixed { offset: 0x2000 }).unwrap();
    /// assert_eq!(d.dma, 0x1000_2000);
    /// # pool.free_alloc(d.alloc).unwrap();
    /// ```
    pub fn dma_alloc_algo(
        &self,
        size: usize,
        algo: Algo<'_>,
    ) -> Result<DmaAllocation, GenPoolError> {
        let alloc = self.alloc_algo(size, algo)?;
        Ok(DmaAllocation {
            alloc,
            dma: self.virt_to_phys(alloc.addr).unwrap_or(u64::MAX),
        })
    }

    /// Frees `size` bytes at `addr` (`gen_pool_free`). Like the kernel, any
    /// allocated run may be freed, also part of an allocation. Every bad
    /// input is refused with the pool unchanged: an address in no chunk, off
    /// the granule grid, running past its chunk, or not (wholly) allocated.
    ///
    /// ```
    /// use kmem_genalloc::{GenPool, GenPoolError};
    /// let pool = GenPool::new(12).unwrap();
    /// pool.add(0x10000, 0x10000).unwrap();
    /// let a = pool.alloc(0x3000).unwrap();
    /// assert!(matches!(pool.free(a.addr + 1, 4096), Err(GenPoolError::Unaligned { .. })));
    /// assert!(matches!(pool.free(a.addr, 0x4000), Err(GenPoolError::NotAllocated { .. })));
    /// assert!(matches!(pool.free(0x1f000, 0x2000), Err(GenPoolError::PastChunkEnd { .. })));
    /// pool.free(a.addr + 0x1000, 0x2000).unwrap(); // the tail of it
    /// pool.free(a.addr, 0x1000).unwrap();
    /// assert_eq!(pool.avail(), 0x10000);
    /// ```
    #[inline]
    pub fn free(&self, addr: usize, size: usize) -> Result<(), GenPoolError> {
        if size == 0 {
            return Err(GenPoolError::ZeroSize);
        }
        let chunk = self
            .chunk_of(addr)
            .ok_or(GenPoolError::NotInPool { addr })?;
        let off = addr - chunk.start_addr;
        if off & (self.granule() - 1) != 0 {
            return Err(GenPoolError::Unaligned {
                addr,
                granule: self.granule(),
            });
        }
        let nr = size.div_ceil(self.granule());
        let bit = off >> self.order;
        if nr > chunk.nbits - bit {
            return Err(GenPoolError::PastChunkEnd {
                addr,
                size,
                chunk_end: chunk.end_addr(),
            });
        }
        chunk
            .give_back(bit, nr, self.order)
            .map(|()| self.counters.free(nr << self.order))
            .map_err(|z| GenPoolError::NotAllocated {
                addr,
                size,
                first_free: chunk.start_addr + (z << self.order),
            })
    }

    /// Frees an [`Allocation`].
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10000, 0x10000).unwrap();
    /// let a = pool.alloc(100).unwrap();
    /// pool.free_alloc(a).unwrap();
    /// ```
    #[inline]
    pub fn free_alloc(&self, a: Allocation) -> Result<(), GenPoolError> {
        self.free(a.addr, a.size)
    }

    /// The physical address of `addr` (`gen_pool_virt_to_phys`), or `None`
    /// if it is in no chunk, or its chunk was added without one.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add_virt(0x10000, 0x5000_0000, 0x10000).unwrap();
    /// assert_eq!(pool.virt_to_phys(0x10123), Some(0x5000_0123));
    /// assert_eq!(pool.virt_to_phys(0x20000), None);
    /// ```
    pub fn virt_to_phys(&self, addr: usize) -> Option<u64> {
        let c = self.chunk_of(addr)?;
        (c.phys_addr != u64::MAX).then(|| c.phys_addr + (addr - c.start_addr) as u64)
    }

    /// Bytes not allocated, over all chunks (`gen_pool_avail`).
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10000, 0x10000).unwrap();
    /// let a = pool.alloc(0x3000).unwrap();
    /// assert_eq!(pool.avail(), 0xd000);
    /// # pool.free_alloc(a).unwrap();
    /// ```
    pub fn avail(&self) -> usize {
        self.chunks().map(|c| c.avail()).sum()
    }

    /// Bytes in all chunks (`gen_pool_size`).
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10000, 0x10000).unwrap();
    /// pool.add(0x40000, 0x2000).unwrap();
    /// assert_eq!(pool.size(), 0x12000);
    /// ```
    pub fn size(&self) -> usize {
        self.chunks().map(|c| c.size()).sum()
    }

    /// Whether `[start, start + size)` lies wholly within one chunk
    /// (`gen_pool_has_addr`).
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10000, 0x10000).unwrap();
    /// assert!(pool.has_addr(0x10000, 0x10000));
    /// assert!(!pool.has_addr(0x1f000, 0x2000));
    /// assert!(!pool.has_addr(0x30000, 1));
    /// ```
    pub fn has_addr(&self, start: usize, size: usize) -> bool {
        let Some(end) = start.checked_add(size.max(1) - 1) else {
            return false;
        };
        self.chunk_of(start).is_some_and(|c| end <= c.end_addr())
    }

    /// Bytes still allocated and the first allocated address, if any.
    fn live(&self) -> Option<(usize, usize)> {
        let mut bytes = 0;
        let mut first = None;
        for c in self.chunks() {
            let used = c.size() - c.avail();
            if used != 0 {
                bytes += used;
                let bit = c.bitmap().find_next_bit(0);
                first.get_or_insert(c.start_addr() + (bit << self.order));
            }
        }
        first.map(|f| (bytes, f))
    }

    /// Destroys the pool (`gen_pool_destroy`), giving its bookkeeping back.
    /// A pool that still has allocations is not destroyed: it comes back
    /// unchanged in the error.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10000, 0x10000).unwrap();
    /// let a = pool.alloc(4096).unwrap();
    /// let e = pool.destroy().unwrap_err();
    /// assert!(e.error.to_string().contains("4096 bytes allocated"));
    /// let pool = e.pool;
    /// pool.free_alloc(a).unwrap();
    /// pool.destroy().unwrap();
    /// ```
    // The error hands the pool itself back (with its cache-line aligned
    // counters): large by design, and returned only on a caller's mistake.
    #[allow(clippy::result_large_err)]
    pub fn destroy(self) -> Result<(), DestroyError<S>> {
        if let Some((bytes, first)) = self.live() {
            return Err(DestroyError {
                pool: self,
                error: GenPoolError::LiveAllocations { bytes, first },
            });
        }
        drop(self);
        Ok(())
    }

    /// Checks the pool's invariants: every chunk's `avail` matches its
    /// bitmap, and every summary byte matches the bitmap below it. Only
    /// meaningful while no allocation or free is in flight.
    ///
    /// ```
    /// let pool = kmem_genalloc::GenPool::new(12).unwrap();
    /// pool.add(0x10000, 0x100000).unwrap();
    /// let a = pool.alloc(0x5000).unwrap();
    /// pool.check().unwrap();
    /// # pool.free_alloc(a).unwrap();
    /// ```
    pub fn check(&self) -> Result<(), CheckFailure> {
        for c in self.chunks() {
            let map = c.bitmap();
            let set: usize = map
                .words()
                .iter()
                .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
                .sum();
            if c.size() - (set << self.order) != c.avail() {
                return Err(CheckFailure {
                    chunk: c.start_addr(),
                    what: "avail disagrees with the bitmap",
                    at: (0, 0),
                });
            }
            if let Some(s) = c.chunk.summary() {
                s.check(&map).map_err(|(lvl, i, _, _)| CheckFailure {
                    chunk: c.start_addr(),
                    what: "summary disagrees with the bitmap",
                    at: (lvl, i),
                })?;
            }
        }
        Ok(())
    }
}

impl<S: PageSource> Drop for GenPool<S> {
    fn drop(&mut self) {
        if let Some((bytes, first)) = self.live() {
            kmem_platform::kmem_report!(
                "genalloc: pool '{}' dropped with {} bytes still allocated (first at {:#x})",
                self.name(),
                bytes,
                first
            );
        }
        let mut p = NonNull::new(self.head.swap(core::ptr::null_mut(), Ordering::Acquire));
        while let Some(c) = p {
            // SAFETY: `&mut self`: no one else can reach the chunks; each is
            // unlinked before it is destroyed.
            unsafe {
                p = NonNull::new(c.as_ref().next.load(Ordering::Relaxed));
                Chunk::destroy(c, &self.source);
            }
        }
    }
}

impl<S: PageSource> fmt::Debug for GenPool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenPool")
            .field("name", &self.name())
            .field("min_alloc_order", &self.order)
            .field("search", &self.search)
            .field("algo", &self.algo)
            .field("size", &self.size())
            .field("avail", &self.avail())
            .finish()
    }
}

/// Iterator over a pool's chunks, newest first ([`GenPool::chunks`]).
#[derive(Clone)]
pub struct Chunks<'a> {
    next: Option<&'a Chunk>,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = ChunkRef<'a>;
    #[inline]
    fn next(&mut self) -> Option<ChunkRef<'a>> {
        let c = self.next?;
        // SAFETY: `next` is null or a live chunk of the same pool.
        self.next = unsafe { c.next.load(Ordering::Acquire).as_ref() };
        Some(ChunkRef { chunk: c })
    }
}
