//! Cleanup handlers (nginx's `ngx_pool_cleanup_add`): functions the pool
//! calls, newest first, when it is destroyed — not when it is reset.
//!
//! Because they outlive resets, cleanup records and their data are not bumped
//! from the pool's blocks (a reset rewinds those; nginx keeps them there and a
//! reset leaves its cleanup list dangling). They live in *keep blocks*, a
//! separate chain of pages freed only when the pool is destroyed.

use core::ffi::c_void;
use core::ptr::{self, NonNull};

use kmem_page::PAGE_SIZE;

use crate::error::ArenaError;
use crate::pages::{self, PageBackend, Span};
use crate::pool::{MP_ALIGNMENT, Pool};

/// A cleanup handler (C's `mp_cleanup_pt`): called with the record's `data`.
pub type CleanupFn = unsafe extern "C-unwind" fn(data: *mut c_void);

/// A cleanup record, laid out as C's `mp_cleanup_t`. Returned by
/// [`Pool::cleanup_add`]; the caller fills in `handler` (and `data`, if it
/// asked for no data of the pool's).
///
/// ```
/// use core::ffi::c_void;
/// use kmem_arena::{Global, Pool};
/// unsafe extern "C-unwind" fn bump(data: *mut c_void) {
///     // SAFETY: `data` is the `*mut u32` stored below, still alive.
///     unsafe { *data.cast::<u32>() += 1 };
/// }
/// let mut hits = 0u32;
/// let pool = Pool::new(Global, 4096)?;
/// let c = pool.cleanup_add(0)?;
/// // SAFETY: `c` is a live record of `pool`; `hits` outlives the pool.
/// unsafe {
///     (*c.as_ptr()).handler = Some(bump);
///     (*c.as_ptr()).data = (&mut hits as *mut u32).cast();
/// }
/// drop(pool);
/// assert_eq!(hits, 1);
/// # Ok::<(), kmem_arena::ArenaError>(())
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct Cleanup {
    /// Called at destroy with `data`; `None` skips the record.
    pub handler: Option<CleanupFn>,
    /// The handler's argument: `data_size` bytes of pool memory (16-aligned),
    /// or null when `data_size` was 0.
    pub data: *mut c_void,
    /// The record added before this one.
    pub next: *mut Cleanup,
}

/// A block of cleanup records and their data.
#[repr(C)]
pub(crate) struct KeepBlock {
    /// The block made before this one.
    next: *mut KeepBlock,
    /// Cursor: `[last, end)` is free.
    last: *mut u8,
    /// One past the block's last byte.
    end: usize,
    /// The block's pages.
    span: Span,
}

const KEEP_HEADER: usize = size_of::<KeepBlock>().next_multiple_of(MP_ALIGNMENT);
const RECORD: usize = size_of::<Cleanup>().next_multiple_of(MP_ALIGNMENT);

impl<P: PageBackend> Pool<P> {
    /// Adds a cleanup record with `data_size` bytes of data (`mp_cleanup_add`).
    /// The record starts with no handler; records run newest first when the
    /// pool is destroyed, and a reset keeps them. The data stays valid until
    /// then (it is not counted in the statistics).
    ///
    /// ```
    /// use kmem_arena::{Global, Pool};
    /// let pool = Pool::new(Global, 256)?;
    /// let c = pool.cleanup_add(32)?;
    /// // SAFETY: `c` is a live record of `pool`.
    /// let data = unsafe { (*c.as_ptr()).data };
    /// assert_eq!(data as usize % 16, 0);
    /// assert!(pool.cleanup_add(usize::MAX).is_err());
    /// # Ok::<(), kmem_arena::ArenaError>(())
    /// ```
    pub fn cleanup_add(&self, data_size: usize) -> Result<NonNull<Cleanup>, ArenaError> {
        let need = data_size
            .checked_add(RECORD)
            .ok_or(ArenaError::TooLarge { size: data_size })?;
        if self.head.get().is_null() {
            // The keep blocks carry the pool's id, which is its head block.
            self.create_head()
                .map_err(|_| ArenaError::NoMemory { size: data_size })?;
        }
        let mem = self
            .keep_alloc(need)
            .ok_or(ArenaError::NoMemory { size: data_size })?;
        let rec = mem.as_ptr().cast::<Cleanup>();
        let data = if data_size == 0 {
            ptr::null_mut()
        } else {
            mem.as_ptr().wrapping_add(RECORD).cast()
        };
        // SAFETY: `mem` is fresh keep-block memory for a record and its data.
        unsafe {
            rec.write(Cleanup {
                handler: None,
                data,
                next: self.cleanups.get(),
            })
        };
        self.cleanups.set(rec);
        // SAFETY: `rec` is not null.
        Ok(unsafe { NonNull::new_unchecked(rec) })
    }

    /// Bump `size` bytes (16-aligned) from the keep blocks, adding one if needed.
    fn keep_alloc(&self, size: usize) -> Option<NonNull<u8>> {
        let size = size.checked_next_multiple_of(MP_ALIGNMENT)?;
        let kb = self.keep.get();
        if !kb.is_null() {
            // SAFETY: `kb` is a live keep block of this pool.
            let b = unsafe { &mut *kb };
            if size <= b.end - b.last as usize {
                let p = b.last;
                b.last = p.wrapping_add(size);
                return NonNull::new(p);
            }
        }
        let bytes = size.checked_add(KEEP_HEADER)?.max(PAGE_SIZE);
        // Keep blocks carry the pool's id with no entry: `free` declines their data.
        let span = pages::alloc_span(&self.pages, bytes, PAGE_SIZE, self.id.get(), 0).ok()?;
        let base = span.base.as_ptr();
        let b = base.cast::<KeepBlock>();
        let first = base.wrapping_add(KEEP_HEADER);
        // SAFETY: the span is fresh and ours, and larger than the header plus `size`.
        unsafe {
            b.write(KeepBlock {
                next: self.keep.get(),
                last: first.wrapping_add(size),
                end: base as usize + span.bytes,
                span,
            })
        };
        // Keep the emptier block in front.
        // SAFETY: both blocks are live keep blocks of this pool.
        unsafe {
            let old = self.keep.get();
            if !old.is_null() && (*old).end - (*old).last as usize > (*b).end - (*b).last as usize {
                (*b).next = (*old).next;
                (*old).next = b;
                return NonNull::new(first);
            }
        }
        self.keep.set(b);
        NonNull::new(first)
    }

    /// Runs every cleanup handler, newest first; each record is taken off the
    /// list before its handler runs, so none runs twice.
    ///
    /// # Safety
    ///
    /// The handlers' preconditions (they are the caller's code) must hold now.
    pub(crate) unsafe fn run_cleanups(&self) {
        loop {
            let c = self.cleanups.get();
            if c.is_null() {
                return;
            }
            // SAFETY: records on the list are live.
            let (handler, data, next) = unsafe { ((*c).handler, (*c).data, (*c).next) };
            self.cleanups.set(next);
            if let Some(h) = handler {
                // SAFETY: the handler was installed for this moment by its owner.
                unsafe { h(data) };
            }
        }
    }

    /// Frees every keep block.
    ///
    /// # Safety
    ///
    /// No cleanup record or data is used any more.
    pub(crate) unsafe fn free_keep_blocks(&self) {
        self.cleanups.set(ptr::null_mut());
        let mut b = self.keep.replace(ptr::null_mut());
        while !b.is_null() {
            // SAFETY: live keep blocks; read before freeing.
            let (next, span) = unsafe { ((*b).next, (*b).span) };
            // SAFETY: passed on from our caller.
            unsafe { pages::free_span(&self.pages, span) };
            b = next;
        }
    }
}
