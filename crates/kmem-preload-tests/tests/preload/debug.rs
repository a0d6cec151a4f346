//! The slab debug checks through the preload (programs/debug_bugs.c): with
//! `KMEM_DEBUG=FZPU` each kind of bug gets a `BUG kmalloc-N: ...` report
//! naming a call site in the program (the C caller's return address), and
//! the program still exits 0; `KMEM_LEAKS=1` prints the leaks at exit,
//! grouped by site with counts and bytes; a clean run reports nothing.

use crate::harness::{assert_success, compile, note, preload, run, skip_preload};
use std::process::{Command, Output};

/// Runs debug_bugs.c with `bug` under the kmem preload and `env`; `None` if
/// there is no kmem preload to test.
fn run_bug(bug: &str, env: &[(&str, &str)]) -> Option<(String, String)> {
    let exe = compile("programs/debug_bugs.c");
    let Some(p) = preload() else {
        skip_preload("debug checks");
        return None;
    };
    if !p.is_kmem {
        note("SKIPPED debug checks: the preload is not kmem's");
        return None;
    }
    let mut cmd = Command::new(&exe);
    cmd.arg(bug);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out: Output = run(&format!("debug_bugs {bug}"), cmd, Some(&p.path), None);
    assert_success(&format!("debug_bugs {bug}"), &out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("done"), "{bug}: did not finish:\n{stdout}");
    Some((stdout, String::from_utf8_lossy(&out.stderr).into_owned()))
}

/// The program's code: from its lowest printed function to 4 KiB past the highest.
fn code_range(stdout: &str) -> (usize, usize) {
    let addrs: Vec<usize> = stdout
        .lines()
        .filter(|l| l.starts_with("site "))
        .flat_map(|l| l.split_whitespace().skip(2))
        .map(|a| usize::from_str_radix(a.trim_start_matches("0x"), 16).unwrap())
        .collect();
    (
        *addrs.iter().min().unwrap(),
        addrs.iter().max().unwrap() + 4096,
    )
}

/// Every address printed after `key` lies in the program's code.
fn sites_in_program(stdout: &str, stderr: &str, key: &str) -> usize {
    let (lo, hi) = code_range(stdout);
    let mut n = 0;
    for l in stderr.lines() {
        if let Some(i) = l.find(key) {
            let a = l[i + key.len()..].split_whitespace().next().unwrap();
            let a = usize::from_str_radix(a.trim_start_matches("0x"), 16).unwrap();
            assert!(
                (lo..hi).contains(&a),
                "{key}{a:#x} is not in the program ({lo:#x}..{hi:#x}):\n{stderr}"
            );
            n += 1;
        }
    }
    n
}

const ALL: &[(&str, &str)] = &[("KMEM_DEBUG", "FZPU")];

#[test]
fn each_bug_is_reported_and_the_program_runs_on() {
    let cases = [
        ("uaf", "BUG kmalloc-64: Poison overwritten"),
        (
            "overflow",
            "BUG kmalloc-32: Right Redzone overwritten (buffer overflow)",
        ),
        (
            "underflow",
            "BUG kmalloc-32: Left Redzone overwritten (buffer underflow)",
        ),
        ("double", "BUG kmalloc-32: double free of"),
        ("interior", "BUG kmalloc-32: free of"),
        ("invalid", "is not memory kmem manages"),
    ];
    for (bug, want) in cases {
        let Some((stdout, stderr)) = run_bug(bug, ALL) else {
            return;
        };
        assert!(stderr.contains(want), "{bug}: no {want:?} in:\n{stderr}");
        if bug != "invalid" {
            assert!(
                sites_in_program(&stdout, &stderr, "allocated at ") >= 1,
                "{bug}: no allocation site:\n{stderr}"
            );
        }
        if bug != "uaf" {
            // The bad free's site (or the free that found the corruption).
            let n = sites_in_program(&stdout, &stderr, "freed at ")
                + sites_in_program(&stdout, &stderr, "bad free at ");
            assert!(bug == "invalid" || n >= 1, "{bug}: no free site:\n{stderr}");
        }
    }
}

#[test]
fn a_clean_run_with_every_check_reports_nothing() {
    let Some((_, stderr)) = run_bug("clean", ALL) else {
        return;
    };
    assert!(stderr.is_empty(), "reports on a clean run:\n{stderr}");
}

#[test]
fn kmem_leaks_reports_the_sites_at_exit() {
    let Some((stdout, stderr)) = run_bug("leak", &[("KMEM_LEAKS", "1")]) else {
        return;
    };
    for want in [
        "kmem: leak: 3 objects (384 bytes) of kmalloc-128 allocated at ",
        "kmem: leak: 2 objects (512 bytes) of kmalloc-256 allocated at ",
    ] {
        assert_eq!(
            sites_in_program(&stdout, &stderr, want),
            1,
            "no {want:?} naming the program:\n{stderr}"
        );
    }
    assert!(stderr.contains("still allocated, from"), "{stderr}");
    // Without KMEM_LEAKS nothing is printed.
    let (_, stderr) = run_bug("leak", &[]).unwrap();
    assert!(stderr.is_empty(), "{stderr}");
}
