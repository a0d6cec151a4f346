//! Hooks for the `loom` model of the exchange (`tests/loom.rs`); compiled
//! only under `cfg(loom)`. They drive the real exchange code — refill
//! (`refill_locked`), flush (`flusharray`), `free_block`, `grow`, the shared
//! array, and the freeze protocol — with explicit array caches instead of the
//! TLS slot (loom's threads share one OS thread's TLS).

use core::ptr;

use kmem_page::{Config, Gfp, PageAllocator};
use kmem_platform::TestPlatform;

use crate::KmemCache;
use crate::cpu_cache::{ArrayCache, FastBounds};
use crate::node::DestroyList;
use crate::stats::HitSeq;

static PAGES: PageAllocator<TestPlatform> = PageAllocator::with_config(
    TestPlatform::new(),
    Config {
        keep_free_pages: 0,
        max_pages: usize::MAX,
    },
);

/// A cache over test pages.
pub struct Model {
    cache: KmemCache,
}

/// One thread's array cache for the model's cache.
pub struct Local<'m> {
    m: &'m Model,
    ac: *mut ArrayCache,
}

impl Model {
    /// A cache of `size`-byte objects.
    pub fn new(size: usize) -> Model {
        Model {
            cache: KmemCache::builder("loom", size)
                .pages(&PAGES)
                .create()
                .expect("cache"),
        }
    }

    /// An array cache of `limit` entries moving `batch` at a time.
    pub fn local(&self, limit: u32, batch: u32) -> Local<'_> {
        let c = self.cache.inner();
        let ac = crate::cpu_cache::alloc_array(c);
        assert!(!ac.is_null() && limit <= c.limit);
        // SAFETY: a fresh array of at least `limit` entries.
        unsafe {
            (*ac).limit = limit;
            (*ac).bounds.open(limit);
            (*ac).batchcount = batch;
        }
        Local { m: self, ac }
    }

    /// Objects not free in slabs (users, arrays, shared array).
    pub fn active(&self) -> usize {
        self.cache.active_objects()
    }

    /// Objects in the shared array.
    pub fn shared_avail(&self) -> usize {
        self.cache.info().sharedavail
    }

    /// Checks the node's lists and counters.
    pub fn check(&self) -> Result<(), &'static str> {
        self.cache.check()
    }

    /// Releases every free slab (after every `Local` was drained).
    pub fn shrink(&self) -> usize {
        let c = self.cache.inner();
        let mut d = DestroyList::new();
        {
            let mut n = c.node.lists.lock();
            let sh = n.shared;
            if !sh.is_null() {
                // SAFETY: the shared array is ours under the node lock.
                unsafe { c.drain_array_locked(&mut n, sh, true, &mut d) };
            }
            c.drain_freelist(&mut n, usize::MAX, &mut d);
        }
        d.run()
    }
}

impl Local<'_> {
    /// Allocates: pop, else refill from the shared array / slabs, else grow.
    pub fn alloc(&mut self) -> *mut u8 {
        let c = self.m.cache.inner();
        loop {
            // SAFETY: the array is this `Local`'s alone.
            unsafe {
                if (*self.ac).avail == 0 {
                    let mut n = c.node.lists.lock();
                    c.refill_locked(&mut n, self.ac);
                }
                if (*self.ac).avail > 0 {
                    (*self.ac).avail -= 1;
                    let e = *ArrayCache::entry(self.ac, (*self.ac).avail);
                    (*e.state).store(
                        crate::slab::OBJ_ALLOCATED,
                        core::sync::atomic::Ordering::Relaxed,
                    );
                    return e.obj;
                }
            }
            c.grow(Gfp::KERNEL).expect("grow");
        }
    }

    /// Frees: check, then push, flushing a batch first if full.
    pub fn free(&mut self, p: *mut u8) {
        let c = self.m.cache.inner();
        let e = c.check_free(p as usize).expect("a valid free");
        let mut d = DestroyList::new();
        // SAFETY: the array is this `Local`'s alone.
        unsafe {
            if (*self.ac).avail >= (*self.ac).limit {
                c.flusharray(self.ac, &mut d);
            }
            *ArrayCache::entry(self.ac, (*self.ac).avail) = e;
            (*self.ac).avail += 1;
        }
        d.run();
    }

    /// Empties the array into the slabs (what thread exit does).
    pub fn drain(&mut self) {
        let c = self.m.cache.inner();
        let mut d = DestroyList::new();
        // SAFETY: the array is this `Local`'s alone.
        unsafe { c.node_flush_all(self.ac, &mut d) };
        d.run();
    }
}

impl Drop for Local<'_> {
    fn drop(&mut self) {
        self.drain();
        // SAFETY: empty and referenced by nothing else.
        unsafe { crate::cpu_cache::free_array(self.ac) };
        self.ac = ptr::null_mut();
    }
}

/// The freeze protocol between an owner (fast path without locks) and a
/// remote thread, over data that loom checks for unsynchronised access: the
/// owner's busy mark is a hit counter ([`HitSeq`]), the remote side's switch
/// the bounds ([`FastBounds`]), as on a real array cache.
pub struct FreezeModel {
    seq: HitSeq,
    bounds: FastBounds,
    lock: loom::sync::Mutex<()>,
    data: loom::cell::UnsafeCell<u32>,
}

// SAFETY: `data` is only touched under the protocol being checked.
unsafe impl Sync for FreezeModel {}

impl Default for FreezeModel {
    fn default() -> Self {
        FreezeModel {
            seq: HitSeq::new(),
            bounds: FastBounds::new(1),
            lock: loom::sync::Mutex::new(()),
            data: loom::cell::UnsafeCell::new(0),
        }
    }
}

impl FreezeModel {
    /// The owner's operation: fast path if the bounds are open, else slow
    /// path under the lock.
    pub fn owner_op(&self) {
        crate::cpu_cache::enter(&self.seq);
        if self.bounds.lo.load(core::sync::atomic::Ordering::Acquire) == 0 {
            // SAFETY: the protocol gives the owner exclusive access between enter and leave.
            self.data.with_mut(|d| unsafe { *d += 1 });
            self.seq.leave();
        } else {
            self.seq.abort();
            let _g = self.lock.lock().unwrap();
            // SAFETY: the lock excludes the remote side; the owner is not in its fast path.
            self.data.with_mut(|d| unsafe { *d += 1 });
        }
    }

    /// The remote operation: lock, close, barrier, wait, work, open.
    pub fn remote_op(&self) {
        let _g = self.lock.lock().unwrap();
        self.bounds.close();
        crate::cpu_cache::remote_barrier();
        crate::cpu_cache::wait_idle(&self.seq);
        // SAFETY: the owner is frozen and outside its fast path.
        self.data.with_mut(|d| unsafe { *d += 100 });
        self.bounds.open(1);
    }

    /// Hits the owner's fast path counted.
    pub fn hits(&self) -> u64 {
        self.seq.get()
    }

    /// The data's final value.
    pub fn value(&self) -> u32 {
        // SAFETY: called after every thread joined.
        self.data.with(|d| unsafe { *d })
    }
}
