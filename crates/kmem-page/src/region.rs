//! Regions: runs of pages with their descriptors.
//!
//! A region is what the page layer gets in one piece: a 4 MiB, 4 MiB-aligned
//! mapping from the page source (one block of the largest order), a range a
//! `no_std` user hands in, or one huge mapping for an allocation above the
//! largest order. Its metadata — this header and one [`PageDesc`] per page —
//! lives outside the region's memory.

use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

use crate::desc::{PageDesc, PageKind};
use crate::registry::BlockRef;
use crate::{MAX_PAGE_ORDER, PAGE_SHIFT, PAGE_SIZE};

/// Where a region's memory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RegionKind {
    /// Mapped from the allocator's page source; given back when wholly free.
    Source = 0,
    /// Handed in by the user (`add_region`); never given back.
    Caller = 1,
    /// One mapping for one allocation above the largest order.
    Huge = 2,
}

/// The header of a region's metadata. The page descriptors follow it in the
/// same metadata block.
///
/// All-zero bytes are a valid (empty) `Region`, and every field a lookup may
/// read is atomic: a metadata block is recycled (never unmapped), so a lookup
/// racing with a region's release or reuse reads stale but valid values.
#[repr(C, align(64))]
pub(crate) struct Region {
    /// The metadata pool's free-list link while this block is recycled; only
    /// `MetaPool` touches it (it must stay the first field).
    pub(crate) pool_next: AtomicPtr<u8>,
    /// The metadata block itself, with the provenance it was allocated with,
    /// so it can be handed back to its pool.
    meta: AtomicPtr<u8>,
    /// First byte of the managed pages. Read lock-free by lookups.
    base: AtomicUsize,
    /// Number of managed pages. Read lock-free by lookups.
    npages: AtomicUsize,
    /// Id of the owning `PageAllocator`. Read lock-free by lookups.
    owner_id: AtomicUsize,
    /// A `RegionKind`. Read lock-free by lookups.
    kind: AtomicU8,
    /// The descriptor table (just after this header in the metadata block).
    descs: AtomicPtr<PageDesc>,
    /// Capacity of the descriptor table.
    cap: AtomicUsize,
    /// Bytes of the underlying mapping (Source, Huge); fixed while registered.
    pub(crate) map_size: UnsafeCell<usize>,
    /// Link in the owning zone's region list; only touched under its lock.
    pub(crate) next: UnsafeCell<*mut Region>,
    /// Link in the owning zone's region list; only touched under its lock.
    pub(crate) prev: UnsafeCell<*mut Region>,
}

// SAFETY: lookup-visible fields are atomics; `descs`/`cap` never change after
// construction; the UnsafeCell fields are only touched under the owning zone's lock.
unsafe impl Sync for Region {}
// SAFETY: as above.
unsafe impl Send for Region {}

/// Bytes of metadata for a region of `n` descriptors.
pub(crate) const fn meta_size(n: usize) -> usize {
    core::mem::size_of::<Region>() + n * core::mem::size_of::<PageDesc>()
}

impl Region {
    /// Sets up a region header and `cap` fresh descriptors in `meta`, using
    /// only atomic stores on fields a stale lookup may read.
    ///
    /// # Safety
    ///
    /// `meta` must be valid for reads and writes of `meta_size(cap)` bytes,
    /// 64-aligned, stay valid for the rest of the process, and hold either zero
    /// bytes or a retired `Region` of the same capacity. No one else may write it.
    pub(crate) unsafe fn init(
        meta: NonNull<u8>,
        cap: usize,
        base: usize,
        npages: usize,
        owner_id: usize,
        kind: RegionKind,
    ) -> NonNull<Region> {
        let r = meta.cast::<Region>();
        // SAFETY: the caller guarantees the bytes are a valid `Region` (zeroes
        // are one) that lives for the process.
        let rr: &Region = unsafe { r.as_ref() };
        let descs = Region::table_after(r.as_ptr()).cast_mut();
        rr.meta.store(meta.as_ptr(), Ordering::Relaxed);
        rr.descs.store(descs, Ordering::Relaxed);
        rr.cap.store(cap, Ordering::Relaxed);
        for i in 0..cap {
            // SAFETY: `i < cap`; the table holds valid descriptors (zeroes are valid).
            unsafe { (*descs.add(i)).reset() };
        }
        // SAFETY: only the (single) initialiser writes these zone-locked fields now.
        unsafe {
            *rr.map_size.get() = 0;
            *rr.next.get() = ptr::null_mut();
            *rr.prev.get() = ptr::null_mut();
        }
        rr.kind.store(kind as u8, Ordering::Relaxed);
        rr.base.store(base, Ordering::Relaxed);
        rr.owner_id.store(owner_id, Ordering::Relaxed);
        rr.npages.store(npages, Ordering::Release);
        r
    }

    /// Where the descriptor table of the region whose header is at `r`
    /// starts: right after the 64-byte header, in the same metadata block
    /// (`init` puts it there; the registry's `FULL` slots find descriptors
    /// by it without reading the header). Address arithmetic only.
    #[inline(always)]
    pub(crate) fn table_after(r: *const Region) -> *const PageDesc {
        r.wrapping_add(1).cast()
    }

    /// The metadata block, for handing it back to its pool.
    pub(crate) fn meta(&self) -> NonNull<u8> {
        NonNull::new(self.meta.load(Ordering::Relaxed)).expect("an initialised region")
    }

    #[inline]
    pub(crate) fn base(&self) -> usize {
        self.base.load(Ordering::Acquire)
    }
    #[inline]
    pub(crate) fn npages(&self) -> usize {
        self.npages.load(Ordering::Acquire)
    }
    #[inline]
    pub(crate) fn end(&self) -> usize {
        self.base() + (self.npages() << PAGE_SHIFT)
    }
    #[inline]
    pub(crate) fn owner_id(&self) -> usize {
        self.owner_id.load(Ordering::Acquire)
    }
    #[inline]
    pub(crate) fn kind(&self) -> RegionKind {
        match self.kind.load(Ordering::Acquire) {
            0 => RegionKind::Source,
            1 => RegionKind::Caller,
            _ => RegionKind::Huge,
        }
    }
    /// Capacity of the descriptor table.
    #[inline]
    pub(crate) fn cap(&self) -> usize {
        self.cap.load(Ordering::Relaxed)
    }
    /// The descriptor table (just after the header).
    pub(crate) fn descs_ptr(&self) -> *const PageDesc {
        self.descs.load(Ordering::Relaxed)
    }
    /// Marks the region as no longer in use (before its metadata is recycled).
    pub(crate) fn retire(&self) {
        self.owner_id.store(0, Ordering::Release);
        self.npages.store(0, Ordering::Release);
    }

    #[inline]
    pub(crate) fn contains(&self, addr: usize) -> bool {
        let b = self.base();
        addr >= b && addr - b < (self.npages() << PAGE_SHIFT)
    }

    /// The descriptor at index `i` (`i < cap`).
    #[inline]
    pub(crate) fn desc(&self, i: usize) -> &'static PageDesc {
        let cap = self.cap.load(Ordering::Relaxed);
        debug_assert!(i < cap);
        // SAFETY: the index is clamped below `cap` (a stale lookup may ask for
        // more), and the table lives as long as the process.
        unsafe {
            &*self
                .descs
                .load(Ordering::Relaxed)
                .add(i.min(cap.saturating_sub(1)))
        }
    }

    /// The index of the page holding `addr` (which the region contains).
    #[inline]
    pub(crate) fn index_of(&self, addr: usize) -> usize {
        if self.kind() == RegionKind::Huge {
            0
        } else {
            (addr - self.base()) >> PAGE_SHIFT
        }
    }

    /// The address of page `i`.
    #[inline]
    pub(crate) fn addr_of(&self, i: usize) -> usize {
        self.base() + (i << PAGE_SHIFT)
    }

    pub(crate) fn desc_of(&self, addr: usize) -> Option<&'static PageDesc> {
        if !self.contains(addr) {
            return None;
        }
        Some(self.desc(self.index_of(addr)))
    }

    /// The index of the allocated block's head page that covers page `i`.
    #[inline]
    pub(crate) fn head_of(&self, i: usize) -> Option<usize> {
        let d = self.desc(i);
        match d.kind() {
            k if k.is_allocated() => Some(i),
            PageKind::Tail => {
                let dist = d.head_dist();
                if dist == 0 || dist > i {
                    return None;
                }
                let h = i - dist;
                let hd = self.desc(h);
                if hd.kind().is_allocated() && h + (1usize << hd.order()) > i {
                    Some(h)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// The descriptor of `addr`'s page if it heads an allocated block (see
    /// [`crate::lookup_head`]).
    #[inline(always)]
    pub(crate) fn head_desc_of(&self, addr: usize) -> Option<&'static PageDesc> {
        let off = addr.wrapping_sub(self.base());
        if off >= self.npages() << PAGE_SHIFT
            || self.kind.load(Ordering::Acquire) == RegionKind::Huge as u8
        {
            return None;
        }
        let d = self.desc(off >> PAGE_SHIFT);
        d.kind().is_allocated().then_some(d)
    }

    /// The allocated block `addr` lies in (see [`crate::lookup_block`]).
    /// Inlined into `kfree`'s path: each field is read once.
    #[inline]
    pub(crate) fn block_of(&self, addr: usize) -> Option<BlockRef> {
        let base = self.base();
        let off = addr.wrapping_sub(base);
        if off >= self.npages() << PAGE_SHIFT {
            return None;
        }
        if self.kind.load(Ordering::Acquire) == RegionKind::Huge as u8 {
            return self.huge_block();
        }
        let h = self.head_of(off >> PAGE_SHIFT)?;
        let d = self.desc(h);
        let order = d.order();
        Some(BlockRef {
            addr: base + (h << PAGE_SHIFT),
            order,
            desc: d,
            size: PAGE_SIZE << order,
        })
    }

    /// [`block_of`](Self::block_of) for a huge mapping: the whole region.
    #[cold]
    #[inline(never)]
    fn huge_block(&self) -> Option<BlockRef> {
        let d = self.desc(0);
        if !d.kind().is_allocated() {
            return None;
        }
        Some(BlockRef {
            addr: self.base(),
            order: d.order(),
            desc: d,
            size: self.npages() << PAGE_SHIFT,
        })
    }
}

/// Metadata blocks for source regions (one largest-order block each).
pub(crate) static SOURCE_META: crate::meta::MetaPool =
    crate::meta::MetaPool::new(meta_size(1 << MAX_PAGE_ORDER));
/// Metadata blocks for huge mappings (one descriptor each).
pub(crate) static HUGE_META: crate::meta::MetaPool = crate::meta::MetaPool::new(meta_size(1));
