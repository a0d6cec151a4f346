//! The process-wide registry: which addresses are kmem's, in O(1).
//!
//! A two-level radix tree over 4 MiB slots (address bits 22..47), like
//! jemalloc's rtree: the top level is a static array of 32768 pointers
//! (256 KiB of `.bss`, touched only where kmem has memory: one page covers
//! 2 TiB of address space), the leaves (1024 slots, 8 KiB) are allocated on
//! demand and never freed. A slot holds the [`Region`] that covers it.
//! Looking an address up is two dependent loads and a bounds check (it was
//! three, with 512 × 256 × 256 levels: one dependent load less on every
//! `kfree`).
//!
//! Regions from the page source and huge mappings are aligned to 4 MiB and own
//! their slots. Regions a user hands in may be small and share a slot; such a
//! slot holds a tagged pointer (low bit set) to a short chain of [`Link`]s,
//! which lookups walk. Links, like nodes, are never freed.
//!
//! A slot that one page-source region covers exactly (the usual case: such a
//! region is one 4 MiB slot) is tagged [`FULL`]: its page descriptors then
//! sit at a fixed place after the region header, so [`lookup_fast`] (the
//! first step of every `kfree`) and [`lookup_head`] go from the slot
//! straight to the descriptor without reading the region's bounds: one
//! dependent load and about ten instructions fewer.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::region::Region;
use crate::{PAGE_SHIFT, REGION_SHIFT};

const L1_BITS: u32 = 15; // address bits 32..47
const L3_BITS: u32 = 10; // address bits 22..32
const L3_SHIFT: u32 = REGION_SHIFT as u32;
const L1_SHIFT: u32 = L3_SHIFT + L3_BITS;
/// Addresses at or above this are never kmem's (user space ends at 2^47 on x86-64).
pub const ADDRESS_LIMIT: u64 = 1 << (L1_SHIFT + L1_BITS);

struct L3 {
    /// Null, a `*mut Region` (with [`FULL`] set if the region covers the
    /// slot exactly and is a page-source region), or a `*mut Link` with
    /// [`CHAIN`] set.
    slots: [AtomicPtr<Region>; 1 << L3_BITS],
}

/// One entry of a shared slot's chain.
struct Link {
    region: AtomicPtr<Region>,
    next: AtomicPtr<Link>,
}

/// Tag of a slot that holds a chain of [`Link`]s.
const CHAIN: usize = 1;
/// Tag of a slot whose region is a page-source region that covers the slot
/// exactly: its base is the slot's first address, it has [`SLOT_PAGES`]
/// pages, and its descriptor table (of at least that many) follows the
/// 64-byte region header. Set by [`register`] only; the bits it needs are
/// zero in any `Region` pointer (the header is 64-aligned).
const FULL: usize = 2;
/// Pages in one slot.
const SLOT_PAGES: usize = 1 << (REGION_SHIFT - PAGE_SHIFT);

#[inline]
fn as_chain(v: *mut Region) -> Option<*mut Link> {
    if v as usize & CHAIN != 0 {
        Some((v as usize & !CHAIN) as *mut Link)
    } else {
        None
    }
}

/// The region pointer of a slot value that is not a chain.
#[inline(always)]
fn untag(v: *mut Region) -> *mut Region {
    (v as usize & !FULL) as *mut Region
}

/// Whether `region` may be published with [`FULL`] in the slot that starts
/// at `slot_start`.
fn covers_exactly(region: &Region, slot_start: usize) -> bool {
    use crate::region::RegionKind;
    debug_assert!(region.cap() == 0 || region.descs_ptr() == Region::table_after(region));
    region.kind() == RegionKind::Source
        && region.base() == slot_start
        && region.npages() == SLOT_PAGES
        && region.cap() >= SLOT_PAGES
}
static L1: [AtomicPtr<L3>; 1 << L1_BITS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; 1 << L1_BITS];
/// Serialises every change to the registry (readers never take it).
pub(crate) static GROW: kmem_platform::Mutex<()> = kmem_platform::Mutex::new(());

#[inline]
fn split(addr: u64) -> (usize, usize) {
    (
        (addr >> L1_SHIFT) as usize & ((1 << L1_BITS) - 1),
        (addr >> L3_SHIFT) as usize & ((1 << L3_BITS) - 1),
    )
}

/// The region covering `addr`'s 4 MiB slot, if any (it may not cover `addr`
/// itself: the caller checks bounds).
#[inline]
pub(crate) fn slot(addr: usize) -> Option<&'static Region> {
    let r = slot_value(addr);
    match as_chain(r) {
        // SAFETY: region metadata is never unmapped (see `meta`), so a pointer
        // once published stays readable; `Region` is all atomics where it can change.
        None => unsafe { untag(r).as_ref() },
        Some(l) => chain_find(l, addr),
    }
}

/// The raw (tagged) value of `addr`'s slot: null if there is none.
#[inline(always)]
fn slot_value(addr: usize) -> *mut Region {
    let a = addr as u64;
    if a >= ADDRESS_LIMIT {
        return ptr::null_mut();
    }
    let (i1, i3) = split(a);
    let l3 = L1[i1].load(Ordering::Acquire);
    if l3.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: registry nodes are allocated once, zero-initialised (null
    // pointers) and never freed.
    unsafe { (*l3).slots[i3].load(Ordering::Acquire) }
}

#[cold]
fn chain_find(mut l: *mut Link, addr: usize) -> Option<&'static Region> {
    while !l.is_null() {
        // SAFETY: links are never freed; their fields are atomics.
        let link = unsafe { &*l };
        // SAFETY: as for a plain slot.
        if let Some(r) = unsafe { link.region.load(Ordering::Acquire).as_ref() }
            && r.contains(addr)
        {
            return Some(r);
        }
        l = link.next.load(Ordering::Acquire);
    }
    None
}

/// Calls `f` on every region published in slot `cell`.
fn for_each_in(cell: &AtomicPtr<Region>, mut f: impl FnMut(&'static Region)) {
    let v = cell.load(Ordering::Acquire);
    match as_chain(v) {
        None => {
            // SAFETY: published regions stay readable (see `slot`).
            if let Some(r) = unsafe { untag(v).as_ref() } {
                f(r)
            }
        }
        Some(mut l) => {
            while !l.is_null() {
                // SAFETY: links are never freed.
                let link = unsafe { &*l };
                // SAFETY: as above.
                if let Some(r) = unsafe { link.region.load(Ordering::Acquire).as_ref() } {
                    f(r);
                }
                l = link.next.load(Ordering::Acquire);
            }
        }
    }
}

fn new_link(region: *mut Region, next: *mut Link) -> Option<*mut Link> {
    let l = crate::meta::alloc_permanent(core::mem::size_of::<Link>(), 16)?
        .as_ptr()
        .cast::<Link>();
    // SAFETY: fresh, zeroed, exclusively ours; zero bytes are a valid `Link`.
    let link = unsafe { &*l };
    link.region.store(region, Ordering::Relaxed);
    link.next.store(next, Ordering::Relaxed);
    Some(l)
}

/// The slot cell for `addr`. With `create`, missing nodes are made: the
/// caller must hold `GROW` then.
fn slot_cell(addr: u64, create: bool) -> Option<&'static AtomicPtr<Region>> {
    let (i1, i3) = split(addr);
    let cell1 = &L1[i1];
    let mut l3 = cell1.load(Ordering::Acquire);
    if l3.is_null() {
        if !create {
            return None;
        }
        l3 = crate::meta::alloc_permanent(core::mem::size_of::<L3>(), 64)?
            .as_ptr()
            .cast();
        cell1.store(l3, Ordering::Release);
    }
    // SAFETY: `l3` is a live, never-freed node.
    Some(unsafe { &(*l3).slots[i3] })
}

/// Why a range could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegisterError {
    /// A slot of the range already belongs to another region.
    Taken,
    /// No memory for a registry node, or the range is outside the address limit.
    NoMemory,
}

/// Publishes `region` for every 4 MiB slot that `[start, end)` touches.
/// All or nothing. A `shared` region (one a user handed in) may share a slot
/// with other shared regions, as long as `[span_start, end)` overlaps none of
/// them; other regions need their slots to themselves.
pub(crate) fn register(
    span_start: usize,
    start: usize,
    end: usize,
    region: NonNull<Region>,
    shared: bool,
) -> Result<(), RegisterError> {
    if end as u64 > ADDRESS_LIMIT || start >= end {
        return Err(RegisterError::NoMemory);
    }
    let _g = GROW.lock();
    check_locked(span_start, start, end, shared)?;
    for s in (start >> REGION_SHIFT)..=((end - 1) >> REGION_SHIFT) {
        let cell = slot_cell((s as u64) << REGION_SHIFT, true).ok_or(RegisterError::NoMemory)?;
        let cur = cell.load(Ordering::Acquire);
        if cur.is_null() {
            // SAFETY: the caller's region is initialised and lives for the process.
            let full = !shared && covers_exactly(unsafe { region.as_ref() }, s << REGION_SHIFT);
            let v = region.as_ptr() as usize | if full { FULL } else { 0 };
            cell.store(v as *mut Region, Ordering::Release);
            continue;
        }
        // A shared slot (the check above allowed it): put the new region at
        // the head of the slot's chain.
        let tail = match as_chain(cur) {
            Some(l) => l,
            None => new_link(cur, ptr::null_mut()).ok_or(RegisterError::NoMemory)?,
        };
        let head = new_link(region.as_ptr(), tail).ok_or(RegisterError::NoMemory)?;
        cell.store((head as usize | CHAIN) as *mut Region, Ordering::Release);
    }
    Ok(())
}

/// Whether [`register`] would accept the range, so that a caller can check
/// before it writes anything.
pub(crate) fn check(
    span_start: usize,
    start: usize,
    end: usize,
    shared: bool,
) -> Result<(), RegisterError> {
    if end as u64 > ADDRESS_LIMIT || start >= end {
        return Err(RegisterError::NoMemory);
    }
    let _g = GROW.lock();
    check_locked(span_start, start, end, shared)
}

/// The check of [`register`], with `GROW` held.
fn check_locked(
    span_start: usize,
    start: usize,
    end: usize,
    shared: bool,
) -> Result<(), RegisterError> {
    use crate::region::RegionKind;
    for s in (start >> REGION_SHIFT)..=((end - 1) >> REGION_SHIFT) {
        let Some(cell) = slot_cell((s as u64) << REGION_SHIFT, false) else {
            continue;
        };
        let mut clash = false;
        for_each_in(cell, |r| {
            let caller = r.kind() == RegionKind::Caller;
            // A caller region's metadata sits in front of its pages, in the
            // caller's memory: it counts as part of the region here.
            let r_start = if caller {
                (r.meta().as_ptr() as usize).min(r.base())
            } else {
                r.base()
            };
            let overlaps = span_start < r.end() && r_start < end;
            clash |= overlaps || !shared || !caller;
        });
        if clash {
            return Err(RegisterError::Taken);
        }
    }
    Ok(())
}

/// Withdraws `region` from every slot of `[start, end)` that holds it.
pub(crate) fn unregister(start: usize, end: usize, region: NonNull<Region>) {
    let _g = GROW.lock();
    for s in (start >> REGION_SHIFT)..=((end - 1) >> REGION_SHIFT) {
        let Some(cell) = slot_cell((s as u64) << REGION_SHIFT, false) else {
            continue;
        };
        let cur = cell.load(Ordering::Acquire);
        match as_chain(cur) {
            None => {
                if untag(cur) == region.as_ptr() {
                    cell.store(ptr::null_mut(), Ordering::Release);
                }
            }
            Some(mut l) => {
                // Clear the region's link; the (never freed) link stays in the
                // chain with a null region, and is skipped by lookups.
                while !l.is_null() {
                    // SAFETY: links are never freed.
                    let link = unsafe { &*l };
                    if link.region.load(Ordering::Acquire) == region.as_ptr() {
                        link.region.store(ptr::null_mut(), Ordering::Release);
                    }
                    l = link.next.load(Ordering::Acquire);
                }
            }
        }
    }
}

/// Whether `addr` lies in memory kmem manages (any allocator, any region).
///
/// ```
/// use kmem_page::{Gfp, PageAllocator};
/// let pages = PageAllocator::new_os();
/// let b = pages.alloc(0, Gfp::KERNEL).unwrap();
/// assert!(kmem_page::is_kmem(b.as_ptr() as usize + 100));
/// let on_stack = 0u8;
/// assert!(!kmem_page::is_kmem(&on_stack as *const u8 as usize));
/// ```
#[inline]
pub fn is_kmem(addr: usize) -> bool {
    slot(addr).is_some_and(|r| r.contains(addr))
}

/// The descriptor of the page holding `addr`, if kmem manages it.
///
/// This is the O(1) map from any address to its page descriptor that `kfree`
/// and `kmem_cache_free` rely on. For a page inside a block the descriptor is a
/// [`PageKind::Tail`](crate::PageKind::Tail); use [`lookup_block`] for the head.
///
/// ```
/// let x = 5u32;
/// assert!(kmem_page::lookup(&x as *const u32 as usize).is_none());
/// ```
#[inline]
pub fn lookup(addr: usize) -> Option<&'static crate::PageDesc> {
    let r = slot(addr)?;
    r.desc_of(addr)
}

/// The descriptor of the page `addr` lies in, if that page heads an
/// allocated block (pages, slab or large) — always so for an address in a
/// one-page block, such as an order-0 slab. `None` otherwise (a tail page, a
/// huge mapping, free or unknown memory): then [`lookup_block`] has the
/// whole answer. The first step of `kfree`: no head resolution, no
/// [`BlockRef`] to build.
///
/// ```
/// use kmem_page::{Gfp, PageAllocator, PageKind};
/// let pages = PageAllocator::new_os();
/// let b = pages.alloc(1, Gfp::KERNEL).unwrap();
/// let head = kmem_page::lookup_head(b.as_ptr() as usize + 8).unwrap();
/// assert_eq!(head.kind(), PageKind::Pages);
/// assert!(kmem_page::lookup_head(b.as_ptr() as usize + 4096).is_none()); // its tail page
/// ```
#[inline]
pub fn lookup_head(addr: usize) -> Option<&'static crate::PageDesc> {
    let v = slot_value(addr);
    match desc_in_full_slot(v, addr) {
        Some(d) => d.kind().is_allocated().then_some(d),
        None => lookup_head_slow(v, addr),
    }
}

/// [`lookup`] for the usual case alone, calling nothing: the descriptor of
/// `addr`'s page (of any kind) if `addr` lies in a slot that one page-source
/// region covers exactly. `None` for every other slot (memory a user handed
/// in, a huge mapping, no kmem memory): then [`lookup`], [`lookup_head`] or
/// [`lookup_block`] has the answer. `kfree`'s first step, so that its hot
/// path makes no call and checks the kind once (the caller checks the one
/// it wants).
///
/// ```
/// use kmem_page::{Gfp, PageAllocator, PageKind};
/// let pages = PageAllocator::new_os();
/// let b = pages.alloc(1, Gfp::KERNEL).unwrap();
/// let d = kmem_page::lookup_fast(b.as_ptr() as usize + 8).unwrap();
/// assert_eq!(d.kind(), PageKind::Pages);
/// let tail = kmem_page::lookup_fast(b.as_ptr() as usize + 4096).unwrap();
/// assert_eq!(tail.kind(), PageKind::Tail);
/// let x = 5u32;
/// assert!(kmem_page::lookup_fast(&x as *const u32 as usize).is_none());
/// ```
#[inline(always)]
pub fn lookup_fast(addr: usize) -> Option<&'static crate::PageDesc> {
    desc_in_full_slot(slot_value(addr), addr)
}

/// If the slot value `v` is tagged [`FULL`]: the descriptor of `addr`'s
/// page, read from the region's table without its bounds. `None` for any
/// other slot.
#[inline(always)]
fn desc_in_full_slot(v: *mut Region, addr: usize) -> Option<&'static crate::PageDesc> {
    if v as usize & (CHAIN | FULL) != FULL {
        return None;
    }
    // A page-source region that covers the slot: the descriptors follow its
    // header, one per page of the slot.
    let descs = Region::table_after(untag(v));
    // SAFETY: `FULL` is set only for a region whose metadata block holds at
    // least `SLOT_PAGES` descriptors after the header (`covers_exactly`);
    // metadata is never unmapped, and a descriptor is all atomics where a
    // stale lookup may read it.
    Some(unsafe { &*descs.add((addr >> PAGE_SHIFT) & (SLOT_PAGES - 1)) })
}

/// [`lookup_head`] through the region's bounds: a shared or partly covered
/// slot, a huge mapping, or no slot.
#[cold]
#[inline(never)]
fn lookup_head_slow(v: *mut Region, addr: usize) -> Option<&'static crate::PageDesc> {
    let r = match as_chain(v) {
        // SAFETY: as in `slot`.
        None => unsafe { untag(v).as_ref() }?,
        Some(l) => chain_find(l, addr)?,
    };
    r.head_desc_of(addr)
}

/// The allocated block that `addr` lies in: its first address, its head
/// descriptor and its order. `None` if kmem does not manage `addr` or the page
/// is free or reserved.
///
/// ```
/// use kmem_page::{Gfp, PageAllocator, PageKind};
/// let pages = PageAllocator::new_os();
/// let b = pages.alloc(2, Gfp::KERNEL).unwrap();
/// let blk = kmem_page::lookup_block(b.as_ptr() as usize + 3 * 4096 + 5).unwrap();
/// assert_eq!(blk.addr, b.as_ptr() as usize);
/// assert_eq!(blk.order, 2);
/// assert_eq!(blk.desc.kind(), PageKind::Pages);
/// ```
#[inline]
pub fn lookup_block(addr: usize) -> Option<BlockRef> {
    let r = slot(addr)?;
    r.block_of(addr)
}

/// An allocated block found by [`lookup_block`].
#[derive(Debug, Clone, Copy)]
pub struct BlockRef {
    /// The block's first address.
    pub addr: usize,
    /// The block's order (for a huge mapping: the order it would have, rounded up).
    pub order: u32,
    /// The descriptor of the block's first page.
    pub desc: &'static crate::PageDesc,
    /// The block's size in bytes.
    pub size: usize,
}

impl BlockRef {
    /// The index of `addr`'s page within the block.
    #[inline]
    pub fn page_index(&self, addr: usize) -> usize {
        (addr - self.addr) >> PAGE_SHIFT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A range across a top-level boundary (4 GiB) is found from both
    /// sides and only inside its slots; withdrawn, it is gone.
    #[test]
    fn ranges_across_a_top_level_boundary() {
        // Far from anything the test process maps: 70 TiB + 7 × 4 GiB.
        let a = (70usize << 40) + (7usize << 32);
        let slot_bytes = 1usize << REGION_SHIFT;
        let (start, end) = (a - slot_bytes, a + slot_bytes);
        assert_ne!(split((a - 1) as u64).0, split(a as u64).0);
        let r = crate::meta::alloc_permanent(core::mem::size_of::<Region>(), 64)
            .expect("metadata")
            .cast::<Region>();
        register(start, start, end, r, false).unwrap();
        for addr in [start, a - 1, a, end - 1] {
            assert!(
                slot(addr).is_some_and(|f| ptr::eq(f, r.as_ptr())),
                "{addr:#x}"
            );
        }
        assert!(slot(start - 1).is_none());
        assert!(slot(end).is_none());
        assert_eq!(
            register(a, a, a + 1, r, false),
            Err(RegisterError::Taken),
            "a slot belongs to one region"
        );
        unregister(start, end, r);
        assert!(slot(a).is_none() && slot(start).is_none());
        assert!(slot(ADDRESS_LIMIT as usize).is_none());
    }

    /// A page-source region that covers its slot exactly is published with
    /// `FULL`, and `lookup_head` reads its descriptors without the region's
    /// bounds; one that covers part of a slot, or a huge mapping, is not,
    /// and the bounds refuse what lies outside it. Both give the same answers
    /// as the region's own lookup.
    #[test]
    fn full_slots_find_descriptors_without_the_bounds() {
        use crate::PageKind;
        use crate::region::{RegionKind, meta_size};
        let slot_bytes = 1usize << REGION_SHIFT;
        // Far from anything the test process maps: 71 TiB.
        let a = 71usize << 40;
        let make = |base: usize, npages: usize, kind: RegionKind| {
            let meta = crate::meta::alloc_permanent(meta_size(SLOT_PAGES), 64).expect("metadata");
            // SAFETY: fresh, zeroed, 64-aligned, process-lifetime, ours alone.
            unsafe { Region::init(meta, SLOT_PAGES, base, npages, 1, kind) }
        };
        let full = make(a, SLOT_PAGES, RegionKind::Source);
        let part = make(a + slot_bytes, SLOT_PAGES / 2, RegionKind::Source);
        let huge = make(a + 2 * slot_bytes, SLOT_PAGES, RegionKind::Huge);
        for (r, b) in [
            (full, a),
            (part, a + slot_bytes),
            (huge, a + 2 * slot_bytes),
        ] {
            register(b, b, b + slot_bytes, r, false).unwrap();
            // SAFETY: initialised above, process lifetime.
            let rr = unsafe { r.as_ref() };
            rr.desc(3).set_kind(PageKind::Slab);
            rr.desc(4).set_kind(PageKind::Tail);
        }
        assert_eq!(slot_value(a) as usize & FULL, FULL);
        assert_eq!(slot_value(a + slot_bytes) as usize & FULL, 0, "half a slot");
        assert_eq!(
            slot_value(a + 2 * slot_bytes) as usize & FULL,
            0,
            "a huge mapping"
        );
        for (r, b) in [(full, a), (part, a + slot_bytes)] {
            // SAFETY: as above.
            let rr = unsafe { r.as_ref() };
            let d = lookup_head(b + 3 * 4096 + 17).expect("an allocated head");
            assert!(ptr::eq(d, rr.desc(3)));
            assert!(lookup_head(b + 4 * 4096).is_none(), "a tail page");
            assert!(lookup_head(b).is_none(), "a reserved page");
            for page in [3, 4, 0] {
                let fast = lookup_fast(b + page * 4096 + 9);
                assert_eq!(
                    fast.is_some(),
                    b == a,
                    "the fast lookup answers for full slots only"
                );
                assert!(fast.is_none_or(|f| ptr::eq(f, rr.desc(page))), "any kind");
            }
            assert!(ptr::eq(slot(b + 5).unwrap(), rr));
        }
        assert!(
            lookup_head(a + slot_bytes + slot_bytes / 2).is_none(),
            "beyond a half region"
        );
        assert!(
            lookup_head(a + 2 * slot_bytes + 3 * 4096).is_none(),
            "huge: see lookup_block"
        );
        assert!(is_kmem(a + slot_bytes - 1) && !is_kmem(a + slot_bytes + slot_bytes / 2));
        for (r, b) in [
            (full, a),
            (part, a + slot_bytes),
            (huge, a + 2 * slot_bytes),
        ] {
            unregister(b, b + slot_bytes, r);
            assert!(slot_value(b).is_null() && lookup_head(b + 3 * 4096).is_none());
        }
    }
}
