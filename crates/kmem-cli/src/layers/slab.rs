//! The slab part of the default report: a short workload through a few
//! caches (a typed cache, a constructor, objects freed by another thread),
//! their slabinfo, and a timing of the hot path against the system malloc.

use std::io::Write;
use std::time::Instant;

use kmem::Gfp;
use kmem::slab::{self, KmemCache, ObjectCache, SlabFlags};

/// Runs the workload and prints what a user would want to see.
pub fn report(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "== slab: kmem_cache ==")?;
    #[derive(Clone, Copy)]
    struct Dentry {
        _hash: u64,
        _name: [u8; 40],
        _parent: usize,
    }
    let dentries = ObjectCache::new("dentry", || Dentry {
        _hash: 0,
        _name: [0; 40],
        _parent: 0,
    })
    .map_err(std::io::Error::other)?;
    let skb = KmemCache::builder("skbuff_head_cache", 232)
        .flags(SlabFlags::HWCACHE_ALIGN)
        .create()
        .map_err(std::io::Error::other)?;
    let task = KmemCache::builder("task_struct", 3000)
        .create()
        .map_err(std::io::Error::other)?;

    // A working set of dentries, packets allocated here and freed by another thread.
    let keep: Vec<_> = (0..5000)
        .map(|_| dentries.alloc())
        .collect::<Result<_, _>>()
        .map_err(std::io::Error::other)?;
    let pkts: Vec<usize> = (0..20_000)
        .map(|_| skb.alloc(Gfp::KERNEL).map(|p| p.as_ptr() as usize))
        .collect::<Result<_, _>>()
        .map_err(std::io::Error::other)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            for p in &pkts[..15_000] {
                // SAFETY: each pointer came from `skb` and is freed once.
                let _ = unsafe { skb.free(std::ptr::NonNull::new_unchecked(*p as *mut u8)) };
            }
        });
    });
    let tasks: Vec<_> = (0..40)
        .map(|_| task.alloc(Gfp::KERNEL))
        .collect::<Result<_, _>>()
        .map_err(std::io::Error::other)?;
    let g = task.geometry();
    writeln!(
        out,
        "task_struct: {} B objects, order {} slabs of {} objects, {} colours of {} B; limit {} batch {} shared {}",
        task.object_size(),
        g.order,
        g.num,
        g.colour,
        g.colour_off,
        g.limit,
        g.batchcount,
        g.shared
    )?;
    writeln!(out)?;
    let mut info = String::new();
    slab::write_slabinfo(&mut info).map_err(std::io::Error::other)?;
    for line in info.lines().take(2).chain(info.lines().filter(|l| {
        ["dentry ", "skbuff_head_cache ", "task_struct "]
            .iter()
            .any(|n| l.starts_with(n))
    })) {
        writeln!(out, "{line}")?;
    }

    // Hot path: one alloc + free of a 64-byte object, against malloc.
    let c = KmemCache::new("bench-64", 64, 0).map_err(std::io::Error::other)?;
    let n = 2_000_000u32;
    let t = Instant::now();
    for _ in 0..n {
        let p = std::hint::black_box(c.alloc(Gfp::KERNEL).map_err(std::io::Error::other)?);
        // SAFETY: freed once, right after its allocation.
        let _ = unsafe { c.free(p) };
    }
    let slab_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        let b = std::hint::black_box(Box::new([0u8; 64]));
        drop(b);
    }
    let malloc_ns = t.elapsed().as_nanos() as f64 / n as f64;
    writeln!(out)?;
    writeln!(
        out,
        "hot path alloc+free (64 B): kmem_cache {slab_ns:.1} ns, system malloc {malloc_ns:.1} ns ({:.2}x)",
        malloc_ns / slab_ns
    )?;

    drop(keep);
    for p in &pkts[15_000..] {
        // SAFETY: the rest of the packets, freed once.
        let _ = unsafe { skb.free(std::ptr::NonNull::new_unchecked(*p as *mut u8)) };
    }
    for p in tasks {
        // SAFETY: freed once.
        let _ = unsafe { task.free(p) };
    }
    Ok(())
}

/// `kmem slabinfo`: prints `/proc/slabinfo` (version 2.1) for this process's caches.
pub fn slabinfo(out: &mut dyn Write) -> std::io::Result<()> {
    let mut s = String::new();
    slab::write_slabinfo(&mut s).map_err(std::io::Error::other)?;
    out.write_all(s.as_bytes())
}
