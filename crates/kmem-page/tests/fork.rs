//! `fork` while other threads allocate and free pages on every per-cpu set:
//! the atfork handlers take every set's lock and the zone's (in lock order),
//! so the child's allocator is consistent and usable.

use std::sync::atomic::{AtomicBool, Ordering};

use kmem_page::{Gfp, PageKind, global};

/// In the child: the allocator checks out and works on every set. Returns the
/// exit code (0 = fine); uses nothing but the page allocator.
fn child() -> i32 {
    let pages = global();
    if pages.check().is_err() {
        return 1;
    }
    for cpu in 0..8 {
        let Ok(p) = pages.alloc_kind_on(cpu, (cpu % 4) as u32, Gfp::KERNEL, PageKind::Pages) else {
            return 2;
        };
        // SAFETY: just allocated with this order; not used again.
        if unsafe { pages.free_kind_on(cpu + 1, p, (cpu % 4) as u32, PageKind::Pages) }.is_err() {
            return 3;
        }
    }
    pages.drain();
    if pages.check().is_err() || pages.stats().cached_pages != 0 {
        return 4;
    }
    0
}

/// Waits for the child up to 5 s; a child still running then is stuck on a
/// lock it inherited held (a lock `fork_prepare` missed): killed, and a failure.
fn wait_or_kill(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    for _ in 0..500 {
        // SAFETY: polling our own child.
        match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
            0 => std::thread::sleep(std::time::Duration::from_millis(10)),
            r => {
                assert_eq!(r, pid);
                return status;
            }
        }
    }
    // SAFETY: our own child; reaped right after.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut status, 0);
    }
    panic!("the child deadlocked on a lock inherited held");
}

#[test]
#[cfg_attr(miri, ignore = "fork")]
fn fork_while_other_threads_use_every_set() {
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        for t in 0..2usize {
            let stop = &stop;
            sc.spawn(move || {
                let pages = global();
                let mut held = Vec::new();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let order = (i % 5) as u32;
                    let p = pages
                        .alloc_kind_on(t + i % 3, order, Gfp::KERNEL, PageKind::Pages)
                        .unwrap();
                    held.push((p, order));
                    if held.len() > 40 {
                        for (p, o) in held.drain(..30) {
                            // SAFETY: live blocks of the global allocator.
                            unsafe {
                                pages
                                    .free_kind_on(t + 7 * i, p, o, PageKind::Pages)
                                    .unwrap()
                            };
                        }
                    }
                    i += 1;
                }
                for (p, o) in held {
                    // SAFETY: as above.
                    unsafe { pages.free_kind_on(i, p, o, PageKind::Pages).unwrap() };
                }
            });
        }
        // Stop the other threads even if a check fails, or the scope never ends.
        let forks = std::panic::catch_unwind(|| {
            for _ in 0..20 {
                kmem_page::fork_prepare();
                // SAFETY: fork in a test process; the child only runs `child`
                // (page allocator calls) and `_exit`.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: the child of a fork that `fork_prepare` preceded.
                    unsafe { kmem_page::fork_child() };
                    // SAFETY: leaving the child without running the parent's destructors.
                    unsafe { libc::_exit(child()) };
                }
                // SAFETY: right after `fork_prepare`, on this thread.
                unsafe { kmem_page::fork_parent() };
                assert!(pid > 0, "fork failed");
                let status = wait_or_kill(pid);
                assert!(libc::WIFEXITED(status), "child died: {status:#x}");
                assert_eq!(
                    libc::WEXITSTATUS(status),
                    0,
                    "the child's allocator is inconsistent"
                );
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        });
        stop.store(true, Ordering::Relaxed);
        if let Err(e) = forks {
            std::panic::resume_unwind(e);
        }
    });
    global().check().unwrap();
}
