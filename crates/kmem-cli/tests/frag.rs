//! `kmem frag` run as a user runs it: the built binary, its stdout, its
//! files and its errors.

use std::path::PathBuf;
use std::process::{Command, Output};

fn kmem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmem"))
        .args(args)
        .output()
        .expect("run kmem")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kmem-frag-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const ALGOS: [&str; 5] = [
    "first fit",
    "best fit",
    "worst fit",
    "buddy",
    "slab classes",
];

#[test]
fn frag_prints_a_table_per_workload_and_writes_plots() {
    let dir = scratch("table");
    let out = kmem(&[
        "frag",
        "--ops",
        "3000",
        "--repeat",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for w in ["uniform", "powerlaw", "server"] {
        assert!(stdout.contains(&format!("{w}: 3000 ops")), "{stdout}");
        for f in ["largest", "frag", "time"] {
            let svg = std::fs::read_to_string(dir.join(format!("{f}-{w}.svg"))).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
        }
        let csv = std::fs::read_to_string(dir.join(format!("series-{w}.csv"))).unwrap();
        assert!(csv.starts_with("algorithm,op,largest,"));
        assert!(csv.lines().count() > 5 * 100);
    }
    for a in ALGOS {
        assert_eq!(
            stdout.matches(&format!("\n{a} ")).count(),
            3,
            "{a}: {stdout}"
        );
    }
    // The progress bar goes to stderr and is hidden when it is not a terminal.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The CSV rows without the timing column (the only one that varies).
fn rows_without_time(csv: &str) -> Vec<String> {
    csv.lines()
        .skip(1)
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(4);
            f.join(",")
        })
        .collect()
}

#[test]
fn a_saved_trace_replays_to_the_same_numbers() {
    let dir = scratch("save");
    let file = dir.join("powerlaw.trace");
    let f = file.to_str().unwrap();
    let a = kmem(&[
        "frag",
        "--workload",
        "powerlaw",
        "--ops",
        "4000",
        "--seed",
        "9",
        "--heap",
        "256K",
        "--save-trace",
        f,
        "--format",
        "csv",
        "--no-plot",
        "--repeat",
        "1",
    ]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("heap 262144\n") && text.contains("\nalloc 0 "));
    let b = kmem(&[
        "frag",
        "--trace",
        f,
        "--format",
        "csv",
        "--no-plot",
        "--repeat",
        "1",
    ]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let (a, b) = (
        String::from_utf8(a.stdout).unwrap(),
        String::from_utf8(b.stdout).unwrap(),
    );
    assert!(a.starts_with("trace,algorithm,ops,heap,ns_per_op,"));
    assert_eq!(a.lines().count(), 6, "{a}");
    assert_eq!(rows_without_time(&a), rows_without_time(&b));
    assert!(a.contains("powerlaw,buddy,4000,262144,"), "{a}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = scratch("bad");
    let file = dir.join("bad.trace");
    std::fs::write(&file, "alloc 1 64\nfree 9\n").unwrap();
    let out = kmem(&["frag", "--trace", file.to_str().unwrap(), "--no-plot"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad:2: free of id 9, which is not live"),
        "{err}"
    );

    let out = kmem(&["frag", "--heap", "1000", "--no-plot"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("multiple of 4096"));

    let out = kmem(&["frag", "--save-trace", file.to_str().unwrap(), "--no-plot"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("name one --workload"));

    let out = kmem(&["frag", "--trace", "/nonexistent/x.trace"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read trace /nonexistent/x.trace")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_explains_the_measures() {
    let out = kmem(&["frag", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for word in [
        "first fit",
        "buddy",
        "--trace",
        "--save-trace",
        "external fragmentation",
    ] {
        assert!(help.contains(word), "{word}: {help}");
    }
}
