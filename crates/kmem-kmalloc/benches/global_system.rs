//! The `#[global_allocator]` benchmark with **system** as the global allocator
//! (see `global/workloads.rs`; `scripts/bench-global.sh` runs all four).
#![allow(missing_docs)]

#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

#[path = "global/workloads.rs"]
mod workloads;

fn main() {
    workloads::run("system");
}
