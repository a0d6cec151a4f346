//! A fixed allocation workload for counting cycles with `perf stat`, which
//! is steadier than wall-clock time on a shared, noisy machine:
//!
//! ```text
//! cargo build --release -p kmem-arena --example alloc_loop
//! perf stat -e cycles,instructions target/release/examples/alloc_loop kmem u64
//! perf stat -e cycles,instructions target/release/examples/alloc_loop bumpalo u64
//! ```
//!
//! Each run makes 2000 rounds of 10,000 allocations (`u64`: one `u64` each;
//! `mixed`: byte slices of 8..=200 bytes), resetting the arena after each
//! round; `cycle [n]` makes 2·10⁷ / n rounds of `n` `u64`s (default 1) and
//! a reset (the reset's cost in a request loop).

use std::hint::black_box;

const ROUNDS: usize = 2000;
const N: usize = 10_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "kmem".into());
    let work = args.next().unwrap_or_else(|| "u64".into());
    // `cycle`: allocations per reset.
    let per: usize = args.next().map_or(1, |n| n.parse().expect("a number"));
    let mut x = 12345u32;
    let sizes: Vec<usize> = (0..N)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            8 + (x % 193) as usize
        })
        .collect();
    let src = [7u8; 256];
    match (which.as_str(), work.as_str()) {
        ("kmem", "u64") => {
            let mut a = kmem_arena::Arena::new();
            for _ in 0..ROUNDS {
                for i in 0..N as u64 {
                    black_box(a.alloc(i));
                }
                a.reset();
            }
        }
        ("bumpalo", "u64") => {
            let mut b = bumpalo::Bump::new();
            for _ in 0..ROUNDS {
                for i in 0..N as u64 {
                    black_box(b.alloc(i));
                }
                b.reset();
            }
        }
        ("kmem", "mixed") => {
            let mut a = kmem_arena::Arena::new();
            for _ in 0..ROUNDS {
                for &n in &sizes {
                    black_box(a.alloc_slice_copy(&src[..n]));
                }
                a.reset();
            }
        }
        ("bumpalo", "mixed") => {
            let mut b = bumpalo::Bump::new();
            for _ in 0..ROUNDS {
                for &n in &sizes {
                    black_box(b.alloc_slice_copy(&src[..n]));
                }
                b.reset();
            }
        }
        ("kmem", "cycle") => {
            let mut a = kmem_arena::Arena::new();
            for _ in 0..ROUNDS * N / per {
                for i in 0..per as u64 {
                    black_box(a.alloc(i));
                }
                a.reset();
            }
        }
        ("bumpalo", "cycle") => {
            let mut b = bumpalo::Bump::new();
            for _ in 0..ROUNDS * N / per {
                for i in 0..per as u64 {
                    black_box(b.alloc(i));
                }
                b.reset();
            }
        }
        _ => eprintln!("usage: alloc_loop kmem|bumpalo u64|mixed|cycle [n]"),
    }
}
