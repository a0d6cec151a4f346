//! Programs nobody here wrote — python3 and the sqlite3 shell — and a
//! multi-threaded C program, each run without and with the preload; their
//! outputs must be identical byte for byte.

use crate::harness::{compare, compile, crate_dir, require_program, scratch_dir};
use std::path::PathBuf;
use std::process::Command;

/// The real python3 executable (not a pyenv shim script, which would run the
/// preload in bash first), asked of python3 itself.
fn python() -> PathBuf {
    let py = require_program("python3", "python3");
    let out = Command::new(&py)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "python3 -c failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn python_script(pythonmalloc: &str) {
    python_script_env(pythonmalloc, &[]);
}

fn python_script_env(pythonmalloc: &str, env: &[(&str, &str)]) {
    let py = python();
    let script = crate_dir().join("programs/alloc_heavy.py");
    let what = format!("python3 alloc_heavy.py (PYTHONMALLOC={pythonmalloc} {env:?})");
    let (base, _) = compare(
        &what,
        || {
            let mut c = Command::new(&py);
            c.arg(&script)
                .env("PYTHONHASHSEED", "0")
                .env("PYTHONMALLOC", pythonmalloc)
                .envs(env.iter().copied());
            c
        },
        None,
        true,
    );
    // The script ran to its end (a short stdout on both sides would also compare equal).
    let out = String::from_utf8_lossy(&base.stdout);
    assert!(
        out.contains("\njson ") && out.ends_with("ok True\n"),
        "unexpected output:\n{out}"
    );
}

/// Every Python object through malloc/realloc/free: dicts, lists, strings,
/// json, gc of reference cycles.
#[test]
fn python_with_pythonmalloc_malloc() {
    python_script("malloc");
}

/// The same with every slab debug check on for every kmalloc cache (poison,
/// red zones, consistency checks, call sites): a clean program must run
/// exactly as before and kmem must report nothing (stderr is compared too).
#[test]
fn python_with_every_debug_check_reports_nothing() {
    python_script_env("malloc", &[("KMEM_DEBUG", "FZPU")]);
}

/// Python's default allocator: pymalloc's arenas for small objects, malloc for
/// the rest (and for the interpreter's own start-up).
#[test]
fn python_with_pymalloc() {
    python_script("pymalloc");
}

/// sqlite3 builds a 200 000-row database with indexes, queries it with joins,
/// window functions and group_concat, churns it and vacuums it.
#[test]
fn sqlite3_builds_and_queries_a_database() {
    let sqlite = require_program("sqlite3", "sqlite3");
    let sql = crate_dir().join("programs/sqlite.sql");
    let dir = scratch_dir("sqlite3");
    let (base, _) = compare(
        "sqlite3 < sqlite.sql",
        || {
            // Each run builds its own database from nothing.
            let db = dir.join("test.db");
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(dir.join(format!("test.db{suffix}")));
            }
            let mut c = Command::new(&sqlite);
            c.arg(db);
            c
        },
        Some(&sql),
        true,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let out = String::from_utf8_lossy(&base.stdout);
    assert!(
        out.contains("counts|20000|5000|200000") && out.ends_with("ok\n"),
        "unexpected output:\n{out}"
    );
}

/// Four threads allocate, realloc, calloc, posix_memalign and free each
/// other's objects; every byte is checked; the sum of seeds must match.
#[test]
fn multithreaded_c_program() {
    let exe = compile("programs/mt.c");
    let (base, _) = compare("mt", || Command::new(&exe), None, true);
    assert!(String::from_utf8_lossy(&base.stdout).starts_with("mt: threads=4 objects=240000 "));
}
