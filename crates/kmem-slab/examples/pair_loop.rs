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
//! code calls it), on the main thread (seat 0); `kmem-worker`: the same on a
//! second thread (seat 1); `kmem-unseated`: on a thread without a seat (all
//! `SEATS` held by parked threads); `glibc`: `malloc` + `free`; `mimalloc`:
//! the `mimalloc` crate's `GlobalAlloc` (`alloc` + `dealloc` with the layout).
// The loop frees what it allocated the line before, to the same allocator.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;

const PAIRS: u64 = 100_000_000;

/// The kmem loop: alloc + free inlined, as Rust code calls them.
fn pairs(c: &kmem_slab::KmemCache) {
    for _ in 0..PAIRS {
        let p = black_box(c.alloc(kmem_page::Gfp::KERNEL).unwrap());
        unsafe { c.free(p).unwrap() };
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "kmem".into());
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    match which.as_str() {
        "kmem" => {
            let c = kmem_slab::KmemCache::new("pair_loop", size, 0).unwrap();
            pairs(&c);
        }
        "kmem-worker" => {
            // The same loop on a second thread, while the main thread holds
            // seat 0 (it allocated first): the path of seats 1.. .
            let c = kmem_slab::KmemCache::new("pair_loop", size, 0).unwrap();
            let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
            std::thread::scope(|s| {
                s.spawn(|| {
                    assert_eq!(kmem_slab::thread_seat(), None);
                    pairs(&c);
                    assert_eq!(kmem_slab::thread_seat(), Some(1));
                });
            });
            unsafe { c.free(p).unwrap() };
        }
        "kmem-unseated" => {
            // The loop on a thread without a seat: every seat is held by a
            // thread parked meanwhile (its arrays through its slot table).
            let c = kmem_slab::KmemCache::new("pair_loop", size, 0).unwrap();
            let seated = std::sync::Barrier::new(kmem_slab::SEATS + 1);
            let done = std::sync::Barrier::new(kmem_slab::SEATS + 1);
            std::thread::scope(|s| {
                for _ in 0..kmem_slab::SEATS {
                    s.spawn(|| {
                        let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap();
                        unsafe { c.free(p).unwrap() };
                        seated.wait();
                        done.wait();
                    });
                }
                seated.wait();
                s.spawn(|| {
                    pairs(&c);
                    assert_eq!(kmem_slab::thread_seat(), None);
                })
                .join()
                .unwrap();
                done.wait();
            });
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
            eprintln!(
                "pair_loop: unknown allocator {other} (kmem, kmem-worker, kmem-unseated, glibc, mimalloc)"
            );
            std::process::exit(2);
        }
    }
}
