//! Debug checks: Linux's `slab_debug` for kmem caches.
//!
//! A cache becomes a **debug cache** when it is created with any of
//! [`SlabFlags::CONSISTENCY_CHECKS`] (F), [`SlabFlags::RED_ZONE`] (Z),
//! [`SlabFlags::POISON`] (P) or [`SlabFlags::STORE_USER`] (U) — by its own
//! flags ([`CacheBuilder::debug`](crate::CacheBuilder::debug), `kmem_cache_create`'s
//! `flags`), or by the global configuration: `KMEM_DEBUG` in the environment
//! (Linux's `slab_debug=` syntax, read when the first cache is created) or
//! [`set_global`] before the caches are created.
//!
//! ```text
//! KMEM_DEBUG=1                 every check on every cache
//! KMEM_DEBUG=FZPU              the same
//! KMEM_DEBUG=PZ,kmalloc-64     poison and red zones for kmalloc-64 only
//! KMEM_DEBUG=U,kmalloc-*,dentry   user tracking for every kmalloc cache and dentry
//! KMEM_DEBUG=-                 nothing (the default)
//! KMEM_LEAKS=1                 user tracking (U) on every cache, for leak reports
//! ```
//!
//! ## What the checks do
//!
//! * **P — poison.** A free object is filled with `0x6b` ([`POISON_FREE`]),
//!   its last byte `0xa5` ([`POISON_END`]); when it is handed out again the
//!   pattern is checked, so a write after free is reported ("Poison
//!   overwritten") and repaired. Caches with a constructor are not poisoned
//!   (their free objects keep their constructed state), as in SLUB.
//! * **Z — red zones.** A word (rounded up to the alignment) before each
//!   object and the bytes from its end to the next word boundary plus one
//!   more word after it hold `0xbb` ([`RED_INACTIVE`]) while the object is
//!   free and `0xcc` ([`RED_ACTIVE`]) while it is allocated. They are checked
//!   on every free (an overflow or underflow is reported and the red zone
//!   restored), on every allocation and by [`KmemCache::validate`](crate::KmemCache::validate).
//!   Objects of a power-of-two size above a page have no left red zone:
//!   they keep their natural alignment (kmalloc-8k promises it).
//! * **U — user tracking.** After the right red zone each object has two
//!   records (SLAB's `dbg_userword`, SLUB's `struct track`): the allocating
//!   and the freeing call site ([`CallSite`]: a Rust `#[track_caller]`
//!   location, or a C caller's return address), thread id and time. Every
//!   report names them, and leak reports group live objects by them.
//! * **F — consistency checks.** On every allocation and free the object's
//!   state byte is checked against its slab's freelist.
//!
//! Double free, free of a foreign or interior pointer and free into the
//! wrong cache are refused on every cache, debug or not (through the page
//! descriptors); on a debug cache the one-line report is followed by a
//! SLUB-style one naming the object, where the pointer points into it
//! (object, red zone, tracking data), and its allocation and free sites.
//!
//! ## Object layout of a debug cache
//!
//! ```text
//!  slot start                 object (aligned)               stride
//!  | red zone (Z) | object_size bytes | red zone (Z) | alloc track, free track (U) | pad |
//!    red_left                           to red_end      track_off
//! ```
//!
//! The offsets are computed once, when the cache is created ([`DebugLayout`]);
//! the slab's first object starts `red_left` bytes after its colour offset,
//! so every object keeps its alignment.
//!
//! ## Cost
//!
//! A debug cache has no per-thread array and no shared array (limit 0): its
//! fast-path lookups find no array and every allocation and free goes to the
//! slow path, where the checks run under the node lock. Caches without debug
//! flags are not touched at all: the checks add no instruction to their fast
//! paths. See `docs/BENCHMARKS.md` (`## debug checks`) for what each check
//! costs when it is on.
//!
//! ## Reports
//!
//! Reports go through [`kmem_platform::diag`]: formatted into a stack buffer
//! (no allocation), written to stderr after the node lock is released, one
//! `kmem: ` line each. A corrupted object is repaired (poison or red zone
//! restored) and the program keeps running.
//!
//! ```
//! use kmem_slab::{KmemCache, SlabFlags};
//! use kmem_page::Gfp;
//! let c = KmemCache::builder("doc_debug", 24).debug(SlabFlags::DEBUG_ALL).create()?;
//! let p = c.alloc(Gfp::KERNEL)?;
//! // SAFETY: one byte past a 24-byte object: a buffer overflow, on purpose.
//! unsafe { p.as_ptr().add(24).write(0) };
//! let (r, reports) = kmem_platform::diag::capture(|| unsafe { c.free(p) });
//! assert!(r.is_ok(), "the object is still freed");
//! assert!(reports[0].contains("BUG doc_debug: Right Redzone overwritten"));
//! assert_eq!(c.validate(), 0, "repaired");
//! # Ok::<(), kmem_slab::SlabError>(())
//! ```

use core::fmt::{self, Write};
use core::panic::Location;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU8, Ordering};

use kmem_page::{Gfp, PageKind};
use kmem_platform::diag::StackBuf;
use kmem_platform::kmem_report;

use crate::cache::CacheInner;
use crate::node::DestroyList;
use crate::slab::{OBJ_ALLOCATED, OBJ_FREE, Slab};
use crate::{SlabError, SlabFlags};

/// The byte a free object is filled with (Linux `POISON_FREE`).
pub const POISON_FREE: u8 = 0x6b;
/// The last byte of a poisoned object (Linux `POISON_END`).
pub const POISON_END: u8 = 0xa5;
/// Red zone of a free object (Linux `SLUB_RED_INACTIVE`).
pub const RED_INACTIVE: u8 = 0xbb;
/// Red zone of an allocated object (Linux `SLUB_RED_ACTIVE`).
pub const RED_ACTIVE: u8 = 0xcc;

const F: u32 = SlabFlags::CONSISTENCY_CHECKS.0;
const Z: u32 = SlabFlags::RED_ZONE.0;
const P: u32 = SlabFlags::POISON.0;
const U: u32 = SlabFlags::STORE_USER.0;
const WORD: usize = core::mem::size_of::<usize>();

// ---- call sites ------------------------------------------------------------

/// Where an object was allocated or freed.
///
/// ```
/// use kmem_slab::debug::CallSite;
/// let s = CallSite::Rust(core::panic::Location::caller());
/// assert!(s.to_string().contains("debug.rs") || s.to_string().contains(".rs:"));
/// assert_eq!(CallSite::Return(0x1234).to_string(), "0x1234");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallSite {
    /// Not recorded.
    Unknown,
    /// A Rust call site (`#[track_caller]`).
    Rust(&'static Location<'static>),
    /// The return address of a C caller (what `__builtin_return_address(0)`
    /// gives in the C entry point): resolve it with `addr2line -e PROGRAM`
    /// after subtracting the load address (`/proc/PID/maps`).
    Return(usize),
}

impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallSite::Unknown => f.write_str("?"),
            CallSite::Rust(l) => write!(f, "{}:{}:{}", l.file(), l.line(), l.column()),
            CallSite::Return(a) => write!(f, "{a:#x}"),
        }
    }
}

/// Whether the C entry points must record their caller ([`with_caller`]):
/// [`TRACK_UNKNOWN`] until the configuration is read (the first cache may be
/// created inside the first C call, and may track users), then
/// [`TRACK_OFF`], or [`TRACK_ON`] once a cache tracks users or the
/// configuration asks for it.
static TRACKING: AtomicU8 = AtomicU8::new(TRACK_UNKNOWN);
const TRACK_UNKNOWN: u8 = 0;
const TRACK_OFF: u8 = 1;
const TRACK_ON: u8 = 2;

#[cfg(feature = "std")]
std::thread_local! {
    /// The return address of the C entry point the calling thread is in
    /// (0: none; the Rust call site is used). Const-initialised, no destructor.
    static C_SITE: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Whether some cache records call sites (so C entry points should pass
/// theirs through [`with_caller`]).
///
/// ```
/// let _ = kmem_slab::debug::user_tracking_active();
/// ```
#[inline(always)]
pub fn user_tracking_active() -> bool {
    TRACKING.load(Ordering::Relaxed) != TRACK_OFF
}

/// Runs `f` with `ret` — a C caller's return address — as the call site any
/// allocation or free inside records (instead of the Rust location inside
/// kmem's C entry point). When no cache tracks users this is just `f()`:
/// one relaxed load.
///
/// ```
/// use kmem_slab::{KmemCache, SlabFlags, debug};
/// let c = KmemCache::builder("doc_with_caller", 32).debug(SlabFlags::STORE_USER).create()?;
/// let p = debug::with_caller(0x4242, || c.alloc(kmem_page::Gfp::KERNEL))?;
/// let mut s = String::new();
/// c.leak_report(&mut s).unwrap();
/// assert!(s.contains("allocated at 0x4242"), "{s}");
/// unsafe { c.free(p)? };
/// # Ok::<(), kmem_slab::SlabError>(())
/// ```
#[inline(always)]
pub fn with_caller<R>(ret: usize, f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "std")]
    if user_tracking_active() {
        return with_caller_slow(ret, f);
    }
    let _ = ret;
    f()
}

#[cfg(feature = "std")]
#[inline(never)]
fn with_caller_slow<R>(ret: usize, f: impl FnOnce() -> R) -> R {
    let prev = C_SITE.try_with(|c| c.replace(ret)).unwrap_or(0);
    let r = f();
    let _ = C_SITE.try_with(|c| c.set(prev));
    r
}

impl CallSite {
    /// The site to record for a call whose Rust location is `loc`: the C
    /// caller if inside [`with_caller`], else `loc`.
    fn current(loc: &'static Location<'static>) -> CallSite {
        #[cfg(feature = "std")]
        {
            let a = C_SITE.try_with(|c| c.get()).unwrap_or(0);
            if a != 0 {
                return CallSite::Return(a);
            }
        }
        CallSite::Rust(loc)
    }
}

/// The calling thread's kernel id, remembered per thread (`gettid` is a
/// system call). A child of `fork` keeps its parent's value in the thread
/// that forked: its records then name the parent's thread id.
fn current_tid() -> u64 {
    #[cfg(feature = "std")]
    {
        std::thread_local! {
            static TID: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
        }
        if let Ok(t) = TID.try_with(|t| {
            if t.get() == 0 {
                t.set(kmem_platform::cpu::thread_id());
            }
            t.get()
        }) {
            return t;
        }
    }
    kmem_platform::cpu::thread_id()
}

/// One user-tracking record (Linux `struct track`).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Track {
    /// The Rust call site, or null.
    loc: *const Location<'static>,
    /// The C return address, or 0.
    ret: usize,
    /// The thread's kernel id.
    tid: u64,
    /// When ([`kmem_platform::time::now_ns`]); 0: never written.
    ns: u64,
}

const TRACK_BYTES: usize = core::mem::size_of::<Track>();

impl Track {
    const EMPTY: Track = Track {
        loc: ptr::null(),
        ret: 0,
        tid: 0,
        ns: 0,
    };

    fn new(site: CallSite) -> Track {
        let (loc, ret) = match site {
            CallSite::Unknown => (ptr::null(), 0),
            CallSite::Rust(l) => (l as *const Location<'static>, 0),
            CallSite::Return(a) => (ptr::null(), a),
        };
        Track {
            loc,
            ret,
            tid: current_tid(),
            ns: kmem_platform::time::now_ns().max(1),
        }
    }

    pub(crate) fn site(&self) -> CallSite {
        if !self.loc.is_null() {
            // SAFETY: written from a `&'static Location` by `new`.
            CallSite::Rust(unsafe { &*self.loc })
        } else if self.ret != 0 {
            CallSite::Return(self.ret)
        } else {
            CallSite::Unknown
        }
    }
}

// ---- layout ----------------------------------------------------------------

/// Where the debug data of an object lies, relative to the object's address
/// (computed at cache creation; all zero for a cache without debug flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DebugLayout {
    /// The debug flags in force (`POISON` dropped for caches with a constructor).
    pub flags: SlabFlags,
    /// Bytes of red zone before the object: a word rounded up to the
    /// alignment (0 without Z).
    pub red_left: usize,
    /// The user's bytes.
    pub object_size: usize,
    /// End of the right red zone (`object_size..red_end`; equal to
    /// `object_size` without Z).
    pub red_end: usize,
    /// Offset of the two tracking records (alloc, free) with U.
    pub track_off: usize,
    /// Object stride: everything above, rounded up to the alignment.
    pub stride: usize,
}

impl DebugLayout {
    /// The layout of `object_size`-byte objects aligned to `align` (a power
    /// of two, at least a word) with the debug `flags`.
    ///
    /// ```
    /// use kmem_slab::{SlabFlags, debug::DebugLayout};
    /// let l = DebugLayout::compute(20, 8, SlabFlags::RED_ZONE | SlabFlags::STORE_USER);
    /// assert_eq!((l.red_left, l.red_end, l.track_off), (8, 32, 32));
    /// assert_eq!(l.stride, 8 + 32 + 64);
    /// let l = DebugLayout::compute(64, 64, SlabFlags::RED_ZONE);
    /// assert_eq!((l.red_left, l.stride), (64, 192)); // objects stay 64-aligned
    /// let l = DebugLayout::compute(8192, 4096, SlabFlags::DEBUG_ALL);
    /// assert_eq!((l.red_left, l.stride), (0, 16384)); // and 8 KiB objects 8 KiB-aligned
    /// ```
    pub fn compute(object_size: usize, align: usize, flags: SlabFlags) -> DebugLayout {
        let flags = flags.intersection(SlabFlags::DEBUG_ALL);
        let z = flags.contains(SlabFlags::RED_ZONE);
        let u = flags.contains(SlabFlags::STORE_USER);
        let align = align.max(WORD);
        // Objects of a power-of-two size above a page (kmalloc-8k) are
        // naturally aligned without debug (stride = size, blocks aligned to
        // their size) and kmalloc promises it: keep it with a stride that is
        // a multiple of the size and no left red zone (it would cost a whole
        // object).
        let natural = object_size.is_power_of_two() && object_size > kmem_platform::PAGE_SIZE;
        let red_left = if z && !natural {
            WORD.next_multiple_of(align)
        } else {
            0
        };
        let inuse = object_size.next_multiple_of(WORD);
        let red_end = if z { inuse + WORD } else { object_size };
        let track_off = if z { red_end } else { inuse };
        let end = track_off + if u { 2 * TRACK_BYTES } else { 0 };
        let stride = if natural && (z || u) {
            end.next_multiple_of(object_size)
        } else {
            (red_left + end).next_multiple_of(align)
        };
        DebugLayout {
            flags,
            red_left,
            object_size,
            red_end,
            track_off,
            stride,
        }
    }

    /// Whether any debug check is on.
    #[inline(always)]
    pub fn on(&self) -> bool {
        self.flags.0 != 0
    }

    #[inline(always)]
    fn has(&self, f: u32) -> bool {
        self.flags.0 & f != 0
    }
}

// ---- configuration ---------------------------------------------------------

/// The most bytes of cache names a [`DebugConfig`] keeps.
pub const CONFIG_NAMES_MAX: usize = 256;

/// Which debug checks apply to which caches: Linux's `slab_debug=` value.
///
/// ```
/// use kmem_slab::{SlabFlags, debug::DebugConfig};
/// let c = DebugConfig::parse("PZ,kmalloc-64,dentry").unwrap();
/// assert_eq!(c.flags_for("kmalloc-64"), SlabFlags::POISON | SlabFlags::RED_ZONE);
/// assert_eq!(c.flags_for("kmalloc-128"), SlabFlags::empty());
/// assert_eq!(DebugConfig::parse("1").unwrap().flags_for("x"), SlabFlags::DEBUG_ALL);
/// assert_eq!(DebugConfig::parse("U,kmalloc-*").unwrap().flags_for("kmalloc-8"), SlabFlags::STORE_USER);
/// assert!(DebugConfig::parse("FQ").is_err());
/// ```
#[derive(Clone, Copy)]
pub struct DebugConfig {
    flags: SlabFlags,
    /// Comma-separated cache names (a trailing `*` matches a prefix); empty: every cache.
    names: [u8; CONFIG_NAMES_MAX],
    names_len: usize,
}

/// Why a `KMEM_DEBUG` / [`DebugConfig::parse`] value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugParseError {
    /// A letter that is not one of F, Z, P, U, `-`.
    UnknownLetter(char),
    /// More cache names than [`CONFIG_NAMES_MAX`] bytes.
    TooLong,
}

impl fmt::Display for DebugParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DebugParseError::UnknownLetter(c) => write!(
                f,
                "unknown slab_debug letter {c:?} (F sanity, Z red zone, P poison, U user tracking, - none)"
            ),
            DebugParseError::TooLong => {
                write!(f, "cache names longer than {CONFIG_NAMES_MAX} bytes")
            }
        }
    }
}

impl DebugConfig {
    /// No checks (the default).
    pub const fn off() -> DebugConfig {
        DebugConfig {
            flags: SlabFlags(0),
            names: [0; CONFIG_NAMES_MAX],
            names_len: 0,
        }
    }

    /// `flags` (debug bits only) for every cache.
    ///
    /// ```
    /// use kmem_slab::{SlabFlags, debug::DebugConfig};
    /// let c = DebugConfig::new(SlabFlags::POISON | SlabFlags::HWCACHE_ALIGN);
    /// assert_eq!(c.flags_for("any"), SlabFlags::POISON);
    /// ```
    pub const fn new(flags: SlabFlags) -> DebugConfig {
        DebugConfig {
            flags: flags.intersection(SlabFlags::DEBUG_ALL),
            names: [0; CONFIG_NAMES_MAX],
            names_len: 0,
        }
    }

    /// Parses Linux's `slab_debug=` syntax: letters (`F`, `Z`, `P`, `U`, any
    /// case; none, or `1`, means all; `-` or `0` none), then optionally
    /// `,name,name...` (a trailing `*` matches a prefix) to limit them to
    /// those caches.
    pub fn parse(s: &str) -> Result<DebugConfig, DebugParseError> {
        let s = s.trim();
        let (letters, names) = match s.find(',') {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => (s, ""),
        };
        let mut flags = 0;
        let mut none = false;
        if letters == "1" {
            flags = SlabFlags::DEBUG_ALL.0;
        } else {
            for ch in letters.chars() {
                match ch.to_ascii_uppercase() {
                    'F' => flags |= F,
                    'Z' => flags |= Z,
                    'P' => flags |= P,
                    'U' => flags |= U,
                    '-' | '0' => none = true,
                    c => return Err(DebugParseError::UnknownLetter(c)),
                }
            }
            if flags == 0 && !none {
                flags = SlabFlags::DEBUG_ALL.0;
            }
        }
        if none {
            flags = 0;
        }
        let names = names.trim_matches(',');
        if names.len() > CONFIG_NAMES_MAX {
            return Err(DebugParseError::TooLong);
        }
        let mut c = DebugConfig::new(SlabFlags(flags));
        c.names[..names.len()].copy_from_slice(names.as_bytes());
        c.names_len = names.len();
        Ok(c)
    }

    /// The checks asked for (whichever caches they apply to).
    pub fn flags(&self) -> SlabFlags {
        self.flags
    }

    /// Whether the configuration names `cache` (or names no cache: all).
    ///
    /// ```
    /// let c = kmem_slab::debug::DebugConfig::parse("P,dentry").unwrap();
    /// assert!(c.applies_to("dentry") && !c.applies_to("dentry2"));
    /// ```
    pub fn applies_to(&self, cache: &str) -> bool {
        if self.names_len == 0 {
            return true;
        }
        let names = core::str::from_utf8(&self.names[..self.names_len]).unwrap_or("");
        names
            .split(',')
            .map(str::trim)
            .any(|n| match n.strip_suffix('*') {
                Some(prefix) => cache.starts_with(prefix),
                None => n == cache,
            })
    }

    /// The debug flags this configuration gives `cache`.
    pub fn flags_for(&self, cache: &str) -> SlabFlags {
        if self.applies_to(cache) {
            self.flags
        } else {
            SlabFlags::empty()
        }
    }
}

impl fmt::Debug for DebugConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DebugConfig")
            .field("flags", &self.flags)
            .field(
                "names",
                &core::str::from_utf8(&self.names[..self.names_len]).unwrap_or("?"),
            )
            .finish()
    }
}

struct Global {
    cfg: DebugConfig,
    /// `KMEM_LEAKS`: user tracking on every cache.
    leaks: bool,
    /// The environment was read, or a configuration was set explicitly.
    settled: bool,
}

static GLOBAL: kmem_platform::Mutex<Global> = kmem_platform::Mutex::new(Global {
    cfg: DebugConfig::off(),
    leaks: false,
    settled: false,
});

/// Sets the debug checks every cache created from now on gets (on top of
/// its own flags). Caches that exist already keep their layout. Overrides
/// `KMEM_DEBUG`.
///
/// ```
/// use kmem_slab::{KmemCache, SlabFlags, debug};
/// debug::set_global(debug::DebugConfig::parse("P,doc_set_global").unwrap());
/// let c = KmemCache::new("doc_set_global", 16, 0)?;
/// assert!(c.flags().contains(SlabFlags::POISON));
/// # Ok::<(), kmem_slab::SlabError>(())
/// ```
pub fn set_global(cfg: DebugConfig) {
    let mut g = GLOBAL.lock();
    g.cfg = cfg;
    g.settled = true;
    note_config(&g);
}

/// The global configuration (after reading `KMEM_DEBUG` if nothing was set).
///
/// ```
/// let _ = kmem_slab::debug::global();
/// ```
pub fn global() -> DebugConfig {
    let mut g = GLOBAL.lock();
    settle(&mut g);
    g.cfg
}

/// Turns user tracking on (or off) for every cache created from now on:
/// what `KMEM_LEAKS=1` does, so that leak reports can name sites.
///
/// ```
/// kmem_slab::debug::set_leak_tracking(false);
/// ```
pub fn set_leak_tracking(on: bool) {
    let mut g = GLOBAL.lock();
    settle(&mut g);
    g.leaks = on;
    note_config(&g);
}

/// Whether `KMEM_LEAKS` (or [`set_leak_tracking`]) asked for user tracking everywhere.
///
/// ```
/// let _ = kmem_slab::debug::leak_tracking();
/// ```
pub fn leak_tracking() -> bool {
    let mut g = GLOBAL.lock();
    settle(&mut g);
    g.leaks
}

/// Reads `KMEM_DEBUG` and `KMEM_LEAKS` now (no allocation), unless a
/// configuration was set already; later calls do nothing. Called when the
/// first cache is created, and by the preload's constructor. A value that
/// does not parse is reported and ignored.
///
/// ```
/// kmem_slab::debug::init_from_env();
/// ```
pub fn init_from_env() {
    let mut g = GLOBAL.lock();
    settle(&mut g);
}

fn settle(g: &mut Global) {
    if g.settled {
        return;
    }
    g.settled = true;
    #[cfg(feature = "std")]
    {
        // SAFETY: read once, before (or while) the first cache is created;
        // the values are parsed at once, not kept.
        let (dbg, leaks) = unsafe {
            (
                kmem_platform::process::getenv(c"KMEM_DEBUG"),
                kmem_platform::process::getenv(c"KMEM_LEAKS"),
            )
        };
        if let Some(v) = dbg {
            match core::str::from_utf8(v)
                .map_err(|_| DebugParseError::UnknownLetter('?'))
                .and_then(DebugConfig::parse)
            {
                Ok(c) => g.cfg = c,
                Err(e) => kmem_report!("KMEM_DEBUG: {e}; debug checks stay off"),
            }
        }
        if leaks.is_some_and(|v| !v.is_empty() && v != b"0") {
            g.leaks = true;
        }
    }
    note_config(g);
}

/// Sets [`TRACKING`] from the configuration (it never goes from on to off:
/// caches made earlier may track users).
fn note_config(g: &Global) {
    let want = if g.leaks || g.cfg.flags.contains(SlabFlags::STORE_USER) {
        TRACK_ON
    } else {
        TRACK_OFF
    };
    let _ = TRACKING.fetch_max(want, Ordering::Relaxed);
}

/// The debug flags the global configuration adds to a cache called `name`.
pub(crate) fn global_flags_for(name: &str) -> SlabFlags {
    let mut g = GLOBAL.lock();
    settle(&mut g);
    let mut f = g.cfg.flags_for(name);
    if g.leaks {
        f = f | SlabFlags::STORE_USER;
    }
    f
}

/// Notes that a cache with `flags` was created (turns on call-site capture
/// in the C entry points when it tracks users).
pub(crate) fn cache_created(flags: SlabFlags) {
    if flags.contains(SlabFlags::STORE_USER) {
        TRACKING.store(TRACK_ON, Ordering::Relaxed);
    }
}

// ---- reports ---------------------------------------------------------------

/// A multi-line report built in a stack buffer and written after every lock
/// is released (no allocation). The buffer is only initialised when the
/// first line is written: a check that finds nothing costs no 8 KiB memset.
pub(crate) struct Report {
    buf: Option<StackBuf<8192>>,
    /// `BUG` headers written.
    pub(crate) bugs: usize,
}

impl Report {
    pub(crate) fn new() -> Report {
        Report { buf: None, bugs: 0 }
    }

    pub(crate) fn line(&mut self, args: fmt::Arguments<'_>) {
        let buf = self.buf.get_or_insert_with(StackBuf::new);
        let _ = buf.write_fmt(args);
        let _ = buf.write_str("\n");
    }

    fn bug(&mut self, c: &CacheInner, what: fmt::Arguments<'_>) {
        self.bugs += 1;
        self.line(format_args!("BUG {}: {}", c.name(), what));
    }

    /// Writes every line as one report.
    pub(crate) fn emit(&self) {
        let Some(buf) = &self.buf else { return };
        for l in buf.as_str().lines() {
            kmem_report!("{l}");
        }
        if buf.truncated() {
            kmem_report!("(report truncated)");
        }
    }

    /// A hex dump of `len` bytes at `addr`, 16 per line, with their ASCII.
    ///
    /// # Safety
    /// The bytes are readable.
    unsafe fn dump(&mut self, label: &str, addr: usize, len: usize) {
        let mut off = 0;
        while off < len {
            let n = (len - off).min(16);
            let mut hex = StackBuf::<64>::new();
            let mut asc = StackBuf::<20>::new();
            for i in 0..n {
                // SAFETY: per the contract.
                let b = unsafe { *((addr + off + i) as *const u8) };
                let _ = write!(hex, "{b:02x} ");
                let _ = asc.write_char(if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                });
            }
            self.line(format_args!(
                "  {label:<8} {:#x}: {:<48} {}",
                addr + off,
                hex.as_str(),
                asc.as_str()
            ));
            off += n;
        }
    }
}

/// Bytes `[p, p + len)` that are not `pat`: the first and the last offset.
///
/// # Safety
/// The bytes are readable.
unsafe fn mismatch(p: usize, len: usize, pat: u8) -> Option<(usize, usize)> {
    // SAFETY: per the contract.
    let s = unsafe { core::slice::from_raw_parts(p as *const u8, len) };
    // The common case, nothing wrong, word by word with no early exit (the
    // compiler vectorises it); then byte by byte to find the bad range.
    let w = u64::from_ne_bytes([pat; 8]);
    let chunks = s.chunks_exact(8);
    let tail = chunks.remainder();
    let diff = chunks.fold(0u64, |acc, c| {
        acc | (u64::from_ne_bytes(c.try_into().expect("8 bytes")) ^ w)
    });
    if diff == 0 && tail.iter().all(|&b| b == pat) {
        return None;
    }
    let first = s.iter().position(|&b| b != pat)?;
    let last = s.iter().rposition(|&b| b != pat)?;
    Some((first, last))
}

/// Everything about one object of a debug cache.
struct ObjRef<'c> {
    c: &'c CacheInner,
    l: &'c DebugLayout,
    s: *mut Slab,
    idx: usize,
    obj: usize,
}

impl ObjRef<'_> {
    /// # Safety
    /// `s` is a live slab of `c` and `idx < num`.
    unsafe fn new(c: &CacheInner, s: *mut Slab, idx: usize) -> ObjRef<'_> {
        // SAFETY: per the contract.
        let obj = unsafe { (*s).s_mem } + idx * c.size as usize;
        ObjRef {
            c,
            l: &c.debug,
            s,
            idx,
            obj,
        }
    }

    fn track(&self, which: usize) -> Track {
        if !self.l.has(U) {
            return Track::EMPTY;
        }
        // SAFETY: with U the object has two 8-aligned records at `track_off`.
        unsafe { ptr::read((self.obj + self.l.track_off + which * TRACK_BYTES) as *const Track) }
    }

    fn set_track(&self, which: usize, site: CallSite) {
        if self.l.has(U) {
            let t = Track::new(site);
            // SAFETY: as in `track`; the object's debug data is ours (node lock held).
            unsafe {
                ptr::write(
                    (self.obj + self.l.track_off + which * TRACK_BYTES) as *mut Track,
                    t,
                )
            }
        }
    }

    fn state_name(&self) -> &'static str {
        // SAFETY: `idx < num` of a live slab.
        match unsafe { Slab::load_state(self.s, self.idx) } {
            OBJ_ALLOCATED => "allocated",
            _ => "free",
        }
    }

    /// The object, its allocation and free sites.
    fn describe(&self, rep: &mut Report) {
        // SAFETY: a live slab.
        let base = unsafe { (*self.s).base };
        rep.line(format_args!(
            "  object {:#x}: {} bytes, index {} of slab {:#x}, {}",
            self.obj,
            self.l.object_size,
            self.idx,
            base,
            self.state_name()
        ));
        if self.l.has(U) {
            let now = kmem_platform::time::now_ns();
            for (which, what) in [(0, "allocated"), (1, "freed")] {
                let t = self.track(which);
                if t.ns != 0 {
                    rep.line(format_args!(
                        "  {what} at {} (tid {}, {} us ago)",
                        t.site(),
                        t.tid,
                        now.saturating_sub(t.ns) / 1000
                    ));
                }
            }
        }
    }

    /// Hex dumps: the left red zone, the object bytes around `[from, to]`
    /// (offsets into the object), the right red zone.
    fn dump(&self, rep: &mut Report, from: usize, to: usize) {
        let l = self.l;
        // SAFETY: every range lies inside the object's slot.
        unsafe {
            if l.red_left > 0 {
                let n = l.red_left.min(16);
                rep.dump("Redzone", self.obj - n, n);
            }
            if l.object_size > 0 {
                let a = from.saturating_sub(16) & !15;
                let b = (to + 17)
                    .next_multiple_of(16)
                    .min(l.object_size)
                    .min(a + 128);
                if b > a {
                    rep.dump("Object", self.obj + a, b - a);
                }
            }
            if l.red_end > l.object_size {
                rep.dump(
                    "Redzone",
                    self.obj + l.object_size,
                    l.red_end - l.object_size,
                );
            }
        }
    }

    /// Checks both red zones against `pat`, reports and restores what differs.
    fn check_red_zones(&self, rep: &mut Report, pat: u8, when: &str) -> usize {
        let l = self.l;
        let mut bad = 0;
        let zones = [
            (
                self.obj - l.red_left,
                l.red_left,
                "Left Redzone overwritten (buffer underflow)",
            ),
            (
                self.obj + l.object_size,
                l.red_end - l.object_size,
                "Right Redzone overwritten (buffer overflow)",
            ),
        ];
        for (start, len, what) in zones {
            // SAFETY: the zone lies in the object's slot.
            let Some((a, b)) = (unsafe { mismatch(start, len, pat) }) else {
                continue;
            };
            bad += 1;
            // SAFETY: as above.
            let first = unsafe { *((start + a) as *const u8) };
            rep.bug(self.c, format_args!("{what}"));
            rep.line(format_args!(
                "  {:#x}-{:#x} @offset={}: first byte {first:#04x} instead of {pat:#04x} ({when})",
                start + a,
                start + b,
                (start + a) as isize - self.obj as isize
            ));
            self.describe(rep);
            let (f, t) = if start < self.obj {
                (0, 0)
            } else {
                (l.object_size.saturating_sub(16), l.object_size)
            };
            self.dump(rep, f, t);
            // SAFETY: as above; the object's debug data is ours.
            unsafe { ptr::write_bytes(start as *mut u8, pat, len) };
            rep.line(format_args!(
                "FIX {}: restored Redzone {:#x}-{:#x}={pat:#04x}",
                self.c.name(),
                start,
                start + len - 1
            ));
        }
        bad
    }

    fn set_red_zones(&self, pat: u8) {
        let l = self.l;
        // SAFETY: both zones lie in the object's slot, which is ours.
        unsafe {
            ptr::write_bytes((self.obj - l.red_left) as *mut u8, pat, l.red_left);
            ptr::write_bytes(
                (self.obj + l.object_size) as *mut u8,
                pat,
                l.red_end - l.object_size,
            );
        }
    }

    fn poison(&self) {
        poison(self.obj, self.l.object_size);
    }

    /// Checks the poison of a free object, reports and restores it.
    fn check_poison(&self, rep: &mut Report, when: &str) -> usize {
        let n = self.l.object_size;
        if n == 0 {
            return 0;
        }
        // SAFETY: the object's bytes are readable.
        let body = unsafe { mismatch(self.obj, n - 1, POISON_FREE) };
        // SAFETY: as above.
        let end_ok = unsafe { *((self.obj + n - 1) as *const u8) } == POISON_END;
        let (a, b) = match (body, end_ok) {
            (None, true) => return 0,
            (Some((a, b)), true) => (a, b),
            (Some((a, _)), false) => (a, n - 1),
            (None, false) => (n - 1, n - 1),
        };
        // SAFETY: as above.
        let first = unsafe { *((self.obj + a) as *const u8) };
        let want = if a == n - 1 { POISON_END } else { POISON_FREE };
        rep.bug(
            self.c,
            format_args!("Poison overwritten (use after free: the object was written while free)"),
        );
        rep.line(format_args!(
            "  {:#x}-{:#x} @offset={a}: first byte {first:#04x} instead of {want:#04x} ({when})",
            self.obj + a,
            self.obj + b
        ));
        self.describe(rep);
        self.dump(rep, a, b);
        self.poison();
        rep.line(format_args!(
            "FIX {}: restored Poison {:#x}-{:#x}={POISON_FREE:#04x}",
            self.c.name(),
            self.obj,
            self.obj + n - 1
        ));
        1
    }
}

fn poison(obj: usize, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: callers pass an object of theirs.
    unsafe {
        ptr::write_bytes(obj as *mut u8, POISON_FREE, n - 1);
        *((obj + n - 1) as *mut u8) = POISON_END;
    }
}

// ---- hooks -----------------------------------------------------------------

/// A new slab's objects: inactive red zones, poison, empty tracks.
///
/// # Safety
/// `s_mem` is the first object of a fresh slab of `c`, seen by no one else.
pub(crate) unsafe fn init_slab(c: &CacheInner, s_mem: usize) {
    let l = &c.debug;
    for i in 0..c.num as usize {
        let obj = s_mem + i * c.size as usize;
        // SAFETY: per the contract, every slot is ours.
        unsafe {
            if l.has(Z) {
                ptr::write_bytes((obj - l.red_left) as *mut u8, RED_INACTIVE, l.red_left);
                ptr::write_bytes(
                    (obj + l.object_size) as *mut u8,
                    RED_INACTIVE,
                    l.red_end - l.object_size,
                );
            }
            if l.has(U) {
                let t = (obj + l.track_off) as *mut Track;
                t.write(Track::EMPTY);
                t.add(1).write(Track::EMPTY);
            }
        }
        if l.has(P) {
            poison(obj, l.object_size);
        }
    }
}

/// Allocation from a debug cache (from `alloc_slow`): an object straight
/// from the slabs, checked (state, red zones, poison), its red zones
/// activated and its allocation recorded — under the node lock.
#[cold]
#[inline(never)]
pub(crate) fn alloc(
    c: &CacheInner,
    gfp: Gfp,
    loc: &'static Location<'static>,
) -> Result<NonNull<u8>, SlabError> {
    let site = CallSite::current(loc);
    loop {
        let mut rep = Report::new();
        let got = {
            let mut n = c.node.lists.lock();
            c.take_one_locked(&mut n).map(|(s, idx)| {
                // SAFETY: `s` is a live slab of `c`, `idx` just taken from it.
                let o = unsafe { ObjRef::new(c, s, idx) };
                // SAFETY: as above.
                let st = unsafe { &*Slab::state(s, idx) };
                if o.l.has(F) && st.load(Ordering::Relaxed) != OBJ_FREE {
                    rep.bug(
                        c,
                        format_args!(
                            "an object on its slab's freelist is marked allocated (freelist corrupted)"
                        ),
                    );
                    o.describe(&mut rep);
                }
                st.store(OBJ_ALLOCATED, Ordering::Relaxed);
                if o.l.has(Z) {
                    o.check_red_zones(&mut rep, RED_INACTIVE, "found on allocation");
                    o.set_red_zones(RED_ACTIVE);
                }
                if o.l.has(P) {
                    o.check_poison(&mut rep, "found on allocation");
                }
                o.set_track(0, site);
                o.obj as *mut u8
            })
        };
        rep.emit();
        match got {
            Some(p) => {
                if gfp.zero() {
                    // SAFETY: a fresh object of `object_size` bytes, ours.
                    unsafe { ptr::write_bytes(p, 0, c.object_size as usize) };
                }
                // SAFETY: objects are never at address 0.
                return Ok(unsafe { NonNull::new_unchecked(p) });
            }
            None => {
                if let Err(e) = c.grow(gfp) {
                    c.count_error();
                    if !gfp.nowarn() {
                        kmem_report!(
                            "kmem_cache_alloc({}): out of memory (order {})",
                            c.name(),
                            c.order
                        );
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// Free into a debug cache (from `free_slow`): the cheap pointer checks,
/// then — under the node lock — the red zones (reported and restored if
/// overwritten), the free recorded, the object poisoned and returned to its
/// slab. A refused pointer gets a detailed report.
#[cold]
#[inline(never)]
pub(crate) fn free(
    c: &CacheInner,
    addr: usize,
    loc: &'static Location<'static>,
) -> Result<(), SlabError> {
    let site = CallSite::current(loc);
    let (e, s) = match c.check_free_slab(addr) {
        Ok(x) => x,
        Err(err) => {
            explain_bad_free(c, addr, err, site);
            return Err(err);
        }
    };
    let s = s as *mut Slab;
    let mut rep = Report::new();
    let mut destroy = DestroyList::new();
    let mut ok = true;
    {
        let mut n = c.node.lists.lock();
        // SAFETY: checked above: `addr` is object `idx` of the live slab `s`.
        let o = unsafe { ObjRef::new(c, s, c.index_in((*s).s_mem, addr)) };
        // SAFETY: a live slab of `c`; the node lock is held.
        if o.l.has(F) && unsafe { Slab::is_on_freelist(s, o.idx) } {
            rep.bug(
                c,
                format_args!("{addr:#x} is already on its slab's freelist (double free)"),
            );
            o.describe(&mut rep);
            rep.line(format_args!("  freed again at {site}"));
            ok = false;
        }
        if ok {
            // Recorded first, so a report names this free.
            o.set_track(1, site);
            if o.l.has(Z) {
                o.check_red_zones(&mut rep, RED_ACTIVE, "found on free");
                o.set_red_zones(RED_INACTIVE);
            }
            if o.l.has(P) {
                o.poison();
            }
            n.stats.folded[3] += 1; // a free miss: no array
            // SAFETY: `e` is an allocated object of `c`, marked free by the
            // check, held by no one now; the node lock is held.
            unsafe { c.free_block(&mut n, &[e], &mut destroy) };
        }
    }
    rep.emit();
    destroy.run();
    if ok {
        Ok(())
    } else {
        Err(SlabError::NotAllocated { addr })
    }
}

/// The detail a debug cache adds to a refused free: what the pointer points
/// at, and the sites of the object involved.
#[cold]
fn explain_bad_free(c: &CacheInner, addr: usize, err: SlabError, site: CallSite) {
    let mut rep = Report::new();
    let b = kmem_page::lookup_block(addr);
    match err {
        SlabError::NotKmem { .. } => {
            rep.bug(
                c,
                format_args!("free of {addr:#x}: not memory kmem manages (invalid pointer)"),
            );
        }
        SlabError::WrongCache { .. } => {
            let other = b.filter(|b| b.desc.kind() == PageKind::Slab && b.desc.owner() != 0);
            match other {
                Some(b) => {
                    // SAFETY: a slab page's owner word is its live cache.
                    let oc = unsafe { &*(b.desc.owner() as *const CacheInner) };
                    rep.bug(
                        c,
                        format_args!(
                            "free of {addr:#x} into the wrong cache: it belongs to {}",
                            oc.name()
                        ),
                    );
                    describe_addr(oc, addr, b.desc.private() as *mut Slab, &mut rep);
                }
                None => rep.bug(
                    c,
                    format_args!(
                        "free of {addr:#x}: not a slab object ({} pages; invalid pointer)",
                        b.map_or("no", |b| b.desc.kind().name())
                    ),
                ),
            }
        }
        SlabError::Interior { .. } => {
            rep.bug(
                c,
                format_args!("free of {addr:#x}: not the start of an object (interior pointer)"),
            );
            if let Some(b) = b {
                describe_addr(c, addr, b.desc.private() as *mut Slab, &mut rep);
            }
        }
        SlabError::NotAllocated { .. } => {
            rep.bug(
                c,
                format_args!("double free of {addr:#x} (the object is free)"),
            );
            let s = b.map_or(ptr::null_mut(), |b| b.desc.private() as *mut Slab);
            if !s.is_null() {
                // SAFETY: the check found `addr` to be object `idx` of the
                // live slab `s` (only its state was wrong).
                let o = unsafe { ObjRef::new(c, s, c.index_in((*s).s_mem, addr)) };
                o.describe(&mut rep);
            }
        }
        _ => return,
    }
    rep.line(format_args!("  bad free at {site}"));
    rep.emit();
}

/// Where `addr` lies in a slab `s` of `c`: which object, and which part of
/// its slot (left red zone, the object, right red zone, tracking data).
fn describe_addr(c: &CacheInner, addr: usize, s: *mut Slab, rep: &mut Report) {
    if s.is_null() {
        return;
    }
    let l = &c.debug;
    // SAFETY: the page descriptor of a slab of a live cache names its live slab.
    let s_mem = unsafe { (*s).s_mem };
    let first_slot = s_mem - l.red_left;
    if addr < first_slot || addr - first_slot >= c.num as usize * c.size as usize {
        rep.line(format_args!(
            "  {addr:#x} is in a slab of {} but outside its objects",
            c.name()
        ));
        return;
    }
    let idx = (addr - first_slot) / c.size as usize;
    // SAFETY: `idx < num` of a live slab.
    let o = unsafe { ObjRef::new(c, s, idx) };
    let off = addr as isize - o.obj as isize;
    let part = if off < 0 {
        "in the left red zone of"
    } else if (off as usize) < l.object_size {
        "inside"
    } else if (off as usize) < l.red_end {
        "in the right red zone of"
    } else if l.has(U) && (off as usize) < l.track_off + 2 * TRACK_BYTES {
        "in the tracking data of"
    } else {
        "in the padding after"
    };
    rep.line(format_args!(
        "  {addr:#x} is {} bytes {part} the object at {:#x}",
        off.unsigned_abs(),
        o.obj
    ));
    o.describe(rep);
}

/// Walks every slab of a debug cache and checks every object: free objects
/// on a freelist have inactive red zones and intact poison, allocated ones
/// active red zones. Reports and repairs each corruption; returns how many
/// were found (plus 1 for a list inconsistency, on any cache).
pub(crate) fn validate(c: &CacheInner) -> usize {
    let mut found = 0;
    if let Err(e) = c.check() {
        let mut rep = Report::new();
        rep.bug(c, format_args!("slab lists inconsistent: {e}"));
        rep.emit();
        found += 1;
    }
    let l = &c.debug;
    if !l.has(Z) && !l.has(P) {
        return found;
    }
    let num = c.num as usize;
    let n = c.node.lists.lock();
    for list in [&n.full, &n.partial, &n.free] {
        let mut s = list.head;
        while !s.is_null() {
            // Which objects are on the freelist (processed frees); objects
            // marked free but not on it are being freed right now: skipped.
            let mut on_fl = [0u64; crate::SLAB_OBJ_MAX_NUM.div_ceil(64)];
            // SAFETY: a listed slab; the node lock is held.
            unsafe {
                let fl = Slab::freelist(s);
                for k in (*s).active as usize..num {
                    let i = *fl.add(k) as usize;
                    on_fl[i / 64] |= 1 << (i % 64);
                }
            }
            for idx in 0..num {
                let mut rep = Report::new();
                // SAFETY: `idx < num` of a listed slab.
                let o = unsafe { ObjRef::new(c, s, idx) };
                let free = on_fl[idx / 64] & (1 << (idx % 64)) != 0;
                // SAFETY: as above.
                let st = unsafe { Slab::load_state(s, idx) };
                if free {
                    if l.has(Z) {
                        found += o.check_red_zones(&mut rep, RED_INACTIVE, "found by validate");
                    }
                    if l.has(P) {
                        found += o.check_poison(&mut rep, "found by validate");
                    }
                } else if st == OBJ_ALLOCATED && l.has(Z) {
                    found += o.check_red_zones(&mut rep, RED_ACTIVE, "found by validate");
                }
                if rep.bugs > 0 {
                    rep.emit();
                }
            }
            // SAFETY: a listed slab.
            s = unsafe { (*s).next };
        }
    }
    found
}

/// The allocation site of every allocated object of `c` (for leak reports):
/// calls `f(site)` for each, under the node lock.
pub(crate) fn for_each_live(c: &CacheInner, mut f: impl FnMut(CallSite)) {
    let n = c.node.lists.lock();
    for list in [&n.full, &n.partial] {
        let mut s = list.head;
        while !s.is_null() {
            for idx in 0..c.num as usize {
                // SAFETY: `idx < num` of a listed slab; the lock is held.
                if unsafe { Slab::load_state(s, idx) } == OBJ_ALLOCATED {
                    // SAFETY: as above.
                    let o = unsafe { ObjRef::new(c, s, idx) };
                    let t = o.track(0);
                    f(if t.ns != 0 {
                        t.site()
                    } else {
                        CallSite::Unknown
                    });
                }
            }
            // SAFETY: a listed slab.
            s = unsafe { (*s).next };
        }
    }
}

pub use crate::leak::{LeakSummary, leak_report, leak_report_stderr};
