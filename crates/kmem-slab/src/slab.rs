//! One slab: a block of `2^order` pages holding `num` objects, and its
//! management area (Linux's `struct slab` fields in `struct page`, plus the
//! freelist of object indices).
//!
//! The management area is **off-slab**: a chunk of the cache's management pool
//! (kmem's own pages), never inside the slab's memory, so every byte of every
//! object belongs to its user and a buffer overrun cannot corrupt it. The head
//! page descriptor of the slab's block points at it (`private`) and at the
//! cache (`owner`), so any object address finds both in O(1).
//!
//! Layout of the area: the [`Slab`] header, then `num` `u16` object indices
//! (the freelist; `freelist[active..num]` are the free objects, taken from the
//! front as in Linux), then `num` state bytes (one per object: allocated to a
//! user or not), which the unlocked fast paths read and write with plain
//! atomic loads and stores.

use core::ptr;
use core::sync::atomic::{AtomicU8, Ordering};

/// State byte: the object is not held by a user (in a slab, an array cache or the shared array).
pub(crate) const OBJ_FREE: u8 = 0;
/// State byte: the object was handed to a user and not freed since.
pub(crate) const OBJ_ALLOCATED: u8 = 1;

/// Which node list a slab is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ListId {
    /// Every object allocated.
    Full = 0,
    /// Some objects allocated.
    Partial = 1,
    /// No object allocated.
    Free = 2,
}

/// The header of a slab's management area.
#[repr(C)]
pub(crate) struct Slab {
    /// Link in the node list named by `list`. Under the node lock.
    pub(crate) next: *mut Slab,
    /// Link in the node list named by `list`. Under the node lock.
    pub(crate) prev: *mut Slab,
    /// Address of object 0: the block's address plus this slab's colour
    /// offset. Fixed while the slab lives; read by the unlocked free path.
    pub(crate) s_mem: usize,
    /// The slab's block (`2^order` pages). Fixed while the slab lives.
    pub(crate) base: usize,
    /// Objects taken from the freelist (Linux's `page->active`): in array
    /// caches or with users. `0 ..= num`. Under the node lock.
    pub(crate) active: u32,
    /// The object count (the cache's `num`). Fixed.
    pub(crate) num: u32,
    /// The list this slab is on. Under the node lock.
    pub(crate) list: ListId,
    /// The owning cache. Fixed.
    pub(crate) cache: *const crate::cache::CacheInner,
}

/// Bytes of the header, rounded so the freelist that follows is aligned.
pub(crate) const SLAB_HDR: usize = (core::mem::size_of::<Slab>() + 15) & !15;

/// Where a management area's state bytes start: after the header and the
/// `num` freelist indices. (Right after the header, they measured 3 % slower
/// on the hot pair: object 0's state byte then sits 64 bytes into a page,
/// as the array cache's hit counter does, and the core's 4 KiB alias check
/// makes the counter's load wait for the state byte's store.)
pub(crate) const fn state_offset(num: usize) -> usize {
    SLAB_HDR + 2 * num
}

/// Bytes of a management area for `num` objects: whole cache lines, so
/// that the state bytes of slabs that different threads are working on
/// never share a line (they are written on every allocation and free).
pub(crate) const fn mgmt_size(num: usize) -> usize {
    (state_offset(num) + num).next_multiple_of(kmem_platform::CACHE_LINE)
}

impl Slab {
    /// Builds a slab's management area: every object free, freelist in index order.
    ///
    /// # Safety
    ///
    /// `mgmt` is valid for writes of `mgmt_size(num)` bytes, 16-aligned, and ours alone.
    pub(crate) unsafe fn init(
        mgmt: *mut u8,
        cache: *const crate::cache::CacheInner,
        base: usize,
        s_mem: usize,
        num: u32,
    ) -> *mut Slab {
        let s = mgmt.cast::<Slab>();
        // SAFETY: per the contract, the area is big enough and exclusive.
        unsafe {
            s.write(Slab {
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
                s_mem,
                base,
                active: 0,
                num,
                list: ListId::Free,
                cache,
            });
            let fl = mgmt.add(SLAB_HDR).cast::<u16>();
            for i in 0..num as usize {
                fl.add(i).write(i as u16);
            }
            ptr::write_bytes(mgmt.add(state_offset(num as usize)), OBJ_FREE, num as usize);
        }
        s
    }

    /// The slab's freelist: `num` object indices, the first `active` of
    /// them taken.
    ///
    /// # Safety
    ///
    /// `this` is a live slab.
    #[inline]
    pub(crate) unsafe fn freelist(this: *mut Slab) -> *mut u16 {
        // SAFETY: the freelist follows the header inside the same area.
        unsafe { this.cast::<u8>().add(SLAB_HDR).cast::<u16>() }
    }

    /// The state byte of object `idx`.
    ///
    /// # Safety
    ///
    /// `this` is a live slab and `idx < num`.
    #[inline]
    pub(crate) unsafe fn state(this: *const Slab, idx: usize) -> *const AtomicU8 {
        // SAFETY: per the contract; `num` is the slab's own.
        unsafe { Slab::state_in(this, (*this).num as usize, idx) }
    }

    /// [`state`](Slab::state) for a caller that knows the slab's `num` (its
    /// cache's): nothing of the slab is read, so a free need not touch the
    /// slab header's cache line.
    ///
    /// # Safety
    ///
    /// `this` is a live slab of `num` objects and `idx < num`.
    #[inline(always)]
    pub(crate) unsafe fn state_in(this: *const Slab, num: usize, idx: usize) -> *const AtomicU8 {
        // SAFETY: the state bytes follow the header and the `num` freelist
        // indices inside the same area; `idx < num`.
        unsafe {
            this.cast::<u8>()
                .add(state_offset(num) + idx)
                .cast::<AtomicU8>()
        }
    }

    /// Takes the next free object (Linux `slab_get_obj`): its index.
    ///
    /// # Safety
    ///
    /// `this` is a live slab with `active < num`; the node lock is held.
    #[inline]
    pub(crate) unsafe fn get_obj(this: *mut Slab) -> usize {
        // SAFETY: per the contract.
        unsafe {
            let i = *Self::freelist(this).add((*this).active as usize) as usize;
            (*this).active += 1;
            i
        }
    }

    /// Returns object `idx` to the freelist (Linux `slab_put_obj`).
    ///
    /// # Safety
    ///
    /// `this` is a live slab with `active > 0`, `idx` one of its objects taken
    /// with `get_obj` and not yet returned; the node lock is held.
    #[inline]
    pub(crate) unsafe fn put_obj(this: *mut Slab, idx: usize) {
        // SAFETY: per the contract.
        unsafe {
            (*this).active -= 1;
            *Self::freelist(this).add((*this).active as usize) = idx as u16;
        }
    }

    /// Whether object `idx` is on the freelist (for consistency checks; O(num)).
    ///
    /// # Safety
    ///
    /// `this` is a live slab; the node lock is held.
    pub(crate) unsafe fn is_on_freelist(this: *mut Slab, idx: usize) -> bool {
        // SAFETY: per the contract.
        unsafe {
            let fl = Self::freelist(this);
            ((*this).active..(*this).num).any(|k| *fl.add(k as usize) as usize == idx)
        }
    }

    /// Reads object `idx`'s state byte.
    ///
    /// # Safety
    ///
    /// As for [`state`](Self::state).
    #[inline]
    pub(crate) unsafe fn load_state(this: *const Slab, idx: usize) -> u8 {
        // SAFETY: per the contract.
        unsafe { (*Self::state(this, idx)).load(Ordering::Relaxed) }
    }
}

/// An intrusive doubly linked list of slabs (one of a node's three lists).
pub(crate) struct SlabList {
    /// First slab, or null. Under the node lock.
    pub(crate) head: *mut Slab,
    /// Slabs on the list.
    pub(crate) len: usize,
}

impl SlabList {
    pub(crate) const fn new() -> Self {
        SlabList {
            head: ptr::null_mut(),
            len: 0,
        }
    }

    /// # Safety
    /// `s` is a live slab on no list.
    pub(crate) unsafe fn push(&mut self, s: *mut Slab, id: ListId) {
        // SAFETY: per the contract.
        unsafe {
            (*s).prev = ptr::null_mut();
            (*s).next = self.head;
            if !self.head.is_null() {
                (*self.head).prev = s;
            }
            (*s).list = id;
        }
        self.head = s;
        self.len += 1;
    }

    /// # Safety
    /// `s` is a live slab on this list.
    pub(crate) unsafe fn remove(&mut self, s: *mut Slab) {
        // SAFETY: per the contract.
        unsafe {
            let (n, p) = ((*s).next, (*s).prev);
            if !n.is_null() {
                (*n).prev = p;
            }
            if p.is_null() {
                self.head = n;
            } else {
                (*p).next = n;
            }
            (*s).next = ptr::null_mut();
            (*s).prev = ptr::null_mut();
        }
        self.len -= 1;
    }

    /// Removes and returns the first slab.
    pub(crate) fn pop(&mut self) -> Option<*mut Slab> {
        let s = self.head;
        if s.is_null() {
            return None;
        }
        // SAFETY: `s` heads this list.
        unsafe { self.remove(s) };
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(align(16))]
    struct Area([u8; 512]);

    #[test]
    fn freelist_is_lifo_and_states_start_free() {
        let mut a = Area([0xAA; 512]);
        assert!(mgmt_size(100) <= 512);
        // SAFETY: the area is big enough for 100 objects and ours.
        unsafe {
            let s = Slab::init(a.0.as_mut_ptr(), ptr::null(), 0x1000, 0x1040, 100);
            assert_eq!(Slab::get_obj(s), 0);
            assert_eq!(Slab::get_obj(s), 1);
            assert_eq!((*s).active, 2);
            Slab::put_obj(s, 0);
            assert!(Slab::is_on_freelist(s, 0));
            assert!(!Slab::is_on_freelist(s, 1));
            assert_eq!(Slab::get_obj(s), 0, "last returned, first taken");
            assert!((0..100).all(|i| Slab::load_state(s, i) == OBJ_FREE));
        }
    }

    /// Header, state bytes and freelist never overlap and fit the area, for
    /// odd and even object counts (512: 8-byte objects in one page).
    #[test]
    fn management_parts_are_disjoint() {
        #[repr(align(16))]
        struct Big([u8; 2048]);
        for num in [1u32, 2, 3, 63, 64, 101, 512] {
            let mut a = Big([0x5A; 2048]);
            assert!(mgmt_size(num as usize) <= a.0.len(), "{num}");
            // SAFETY: the area is big enough (asserted) and ours.
            unsafe {
                let s = Slab::init(a.0.as_mut_ptr(), ptr::null(), 0x1000, 0x1040, num);
                for i in 0..num as usize {
                    (*Slab::state(s, i)).store(OBJ_ALLOCATED, Ordering::Relaxed);
                }
                assert_eq!(((*s).num, (*s).s_mem, (*s).base), (num, 0x1040, 0x1000));
                for i in 0..num {
                    assert_eq!(Slab::get_obj(s), i as usize, "freelist intact ({num})");
                }
                assert!((0..num as usize).all(|i| Slab::load_state(s, i) == OBJ_ALLOCATED));
            }
            let end = mgmt_size(num as usize);
            assert!(
                a.0[end..].iter().all(|&b| b == 0x5A),
                "nothing past the area ({num})"
            );
        }
    }

    #[test]
    fn list_push_remove_pop() {
        let mut a = Area([0; 512]);
        let mut b = Area([0; 512]);
        // SAFETY: each area holds one slab header and a tiny freelist.
        unsafe {
            let s1 = Slab::init(a.0.as_mut_ptr(), ptr::null(), 0, 0, 1);
            let s2 = Slab::init(b.0.as_mut_ptr(), ptr::null(), 0, 0, 1);
            let mut l = SlabList::new();
            l.push(s1, ListId::Partial);
            l.push(s2, ListId::Partial);
            assert_eq!(l.len, 2);
            l.remove(s1);
            assert_eq!(l.pop(), Some(s2));
            assert_eq!(l.pop(), None);
        }
    }
}
