//! `kmem` — run the pools and see what they do.
//!
//! With no arguments (`cargo run --release`) it runs a short built-in workload
//! through every layer and prints a report; subcommands show one view alone.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
