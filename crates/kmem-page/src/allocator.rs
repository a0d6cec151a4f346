//! `PageAllocator`: the buddy allocator over a page source.

use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use kmem_platform::{Mutex, Os, PageSource};

use crate::buddy::Zone;
use crate::desc::PageKind;
use crate::error::PageError;
use crate::pcp::{AllSets, PCP_ORDERS, PCP_SETS, PerCpuPages};
use crate::region::{HUGE_META, Region, RegionKind, SOURCE_META, meta_size};
use crate::{Gfp, MAX_PAGE_ORDER, NR_PAGE_ORDERS, PAGE_SHIFT, PAGE_SIZE, REGION_SIZE, registry};

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// Pages per source region (one block of the largest order).
const REGION_PAGES: usize = 1 << MAX_PAGE_ORDER;

/// Tunables of a [`PageAllocator`].
///
/// ```
/// use kmem_page::Config;
/// let c = Config { keep_free_pages: 0, ..Config::DEFAULT };
/// assert_eq!(c.max_pages, usize::MAX);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The watermark: free pages to keep mapped. A wholly free region goes back
    /// to the source only while at least this many free pages stay behind.
    /// (Page faults cost microseconds; handing memory back too eagerly costs more
    /// than it saves.)
    pub keep_free_pages: usize,
    /// The most pages this allocator maps from its source (buddy regions and
    /// huge mappings together). Allocation fails with `NoMemory` beyond it.
    pub max_pages: usize,
}

impl Config {
    /// Keep two regions (8 MiB) of free pages; no limit.
    pub const DEFAULT: Config = Config {
        keep_free_pages: 2 * REGION_PAGES,
        max_pages: usize::MAX,
    };
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The buddy page allocator: blocks of `2^order` pages, orders
/// `0..=MAX_PAGE_ORDER`, from size-aligned regions of its [`PageSource`].
///
/// ```
/// use kmem_page::{Gfp, PageAllocator};
/// let pages = PageAllocator::new_os();
/// let mut block = pages.alloc(3, Gfp::KERNEL | Gfp::ZERO)?;   // 8 pages, zeroed
/// assert_eq!(block.len(), 8 * 4096);
/// assert_eq!(block.as_ptr() as usize % block.len(), 0);        // aligned to its size
/// block.as_mut_slice()[0] = 42;
/// drop(block);                                                  // back to the free lists
/// assert_eq!(pages.stats().allocated_pages, 0);
/// # Ok::<(), kmem_page::PageError>(())
/// ```
pub struct PageAllocator<S: PageSource = Os> {
    source: S,
    /// The per-cpu lists (`struct per_cpu_pages`), one set per cpu, each under
    /// its own lock. Lock order: a set's lock may be held while taking `zone`,
    /// never the other way round; several sets only in index order.
    pub(crate) pcp: [PerCpuPages; PCP_SETS],
    /// The buddy lists and the zone's accounting (`struct zone`). Taken after
    /// a set's lock, never before one.
    pub(crate) zone: Mutex<Zone>,
    /// The watermark (`Config::keep_free_pages`).
    keep_free: AtomicUsize,
    /// `Config::max_pages`.
    limit: AtomicUsize,
    /// This allocator's id in its regions (0 until its first region exists).
    id: AtomicUsize,
}

impl PageAllocator<Os> {
    /// An allocator over the operating system's memory, with default tunables.
    pub const fn new_os() -> Self {
        Self::new(Os::new())
    }
}

impl<S: PageSource> PageAllocator<S> {
    /// An allocator over `source` with default tunables. Maps nothing until used.
    pub const fn new(source: S) -> Self {
        Self::with_config(source, Config::DEFAULT)
    }

    /// An allocator over `source` with the given tunables.
    ///
    /// ```
    /// use kmem_page::{Config, PageAllocator};
    /// use kmem_platform::TestPlatform;
    /// let pages = PageAllocator::with_config(TestPlatform::new(), Config { keep_free_pages: 0, max_pages: 1024 });
    /// assert_eq!(pages.stats().managed_pages, 0);
    /// ```
    pub const fn with_config(source: S, config: Config) -> Self {
        PageAllocator {
            source,
            pcp: [const { PerCpuPages::new() }; PCP_SETS],
            zone: Mutex::new(Zone::new()),
            keep_free: AtomicUsize::new(config.keep_free_pages),
            limit: AtomicUsize::new(config.max_pages),
            id: AtomicUsize::new(0),
        }
    }

    /// The page source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Sets the watermark of free pages kept mapped.
    pub fn set_keep_free_pages(&self, pages: usize) {
        self.keep_free.store(pages, Ordering::Relaxed);
    }

    /// Sets the most pages this allocator maps from its source.
    pub fn set_max_pages(&self, pages: usize) {
        self.limit.store(pages, Ordering::Relaxed);
    }

    /// The current tunables.
    pub fn config(&self) -> Config {
        Config {
            keep_free_pages: self.keep_free.load(Ordering::Relaxed),
            max_pages: self.limit.load(Ordering::Relaxed),
        }
    }

    /// The watermark, for the free paths.
    #[inline]
    pub(crate) fn keep_free(&self) -> usize {
        self.keep_free.load(Ordering::Relaxed)
    }

    fn id(&self) -> usize {
        let id = self.id.load(Ordering::Acquire);
        if id != 0 {
            return id;
        }
        let new = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        match self
            .id
            .compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => new,
            Err(cur) => cur,
        }
    }

    /// Allocates a block of `2^order` pages, aligned to its size, owned by the
    /// returned handle (freed when it drops).
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator};
    /// let pages = PageAllocator::new_os();
    /// let b = pages.alloc(0, Gfp::KERNEL).unwrap();
    /// assert_eq!(b.order(), 0);
    /// ```
    pub fn alloc(&self, order: u32, gfp: Gfp) -> Result<crate::Pages<'_, S>, PageError> {
        let p = self.alloc_raw(order, gfp)?;
        // SAFETY: `p` is a fresh order-`order` block of this allocator, owned by no one else.
        Ok(unsafe { crate::Pages::from_raw(self, p, order) })
    }

    /// Allocates a block of `2^order` pages and returns its address; the caller
    /// frees it with [`free_raw`](Self::free_raw). This is `__get_free_pages`.
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator};
    /// let pages = PageAllocator::new_os();
    /// let p = pages.alloc_raw(1, Gfp::KERNEL).unwrap();
    /// // SAFETY: an order-1 block from this allocator, not used again.
    /// unsafe { pages.free_raw(p, 1).unwrap() };
    /// ```
    pub fn alloc_raw(&self, order: u32, gfp: Gfp) -> Result<NonNull<u8>, PageError> {
        self.alloc_kind(order, gfp, PageKind::Pages)
    }

    /// Allocates a block for an upper layer, marked as `kind` (`Slab` for the
    /// slab layer, `Large` for kmalloc). Its owner words start at 0.
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator, PageKind};
    /// let pages = PageAllocator::new_os();
    /// let p = pages.alloc_kind(0, Gfp::KERNEL, PageKind::Slab).unwrap();
    /// assert_eq!(kmem_page::lookup(p.as_ptr() as usize).unwrap().kind(), PageKind::Slab);
    /// // SAFETY: the block came from `alloc_kind(0, .., Slab)` and is not used again.
    /// unsafe { pages.free_kind(p, 0, PageKind::Slab).unwrap() };
    /// ```
    pub fn alloc_kind(
        &self,
        order: u32,
        gfp: Gfp,
        kind: PageKind,
    ) -> Result<NonNull<u8>, PageError> {
        let r = self.alloc_kind_untraced(kmem_platform::cpu::current_cpu(), order, gfp, kind);
        if let Ok(p) = r {
            crate::trace::trace_mm_page_alloc!(p.as_ptr(), order, gfp, kind);
        }
        r
    }

    /// [`alloc_kind`](Self::alloc_kind) from the per-cpu lists of cpu `cpu`
    /// (set `cpu % PCP_SETS`) instead of the calling thread's cpu: for tests,
    /// and for callers that pin their threads and know their cpu. Any cpu
    /// number is valid; blocks may be freed on any cpu.
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator, PageKind};
    /// let pages = PageAllocator::new_os();
    /// let p = pages.alloc_kind_on(1, 0, Gfp::KERNEL, PageKind::Pages).unwrap();
    /// // SAFETY: an order-0 block of `pages`, not used again.
    /// unsafe { pages.free_kind_on(0, p, 0, PageKind::Pages).unwrap() };
    /// pages.check().unwrap();
    /// ```
    pub fn alloc_kind_on(
        &self,
        cpu: usize,
        order: u32,
        gfp: Gfp,
        kind: PageKind,
    ) -> Result<NonNull<u8>, PageError> {
        let r = self.alloc_kind_untraced(cpu, order, gfp, kind);
        if let Ok(p) = r {
            crate::trace::trace_mm_page_alloc!(p.as_ptr(), order, gfp, kind);
        }
        r
    }

    /// [`alloc_kind`](Self::alloc_kind) without its trace event: the cpu's
    /// list (or the buddy lists above `PCP_ORDERS`), else the slow path.
    #[inline]
    fn alloc_kind_untraced(
        &self,
        cpu: usize,
        order: u32,
        gfp: Gfp,
        kind: PageKind,
    ) -> Result<NonNull<u8>, PageError> {
        if order > MAX_PAGE_ORDER {
            return Err(PageError::OrderTooLarge { order });
        }
        debug_assert!(kind.is_allocated());
        match self.rmqueue(cpu, order, gfp, kind) {
            Some(p) => Ok(p),
            None => self.alloc_slow(cpu, order, gfp, kind),
        }
    }

    /// `rmqueue`: one attempt at a block, from the cpu's per-cpu list or the
    /// buddy lists, zeroed if asked.
    #[inline]
    fn rmqueue(&self, cpu: usize, order: u32, gfp: Gfp, kind: PageKind) -> Option<NonNull<u8>> {
        let zero = gfp.zero();
        let (addr, zeroed) = if (order as usize) < PCP_ORDERS {
            self.rmqueue_pcplist(cpu, order, kind, zero)?
        } else {
            self.rmqueue_buddy(order, kind, zero)?
        };
        if zero && !zeroed {
            // SAFETY: the block was just taken off the lists for our caller;
            // nothing else refers to it.
            unsafe { core::ptr::write_bytes(addr as *mut u8, 0, PAGE_SIZE << order) };
        }
        // SAFETY: region memory never starts at address 0.
        Some(unsafe { NonNull::new_unchecked(addr as *mut u8) })
    }

    /// A block of `order` straight from the buddy lists, in one zone-lock hold.
    fn rmqueue_buddy(&self, order: u32, kind: PageKind, zero: bool) -> Option<(usize, bool)> {
        let mut z = self.zone.lock();
        let (addr, zeroed) = z.take(order, kind)?;
        if zero {
            if zeroed {
                z.stats.zero_skips += 1;
            } else {
                z.stats.zero_fills += 1;
            }
        }
        z.used_pages += 1 << order;
        Some((addr, zeroed))
    }

    /// `__alloc_pages_slowpath`: drain the per-cpu lists, map a region, run
    /// the shrinkers, wait (`__GFP_NOFAIL`), or fail.
    #[cold]
    fn alloc_slow(
        &self,
        cpu: usize,
        order: u32,
        gfp: Gfp,
        kind: PageKind,
    ) -> Result<NonNull<u8>, PageError> {
        let mut reclaimed = false;
        loop {
            if self.drain() > 0 || self.grow() {
                if let Some(p) = self.rmqueue(cpu, order, gfp, kind) {
                    return Ok(p);
                }
                continue;
            }
            if (gfp.may_wait() || gfp.nofail()) && !reclaimed {
                crate::shrink::run_shrinkers();
                reclaimed = true;
                if let Some(p) = self.rmqueue(cpu, order, gfp, kind) {
                    return Ok(p);
                }
                continue;
            }
            if gfp.nofail() {
                kmem_platform::time::sleep_ns(1_000_000);
                reclaimed = false;
                if let Some(p) = self.rmqueue(cpu, order, gfp, kind) {
                    return Ok(p);
                }
                continue;
            }
            self.zone.lock().stats.failures += 1;
            return Err(PageError::NoMemory { order });
        }
    }

    /// Maps one more region from the source. Returns whether it did.
    #[cold]
    fn grow(&self) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        {
            let mut z = self.zone.lock();
            if z.source_pages + z.huge_pages + REGION_PAGES > limit {
                return false;
            }
            z.source_pages += REGION_PAGES; // reserve while mapping
        }
        let unreserve = || self.zone.lock().source_pages -= REGION_PAGES;
        let Some(mem) = self.source.map(REGION_SIZE, REGION_SIZE) else {
            unreserve();
            return false;
        };
        let Some(meta) = SOURCE_META.get() else {
            // SAFETY: `mem` was mapped just above with this size and alignment.
            unsafe { self.source.unmap(mem, REGION_SIZE, REGION_SIZE) };
            unreserve();
            return false;
        };
        let base = mem.as_ptr() as usize;
        // SAFETY: `meta` is an exclusive, 64-aligned, process-lifetime block of
        // `meta_size(REGION_PAGES)` bytes from `SOURCE_META`.
        let r = unsafe {
            Region::init(
                meta,
                REGION_PAGES,
                base,
                REGION_PAGES,
                self.id(),
                RegionKind::Source,
            )
        };
        // SAFETY: `r` was just initialised and is not shared yet.
        unsafe { *r.as_ref().map_size.get() = REGION_SIZE };
        if registry::register(base, base, base + REGION_SIZE, r, false).is_err() {
            // SAFETY: as above; nothing refers to the region yet.
            unsafe {
                self.source.unmap(mem, REGION_SIZE, REGION_SIZE);
                SOURCE_META.put(meta);
            }
            unreserve();
            return false;
        }
        // SAFETY: region metadata lives for the process.
        let region: &'static Region = unsafe { &*r.as_ptr() };
        let mut z = self.zone.lock();
        z.link_region(region);
        z.managed_pages += REGION_PAGES;
        z.free_pages += REGION_PAGES;
        z.stats.regions_mapped += 1;
        z.push(region.desc(0), region, base, MAX_PAGE_ORDER, true);
        true
    }

    /// Checks that `addr` heads an allocated block of `order` and `kind` of this
    /// allocator; returns its region and page index.
    fn validate(
        &self,
        addr: usize,
        order: u32,
        kind: PageKind,
    ) -> Result<(&'static Region, usize), PageError> {
        if order > MAX_PAGE_ORDER {
            return Err(PageError::OrderTooLarge { order });
        }
        let region = registry::slot(addr)
            .filter(|r| r.contains(addr))
            .ok_or(PageError::NotKmem { addr })?;
        if region.owner_id() != self.id.load(Ordering::Acquire) {
            return Err(PageError::WrongAllocator { addr });
        }
        if region.kind() == RegionKind::Huge {
            let d = region.desc(0);
            return Err(if d.kind().is_allocated() {
                PageError::WrongKind {
                    addr,
                    kind: d.kind(),
                }
            } else {
                PageError::NotAllocated { addr }
            });
        }
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(match region.head_of(region.index_of(addr)) {
                Some(h) => PageError::NotHead {
                    addr,
                    head: region.addr_of(h),
                },
                None => PageError::Misaligned { addr },
            });
        }
        let idx = region.index_of(addr);
        let d = region.desc(idx);
        match d.kind() {
            k if k == kind => {
                if d.order() != order {
                    return Err(PageError::WrongOrder {
                        addr,
                        given: order,
                        actual: d.order(),
                    });
                }
                Ok((region, idx))
            }
            PageKind::Tail => Err(match region.head_of(idx) {
                Some(h) => PageError::NotHead {
                    addr,
                    head: region.addr_of(h),
                },
                None => PageError::NotAllocated { addr },
            }),
            PageKind::Free | PageKind::Cached | PageKind::Reserved => {
                Err(PageError::NotAllocated { addr })
            }
            other => Err(PageError::WrongKind { addr, kind: other }),
        }
    }

    /// Frees a block from [`alloc_raw`](Self::alloc_raw). Bad input — an address
    /// kmem never handed out, an interior address, a wrong order, a double free,
    /// a block of another layer — is refused with an error and changes nothing.
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator, PageError};
    /// let pages = PageAllocator::new_os();
    /// let p = pages.alloc_raw(2, Gfp::KERNEL).unwrap();
    /// // SAFETY (for each call): `p` is an order-2 block of `pages`; wrong calls are refused.
    /// assert!(matches!(unsafe { pages.free_raw(p, 1) }, Err(PageError::WrongOrder { .. })));
    /// unsafe { pages.free_raw(p, 2).unwrap() };
    /// assert!(matches!(unsafe { pages.free_raw(p, 2) }, Err(PageError::NotAllocated { .. })));
    /// ```
    ///
    /// # Safety
    ///
    /// If `ptr` does head an allocated order-`order` block of this allocator,
    /// nothing may use that block afterwards (the check cannot tell a stale
    /// copy of a pointer from the owner's).
    pub unsafe fn free_raw(&self, ptr: NonNull<u8>, order: u32) -> Result<(), PageError> {
        // SAFETY: passed on from our caller.
        unsafe { self.free_kind(ptr, order, PageKind::Pages) }
    }

    /// Frees a block an upper layer allocated with [`alloc_kind`](Self::alloc_kind).
    ///
    /// # Safety
    ///
    /// As for [`free_raw`](Self::free_raw).
    pub unsafe fn free_kind(
        &self,
        ptr: NonNull<u8>,
        order: u32,
        kind: PageKind,
    ) -> Result<(), PageError> {
        // SAFETY: passed on from our caller.
        unsafe { self.free_kind_on(kmem_platform::cpu::current_cpu(), ptr, order, kind) }
    }

    /// [`free_kind`](Self::free_kind) onto the per-cpu lists of cpu `cpu`
    /// (set `cpu % PCP_SETS`) instead of the calling thread's cpu (see
    /// [`alloc_kind_on`](Self::alloc_kind_on)).
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator, PageKind};
    /// let pages = PageAllocator::new_os();
    /// let p = pages.alloc_kind_on(0, 1, Gfp::KERNEL, PageKind::Slab).unwrap();
    /// // SAFETY: an order-1 slab block of `pages`, not used again.
    /// unsafe { pages.free_kind_on(3, p, 1, PageKind::Slab).unwrap() };
    /// assert_eq!(pages.stats().allocated_pages, 0);
    /// ```
    ///
    /// # Safety
    ///
    /// As for [`free_raw`](Self::free_raw).
    pub unsafe fn free_kind_on(
        &self,
        cpu: usize,
        ptr: NonNull<u8>,
        order: u32,
        kind: PageKind,
    ) -> Result<(), PageError> {
        crate::trace::trace_mm_page_free!(ptr.as_ptr(), order);
        let addr = ptr.as_ptr() as usize;
        let (region, idx) = self.validate(addr, order, kind)?;
        let freed = if (order as usize) < PCP_ORDERS {
            self.free_unref_page(cpu, region, idx, order, kind)
        } else {
            self.free_one_page(region, idx, order, kind)
        };
        if freed {
            return Ok(());
        }
        // Another free of the same block claimed it first: refuse this one
        // as the checks would have, had it come second.
        Err(match self.validate(addr, order, kind) {
            Err(e) => e,
            Ok(_) => PageError::NotAllocated { addr },
        })
    }

    /// `__free_one_page` for a validated block above the per-cpu orders:
    /// claims it from `kind` (`false` if a racing free claimed it first) and
    /// merges it into the buddy lists in one zone-lock hold; releases its
    /// region if that becomes wholly free above the watermark.
    fn free_one_page(
        &self,
        region: &'static Region,
        idx: usize,
        order: u32,
        kind: PageKind,
    ) -> bool {
        let keep = self.keep_free();
        let release = {
            let mut z = self.zone.lock();
            if !region.desc(idx).claim(kind, PageKind::Tail) {
                return false;
            }
            z.used_pages -= 1 << order;
            if z.give_back(region, idx, order, keep, true) {
                Self::detach_region(&mut z, region);
                true
            } else {
                false
            }
        };
        if release {
            // SAFETY: the region is wholly free and off every list; no block of
            // it is handed out.
            unsafe { self.release_region(region) };
        }
        true
    }

    /// Takes a wholly free source region (already off the free lists) out of
    /// the zone's accounting, before it is released.
    pub(crate) fn detach_region(z: &mut Zone, region: &'static Region) {
        z.unlink_region(region);
        z.managed_pages -= REGION_PAGES;
        z.source_pages -= REGION_PAGES;
        z.stats.regions_released += 1;
    }

    /// Unregisters a region, retires its metadata and gives its memory back:
    /// source regions and huge mappings to the source (and their metadata to
    /// its pool); a caller's region stays the caller's.
    ///
    /// # Safety
    ///
    /// No page of the region may be in use or on a free list, and the region
    /// must be off the zone's region list (or the allocator is being dropped).
    pub(crate) unsafe fn release_region(&self, region: &'static Region) {
        let base = region.base();
        let kind = region.kind();
        let map = match kind {
            // SAFETY: `map_size` is fixed while the region is registered, and
            // no one else touches this unlinked region.
            RegionKind::Source | RegionKind::Huge => unsafe { *region.map_size.get() },
            RegionKind::Caller => region.end() - base,
        };
        let meta = region.meta();
        registry::unregister(base, base + map, NonNull::from(region));
        region.retire();
        let pool = match kind {
            RegionKind::Source => &SOURCE_META,
            RegionKind::Huge => &HUGE_META,
            RegionKind::Caller => return,
        };
        // SAFETY: the caller guarantees the memory is unused; `grow` or
        // `alloc_huge` mapped it with this size and `REGION_SIZE` alignment,
        // and the metadata block came from `pool`.
        unsafe {
            self.source
                .unmap(NonNull::new_unchecked(base as *mut u8), map, REGION_SIZE);
            pool.put(meta);
        }
    }

    /// Gives every wholly free source region back while more than `keep` free
    /// pages remain. Returns the number of regions released.
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator};
    /// let pages = PageAllocator::new_os();
    /// drop(pages.alloc(0, Gfp::KERNEL).unwrap());
    /// assert_eq!(pages.trim(0), 1);
    /// assert_eq!(pages.stats().managed_pages, 0);
    /// ```
    pub fn trim(&self, keep: usize) -> usize {
        self.drain();
        let mut released = 0;
        loop {
            let victim = {
                let mut z = self.zone.lock();
                let mut found = None;
                z.for_each_region(|r| {
                    let d = r.desc(0);
                    if found.is_none()
                        && r.kind() == RegionKind::Source
                        && d.kind() == PageKind::Free
                        && d.order() == MAX_PAGE_ORDER
                    {
                        found = Some(r);
                    }
                });
                match found {
                    Some(r) if z.free_pages >= keep + REGION_PAGES => {
                        z.unlink(r.desc(0), MAX_PAGE_ORDER);
                        z.unlink_region(r);
                        z.free_pages -= REGION_PAGES;
                        z.managed_pages -= REGION_PAGES;
                        z.source_pages -= REGION_PAGES;
                        z.stats.regions_released += 1;
                        Some(r)
                    }
                    _ => None,
                }
            };
            match victim {
                // SAFETY: the region was wholly free and is now off every list.
                Some(r) => unsafe { self.release_region(r) },
                None => return released,
            }
            released += 1;
        }
    }

    /// Hands the allocator a region of memory to manage (the `no_std` case, or
    /// memory from anywhere else). Its first pages hold the region's metadata;
    /// the rest is zeroed and split into the largest aligned blocks that fit.
    /// Returns the number of pages added. The region may not overlap memory kmem
    /// already manages (small regions may share a 4 MiB slot with each other).
    ///
    /// ```
    /// use core::mem::MaybeUninit;
    /// use kmem_page::{Gfp, PageAllocator};
    /// use kmem_platform::NoPages;
    /// // An embedded program's page allocator: a static over a static buffer.
    /// static PAGES: PageAllocator<NoPages> = PageAllocator::new(NoPages);
    /// let mem: &'static mut [MaybeUninit<u8>] = Box::leak(Box::<[u8]>::new_uninit_slice(1 << 20));
    /// let pages = &PAGES;
    /// let added = pages.add_static_region(mem).unwrap();
    /// assert!(added >= 240);
    /// let b = pages.alloc(4, Gfp::KERNEL).unwrap();
    /// assert_eq!(b.len(), 16 * 4096);
    /// ```
    pub fn add_static_region(
        &self,
        mem: &'static mut [MaybeUninit<u8>],
    ) -> Result<usize, PageError> {
        // SAFETY: a `'static mut` slice is exclusively ours for ever.
        unsafe { self.add_region(mem.as_mut_ptr().cast(), mem.len()) }
    }

    /// Like [`add_static_region`](Self::add_static_region), over a raw range.
    ///
    /// # Safety
    ///
    /// `[ptr, ptr + len)` must be valid for reads and writes, used by nothing
    /// else, and stay valid for the rest of the process.
    pub unsafe fn add_region(&self, ptr: *mut u8, len: usize) -> Result<usize, PageError> {
        let start = (ptr as usize).next_multiple_of(PAGE_SIZE);
        let end = (ptr as usize).saturating_add(len) & !(PAGE_SIZE - 1);
        if end <= start {
            return Err(PageError::RegionTooSmall { len });
        }
        let total = (end - start) >> PAGE_SHIFT;
        let meta_pages = meta_size(total).div_ceil(PAGE_SIZE);
        if meta_pages >= total {
            return Err(PageError::RegionTooSmall { len });
        }
        let data = start + (meta_pages << PAGE_SHIFT);
        let npages = total - meta_pages;
        if registry::check(start, data, end, true).is_err() {
            return Err(PageError::RegionOverlap { addr: start });
        }
        // SAFETY: the caller gives us the range; the metadata pages are at its
        // start, page-aligned (so 64-aligned) and large enough for `npages`;
        // zeroing them makes them a valid empty `Region`.
        let r = unsafe {
            core::ptr::write_bytes(start as *mut u8, 0, meta_pages << PAGE_SHIFT);
            Region::init(
                NonNull::new_unchecked(start as *mut u8),
                npages,
                data,
                npages,
                self.id(),
                RegionKind::Caller,
            )
        };
        if registry::register(start, data, end, r, true).is_err() {
            return Err(PageError::RegionOverlap { addr: start });
        }
        // SAFETY: the caller's range is ours; zeroing makes every byte initialised.
        unsafe { core::ptr::write_bytes(data as *mut u8, 0, npages << PAGE_SHIFT) };
        // SAFETY: the caller promises the memory lives for the process.
        let region: &'static Region = unsafe { &*r.as_ptr() };
        let mut z = self.zone.lock();
        z.link_region(region);
        z.managed_pages += npages;
        z.free_pages += npages;
        let mut pfn = data >> PAGE_SHIFT;
        let end_pfn = end >> PAGE_SHIFT;
        while pfn < end_pfn {
            let mut o = (pfn.trailing_zeros()).min(MAX_PAGE_ORDER);
            while pfn + (1 << o) > end_pfn {
                o -= 1;
            }
            let idx = pfn - (data >> PAGE_SHIFT);
            for i in 1..(1usize << o) {
                region.desc(idx + i).set_kind(PageKind::Tail);
            }
            z.push(region.desc(idx), region, pfn << PAGE_SHIFT, o, true);
            pfn += 1 << o;
        }
        Ok(npages)
    }

    /// Maps one allocation above the largest order straight from the source
    /// (what `kmalloc` does for very large requests). The mapping is aligned to
    /// 4 MiB and its pages are zero. Returns the address; the usable size is
    /// `size` rounded up to pages.
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator};
    /// let pages = PageAllocator::new_os();
    /// let p = pages.alloc_huge(10 << 20, Gfp::KERNEL).unwrap();
    /// assert_eq!(kmem_page::lookup_block(p.as_ptr() as usize + (9 << 20)).unwrap().addr, p.as_ptr() as usize);
    /// // SAFETY: `p` came from `alloc_huge` and is not used again.
    /// assert_eq!(unsafe { pages.free_huge(p) }, Ok(10 << 20));
    /// ```
    pub fn alloc_huge(&self, size: usize, gfp: Gfp) -> Result<NonNull<u8>, PageError> {
        let _ = gfp; // fresh mappings are already zero; huge mappings never wait
        let npages = size
            .max(1)
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(PageError::TooLarge { size })?
            >> PAGE_SHIFT;
        let map = (npages << PAGE_SHIFT)
            .checked_next_multiple_of(REGION_SIZE)
            .ok_or(PageError::TooLarge { size })?;
        let order = usize::BITS - (npages - 1).leading_zeros();
        {
            let mut z = self.zone.lock();
            if (z.source_pages + z.huge_pages).saturating_add(npages)
                > self.limit.load(Ordering::Relaxed)
            {
                z.stats.failures += 1;
                return Err(PageError::NoMemory { order });
            }
            z.huge_pages += npages;
            z.used_pages += npages as isize;
            z.note_peak();
        }
        let fail = |e| {
            let mut z = self.zone.lock();
            z.huge_pages -= npages;
            z.used_pages -= npages as isize;
            z.stats.failures += 1;
            Err(e)
        };
        let Some(mem) = self.source.map(map, REGION_SIZE) else {
            return fail(PageError::NoMemory { order });
        };
        let Some(meta) = HUGE_META.get() else {
            // SAFETY: mapped just above.
            unsafe { self.source.unmap(mem, map, REGION_SIZE) };
            return fail(PageError::NoMemory { order });
        };
        let base = mem.as_ptr() as usize;
        // SAFETY: `meta` is an exclusive process-lifetime block of `meta_size(1)` bytes.
        let r = unsafe { Region::init(meta, 1, base, npages, self.id(), RegionKind::Huge) };
        // SAFETY: `r` is not shared yet.
        let region: &'static Region = unsafe {
            *r.as_ref().map_size.get() = map;
            &*r.as_ptr()
        };
        let d = region.desc(0);
        d.set_order(order);
        d.set_kind(PageKind::Large);
        if registry::register(base, base, base + map, r, false).is_err() {
            // SAFETY: nothing refers to the region yet.
            unsafe {
                self.source.unmap(mem, map, REGION_SIZE);
                HUGE_META.put(meta);
            }
            return fail(PageError::NoMemory { order });
        }
        let mut z = self.zone.lock();
        z.link_region(region);
        z.huge_count += 1;
        z.stats.huge_allocs += 1;
        z.stats.huge_pages_total += npages as u64;
        Ok(mem)
    }

    /// Unmaps an allocation from [`alloc_huge`](Self::alloc_huge); returns its usable size.
    ///
    /// # Safety
    ///
    /// If `ptr` is such an allocation, nothing may use it afterwards.
    pub unsafe fn free_huge(&self, ptr: NonNull<u8>) -> Result<usize, PageError> {
        let addr = ptr.as_ptr() as usize;
        let (region, size) = {
            let mut z = self.zone.lock();
            let region = registry::slot(addr)
                .filter(|r| r.contains(addr))
                .ok_or(PageError::NotKmem { addr })?;
            if region.owner_id() != self.id.load(Ordering::Acquire) {
                return Err(PageError::WrongAllocator { addr });
            }
            if region.kind() != RegionKind::Huge {
                return Err(match region.block_of(addr) {
                    Some(b) if b.addr == addr => PageError::WrongKind {
                        addr,
                        kind: b.desc.kind(),
                    },
                    Some(b) => PageError::NotHead { addr, head: b.addr },
                    None => PageError::NotAllocated { addr },
                });
            }
            if region.base() != addr {
                return Err(PageError::NotHead {
                    addr,
                    head: region.base(),
                });
            }
            let npages = region.npages();
            z.unlink_region(region);
            z.huge_pages -= npages;
            z.used_pages -= npages as isize;
            z.huge_count -= 1;
            z.stats.huge_frees += 1;
            region.desc(0).set_kind(PageKind::Free);
            (region, npages << PAGE_SHIFT)
        };
        // SAFETY: the caller gives the mapping up, and it is off the zone's list.
        unsafe { self.release_region(region) };
        Ok(size)
    }

    /// A snapshot of the allocator's counters.
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator};
    /// let pages = PageAllocator::new_os();
    /// let _b = pages.alloc(0, Gfp::KERNEL).unwrap();
    /// let s = pages.stats();
    /// assert_eq!(s.allocated_pages, 1);
    /// // The cpu's per-cpu list was refilled with a batch of 16 pages (one
    /// // order-4 block's worth, split off a 4 MiB block); one was handed out.
    /// assert_eq!(s.cached_pages, 15);
    /// assert_eq!(s.free_per_order[4], 1);      // the buddy left over from the split
    /// assert_eq!(s.free_per_order[10], 0);
    /// ```
    pub fn stats(&self) -> PageStats {
        let sets = AllSets::lock(&self.pcp);
        let z = self.zone.lock();
        let mut free_per_order = [0; NR_PAGE_ORDERS];
        for (o, a) in z.free_area.iter().enumerate() {
            free_per_order[o] = a.nr_free;
        }
        let (mut allocs, mut frees) = (z.stats.allocs, z.stats.frees);
        let (mut zero_fills, mut zero_skips) = (z.stats.zero_fills, z.stats.zero_skips);
        let mut cached = 0;
        for p in sets.iter() {
            cached += p.pages();
            for o in 0..PCP_ORDERS {
                allocs[o] += p.stats.allocs[o];
                frees[o] += p.stats.frees[o];
            }
            zero_fills += p.stats.zero_fills;
            zero_skips += p.stats.zero_skips;
        }
        PageStats {
            free_per_order,
            free_pages: z.free_pages,
            managed_pages: z.managed_pages,
            allocated_pages: z.managed_pages - z.free_pages - cached,
            cached_pages: cached,
            regions: z.nr_regions - z.huge_count,
            huge_allocations: z.huge_count,
            huge_pages: z.huge_pages,
            allocs_per_order: allocs,
            frees_per_order: frees,
            failures: z.stats.failures,
            regions_mapped: z.stats.regions_mapped,
            regions_released: z.stats.regions_released,
            zero_fills,
            zero_skips,
            huge_allocs: z.stats.huge_allocs,
            huge_frees: z.stats.huge_frees,
        }
    }

    /// Checks the free lists and the per-cpu lists against the descriptors
    /// (for tests and `validate`): every listed block is a free (or cached)
    /// head of its list's order inside its region, and the counts add up —
    /// the lists' counts, `free_pages`, and the pages in use. Holds every lock
    /// while it runs. Returns a description of the first inconsistency.
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator};
    /// let pages = PageAllocator::new_os();
    /// let b = pages.alloc(2, Gfp::KERNEL).unwrap();
    /// pages.check().unwrap();
    /// drop(b);
    /// pages.check().unwrap();
    /// ```
    pub fn check(&self) -> Result<(), &'static str> {
        let sets = AllSets::lock(&self.pcp);
        let z = self.zone.lock();
        let mut pages = 0usize;
        for (o, area) in z.free_area.iter().enumerate() {
            let mut n = 0;
            let mut p = area.head;
            while !p.is_null() {
                // SAFETY: listed descriptors are live; the lock is held.
                let d = unsafe { &*p };
                if d.kind() != PageKind::Free || d.order() as usize != o {
                    return Err("a listed block is not a free head of its list's order");
                }
                let addr = d.private();
                if addr % (PAGE_SIZE << o) != 0 {
                    return Err("a free block is not aligned to its size");
                }
                // SAFETY: a free head's owner word is its region.
                let r = unsafe { &*(d.owner() as *const Region) };
                if !r.contains(addr) || !r.contains(addr + (PAGE_SIZE << o) - 1) {
                    return Err("a free block runs outside its region");
                }
                n += 1;
                pages += 1 << o;
                // SAFETY: as above.
                p = unsafe { *d.next.get() };
            }
            if n != area.nr_free {
                return Err("nr_free does not match the list");
            }
            if (n == 0) == (z.nonempty & (1 << o) != 0) {
                return Err("the non-empty mask does not match the lists");
            }
        }
        if pages != z.free_pages {
            return Err("free_pages does not match the lists");
        }
        let cached = Self::check_pcp(&sets)?;
        let used = sets.iter().map(|p| p.stats.used).sum::<isize>() + z.used_pages;
        if z.free_pages + cached > z.managed_pages
            || (z.managed_pages - z.free_pages - cached + z.huge_pages) as isize != used
        {
            return Err("the pages in use do not match managed - free - cached + huge");
        }
        Ok(())
    }

    pub(crate) fn with_zone<R>(&self, f: impl FnOnce(&Zone) -> R) -> R {
        f(&self.zone.lock())
    }
}

impl<S: PageSource> Drop for PageAllocator<S> {
    fn drop(&mut self) {
        let mut r = core::mem::replace(&mut self.zone.get_mut().regions, core::ptr::null_mut());
        while !r.is_null() {
            // SAFETY: the list holds live regions; we have `&mut self`.
            let region: &'static Region = unsafe { &*r };
            // SAFETY: as above.
            r = unsafe { *region.next.get() };
            // SAFETY: dropping the allocator ends every block's life, and
            // nothing else can reach the zone's lists any more.
            unsafe { self.release_region(region) };
        }
    }
}

/// Counters of a [`PageAllocator`], from [`PageAllocator::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Free blocks per order (the numbers `/proc/buddyinfo` prints).
    pub free_per_order: [usize; NR_PAGE_ORDERS],
    /// Free pages on the free lists.
    pub free_pages: usize,
    /// Pages the buddy system manages (all regions but huge mappings).
    pub managed_pages: usize,
    /// Pages handed out in buddy blocks.
    pub allocated_pages: usize,
    /// Free pages held on the per-cpu lists (not merged, not in `free_per_order`).
    pub cached_pages: usize,
    /// Buddy regions (source and caller).
    pub regions: usize,
    /// Live huge mappings.
    pub huge_allocations: usize,
    /// Pages in live huge mappings.
    pub huge_pages: usize,
    /// Allocations per order since creation.
    pub allocs_per_order: [u64; NR_PAGE_ORDERS],
    /// Frees per order since creation.
    pub frees_per_order: [u64; NR_PAGE_ORDERS],
    /// Allocations that failed.
    pub failures: u64,
    /// Regions mapped from the source since creation.
    pub regions_mapped: u64,
    /// Regions given back to the source since creation.
    pub regions_released: u64,
    /// `__GFP_ZERO` allocations that had to clear memory.
    pub zero_fills: u64,
    /// `__GFP_ZERO` allocations whose memory was known to be zero already.
    pub zero_skips: u64,
    /// Huge mappings made since creation.
    pub huge_allocs: u64,
    /// Huge mappings undone since creation.
    pub huge_frees: u64,
}
