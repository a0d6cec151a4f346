//! `kmem run -- PROGRAM ARGS…`: runs a program on kmem's malloc
//! (`LD_PRELOAD` of `libkmem_preload.so`) with `KMEM_SLABINFO` pointing at a
//! temporary file, then prints the slabinfo it left there and exits with the
//! program's status. Unless `KMEM_STATS` is set already, it sets
//! `KMEM_STATS=1`, so `kmem top --pid PID` can watch the program while it
//! runs (the preload serves `$XDG_RUNTIME_DIR` or `/tmp/kmem-PID.sock`).

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Where the preload is: `KMEM_PRELOAD` if set, else `libkmem_preload.so`
/// beside this executable (both are built into `target/release`).
fn preload_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KMEM_PRELOAD").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let lib = exe.parent()?.join("libkmem_preload.so");
    lib.is_file().then_some(lib)
}

/// Runs `program` on kmem and prints its slabinfo to `out`.
pub fn run(program: &[OsString], out: &mut dyn Write) -> ExitCode {
    let Some(lib) = preload_path() else {
        eprintln!(
            "kmem run: libkmem_preload.so not found beside the kmem executable; \
             build it (cargo build --release -p kmem-preload) or set KMEM_PRELOAD"
        );
        return ExitCode::FAILURE;
    };
    let info = std::env::temp_dir().join(format!("kmem-run-{}.slabinfo", std::process::id()));
    let mut cmd = Command::new(&program[0]);
    cmd.args(&program[1..])
        .env("LD_PRELOAD", &lib)
        .env("KMEM_SLABINFO", &info);
    if std::env::var_os("KMEM_STATS").is_none() {
        cmd.env("KMEM_STATS", "1");
    }
    let status = cmd.spawn().and_then(|mut child| {
        if std::io::stderr().is_terminal() {
            eprintln!(
                "kmem run: {:?} is pid {}; watch its caches with `kmem top --pid {}`",
                program[0],
                child.id(),
                child.id()
            );
        }
        child.wait()
    });
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kmem run: cannot start {:?}: {e}", program[0]);
            return ExitCode::FAILURE;
        }
    };
    let text = std::fs::read_to_string(&info);
    let _ = std::fs::remove_file(&info);
    match text {
        Ok(t) => {
            let _ = writeln!(
                out,
                "\n== kmem run: {:?} exited with {status}; its slab caches at exit:",
                program[0]
            );
            let _ = out.write_all(t.as_bytes());
        }
        Err(e) => eprintln!("kmem run: the program left no slabinfo ({e}); did it exec or crash?"),
    }
    let _ = out.flush();
    match status.code() {
        Some(c) => ExitCode::from(c.clamp(0, 255) as u8),
        None => ExitCode::FAILURE,
    }
}
