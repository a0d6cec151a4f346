//! Tests of `libkmem_preload.so` with programs nobody here wrote, and the C
//! workloads of the preload benchmark.
//!
//! This crate has no library code: it is a place for the integration tests in
//! `tests/preload/` and the programs they run.
//!
//! * `programs/` — what the tests run under `LD_PRELOAD` and without it, with
//!   the two outputs compared byte for byte: `alloc_heavy.py` (python3),
//!   `sqlite.sql` (the sqlite3 shell), `mt.c` (threads that allocate, resize
//!   and free each other's objects, every byte checked), `fork.c` (fork while
//!   other threads allocate), `thread_exit.c` (thousands of threads that
//!   allocate and exit; resident memory must not grow with their number) and
//!   `edge.c` (the malloc family's edge cases: overflow, huge and zero sizes,
//!   alignment, `malloc_usable_size`, and with `--kmem`, `free` of a pointer
//!   kmem never handed out).
//! * `workloads/` — the benchmark's C programs (`larson`, `xmalloc`, `churn`,
//!   `realloc`, `mixed`), run by `scripts/bench-preload.sh` under glibc,
//!   jemalloc, mimalloc and kmem; the tests run each at a small size under the
//!   preload and compare its checksums with glibc's.
//!
//! Which library is tested: `KMEM_PRELOAD=/path/to/lib.so` if set; otherwise,
//! when the workspace has the `kmem-preload` package, the tests build it
//! (`cargo build --release -p kmem-preload`) and use
//! `<target>/release/libkmem_preload.so`. With neither, each test still runs
//! its programs without a preload (so the programs themselves are checked) and
//! says on stderr that the preload half was skipped. The checks that only
//! kmem's preload can pass (foreign `free` refused with a report,
//! `KMEM_SHOW_STATS`, `KMEM_SLABINFO`, and `KMEM_STATS`: `mt` and `fork`
//! with the stats thread serving a reader that takes snapshots in a loop)
//! run when the library exports
//! `kmem_stats_print`. Setting `KMEM_PRELOAD` to jemalloc's or mimalloc's
//! library runs the whole suite against them:
//!
//! ```text
//! KMEM_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 cargo test -p kmem-preload-tests
//! ```
