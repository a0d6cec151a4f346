//! Shrinkers: how upper layers give memory back when the page layer runs out.
//!
//! As in the kernel's direct reclaim, an allocation that may wait and finds no
//! memory first asks every registered shrinker (the slab layer registers one
//! that releases free slabs) and then tries again.

use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

const MAX_SHRINKERS: usize = 8;
static SHRINKERS: [AtomicPtr<()>; MAX_SHRINKERS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_SHRINKERS];

/// Registers `f`, which releases memory and returns roughly how many pages it
/// freed. Returns `false` if the table (8 entries) is full. Registering the
/// same function twice is a no-op.
///
/// ```
/// fn give_back() -> usize { 0 }
/// assert!(kmem_page::register_shrinker(give_back));
/// assert!(kmem_page::register_shrinker(give_back));
/// ```
pub fn register_shrinker(f: fn() -> usize) -> bool {
    let v = f as *mut ();
    for s in &SHRINKERS {
        match s.compare_exchange(ptr::null_mut(), v, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(cur) if cur == v => return true,
            Err(_) => {}
        }
    }
    false
}

/// Runs every registered shrinker; returns the pages they report freed.
///
/// ```
/// let _freed = kmem_page::run_shrinkers();
/// ```
pub fn run_shrinkers() -> usize {
    let mut total = 0;
    for s in &SHRINKERS {
        let v = s.load(Ordering::Acquire);
        if !v.is_null() {
            // SAFETY: only `fn() -> usize` pointers are stored, by `register_shrinker`.
            let f: fn() -> usize = unsafe { core::mem::transmute::<*mut (), fn() -> usize>(v) };
            total += f();
        }
    }
    total
}
