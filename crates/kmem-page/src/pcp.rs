//! The per-cpu page lists, off the zone lock (Linux's `struct per_cpu_pages`
//! since 5.19, with its own `pcp->lock`).
//!
//! Every cpu has a set of lists, one per order `0..PCP_ORDERS`, of recently
//! freed blocks that are handed out again LIFO without splitting or merging.
//! A set has its own lock, so the common allocation and free of a small block
//! touches only the calling cpu's set:
//!
//! * allocation ([`rmqueue_pcplist`](PageAllocator::rmqueue_pcplist)) pops the
//!   head of the cpu's list; when the list is empty, [`rmqueue_bulk`] refills
//!   `pcp_batch(order)` blocks from the buddy lists in one zone-lock hold;
//! * free ([`free_unref_page`](PageAllocator::free_unref_page)) pushes on the
//!   cpu's list; when the list is at `pcp_high(order)`, [`free_pcppages_bulk`]
//!   first gives `pcp_batch(order)` of its coldest blocks back to the buddy in
//!   one zone-lock hold;
//! * [`drain`](PageAllocator::drain) (`drain_all_pages`) empties every set.
//!
//! Lock order: a set's lock may be held while taking the zone lock, never the
//! other way round; several sets' locks are only ever held together in index
//! order ([`AllSets`]: statistics, the consistency check, `fork`).
//!
//! The sets live inside the [`PageAllocator`] (sized statically, [`PCP_SETS`]
//! of them), never in memory from the system allocator. Cpu `c` uses set
//! `c % PCP_SETS`; with more cpus than sets, some cpus share a set (and its lock).

use core::ptr;

use kmem_platform::{Mutex, MutexGuard, PageSource, RawLock};

use crate::PageAllocator;
use crate::buddy::Zone;
use crate::desc::{FLAG_ZEROED, PageDesc, PageKind};
use crate::region::Region;
use crate::{PAGE_SHIFT, REGION_SIZE};

/// Orders with per-cpu lists: 0 to `PAGE_ALLOC_COSTLY_ORDER` (3), as in Linux.
pub(crate) const PCP_ORDERS: usize = 4;

/// Sets of per-cpu lists per allocator; cpu `c` uses set `c % PCP_SETS`.
/// (4 under Miri, whose one cpu is 0, so that tests picking sets explicitly
/// wrap around quickly and the every-set walks stay cheap.)
///
/// ```
/// assert!(kmem_page::PCP_SETS.is_power_of_two());
/// ```
pub const PCP_SETS: usize = if cfg!(miri) { 4 } else { 64 };

/// `pcp->high`: how many blocks of `order` a per-cpu list holds at most
/// (64 pages' worth).
pub(crate) const fn pcp_high(order: usize) -> usize {
    64 >> order
}

/// `pcp->batch`: how many blocks of `order` move between a per-cpu list and
/// the buddy lists in one zone-lock hold (16 pages' worth, at least one).
pub(crate) const fn pcp_batch(order: usize) -> usize {
    let b = 16 >> order;
    if b == 0 { 1 } else { b }
}

/// One order's per-cpu list: a doubly linked list through the descriptors'
/// `next`/`prev` links, hot end at `head` (allocation and free), cold end at
/// `tail` (where [`free_pcppages_bulk`] takes from).
pub(crate) struct PcpList {
    /// Hottest block, or null.
    pub(crate) head: *mut PageDesc,
    /// Coldest block, or null (iff `head` is null).
    pub(crate) tail: *mut PageDesc,
    /// Blocks on the list. Invariant: `count <= pcp_high(order)`.
    pub(crate) count: usize,
}

impl PcpList {
    const EMPTY: PcpList = PcpList {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        count: 0,
    };

    /// Pushes `d` at the hot end.
    fn push_head(&mut self, d: *mut PageDesc) {
        // SAFETY: the set's lock is held (we have `&mut`), which guards the
        // links of every block on this list; `d` is a live descriptor not on
        // any list, `self.head` null or a live block of this list.
        unsafe {
            *(*d).prev.get() = ptr::null_mut();
            *(*d).next.get() = self.head;
            if self.head.is_null() {
                self.tail = d;
            } else {
                *(*self.head).prev.get() = d;
            }
        }
        self.head = d;
        self.count += 1;
    }

    /// Pushes `d` at the cold end (`rmqueue_bulk` keeps the buddy's order).
    fn push_tail(&mut self, d: *mut PageDesc) {
        // SAFETY: as in `push_head`.
        unsafe {
            *(*d).next.get() = ptr::null_mut();
            *(*d).prev.get() = self.tail;
            if self.tail.is_null() {
                self.head = d;
            } else {
                *(*self.tail).next.get() = d;
            }
        }
        self.tail = d;
        self.count += 1;
    }

    /// Pops the hottest block.
    fn pop_head(&mut self) -> Option<&'static PageDesc> {
        let d = self.head;
        if d.is_null() {
            return None;
        }
        // SAFETY: `d` is a live block of this list; the set's lock is held.
        unsafe {
            self.head = *(*d).next.get();
            if self.head.is_null() {
                self.tail = ptr::null_mut();
            } else {
                *(*self.head).prev.get() = ptr::null_mut();
            }
        }
        self.count -= 1;
        // SAFETY: descriptors live for the process.
        Some(unsafe { &*d })
    }

    /// Pops the coldest block.
    fn pop_tail(&mut self) -> Option<&'static PageDesc> {
        let d = self.tail;
        if d.is_null() {
            return None;
        }
        // SAFETY: as in `pop_head`.
        unsafe {
            self.tail = *(*d).prev.get();
            if self.tail.is_null() {
                self.head = ptr::null_mut();
            } else {
                *(*self.tail).next.get() = ptr::null_mut();
            }
        }
        self.count -= 1;
        // SAFETY: descriptors live for the process.
        Some(unsafe { &*d })
    }
}

/// Counters of one set, kept under its lock and summed by `stats()`.
#[derive(Clone, Copy, Default)]
pub(crate) struct PcpCounters {
    /// Blocks handed out from this set's lists, per order.
    pub(crate) allocs: [u64; PCP_ORDERS],
    /// Blocks freed onto this set's lists, per order.
    pub(crate) frees: [u64; PCP_ORDERS],
    /// `__GFP_ZERO` allocations from this set that had to clear memory.
    pub(crate) zero_fills: u64,
    /// `__GFP_ZERO` allocations from this set whose memory was known zero.
    pub(crate) zero_skips: u64,
    /// Pages handed out from this set minus pages freed onto it (negative
    /// when blocks allocated on other sets are freed here). Summed with
    /// `Zone::used_pages` over every set: the pages in use.
    pub(crate) used: isize,
}

/// What a set's lock guards.
pub(crate) struct PcpLists {
    /// One list per order. Invariant: a block on list `o` is a `Cached` head
    /// of order `o` whose owner word is its region, whose private word is its
    /// address and whose `FLAG_ZEROED` says whether it is known zero; its other
    /// pages are `Tail`s that point at it (`head_dist`), so that handing it
    /// out writes the head only. Its links are touched only under this set's lock.
    pub(crate) lists: [PcpList; PCP_ORDERS],
    /// Counters of this set.
    pub(crate) stats: PcpCounters,
}

// SAFETY: the raw pointers point into process-lifetime metadata and are only
// followed while the set's lock is held.
unsafe impl Send for PcpLists {}

impl PcpLists {
    /// Pages held on this set's lists: `sum(lists[o].count << o)`.
    pub(crate) fn pages(&self) -> usize {
        self.lists
            .iter()
            .enumerate()
            .map(|(o, l)| l.count << o)
            .sum()
    }
}

/// One cpu's set of lists (`struct per_cpu_pages`), on its own cache lines.
#[repr(align(128))]
pub(crate) struct PerCpuPages {
    /// `pcp->lock`. Lock order: may be held while taking the zone lock, never
    /// taken while the zone lock is held; two sets' locks only in index order.
    pub(crate) lock: Mutex<PcpLists>,
}

impl PerCpuPages {
    pub(crate) const fn new() -> Self {
        PerCpuPages {
            lock: Mutex::new(PcpLists {
                lists: [PcpList::EMPTY; PCP_ORDERS],
                stats: PcpCounters {
                    allocs: [0; PCP_ORDERS],
                    frees: [0; PCP_ORDERS],
                    zero_fills: 0,
                    zero_skips: 0,
                    used: 0,
                },
            }),
        }
    }
}

/// Every set's lock, taken in index order and released on drop: a consistent
/// view of all the per-cpu lists (take the zone lock after it, if needed).
pub(crate) struct AllSets<'a> {
    sets: &'a [PerCpuPages; PCP_SETS],
}

impl<'a> AllSets<'a> {
    pub(crate) fn lock(sets: &'a [PerCpuPages; PCP_SETS]) -> Self {
        for s in sets {
            // SAFETY: locked here, unlocked in `drop`, nothing else uses the
            // raw lock while the data is reached through `data_ptr`.
            lock_api::RawMutex::lock(unsafe { s.lock.raw() });
        }
        AllSets { sets }
    }

    /// Every set's lists.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &PcpLists> {
        // SAFETY: every set's lock is held by `self` for its lifetime.
        self.sets.iter().map(|s| unsafe { &*s.lock.data_ptr() })
    }
}

impl Drop for AllSets<'_> {
    fn drop(&mut self) {
        for s in self.sets.iter().rev() {
            // SAFETY: locked by `AllSets::lock` on this thread.
            unsafe { lock_api::RawMutex::unlock(s.lock.raw()) };
        }
    }
}

/// The raw locks of every set, in lock order (for the `fork` handlers).
pub(crate) fn raw_locks<S: PageSource>(
    a: &PageAllocator<S>,
) -> impl DoubleEndedIterator<Item = &RawLock> {
    // SAFETY: the `fork` handlers lock and unlock each one as a whole.
    a.pcp.iter().map(|s| unsafe { s.lock.raw() })
}

/// `rmqueue_bulk`: moves up to `pcp_batch(order)` blocks of `order` from the
/// buddy lists to the cold end of `list`, marked `Cached`. Returns how many.
fn rmqueue_bulk(z: &mut Zone, list: &mut PcpList, order: usize) -> usize {
    let mut n = 0;
    while n < pcp_batch(order) {
        let Some((region, idx, zeroed)) = z.take_block(order as u32) else {
            break;
        };
        let d = region.desc(idx);
        crate::buddy::mark_tails(region, idx, order as u32);
        make_cached(d, region, idx, order as u32, zeroed);
        list.push_tail(d as *const PageDesc as *mut PageDesc);
        n += 1;
    }
    n
}

/// Writes the `Cached` state of a block going onto a per-cpu list.
fn make_cached(d: &PageDesc, region: &'static Region, idx: usize, order: u32, zeroed: bool) {
    d.set_order(order);
    d.set_owner(region as *const Region as usize);
    d.set_private(region.addr_of(idx));
    d.set_flags(if zeroed { FLAG_ZEROED } else { 0 });
    d.set_kind(PageKind::Cached);
}

/// A cached block's region and page index.
fn cached_block(d: &PageDesc) -> (&'static Region, usize) {
    // SAFETY: the invariant of `PcpLists::lists`: a cached head's owner word
    // is its (process-lifetime) region.
    let region: &'static Region = unsafe { &*(d.owner() as *const Region) };
    (region, (d.private() - region.base()) >> PAGE_SHIFT)
}

/// Up to this many regions become wholly free in one `free_pcppages_bulk`.
const MAX_RELEASE: usize = pcp_batch(0);

/// Regions a bulk free took out of the zone, to release after the locks are dropped.
pub(crate) struct Released {
    regions: [Option<&'static Region>; MAX_RELEASE],
    n: usize,
}

impl Released {
    const fn new() -> Self {
        Released {
            regions: [None; MAX_RELEASE],
            n: 0,
        }
    }
}

impl<S: PageSource> PageAllocator<S> {
    /// The set of cpu `cpu`.
    #[inline(always)]
    pub(crate) fn pcp_set(&self, cpu: usize) -> &PerCpuPages {
        &self.pcp[cpu % PCP_SETS]
    }

    /// `rmqueue_pcplist`: a block of `order` (< `PCP_ORDERS`) from `cpu`'s
    /// list, refilled from the buddy lists when empty, marked allocated as
    /// `kind`. Returns its address and whether it is known zero, or `None` if
    /// the list and the buddy lists have no block of `order` or larger.
    #[inline]
    pub(crate) fn rmqueue_pcplist(
        &self,
        cpu: usize,
        order: u32,
        kind: PageKind,
        zero: bool,
    ) -> Option<(usize, bool)> {
        let o = order as usize;
        let mut p = self.pcp_set(cpu).lock.lock();
        let d = match p.lists[o].pop_head() {
            Some(d) => d,
            None => self.refill(&mut p, o)?,
        };
        let (region, idx) = cached_block(d);
        let zeroed = d.flags() & FLAG_ZEROED != 0;
        crate::buddy::mark_head(region, idx, order, kind);
        p.stats.allocs[o] += 1;
        if zero {
            if zeroed {
                p.stats.zero_skips += 1;
            } else {
                p.stats.zero_fills += 1;
            }
        }
        p.stats.used += 1 << o;
        drop(p);
        Some((region.addr_of(idx), zeroed))
    }

    /// The empty-list half of `rmqueue_pcplist`: one zone-lock hold that
    /// refills the list, then the first block.
    #[cold]
    fn refill(&self, p: &mut MutexGuard<'_, PcpLists>, o: usize) -> Option<&'static PageDesc> {
        let list = &mut p.lists[o];
        let n = rmqueue_bulk(&mut self.zone.lock(), list, o);
        if n == 0 {
            return None;
        }
        list.pop_head()
    }

    /// `free_unref_page`: puts a validated block of `order` (< `PCP_ORDERS`)
    /// on `cpu`'s list, after claiming it from `kind` (a concurrent second
    /// free of the same block loses the claim and gets `false`). A full list
    /// first gives its coldest `pcp_batch(order)` blocks back to the buddy.
    #[inline]
    pub(crate) fn free_unref_page(
        &self,
        cpu: usize,
        region: &'static Region,
        idx: usize,
        order: u32,
        kind: PageKind,
    ) -> bool {
        let o = order as usize;
        let d = region.desc(idx);
        let mut p = self.pcp_set(cpu).lock.lock();
        if !d.claim(kind, PageKind::Cached) {
            return false;
        }
        d.set_owner(region as *const Region as usize);
        d.set_private(region.addr_of(idx));
        d.set_flags(0);
        let released = if p.lists[o].count >= pcp_high(o) {
            Some(self.trim_list(&mut p.lists[o], o))
        } else {
            None
        };
        p.lists[o].push_head(d as *const PageDesc as *mut PageDesc);
        p.stats.frees[o] += 1;
        p.stats.used -= 1 << o;
        drop(p);
        if let Some(r) = released {
            self.release_all(&r);
        }
        true
    }

    /// The full-list half of `free_unref_page`: `pcp_batch(o)` of the list's
    /// coldest blocks back to the buddy lists.
    #[cold]
    fn trim_list(&self, list: &mut PcpList, o: usize) -> Released {
        let mut released = Released::new();
        self.free_pcppages_bulk(list, o, pcp_batch(o), &mut released);
        released
    }

    /// `free_pcppages_bulk`: gives the `n` coldest blocks of `list` back to
    /// the buddy lists (merging them) in one zone-lock hold. Regions that
    /// become wholly free above the watermark are taken out of the zone into
    /// `released` (at most `MAX_RELEASE`; the caller releases them once its
    /// locks are dropped); the bulk free stops early when that is full.
    pub(crate) fn free_pcppages_bulk(
        &self,
        list: &mut PcpList,
        o: usize,
        n: usize,
        released: &mut Released,
    ) {
        let keep = self.keep_free();
        let mut z = self.zone.lock();
        for _ in 0..n {
            if released.n == MAX_RELEASE {
                break;
            }
            let Some(d) = list.pop_tail() else { break };
            let (region, idx) = cached_block(d);
            if z.give_back(region, idx, o as u32, keep, false) {
                Self::detach_region(&mut z, region);
                released.regions[released.n] = Some(region);
                released.n += 1;
            }
        }
    }

    /// Releases the regions a bulk free took out of the zone.
    pub(crate) fn release_all(&self, released: &Released) {
        for r in released.regions[..released.n].iter().flatten() {
            // SAFETY: `free_pcppages_bulk` took the wholly free region off
            // every list and out of the zone; no block of it is handed out.
            unsafe { self.release_region(r) };
        }
    }

    /// Empties the per-cpu lists into the buddy free lists, merging every block
    /// with its buddies (the kernel's `drain_all_pages`), and releases regions
    /// that become wholly free above the watermark. Returns the pages drained.
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator};
    /// let pages = PageAllocator::new_os();
    /// drop(pages.alloc(0, Gfp::KERNEL).unwrap());
    /// assert!(pages.stats().cached_pages > 0);   // kept hot on a per-cpu list
    /// assert_eq!(pages.drain(), 16);             // the batch the list was refilled with
    /// assert_eq!(pages.stats().free_per_order[10], 1); // merged back into one block
    /// ```
    pub fn drain(&self) -> usize {
        let mut drained = 0;
        for cpu in 0..PCP_SETS {
            drained += self.drain_pages(cpu);
        }
        drained
    }

    /// `drain_pages`: empties one set's lists. Returns the pages drained.
    pub(crate) fn drain_pages(&self, cpu: usize) -> usize {
        let set = self.pcp_set(cpu);
        let mut drained = 0;
        loop {
            let mut released = Released::new();
            {
                let mut p = set.lock.lock();
                if p.pages() == 0 {
                    return drained;
                }
                for o in 0..PCP_ORDERS {
                    let before = p.lists[o].count;
                    self.free_pcppages_bulk(&mut p.lists[o], o, before, &mut released);
                    drained += (before - p.lists[o].count) << o;
                }
            }
            self.release_all(&released);
        }
    }

    /// Checks every set's lists (part of [`check`](Self::check)): every block
    /// is a cached head of its list's order inside its region, the links agree
    /// both ways, and each count matches its list and is at most `pcp->high`.
    /// Returns the pages held.
    pub(crate) fn check_pcp(sets: &AllSets<'_>) -> Result<usize, &'static str> {
        let mut cached = 0;
        for p in sets.iter() {
            for (o, list) in p.lists.iter().enumerate() {
                let mut n = 0;
                let mut prev: *mut PageDesc = ptr::null_mut();
                let mut cur = list.head;
                while !cur.is_null() {
                    // SAFETY: listed descriptors are live; every set's lock is held.
                    let d = unsafe { &*cur };
                    if d.kind() != PageKind::Cached || d.order() as usize != o {
                        return Err(
                            "a per-cpu list holds a block that is not a cached head of its order",
                        );
                    }
                    // SAFETY: as above.
                    if unsafe { *d.prev.get() } != prev {
                        return Err("a per-cpu list's back link is wrong");
                    }
                    let addr = d.private();
                    if addr % (crate::PAGE_SIZE << o) != 0 {
                        return Err("a cached block is not aligned to its size");
                    }
                    let owner = d.owner();
                    if owner == 0
                        || crate::registry::slot(addr).map(|r| r as *const Region as usize)
                            != Some(owner)
                    {
                        return Err("a cached block's owner word is not its region");
                    }
                    // SAFETY: checked just above to be the registered region of `addr`.
                    let r = unsafe { &*(owner as *const Region) };
                    if !r.contains(addr) || !r.contains(addr + (crate::PAGE_SIZE << o) - 1) {
                        return Err("a cached block runs outside its region");
                    }
                    let idx = r.index_of(addr);
                    for i in 1..(1usize << o) {
                        let t = r.desc(idx + i);
                        if t.kind() != PageKind::Tail || t.head_dist() != i {
                            return Err("a cached block's tail does not point at its head");
                        }
                    }
                    n += 1;
                    prev = cur;
                    // SAFETY: as above.
                    cur = unsafe { *d.next.get() };
                    if n > pcp_high(o) {
                        break;
                    }
                }
                if prev != list.tail {
                    return Err("a per-cpu list's tail is not its last block");
                }
                if n != list.count || n > pcp_high(o) {
                    return Err("a per-cpu list's count is wrong or above its high mark");
                }
                cached += n << o;
            }
        }
        Ok(cached)
    }
}

const _: () = assert!(REGION_SIZE >= crate::PAGE_SIZE << (PCP_ORDERS - 1));
