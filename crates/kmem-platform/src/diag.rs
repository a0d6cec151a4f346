//! Diagnostics without allocating: formatting into a stack buffer and writing
//! to a file descriptor.
//!
//! Every layer reports bad input through [`report`] (usually via the
//! [`kmem_report!`](crate::kmem_report) macro). A report is one line on stderr,
//! prefixed `kmem: `. It never allocates, so it is safe inside `malloc`.
//! Tests can [`capture`] the reports made by the current thread instead.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

/// A fixed-size buffer that implements [`fmt::Write`]; output past its end is
/// dropped (and [`truncated`](StackBuf::truncated) says so).
///
/// ```
/// use core::fmt::Write;
/// let mut b = kmem_platform::diag::StackBuf::<8>::new();
/// write!(b, "{}", 1234567890).unwrap();
/// assert_eq!(b.as_str(), "12345678");
/// assert!(b.truncated());
/// ```
pub struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> StackBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
            truncated: false,
        }
    }
    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    /// The text written so far (cut at a character boundary if truncated).
    pub fn as_str(&self) -> &str {
        match core::str::from_utf8(self.as_bytes()) {
            Ok(s) => s,
            // SAFETY: `valid_up_to` is the length of the longest valid UTF-8 prefix.
            Err(e) => unsafe { core::str::from_utf8_unchecked(&self.buf[..e.valid_up_to()]) },
        }
    }
    /// Whether some output did not fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }
}

impl<const N: usize> Default for StackBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            self.truncated = true;
        }
        Ok(())
    }
}

/// Writes all of `bytes` to file descriptor `fd`, retrying on `EINTR` and short
/// writes. Returns `Err(errno)` on failure.
///
/// ```
/// kmem_platform::diag::write_fd(1, b"").unwrap();
/// ```
pub fn write_fd(fd: i32, mut bytes: &[u8]) -> Result<(), i32> {
    #[cfg(unix)]
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for reads of its length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        bytes = &bytes[n as usize..];
    }
    #[cfg(not(unix))]
    let _ = (fd, &mut bytes);
    Ok(())
}

/// The calling thread's `errno`.
///
/// ```
/// let _ = kmem_platform::diag::errno();
/// ```
pub fn errno() -> i32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: __errno_location always returns the thread's errno slot.
        unsafe { *libc::__errno_location() }
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// Sets the calling thread's `errno` (the malloc family reports `ENOMEM` so).
///
/// ```
/// kmem_platform::diag::set_errno(12);
/// assert_eq!(kmem_platform::diag::errno(), 12);
/// ```
pub fn set_errno(e: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: __errno_location always returns the thread's errno slot.
    unsafe {
        *libc::__errno_location() = e
    };
    #[cfg(not(target_os = "linux"))]
    let _ = e;
}

static REPORTS: AtomicUsize = AtomicUsize::new(0);
/// How many [`capture`]s are active (in any thread); reports consult the
/// thread-local buffer only while this is non-zero.
#[cfg(feature = "std")]
static CAPTURING: AtomicUsize = AtomicUsize::new(0);

/// How many reports this process has made.
///
/// ```
/// let before = kmem_platform::diag::report_count();
/// kmem_platform::diag::capture(|| kmem_platform::kmem_report!("x"));
/// assert!(kmem_platform::diag::report_count() > before);
/// ```
pub fn report_count() -> usize {
    REPORTS.load(Ordering::Relaxed)
}

/// Reports a problem: one line, `kmem: ` then the message, on stderr (or into
/// the current thread's [`capture`]). Never allocates unless capturing.
///
/// ```
/// kmem_platform::diag::report(format_args!("free_pages: {:#x} is not a page kmem handed out", 0x1234));
/// ```
#[cold]
pub fn report(args: fmt::Arguments<'_>) {
    REPORTS.fetch_add(1, Ordering::Relaxed);
    let mut b = StackBuf::<1024>::new();
    let _ = b.write_str("kmem: ");
    let _ = b.write_fmt(args);
    #[cfg(feature = "std")]
    if CAPTURING.load(Ordering::Relaxed) > 0 && capture_imp::push(b.as_str()) {
        return;
    }
    let _ = b.write_str("\n");
    let _ = write_fd(2, b.as_bytes());
}

/// Formats and [`report`]s a problem: `kmem_report!("kmem_cache_free({}): {:p} is not an object", name, p)`.
#[macro_export]
macro_rules! kmem_report {
    ($($arg:tt)*) => { $crate::diag::report(format_args!($($arg)*)) };
}

/// Runs `f` and returns what it returned together with the reports the current
/// thread made meanwhile (each without the `kmem: ` prefix's newline). Reports
/// from other threads still go to stderr.
///
/// ```
/// let ((), reports) = kmem_platform::diag::capture(|| kmem_platform::kmem_report!("bad {}", 1));
/// assert_eq!(reports, ["kmem: bad 1"]);
/// ```
#[cfg(feature = "std")]
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, std::vec::Vec<std::string::String>) {
    CAPTURING.fetch_add(1, Ordering::SeqCst);
    let outer = capture_imp::begin();
    let r = f();
    let got = capture_imp::end(outer);
    CAPTURING.fetch_sub(1, Ordering::SeqCst);
    (r, got)
}

#[cfg(feature = "std")]
mod capture_imp {
    use std::cell::RefCell;
    use std::string::{String, ToString};
    use std::vec::Vec;

    std::thread_local! {
        static BUF: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }

    pub(super) fn begin() -> Option<Vec<String>> {
        BUF.with(|b| b.borrow_mut().replace(Vec::new()))
    }

    pub(super) fn end(outer: Option<Vec<String>>) -> Vec<String> {
        BUF.with(|b| core::mem::replace(&mut *b.borrow_mut(), outer))
            .unwrap_or_default()
    }

    pub(super) fn push(line: &str) -> bool {
        BUF.try_with(|b| match b.try_borrow_mut() {
            Ok(mut g) => match g.as_mut() {
                Some(v) => {
                    v.push(line.to_string());
                    true
                }
                None => false,
            },
            Err(_) => false,
        })
        .unwrap_or(false)
    }
}
