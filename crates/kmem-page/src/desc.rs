//! Page descriptors: what every page is, kept beside the memory (never in it).

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};

/// What a page is used for (the kernel's page flags, reduced to what kmem needs).
///
/// ```
/// use kmem_page::PageKind;
/// assert!(PageKind::Slab.is_allocated());
/// assert!(!PageKind::Free.is_allocated());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PageKind {
    /// The first page of a free buddy block (`PageBuddy`).
    Free = 0,
    /// A page inside a block (not its first page). Its descriptor points back to the head.
    Tail = 1,
    /// The first page of a block handed out by the page API (`__get_free_pages`, [`Pages`](crate::Pages)).
    Pages = 2,
    /// The first page of a slab (owned by a slab cache).
    Slab = 3,
    /// The first page of a large allocation of an upper layer: kmalloc above
    /// its largest size class, or a region pool's large block. Its owner word
    /// says whose it is.
    Large = 4,
    /// A page of metadata carved from a caller-supplied region; never handed out.
    Reserved = 5,
    /// The first page of a free block held on a per-cpu list (`pcp`): free, but
    /// not merged with its buddy until the list is drained.
    Cached = 6,
}

impl PageKind {
    #[inline(always)]
    pub(crate) const fn from_u8(v: u8) -> PageKind {
        if v <= PageKind::Cached as u8 {
            // SAFETY: the discriminants are 0..=6, every one a kind (checked
            // by the test `kinds_round_trip`).
            unsafe { core::mem::transmute::<u8, PageKind>(v) }
        } else {
            PageKind::Reserved
        }
    }
    /// Whether this kind heads a block in use (pages, slab or large).
    #[inline(always)]
    pub const fn is_allocated(self) -> bool {
        // Pages, Slab, Large: the discriminants 2..=4.
        (self as u8).wrapping_sub(PageKind::Pages as u8)
            <= PageKind::Large as u8 - PageKind::Pages as u8
    }
    /// The kernel-ish name used in reports.
    pub const fn name(self) -> &'static str {
        match self {
            PageKind::Free => "free",
            PageKind::Tail => "tail",
            PageKind::Pages => "pages",
            PageKind::Slab => "slab",
            PageKind::Large => "large block",
            PageKind::Reserved => "reserved",
            PageKind::Cached => "free (per-cpu list)",
        }
    }
}

/// Descriptor flag: the block's memory is known to read as zero (fresh from
/// the source, or discarded), so `__GFP_ZERO` need not clear it again.
pub(crate) const FLAG_ZEROED: u8 = 1;

/// The descriptor of one page (the kernel's `struct page`), kept in a side
/// table beside the region it describes.
///
/// The layer that owns an allocated block may keep two words in its head page's
/// descriptor: [`owner`](PageDesc::owner) (the slab layer keeps its cache there)
/// and [`private`](PageDesc::private) (its slab), which is how `kfree` finds the
/// cache of any object in O(1).
///
/// ```
/// use kmem_page::{Gfp, PageAllocator, PageKind};
/// let pages = PageAllocator::new_os();
/// let p = pages.alloc_raw(0, Gfp::KERNEL).unwrap();
/// let d = kmem_page::lookup(p.as_ptr() as usize).unwrap();
/// assert_eq!(d.kind(), PageKind::Pages);
/// assert_eq!(d.order(), 0);
/// // SAFETY: `p` came from `pages.alloc_raw(0, ..)` and is not used again.
/// unsafe { pages.free_raw(p, 0).unwrap() };
/// ```
#[repr(C)]
pub struct PageDesc {
    /// A [`PageKind`]. Written under the zone lock, or under a per-cpu set's
    /// lock for a block on (or coming off) that set's list; an allocated head
    /// leaves its kind through `claim` (compare-and-swap); read lock-free by lookups.
    kind: AtomicU8,
    /// For a block head (free, cached or allocated): the block's order. Written
    /// under the lock that guards the block's state (zone, or a per-cpu set).
    order: AtomicU8,
    /// `FLAG_*` bits, valid on free and cached block heads. Written as `order`.
    flags: AtomicU8,
    _pad: AtomicU8,
    /// For a `Tail` page: how many pages back its head is. Stale once the block
    /// it belonged to is freed; [`resolve`](crate::registry) checks the head still covers it.
    /// For the head of an allocated block: the owner's third word
    /// ([`aux`](PageDesc::aux)), garbage until the owner sets it.
    head_dist: AtomicU32,
    /// For the owner of an allocated block: its first word (the slab cache).
    owner: AtomicUsize,
    /// For the owner of an allocated block: its second word (the slab).
    private: AtomicUsize,
    /// List link, valid while `kind == Free` (a buddy free list: touched only
    /// under the zone lock) or `kind == Cached` (a per-cpu list: touched only
    /// under its set's lock).
    pub(crate) next: UnsafeCell<*mut PageDesc>,
    /// List link, as `next`.
    pub(crate) prev: UnsafeCell<*mut PageDesc>,
}

// SAFETY: every field but the two links is atomic; the links are read and
// written only while the lock of the list the block is on is held.
unsafe impl Sync for PageDesc {}
// SAFETY: as above; a descriptor holds no thread-bound state.
unsafe impl Send for PageDesc {}

impl PageDesc {
    /// Resets a descriptor to "not part of any block" with atomic stores (a
    /// stale lookup may be reading it). All-zero bytes are a valid descriptor.
    ///
    /// # Safety
    ///
    /// The caller must be the only one touching the links (a region being set up).
    pub(crate) unsafe fn reset(&self) {
        self.kind.store(PageKind::Reserved as u8, Ordering::Relaxed);
        self.order.store(0, Ordering::Relaxed);
        self.flags.store(0, Ordering::Relaxed);
        self.head_dist.store(0, Ordering::Relaxed);
        self.owner.store(0, Ordering::Relaxed);
        self.private.store(0, Ordering::Relaxed);
        // SAFETY: the caller guarantees exclusive access to the links.
        unsafe {
            *self.next.get() = ptr::null_mut();
            *self.prev.get() = ptr::null_mut();
        }
    }

    /// What the page is.
    #[inline(always)]
    pub fn kind(&self) -> PageKind {
        PageKind::from_u8(self.kind.load(Ordering::Acquire))
    }
    #[inline]
    pub(crate) fn set_kind(&self, k: PageKind) {
        self.kind.store(k as u8, Ordering::Release);
    }
    /// Moves the kind from `from` to `to` if it is `from` (a free claiming its
    /// block: of two racing frees of one block, exactly one wins).
    #[inline]
    pub(crate) fn claim(&self, from: PageKind, to: PageKind) -> bool {
        self.kind
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
    /// The order of the block this page heads (meaningful for heads only).
    #[inline]
    pub fn order(&self) -> u32 {
        self.order.load(Ordering::Relaxed) as u32
    }
    #[inline]
    pub(crate) fn set_order(&self, o: u32) {
        self.order.store(o as u8, Ordering::Relaxed);
    }
    #[inline]
    pub(crate) fn flags(&self) -> u8 {
        self.flags.load(Ordering::Relaxed)
    }
    #[inline]
    pub(crate) fn set_flags(&self, f: u8) {
        self.flags.store(f, Ordering::Relaxed);
    }
    /// Whether the page is of kind `k`: one compare, for hot paths that want
    /// one kind (a [`kind`](PageDesc::kind) check may cost a range check more).
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator, PageKind};
    /// let pages = PageAllocator::new_os();
    /// let b = pages.alloc(0, Gfp::KERNEL).unwrap();
    /// let d = kmem_page::lookup_head(b.as_ptr() as usize).unwrap();
    /// assert!(d.is_kind(PageKind::Pages) && !d.is_kind(PageKind::Slab));
    /// ```
    #[inline(always)]
    pub fn is_kind(&self, k: PageKind) -> bool {
        self.kind.load(Ordering::Acquire) == k as u8
    }
    #[inline]
    pub(crate) fn head_dist(&self) -> usize {
        self.head_dist.load(Ordering::Relaxed) as usize
    }
    #[inline]
    pub(crate) fn set_head_dist(&self, d: usize) {
        self.head_dist.store(d as u32, Ordering::Relaxed);
    }
    /// The owner's first word (0 if unset). The slab layer keeps its cache here.
    #[inline]
    pub fn owner(&self) -> usize {
        self.owner.load(Ordering::Acquire)
    }
    /// Sets the owner's first word. Only the layer that allocated the block should.
    #[inline]
    pub fn set_owner(&self, v: usize) {
        self.owner.store(v, Ordering::Release);
    }
    /// The owner's third, 32-bit word, on the head page of an allocated
    /// block: not cleared between uses, so meaningful only after the owner
    /// set it (the slab layer keeps its slab's colour offset here, so that a
    /// free finds the slab's first object without reading the slab).
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator};
    /// let pages = PageAllocator::new_os();
    /// let b = pages.alloc(0, Gfp::KERNEL).unwrap();
    /// let d = kmem_page::lookup_head(b.as_ptr() as usize).unwrap();
    /// d.set_aux(192);
    /// assert_eq!(d.aux(), 192);
    /// ```
    #[inline(always)]
    pub fn aux(&self) -> u32 {
        self.head_dist.load(Ordering::Relaxed)
    }
    /// Sets the owner's third word (head pages of allocated blocks only:
    /// on a tail page it is the distance to the head, which lookups use).
    #[inline]
    pub fn set_aux(&self, v: u32) {
        self.head_dist.store(v, Ordering::Relaxed);
    }
    /// The owner's second word (0 if unset).
    #[inline]
    pub fn private(&self) -> usize {
        self.private.load(Ordering::Acquire)
    }
    /// Sets the owner's second word.
    #[inline]
    pub fn set_private(&self, v: usize) {
        self.private.store(v, Ordering::Release);
    }
}

impl core::fmt::Debug for PageDesc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PageDesc")
            .field("kind", &self.kind())
            .field("order", &self.order())
            .field("owner", &format_args!("{:#x}", self.owner()))
            .field("private", &format_args!("{:#x}", self.private()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::PageKind;

    #[test]
    fn kinds_round_trip() {
        let all = [
            PageKind::Free,
            PageKind::Tail,
            PageKind::Pages,
            PageKind::Slab,
            PageKind::Large,
            PageKind::Reserved,
            PageKind::Cached,
        ];
        for k in all {
            assert_eq!(PageKind::from_u8(k as u8), k);
            let allocated = matches!(k, PageKind::Pages | PageKind::Slab | PageKind::Large);
            assert_eq!(k.is_allocated(), allocated, "{k:?}");
        }
        assert_eq!(PageKind::from_u8(7), PageKind::Reserved);
        assert_eq!(PageKind::from_u8(255), PageKind::Reserved);
    }
}
