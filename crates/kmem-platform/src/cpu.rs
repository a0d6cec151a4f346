//! Cpu count, the current cpu, and thread ids.

use core::sync::atomic::{AtomicUsize, Ordering};

static NR_CPUS: AtomicUsize = AtomicUsize::new(0);

/// The number of cpus this process may run on (at least 1). Cached after the
/// first call.
///
/// ```
/// assert!(kmem_platform::cpu::nr_cpus() >= 1);
/// ```
pub fn nr_cpus() -> usize {
    let n = NR_CPUS.load(Ordering::Relaxed);
    if n != 0 {
        return n;
    }
    let n = query_nr_cpus().max(1);
    NR_CPUS.store(n, Ordering::Relaxed);
    n
}

fn query_nr_cpus() -> usize {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        // SAFETY: a zeroed cpu_set_t is a valid out-parameter.
        let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
        // SAFETY: `set` is valid for writes of its own size.
        if unsafe { libc::sched_getaffinity(0, core::mem::size_of_val(&set), &mut set) } == 0 {
            // SAFETY: `set` was filled in by the kernel.
            return unsafe { libc::CPU_COUNT(&set) } as usize;
        }
    }
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        if n > 0 {
            return n as usize;
        }
    }
    1
}

/// The cpu the calling thread runs on now (a hint: it may move at any time).
///
/// ```
/// assert!(kmem_platform::cpu::current_cpu() < 4096);
/// ```
pub fn current_cpu() -> usize {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        // SAFETY: sched_getcpu has no preconditions.
        let c = unsafe { libc::sched_getcpu() };
        if c >= 0 {
            return c as usize;
        }
    }
    0
}

/// The kernel's id of the calling thread (`gettid`), for reports and owner tracking.
///
/// ```
/// assert_eq!(kmem_platform::cpu::thread_id(), kmem_platform::cpu::thread_id());
/// ```
pub fn thread_id() -> u64 {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::syscall(libc::SYS_gettid) as u64 }
    }
    #[cfg(all(any(not(target_os = "linux"), miri), feature = "std"))]
    {
        use core::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        std::thread::current().id().hash(&mut h);
        h.finish()
    }
    #[cfg(all(any(not(target_os = "linux"), miri), not(feature = "std")))]
    {
        0
    }
}

/// The process id.
///
/// ```
/// assert!(kmem_platform::cpu::process_id() > 0);
/// ```
pub fn process_id() -> u32 {
    #[cfg(unix)]
    {
        // SAFETY: getpid has no preconditions.
        unsafe { libc::getpid() as u32 }
    }
    #[cfg(not(unix))]
    {
        1
    }
}
