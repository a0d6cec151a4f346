//! What the debug checks report: a use after free, an overflow, a double
//! free and a leak in a cache with every check on (`slab_debug=FZPU`).
//!
//! `cargo run -p kmem-slab --example slab_debug` (the reports go to stderr).

use kmem_page::Gfp;
use kmem_slab::{KmemCache, SlabFlags};

fn main() -> Result<(), kmem_slab::SlabError> {
    let c = KmemCache::builder("example_debug", 40)
        .debug(SlabFlags::DEBUG_ALL)
        .create()?;
    let p = c.alloc(Gfp::KERNEL)?;
    // SAFETY: every access below is a bug on purpose, inside memory the
    // cache keeps mapped; the checks report and repair each.
    unsafe {
        c.free(p)?;
        p.as_ptr().add(3).write(b'!'); // use after free
        let q = c.alloc(Gfp::KERNEL)?; // -> Poison overwritten
        q.as_ptr().add(40).write(0); // overflow
        c.free(q)?; // -> Right Redzone overwritten
        let _ = c.free(q); // -> double free
    }
    let _leak = c.alloc(Gfp::KERNEL)?;
    let mut s = String::new();
    c.leak_report(&mut s).unwrap();
    eprint!("{s}");
    Ok(())
}
