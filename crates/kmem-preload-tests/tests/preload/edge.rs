//! The malloc family's edge cases (programs/edge.c), and kmem's own
//! environment variables.

use crate::harness::{assert_success, compile, note, preload, run, scratch_dir, skip_preload};
use std::process::Command;

/// Every check of edge.c holds for glibc's malloc: the checks are right.
#[test]
fn edge_cases_hold_for_glibc() {
    let exe = compile("programs/edge.c");
    let out = run("edge", Command::new(&exe), None, None);
    assert_success("edge without a preload", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("# malloc comes from /"));
}

/// The same checks under the preload; kmem's must also refuse `free` of
/// pointers it never handed out, with a report, and keep working.
#[test]
fn edge_cases_hold_under_the_preload() {
    let exe = compile("programs/edge.c");
    let Some(p) = preload() else {
        skip_preload("edge");
        return;
    };
    let mut cmd = Command::new(&exe);
    if p.is_kmem {
        cmd.arg("--kmem");
    } else {
        note("edge: the preload is not kmem's; the foreign-free checks are off");
    }
    let out = run("edge", cmd, Some(&p.path), None);
    assert_success("edge under the preload", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let from = format!("# malloc comes from {}", p.path.display());
    assert!(
        stdout.lines().any(|l| l == from),
        "malloc does not come from the preload:\n{stdout}"
    );
    if p.is_kmem {
        assert_eq!(
            stdout.matches("# free(").count(),
            4,
            "each foreign free reported:\n{stdout}"
        );
    }
}

/// `KMEM_SHOW_STATS=1` prints stats and slabinfo on stderr at exit;
/// `KMEM_SLABINFO=PATH` writes slabinfo (the /proc/slabinfo 2.1 format) there.
#[test]
fn kmem_show_stats_and_slabinfo_at_exit() {
    let exe = compile("programs/mt.c");
    let Some(p) = preload() else {
        skip_preload("KMEM_SHOW_STATS/KMEM_SLABINFO");
        return;
    };
    if !p.is_kmem {
        note("SKIPPED KMEM_SHOW_STATS/KMEM_SLABINFO: the preload is not kmem's");
        return;
    }
    let mut cmd = Command::new(&exe);
    cmd.args(["2", "5000"]).env("KMEM_SHOW_STATS", "1");
    let out = run("mt with KMEM_SHOW_STATS=1", cmd, Some(&p.path), None);
    assert_success("mt with KMEM_SHOW_STATS=1", &out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("slabinfo - version: 2.1") && err.contains("kmalloc-64"),
        "KMEM_SHOW_STATS=1 stderr:\n{err}"
    );

    let dir = scratch_dir("slabinfo");
    let file = dir.join("slabinfo.txt");
    let mut cmd = Command::new(&exe);
    cmd.args(["2", "5000"]).env("KMEM_SLABINFO", &file);
    let out = run("mt with KMEM_SLABINFO", cmd, Some(&p.path), None);
    assert_success("mt with KMEM_SLABINFO", &out);
    assert!(
        out.stderr.is_empty(),
        "KMEM_SLABINFO alone prints nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("KMEM_SLABINFO file written at exit");
    assert!(
        text.starts_with("slabinfo - version: 2.1\n"),
        "slabinfo file:\n{text}"
    );
    for cache in ["kmalloc-8 ", "kmalloc-96 ", "kmalloc-192 ", "kmalloc-8k "] {
        assert!(
            text.lines().any(|l| l.starts_with(cache)),
            "no {cache}line in slabinfo:\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
