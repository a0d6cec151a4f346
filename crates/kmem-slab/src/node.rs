//! The per-node part of a cache (Linux `struct kmem_cache_node`): the three
//! slab lists, the count of free objects on them, the shared array, the free
//! limit and the colour cursor — and the exchange between array caches and
//! slabs: refill (`cache_alloc_refill`), flush (`cache_flusharray`),
//! `free_block`, growing and shrinking.
//!
//! kmem runs one node per cache (user space does not see NUMA nodes); the
//! shared array plays the role it plays in SLAB: a second-level buffer that
//! every thread's array cache refills from and flushes to before the slab
//! lists are touched.

use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering;

use kmem_page::{Gfp, PageKind};

use crate::SlabError;
use crate::cache::CacheInner;
use crate::cpu_cache::{ArrayCache, Entry};
use crate::slab::{ListId, OBJ_ALLOCATED, OBJ_FREE, Slab, SlabList};
use crate::sync::Lock;

/// Objects a refill of an untouched array moves at most (Linux `BATCHREFILL_LIMIT`).
const BATCHREFILL_LIMIT: u32 = 16;

/// The node's lists and counters, under the node lock.
pub(crate) struct NodeLists {
    /// Slabs with some objects taken.
    pub(crate) partial: SlabList,
    /// Slabs with every object taken.
    pub(crate) full: SlabList,
    /// Slabs with no object taken.
    pub(crate) free: SlabList,
    /// Free objects on the three lists (not counting array caches):
    /// `Σ (num - active)`.
    pub(crate) free_objects: usize,
    /// Slabs on the three lists.
    pub(crate) total_slabs: usize,
    /// `(1 + nr_cpus) * batchcount + num`: above this many free objects an
    /// emptied slab goes back to the page layer instead of `free`.
    pub(crate) free_limit: usize,
    /// The colour of the next slab, `0 .. colour`.
    pub(crate) colour_next: u32,
    /// Set when a free slab was used since the last reap.
    pub(crate) free_touched: bool,
    /// The shared array (`shared * batchcount` entries), or null if `shared == 0`.
    pub(crate) shared: *mut ArrayCache,
    /// The node's statistics (folded `cpustat`, `globalstat`).
    pub(crate) stats: crate::stats::NodeStats,
}

/// A node: its lists under one lock.
pub(crate) struct Node {
    pub(crate) lists: Lock<NodeLists>,
}

// SAFETY: the raw pointers inside are only followed under the node lock.
unsafe impl Send for NodeLists {}

impl Node {
    pub(crate) fn new(free_limit: usize, shared: *mut ArrayCache) -> Node {
        Node {
            lists: Lock::new(NodeLists {
                partial: SlabList::new(),
                full: SlabList::new(),
                free: SlabList::new(),
                free_objects: 0,
                total_slabs: 0,
                free_limit,
                colour_next: 0,
                free_touched: false,
                shared,
                stats: crate::stats::NodeStats::default(),
            }),
        }
    }
}

impl NodeLists {
    /// The slab the next object is taken from: the first partial slab, else
    /// the first free one (marking the free list touched, for the reaper), as
    /// SLAB's refill does. `None` if every slab is full.
    fn slab_to_take(&mut self) -> Option<*mut Slab> {
        if !self.partial.head.is_null() {
            Some(self.partial.head)
        } else if !self.free.head.is_null() {
            self.free_touched = true;
            Some(self.free.head)
        } else {
            None
        }
    }

    fn list_mut(&mut self, id: ListId) -> &mut SlabList {
        match id {
            ListId::Full => &mut self.full,
            ListId::Partial => &mut self.partial,
            ListId::Free => &mut self.free,
        }
    }

    /// Moves `s` to the list its `active` count calls for.
    ///
    /// # Safety
    /// `s` is a live slab on one of this node's lists.
    unsafe fn fixup(&mut self, s: *mut Slab) {
        // SAFETY: per the contract.
        unsafe {
            let want = if (*s).active == (*s).num {
                ListId::Full
            } else if (*s).active == 0 {
                ListId::Free
            } else {
                ListId::Partial
            };
            let have = (*s).list;
            if want != have {
                self.list_mut(have).remove(s);
                self.list_mut(want).push(s, want);
            }
        }
    }

    /// Slabs with no object taken.
    pub(crate) fn free_slabs(&self) -> usize {
        self.free.len
    }
}

/// Slabs taken off their node, to be destroyed once no lock is held (object
/// destructors may run). Each pending slab holds its cache's `pending` count,
/// so a concurrent `destroy` waits for it.
pub(crate) struct DestroyList {
    list: SlabList,
}

impl DestroyList {
    pub(crate) const fn new() -> Self {
        DestroyList {
            list: SlabList::new(),
        }
    }

    /// # Safety
    /// `s` is a live slab off every list; the node lock of its cache is held.
    unsafe fn push(&mut self, s: *mut Slab) {
        // SAFETY: per the contract; `cache` is fixed and live (the node lock is held).
        unsafe {
            (*(*s).cache).pending.fetch_add(1, Ordering::AcqRel);
            self.list.push(s, ListId::Free);
        }
    }

    /// Destroys every slab on the list. Call with no lock held.
    pub(crate) fn run(mut self) -> usize {
        let mut n = 0;
        while let Some(s) = self.list.pop() {
            // SAFETY: the slab is off its node and owned by this list; its
            // cache is alive while `pending` counts it.
            unsafe {
                let c = &*(*s).cache;
                c.slab_destroy(s);
                c.pending.fetch_sub(1, Ordering::AcqRel);
            }
            n += 1;
        }
        n
    }
}

impl Drop for DestroyList {
    fn drop(&mut self) {
        debug_assert!(
            self.list.head.is_null(),
            "a DestroyList was dropped without run()"
        );
    }
}

impl CacheInner {
    /// The slab holding `obj`, through its page descriptor.
    ///
    /// # Safety
    /// `obj` is an object of this cache (checked or taken from an array cache).
    #[inline]
    pub(crate) unsafe fn slab_of(&self, obj: *mut u8) -> *mut Slab {
        match kmem_page::lookup_block(obj as usize) {
            Some(b) => b.desc.private() as *mut Slab,
            None => ptr::null_mut(),
        }
    }

    /// The index of `obj` in `slab` (exact for object starts).
    #[inline]
    pub(crate) fn index_in(&self, s_mem: usize, obj: usize) -> usize {
        ((obj.wrapping_sub(s_mem) as u64 * self.recip) >> 32) as usize
    }

    /// Moves up to `batchcount` objects into `ac` from the shared array, else
    /// from partial and free slabs (the locked half of `cache_alloc_refill`).
    ///
    /// # Safety
    /// `ac` is an empty array cache of this cache, exclusively ours.
    pub(crate) unsafe fn refill_locked(&self, n: &mut NodeLists, ac: *mut ArrayCache) -> u32 {
        // SAFETY: per the contract; the node lock is held (`&mut NodeLists`).
        unsafe {
            let mut batch = (*ac).batchcount;
            if !ArrayCache::is_touched(ac) && batch > BATCHREFILL_LIMIT {
                batch = BATCHREFILL_LIMIT;
            }
            if !n.shared.is_null() {
                let got = ArrayCache::transfer(ac, n.shared, batch);
                if got > 0 {
                    (*n.shared).touched = 1;
                    return got;
                }
            }
            let mut moved = 0;
            while moved < batch {
                let Some(s) = n.slab_to_take() else {
                    break;
                };
                let take = (self.num - (*s).active).min(batch - moved);
                let s_mem = (*s).s_mem;
                let size = self.size as usize;
                let state0 = Slab::state(s, 0);
                let mut avail = (*ac).avail;
                for _ in 0..take {
                    let idx = Slab::get_obj(s);
                    *ArrayCache::entry(ac, avail) = Entry {
                        obj: (s_mem + idx * size) as *mut u8,
                        state: state0.add(idx),
                    };
                    avail += 1;
                }
                (*ac).avail = avail;
                moved += take;
                n.free_objects -= take as usize;
                n.fixup(s);
            }
            n.stats.listallocs += moved as u64;
            n.note_active(self.num);
            moved
        }
    }

    /// Returns objects to their slabs (Linux `free_block`). Emptied slabs go
    /// to the free list, or to `destroy` while the node has more than
    /// `free_limit` free objects.
    ///
    /// # Safety
    /// Every entry is an object of this cache, off every array and not held
    /// by a user; the node lock is held.
    pub(crate) unsafe fn free_block(
        &self,
        n: &mut NodeLists,
        objs: &[Entry],
        destroy: &mut DestroyList,
    ) {
        // Objects freed together usually share a slab: remember the last
        // block looked up, and move a slab between lists once per run of its
        // objects. Sound because every entry is an object of this cache and
        // no slab of it can go away while the node lock is held (emptied
        // slabs only move to `destroy`, destroyed after unlock).
        let mut last_base = 0usize;
        let mut last_slab: *mut Slab = ptr::null_mut();
        let size = self.size as usize;
        for e in objs {
            // SAFETY: per the contract.
            unsafe {
                let base = e.obj as usize & self.slab_mask;
                if base != last_base {
                    if !last_slab.is_null() {
                        n.fixup(last_slab);
                    }
                    last_base = base;
                    last_slab = self.slab_of(e.obj);
                }
                let s = last_slab;
                debug_assert!(!s.is_null());
                let idx = self.index_in((*s).s_mem, e.obj as usize);
                debug_assert_eq!((*s).s_mem + idx * size, e.obj as usize);
                Slab::put_obj(s, idx);
            }
        }
        if !last_slab.is_null() {
            // SAFETY: a live slab of this node; the lock is held.
            unsafe { n.fixup(last_slab) };
        }
        n.free_objects += objs.len();
        n.stats.max_freeable = n.stats.max_freeable.max(n.free_objects);
        while n.free_objects > n.free_limit && !n.free.head.is_null() {
            let s = n.free.pop().expect("non-empty free list");
            n.free_objects -= self.num as usize;
            n.total_slabs -= 1;
            // SAFETY: `s` is off every list; the node lock is held.
            unsafe { destroy.push(s) };
        }
    }

    /// Moves `ac`'s oldest `batchcount` objects to the shared array if it has
    /// room, else back to their slabs (Linux `cache_flusharray`).
    ///
    /// # Safety
    /// `ac` is a full array cache of this cache, exclusively ours.
    pub(crate) unsafe fn flusharray(&self, ac: *mut ArrayCache, destroy: &mut DestroyList) {
        let mut n = self.node.lists.lock();
        // SAFETY: per the contract; the node lock is held.
        unsafe {
            let mut batch = (*ac).batchcount.min((*ac).avail);
            let sh = n.shared;
            if !sh.is_null() && (*sh).limit > (*sh).avail {
                batch = batch.min((*sh).limit - (*sh).avail);
                ptr::copy_nonoverlapping(
                    ArrayCache::entry(ac, 0),
                    ArrayCache::entry(sh, (*sh).avail),
                    batch as usize,
                );
                (*sh).avail += batch;
            } else {
                let objs = core::slice::from_raw_parts(ArrayCache::entry(ac, 0), batch as usize);
                self.free_block(&mut n, objs, destroy);
            }
            drop(n);
            ArrayCache::drop_bottom(ac, batch);
        }
    }

    /// Gives back objects of an array (Linux `drain_array_locked`): all of
    /// them if `all`, else `(limit + 4) / 5` (at most half of what it holds).
    ///
    /// # Safety
    /// `ac` is an array cache of this cache, exclusively ours; the node lock is held.
    pub(crate) unsafe fn drain_array_locked(
        &self,
        n: &mut NodeLists,
        ac: *mut ArrayCache,
        all: bool,
        destroy: &mut DestroyList,
    ) -> u32 {
        // SAFETY: per the contract.
        unsafe {
            let avail = (*ac).avail;
            if avail == 0 {
                return 0;
            }
            // Linux: (limit + 4) / 5.
            let mut tofree = if all { avail } else { (*ac).limit.div_ceil(5) };
            if tofree > avail {
                tofree = avail.div_ceil(2);
            }
            let objs = core::slice::from_raw_parts(ArrayCache::entry(ac, 0), tofree as usize);
            self.free_block(n, objs, destroy);
            ArrayCache::drop_bottom(ac, tofree);
            tofree
        }
    }

    /// Empties `ac` into the slabs (thread exit, destroy, shrink).
    ///
    /// # Safety
    /// As for [`drain_array_locked`](Self::drain_array_locked), without the lock held.
    pub(crate) unsafe fn node_flush_all(&self, ac: *mut ArrayCache, destroy: &mut DestroyList) {
        let mut n = self.node.lists.lock();
        // SAFETY: per the contract; the lock is now held.
        unsafe { self.drain_array_locked(&mut n, ac, true, destroy) };
    }

    /// Takes up to `max` free slabs off the node (Linux `drain_freelist`).
    pub(crate) fn drain_freelist(
        &self,
        n: &mut NodeLists,
        max: usize,
        destroy: &mut DestroyList,
    ) -> usize {
        let mut k = 0;
        while k < max {
            let Some(s) = n.free.pop() else { break };
            n.free_objects -= self.num as usize;
            n.total_slabs -= 1;
            // SAFETY: `s` is off every list; the node lock is held.
            unsafe { destroy.push(s) };
            k += 1;
        }
        k
    }

    /// Adds a slab to the node (Linux `cache_grow_begin` + `cache_grow_end`):
    /// pages from the page layer, an off-slab management area, the colour
    /// offset from the node's cursor, the constructor run on every object.
    #[cold]
    pub(crate) fn grow(&self, gfp: Gfp) -> Result<(), SlabError> {
        let colour = {
            let mut n = self.node.lists.lock();
            let c = n.colour_next;
            n.colour_next += 1;
            if n.colour_next >= self.colour {
                n.colour_next = 0;
            }
            c
        };
        let gfp = gfp.without(Gfp::ZERO);
        let block = self
            .pages
            .alloc_block(self.order, gfp, PageKind::Slab)
            .ok_or(SlabError::NoMemory)?;
        let Some(mgmt) = self.mgmt.alloc(self.pages, gfp) else {
            // SAFETY: the block was just allocated and never published.
            unsafe { self.pages.free_block(block, self.order, PageKind::Slab) };
            return Err(SlabError::NoMemory);
        };
        let base = block.as_ptr() as usize;
        // A debug cache's first object starts after its left red zone.
        let s_mem = base + (colour * self.colour_off) as usize + self.debug.red_left;
        // SAFETY: `mgmt` is a chunk of `mgmt_size(num)` bytes from our pool.
        let s = unsafe { Slab::init(mgmt.as_ptr(), self, base, s_mem, self.num) };
        if let Some(ctor) = &self.ctor {
            for i in 0..self.num as usize {
                // SAFETY: object `i` lies inside the fresh block; nobody else sees it yet.
                unsafe { ctor.call((s_mem + i * self.size as usize) as *mut u8) };
            }
        }
        if self.debug.on() {
            // SAFETY: a fresh slab nobody else sees yet.
            unsafe { crate::debug::init_slab(self, s_mem) };
        }
        let desc = kmem_page::lookup_block(base)
            .expect("a slab block is kmem memory")
            .desc;
        // The colour offset first: `resolve` reads it once the owner word
        // (stored last, with release) names this cache.
        desc.set_aux((s_mem - base) as u32);
        desc.set_private(s as usize);
        desc.set_owner(self as *const CacheInner as usize);
        let mut n = self.node.lists.lock();
        // SAFETY: `s` is initialised and on no list; the lock is held.
        unsafe { n.free.push(s, ListId::Free) };
        n.total_slabs += 1;
        n.free_objects += self.num as usize;
        n.stats.grown += 1;
        Ok(())
    }

    /// Gives a slab's pages and management area back.
    ///
    /// # Safety
    /// `s` is a slab of this cache on no list, with every object free.
    pub(crate) unsafe fn slab_destroy(&self, s: *mut Slab) {
        // Invalidate every thread's memo of validated slabs first.
        self.slab_gen.fetch_add(1, Ordering::AcqRel);
        // SAFETY: per the contract.
        unsafe {
            if let Some(d) = self.dtor {
                for i in 0..self.num as usize {
                    d(((*s).s_mem + i * self.size as usize) as *mut u8);
                }
            }
            let base = (*s).base;
            if let Some(b) = kmem_page::lookup_block(base) {
                b.desc.set_owner(0);
                b.desc.set_private(0);
            }
            self.mgmt.free(self.pages, NonNull::new_unchecked(s.cast()));
            self.pages.free_block(
                NonNull::new_unchecked(base as *mut u8),
                self.order,
                PageKind::Slab,
            );
        }
    }

    /// Allocates one object straight from the node (a thread without array
    /// caches: exiting, or no memory for one).
    #[cold]
    pub(crate) fn node_alloc_one(&self, gfp: Gfp) -> Result<*mut u8, SlabError> {
        loop {
            {
                let mut n = self.node.lists.lock();
                if let Some((s, idx)) = self.take_one_locked(&mut n) {
                    // SAFETY: `idx` was just taken from the live slab `s`.
                    unsafe {
                        (*Slab::state(s, idx)).store(OBJ_ALLOCATED, Ordering::Relaxed);
                        return Ok(((*s).s_mem + idx * self.size as usize) as *mut u8);
                    }
                }
            }
            if let Err(e) = self.grow(gfp) {
                self.count_error();
                return Err(e);
            }
        }
    }

    /// Takes one object off the node's partial or free slabs: its slab and
    /// index (its state byte is the caller's to set). `None` if every slab is full.
    pub(crate) fn take_one_locked(&self, n: &mut NodeLists) -> Option<(*mut Slab, usize)> {
        let s = n.slab_to_take()?;
        // SAFETY: a listed slab with a free object; the lock is held (`&mut NodeLists`).
        unsafe {
            let idx = Slab::get_obj(s);
            n.free_objects -= 1;
            n.fixup(s);
            n.stats.folded[1] += 1; // an allocation miss: no array
            n.stats.listallocs += 1;
            n.note_active(self.num);
            Some((s, idx))
        }
    }

    /// Frees one checked object straight to its slab.
    pub(crate) fn node_free_one(&self, e: Entry) {
        let mut destroy = DestroyList::new();
        {
            let mut n = self.node.lists.lock();
            n.stats.folded[3] += 1; // a free miss: no array
            // SAFETY: `e` was checked (an allocated object of this cache, now marked free).
            unsafe { self.free_block(&mut n, &[e], &mut destroy) };
        }
        destroy.run();
    }

    /// Checks the node's lists against its counters and every slab's state
    /// bytes; returns the first inconsistency. For tests and debugging.
    pub fn check(&self) -> Result<(), &'static str> {
        let n = self.node.lists.lock();
        let mut free = 0usize;
        let mut slabs = 0usize;
        for (list, id) in [
            (&n.full, ListId::Full),
            (&n.partial, ListId::Partial),
            (&n.free, ListId::Free),
        ] {
            let mut p = list.head;
            let mut len = 0;
            while !p.is_null() {
                // SAFETY: listed slabs are live; the lock is held.
                unsafe {
                    if (*p).list != id {
                        return Err("a slab is on another list than it says");
                    }
                    let a = (*p).active;
                    let ok = match id {
                        ListId::Full => a == self.num,
                        ListId::Partial => a > 0 && a < self.num,
                        ListId::Free => a == 0,
                    };
                    if !ok {
                        return Err("a slab's active count does not fit its list");
                    }
                    for k in 0..self.num as usize {
                        if Slab::is_on_freelist(p, k) && Slab::load_state(p, k) != OBJ_FREE {
                            return Err("an object on a slab freelist is marked allocated");
                        }
                    }
                    free += (self.num - a) as usize;
                    p = (*p).next;
                }
                len += 1;
                slabs += 1;
            }
            if len != list.len {
                return Err("a list's length is wrong");
            }
        }
        if free != n.free_objects {
            return Err("free_objects does not match the slabs");
        }
        if slabs != n.total_slabs {
            return Err("total_slabs does not match the lists");
        }
        Ok(())
    }
}
