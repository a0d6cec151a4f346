//! The `#[global_allocator]` benchmark with **mimalloc** as the global allocator
//! (see `global/workloads.rs`; `scripts/bench-global.sh` runs all four).
#![allow(missing_docs)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "global/workloads.rs"]
mod workloads;

fn main() {
    workloads::run("mimalloc");
}
