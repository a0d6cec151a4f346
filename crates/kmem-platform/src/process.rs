//! Process-level OS calls a malloc replacement needs: the environment,
//! `fork` handlers, and creating a file to write a report into. None of them
//! allocates.

use core::ffi::CStr;

/// The value of environment variable `name`, without allocating (a view of the
/// process's environment; read it before the program can change it).
///
/// # Safety
///
/// No other thread may be changing the environment (`setenv`/`putenv`) while
/// the returned slice is in use.
///
/// ```
/// // SAFETY: this doctest changes no environment variable.
/// let unset = unsafe { kmem_platform::process::getenv(c"KMEM_DOC_SURELY_UNSET") };
/// assert!(unset.is_none());
/// ```
pub unsafe fn getenv(name: &CStr) -> Option<&'static [u8]> {
    #[cfg(unix)]
    {
        // SAFETY: `name` is NUL-terminated; getenv returns NULL or a
        // NUL-terminated string in the environment, which the caller promises
        // no one changes while the slice lives.
        unsafe {
            let p = libc::getenv(name.as_ptr());
            if p.is_null() {
                None
            } else {
                Some(CStr::from_ptr(p).to_bytes())
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = name;
        None
    }
}

/// Registers `fork` handlers (`pthread_atfork`): `prepare` runs in the parent
/// before the fork, `parent` and `child` after it in each process. Returns 0 or
/// an error number.
///
/// ```
/// unsafe extern "C" fn nothing() {}
/// assert_eq!(kmem_platform::process::at_fork(nothing, nothing, nothing), 0);
/// ```
pub fn at_fork(
    prepare: unsafe extern "C" fn(),
    parent: unsafe extern "C" fn(),
    child: unsafe extern "C" fn(),
) -> i32 {
    #[cfg(all(unix, not(miri)))]
    {
        // SAFETY: function pointers with the C signature pthread_atfork
        // expects; registering them touches no memory of ours.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) }
    }
    // Miri cannot fork (nor register fork handlers).
    #[cfg(any(not(unix), miri))]
    {
        let _ = (prepare, parent, child);
        0
    }
}

/// Creates (or truncates) the file at `path` for writing, close-on-exec, mode
/// 0644. Returns the descriptor, or `Err(errno)`.
///
/// ```
/// # #[cfg(not(miri))] { // Miri isolates the file system
/// let fd = kmem_platform::process::create_file(c"/tmp/kmem-doc-create-file").unwrap();
/// kmem_platform::diag::write_fd(fd, b"ok\n").unwrap();
/// kmem_platform::process::close_fd(fd);
/// # }
/// ```
pub fn create_file(path: &CStr) -> Result<i32, i32> {
    #[cfg(unix)]
    {
        // SAFETY: `path` is NUL-terminated.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                0o644 as libc::c_uint,
            )
        };
        if fd >= 0 {
            Ok(fd)
        } else {
            Err(crate::diag::errno())
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Err(38)
    }
}

/// Closes a descriptor from [`create_file`].
///
/// ```
/// # #[cfg(not(miri))] { // Miri isolates the file system
/// let fd = kmem_platform::process::create_file(c"/tmp/kmem-doc-close-fd").unwrap();
/// kmem_platform::process::close_fd(fd);
/// # }
/// ```
pub fn close_fd(fd: i32) {
    #[cfg(unix)]
    // SAFETY: closing a descriptor the caller owns touches no memory.
    unsafe {
        libc::close(fd);
    }
    #[cfg(not(unix))]
    let _ = fd;
}
