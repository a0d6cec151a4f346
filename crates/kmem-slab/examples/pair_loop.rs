//! The hot alloc + free pair in a plain loop, for `perf stat`: cycles and
//! instructions per pair are steadier than wall time on a shared machine.
//!
//! ```text
//! cargo build --release -p kmem-slab --example pair_loop
//! perf stat -e cycles:u,instructions:u target/release/examples/pair_loop kmem 64
//! perf stat -e cycles:u,instructions:u target/release/examples/pair_loop glibc 64
//! perf stat -e cycles:u,instructions:u target/release/examples/pair_loop mimalloc 64
//! ```
//!
//! Each run does 10⁸ pairs (divide the counts by 10⁸). `kmem`: a
//! `KmemCache` of SIZE bytes, alloc + free inlined into the loop (how Rust
//! code calls it); `glibc`: `malloc` + `free`; `mimalloc`: the `mimalloc`
//! crate's `GlobalAlloc` (`alloc` + `dealloc` with the layout).
// The loop frees what it allocated the line before, to the same allocator.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;

const PAIRS: u64 = 100_000_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "kmem".into());
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    match which.as_str() {
        "kmem" => {
            let c = kmem_slab::KmemCache::new("pair_loop", size, 0).unwrap();
            for _ in 0..PAIRS {
                let p = black_box(c.alloc(kmem_page::Gfp::KERNEL).unwrap());
                unsafe { c.free(p).unwrap() };
            }
        }
        "glibc" => {
            for _ in 0..PAIRS {
                let p = black_box(unsafe { libc::malloc(size) });
                unsafe { libc::free(p) };
            }
        }
        "mimalloc" => {
            let l = Layout::from_size_align(size, 8).unwrap();
            for _ in 0..PAIRS {
                let p = black_box(unsafe { mimalloc::MiMalloc.alloc(l) });
                unsafe { mimalloc::MiMalloc.dealloc(p, l) };
            }
        }
        other => {
            eprintln!("pair_loop: unknown allocator {other} (kmem, glibc, mimalloc)");
            std::process::exit(2);
        }
    }
}
