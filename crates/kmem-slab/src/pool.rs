//! Fixed-size pools for the slab layer's own bookkeeping: off-slab management
//! areas and array caches. Never the system allocator: chunks are carved from
//! page blocks of a [`SlabPages`] and the blocks go back when wholly free.
//!
//! A pool block is `2^order` pages, aligned to its size (buddy blocks are), so
//! the block of any chunk is found by masking its address. The block's first
//! 64 bytes are its header; chunks follow.

use core::ptr::{self, NonNull};

use kmem_page::{Gfp, PageKind};
use kmem_platform::{Mutex, PAGE_SIZE};

use crate::SlabPages;

const HDR: usize = 64;

#[repr(C)]
struct PoolBlock {
    /// Links in the pool's list of blocks with free chunks (under the pool lock).
    next: *mut PoolBlock,
    prev: *mut PoolBlock,
    /// This block's free chunks, linked through their first word (under the pool lock).
    free: *mut u8,
    /// Chunks handed out from this block (under the pool lock).
    in_use: usize,
    /// Whether the block is on the partial list (has free chunks).
    listed: bool,
}

/// The pool's state, under its lock.
struct PoolState {
    /// Blocks that have at least one free chunk.
    partial: *mut PoolBlock,
    /// Blocks owned by the pool.
    blocks: usize,
    /// Chunks handed out.
    in_use: usize,
}

/// A pool of equally sized chunks.
pub(crate) struct FixedPool {
    /// Chunk size in bytes (a multiple of 16). Fixed.
    chunk: usize,
    /// Block order. Fixed.
    order: u32,
    state: Mutex<PoolState>,
}

// SAFETY: the raw pointers in `PoolState` are only followed under its mutex,
// and point to blocks the pool owns.
unsafe impl Send for FixedPool {}
// SAFETY: as above.
unsafe impl Sync for FixedPool {}

impl FixedPool {
    /// The raw lock of the pool (for `fork`: taken and released as a whole).
    pub(crate) fn raw_lock(&self) -> &kmem_platform::RawLock {
        // SAFETY: the caller only locks and unlocks it as a whole (fork.rs).
        unsafe { self.state.raw() }
    }

    /// A pool of `chunk`-byte chunks (rounded up to 16), in blocks big enough
    /// for at least 8 chunks.
    pub(crate) const fn new(chunk: usize) -> Self {
        let chunk = (chunk + 15) & !15;
        let mut order = 0;
        while (PAGE_SIZE << order) - HDR < 8 * chunk && order < 6 {
            order += 1;
        }
        FixedPool {
            chunk,
            order,
            state: Mutex::new(PoolState {
                partial: ptr::null_mut(),
                blocks: 0,
                in_use: 0,
            }),
        }
    }

    /// Bytes per chunk (the size asked for, rounded up to 16).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const fn chunk_size(&self) -> usize {
        self.chunk
    }

    fn block_size(&self) -> usize {
        PAGE_SIZE << self.order
    }

    fn per_block(&self) -> usize {
        (self.block_size() - HDR) / self.chunk
    }

    /// Chunks handed out and blocks held.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn usage(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.in_use, s.blocks)
    }

    /// A chunk (contents undefined), or `None` if `pages` has no memory. The
    /// pool lock is not held while `pages` is asked, so a shrinker that frees
    /// chunks of this pool may run meanwhile.
    pub(crate) fn alloc(&self, pages: &dyn SlabPages, gfp: Gfp) -> Option<NonNull<u8>> {
        if let Some(p) = self.take(&mut self.state.lock()) {
            return Some(p);
        }
        let b = pages.alloc_block(self.order, gfp.without(Gfp::ZERO), PageKind::Pages)?;
        let blk = b.as_ptr().cast::<PoolBlock>();
        // SAFETY: `b` is a fresh block of `block_size()` bytes, ours alone; the
        // header and `per_block()` chunks fit in it.
        unsafe {
            let mut free = ptr::null_mut::<u8>();
            for i in (0..self.per_block()).rev() {
                let c = b.as_ptr().add(HDR + i * self.chunk);
                c.cast::<*mut u8>().write(free);
                free = c;
            }
            blk.write(PoolBlock {
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
                free,
                in_use: 0,
                listed: false,
            });
        }
        let mut s = self.state.lock();
        s.blocks += 1;
        // SAFETY: `blk` is initialised and owned by the pool from now on.
        unsafe { Self::link(&mut s, blk) };
        self.take(&mut s)
    }

    fn take(&self, s: &mut PoolState) -> Option<NonNull<u8>> {
        let blk = s.partial;
        if blk.is_null() {
            return None;
        }
        // SAFETY: listed blocks are live and have a non-empty free list; the lock is held.
        unsafe {
            let c = (*blk).free;
            (*blk).free = c.cast::<*mut u8>().read();
            (*blk).in_use += 1;
            s.in_use += 1;
            if (*blk).free.is_null() {
                Self::unlink(s, blk);
            }
            NonNull::new(c)
        }
    }

    /// Gives a chunk back; a wholly free block goes back to `pages` unless it
    /// is the pool's only block with free chunks.
    ///
    /// # Safety
    ///
    /// `p` came from `alloc` on this pool with the same `pages`, and is not used again.
    pub(crate) unsafe fn free(&self, pages: &dyn SlabPages, p: NonNull<u8>) {
        let mask = !(self.block_size() - 1);
        let blk = p.as_ptr().map_addr(|a| a & mask).cast::<PoolBlock>();
        let release = {
            let mut s = self.state.lock();
            // SAFETY: `p` lies in a live block of this pool (the caller's
            // promise); blocks are aligned to their size; the lock is held.
            unsafe {
                p.as_ptr().cast::<*mut u8>().write((*blk).free);
                (*blk).free = p.as_ptr();
                (*blk).in_use -= 1;
                s.in_use -= 1;
                if !(*blk).listed {
                    Self::link(&mut s, blk);
                }
                if (*blk).in_use == 0 && !((*blk).prev.is_null() && (*blk).next.is_null()) {
                    Self::unlink(&mut s, blk);
                    s.blocks -= 1;
                    true
                } else {
                    false
                }
            }
        };
        if release {
            // SAFETY: the block is wholly free and off the pool's lists.
            unsafe {
                pages.free_block(
                    NonNull::new_unchecked(blk.cast()),
                    self.order,
                    PageKind::Pages,
                )
            };
        }
    }

    /// Releases every block when no chunk is in use (a cache being destroyed).
    /// Returns whether the pool is now empty.
    pub(crate) fn release_all(&self, pages: &dyn SlabPages) -> bool {
        let mut s = self.state.lock();
        if s.in_use != 0 {
            return false;
        }
        while !s.partial.is_null() {
            let blk = s.partial;
            // SAFETY: a listed block with no chunk in use; the lock is held.
            unsafe {
                Self::unlink(&mut s, blk);
                pages.free_block(
                    NonNull::new_unchecked(blk.cast()),
                    self.order,
                    PageKind::Pages,
                );
            }
            s.blocks -= 1;
        }
        true
    }

    /// # Safety
    /// `blk` is a live, unlisted block of this pool; the lock is held.
    unsafe fn link(s: &mut PoolState, blk: *mut PoolBlock) {
        // SAFETY: per the contract.
        unsafe {
            (*blk).prev = ptr::null_mut();
            (*blk).next = s.partial;
            if !s.partial.is_null() {
                (*s.partial).prev = blk;
            }
            (*blk).listed = true;
        }
        s.partial = blk;
    }

    /// # Safety
    /// `blk` is a live, listed block of this pool; the lock is held.
    unsafe fn unlink(s: &mut PoolState, blk: *mut PoolBlock) {
        // SAFETY: per the contract.
        unsafe {
            let (n, p) = ((*blk).next, (*blk).prev);
            if !n.is_null() {
                (*n).prev = p;
            }
            if p.is_null() {
                s.partial = n;
            } else {
                (*p).next = n;
            }
            (*blk).next = ptr::null_mut();
            (*blk).prev = ptr::null_mut();
            (*blk).listed = false;
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use kmem_page::{Config, PageAllocator};
    use kmem_platform::TestPlatform;
    use std::vec::Vec;

    #[test]
    fn chunks_are_distinct_and_blocks_return() {
        static PAGES: PageAllocator<TestPlatform> = PageAllocator::with_config(
            TestPlatform::new(),
            Config {
                keep_free_pages: 0,
                max_pages: usize::MAX,
            },
        );
        let pages = &PAGES;
        let pool = FixedPool::new(200);
        let n = if cfg!(miri) { 40 } else { 500 };
        let mut got: Vec<NonNull<u8>> = (0..n)
            .map(|_| pool.alloc(pages, Gfp::KERNEL).unwrap())
            .collect();
        let mut addrs: Vec<usize> = got.iter().map(|p| p.as_ptr() as usize).collect();
        addrs.sort();
        assert!(addrs.windows(2).all(|w| w[1] - w[0] >= 208));
        assert_eq!(pool.usage().0, n);
        for p in got.drain(..) {
            // SAFETY: each chunk came from this pool.
            unsafe { pool.free(pages, p) };
        }
        assert_eq!(pool.usage(), (0, 1), "one empty block is kept");
        assert!(pool.release_all(pages));
        assert_eq!(pages.stats().allocated_pages, 0);
    }
}
