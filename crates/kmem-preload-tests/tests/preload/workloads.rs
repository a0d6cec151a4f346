//! The benchmark's workloads (workloads/*.c) at small sizes: under the
//! preload they must print the same checksums as on glibc.

use crate::harness::{compare, compile};
use std::process::Command;

fn workload(name: &str, args: &[&str], expect_prefix: &str) {
    let exe = compile(&format!("workloads/{name}.c"));
    let (base, _) = compare(
        name,
        || {
            let mut c = Command::new(&exe);
            c.args(args);
            c
        },
        None,
        true,
    );
    let out = String::from_utf8_lossy(&base.stdout);
    assert!(
        out.starts_with(expect_prefix),
        "{name}: unexpected output {out:?}"
    );
}

/// Objects allocated by threads that have exited are freed by new threads.
#[test]
fn larson() {
    workload(
        "larson",
        &["3", "40000", "4", "2000"],
        "larson: threads=3 epochs=4 ops=480000 ",
    );
}

/// Every object is freed by another thread than the one that allocated it.
#[test]
fn xmalloc() {
    workload(
        "xmalloc",
        &["4", "300000"],
        "xmalloc: producers=2 consumers=2 objects=600000 ",
    );
}

/// Small-object churn with phase changes.
#[test]
fn churn() {
    workload("churn", &["2", "300000"], "churn: threads=2 ops=600000 ");
}

/// Buffers grown a few bytes at a time with realloc.
#[test]
fn realloc_growth() {
    workload(
        "realloc",
        &["2", "200000"],
        "realloc: threads=2 appends=400000 ",
    );
}

/// Mixed sizes around a long-lived working set.
#[test]
fn mixed() {
    workload(
        "mixed",
        &["2", "50000", "3000"],
        "mixed: threads=2 replacements=100000 ",
    );
}
