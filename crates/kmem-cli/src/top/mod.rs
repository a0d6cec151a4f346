//! `kmem top` and `kmem slabinfo --pid`: a running program's caches, read
//! from the socket its preload serves (`KMEM_STATS`, see
//! `crates/kmem-preload/src/stats_server.rs`).
//!
//! * `parse` — slabinfo 2.1 and the snapshot's summary lines;
//! * `source` — finding a process's socket and reading it;
//! * `view` — the slabtop-like screen (ratatui), also rendered to text;
//! * `live` — the terminal loop.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod live;
pub mod parse;
pub mod source;
pub mod view;

use source::Target;
use view::{SortKey, View};

/// Which program to watch.
#[derive(clap::Args, Debug, Clone)]
#[group(multiple = false)]
pub struct TargetArgs {
    /// A process started with KMEM_STATS (e.g. by `kmem run`): its socket is
    /// found from its environment.
    #[arg(long)]
    pub pid: Option<u32>,
    /// The socket a process serves (its KMEM_STATS path).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// A slabinfo file (KMEM_SLABINFO's output, or /proc/slabinfo).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

impl TargetArgs {
    /// The target named, if any.
    pub fn target(&self) -> Option<Target> {
        if let Some(p) = self.pid {
            Some(Target::Pid(p))
        } else if let Some(s) = &self.socket {
            Some(Target::Socket(s.clone()))
        } else {
            self.file.as_ref().map(|f| Target::File(f.clone()))
        }
    }
}

/// `kmem top`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct TopArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Sort by (keys o a s c n u l switch while running).
    #[arg(long, value_enum, default_value = "objs")]
    sort: SortKey,
    /// Refresh period in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..))]
    interval: u64,
    /// Print one frame as text and exit (no terminal needed).
    #[arg(long)]
    once: bool,
}

fn fail(what: &str, e: &str) -> ExitCode {
    eprintln!("kmem {what}: {e}");
    ExitCode::FAILURE
}

/// `kmem slabinfo --pid/--socket/--file`: the target's slabinfo, once.
pub fn slabinfo(target: &Target, out: &mut dyn Write) -> ExitCode {
    match source::fetch(target) {
        Ok((_, text)) => match out
            .write_all(source::slabinfo_part(&text).as_bytes())
            .and_then(|()| out.flush())
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => fail("slabinfo", &e.to_string()),
        },
        Err(e) => fail("slabinfo", &e),
    }
}

/// `kmem top`.
pub fn top(args: &TopArgs, out: &mut dyn Write) -> ExitCode {
    let Some(target) = args.target.target() else {
        return fail(
            "top",
            "which program? give --pid PID (of a program started with `kmem run` or KMEM_STATS=1), \
             --socket PATH or --file PATH",
        );
    };
    if args.once {
        let snap = match source::fetch(&target) {
            Ok((s, _)) => s,
            Err(e) => return fail("top", &e),
        };
        let view = View {
            target: target.label(),
            snap: Some(snap),
            sort: args.sort,
            status: None,
            help: None,
        };
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .or_else(|| ratatui::crossterm::terminal::size().ok().map(|(w, _)| w))
            .filter(|&w| w >= 60)
            .unwrap_or(100)
            // Text output never cuts a name or a summary line.
            .max(view::full_width(&view));
        return match out.write_all(view::render_text(&view, width).as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => fail("top", &e.to_string()),
        };
    }
    if !std::io::stdout().is_terminal() {
        return fail(
            "top",
            "stdout is not a terminal; use --once for one frame as text",
        );
    }
    match live::run(&target, args.sort, Duration::from_millis(args.interval)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("top", &e),
    }
}
