//! Where a snapshot comes from: a process's `KMEM_STATS` socket (found from
//! its pid), a socket path, or a slabinfo file.
//!
//! Discovery for `--pid PID` (the rule the preload follows, see
//! `crates/kmem-preload/src/stats_server.rs`): the target's initial
//! environment (`/proc/PID/environ`) says `KMEM_STATS`; `1` means
//! `$XDG_RUNTIME_DIR/kmem-PID.sock` (with the target's `XDG_RUNTIME_DIR`, if
//! absolute) else `/tmp/kmem-PID.sock`; anything else is the path itself
//! (relative to the target's working directory). When the environment
//! cannot be read (another user's process), the default paths are tried.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::parse::{Snapshot, parse_snapshot};

/// What `kmem top` / `kmem slabinfo` read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A running process served by the preload.
    Pid(u32),
    /// A `KMEM_STATS` socket.
    Socket(PathBuf),
    /// A slabinfo file (`KMEM_SLABINFO`'s, or `/proc/slabinfo`).
    File(PathBuf),
}

impl Target {
    /// How the target is named in messages and the view's title.
    pub fn label(&self) -> String {
        match self {
            Target::Pid(p) => format!("pid {p}"),
            Target::Socket(s) => s.display().to_string(),
            Target::File(f) => f.display().to_string(),
        }
    }
}

/// The default socket path of process `pid` given its `XDG_RUNTIME_DIR`.
pub fn default_socket(pid: u32, runtime_dir: Option<&OsStr>) -> PathBuf {
    match runtime_dir {
        Some(d) if Path::new(d).is_absolute() => Path::new(d).join(format!("kmem-{pid}.sock")),
        _ => PathBuf::from(format!("/tmp/kmem-{pid}.sock")),
    }
}

/// The value of `name` in a NUL-separated environment block.
fn env_value<'a>(environ: &'a [u8], name: &str) -> Option<&'a OsStr> {
    environ.split(|&b| b == 0).find_map(|kv| {
        let rest = kv.strip_prefix(name.as_bytes())?;
        rest.strip_prefix(b"=").map(OsStr::from_bytes)
    })
}

/// The socket of process `pid`, from its environment (see the module docs).
pub fn socket_of_pid(pid: u32) -> Result<PathBuf, String> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if !proc.exists() {
        return Err(format!("no process with pid {pid}"));
    }
    match std::fs::read(proc.join("environ")) {
        Ok(env) => {
            let stats = env_value(&env, "KMEM_STATS").filter(|v| !v.is_empty() && *v != "0");
            match stats {
                None => Err(format!(
                    "process {pid} was not started with KMEM_STATS; start it as \
                     `kmem run -- PROGRAM` (or with LD_PRELOAD=libkmem_preload.so KMEM_STATS=1)"
                )),
                Some(v) if v == "1" => Ok(default_socket(pid, env_value(&env, "XDG_RUNTIME_DIR"))),
                Some(v) if Path::new(v).is_absolute() => Ok(PathBuf::from(v)),
                Some(v) => {
                    let cwd = std::fs::read_link(proc.join("cwd")).map_err(|e| {
                        format!(
                            "process {pid} has KMEM_STATS={} (relative) and its working directory \
                             cannot be read: {e}",
                            Path::new(v).display()
                        )
                    })?;
                    Ok(cwd.join(v))
                }
            }
        }
        Err(e) => {
            let candidates = [
                default_socket(pid, std::env::var_os("XDG_RUNTIME_DIR").as_deref()),
                default_socket(pid, None),
            ];
            candidates
                .iter()
                .find(|p| p.exists())
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "cannot read /proc/{pid}/environ ({e}) and no socket at {}; \
                     give the socket with --socket PATH",
                        candidates
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )
                })
        }
    }
}

/// Everything the socket at `path` sends (one snapshot).
pub fn read_socket(path: &Path) -> Result<String, String> {
    let mut s = UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "no stats socket at {} (has the program exited, or was it started without KMEM_STATS?)",
            path.display()
        ),
        std::io::ErrorKind::ConnectionRefused => format!(
            "nobody listens on {} any more (the program has exited)",
            path.display()
        ),
        _ => format!("cannot connect to {}: {e}", path.display()),
    })?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    String::from_utf8(bytes)
        .map_err(|e| format!("{} sent text that is not UTF-8: {e}", path.display()))
}

/// The raw text of one read of `target`.
pub fn read_text(target: &Target) -> Result<String, String> {
    match target {
        Target::Pid(pid) => read_socket(&socket_of_pid(*pid)?),
        Target::Socket(p) => read_socket(p),
        Target::File(p) => {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        }
    }
}

/// One parsed read of `target`, with the text it came from. For a pid, the
/// snapshot must come from that process (an explicit `KMEM_STATS` path is
/// kept by the first process that claimed it).
pub fn fetch(target: &Target) -> Result<(Snapshot, String), String> {
    let text = read_text(target)?;
    let snap = parse_snapshot(&text)
        .map_err(|e| format!("{}: cannot read its slabinfo: {e}", target.label()))?;
    if let (Target::Pid(want), Some(got)) = (target, snap.pid) {
        if *want != got {
            return Err(format!(
                "the socket of pid {want} is served by pid {got} (which claimed that KMEM_STATS path first); \
                 start {want} with KMEM_STATS=1 for a socket of its own"
            ));
        }
    }
    Ok((snap, text))
}

/// The `/proc/slabinfo` part of a read (from its header line to the end).
pub fn slabinfo_part(text: &str) -> &str {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with("slabinfo - version:") {
            return &text[at..];
        }
        at += line.len();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_paths() {
        assert_eq!(
            default_socket(42, Some(OsStr::new("/run/user/1000"))),
            PathBuf::from("/run/user/1000/kmem-42.sock")
        );
        assert_eq!(
            default_socket(42, Some(OsStr::new("relative"))),
            PathBuf::from("/tmp/kmem-42.sock")
        );
        assert_eq!(default_socket(42, None), PathBuf::from("/tmp/kmem-42.sock"));
    }

    #[test]
    fn environ_lookup_matches_whole_names() {
        let env = b"KMEM_STATS_X=no\0KMEM_STATS=/tmp/a.sock\0XDG_RUNTIME_DIR=/run/user/1\0";
        assert_eq!(
            env_value(env, "KMEM_STATS"),
            Some(OsStr::new("/tmp/a.sock"))
        );
        assert_eq!(
            env_value(env, "XDG_RUNTIME_DIR"),
            Some(OsStr::new("/run/user/1"))
        );
        assert_eq!(env_value(env, "KMEM"), None);
    }

    #[test]
    fn a_process_without_kmem_stats_is_told_how_to_start_it() {
        // This test process was not started with KMEM_STATS (cargo does not set it).
        if std::env::var_os("KMEM_STATS").is_some() {
            return;
        }
        let e = socket_of_pid(std::process::id()).unwrap_err();
        assert!(e.contains("was not started with KMEM_STATS"), "{e}");
        assert!(socket_of_pid(u32::MAX).unwrap_err().contains("no process"));
    }

    #[test]
    fn missing_socket_and_file_are_clear_errors() {
        let e = read_text(&Target::Socket("/nonexistent/kmem.sock".into())).unwrap_err();
        assert!(
            e.starts_with("no stats socket at /nonexistent/kmem.sock"),
            "{e}"
        );
        let e = read_text(&Target::File("/nonexistent/slabinfo".into())).unwrap_err();
        assert!(e.starts_with("cannot read /nonexistent/slabinfo"), "{e}");
    }

    #[test]
    fn slabinfo_part_skips_the_summary() {
        let t = "kmem-stats 1\npid 1\nslabinfo - version: 2.1\n# name\nx 1\n";
        assert_eq!(slabinfo_part(t), "slabinfo - version: 2.1\n# name\nx 1\n");
    }
}
