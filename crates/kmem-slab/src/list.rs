//! The process-wide list of caches (Linux `slab_caches` under `slab_mutex`)
//! and the cache ids that index every thread's array-cache table. Intrusive,
//! so it needs no memory of its own.

use core::ptr;

use kmem_platform::Mutex;

use crate::cache::CacheInner;
use crate::cpu_cache::MAX_CACHES;

/// The list of live caches, newest first (the order `/proc/slabinfo` prints).
pub(crate) struct CacheList {
    head: *mut CacheInner,
    /// Bit `i` set: id `i` is taken.
    ids: [u64; MAX_CACHES.div_ceil(64)],
    /// Caches on the list.
    pub(crate) count: usize,
}

// SAFETY: only touched under the CACHES mutex.
unsafe impl Send for CacheList {}

/// Every live cache. Lock order: CACHES, then THREADS, then a thread's lock, then a node lock.
pub(crate) static CACHES: Mutex<CacheList> = Mutex::new(CacheList {
    head: ptr::null_mut(),
    ids: [0; MAX_CACHES.div_ceil(64)],
    count: 0,
});

impl CacheList {
    /// Takes the lowest free id.
    pub(crate) fn alloc_id(&mut self) -> Option<u32> {
        for (w, word) in self.ids.iter_mut().enumerate() {
            if *word != u64::MAX {
                let b = (!*word).trailing_zeros() as usize;
                let id = w * 64 + b;
                if id >= MAX_CACHES {
                    return None;
                }
                *word |= 1 << b;
                return Some(id as u32);
            }
        }
        None
    }

    /// Frees an id.
    pub(crate) fn free_id(&mut self, id: u32) {
        self.ids[id as usize / 64] &= !(1u64 << (id % 64));
    }

    /// Adds a cache at the head.
    pub(crate) fn push(&mut self, c: *mut CacheInner) {
        // SAFETY: `c` is live and unlisted; the lock is held (`&mut self`).
        unsafe {
            *(*c).list_prev.get() = ptr::null_mut();
            *(*c).list_next.get() = self.head;
            if !self.head.is_null() {
                *(*self.head).list_prev.get() = c;
            }
        }
        self.head = c;
        self.count += 1;
    }

    /// Removes a listed cache.
    pub(crate) fn remove(&mut self, c: *mut CacheInner) {
        // SAFETY: `c` is live and listed; the lock is held.
        unsafe {
            let (n, p) = (*(*c).list_next.get(), *(*c).list_prev.get());
            if !n.is_null() {
                *(*n).list_prev.get() = p;
            }
            if p.is_null() {
                self.head = n;
            } else {
                *(*p).list_next.get() = n;
            }
        }
        self.count -= 1;
    }

    /// Whether `c` is a live cache on the list.
    pub(crate) fn contains(&self, c: *const CacheInner) -> bool {
        self.iter().any(|x| ptr::eq(x, c))
    }

    /// The live caches, newest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &CacheInner> + '_ {
        let mut p = self.head;
        core::iter::from_fn(move || {
            // SAFETY: listed caches are live while the list is borrowed (locked).
            let c = unsafe { p.as_ref()? };
            // SAFETY: as above.
            p = unsafe { *c.list_next.get() };
            Some(c)
        })
    }
}
