//! Reaping (Linux `cache_reap`) and the page layer's shrinker.
//!
//! Every 2 s (`REAPTIMEOUT_AC`) a pass takes `(limit + 4) / 5` objects back
//! from every per-thread array cache that was not touched since the previous
//! pass (a touched one is only marked untouched). Every 4 s
//! (`REAPTIMEOUT_NODE`) the pass also drains the shared array the same way
//! and releases up to `(free_limit + 5 * num - 1) / (5 * num)` free slabs of
//! every node whose free slabs were not used since the last such pass.
//!
//! [`reap`] runs one full pass now. With `std`, [`start_reaper`] runs passes
//! on a background thread until [`stop_reaper`]. The shrinker registered with
//! the page layer empties shared arrays and releases every free slab when
//! the page layer runs out of memory.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::cpu_cache::ArrayCache;
use crate::list::CACHES;
use crate::node::DestroyList;

/// The per-thread part's period (Linux `REAPTIMEOUT_AC`), in nanoseconds.
pub const REAPTIMEOUT_AC_NS: u64 = 2_000_000_000;
/// The node part's period (Linux `REAPTIMEOUT_NODE`), in nanoseconds.
pub const REAPTIMEOUT_NODE_NS: u64 = 4_000_000_000;

/// What a reap pass gave back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReapStats {
    /// Objects taken from per-thread and shared arrays back to their slabs.
    pub objects: usize,
    /// Slabs released to the page layer.
    pub slabs: usize,
}

/// One `cache_reap` pass: the per-thread part, and the node part if `node`.
pub(crate) fn cache_reap(node: bool) -> ReapStats {
    let mut destroy = DestroyList::new();
    let mut objects = 0usize;
    {
        let list = CACHES.lock();
        crate::cpu_cache::for_each_thread_exclusive(|t| {
            for c in list.iter() {
                let ac = t.slots[c.id as usize].load(Ordering::Relaxed);
                if ac.is_null() {
                    continue;
                }
                // SAFETY: `t` is frozen (or is us) with its lock held: the array is ours.
                unsafe {
                    if (*ac).avail == 0 {
                        continue;
                    }
                    if ArrayCache::is_touched(ac) {
                        ArrayCache::clear_touched(ac);
                        continue;
                    }
                    let mut n = c.node.lists.lock();
                    objects += c.drain_array_locked(&mut n, ac, false, &mut destroy) as usize;
                }
            }
        });
        if node {
            for c in list.iter() {
                let mut n = c.node.lists.lock();
                let sh = n.shared;
                // SAFETY: the shared array is ours under the node lock.
                unsafe {
                    if !sh.is_null() && (*sh).avail > 0 {
                        if ArrayCache::is_touched(sh) {
                            ArrayCache::clear_touched(sh);
                        } else {
                            objects +=
                                c.drain_array_locked(&mut n, sh, false, &mut destroy) as usize;
                        }
                    }
                }
                if n.free_touched {
                    n.free_touched = false;
                } else {
                    let num = c.num as usize;
                    // Linux: (free_limit + 5 * num - 1) / (5 * num).
                    let max = n.free_limit.div_ceil(5 * num);
                    n.stats.reaped += c.drain_freelist(&mut n, max, &mut destroy) as u64;
                }
            }
        }
    }
    let slabs = destroy.run();
    ReapStats { objects, slabs }
}

/// Runs one full reap pass now over every cache: per-thread arrays not
/// touched since the last pass give back `(limit + 4) / 5` objects, then the
/// shared arrays and free slabs are reaped as the 4-second pass does.
///
/// ```
/// let c = kmem_slab::KmemCache::new("reaped", 64, 0).unwrap();
/// let v: Vec<_> = (0..100).map(|_| c.alloc(kmem_page::Gfp::KERNEL).unwrap()).collect();
/// for p in v { unsafe { c.free(p).unwrap() } }
/// kmem_slab::reap();                       // the array was touched: only marked
/// let s = kmem_slab::reap();               // now it gives objects back
/// assert!(s.objects > 0);
/// ```
pub fn reap() -> ReapStats {
    cache_reap(true)
}

/// The shrinker the slab layer registers with the page layer: empties every
/// shared array and releases every free slab. Returns pages freed. Skips the
/// pass if the cache list is busy (the caller may hold it).
pub(crate) fn slab_shrinker() -> usize {
    let mut destroy = DestroyList::new();
    let mut pages = 0usize;
    {
        let Some(list) = CACHES.try_lock() else {
            return 0;
        };
        for c in list.iter() {
            let Some(mut n) = c.node.lists.try_lock() else {
                continue;
            };
            let sh = n.shared;
            if !sh.is_null() {
                // SAFETY: the shared array is ours under the node lock.
                unsafe { c.drain_array_locked(&mut n, sh, true, &mut destroy) };
            }
            pages += c.drain_freelist(&mut n, usize::MAX, &mut destroy) << c.order;
        }
    }
    destroy.run();
    pages
}

static SHRINKER: AtomicBool = AtomicBool::new(false);

/// Registers [`slab_shrinker`] with the page layer once.
pub(crate) fn register_shrinker_once() {
    if !SHRINKER.load(Ordering::Acquire) && !SHRINKER.swap(true, Ordering::AcqRel) {
        kmem_page::register_shrinker(slab_shrinker);
    }
}

#[cfg(feature = "std")]
mod thread {
    use super::*;
    use core::sync::atomic::AtomicU32;
    use kmem_platform::Mutex;

    static HANDLE: Mutex<Option<std::thread::JoinHandle<()>>> = Mutex::new(None);
    /// 0 running, 1 asked to stop. The reaper sleeps on it (futex).
    static STOP: AtomicU32 = AtomicU32::new(0);
    static PASSES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

    /// Starts the background reaper (if not running): a thread that runs the
    /// per-thread part of `cache_reap` every `period_ns` (2 s for Linux's
    /// timing) and the node part every second period. Returns `false` if it
    /// was already running.
    ///
    /// ```
    /// assert!(kmem_slab::start_reaper(2_000_000_000));
    /// assert!(kmem_slab::reaper_running());
    /// assert!(kmem_slab::stop_reaper());
    /// ```
    pub fn start_reaper(period_ns: u64) -> bool {
        let mut h = HANDLE.lock();
        if h.is_some() {
            return false;
        }
        STOP.store(0, Ordering::SeqCst);
        let t = std::thread::Builder::new()
            .name("kmem-reaper".into())
            .spawn(move || {
                let mut tick = 0u64;
                loop {
                    let deadline = kmem_platform::time::now_ns() + period_ns;
                    loop {
                        if STOP.load(Ordering::SeqCst) != 0 {
                            return;
                        }
                        let now = kmem_platform::time::now_ns();
                        if now >= deadline {
                            break;
                        }
                        kmem_platform::time::futex_wait(&STOP, 0, Some(deadline - now));
                    }
                    tick += 1;
                    cache_reap(tick.is_multiple_of(2));
                    PASSES.fetch_add(1, Ordering::Relaxed);
                }
            });
        match t {
            Ok(t) => {
                *h = Some(t);
                true
            }
            Err(_) => false,
        }
    }

    /// Stops the background reaper and waits for it. Returns `false` if it
    /// was not running.
    ///
    /// ```
    /// assert!(!kmem_slab::stop_reaper() || true);
    /// ```
    pub fn stop_reaper() -> bool {
        let h = HANDLE.lock().take();
        match h {
            Some(h) => {
                STOP.store(1, Ordering::SeqCst);
                kmem_platform::time::futex_wake(&STOP, u32::MAX);
                let _ = h.join();
                true
            }
            None => false,
        }
    }

    /// Whether the background reaper runs.
    ///
    /// ```
    /// let _ = kmem_slab::reaper_running();
    /// ```
    pub fn reaper_running() -> bool {
        HANDLE.lock().is_some()
    }

    /// Passes the background reaper has made since the process started.
    ///
    /// ```
    /// let _ = kmem_slab::reaper_passes();
    /// ```
    pub fn reaper_passes() -> u64 {
        PASSES.load(Ordering::Relaxed)
    }
}

#[cfg(feature = "std")]
pub use thread::{reaper_passes, reaper_running, start_reaper, stop_reaper};
