//! Unix stream sockets and a detached helper thread, for a process that
//! serves its allocator's state to `kmem top` (the preload's `KMEM_STATS`).
//!
//! None of these allocates through the program's `malloc` except
//! [`spawn_detached`] (glibc's `pthread_create` may `calloc` the new thread's
//! TLS vector), so the caller must hold no allocator lock while spawning.
//! Every call returns `Err(errno)` on failure; descriptors are created
//! close-on-exec and closed with [`crate::process::close_fd`].
//!
//! ```
//! # #[cfg(not(miri))] { // Miri has no sockets
//! use kmem_platform::ipc;
//! let path = c"/tmp/kmem-doc-ipc.sock";
//! let _ = ipc::unlink(path);
//! let l = ipc::unix_listen(path, 4).unwrap();
//! let c = ipc::unix_connect(path).unwrap();
//! let s = ipc::accept(l).unwrap();
//! ipc::send_all(s, b"hello").unwrap();
//! let mut buf = [0u8; 8];
//! assert_eq!(ipc::recv(c, &mut buf), Ok(5));
//! assert_eq!(&buf[..5], b"hello");
//! for fd in [s, c, l] {
//!     kmem_platform::process::close_fd(fd);
//! }
//! ipc::unlink(path).unwrap();
//! # }
//! ```

use core::ffi::{CStr, c_void};

use crate::diag::errno;

/// The longest socket path `bind` accepts (`sizeof(sun_path) - 1`).
pub const MAX_SOCKET_PATH: usize = 107;

fn sockaddr(path: &CStr) -> Result<(libc::sockaddr_un, libc::socklen_t), i32> {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut a: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    let bytes = path.to_bytes();
    if bytes.is_empty() {
        return Err(libc::ENOENT);
    }
    if bytes.len() > MAX_SOCKET_PATH || bytes.len() >= a.sun_path.len() {
        return Err(libc::ENAMETOOLONG);
    }
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in a.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = core::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    Ok((a, len as libc::socklen_t))
}

fn stream_socket() -> Result<i32, i32> {
    // SAFETY: socket takes integers only.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 { Err(errno()) } else { Ok(fd) }
}

/// A listening Unix stream socket bound at `path` (which must not exist),
/// mode 0600 (only the owner may connect), with room for `backlog` pending
/// connections.
///
/// ```
/// # #[cfg(not(miri))] {
/// let p = c"/tmp/kmem-doc-listen.sock";
/// let _ = kmem_platform::ipc::unlink(p);
/// let l = kmem_platform::ipc::unix_listen(p, 1).unwrap();
/// assert!(kmem_platform::ipc::is_socket(p));
/// // A second bind of the same path fails with EADDRINUSE.
/// assert_eq!(kmem_platform::ipc::unix_listen(p, 1), Err(libc::EADDRINUSE));
/// kmem_platform::process::close_fd(l);
/// kmem_platform::ipc::unlink(p).unwrap();
/// # }
/// ```
pub fn unix_listen(path: &CStr, backlog: i32) -> Result<i32, i32> {
    let (addr, len) = sockaddr(path)?;
    let fd = stream_socket()?;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes; `path` is
    // NUL-terminated.
    let r = unsafe {
        if libc::bind(fd, (&raw const addr).cast(), len) != 0 {
            Err(errno())
        } else {
            libc::chmod(path.as_ptr(), 0o600);
            if libc::listen(fd, backlog) != 0 {
                let e = errno();
                libc::unlink(path.as_ptr());
                Err(e)
            } else {
                Ok(fd)
            }
        }
    };
    if r.is_err() {
        crate::process::close_fd(fd);
    }
    r
}

/// A stream socket connected to the listening socket at `path`
/// (`ECONNREFUSED` when the file is a socket nobody listens on any more).
///
/// ```
/// # #[cfg(not(miri))] {
/// assert_eq!(
///     kmem_platform::ipc::unix_connect(c"/tmp/kmem-doc-surely-absent.sock"),
///     Err(libc::ENOENT)
/// );
/// # }
/// ```
pub fn unix_connect(path: &CStr) -> Result<i32, i32> {
    let (addr, len) = sockaddr(path)?;
    let fd = stream_socket()?;
    loop {
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
        if unsafe { libc::connect(fd, (&raw const addr).cast(), len) } == 0 {
            return Ok(fd);
        }
        let e = errno();
        if e != libc::EINTR {
            crate::process::close_fd(fd);
            return Err(e);
        }
    }
}

/// The next connection on listening socket `fd` (close-on-exec). Retries
/// on `EINTR`; after [`shutdown`] of `fd` it fails with `EINVAL`.
///
/// See the module example.
pub fn accept(fd: i32) -> Result<i32, i32> {
    loop {
        // SAFETY: NULL address out-pointers are allowed.
        let c = unsafe {
            libc::accept4(
                fd,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if c >= 0 {
            return Ok(c);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Sends all of `bytes` on socket `fd`. Never raises `SIGPIPE` (a peer that
/// went away is `Err(EPIPE)`, not the death of the program).
///
/// See the module example.
pub fn send_all(fd: i32, mut bytes: &[u8]) -> Result<(), i32> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for reads of its length.
        let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

/// Receives up to `buf.len()` bytes from socket `fd` (0 at end of stream).
///
/// See the module example.
pub fn recv(fd: i32, buf: &mut [u8]) -> Result<usize, i32> {
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Makes a blocking [`send_all`] on `fd` give up with `EAGAIN` after `ms`
/// milliseconds without progress (`SO_SNDTIMEO`), so a stalled reader
/// cannot hold the sender forever.
///
/// ```
/// # #[cfg(not(miri))] {
/// let mut fds = [0; 2];
/// assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) }, 0);
/// kmem_platform::ipc::set_send_timeout(fds[0], 10).unwrap();
/// // Nobody reads fds[1]: filling the socket buffer ends in EAGAIN, not a hang.
/// let big = [0u8; 1 << 16];
/// let r = (0..64).try_for_each(|_| kmem_platform::ipc::send_all(fds[0], &big));
/// assert_eq!(r, Err(libc::EAGAIN));
/// fds.iter().for_each(|&fd| kmem_platform::process::close_fd(fd));
/// # }
/// ```
pub fn set_send_timeout(fd: i32, ms: u64) -> Result<(), i32> {
    let tv = libc::timeval {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_usec: ((ms % 1000) * 1000) as libc::suseconds_t,
    };
    // SAFETY: `tv` is a valid timeval of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&raw const tv).cast(),
            core::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// Shuts socket `fd` down both ways: a thread blocked in [`accept`] on it
/// wakes with `EINVAL`.
///
/// ```
/// # #[cfg(not(miri))] {
/// let p = c"/tmp/kmem-doc-shutdown.sock";
/// let _ = kmem_platform::ipc::unlink(p);
/// let l = kmem_platform::ipc::unix_listen(p, 1).unwrap();
/// kmem_platform::ipc::shutdown(l);
/// assert_eq!(kmem_platform::ipc::accept(l), Err(libc::EINVAL));
/// kmem_platform::process::close_fd(l);
/// kmem_platform::ipc::unlink(p).unwrap();
/// # }
/// ```
pub fn shutdown(fd: i32) {
    // SAFETY: shutdown takes integers only.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// Removes the file at `path`.
///
/// ```
/// # #[cfg(not(miri))] {
/// assert_eq!(kmem_platform::ipc::unlink(c"/tmp/kmem-doc-surely-absent"), Err(libc::ENOENT));
/// # }
/// ```
pub fn unlink(path: &CStr) -> Result<(), i32> {
    // SAFETY: `path` is NUL-terminated.
    if unsafe { libc::unlink(path.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Whether `path` names a socket (not following a final symbolic link).
///
/// ```
/// # #[cfg(not(miri))] {
/// assert!(!kmem_platform::ipc::is_socket(c"/"));
/// # }
/// ```
pub fn is_socket(path: &CStr) -> bool {
    // SAFETY: `st` is a valid out-pointer; `path` is NUL-terminated.
    unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        libc::lstat(path.as_ptr(), &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
    }
}

/// The identity (device and inode) of the open file `fd`, or `None` if
/// `fd` is not open. A listening socket's identity tells whether the
/// descriptor number still holds that socket after the program may have
/// closed it and opened something else.
///
/// ```
/// # #[cfg(not(miri))] {
/// let p = c"/tmp/kmem-doc-identity.sock";
/// let _ = kmem_platform::ipc::unlink(p);
/// let l = kmem_platform::ipc::unix_listen(p, 1).unwrap();
/// let id = kmem_platform::ipc::file_identity(l).unwrap();
/// assert_eq!(kmem_platform::ipc::file_identity(l), Some(id));
/// assert_ne!(kmem_platform::ipc::file_identity(0), Some(id));
/// kmem_platform::process::close_fd(l);
/// assert_eq!(kmem_platform::ipc::file_identity(l), None);
/// kmem_platform::ipc::unlink(p).unwrap();
/// # }
/// ```
pub fn file_identity(fd: i32) -> Option<(u64, u64)> {
    // SAFETY: `st` is a valid out-pointer.
    unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some((st.st_dev, st.st_ino))
    }
}

/// The calling process's id.
///
/// ```
/// # #[cfg(not(miri))]
/// assert_eq!(kmem_platform::ipc::getpid() as u32, std::process::id());
/// ```
pub fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Starts a detached thread running `f(arg)` on a stack of `stack_size`
/// bytes (at least `PTHREAD_STACK_MIN`), with every signal blocked in it, so
/// the program's signals keep going to the program's own threads.
///
/// The caller must hold no allocator lock: `pthread_create` may allocate.
///
/// # Safety
///
/// `f` runs on another thread with `arg`: whatever `arg` points to must be
/// valid for as long as `f` uses it and safe to use from that thread.
///
/// ```
/// # #[cfg(not(miri))] {
/// use core::sync::atomic::{AtomicUsize, Ordering};
/// static HIT: AtomicUsize = AtomicUsize::new(0);
/// extern "C" fn run(arg: *mut core::ffi::c_void) -> *mut core::ffi::c_void {
///     HIT.store(arg as usize, Ordering::Release);
///     core::ptr::null_mut()
/// }
/// // SAFETY: `run` never dereferences its argument.
/// unsafe { kmem_platform::ipc::spawn_detached(run, 42 as *mut _, 64 << 10) }.unwrap();
/// while HIT.load(Ordering::Acquire) != 42 {
///     kmem_platform::thread::yield_now();
/// }
/// # }
/// ```
pub unsafe fn spawn_detached(
    f: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
    stack_size: usize,
) -> Result<(), i32> {
    // SAFETY: every pointer passed is to a live local; the attribute object
    // is initialised before use and destroyed after; the signal mask is
    // restored before returning; `arg` is the caller's to vouch for.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        let r = libc::pthread_attr_init(&mut attr);
        if r != 0 {
            return Err(r);
        }
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstacksize(&mut attr, stack_size.max(libc::PTHREAD_STACK_MIN));
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut tid: libc::pthread_t = core::mem::zeroed();
        let r = libc::pthread_create(&mut tid, &attr, f, arg);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        if r == 0 { Ok(()) } else { Err(r) }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::format;

    fn tmp_path(tag: &str) -> CString {
        CString::new(format!("/tmp/kmem-ipc-test-{tag}-{}.sock", getpid())).unwrap()
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn round_trip_and_end_of_stream() {
        let p = tmp_path("rt");
        let _ = unlink(&p);
        let l = unix_listen(&p, 2).unwrap();
        let c = unix_connect(&p).unwrap();
        let s = accept(l).unwrap();
        send_all(s, b"slabinfo").unwrap();
        crate::process::close_fd(s);
        let mut buf = [0u8; 64];
        assert_eq!(recv(c, &mut buf), Ok(8));
        assert_eq!(&buf[..8], b"slabinfo");
        assert_eq!(recv(c, &mut buf), Ok(0));
        crate::process::close_fd(c);
        crate::process::close_fd(l);
        // The socket file outlives its listener until it is unlinked; then
        // connecting finds nothing.
        assert!(is_socket(&p));
        assert_eq!(unix_connect(&p), Err(libc::ECONNREFUSED));
        unlink(&p).unwrap();
        assert!(!is_socket(&p));
        assert_eq!(unix_connect(&p), Err(libc::ENOENT));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn send_to_a_closed_peer_is_epipe_not_sigpipe() {
        let p = tmp_path("pipe");
        let _ = unlink(&p);
        let l = unix_listen(&p, 1).unwrap();
        let c = unix_connect(&p).unwrap();
        let s = accept(l).unwrap();
        crate::process::close_fd(c);
        // Without MSG_NOSIGNAL this test process would die of SIGPIPE.
        let big = [7u8; 1 << 16];
        let r = (0..8).try_for_each(|_| send_all(s, &big));
        assert_eq!(r, Err(libc::EPIPE));
        crate::process::close_fd(s);
        crate::process::close_fd(l);
        unlink(&p).unwrap();
    }

    #[test]
    fn bad_paths_are_refused() {
        let long = CString::new([b'x'; MAX_SOCKET_PATH + 1]).unwrap();
        assert_eq!(unix_listen(&long, 1), Err(libc::ENAMETOOLONG));
        assert_eq!(unix_connect(&long), Err(libc::ENAMETOOLONG));
        assert_eq!(unix_listen(c"", 1), Err(libc::ENOENT));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn bind_into_a_missing_directory_fails() {
        assert_eq!(
            unix_listen(c"/nonexistent-kmem-dir/x.sock", 1),
            Err(libc::ENOENT)
        );
    }
}
