//! The page layer's part of the report: buddyinfo before and after a workload,
//! blocks per order, and allocation timings against mmap and malloc.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Write};
use std::ptr::NonNull;

use kmem::page::{self, Gfp, MAX_PAGE_ORDER, PAGE_SIZE};
use kmem::platform::{Os, PageSource};

use crate::timing::{fmt_ns, median_ns};

/// `kmem buddyinfo`: the process's buddyinfo line, with its header.
pub fn buddyinfo(out: &mut dyn Write) -> io::Result<()> {
    let mut s = String::new();
    page::global()
        .write_buddyinfo(&mut s)
        .map_err(io::Error::other)?;
    write!(out, "{s}")
}

fn header(out: &mut dyn Write) -> io::Result<()> {
    write!(out, "{:22}", "order")?;
    for o in 0..=MAX_PAGE_ORDER {
        write!(out, "{o:>6} ")?;
    }
    writeln!(out)
}

/// Runs the page workload and prints its part of the report.
pub fn report(out: &mut dyn Write) -> io::Result<()> {
    let pages = page::global();
    writeln!(
        out,
        "free blocks per order (/proc/buddyinfo layout), before the workload:"
    )?;
    header(out)?;
    buddyinfo(out)?;

    // A workload of mixed orders: allocate a working set, free every other
    // block (fragmenting), then allocate larger blocks into what is left.
    let mut x = 0x2545f4914f6cdd1du64;
    let mut live = Vec::new();
    for _ in 0..600 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let order = [0, 0, 0, 0, 1, 1, 2, 3, 4, 6][(x % 10) as usize];
        let p = pages
            .alloc_raw(order, Gfp::KERNEL)
            .map_err(io::Error::other)?;
        live.push((p, order));
    }
    let mut kept = Vec::new();
    for (i, (p, o)) in live.into_iter().enumerate() {
        if i % 2 == 0 {
            // SAFETY: a live block of this order from `pages`.
            unsafe { pages.free_raw(p, o) }.map_err(io::Error::other)?;
        } else {
            kept.push((p, o));
        }
    }
    let stats = pages.stats();
    writeln!(out)?;
    writeln!(
        out,
        "after 600 mixed-order allocations and freeing every other one:"
    )?;
    header(out)?;
    buddyinfo(out)?;
    write!(out, "{:22}", "allocations per order")?;
    for n in stats.allocs_per_order {
        write!(out, "{n:6} ")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} regions of 4 MiB mapped ({} MiB), {} pages in use, {} free; {} regions given back so far",
        stats.regions,
        (stats.managed_pages * PAGE_SIZE) >> 20,
        stats.allocated_pages,
        stats.free_pages,
        stats.regions_released
    )?;
    for (p, o) in kept {
        // SAFETY: as above.
        unsafe { pages.free_raw(p, o) }.map_err(io::Error::other)?;
    }
    let cached = pages.stats().cached_pages;
    pages.drain();
    let stats = pages.stats();
    writeln!(out)?;
    writeln!(
        out,
        "after freeing everything and draining the {cached} pages held hot on the per-cpu lists"
    )?;
    writeln!(
        out,
        "(buddies merged back; wholly free regions above the watermark unmapped):"
    )?;
    header(out)?;
    buddyinfo(out)?;
    writeln!(
        out,
        "{} regions kept mapped (watermark {} pages)",
        stats.regions,
        pages.config().keep_free_pages
    )?;

    writeln!(out)?;
    writeln!(
        out,
        "allocate + free one block, median of 5 batches (lower is better):"
    )?;
    writeln!(
        out,
        "{:>8} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "order", "kmem", "mmap/munmap", "malloc/free", "mmap/kmem", "malloc/kmem"
    )?;
    for order in [0u32, 3] {
        let size = PAGE_SIZE << order;
        let k = median_ns(5, 20_000, || {
            let p = pages.alloc_raw(order, Gfp::KERNEL).expect("page");
            // SAFETY: just allocated, order `order`.
            unsafe { pages.free_raw(std::hint::black_box(p), order) }.expect("free");
        });
        let os = Os::new();
        let m = median_ns(5, 2_000, || {
            let p = os.map(size, PAGE_SIZE).expect("mmap");
            // SAFETY: just mapped with this size.
            unsafe { os.unmap(std::hint::black_box(p), size, PAGE_SIZE) };
        });
        let layout = Layout::from_size_align(size, 16).expect("layout");
        let c = median_ns(5, 20_000, || {
            // SAFETY: non-zero layout; freed with the same layout.
            unsafe {
                let p = System.alloc(layout);
                System.dealloc(
                    std::hint::black_box(NonNull::new(p).expect("malloc").as_ptr()),
                    layout,
                );
            }
        });
        writeln!(
            out,
            "{order:>8} {:>12} {:>12} {:>12} {:>9.1}x {:>9.1}x",
            fmt_ns(k),
            fmt_ns(m),
            fmt_ns(c),
            m / k,
            c / k
        )?;
    }
    writeln!(
        out,
        "(kmem takes one uncontended lock per call; mmap is a system call; glibc malloc of {} KiB and up",
        4
    )?;
    writeln!(
        out,
        " works from its own free bins. See docs/BENCHMARKS.md for the criterion runs.)"
    )?;
    Ok(())
}
