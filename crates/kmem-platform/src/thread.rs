//! Thread-exit notification (`pthread_key_create`) and process-wide memory
//! barriers (`membarrier`).
//!
//! The slab layer keeps per-thread array caches reachable through a plain TLS
//! pointer. It learns that a thread exits through a [`ThreadKey`] destructor
//! (which never allocates: no `__cxa_thread_atexit_impl` registration, so it is
//! usable inside a `malloc` replacement), and it reaches into other threads'
//! caches with an asymmetric fence: the owner's fast path only orders its own
//! stores with a compiler fence, and the rare remote side calls [`membarrier`],
//! which makes every running thread of the process execute a full barrier.

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// A `pthread_key_t` created on first use, whose destructor runs when a thread
/// that set a non-null value exits.
///
/// ```
/// use kmem_platform::thread::ThreadKey;
/// use core::sync::atomic::{AtomicUsize, Ordering};
/// static RAN: AtomicUsize = AtomicUsize::new(0);
/// unsafe extern "C" fn on_exit(v: *mut core::ffi::c_void) {
///     RAN.fetch_add(v as usize, Ordering::SeqCst);
/// }
/// static KEY: ThreadKey = ThreadKey::new(on_exit);
/// std::thread::spawn(|| assert!(KEY.set(7 as *mut _))).join().unwrap();
/// assert_eq!(RAN.load(Ordering::SeqCst), 7);
/// ```
pub struct ThreadKey {
    /// `pthread_key_t + 1` once created; 0 before. Set once, under a CAS.
    key: AtomicUsize,
    dtor: unsafe extern "C" fn(*mut core::ffi::c_void),
}

impl ThreadKey {
    /// A key whose destructor is `dtor` (created lazily by [`set`](Self::set)).
    pub const fn new(dtor: unsafe extern "C" fn(*mut core::ffi::c_void)) -> Self {
        ThreadKey {
            key: AtomicUsize::new(0),
            dtor,
        }
    }

    #[cfg(unix)]
    fn key(&self) -> Option<libc::pthread_key_t> {
        let k = self.key.load(Ordering::Acquire);
        if k != 0 {
            return Some((k - 1) as libc::pthread_key_t);
        }
        let mut new: libc::pthread_key_t = 0;
        // SAFETY: `new` is a valid out-pointer; `dtor` has the C signature.
        if unsafe { libc::pthread_key_create(&mut new, Some(self.dtor)) } != 0 {
            return None;
        }
        match self
            .key
            .compare_exchange(0, new as usize + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Some(new),
            Err(cur) => {
                // Another thread won the race: drop our key.
                // SAFETY: `new` was created above and never used.
                unsafe { libc::pthread_key_delete(new) };
                Some((cur - 1) as libc::pthread_key_t)
            }
        }
    }

    /// Sets the calling thread's value (so the destructor runs with it at
    /// thread exit; a null value cancels that). Returns `false` if no key
    /// could be created.
    // The value is stored, never dereferenced here; the destructor (an
    // `unsafe extern "C" fn` the key's creator wrote) receives it.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    pub fn set(&self, value: *mut core::ffi::c_void) -> bool {
        #[cfg(unix)]
        {
            let Some(k) = self.key() else { return false };
            // SAFETY: `k` is a live key.
            unsafe { libc::pthread_setspecific(k, value) == 0 }
        }
        #[cfg(not(unix))]
        {
            let _ = value;
            false
        }
    }

    /// The calling thread's value (null if unset or no key exists yet).
    pub fn get(&self) -> *mut core::ffi::c_void {
        #[cfg(unix)]
        {
            let k = self.key.load(Ordering::Acquire);
            if k == 0 {
                return core::ptr::null_mut();
            }
            // SAFETY: `k - 1` is a live key.
            unsafe { libc::pthread_getspecific((k - 1) as libc::pthread_key_t) }
        }
        #[cfg(not(unix))]
        {
            core::ptr::null_mut()
        }
    }
}

/// 0 = not tried, 1 = private expedited registered, 2 = only the global
/// command works, 3 = no membarrier.
static MB_STATE: AtomicU8 = AtomicU8::new(0);

const CMD_QUERY: libc::c_int = 0;
const CMD_GLOBAL: libc::c_int = 1;
const CMD_PRIVATE_EXPEDITED: libc::c_int = 8;
const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 16;

#[cfg(all(target_os = "linux", not(miri)))]
fn sys_membarrier(cmd: libc::c_int) -> libc::c_long {
    // SAFETY: membarrier takes two integers and touches no user memory.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) }
}

/// Whether [`membarrier`] can work in this process (registers the process for
/// the fast "private expedited" command on first call).
///
/// ```
/// let _ = kmem_platform::thread::membarrier_available();
/// ```
pub fn membarrier_available() -> bool {
    membarrier_state() != 3
}

fn membarrier_state() -> u8 {
    let s = MB_STATE.load(Ordering::Acquire);
    if s != 0 {
        return s;
    }
    #[cfg(all(target_os = "linux", not(miri)))]
    let s = {
        let mask = sys_membarrier(CMD_QUERY);
        if mask < 0 {
            3
        } else if mask & CMD_PRIVATE_EXPEDITED as libc::c_long != 0
            && sys_membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
        {
            1
        } else if mask & CMD_GLOBAL as libc::c_long != 0 {
            2
        } else {
            3
        }
    };
    #[cfg(not(all(target_os = "linux", not(miri))))]
    let s = {
        let _ = (
            CMD_QUERY,
            CMD_GLOBAL,
            CMD_PRIVATE_EXPEDITED,
            CMD_REGISTER_PRIVATE_EXPEDITED,
        );
        3
    };
    MB_STATE.store(s, Ordering::Release);
    s
}

/// Makes every thread of the process that is running now execute a full
/// memory barrier before this returns (Linux `membarrier(2)`). Pairs with a
/// plain compiler fence on the other threads' side. Returns `false` if the
/// system has no membarrier (the caller must then not rely on it).
///
/// ```
/// if kmem_platform::thread::membarrier_available() {
///     assert!(kmem_platform::thread::membarrier());
/// }
/// ```
pub fn membarrier() -> bool {
    core::sync::atomic::fence(Ordering::SeqCst);
    let ok = match membarrier_state() {
        #[cfg(all(target_os = "linux", not(miri)))]
        1 => sys_membarrier(CMD_PRIVATE_EXPEDITED) == 0,
        #[cfg(all(target_os = "linux", not(miri)))]
        2 => sys_membarrier(CMD_GLOBAL) == 0,
        _ => false,
    };
    core::sync::atomic::fence(Ordering::SeqCst);
    ok
}

/// Yields the processor (`sched_yield`), for short waits on another thread.
///
/// ```
/// kmem_platform::thread::yield_now();
/// ```
pub fn yield_now() {
    #[cfg(unix)]
    // SAFETY: sched_yield has no preconditions.
    unsafe {
        libc::sched_yield();
    }
    #[cfg(not(unix))]
    core::hint::spin_loop();
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn key_destructor_runs_per_thread() {
        static SUM: AtomicUsize = AtomicUsize::new(0);
        unsafe extern "C" fn d(v: *mut core::ffi::c_void) {
            SUM.fetch_add(v as usize, Ordering::SeqCst);
        }
        static K: ThreadKey = ThreadKey::new(d);
        let hs: std::vec::Vec<_> = (1..=3usize)
            .map(|i| {
                std::thread::spawn(move || {
                    assert!(K.set(i as *mut _));
                    assert_eq!(K.get() as usize, i);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(SUM.load(Ordering::SeqCst), 6);
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn membarrier_works_here() {
        if membarrier_available() {
            assert!(membarrier());
        }
    }
}
