//! The `#[global_allocator]` benchmark with **jemalloc** as the global allocator
//! (see `global/workloads.rs`; `scripts/bench-global.sh` runs all four).
#![allow(missing_docs)]

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[path = "global/workloads.rs"]
mod workloads;

fn main() {
    workloads::run("jemalloc");
}
