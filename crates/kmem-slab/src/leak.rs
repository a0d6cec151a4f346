//! Leak reports: the objects still allocated, grouped by allocation site
//! with counts and bytes — what kmemleak tells a kernel developer.
//!
//! Sites are known for caches with user tracking (`SLAB_STORE_USER`, `U`
//! in `KMEM_DEBUG`, or `KMEM_LEAKS=1` for every cache); live objects of
//! other caches are counted under an unknown site. Everything is gathered
//! into a fixed table on the stack (no allocation), with the node lock held
//! only while one cache is walked, and written after every lock is released.

use core::fmt::{self, Write};

use crate::cache::CacheInner;
use crate::debug::{CallSite, for_each_live};
use crate::list::CACHES;

/// Distinct (cache, site) pairs a report lists; the rest are summed up.
const MAX_SITES: usize = 128;

#[derive(Clone, Copy)]
struct Row {
    cache: [u8; crate::NAME_MAX],
    cache_len: u8,
    site: CallSite,
    count: usize,
    bytes: usize,
}

/// Live objects grouped by (cache, allocation site).
pub(crate) struct LeakTable {
    rows: [Row; MAX_SITES],
    len: usize,
    /// Objects (and bytes) that did not fit the table.
    more_objs: usize,
    more_bytes: usize,
}

/// What a leak report found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeakSummary {
    /// Objects still allocated.
    pub objects: usize,
    /// Their bytes (object sizes as asked for).
    pub bytes: usize,
    /// Distinct (cache, allocation site) pairs.
    pub sites: usize,
}

impl LeakTable {
    pub(crate) fn new() -> LeakTable {
        LeakTable {
            rows: [Row {
                cache: [0; crate::NAME_MAX],
                cache_len: 0,
                site: CallSite::Unknown,
                count: 0,
                bytes: 0,
            }; MAX_SITES],
            len: 0,
            more_objs: 0,
            more_bytes: 0,
        }
    }

    /// Adds every live object of `c`.
    pub(crate) fn collect(&mut self, c: &CacheInner) {
        let name = c.name().as_bytes();
        let size = c.object_size as usize;
        let first = self.len;
        for_each_live(c, |site| {
            let rows = &mut self.rows[first..self.len];
            if let Some(r) = rows.iter_mut().find(|r| r.site == site) {
                r.count += 1;
                r.bytes += size;
            } else if self.len < MAX_SITES {
                let r = &mut self.rows[self.len];
                r.cache[..name.len()].copy_from_slice(name);
                r.cache_len = name.len() as u8;
                r.site = site;
                r.count = 1;
                r.bytes = size;
                self.len += 1;
            } else {
                self.more_objs += 1;
                self.more_bytes += size;
            }
        });
    }

    pub(crate) fn summary(&self) -> LeakSummary {
        let rows = &self.rows[..self.len];
        LeakSummary {
            objects: rows.iter().map(|r| r.count).sum::<usize>() + self.more_objs,
            bytes: rows.iter().map(|r| r.bytes).sum::<usize>() + self.more_bytes,
            sites: self.len,
        }
    }

    /// Writes one line per site, most objects first, then a summary line.
    /// `prefix` starts every line.
    pub(crate) fn write(&mut self, w: &mut dyn Write, prefix: &str) -> fmt::Result {
        let rows = &mut self.rows[..self.len];
        rows.sort_unstable_by(|a, b| b.count.cmp(&a.count).then(b.bytes.cmp(&a.bytes)));
        for r in rows.iter() {
            let cache = core::str::from_utf8(&r.cache[..r.cache_len as usize]).unwrap_or("?");
            let site: &dyn fmt::Display = match r.site {
                CallSite::Unknown => {
                    &"an unknown site (no user tracking: SLAB_STORE_USER / KMEM_LEAKS=1)"
                }
                ref s => s,
            };
            writeln!(
                w,
                "{prefix}{} object{} ({} bytes) of {cache} allocated at {site}",
                r.count,
                if r.count == 1 { "" } else { "s" },
                r.bytes
            )?;
        }
        if self.more_objs > 0 {
            writeln!(
                w,
                "{prefix}{} more objects ({} bytes) at other sites",
                self.more_objs, self.more_bytes
            )?;
        }
        let s = self.summary();
        writeln!(
            w,
            "{prefix}{} object{} ({} bytes) still allocated, from {} site{}",
            s.objects,
            if s.objects == 1 { "" } else { "s" },
            s.bytes,
            s.sites,
            if s.sites == 1 { "" } else { "s" }
        )
    }
}

/// Writes a leak report of every live cache to `w`: one line per (cache,
/// allocation site) with the count and bytes of objects still allocated,
/// most first, then a total. Returns what it found.
///
/// Objects a thread keeps in its per-thread array cache are free, not
/// leaked; only objects handed to a user and not freed are counted.
///
/// ```
/// use kmem_slab::{KmemCache, SlabFlags, debug};
/// let c = KmemCache::builder("doc_leaky", 40).debug(SlabFlags::STORE_USER).create()?;
/// let _leaked = c.alloc(kmem_page::Gfp::KERNEL)?;
/// let mut out = String::new();
/// let s = debug::leak_report(&mut out).unwrap();
/// assert!(s.objects >= 1);
/// assert!(out.contains("1 object (40 bytes) of doc_leaky allocated at"), "{out}");
/// # Ok::<(), kmem_slab::SlabError>(())
/// ```
pub fn leak_report(w: &mut dyn Write) -> Result<LeakSummary, fmt::Error> {
    let mut t = LeakTable::new();
    {
        let list = CACHES.lock();
        for c in list.iter() {
            t.collect(c);
        }
    }
    t.write(w, "")?;
    Ok(t.summary())
}

/// [`leak_report`] to stderr, each line a `kmem: leak: ` report (no
/// allocation: what the preload prints at exit with `KMEM_LEAKS=1`).
///
/// ```
/// let s = kmem_slab::debug::leak_report_stderr();
/// let _ = s.objects;
/// ```
pub fn leak_report_stderr() -> LeakSummary {
    let mut t = LeakTable::new();
    {
        let list = CACHES.lock();
        for c in list.iter() {
            t.collect(c);
        }
    }
    let _ = t.write(&mut ReportLines::new(), "leak: ");
    t.summary()
}

/// A `fmt::Write` that sends each line as one `kmem: ` report.
pub(crate) struct ReportLines {
    buf: kmem_platform::diag::StackBuf<512>,
}

impl ReportLines {
    pub(crate) fn new() -> Self {
        ReportLines {
            buf: kmem_platform::diag::StackBuf::new(),
        }
    }
}

impl Write for ReportLines {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find('\n') {
            let _ = self.buf.write_str(&rest[..i]);
            kmem_platform::kmem_report!("{}", self.buf.as_str());
            self.buf.clear();
            rest = &rest[i + 1..];
        }
        self.buf.write_str(rest)
    }
}

/// The leak part of `kmem_cache_destroy`'s report for a cache with live
/// objects: their allocation sites (with user tracking).
pub(crate) fn report_destroy(c: &CacheInner) {
    if !c.debug.flags.contains(crate::SlabFlags::STORE_USER) {
        return;
    }
    let mut t = LeakTable::new();
    t.collect(c);
    let mut prefix = kmem_platform::diag::StackBuf::<96>::new();
    let _ = write!(prefix, "kmem_cache_destroy({}): ", c.name());
    let _ = t.write(&mut ReportLines::new(), prefix.as_str());
}
