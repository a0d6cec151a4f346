//! Real programs under `LD_PRELOAD` of the malloc replacement, compared with
//! runs on glibc's malloc. See the crate docs for which library is tested.

mod debug;
mod edge;
mod harness;
mod programs;
mod stats;
mod stress;
mod workloads;
