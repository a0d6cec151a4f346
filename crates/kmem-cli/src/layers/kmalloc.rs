//! kmalloc's part of the report: a mixed-size workload through kmalloc,
//! the classes it used, the large path, and the hot path timed against the
//! system malloc.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Write};

use kmem::Gfp;
use kmem::kmalloc::{self as km, kfree, kmalloc, ksize};

use crate::timing::{fmt_ns, median_ns};

/// Runs the kmalloc workload and prints its part of the report.
pub fn report(out: &mut dyn Write) -> io::Result<()> {
    // A working set of mixed sizes, a few large buffers, then half freed.
    let sizes = [
        8usize, 24, 40, 72, 100, 150, 200, 300, 700, 1500, 3000, 6000, 20_000, 300_000,
    ];
    let mut live = Vec::new();
    for i in 0..4000 {
        let s = sizes[i % sizes.len()];
        live.push(kmalloc(s, Gfp::KERNEL).map_err(io::Error::other)?);
    }
    for p in live.iter().step_by(2) {
        // SAFETY: allocated above, freed once (every other one).
        unsafe { kfree(p.as_ptr()) }.map_err(io::Error::other)?;
    }
    writeln!(out, "4000 allocations of 14 sizes, every other one freed:")?;
    writeln!(
        out,
        "{:<14} {:>8} {:>8} {:>6} {:>10}",
        "size → class", "active", "objs", "slabs", "ksize"
    )?;
    for &s in &sizes {
        let name = km::cache_name(s).unwrap_or("pages");
        let row = km::slabinfo().iter().find(|(n, _)| *n == name).map(|r| r.1);
        let p = kmalloc(s, Gfp::KERNEL).map_err(io::Error::other)?;
        let k = ksize(p.as_ptr()).map_err(io::Error::other)?;
        // SAFETY: just allocated.
        unsafe { kfree(p.as_ptr()) }.map_err(io::Error::other)?;
        match row {
            Some(r) => writeln!(
                out,
                "{s:>6} → {name:<12} {:>8} {:>8} {:>6} {k:>10}",
                r.active_objs, r.num_objs, r.num_slabs
            )?,
            None => writeln!(
                out,
                "{s:>6} → {name:<12} {:>8} {:>8} {:>6} {k:>10}",
                "-", "-", "-"
            )?,
        }
    }
    let st = km::stats();
    writeln!(
        out,
        "large path: {} page blocks allocated, {} freed, {} KiB in use",
        st.large_allocs,
        st.large_frees,
        st.large_bytes / 1024
    )?;
    for p in live.iter().skip(1).step_by(2) {
        // SAFETY: the other half, freed once.
        unsafe { kfree(p.as_ptr()) }.map_err(io::Error::other)?;
    }

    // The hot path: a kmalloc/kfree pair of 64 bytes vs the system malloc.
    const N: usize = 100_000;
    let k = median_ns(5, N, || {
        let p = kmalloc(64, Gfp::KERNEL).unwrap();
        // SAFETY: just allocated.
        unsafe { kfree(std::hint::black_box(p.as_ptr())).unwrap() };
    });
    let l = Layout::from_size_align(64, 8).unwrap();
    let m = median_ns(5, N, || {
        // SAFETY: a valid layout; freed at once.
        unsafe {
            let p = System.alloc(l);
            System.dealloc(std::hint::black_box(p), l);
        }
    });
    writeln!(
        out,
        "kmalloc(64)+kfree: {} per pair; system malloc+free: {} ({:.2}x)",
        fmt_ns(k),
        fmt_ns(m),
        m / k
    )
}
