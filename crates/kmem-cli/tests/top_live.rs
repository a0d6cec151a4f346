//! `kmem slabinfo --pid/--socket` and `kmem top --once` against a real
//! program running on the preload with `KMEM_STATS`.
//!
//! The preload is `KMEM_PRELOAD` if set, else built here with
//! `cargo build --release -p kmem-preload` into this test's target
//! directory (as the kmem-preload-tests do). The program is
//! `tests/programs/stats_target.c`, compiled with gcc.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const KMEM: &str = env!("CARGO_BIN_EXE_kmem");

/// `<target>` of this test binary (`<target>/<profile>/deps/top_live-…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps")
        .to_path_buf()
}

fn preload() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        if let Some(p) = std::env::var_os("KMEM_PRELOAD").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let target = target_dir();
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "-p", "kmem-preload"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(ws)
            .status()
            .expect("run cargo");
        assert!(
            status.success(),
            "cargo build --release -p kmem-preload failed"
        );
        let lib = target.join("release/libkmem_preload.so");
        assert!(lib.is_file(), "no {}", lib.display());
        lib
    })
}

fn program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let dir = target_dir().join("kmem-cli-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("stats_target");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/stats_target.c");
        let out = Command::new("gcc")
            .args([
                "-std=c11",
                "-D_GNU_SOURCE",
                "-O1",
                "-fno-builtin",
                "-Wall",
                "-Werror",
            ])
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .output()
            .expect("run gcc (install gcc)");
        assert!(
            out.status.success(),
            "gcc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        exe
    })
}

/// A fresh directory for one test's sockets (short: socket paths are
/// limited to 107 bytes).
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kmem-top-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The program, running under the preload with `env`, after it said "ready".
struct Running {
    child: Child,
    _out: BufReader<ChildStdout>,
    pid: u32,
}

impl Running {
    fn start(env: &[(&str, &Path)], args: &[&str]) -> Running {
        let mut cmd = Command::new(program());
        cmd.args(args)
            .env("LD_PRELOAD", preload())
            .env_remove("KMEM_STATS")
            .env_remove("KMEM_SLABINFO")
            .env_remove("KMEM_SHOW_STATS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start stats_target");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let pid = child.id();
        assert_eq!(line, format!("ready {pid}\n"), "the program did not start");
        Running {
            child,
            _out: out,
            pid,
        }
    }

    /// Closes its stdin and waits: it frees everything and exits 0.
    fn finish(mut self) {
        drop(self.child.stdin.take());
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "stats_target exited with {st}");
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "stats_target hangs"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn kmem(args: &[&str]) -> Output {
    Command::new(KMEM)
        .args(args)
        .env_remove("LD_PRELOAD")
        .env("COLUMNS", "100")
        .output()
        .expect("run kmem")
}

fn ok_stdout(args: &[&str]) -> String {
    let o = kmem(args);
    assert!(
        o.status.success(),
        "kmem {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The row of cache `name` in slabinfo text, as its 16 words.
fn row<'a>(slabinfo: &'a str, name: &str) -> Vec<&'a str> {
    slabinfo
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&name))
        .unwrap_or_else(|| panic!("no {name} row in:\n{slabinfo}"))
}

fn active(slabinfo: &str, name: &str) -> u64 {
    row(slabinfo, name)[1].parse().unwrap()
}

/// The cache names of a `kmem top --once` frame, top to bottom.
fn top_names(frame: &str) -> Vec<String> {
    let mut lines = frame
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("OBJS"));
    let head = lines.next().expect("a table header");
    let at = head.find("NAME").unwrap();
    lines
        .filter(|l| l.len() > at)
        .map(|l| l[at..].trim().to_string())
        .collect()
}

#[test]
fn slabinfo_and_top_of_a_running_program() {
    let dir = scratch("live");
    let sock = dir.join("s.sock");
    let p = Running::start(&[("KMEM_STATS", &sock)], &[]);
    assert!(sock.exists(), "no socket at {}", sock.display());
    let pid = p.pid.to_string();

    // The same slabinfo through the socket and through the pid.
    for args in [
        ["slabinfo", "--socket", sock.to_str().unwrap()],
        ["slabinfo", "--pid", &pid],
    ] {
        let s = ok_stdout(&args);
        assert!(s.starts_with("slabinfo - version: 2.1\n# name "), "{s}");
        // 1000 × 24 B, 500 × 200 B, 100 × 3000 B still held.
        assert!(active(&s, "kmalloc-32") >= 1000, "{s}");
        assert!(active(&s, "kmalloc-256") >= 500, "{s}");
        assert!(active(&s, "kmalloc-4k") >= 100, "{s}");
    }

    // kmem top --once: the summary and every kmalloc row, in each order.
    let slab = ok_stdout(&["slabinfo", "--pid", &pid]);
    let caches: Vec<&str> = slab
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let frame = ok_stdout(&["top", "--once", "--pid", &pid, "--sort", "name"]);
    assert!(
        frame.starts_with(&format!(" kmem top — pid {pid}\n")),
        "{frame}"
    );
    assert!(
        frame.contains(" Active / Total Objects (% used)    : "),
        "{frame}"
    );
    assert!(
        frame.contains(" Pages allocated / managed (free)   : "),
        "{frame}"
    );
    let mut by_name: Vec<String> = caches.iter().map(|s| s.to_string()).collect();
    by_name.sort();
    assert_eq!(top_names(&frame), by_name, "{frame}");
    let frame = ok_stdout(&[
        "top",
        "--once",
        "--socket",
        sock.to_str().unwrap(),
        "--sort",
        "size",
    ]);
    let names = top_names(&frame);
    assert_eq!(
        names.first().map(String::as_str),
        Some("kmalloc-8k"),
        "{frame}"
    );
    let size = |n: &str| -> u64 { row(&slab, n)[3].parse().unwrap() };
    assert!(
        names.windows(2).all(|w| size(&w[0]) >= size(&w[1])),
        "not by object size:\n{frame}"
    );
    let frame = ok_stdout(&["top", "--once", "--pid", &pid, "--sort", "objs"]);
    let objs = |frame: &str, n: &str| -> u64 {
        frame
            .lines()
            .find(|l| l.ends_with(&format!(" {n}")))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap()
    };
    let names = top_names(&frame);
    assert!(
        names
            .windows(2)
            .all(|w| objs(&frame, &w[0]) >= objs(&frame, &w[1])),
        "not by objects:\n{frame}"
    );

    // Exit removes the socket; reading it then is a clear error.
    p.finish();
    assert!(!sock.exists(), "the socket outlived the program");
    let o = kmem(&["slabinfo", "--socket", sock.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("kmem slabinfo: no stats socket at "),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kmem_stats_1_serves_the_default_path() {
    let dir = scratch("default");
    let p = Running::start(
        &[("KMEM_STATS", Path::new("1")), ("XDG_RUNTIME_DIR", &dir)],
        &[],
    );
    let sock = dir.join(format!("kmem-{}.sock", p.pid));
    assert!(sock.exists(), "no socket at {}", sock.display());
    let s = ok_stdout(&["slabinfo", "--pid", &p.pid.to_string()]);
    assert!(active(&s, "kmalloc-32") >= 1000, "{s}");
    p.finish();
    assert!(!sock.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_forked_child_leaves_the_parents_socket_alone() {
    let dir = scratch("fork");
    let sock = dir.join("f.sock");
    // The child ran its exit path (the preload's destructor) before "ready".
    let p = Running::start(&[("KMEM_STATS", &sock)], &["fork"]);
    assert!(sock.exists(), "the child removed the parent's socket");
    let s = ok_stdout(&["slabinfo", "--pid", &p.pid.to_string()]);
    assert!(active(&s, "kmalloc-32") >= 1000, "{s}");
    p.finish();
    assert!(!sock.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_path_in_use_stays_with_its_first_process() {
    let dir = scratch("shared");
    let sock = dir.join("x.sock");
    let first = Running::start(&[("KMEM_STATS", &sock)], &[]);
    let second = Running::start(&[("KMEM_STATS", &sock)], &[]);
    // The socket answers for the first; asking for the second says so.
    let o = kmem(&["slabinfo", "--pid", &second.pid.to_string()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("is served by pid {}", first.pid)),
        "{err}"
    );
    // The second's exit does not remove the first's socket.
    second.finish();
    assert!(sock.exists());
    ok_stdout(&["slabinfo", "--pid", &first.pid.to_string()]);
    first.finish();
    assert!(!sock.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stale_socket_is_taken_over() {
    let dir = scratch("stale");
    let sock = dir.join("old.sock");
    // A socket file nobody listens on (a process killed before its exit).
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let p = Running::start(&[("KMEM_STATS", &sock)], &[]);
    let s = ok_stdout(&["slabinfo", "--socket", sock.to_str().unwrap()]);
    assert!(active(&s, "kmalloc-32") >= 1000, "{s}");
    p.finish();
    assert!(!sock.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kmem_run_sets_kmem_stats_for_kmem_top() {
    let o = Command::new(KMEM)
        .arg("run")
        .arg("--")
        .arg(program())
        .arg("env")
        .env("KMEM_PRELOAD", preload())
        .env_remove("KMEM_STATS")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("KMEM_STATS=1\n"), "{out}");
    assert!(out.contains("slabinfo - version: 2.1"), "{out}");
}

#[test]
fn the_pid_of_kmem_run_finds_its_program() {
    let dir = scratch("run");
    let mut run = Command::new(KMEM)
        .arg("run")
        .arg("--")
        .arg(program())
        .env("KMEM_PRELOAD", preload())
        .env("KMEM_STATS", "1")
        .env("XDG_RUNTIME_DIR", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let child: u32 = line.trim().strip_prefix("ready ").unwrap().parse().unwrap();
    let frame = ok_stdout(&["top", "--once", "--pid", &run.id().to_string()]);
    assert!(frame.contains(&format!("(pid {child})")), "{frame}");
    assert!(
        top_names(&frame).iter().any(|n| n == "kmalloc-32"),
        "{frame}"
    );
    drop(run.stdin.take());
    assert!(run.wait().unwrap().success());
    assert!(!dir.join(format!("kmem-{child}.sock")).exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn top_without_a_target_or_terminal_says_what_to_do() {
    let o = kmem(&["top", "--once"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("give --pid PID"));
    let o = kmem(&["top", "--pid", &std::process::id().to_string()]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("stdout is not a terminal"), "{e}");
}
