//! fork from a multi-threaded parent, and thousands of threads that allocate
//! and exit.

use crate::harness::{assert_same, assert_success, compile, preload, run, skip_preload};
use std::process::Command;

/// The main thread forks 60 times and an allocating thread 15 times while
/// three threads allocate; each child checks and frees the parent's objects,
/// allocates, runs two threads and exits. Run several times: a fork that
/// catches a lock held is a matter of timing.
#[test]
fn fork_while_threads_allocate() {
    let exe = compile("programs/fork.c");
    let base = run("fork", Command::new(&exe), None, None);
    assert_success("fork without a preload", &base);
    assert_eq!(
        String::from_utf8_lossy(&base.stdout),
        "fork: 75 children exited cleanly\n"
    );
    let Some(p) = preload() else {
        skip_preload("fork");
        return;
    };
    for round in 0..4 {
        let pre = run(
            &format!("fork round {round}"),
            Command::new(&exe),
            Some(&p.path),
            None,
        );
        assert_same(&format!("fork round {round}"), &base, &pre, false);
    }
}

/// Resident memory (KiB) after each reported number of threads.
fn rss_lines(stdout: &[u8]) -> Vec<(u64, u64)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("# rss-kib after "))
        .map(|l| {
            let (threads, kib) = l.split_once(" threads: ").expect("rss line format");
            (threads.parse().unwrap(), kib.parse().unwrap())
        })
        .collect()
}

/// 4000 threads each allocate 300 objects, free two thirds and leave the rest
/// to the main thread. A dying thread's caches must be flushed: resident
/// memory may not keep growing with the number of threads.
#[test]
fn thousands_of_threads_allocate_and_exit() {
    let exe = compile("programs/thread_exit.c");
    let base = run("thread_exit", Command::new(&exe), None, None);
    assert_success("thread_exit without a preload", &base);
    let Some(p) = preload() else {
        skip_preload("thread_exit");
        return;
    };
    let pre = run("thread_exit", Command::new(&exe), Some(&p.path), None);
    assert_same("thread_exit", &base, &pre, false);
    for (name, out) in [("without a preload", &base), ("under the preload", &pre)] {
        let rss = rss_lines(&out.stdout);
        assert!(rss.len() >= 4, "expected rss lines, got {rss:?}");
        let (first_threads, first) = rss[0];
        let (last_threads, last) = *rss.last().unwrap();
        crate::harness::note(&format!(
            "thread_exit {name}: RSS {first} KiB after {first_threads} threads, {last} KiB after {last_threads}"
        ));
        // A thread frees ~200 objects (~350 KiB) into its caches; left behind
        // by 3750 threads that is hundreds of MiB. 64 MiB is room for an
        // allocator's ordinary growth: mimalloc, which reclaims abandoned
        // segments lazily, was seen growing 9..28 MiB here.
        assert!(
            last.saturating_sub(first) <= 64 * 1024,
            "thread_exit {name}: resident memory grew from {first} KiB ({first_threads} threads) to {last} KiB \
             ({last_threads} threads): exited threads' caches are not given back"
        );
    }
}
