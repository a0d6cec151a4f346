//! `/proc/slabinfo`, version 2.1: the two header lines exactly as Linux
//! prints them, then one row per cache, newest first, in Linux's layout.

use core::fmt::{self, Write};

use crate::cache::CacheInner;
use crate::list::CACHES;

/// The first header line.
pub const SLABINFO_HEADER_1: &str = "slabinfo - version: 2.1";
/// The second header line.
pub const SLABINFO_HEADER_2: &str = "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>";

/// One cache's slabinfo row (Linux `struct slabinfo`).
///
/// ```
/// let c = kmem_slab::KmemCache::new("row", 64, 0).unwrap();
/// let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
/// let i = c.info();
/// assert_eq!((i.objsize, i.objperslab, i.pagesperslab), (64, 64, 1));
/// assert_eq!(i.num_slabs, 1);
/// assert!(i.active_objs >= 1);
/// unsafe { c.free(p).unwrap() };
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlabInfo {
    /// Objects not free in a slab: held by users, per-thread arrays or the shared array.
    pub active_objs: usize,
    /// Objects in all slabs.
    pub num_objs: usize,
    /// Object stride.
    pub objsize: usize,
    /// Objects per slab.
    pub objperslab: usize,
    /// Pages per slab.
    pub pagesperslab: usize,
    /// Per-thread array capacity.
    pub limit: u32,
    /// Refill / flush batch.
    pub batchcount: u32,
    /// Shared array factor.
    pub sharedfactor: u32,
    /// Slabs with at least one object taken.
    pub active_slabs: usize,
    /// All slabs.
    pub num_slabs: usize,
    /// Objects in the shared array.
    pub sharedavail: usize,
}

pub(crate) fn slabinfo_of(c: &CacheInner) -> SlabInfo {
    let n = c.node.lists.lock();
    let num = c.num as usize;
    let sharedavail = if n.shared.is_null() {
        0
    } else {
        // SAFETY: the shared array is read under the node lock.
        unsafe { (*n.shared).avail as usize }
    };
    SlabInfo {
        active_objs: n.total_slabs * num - n.free_objects,
        num_objs: n.total_slabs * num,
        objsize: c.size as usize,
        objperslab: num,
        pagesperslab: 1 << c.order,
        limit: c.limit,
        batchcount: c.batchcount,
        sharedfactor: c.shared,
        active_slabs: n.total_slabs - n.free_slabs(),
        num_slabs: n.total_slabs,
        sharedavail,
    }
}

/// Writes one row in Linux's `cache_show` layout.
///
/// ```
/// let mut s = String::new();
/// kmem_slab::write_slabinfo_row(&mut s, "x", &kmem_slab::SlabInfo::default()).unwrap();
/// assert_eq!(s, "x                      0      0      0    0    0 : tunables    0    0    0 : slabdata      0      0      0\n");
/// ```
pub fn write_slabinfo_row(w: &mut dyn Write, name: &str, i: &SlabInfo) -> fmt::Result {
    writeln!(
        w,
        "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
        name,
        i.active_objs,
        i.num_objs,
        i.objsize,
        i.objperslab,
        i.pagesperslab,
        i.limit,
        i.batchcount,
        i.sharedfactor,
        i.active_slabs,
        i.num_slabs,
        i.sharedavail
    )
}

/// Writes `/proc/slabinfo` (version 2.1) for every live cache.
///
/// ```
/// let _c = kmem_slab::KmemCache::new("slabinfo_doc", 100, 0).unwrap();
/// let mut s = String::new();
/// kmem_slab::write_slabinfo(&mut s).unwrap();
/// assert!(s.starts_with("slabinfo - version: 2.1\n# name "));
/// assert!(s.lines().any(|l| l.starts_with("slabinfo_doc ")));
/// ```
pub fn write_slabinfo(w: &mut dyn Write) -> fmt::Result {
    writeln!(w, "{SLABINFO_HEADER_1}")?;
    writeln!(w, "{SLABINFO_HEADER_2}")?;
    let list = CACHES.lock();
    for c in list.iter() {
        write_slabinfo_row(w, c.name(), &slabinfo_of(c))?;
    }
    Ok(())
}

/// Writes `/proc/slabinfo` to a file descriptor without allocating (line by
/// line through a stack buffer). Returns `Err(errno)` if writing failed.
///
/// ```
/// kmem_slab::slabinfo_write_fd(1).unwrap();
/// ```
pub fn slabinfo_write_fd(fd: i32) -> Result<(), i32> {
    use kmem_platform::diag::{StackBuf, write_fd};
    let mut b = StackBuf::<512>::new();
    let _ = writeln!(b, "{SLABINFO_HEADER_1}");
    let _ = writeln!(b, "{SLABINFO_HEADER_2}");
    write_fd(fd, b.as_bytes())?;
    let list = CACHES.lock();
    for c in list.iter() {
        b.clear();
        let _ = write_slabinfo_row(&mut b, c.name(), &slabinfo_of(c));
        write_fd(fd, b.as_bytes())?;
    }
    Ok(())
}
