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

/// The process that serves `pid`'s caches and its socket: `pid` itself if
/// it was started with `KMEM_STATS` and its socket exists, else its one
/// child that was (`pid` is then a `kmem run`, which is not on the preload
/// itself).
pub fn socket_of_pid(pid: u32) -> Result<(u32, PathBuf), String> {
    let own = own_socket(pid)?;
    if let Some(p) = own.as_ref().filter(|p| p.exists()) {
        return Ok((pid, p.clone()));
    }
    // `kmem run` may have KMEM_STATS itself (inherited) without serving it.
    let served: Vec<(u32, PathBuf)> = children(pid)
        .into_iter()
        .filter_map(|c| own_socket(c).ok().flatten().map(|p| (c, p)))
        .collect();
    match served.as_slice() {
        [one] => Ok(one.clone()),
        [] if own.is_some() => Ok((pid, own.unwrap_or_default())),
        [] => Err(format!(
            "process {pid} was not started with KMEM_STATS; start it as \
             `kmem run -- PROGRAM` (or with LD_PRELOAD=libkmem_preload.so KMEM_STATS=1)"
        )),
        many => Err(format!(
            "process {pid} was not started with KMEM_STATS, and several of its children were: \
             give one of {}",
            many.iter()
                .map(|(c, _)| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The children of `pid` (all its threads'), from `/proc/PID/task/*/children`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Process `pid`'s socket from its environment (see the module docs);
/// `None` if it has no `KMEM_STATS`.
fn own_socket(pid: u32) -> Result<Option<PathBuf>, String> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if !proc.exists() {
        return Err(format!("no process with pid {pid}"));
    }
    match std::fs::read(proc.join("environ")) {
        Ok(env) => {
            let stats = env_value(&env, "KMEM_STATS").filter(|v| !v.is_empty() && *v != "0");
            match stats {
                None => Ok(None),
                Some(v) if v == "1" => Ok(Some(default_socket(
                    pid,
                    env_value(&env, "XDG_RUNTIME_DIR"),
                ))),
                Some(v) if Path::new(v).is_absolute() => Ok(Some(PathBuf::from(v))),
                Some(v) => {
                    let cwd = std::fs::read_link(proc.join("cwd")).map_err(|e| {
                        format!(
                            "process {pid} has KMEM_STATS={} (relative) and its working directory \
                             cannot be read: {e}",
                            Path::new(v).display()
                        )
                    })?;
                    Ok(Some(cwd.join(v)))
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
                .map(Some)
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

/// The raw text of one read of `target`, and for a pid, the process that
/// should have answered.
fn read_text(target: &Target) -> Result<(String, Option<u32>), String> {
    match target {
        Target::Pid(pid) => {
            let (served, path) = socket_of_pid(*pid)?;
            Ok((read_socket(&path)?, Some(served)))
        }
        Target::Socket(p) => Ok((read_socket(p)?, None)),
        Target::File(p) => std::fs::read_to_string(p)
            .map(|t| (t, None))
            .map_err(|e| format!("cannot read {}: {e}", p.display())),
    }
}

/// One parsed read of `target`, with the text it came from. For a pid, the
/// snapshot must come from that process (an explicit `KMEM_STATS` path is
/// kept by the first process that claimed it) or, for a `kmem run`, from
/// its served child.
pub fn fetch(target: &Target) -> Result<(Snapshot, String), String> {
    let (text, want) = read_text(target)?;
    let snap = parse_snapshot(&text)
        .map_err(|e| format!("{}: cannot read its slabinfo: {e}", target.label()))?;
    if let (Some(want), Some(got)) = (want, snap.pid)
        && want != got
    {
        return Err(format!(
            "the socket of pid {want} is served by pid {got} (which claimed that KMEM_STATS path first); \
                 start {want} with KMEM_STATS=1 for a socket of its own"
        ));
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
        let e = fetch(&Target::Socket("/nonexistent/kmem.sock".into())).unwrap_err();
        assert!(
            e.starts_with("no stats socket at /nonexistent/kmem.sock"),
            "{e}"
        );
        let e = fetch(&Target::File("/nonexistent/slabinfo".into())).unwrap_err();
        assert!(e.starts_with("cannot read /nonexistent/slabinfo"), "{e}");
    }

    #[test]
    fn slabinfo_part_skips_the_summary() {
        let t = "kmem-stats 1\npid 1\nslabinfo - version: 2.1\n# name\nx 1\n";
        assert_eq!(slabinfo_part(t), "slabinfo - version: 2.1\n# name\nx 1\n");
    }
}
