//! `kmem frag`: the seeds' §3.2 table of allocation algorithms — first fit,
//! best fit, worst fit, buddy, fixed-size blocks — measured instead of
//! asserted.
//!
//! One allocation trace (a shipped workload generated from a seed, or a file)
//! is replayed through each algorithm over a simulated heap of the same
//! capacity ([`heap`]); [`metrics`] records time per operation, external and
//! internal fragmentation, peak footprint, failures and the largest
//! satisfiable request over time; the report is a table (or CSV) on stdout
//! and SVG plots ([`plot`]) plus per-sample CSV in `--out`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub mod buddy;
pub mod freelist;
pub mod heap;
pub mod metrics;
pub mod plot;
pub mod slab;
pub mod trace;

#[cfg(test)]
mod model;

use heap::Algo;
use metrics::{Run, replay};
use trace::{Trace, Workload};

/// Heap capacity when neither `--heap` nor the trace says.
pub const DEFAULT_HEAP: u64 = 1 << 20;
/// Operations per generated workload by default.
pub const DEFAULT_OPS: usize = 50_000;
/// Samples taken over each replay.
pub const SAMPLES: usize = 200;
/// The largest heap `kmem frag` simulates.
pub const MAX_HEAP: u64 = 1 << 30;

/// Which shipped workload(s) to replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadArg {
    /// Sizes uniform in 16 B … 1 KiB, random lifetimes.
    Uniform,
    /// Power-law sizes: many tiny objects, a few huge ones.
    Powerlaw,
    /// Connections, requests freed together, a FIFO cache.
    Server,
    /// All three, one after another.
    All,
}

/// How the summary is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table per trace.
    Table,
    /// One CSV row per trace and algorithm (with a header).
    Csv,
}

/// The options of `kmem frag`.
#[derive(clap::Args, Debug)]
pub struct FragArgs {
    /// Shipped workload to generate and replay (not with --trace).
    #[arg(long, value_enum, default_value = "all", conflicts_with = "trace")]
    pub workload: WorkloadArg,
    /// Operations per generated workload [default: 50000]; with --trace,
    /// replay only the first N operations of the file.
    #[arg(long, value_name = "N")]
    pub ops: Option<usize>,
    /// Seed of the generated workloads (the same seed, the same trace).
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Replay this trace file (lines `alloc ID SIZE`, `free ID`, optional
    /// `heap BYTES`; `#` comments) instead of a shipped workload.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write the trace that is replayed to FILE (one workload only), to replay
    /// later with --trace or to edit.
    #[arg(long, value_name = "FILE")]
    pub save_trace: Option<PathBuf>,
    /// Heap capacity, a multiple of 4 KiB up to 1 GiB (suffixes K, M, G)
    /// [default: the trace's `heap` line, else 1M].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub heap: Option<u64>,
    /// Directory for the plots (SVG) and per-sample CSV.
    #[arg(long, value_name = "DIR", default_value = "target/kmem-frag")]
    pub out: PathBuf,
    /// Summary format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Replays per algorithm; each segment's time is the median over them
    /// (the fragmentation numbers are the same in every replay).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub repeat: usize,
    /// Write no plots or per-sample CSV.
    #[arg(long)]
    pub no_plot: bool,
}

/// Parses `4096`, `64K`, `1M`, `1G` (binary units).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 10),
        Some((i, 'm' | 'M')) => (&t[..i], 20),
        Some((i, 'g' | 'G')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a byte count (e.g. 65536, 64K, 1M)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Bytes for people: `512 B`, `3.5 KiB`, `1.00 MiB`.
pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else if v >= 10.0 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

fn check_heap(heap: u64) -> Result<u64, String> {
    if heap < 4096 || !heap.is_multiple_of(4096) || heap > MAX_HEAP {
        return Err(format!(
            "heap of {heap} bytes: it must be a multiple of 4096 between 4 KiB and 1 GiB"
        ));
    }
    Ok(heap)
}

/// The traces to replay, with the heap each gets.
fn traces(args: &FragArgs) -> Result<Vec<(Trace, u64)>, String> {
    let mut v = Vec::new();
    if let Some(path) = &args.trace {
        let mut t = Trace::load(path)?;
        if let Some(n) = args.ops {
            t.ops.truncate(n);
        }
        let heap = check_heap(args.heap.or(t.heap).unwrap_or(DEFAULT_HEAP))?;
        v.push((t, heap));
    } else {
        let heap = check_heap(args.heap.unwrap_or(DEFAULT_HEAP))?;
        let ops = args.ops.unwrap_or(DEFAULT_OPS);
        let which: &[Workload] = match args.workload {
            WorkloadArg::Uniform => &[Workload::Uniform],
            WorkloadArg::Powerlaw => &[Workload::Powerlaw],
            WorkloadArg::Server => &[Workload::Server],
            WorkloadArg::All => &Workload::ALL,
        };
        for &w in which {
            v.push((Trace::generate(w, ops, args.seed, heap), heap));
        }
    }
    if let Some(path) = &args.save_trace {
        let [(t, heap)] = v.as_slice() else {
            return Err("--save-trace writes one trace: name one --workload".into());
        };
        let mut t = t.clone();
        t.heap = Some(*heap);
        let comment = match &args.trace {
            Some(p) => format!("replayed from {}", p.display()),
            None => format!(
                "workload {}, seed {}, {} ops",
                t.name,
                args.seed,
                t.ops.len()
            ),
        };
        t.save(path, &comment)?;
    }
    Ok(v)
}

/// A progress bar on stderr over `total` operations; hidden when stderr is
/// not a terminal.
fn progress(total: u64) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg:24} [{bar:40}] {human_pos}/{human_len} ops {eta}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// Replays every algorithm over one trace.
pub fn replay_all(trace: &Trace, heap: u64, repeats: usize, pb: &ProgressBar) -> Vec<Run> {
    Algo::ALL
        .iter()
        .map(|&a| {
            pb.set_message(format!("{}: {}", trace.name, a.name()));
            replay(a, trace, heap, SAMPLES, repeats, &mut |n| pb.inc(n))
        })
        .collect()
}

/// Prints the table for one trace.
pub fn write_table(out: &mut dyn Write, trace: &Trace, heap: u64, runs: &[Run]) -> io::Result<()> {
    let (allocs, frees) = trace.counts();
    let (lo, hi, peak) = trace.shape();
    writeln!(
        out,
        "{}: {} ops ({allocs} alloc, {frees} free), requests {} … {}, peak live {} requested; heap {}",
        trace.name,
        trace.ops.len(),
        fmt_bytes(lo),
        fmt_bytes(hi),
        fmt_bytes(peak),
        fmt_bytes(heap),
    )?;
    writeln!(
        out,
        "{:<13} {:>8} {:>7} {:>10} {:>10} {:>10} {:>13} {:>8} {:>11} {:>11}",
        "algorithm",
        "ns/op",
        "failed",
        "footprint",
        "peak alloc",
        "int frag",
        "ext frag avg",
        "ext max",
        "largest min",
        "largest end"
    )?;
    for r in runs {
        writeln!(
            out,
            "{:<13} {:>8.1} {:>7} {:>10} {:>10} {:>9.1}% {:>13.3} {:>8.3} {:>11} {:>11}",
            r.algo.name(),
            r.ns_per_op,
            r.failures,
            fmt_bytes(r.peak_footprint),
            fmt_bytes(r.peak_allocated),
            100.0 * r.int_frag_mean(),
            r.ext_frag_mean(),
            r.ext_frag_max(),
            fmt_bytes(r.largest_min()),
            fmt_bytes(r.last().largest),
        )?;
    }
    writeln!(out)
}

/// The CSV header of [`write_csv_rows`].
pub const CSV_HEADER: &str = "trace,algorithm,ops,heap,ns_per_op,failed,first_failed_op,peak_footprint,peak_allocated,int_frag,ext_frag_mean,ext_frag_max,largest_min,largest_end";

/// One CSV row per algorithm.
pub fn write_csv_rows(
    out: &mut dyn Write,
    trace: &Trace,
    heap: u64,
    runs: &[Run],
) -> io::Result<()> {
    for r in runs {
        writeln!(
            out,
            "{},{},{},{heap},{:.1},{},{},{},{},{:.5},{:.5},{:.5},{},{}",
            trace.name,
            r.algo.name(),
            trace.ops.len(),
            r.ns_per_op,
            r.failures,
            r.first_failure.map_or(String::new(), |i| i.to_string()),
            r.peak_footprint,
            r.peak_allocated,
            r.int_frag_mean(),
            r.ext_frag_mean(),
            r.ext_frag_max(),
            r.largest_min(),
            r.last().largest
        )?;
    }
    Ok(())
}

/// Writes every sample of every run to `DIR/series-NAME.csv`.
fn write_series(dir: &Path, name: &str, runs: &[Run]) -> Result<PathBuf, String> {
    let path = dir.join(format!("series-{name}.csv"));
    let err = |e: io::Error| format!("cannot write {}: {e}", path.display());
    let f = std::fs::File::create(&path).map_err(err)?;
    let mut w = io::BufWriter::new(f);
    let mut write = || -> io::Result<()> {
        writeln!(
            w,
            "algorithm,op,largest,free,allocated,requested,ext_frag,int_frag,ns_per_op"
        )?;
        for r in runs {
            for s in &r.samples {
                writeln!(
                    w,
                    "{},{},{},{},{},{},{:.5},{:.5},{:.1}",
                    r.algo.name(),
                    s.op,
                    s.largest,
                    s.free,
                    s.allocated,
                    s.requested,
                    s.ext_frag(),
                    s.int_frag(),
                    s.ns_per_op
                )?;
            }
        }
        w.flush()
    };
    write().map_err(err)?;
    Ok(path)
}

const LEGEND: &str = "\
ns/op: mean time of one alloc or free (a clock reading per 1/200 of the trace, each segment the
  median of --repeat replays). failed: allocations no free block could hold (their frees are
  skipped). footprint: highest byte ever used. peak alloc: most bytes in blocks at once (rounded).
int frag: (allocated - requested) / allocated, weighted over the samples. ext frag: 1 - largest
  free block / free bytes, mean and worst of 200 samples. largest: the largest request that would
  succeed, lowest seen and at the end.";

/// Runs `kmem frag`.
pub fn run(args: &FragArgs, out: &mut dyn Write) -> io::Result<()> {
    let traces = traces(args).map_err(io::Error::other)?;
    let total: u64 = traces
        .iter()
        .map(|(t, _)| (t.ops.len() * Algo::ALL.len() * args.repeat.max(1)) as u64)
        .sum();
    let pb = progress(total);
    let mut results = Vec::new();
    for (t, heap) in &traces {
        let runs = replay_all(t, *heap, args.repeat, &pb);
        results.push((t, *heap, runs));
    }
    pb.finish_and_clear();
    if args.format == Format::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    let mut files = Vec::new();
    for (t, heap, runs) in &results {
        match args.format {
            Format::Table => write_table(out, t, *heap, runs)?,
            Format::Csv => write_csv_rows(out, t, *heap, runs)?,
        }
        if !args.no_plot {
            let mut f = plot::plot(&args.out, &t.name, *heap, runs).map_err(io::Error::other)?;
            f.push(write_series(&args.out, &t.name, runs).map_err(io::Error::other)?);
            files.extend(f);
        }
    }
    if args.format == Format::Table {
        writeln!(out, "{LEGEND}")?;
    }
    if !files.is_empty() {
        let list: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        let note = format!("plots and samples: {}", list.join(" "));
        match args.format {
            Format::Table => writeln!(out, "\n{note}")?,
            Format::Csv => eprintln!("kmem frag: {note}"),
        }
    }
    if let Some(p) = &args.save_trace {
        let note = format!("trace saved to {}", p.display());
        match args.format {
            Format::Table => writeln!(out, "{note}")?,
            Format::Csv => eprintln!("kmem frag: {note}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_parse_with_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("1m"), Ok(1 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert!(
            parse_bytes("lots")
                .unwrap_err()
                .contains("not a byte count")
        );
        assert!(
            parse_bytes("99999999999G")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn heaps_must_be_whole_pages_within_limits() {
        assert_eq!(check_heap(1 << 20), Ok(1 << 20));
        for bad in [0, 100, 4097, 2 << 30] {
            assert!(check_heap(bad).unwrap_err().contains("multiple of 4096"));
        }
    }

    #[test]
    fn bytes_print_in_binary_units() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1536), "1.50 KiB");
        assert_eq!(fmt_bytes(1 << 20), "1.00 MiB");
        assert_eq!(fmt_bytes(200 << 10), "200 KiB");
    }

    #[test]
    fn save_trace_needs_one_workload() {
        let args = FragArgs {
            workload: WorkloadArg::All,
            ops: Some(10),
            seed: 1,
            trace: None,
            save_trace: Some(std::env::temp_dir().join("kmem-frag-never-written")),
            heap: None,
            out: PathBuf::from("unused"),
            format: Format::Table,
            repeat: 1,
            no_plot: true,
        };
        assert!(traces(&args).unwrap_err().contains("one trace"));
    }
}
