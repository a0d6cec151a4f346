//! `KMEM_STATS`: the program's caches, readable while it runs.
//!
//! With `KMEM_STATS` set, the constructor binds a Unix stream socket and
//! starts one detached thread (all signals blocked) that serves it:
//!
//! * `KMEM_STATS=PATH` — the socket is PATH (at most 107 bytes);
//! * `KMEM_STATS=1` — the default path `$XDG_RUNTIME_DIR/kmem-<pid>.sock`,
//!   or `/tmp/kmem-<pid>.sock` when `XDG_RUNTIME_DIR` is unset or relative
//!   (this is what `kmem run` sets, and what `kmem top --pid` looks for);
//! * unset, empty or `0` — no socket, no thread.
//!
//! Each connection gets one snapshot and is closed (the client sends
//! nothing). The snapshot is text, one record per line:
//!
//! ```text
//! kmem-stats 1
//! pid 4242
//! pages managed=8192 free=1000 allocated=7000 cached=192 huge=0 regions=2
//! kmalloc large_allocs=3 large_frees=1 large_bytes=16384 huge_allocs=0 huge_frees=0 huge_bytes=0 failures=0 bad_frees=0
//! slabinfo - version: 2.1
//! # name            <active_objs> <num_objs> …
//! kmalloc-64          1200   1280     64   64    1 : tunables  120   60    8 : slabdata     20     20      0
//! ```
//!
//! The first line names the format and its version; then `KEY VALUE` or
//! `SECTION k=v k=v…` lines (a reader skips sections it does not know); the
//! line `slabinfo - version: 2.1` starts `/proc/slabinfo`'s layout, which
//! runs to the end of the stream.
//!
//! The serving thread uses kmem itself: its snapshot buffer is a kmalloc
//! object, sized before any allocator lock is taken (the slabinfo rows are
//! formatted into it under the cache-list lock without allocating; if they
//! do not fit, the buffer is doubled and the snapshot taken again). A reader
//! that stops reading cannot stall the program: sends time out after a
//! second.
//!
//! If the program closes the listening descriptor itself (daemons that
//! close every descriptor they did not open), the thread notices by the
//! socket's inode before its next `accept` and ends; the socket file stays
//! until exit.
//!
//! Lifetime: the socket file is removed by the library's destructor when the
//! process that created it exits normally (a process killed by a signal
//! leaves it; the next process given the same path finds nobody listening
//! and takes it over). A `fork`ed child has no server: it closes its copy of
//! the listening socket and never removes the parent's file. A program
//! `exec`ed by a served process (the socket is close-on-exec) gets the
//! same `KMEM_STATS`: with `1` it serves its own `kmem-<pid>.sock`; with an
//! explicit PATH it finds the parent still listening there and runs
//! without a server, silently (the first process keeps the path).

use core::ffi::{CStr, c_void};
use core::fmt::{self, Write};
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use kmem_kmalloc as km;
use kmem_platform::diag::StackBuf;
use kmem_platform::{ipc, kmem_report, process};

/// The socket's path, NUL-terminated; written once by [`init`] before the
/// serving thread exists, read-only afterwards.
static mut PATH: [u8; ipc::MAX_SOCKET_PATH + 1] = [0; ipc::MAX_SOCKET_PATH + 1];
/// The listening socket, or -1 (no server in this process).
static LISTEN_FD: AtomicI32 = AtomicI32::new(-1);
/// The process that bound [`PATH`] and alone may remove it (0: none).
static OWNER_PID: AtomicI32 = AtomicI32::new(0);
/// The listening socket's inode, taken at bind: if the program closes
/// descriptors it does not know (`closefrom`) and the number comes back
/// as one of its own sockets, the thread must not accept on that.
static LISTEN_INODE: AtomicU64 = AtomicU64::new(0);

/// Snapshot buffers start this large and double up to [`MAX_SNAPSHOT`].
const FIRST_SNAPSHOT: usize = 16 << 10;
const MAX_SNAPSHOT: usize = 16 << 20;
/// How long one send may wait for a reader that does not read.
const SEND_TIMEOUT_MS: u64 = 1000;
/// The serving thread's stack (it formats with `core::fmt` only).
const STACK: usize = 128 << 10;

fn path() -> &'static CStr {
    // SAFETY: PATH is written only by `init`, before the serving thread
    // exists and before `fini`/`after_fork_child` can run.
    let p = unsafe { &*ptr::addr_of!(PATH) };
    CStr::from_bytes_until_nul(p).unwrap_or(c"")
}

fn path_str() -> &'static str {
    core::str::from_utf8(path().to_bytes()).unwrap_or("(not UTF-8)")
}

/// Reads `KMEM_STATS` and, if set, binds the socket and starts the serving
/// thread. Called by the library's constructor (no allocator lock held).
///
/// # Safety
///
/// Only from the constructor: no other thread of this library runs yet and
/// the environment does not change meanwhile.
pub(crate) unsafe fn init() {
    // SAFETY: the caller's promise.
    let (value, runtime_dir) = unsafe {
        (
            process::getenv(c"KMEM_STATS"),
            process::getenv(c"XDG_RUNTIME_DIR"),
        )
    };
    let Some(value) = value.filter(|v| !v.is_empty() && *v != b"0") else {
        return;
    };
    let mut buf = StackBuf::<{ ipc::MAX_SOCKET_PATH + 1 }>::new();
    if value == b"1" {
        let dir = match runtime_dir.map(core::str::from_utf8) {
            Some(Ok(d)) if d.starts_with('/') => d,
            _ => "/tmp",
        };
        let _ = write!(
            buf,
            "{}/kmem-{}.sock",
            dir.trim_end_matches('/'),
            ipc::getpid()
        );
    } else {
        let _ = buf.write_str(core::str::from_utf8(value).unwrap_or(""));
    }
    let bytes = buf.as_bytes();
    if bytes.is_empty() || bytes.len() > ipc::MAX_SOCKET_PATH || buf.truncated() {
        kmem_report!(
            "KMEM_STATS: the socket path must be valid UTF-8 of at most {} bytes; no stats server",
            ipc::MAX_SOCKET_PATH
        );
        return;
    }
    // SAFETY: the caller's promise: no other thread reads PATH yet.
    unsafe {
        let p = &mut *ptr::addr_of_mut!(PATH);
        p[..bytes.len()].copy_from_slice(bytes);
        p[bytes.len()] = 0;
    }
    let Some(fd) = claim(path()) else { return };
    LISTEN_INODE.store(
        ipc::file_identity(fd).map_or(0, |(_, ino)| ino),
        Ordering::Release,
    );
    LISTEN_FD.store(fd, Ordering::Release);
    OWNER_PID.store(ipc::getpid(), Ordering::Release);
    // SAFETY: `serve` ignores its argument.
    if let Err(e) = unsafe { ipc::spawn_detached(serve, ptr::null_mut(), STACK) } {
        kmem_report!(
            "KMEM_STATS: cannot start the stats thread (errno {e}); no stats server at {}",
            path_str()
        );
        stop();
    }
}

/// Binds `path`, taking over a socket file nobody listens on any more.
/// `None` (with a report, unless another live process holds the path).
fn claim(path: &CStr) -> Option<i32> {
    match ipc::unix_listen(path, 8) {
        Ok(fd) => return Some(fd),
        Err(libc::EADDRINUSE) if ipc::is_socket(path) => {}
        Err(e) => {
            kmem_report!(
                "KMEM_STATS: cannot listen on {} (errno {e}); no stats server",
                path_str()
            );
            return None;
        }
    }
    match ipc::unix_connect(path) {
        // A live server (the process that exec'ed us, or a sibling) keeps it.
        Ok(c) => {
            process::close_fd(c);
            None
        }
        Err(_) => {
            let _ = ipc::unlink(path);
            match ipc::unix_listen(path, 8) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    kmem_report!(
                        "KMEM_STATS: cannot listen on {} (errno {e}); no stats server",
                        path_str()
                    );
                    None
                }
            }
        }
    }
}

/// Removes the socket file (if this process made it) and wakes the serving
/// thread out of `accept` so it ends. Called by the library's destructor.
pub(crate) fn stop() {
    if OWNER_PID.load(Ordering::Acquire) == ipc::getpid() {
        OWNER_PID.store(0, Ordering::Release);
        let _ = ipc::unlink(path());
    }
    let fd = LISTEN_FD.swap(-1, Ordering::AcqRel);
    if fd >= 0 {
        // Not closed: the thread may be between `accept`s, and a closed
        // number could be reused under it. `shutdown` makes its next (or
        // current) accept fail with EINVAL; the descriptor goes with the process.
        ipc::shutdown(fd);
    }
}

/// In a `fork`ed child: no serving thread came along, so close the inherited
/// listener (connections keep going to the parent's thread). The parent
/// alone removes the socket file.
pub(crate) fn after_fork_child() {
    let fd = LISTEN_FD.swap(-1, Ordering::AcqRel);
    if fd >= 0 {
        process::close_fd(fd);
    }
}

/// The serving thread: one snapshot per connection, until [`stop`].
extern "C" fn serve(_: *mut c_void) -> *mut c_void {
    let mut snap = Snapshot::new();
    loop {
        let fd = LISTEN_FD.load(Ordering::Acquire);
        if fd < 0
            || ipc::file_identity(fd).map(|(_, ino)| ino)
                != Some(LISTEN_INODE.load(Ordering::Acquire))
        {
            // Stopped, or the program closed our descriptor behind our back.
            break;
        }
        match ipc::accept(fd) {
            Ok(c) => {
                let _ = ipc::set_send_timeout(c, SEND_TIMEOUT_MS);
                if snap.take() {
                    let _ = ipc::send_all(c, snap.as_bytes());
                } else {
                    let _ = ipc::send_all(c, b"kmem-stats 1\nerror out of memory\n");
                }
                process::close_fd(c);
            }
            // Shut down (or the descriptor is gone): end the thread.
            Err(libc::EINVAL) | Err(libc::EBADF) | Err(libc::ENOTSOCK) => break,
            // Out of descriptors or memory: wait a little and try again.
            Err(libc::EMFILE) | Err(libc::ENFILE) | Err(libc::ENOBUFS) | Err(libc::ENOMEM) => {
                kmem_platform::time::sleep_ns(100_000_000)
            }
            // A connection that went away before we took it, and the like.
            Err(_) => {}
        }
    }
    snap.release();
    ptr::null_mut()
}

/// A growable text buffer in one kmalloc object. Formatting into it never
/// allocates: text past its end sets `overflow` and is dropped.
struct Snapshot {
    buf: *mut u8,
    cap: usize,
    len: usize,
    overflow: bool,
}

impl Snapshot {
    const fn new() -> Self {
        Snapshot {
            buf: ptr::null_mut(),
            cap: 0,
            len: 0,
            overflow: false,
        }
    }

    /// Makes the buffer `cap` bytes; `false` if kmalloc cannot.
    fn reserve(&mut self, cap: usize) -> bool {
        self.release();
        match km::kmalloc(cap, kmem_page::Gfp::KERNEL) {
            Ok(p) => {
                self.buf = p.as_ptr();
                self.cap = cap;
                true
            }
            Err(_) => false,
        }
    }

    fn release(&mut self) {
        if !self.buf.is_null() {
            // SAFETY: `buf` came from kmalloc and is not used after this.
            let _ = unsafe { km::kfree(self.buf) };
            self.buf = ptr::null_mut();
            self.cap = 0;
        }
    }

    /// Takes a snapshot of the allocator; `false` if no buffer could hold it.
    fn take(&mut self) -> bool {
        if self.cap == 0 && !self.reserve(FIRST_SNAPSHOT) {
            return false;
        }
        loop {
            self.len = 0;
            self.overflow = false;
            let _ = write_snapshot(self);
            if !self.overflow {
                return true;
            }
            let next = self.cap * 2;
            if next > MAX_SNAPSHOT || !self.reserve(next) {
                return false;
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        if self.buf.is_null() {
            return &[];
        }
        // SAFETY: the first `len` bytes of `buf` were written by `write_str`.
        unsafe { core::slice::from_raw_parts(self.buf, self.len) }
    }
}

impl Write for Snapshot {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.len + s.len() > self.cap {
            self.overflow = true;
            return Err(fmt::Error);
        }
        // SAFETY: `buf` has `cap` bytes and `len + s.len() <= cap`.
        unsafe { ptr::copy_nonoverlapping(s.as_ptr(), self.buf.add(self.len), s.len()) };
        self.len += s.len();
        Ok(())
    }
}

/// Writes the snapshot described in the module docs.
fn write_snapshot(w: &mut dyn Write) -> fmt::Result {
    writeln!(w, "kmem-stats 1")?;
    writeln!(w, "pid {}", ipc::getpid())?;
    let p = kmem_page::global().stats();
    writeln!(
        w,
        "pages managed={} free={} allocated={} cached={} huge={} regions={}",
        p.managed_pages, p.free_pages, p.allocated_pages, p.cached_pages, p.huge_pages, p.regions
    )?;
    let k = km::stats();
    writeln!(
        w,
        "kmalloc large_allocs={} large_frees={} large_bytes={} huge_allocs={} huge_frees={} huge_bytes={} failures={} bad_frees={}",
        k.large_allocs,
        k.large_frees,
        k.large_bytes,
        k.huge_allocs,
        k.huge_frees,
        k.huge_bytes,
        k.failures,
        k.bad_frees
    )?;
    kmem_slab::write_slabinfo(w)
}
