//! The `#[global_allocator]` benchmark with **kmem** as the global allocator
//! (see `global/workloads.rs`; `scripts/bench-global.sh` runs all four).
#![allow(missing_docs)]

#[global_allocator]
static GLOBAL: kmem_kmalloc::Kmalloc = kmem_kmalloc::Kmalloc::new();

#[path = "global/workloads.rs"]
mod workloads;

fn main() {
    workloads::run("kmem");
}
