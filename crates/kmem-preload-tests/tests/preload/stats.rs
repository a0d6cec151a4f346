//! `KMEM_STATS`: the preload's stats thread serves snapshots while the
//! program allocates, forks and exits, and changes nothing the program
//! prints; the socket is gone after exit.

use crate::harness::{assert_same, compile, note, preload, run, scratch_dir, skip_preload};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Reads snapshots from `sock` until `stop`; returns how many were read.
/// Every snapshot read must be whole.
fn hammer(sock: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut s) = UnixStream::connect(&sock) else {
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            };
            let mut text = String::new();
            // A read cut by the program's exit is not a torn snapshot.
            if s.read_to_string(&mut text).is_err() || text.is_empty() {
                continue;
            }
            assert!(
                text.starts_with("kmem-stats 1\npid "),
                "torn snapshot:\n{text}"
            );
            let at = text
                .find("slabinfo - version: 2.1\n# name")
                .unwrap_or_else(|| panic!("no slabinfo:\n{text}"));
            for row in text[at..].lines().skip(2) {
                assert_eq!(
                    row.split_whitespace().count(),
                    16,
                    "torn row {row:?} in:\n{text}"
                );
            }
            n += 1;
        }
        n
    })
}

fn with_stats_server(what: &str, exe: &Path, same_stderr: bool) {
    let base = run(what, Command::new(exe), None, None);
    let Some(p) = preload() else {
        skip_preload(what);
        return;
    };
    if !p.is_kmem {
        note(&format!(
            "SKIPPED {what} with KMEM_STATS: the preload is not kmem's"
        ));
        return;
    }
    let dir = scratch_dir(&format!("{what}-stats"));
    let sock = dir.join("s.sock");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = hammer(sock.clone(), stop.clone());
    let mut cmd = Command::new(exe);
    cmd.env("KMEM_STATS", &sock);
    let pre = run(&format!("{what} with KMEM_STATS"), cmd, Some(&p.path), None);
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("a snapshot was torn");
    note(&format!(
        "{what} with KMEM_STATS: {reads} snapshots read while it ran"
    ));
    assert_same(&format!("{what} with KMEM_STATS"), &base, &pre, same_stderr);
    assert!(!sock.exists(), "{what}: the socket outlived the program");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Threads allocating and freeing each other's objects while snapshots are
/// taken.
#[test]
fn multithreaded_program_with_the_stats_server() {
    with_stats_server("mt", &compile("programs/mt.c"), true);
}

/// 75 forks from a multi-threaded parent while snapshots are taken: the
/// children (which exit normally) must not remove the parent's socket, and
/// a fork while the stats thread holds the cache list must not deadlock.
#[test]
fn forking_program_with_the_stats_server() {
    with_stats_server("fork", &compile("programs/fork.c"), false);
}
