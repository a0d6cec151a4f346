//! `kmem` — run the pools and see what they do.
//!
//! With no arguments (`cargo run --release`) it runs a short built-in workload
//! through every layer and prints a report; subcommands show one view alone.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod frag;
mod layers;
mod run;
mod timing;
mod top;

/// kmem: the Linux kernel's memory pools in user space.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the built-in workload through every layer and report (the default).
    Report,
    /// Run the built-in workloads quietly, then print the page allocator's
    /// free blocks per order (/proc/buddyinfo layout).
    Buddyinfo,
    /// Print /proc/slabinfo (version 2.1): a running program's with --pid or
    /// --socket (see `kmem top`), else the caches the built-in workloads leave.
    Slabinfo(top::TargetArgs),
    /// A live, slabtop-like view of a running program's caches (a program
    /// started by `kmem run`, or with the preload and KMEM_STATS set).
    Top(top::TopArgs),
    /// Replay one allocation trace through first fit, best fit, worst fit,
    /// buddy and slab size classes, and compare fragmentation and speed.
    ///
    /// The seeds' §3.2 table of allocation algorithms, measured instead of
    /// asserted. A trace (a shipped workload generated from --seed, or a file
    /// given with --trace) is replayed through each algorithm over a simulated
    /// heap of the same capacity (offsets, byte granularity, 16-byte
    /// alignment). Printed per algorithm: time per operation, failed
    /// allocations, peak footprint, internal fragmentation ((allocated -
    /// requested) / allocated), external fragmentation (1 - largest free block
    /// / free bytes) and the largest request that would succeed. Plots (SVG)
    /// of the largest satisfiable request, the fragmentation and the time per
    /// operation over the replay, and every sample as CSV, go to --out.
    ///
    /// Algorithms: first, best and worst fit share one address-ordered free
    /// list with splitting and coalescing and differ only in the block they
    /// pick; buddy is the binary buddy system with a 16-byte order 0; slab
    /// classes are kmalloc's size classes (16 B … 2 KiB) in 4 KiB slabs, with
    /// larger requests taking runs of whole pages.
    ///
    /// Examples: `kmem frag`, `kmem frag --workload server --ops 100000`,
    /// `kmem frag --workload powerlaw --save-trace p.trace`, `kmem frag
    /// --trace p.trace --heap 2M --format csv`.
    Frag(frag::FragArgs),
    /// Run PROGRAM on kmem (LD_PRELOAD of libkmem_preload.so) and print its slabinfo when it exits.
    Run {
        /// The program and its arguments (after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        program: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let r = match cli.command.unwrap_or(Command::Report) {
        Command::Report => layers::report_all(&mut out),
        Command::Buddyinfo => layers::warm_up().and_then(|()| layers::pages::buddyinfo(&mut out)),
        Command::Slabinfo(t) => match t.target() {
            Some(target) => return top::slabinfo(&target, &mut out),
            None => layers::warm_up().and_then(|()| layers::slab::slabinfo(&mut out)),
        },
        Command::Top(args) => return top::top(&args, &mut out),
        Command::Frag(args) => frag::run(&args, &mut out),
        Command::Run { program } => return run::run(&program, &mut out),
    };
    match r.and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kmem: {e}");
            ExitCode::FAILURE
        }
    }
}
