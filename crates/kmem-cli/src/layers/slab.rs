//! The slab layer's part of the report: a short workload through a few
//! caches (a typed cache with a constructor, packets freed by another
//! thread, large objects with colouring), their `/proc/slabinfo` rows, and
//! the hot path timed against malloc.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Write};
use std::ptr::NonNull;

use kmem::Gfp;
use kmem::slab::{self, KmemCache, ObjectCache, SlabFlags};

use crate::timing::{fmt_ns, median_ns};

/// `kmem slabinfo`: `/proc/slabinfo` (version 2.1) for this process's caches.
pub fn slabinfo(out: &mut dyn Write) -> io::Result<()> {
    let mut s = String::new();
    slab::write_slabinfo(&mut s).map_err(io::Error::other)?;
    out.write_all(s.as_bytes())
}

/// Runs the slab workload and prints its part of the report.
pub fn report(out: &mut dyn Write) -> io::Result<()> {
    struct Dentry {
        hash: u64,
        _name: [u8; 40],
        _parent: usize,
    }
    let dentries = ObjectCache::new("dentry", || Dentry {
        hash: 0,
        _name: [0; 40],
        _parent: 0,
    })
    .map_err(io::Error::other)?;
    let skb = KmemCache::builder("skbuff_head_cache", 232)
        .flags(SlabFlags::HWCACHE_ALIGN)
        .create()
        .map_err(io::Error::other)?;
    let task = KmemCache::new("task_struct", 3000, 0).map_err(io::Error::other)?;

    // A working set of dentries; packets allocated here and mostly freed by
    // another thread; a few large objects.
    let keep = (0..5000)
        .map(|_| dentries.alloc())
        .collect::<Result<Vec<_>, _>>()
        .map_err(io::Error::other)?;
    let pkts = (0..20_000)
        .map(|_| skb.alloc(Gfp::KERNEL).map(|p| p.as_ptr() as usize))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io::Error::other)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            for &p in &pkts[..15_000] {
                // SAFETY: each pointer came from `skb` and is freed once.
                let _ = unsafe { skb.free(NonNull::new_unchecked(p as *mut u8)) };
            }
        })
        .join()
        .ok();
    });
    let tasks = (0..40)
        .map(|_| task.alloc(Gfp::KERNEL))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io::Error::other)?;

    let g = task.geometry();
    writeln!(
        out,
        "task_struct: {} B objects in order-{} slabs of {}, {} B left over: {} colours of {} B",
        task.object_size(),
        g.order,
        g.num,
        g.left_over,
        g.colour,
        g.colour_off
    )?;
    writeln!(
        out,
        "per-thread array caches: limit {} batchcount {}; shared array {} x {}",
        g.limit, g.batchcount, g.shared, g.batchcount
    )?;
    writeln!(out, "\n/proc/slabinfo for the workload's caches:")?;
    let mut info = String::new();
    slab::write_slabinfo(&mut info).map_err(io::Error::other)?;
    let names = ["dentry ", "skbuff_head_cache ", "task_struct "];
    for line in info.lines().take(2).chain(
        info.lines()
            .filter(|l| names.iter().any(|n| l.starts_with(n))),
    ) {
        writeln!(out, "{line}")?;
    }

    // Hot path: one alloc + free of a 64-byte object.
    let c = KmemCache::new("report-64", 64, 0).map_err(io::Error::other)?;
    let slab_ns = median_ns(9, 200_000, || {
        let p = std::hint::black_box(c.alloc(Gfp::KERNEL).expect("alloc"));
        // SAFETY: freed once, right after its allocation.
        let _ = unsafe { c.free(p) };
    });
    let l = Layout::from_size_align(64, 8).expect("layout");
    let malloc_ns = median_ns(9, 200_000, || {
        // SAFETY: a valid layout; the block is freed right away.
        unsafe {
            let p = std::hint::black_box(System.alloc(l));
            System.dealloc(p, l);
        }
    });
    writeln!(
        out,
        "\nhot path, alloc + free of 64 B: kmem_cache {}, system malloc {} ({:.2}x)",
        fmt_ns(slab_ns),
        fmt_ns(malloc_ns),
        malloc_ns / slab_ns
    )?;

    let sum: u64 = keep.iter().map(|d| d.hash).sum();
    drop(keep);
    for &p in &pkts[15_000..] {
        // SAFETY: the rest of the packets, each freed once.
        let _ = unsafe { skb.free(NonNull::new_unchecked(p as *mut u8)) };
    }
    for p in tasks {
        // SAFETY: freed once.
        let _ = unsafe { task.free(p) };
    }
    debug_assert_eq!(sum, 0);
    Ok(())
}
