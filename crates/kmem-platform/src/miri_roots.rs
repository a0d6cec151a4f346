//! Under Miri only: a table of the heap blocks that stand in for OS mappings.
//!
//! The page layer remembers its regions by address (integers in page
//! descriptors and region headers), which Miri's leak checker cannot follow.
//! Memory a real OS would keep mapped for the process would then be reported
//! as leaked at exit. Recording each live stand-in mapping here, as a pointer
//! reachable from a static, tells Miri the truth: the "OS" still holds it.

use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

const SLOTS: usize = 4096;
static ROOTS: [AtomicPtr<u8>; SLOTS] = [const { AtomicPtr::new(ptr::null_mut()) }; SLOTS];

/// Records a live mapping (silently ignored if the table is full).
pub(crate) fn add(p: *mut u8) {
    for s in &ROOTS {
        if s.compare_exchange(ptr::null_mut(), p, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// Forgets a mapping that is being unmapped.
pub(crate) fn remove(p: *mut u8) {
    for s in &ROOTS {
        if s.compare_exchange(p, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}
