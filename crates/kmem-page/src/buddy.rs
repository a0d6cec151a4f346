//! The buddy system proper: per-order free lists, split on allocation, merge on free.
//!
//! This is the part of `mm/page_alloc.c` that `__rmqueue_smallest` and
//! `__free_one_page` do: a block of order `o` at page frame `pfn` has its buddy
//! at `pfn ^ (1 << o)`; two free buddies of the same order merge into one block
//! of order `o + 1`. Free lists are linked through the page descriptors, so free
//! memory is never touched (and never faulted in) by the allocator.

use core::ptr;

use crate::desc::{FLAG_ZEROED, PageDesc, PageKind};
use crate::region::{Region, RegionKind};
use crate::{MAX_PAGE_ORDER, NR_PAGE_ORDERS, PAGE_SHIFT};

/// One order's free list (the kernel's `struct free_area`).
pub(crate) struct FreeArea {
    /// First free block of this order; linked through `PageDesc::next/prev`.
    pub(crate) head: *mut PageDesc,
    /// Number of blocks on the list (what `/proc/buddyinfo` prints).
    pub(crate) nr_free: usize,
}

/// Counters kept under the zone lock (the per-cpu lists keep their own,
/// `PcpCounters`, under their sets' locks; `stats()` adds them up).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) allocs: [u64; NR_PAGE_ORDERS],
    pub(crate) frees: [u64; NR_PAGE_ORDERS],
    pub(crate) failures: u64,
    pub(crate) regions_mapped: u64,
    pub(crate) regions_released: u64,
    pub(crate) zero_fills: u64,
    pub(crate) zero_skips: u64,
    pub(crate) huge_allocs: u64,
    pub(crate) huge_frees: u64,
    /// Pages of every huge mapping made since creation.
    pub(crate) huge_pages_total: u64,
    /// The most pages out of the buddy free lists at once: handed out, held
    /// on per-cpu lists, or in huge mappings (`pool_stats`'s peak).
    pub(crate) peak_out: usize,
}

/// The state a page allocator keeps under its lock (the kernel's `struct zone`).
pub(crate) struct Zone {
    /// Per-order free lists. Invariant: a block on list `o` is a `Free` head of order `o`
    /// whose `owner` word is its region and whose `private` word is its address;
    /// its other pages are `Tail`s.
    pub(crate) free_area: [FreeArea; NR_PAGE_ORDERS],
    /// Bit `o` set iff `free_area[o]` is non-empty.
    pub(crate) nonempty: u32,
    /// All regions of this allocator, linked through `Region::next/prev`.
    pub(crate) regions: *mut Region,
    /// Number of regions on `regions`.
    pub(crate) nr_regions: usize,
    /// Pages in buddy regions (source and caller), i.e. the pages the buddy system manages.
    pub(crate) managed_pages: usize,
    /// Pages mapped from the source for buddy regions, plus reservations for mappings under way.
    pub(crate) source_pages: usize,
    /// Pages in huge mappings.
    pub(crate) huge_pages: usize,
    /// Number of huge mappings.
    pub(crate) huge_count: usize,
    /// Free pages on the free lists. Invariant: `sum(nr_free[o] << o) == free_pages`.
    pub(crate) free_pages: usize,
    /// Pages handed out through the zone itself (blocks above the per-cpu
    /// orders, huge mappings) minus those freed through it. Invariant, with
    /// every lock held: `used_pages + sum(set.used) == managed_pages -
    /// free_pages - cached pages + huge_pages` (the pages in use).
    pub(crate) used_pages: isize,
    pub(crate) stats: Counters,
}

// SAFETY: the raw pointers point into process-lifetime metadata and are only
// followed while the zone's lock is held.
unsafe impl Send for Zone {}

#[inline]
fn dptr(d: &PageDesc) -> *mut PageDesc {
    d as *const PageDesc as *mut PageDesc
}

impl Zone {
    pub(crate) const fn new() -> Self {
        Zone {
            free_area: [const {
                FreeArea {
                    head: ptr::null_mut(),
                    nr_free: 0,
                }
            }; NR_PAGE_ORDERS],
            nonempty: 0,
            regions: ptr::null_mut(),
            nr_regions: 0,
            managed_pages: 0,
            source_pages: 0,
            huge_pages: 0,
            huge_count: 0,
            free_pages: 0,
            used_pages: 0,
            stats: Counters {
                allocs: [0; NR_PAGE_ORDERS],
                frees: [0; NR_PAGE_ORDERS],
                failures: 0,
                regions_mapped: 0,
                regions_released: 0,
                zero_fills: 0,
                zero_skips: 0,
                huge_allocs: 0,
                huge_frees: 0,
                huge_pages_total: 0,
                peak_out: 0,
            },
        }
    }

    /// Puts the block headed by `d` (page `addr` of `region`) on list `order`.
    pub(crate) fn push(
        &mut self,
        d: &PageDesc,
        region: &Region,
        addr: usize,
        order: u32,
        zeroed: bool,
    ) {
        d.set_order(order);
        d.set_flags(if zeroed { FLAG_ZEROED } else { 0 });
        d.set_owner(region as *const Region as usize);
        d.set_private(addr);
        d.set_kind(PageKind::Free);
        let area = &mut self.free_area[order as usize];
        let old = area.head;
        // SAFETY: the zone lock is held (we have `&mut Zone`), which guards every
        // descriptor's links; `old` is null or a live free head of this list.
        unsafe {
            *d.prev.get() = ptr::null_mut();
            *d.next.get() = old;
            if !old.is_null() {
                *(*old).prev.get() = dptr(d);
            }
        }
        area.head = dptr(d);
        area.nr_free += 1;
        self.nonempty |= 1 << order;
    }

    /// Takes the free block headed by `d` off list `order`.
    pub(crate) fn unlink(&mut self, d: &PageDesc, order: u32) {
        let area = &mut self.free_area[order as usize];
        // SAFETY: the zone lock is held; `d` is on this list, so its neighbours
        // are live free heads of the same list or null.
        unsafe {
            let next = *d.next.get();
            let prev = *d.prev.get();
            if prev.is_null() {
                area.head = next;
            } else {
                *(*prev).next.get() = next;
            }
            if !next.is_null() {
                *(*next).prev.get() = prev;
            }
        }
        area.nr_free -= 1;
        if area.nr_free == 0 {
            self.nonempty &= !(1 << order);
        }
        d.set_kind(PageKind::Tail);
    }

    /// Takes a block of `order` off the free lists, splitting a larger one if
    /// needed, and marks it allocated as `kind`. Returns its address and whether
    /// it is known to be zero. Counts the allocation; the caller accounts the
    /// pages in use (`Usage`) before dropping the zone lock.
    pub(crate) fn take(&mut self, order: u32, kind: PageKind) -> Option<(usize, bool)> {
        let (region, idx, zeroed) = self.take_block(order)?;
        mark_allocated(region, idx, order, kind);
        self.stats.allocs[order as usize] += 1;
        Some((region.addr_of(idx), zeroed))
    }

    /// `__rmqueue_smallest`: takes a block of `order` off the free lists,
    /// splitting a larger one if needed, and leaves its head a `Tail` for the
    /// caller to mark (allocated, or cached on a per-cpu list). Returns its
    /// region, page index and whether it is known to be zero.
    #[inline]
    pub(crate) fn take_block(&mut self, order: u32) -> Option<(&'static Region, usize, bool)> {
        let mask = self.nonempty >> order;
        if mask == 0 {
            return None;
        }
        let mut j = order + mask.trailing_zeros();
        let head = self.free_area[j as usize].head;
        // SAFETY: `nonempty` says list `j` is non-empty, so `head` is a live
        // free head; descriptors live for the process.
        let d: &'static PageDesc = unsafe { &*head };
        // SAFETY: the invariant of `free_area`: a free head's owner word is its region.
        let region: &'static Region = unsafe { &*(d.owner() as *const Region) };
        let addr = d.private();
        let zeroed = d.flags() & FLAG_ZEROED != 0;
        self.unlink(d, j);
        let idx = (addr - region.base()) >> PAGE_SHIFT;
        while j > order {
            j -= 1;
            let bidx = idx + (1 << j);
            self.push(region.desc(bidx), region, region.addr_of(bidx), j, zeroed);
        }
        self.free_pages -= 1 << order;
        self.note_peak();
        Some((region, idx, zeroed))
    }

    /// Frees the allocated block at page `idx` of `region` (already validated),
    /// merging it with free buddies. Returns `true` if the merged block is a
    /// whole source region that should go back to the source (it is then *not*
    /// on any free list and the caller releases it).
    pub(crate) fn give_back(
        &mut self,
        region: &'static Region,
        idx: usize,
        order: u32,
        keep_free: usize,
        count: bool,
    ) -> bool {
        let npages = region.npages();
        let base_pfn = region.base() >> PAGE_SHIFT;
        let mut pfn = base_pfn + idx;
        let mut o = order;
        region.desc(idx).set_kind(PageKind::Tail);
        while o < MAX_PAGE_ORDER {
            let bpfn = pfn ^ (1 << o);
            if bpfn < base_pfn || bpfn + (1 << o) > base_pfn + npages {
                break;
            }
            let bd = region.desc(bpfn - base_pfn);
            if bd.kind() != PageKind::Free || bd.order() != o {
                break;
            }
            self.unlink(bd, o);
            pfn = pfn.min(bpfn);
            o += 1;
        }
        self.free_pages += 1 << order;
        if count {
            self.stats.frees[order as usize] += 1;
        }
        let hidx = pfn - base_pfn;
        let whole = 1usize << MAX_PAGE_ORDER;
        if o == MAX_PAGE_ORDER
            && hidx == 0
            && npages == whole
            && region.kind() == RegionKind::Source
            && self.free_pages - whole >= keep_free
        {
            self.free_pages -= whole;
            return true;
        }
        self.push(region.desc(hidx), region, region.addr_of(hidx), o, false);
        false
    }

    /// Links a region into this zone's list.
    pub(crate) fn link_region(&mut self, r: &Region) {
        let rp = r as *const Region as *mut Region;
        // SAFETY: the zone lock is held; `self.regions` is null or a live region
        // of this zone.
        unsafe {
            *r.prev.get() = ptr::null_mut();
            *r.next.get() = self.regions;
            if !self.regions.is_null() {
                *(*self.regions).prev.get() = rp;
            }
        }
        self.regions = rp;
        self.nr_regions += 1;
    }

    /// Unlinks a region from this zone's list.
    pub(crate) fn unlink_region(&mut self, r: &Region) {
        // SAFETY: the zone lock is held; `r` is on this zone's list.
        unsafe {
            let next = *r.next.get();
            let prev = *r.prev.get();
            if prev.is_null() {
                self.regions = next;
            } else {
                *(*prev).next.get() = next;
            }
            if !next.is_null() {
                *(*next).prev.get() = prev;
            }
        }
        self.nr_regions -= 1;
    }

    /// Calls `f` on every region of this zone.
    pub(crate) fn for_each_region(&self, mut f: impl FnMut(&'static Region)) {
        let mut r = self.regions;
        while !r.is_null() {
            // SAFETY: regions on the list are live; the lock is held by our caller.
            let rr: &'static Region = unsafe { &*r };
            // SAFETY: as above.
            r = unsafe { *rr.next.get() };
            f(rr);
        }
    }
}

/// Marks `1 << order` pages from `idx` as one allocated block of `kind`: the
/// tails first, then the head (published last, with Release).
pub(crate) fn mark_allocated(region: &Region, idx: usize, order: u32, kind: PageKind) {
    mark_tails(region, idx, order);
    mark_head(region, idx, order, kind);
}

/// Points the tails of the block of `order` at `idx` at their head.
pub(crate) fn mark_tails(region: &Region, idx: usize, order: u32) {
    for i in 1..(1usize << order) {
        let t = region.desc(idx + i);
        t.set_head_dist(i);
        t.set_kind(PageKind::Tail);
    }
}

/// Marks the head of a block whose tails already point at it (a block off a
/// per-cpu list) allocated as `kind`, published last with Release.
#[inline]
pub(crate) fn mark_head(region: &Region, idx: usize, order: u32, kind: PageKind) {
    let h = region.desc(idx);
    h.set_order(order);
    h.set_flags(0);
    h.set_owner(0);
    h.set_private(0);
    h.set_kind(kind);
}
