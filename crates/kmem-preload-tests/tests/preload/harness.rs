//! Finding (or building) the preload library, compiling the C programs, and
//! running a program with and without `LD_PRELOAD` under a time limit.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long one run of one program may take before it is killed and the test
/// fails (a hang under the preload is a failure, not a stuck CI job).
pub const TIME_LIMIT: Duration = Duration::from_secs(180);

/// The malloc replacement under test.
#[derive(Debug)]
pub struct Preload {
    /// Absolute path of the shared library given to `LD_PRELOAD`.
    pub path: PathBuf,
    /// Whether it is kmem's (exports `kmem_stats_print`): the kmem-only
    /// checks (foreign free refused with a report, `KMEM_*` variables) run
    /// only then.
    pub is_kmem: bool,
}

/// This crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root.
pub fn workspace_dir() -> PathBuf {
    crate_dir()
        .ancestors()
        .nth(2)
        .expect("crates/kmem-preload-tests sits two levels below the workspace")
        .to_path_buf()
}

/// The cargo target directory this test binary was built into: the test runs
/// from `<target>/<profile>/deps/`, whatever `CARGO_TARGET_DIR` said. (With
/// `--target TRIPLE` this is `<target>/<triple>`, which works as well: the
/// preload is then built there.)
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a directory");
    assert_eq!(
        deps.file_name().and_then(|n| n.to_str()),
        Some("deps"),
        "unexpected test binary location {exe:?}"
    );
    deps.parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps")
        .to_path_buf()
}

/// Writes a line on the real stderr, past the test harness's capture, so that
/// a skipped half of a test is visible in `cargo test`'s output.
pub fn note(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// The preload under test, found or built once per test run; `None` (with a
/// message) when there is none yet.
pub fn preload() -> Option<&'static Preload> {
    static PRELOAD: OnceLock<Option<Preload>> = OnceLock::new();
    PRELOAD.get_or_init(find_preload).as_ref()
}

/// Says that the preload half of `test` was skipped, and (once) why.
pub fn skip_preload(test: &str) {
    static WHY: OnceLock<()> = OnceLock::new();
    WHY.get_or_init(|| {
        note(
            "no preload library to test: set KMEM_PRELOAD=/path/to/lib.so, or add the kmem-preload package \
             (the tests then run `cargo build --release -p kmem-preload` and use \
             <target>/release/libkmem_preload.so); the programs run without a preload only",
        )
    });
    note(&format!(
        "SKIPPED {test} under LD_PRELOAD (no preload library)"
    ));
}

fn find_preload() -> Option<Preload> {
    let path = match std::env::var_os("KMEM_PRELOAD") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "KMEM_PRELOAD={} does not exist", p.display());
            p
        }
        _ => {
            let ws = workspace_dir();
            if !ws.join("crates/kmem-preload/Cargo.toml").is_file() {
                return None;
            }
            build_kmem_preload(&ws)
        }
    };
    let path = path
        .canonicalize()
        .expect("canonicalize the preload's path");
    let is_kmem = exports(&path, "kmem_stats_print");
    note(&format!(
        "preload under test: {} ({})",
        path.display(),
        if is_kmem {
            "kmem's: kmem-only checks on"
        } else {
            "not kmem's: kmem-only checks off"
        }
    ));
    Some(Preload { path, is_kmem })
}

/// `cargo build --release -p kmem-preload` into this run's target directory.
fn build_kmem_preload(ws: &Path) -> PathBuf {
    let target = target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    note(&format!(
        "building the preload: cargo build --release -p kmem-preload (target {})",
        target.display()
    ));
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "kmem-preload"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(ws)
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "cargo build --release -p kmem-preload failed: {status}"
    );
    let lib = target.join("release/libkmem_preload.so");
    assert!(
        lib.is_file(),
        "cargo build --release -p kmem-preload did not produce {}",
        lib.display()
    );
    lib
}

/// Whether the shared library at `lib` defines the dynamic symbol `name`.
fn exports(lib: &Path, name: &str) -> bool {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib)
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.split_whitespace().last() == Some(name)),
        _ => lib
            .file_name()
            .is_some_and(|f| f.to_string_lossy().contains("kmem")),
    }
}

/// Compiles `src` (relative to this crate) with gcc into the target directory
/// once per test run, and returns the executable.
pub fn compile(src: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut built = built.lock().unwrap();
    if let Some(exe) = built.get(src) {
        return exe.clone();
    }
    let dir = target_dir().join("preload-tests");
    std::fs::create_dir_all(&dir).expect("create the programs' directory");
    let stem = Path::new(src)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let exe = dir.join(&stem);
    let crate_dir = crate_dir();
    // -fno-builtin: the compiler must not fold or drop malloc calls whose
    // result it thinks it knows (malloc(SIZE_MAX), malloc+free pairs).
    let out = Command::new("gcc")
        .args([
            "-std=c11",
            "-D_GNU_SOURCE",
            "-O2",
            "-g",
            "-fno-builtin",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
        ])
        .arg("-I")
        .arg(crate_dir.join("workloads"))
        .arg(crate_dir.join(src))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run gcc (install gcc)");
    assert!(
        out.status.success(),
        "gcc failed on {src}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    built.insert(src.to_string(), exe.clone());
    exe
}

/// Runs `cmd` (with `LD_PRELOAD=lib` when given), feeding it `stdin`, and
/// returns what it printed; kills it and panics after [`TIME_LIMIT`].
pub fn run(what: &str, mut cmd: Command, lib: Option<&Path>, stdin: Option<&Path>) -> Output {
    match lib {
        Some(lib) => cmd.env("LD_PRELOAD", lib),
        None => cmd.env_remove("LD_PRELOAD"),
    };
    // The kmem variables would change what a kmem preload prints.
    for var in [
        "KMEM_SHOW_STATS",
        "KMEM_SLABINFO",
        "KMEM_STATS",
        "KMEM_DEBUG",
        "KMEM_LEAKS",
    ] {
        if !cmd.get_envs().any(|(k, _)| k == var) {
            cmd.env_remove(var);
        }
    }
    match stdin {
        Some(p) => cmd.stdin(std::fs::File::open(p).expect("open stdin file")),
        None => cmd.stdin(Stdio::null()),
    };
    // Collect output in files, so a program that prints a lot cannot block on
    // a full pipe while we wait for it.
    let tmp = scratch_dir(what);
    let out_path = tmp.join("stdout");
    let err_path = tmp.join("stderr");
    cmd.stdout(std::fs::File::create(&out_path).unwrap());
    cmd.stderr(std::fs::File::create(&err_path).unwrap());
    let label = format!(
        "{what} ({})",
        lib.map_or("no preload".to_string(), |l| format!(
            "LD_PRELOAD={}",
            l.display()
        ))
    );
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{label}: cannot start: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{label}: still running after {TIME_LIMIT:?} (hung?); stderr so far:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    };
    let _ = std::fs::remove_dir_all(&tmp);
    if lib.is_some() {
        // ld.so only warns when it cannot load a preload; the run would then
        // silently test glibc.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("cannot be preloaded"),
            "{label}: the preload was not loaded:\n{err}"
        );
    }
    out
}

/// A fresh directory for one run's files (removed by the caller).
pub fn scratch_dir(what: &str) -> PathBuf {
    static SEQ: Mutex<u64> = Mutex::new(0);
    let n = {
        let mut s = SEQ.lock().unwrap();
        *s += 1;
        *s
    };
    let safe: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let dir = target_dir()
        .join("preload-tests/runs")
        .join(format!("{safe}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Output lines that may differ between allocators start with "# ".
pub fn comparable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.starts_with("# "))
        .fold(String::new(), |mut s, l| {
            let _ = writeln!(s, "{l}");
            s
        })
}

/// Asserts a run succeeded, with its output in the message if not.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts the preload run printed what the run without it printed: the same
/// exit status, the same stdout (save "# " lines) and, when `same_stderr`,
/// the same stderr.
pub fn assert_same(what: &str, base: &Output, pre: &Output, same_stderr: bool) {
    assert_success(&format!("{what} without a preload"), base);
    assert_success(&format!("{what} under the preload"), pre);
    let (a, b) = (comparable(&base.stdout), comparable(&pre.stdout));
    if a != b {
        let line = a
            .lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(a.lines().count().min(b.lines().count()));
        panic!(
            "{what}: stdout differs under the preload, first at line {}:\n  without: {:?}\n  with:    {:?}\n(stderr under the preload:\n{})",
            line + 1,
            a.lines().nth(line),
            b.lines().nth(line),
            String::from_utf8_lossy(&pre.stderr)
        );
    }
    if same_stderr {
        assert_eq!(
            String::from_utf8_lossy(&base.stderr),
            String::from_utf8_lossy(&pre.stderr),
            "{what}: stderr differs under the preload"
        );
    }
}

/// Runs a program without and (if there is one) with the preload and asserts
/// the outputs agree; returns the two outputs.
pub fn compare(
    what: &str,
    make: impl Fn() -> Command,
    stdin: Option<&Path>,
    same_stderr: bool,
) -> (Output, Option<Output>) {
    let base = run(what, make(), None, stdin);
    let Some(p) = preload() else {
        assert_success(&format!("{what} without a preload"), &base);
        skip_preload(what);
        return (base, None);
    };
    let pre = run(what, make(), Some(&p.path), stdin);
    assert_same(what, &base, &pre, same_stderr);
    (base, Some(pre))
}

/// The path of a program found on `PATH`, or a panic saying how to install it.
pub fn require_program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed (apt-get install -y {package}); .ci/run installs it")
        })
}
