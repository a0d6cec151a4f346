//! Clocks, sleeping and futex waits.

use core::sync::atomic::AtomicU32;

/// Nanoseconds on a monotonic clock (CLOCK_MONOTONIC).
///
/// ```
/// let a = kmem_platform::time::now_ns();
/// let b = kmem_platform::time::now_ns();
/// assert!(b >= a);
/// ```
pub fn now_ns() -> u64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out-pointer for clock_gettime.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// Sleeps the calling thread for about `ns` nanoseconds.
///
/// ```
/// kmem_platform::time::sleep_ns(1000);
/// ```
pub fn sleep_ns(ns: u64) {
    #[cfg(unix)]
    {
        let ts = libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: `ts` is a valid timespec; a null remainder pointer is allowed.
        unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
    }
    #[cfg(not(unix))]
    {
        let end = now_ns().saturating_add(ns);
        while now_ns() < end {
            core::hint::spin_loop();
        }
    }
}

/// Sleeps while `*word == expected`, for at most `timeout_ns` (forever if `None`).
/// Returns early on [`futex_wake`] or spuriously; callers re-check their condition.
///
/// ```
/// use core::sync::atomic::AtomicU32;
/// let w = AtomicU32::new(1);
/// // The value differs from `expected`, so this returns at once.
/// kmem_platform::time::futex_wait(&w, 0, None);
/// ```
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: Option<u64>) {
    #[cfg(target_os = "linux")]
    {
        let ts;
        let tsp = match timeout_ns {
            Some(ns) => {
                ts = libc::timespec {
                    tv_sec: (ns / 1_000_000_000) as libc::time_t,
                    tv_nsec: (ns % 1_000_000_000) as libc::c_long,
                };
                &ts as *const libc::timespec
            }
            None => core::ptr::null(),
        };
        // SAFETY: `word` is a valid, aligned u32 for the duration of the call;
        // FUTEX_WAIT only reads it and sleeps.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                expected,
                tsp,
            )
        };
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = timeout_ns;
        if word.load(core::sync::atomic::Ordering::Relaxed) == expected {
            core::hint::spin_loop();
        }
    }
}

/// Wakes up to `n` threads sleeping in [`futex_wait`] on `word`.
///
/// ```
/// use core::sync::atomic::AtomicU32;
/// kmem_platform::time::futex_wake(&AtomicU32::new(0), 1);
/// ```
pub fn futex_wake(word: &AtomicU32, n: u32) {
    #[cfg(target_os = "linux")]
    // SAFETY: FUTEX_WAKE on a valid, aligned u32 touches no memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n.min(i32::MAX as u32),
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (word, n);
}
