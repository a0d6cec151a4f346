//! The reserve: an array of element pointers and how many of them are filled
//! (the kernel's `pool->elements`, `pool->curr_nr`, `pool->min_nr`).
//!
//! The array's memory comes from kmem's page layer, never from the system
//! allocator: `RESERVE_PAGES`, a page allocator over OS memory kept apart
//! from [`kmem_page::global`] so that the pools' own bookkeeping never
//! competes with (or is counted as) the elements of a page pool. It is one
//! block of `2^order` pages per pool, and its capacity is whatever fits in
//! that block (512 slots per page), so a resize within that capacity needs no
//! new array.

use core::ptr::NonNull;

use kmem_page::{Gfp, MAX_PAGE_ORDER, PAGE_SIZE, PageAllocator};
#[cfg(not(miri))]
use kmem_platform::Os;

/// The page allocator the reserve arrays come from, with the page layer's
/// default watermark (its region stays mapped once made: pools come and go
/// rarely, and a slot array is a page or two).
#[cfg(not(miri))]
static RESERVE_PAGES: PageAllocator<Os> = PageAllocator::new(Os::new());

/// Under Miri the same, over a source that also keeps each mapping's pointer
/// in a static: the page layer addresses its regions by integer, so Miri
/// would report the region it keeps for the process's lifetime as leaked.
#[cfg(miri)]
static RESERVE_PAGES: PageAllocator<miri_root::Rooted> = PageAllocator::new(miri_root::Rooted);

#[cfg(miri)]
mod miri_root {
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicPtr, Ordering};

    use kmem_platform::{Os, PageSource};

    static ROOTS: [AtomicPtr<u8>; 8] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 8];

    pub(super) struct Rooted;

    // SAFETY: forwards to `Os`, which keeps the contract; the roots are only
    // bookkeeping.
    unsafe impl PageSource for Rooted {
        fn map(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
            let p = Os::new().map(size, align)?;
            if let Some(slot) = ROOTS.iter().find(|s| s.load(Ordering::Relaxed).is_null()) {
                slot.store(p.as_ptr(), Ordering::Relaxed);
            }
            Some(p)
        }
        unsafe fn unmap(&self, ptr: NonNull<u8>, size: usize, align: usize) {
            if let Some(slot) = ROOTS
                .iter()
                .find(|s| s.load(Ordering::Relaxed) == ptr.as_ptr())
            {
                slot.store(core::ptr::null_mut(), Ordering::Relaxed);
            }
            // SAFETY: passed on from our caller.
            unsafe { Os::new().unmap(ptr, size, align) }
        }
        fn name(&self) -> &'static str {
            "os"
        }
    }
}

/// Slots in a block of `2^order` pages.
const fn slots(order: u32) -> usize {
    (PAGE_SIZE << order) / core::mem::size_of::<*mut u8>()
}

/// The largest `min_nr` a pool can have: as many slots as a block of the
/// largest order holds (4 MiB / 8 = 524288).
pub const MAX_MIN_NR: usize = slots(MAX_PAGE_ORDER);

/// A block of pages holding element slots.
pub(crate) struct SlotArray {
    /// The first slot; the block's address. Valid for `capacity` slots.
    base: NonNull<*mut u8>,
    /// Slots in the block: `slots(order)`.
    capacity: usize,
    /// The block's order in the page layer.
    order: u32,
}

impl SlotArray {
    /// The smallest order whose block holds `n` slots (`None` above
    /// [`MAX_MIN_NR`]).
    pub(crate) fn order_for(n: usize) -> Option<u32> {
        (0..=MAX_PAGE_ORDER).find(|&o| slots(o) >= n)
    }

    /// An array of at least `n` slots from the page layer, or `None` if the
    /// pages cannot be had (or `n > MAX_MIN_NR`).
    pub(crate) fn new(n: usize) -> Option<SlotArray> {
        let order = Self::order_for(n)?;
        let p = RESERVE_PAGES.alloc_raw(order, Gfp::KERNEL).ok()?;
        Some(SlotArray {
            base: p.cast(),
            capacity: slots(order),
            order,
        })
    }

    /// How many slots the array has.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Drop for SlotArray {
    fn drop(&mut self) {
        // SAFETY: `base` heads an order-`order` block this array got from
        // `RESERVE_PAGES` in `new` and nothing else refers to it.
        let r = unsafe { RESERVE_PAGES.free_raw(self.base.cast(), self.order) };
        debug_assert!(r.is_ok(), "freeing a reserve array: {r:?}");
    }
}

/// The reserve, guarded by the pool lock.
pub(crate) struct Reserve {
    /// Where the elements are kept. Slots `0..curr_nr` hold elements the pool
    /// owns; the rest are garbage.
    slots: SlotArray,
    /// Elements in the reserve. Invariant: `curr_nr <= slots.capacity()` and
    /// `curr_nr <= max(min_nr, 1)`, except transiently during a shrink.
    pub(crate) curr_nr: usize,
    /// The reserve's target size. Invariant: `max(min_nr, 1) <= slots.capacity()`
    /// (a pool of `min_nr == 0` keeps one slot, as the kernel does, so that a
    /// free can hand an element to a waiter).
    pub(crate) min_nr: usize,
    /// The lowest `curr_nr` seen since creation (or the last reset).
    pub(crate) low_water: usize,
    /// Backend allocations that failed (counted under the lock the slow path
    /// takes anyway, so it costs no atomic).
    pub(crate) backend_failures: u64,
    /// Allocations served from the reserve.
    pub(crate) reserve_allocs: u64,
    /// Frees that refilled the reserve.
    pub(crate) reserve_refills: u64,
}

impl Reserve {
    pub(crate) fn new(slots: SlotArray, min_nr: usize) -> Reserve {
        debug_assert!(min_nr.max(1) <= slots.capacity());
        Reserve {
            slots,
            curr_nr: 0,
            min_nr,
            low_water: 0,
            backend_failures: 0,
            reserve_allocs: 0,
            reserve_refills: 0,
        }
    }

    /// Whether a freed element should go to the reserve rather than the
    /// backend: below `min_nr`, or the `min_nr == 0` edge case (an empty
    /// one-slot reserve, so that waiters on a zero-minimum pool are woken).
    #[inline]
    pub(crate) fn wants(&self) -> bool {
        self.curr_nr < self.min_nr || (self.min_nr == 0 && self.curr_nr == 0)
    }

    /// `add_element`.
    ///
    /// # Safety
    ///
    /// There must be a free slot (`curr_nr < capacity`), and `e` must be an
    /// element the pool owns (it is handed out again later).
    #[inline]
    pub(crate) unsafe fn add(&mut self, e: NonNull<u8>) {
        debug_assert!(self.curr_nr < self.slots.capacity());
        // SAFETY: `curr_nr < capacity` (caller), so the slot is inside the block.
        unsafe { self.slots.base.as_ptr().add(self.curr_nr).write(e.as_ptr()) };
        self.curr_nr += 1;
    }

    /// `remove_element` for an allocation: also moves the low-water mark.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<NonNull<u8>> {
        let e = self.remove()?;
        if self.curr_nr < self.low_water {
            self.low_water = self.curr_nr;
        }
        Some(e)
    }

    /// `remove_element`: the most recently added element, if any.
    #[inline]
    pub(crate) fn remove(&mut self) -> Option<NonNull<u8>> {
        if self.curr_nr == 0 {
            return None;
        }
        self.curr_nr -= 1;
        // SAFETY: slot `curr_nr` (< capacity) was written by `add` and holds a
        // non-null element.
        Some(unsafe { NonNull::new_unchecked(self.slots.base.as_ptr().add(self.curr_nr).read()) })
    }

    /// Slots available without a new array.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Moves the elements into `new` (which must hold them) and returns the
    /// old array, for the caller to free outside the lock.
    pub(crate) fn replace_slots(&mut self, new: SlotArray) -> SlotArray {
        assert!(new.capacity() >= self.curr_nr);
        // SAFETY: both blocks hold at least `curr_nr` slots and are distinct
        // page blocks.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.slots.base.as_ptr(),
                new.base.as_ptr(),
                self.curr_nr,
            )
        };
        core::mem::replace(&mut self.slots, new)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn orders_and_capacities() {
        assert_eq!(SlotArray::order_for(0), Some(0));
        assert_eq!(SlotArray::order_for(512), Some(0));
        assert_eq!(SlotArray::order_for(513), Some(1));
        assert_eq!(SlotArray::order_for(MAX_MIN_NR), Some(MAX_PAGE_ORDER));
        assert_eq!(SlotArray::order_for(MAX_MIN_NR + 1), None);
    }

    #[test]
    fn lifo_and_low_water() {
        let mut r = Reserve::new(SlotArray::new(4).unwrap(), 4);
        assert_eq!(r.capacity(), 512);
        let e = |i: usize| NonNull::new(core::ptr::without_provenance_mut::<u8>(i * 16)).unwrap();
        for i in 1..=4 {
            assert!(r.wants());
            // SAFETY: capacity 512 > 4; fake addresses are never dereferenced.
            unsafe { r.add(e(i)) };
        }
        r.low_water = r.curr_nr;
        assert!(!r.wants());
        assert_eq!(r.take(), Some(e(4)));
        assert_eq!(r.take(), Some(e(3)));
        assert_eq!(r.low_water, 2);
        let old = r.replace_slots(SlotArray::new(1000).unwrap());
        assert_eq!(old.capacity(), 512);
        assert_eq!(r.capacity(), 1024);
        assert_eq!(r.remove(), Some(e(2)));
        assert_eq!(
            r.low_water, 2,
            "removals that are not allocations leave the mark"
        );
        assert_eq!(r.take(), Some(e(1)));
        assert_eq!(r.take(), None);
        assert_eq!(r.low_water, 0);
    }

    #[test]
    fn zero_minimum_keeps_one_slot() {
        let mut r = Reserve::new(SlotArray::new(1).unwrap(), 0);
        assert!(r.wants());
        // SAFETY: one free slot; the address is never dereferenced.
        unsafe { r.add(NonNull::new(core::ptr::without_provenance_mut::<u8>(64)).unwrap()) };
        assert!(!r.wants());
    }
}
