//! Allocation traces: the text format `kmem frag` reads and writes, and the
//! shipped workloads, generated deterministically from a seed.
//!
//! The format, one operation a line (`#` starts a comment):
//!
//! ```text
//! # kmem frag trace
//! heap 1048576        # optional: the heap's capacity in bytes
//! alloc 1 528         # alloc ID SIZE: a request of SIZE bytes, named ID
//! free 1              # free ID: the block allocated as ID
//! ```
//!
//! An ID may be reused once freed. A free of an ID that is not live, an
//! alloc of a live ID, a size of 0 or a malformed line is an error naming
//! the line.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

/// One operation, with the alloc's ID mapped to a dense slot (the index of
/// the alloc among all allocs) so a replay needs no hashing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Allocate `size` bytes into `slot`.
    Alloc {
        /// Dense slot of this allocation.
        slot: u32,
        /// Bytes requested.
        size: u64,
    },
    /// Free what `slot` holds (nothing, if its alloc failed).
    Free {
        /// Slot of the matching alloc.
        slot: u32,
    },
}

/// A recorded sequence of allocations and frees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Workload name (or the file's stem), used in reports and file names.
    pub name: String,
    /// Heap capacity the trace asks for, if it says.
    pub heap: Option<u64>,
    /// The operations. Invariant: every `Free` names an earlier `Alloc`'s
    /// slot, at most once; slots are numbered 0.. in alloc order.
    pub ops: Vec<Op>,
    /// Slot → the ID it had in the file (written back on save).
    ids: Vec<u64>,
}

/// The shipped workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Sizes uniform in 16 B … 1 KiB, random lifetimes, live bytes held near
    /// 60 % of the heap.
    Uniform,
    /// Power-law (Pareto, α = 1.1) sizes from 16 B up to 1/16 of the heap: many
    /// tiny objects, a few huge ones; random lifetimes, live near 60 %.
    Powerlaw,
    /// A server: long-lived connections (a struct and a 2–4 KiB buffer),
    /// requests (a handful of small objects, sometimes an 8–64 KiB response
    /// buffer) freed together when the request completes, and a FIFO cache
    /// of 64 B … 4 KiB entries holding a fifth of the heap.
    Server,
}

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 3] = [Workload::Uniform, Workload::Powerlaw, Workload::Server];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Uniform => "uniform",
            Workload::Powerlaw => "powerlaw",
            Workload::Server => "server",
        }
    }
}

/// SplitMix64: small, fast and stable, so a seed names the same trace in
/// every version (a general-purpose RNG crate may change its streams).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-uniform in `lo..=hi`.
    fn log_range(&mut self, lo: u64, hi: u64) -> u64 {
        let (l, h) = ((lo as f64).ln(), (hi as f64 + 1.0).ln());
        ((l + (h - l) * self.unit()).exp() as u64).clamp(lo, hi)
    }
}

/// Builds a trace op by op, handing out slots.
struct Builder {
    ops: Vec<Op>,
    next_slot: u32,
    /// Requested bytes per live slot.
    live_size: HashMap<u32, u64>,
    live_bytes: u64,
    limit: usize,
}

impl Builder {
    fn new(limit: usize) -> Builder {
        Builder {
            ops: Vec::with_capacity(limit),
            next_slot: 0,
            live_size: HashMap::new(),
            live_bytes: 0,
            limit,
        }
    }

    fn full(&self) -> bool {
        self.ops.len() >= self.limit
    }

    fn alloc(&mut self, size: u64) -> u32 {
        let slot = self.next_slot;
        self.next_slot += 1;
        if !self.full() {
            self.ops.push(Op::Alloc { slot, size });
            self.live_size.insert(slot, size);
            self.live_bytes += size;
        }
        slot
    }

    fn free(&mut self, slot: u32) {
        if self.full() {
            return;
        }
        if let Some(size) = self.live_size.remove(&slot) {
            self.ops.push(Op::Free { slot });
            self.live_bytes -= size;
        }
    }

    fn finish(self, name: &str, heap: u64) -> Trace {
        let allocs = self
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Alloc { .. }))
            .count();
        Trace {
            name: name.to_string(),
            heap: Some(heap),
            ops: self.ops,
            ids: (0..allocs as u64).collect(),
        }
    }
}

/// Random-lifetime churn: a ramp (almost only allocations) up to `target`
/// live bytes, then allocations and frees of random live objects, tilted to
/// stay near the target.
fn churn(b: &mut Builder, rng: &mut Rng, target: u64, mut size: impl FnMut(&mut Rng) -> u64) {
    let mut live: Vec<u32> = Vec::new();
    let mut ramp = true;
    while !b.full() {
        ramp &= b.live_bytes < target;
        let p_alloc = match (ramp, b.live_bytes < target) {
            (true, _) => 0.95,
            (false, true) => 0.6,
            (false, false) => 0.4,
        };
        if live.is_empty() || rng.unit() < p_alloc {
            let s = size(rng);
            live.push(b.alloc(s));
        } else {
            let i = rng.below(live.len() as u64) as usize;
            let slot = live.swap_remove(i);
            b.free(slot);
        }
    }
}

/// The server-like mix (see [`Workload::Server`]).
fn server(b: &mut Builder, rng: &mut Rng, heap: u64) {
    // Counts scale with the heap (the mix is tuned for 1 MiB).
    let conn_target = ((32 * heap) >> 20).max(1) as usize;
    let max_inflight = ((48 * heap) >> 20).max(1) as usize;
    let cache_budget = heap / 5;
    let big_max = (64 << 10).min(heap / 16).max(8 << 10);
    let mut conns: Vec<[u32; 2]> = Vec::new();
    let mut inflight: Vec<Vec<u32>> = Vec::new();
    let mut cache: VecDeque<(u32, u64)> = VecDeque::new();
    let mut cache_bytes = 0;
    while !b.full() {
        let r = rng.unit();
        if r < 0.02 {
            let open = conns.len() < conn_target.saturating_sub(4)
                || (conns.len() < conn_target + 4 && rng.unit() < 0.5);
            if open || conns.is_empty() {
                let st = b.alloc(rng.range(256, 1024));
                let buf = b.alloc(if rng.unit() < 0.7 { 2048 } else { 4096 });
                conns.push([st, buf]);
            } else {
                let i = rng.below(conns.len() as u64) as usize;
                for s in conns.swap_remove(i) {
                    b.free(s);
                }
            }
        } else if (r < 0.45 && inflight.len() < max_inflight) || inflight.is_empty() {
            let n = rng.range(3, 12);
            let mut req: Vec<u32> = (0..n).map(|_| b.alloc(rng.log_range(24, 512))).collect();
            if rng.unit() < 0.1 {
                req.push(b.alloc(rng.range(8 << 10, big_max)));
            }
            inflight.push(req);
        } else if r < 0.8 {
            let i = rng.below(inflight.len() as u64) as usize;
            for s in inflight.swap_remove(i) {
                b.free(s);
            }
        } else {
            let size = rng.log_range(64, 4096);
            cache.push_back((b.alloc(size), size));
            cache_bytes += size;
            while cache_bytes > cache_budget {
                let Some((s, sz)) = cache.pop_front() else {
                    break;
                };
                b.free(s);
                cache_bytes -= sz;
            }
        }
    }
}

impl Trace {
    /// Generates `ops` operations of `workload` for a heap of `heap` bytes;
    /// the same arguments give the same trace.
    pub fn generate(workload: Workload, ops: usize, seed: u64, heap: u64) -> Trace {
        let mut rng = Rng(seed ^ (workload as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut b = Builder::new(ops);
        let target = heap / 10 * 6;
        match workload {
            Workload::Uniform => churn(&mut b, &mut rng, target, |r| r.range(16, 1024)),
            Workload::Powerlaw => {
                let max = (heap / 16).max(16) as f64;
                churn(&mut b, &mut rng, target, |r| {
                    // Pareto: P(size > s) = (16 / s)^1.1, cut at `max`.
                    let u = 1.0 - r.unit();
                    (16.0 * u.powf(-1.0 / 1.1)).min(max) as u64
                })
            }
            Workload::Server => server(&mut b, &mut rng, heap),
        }
        b.finish(workload.name(), heap)
    }

    /// Parses the text format (see the module docs); `name` labels the trace.
    pub fn parse(name: &str, text: &str) -> Result<Trace, String> {
        let mut ops = Vec::new();
        let mut ids = Vec::new();
        let mut heap = None;
        let mut live: HashMap<u64, u32> = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let err = |what: String| format!("{name}:{}: {what}: {:?}", n + 1, line.trim());
            let words: Vec<&str> = line
                .split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let num = |w: &str, what: &str| {
                w.parse::<u64>()
                    .map_err(|_| err(format!("{what} must be a non-negative integer")))
            };
            match words.as_slice() {
                [] => {}
                ["heap", bytes] => heap = Some(num(bytes, "heap size")?),
                ["alloc", id, size] => {
                    let (id, size) = (num(id, "id")?, num(size, "size")?);
                    if size == 0 {
                        return Err(err("size 0 (every request is at least 1 byte)".into()));
                    }
                    let slot = u32::try_from(ids.len())
                        .map_err(|_| err("more than 2^32 allocations".into()))?;
                    if live.insert(id, slot).is_some() {
                        return Err(err(format!("alloc of id {id}, which is still live")));
                    }
                    ids.push(id);
                    ops.push(Op::Alloc { slot, size });
                }
                ["free", id] => {
                    let id = num(id, "id")?;
                    let slot = live
                        .remove(&id)
                        .ok_or_else(|| err(format!("free of id {id}, which is not live")))?;
                    ops.push(Op::Free { slot });
                }
                _ => {
                    return Err(err(
                        "expected `alloc ID SIZE`, `free ID` or `heap BYTES`".into()
                    ));
                }
            }
        }
        Ok(Trace {
            name: name.to_string(),
            heap,
            ops,
            ids,
        })
    }

    /// Reads a trace file; the trace is named for the file's stem.
    pub fn load(path: &Path) -> Result<Trace, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read trace {}: {e}", path.display()))?;
        let stem = path
            .file_stem()
            .map_or("trace".into(), |s| s.to_string_lossy().into_owned());
        let name: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Trace::parse(&name, &text)
    }

    /// Writes the trace in the text format.
    pub fn write(&self, out: &mut dyn Write, comment: &str) -> io::Result<()> {
        let mut w = io::BufWriter::new(out);
        writeln!(w, "# kmem frag trace: {comment}")?;
        writeln!(w, "# alloc ID SIZE | free ID")?;
        if let Some(h) = self.heap {
            writeln!(w, "heap {h}")?;
        }
        let mut line = String::new();
        for op in &self.ops {
            line.clear();
            match *op {
                Op::Alloc { slot, size } => {
                    let _ = writeln!(line, "alloc {} {size}", self.ids[slot as usize]);
                }
                Op::Free { slot } => {
                    let _ = writeln!(line, "free {}", self.ids[slot as usize]);
                }
            }
            w.write_all(line.as_bytes())?;
        }
        w.flush()
    }

    /// Writes the trace to `path`.
    pub fn save(&self, path: &Path, comment: &str) -> Result<(), String> {
        let mut f = std::fs::File::create(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        self.write(&mut f, comment)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Number of slots (allocations) the trace uses.
    pub fn slots(&self) -> usize {
        self.ids.len()
    }

    /// Allocs and frees.
    pub fn counts(&self) -> (usize, usize) {
        let allocs = self.slots();
        (allocs, self.ops.len() - allocs)
    }

    /// The smallest and largest request, and the peak of live requested bytes.
    pub fn shape(&self) -> (u64, u64, u64) {
        let mut sizes = vec![0u64; self.slots()];
        let (mut lo, mut hi, mut live, mut peak) = (u64::MAX, 0, 0u64, 0);
        for op in &self.ops {
            match *op {
                Op::Alloc { slot, size } => {
                    sizes[slot as usize] = size;
                    lo = lo.min(size);
                    hi = hi.max(size);
                    live += size;
                    peak = peak.max(live);
                }
                Op::Free { slot } => live -= sizes[slot as usize],
            }
        }
        (if hi == 0 { 0 } else { lo }, hi, peak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operations per generated trace in these tests (Miri is slow).
    const OPS: usize = if cfg!(miri) { 300 } else { 3000 };

    #[test]
    fn the_same_seed_gives_the_same_trace() {
        for w in Workload::ALL {
            let a = Trace::generate(w, OPS, 7, 1 << 20);
            assert_eq!(a, Trace::generate(w, OPS, 7, 1 << 20));
            assert_ne!(a.ops, Trace::generate(w, OPS, 8, 1 << 20).ops);
            assert_eq!(a.ops.len(), OPS);
        }
    }

    #[test]
    fn generated_traces_are_well_formed_and_stay_near_their_target() {
        let cases: &[(u64, usize)] = if cfg!(miri) {
            &[(64 << 10, 4000)]
        } else {
            &[(1 << 20, 20_000), (64 << 10, 4000), (4 << 20, 60_000)]
        };
        for (w, &(heap, ops)) in Workload::ALL
            .iter()
            .flat_map(|w| cases.iter().map(move |c| (*w, c)))
        {
            let t = Trace::generate(w, ops, 1, heap);
            let mut live = vec![false; t.slots()];
            for op in &t.ops {
                match *op {
                    Op::Alloc { slot, size } => {
                        assert!(!live[slot as usize] && (1..=heap).contains(&size));
                        live[slot as usize] = true;
                    }
                    Op::Free { slot } => {
                        assert!(live[slot as usize], "{w:?}: free of dead slot");
                        live[slot as usize] = false;
                    }
                }
            }
            let (lo, hi, peak) = t.shape();
            assert!(lo >= 1 && hi <= heap);
            // Live bytes reach half the heap but never exceed it (requested).
            assert!(
                peak > heap / 2 && peak < heap,
                "{w:?} heap {heap}: peak {peak}"
            );
        }
    }

    #[test]
    fn text_round_trip() {
        let t = Trace::generate(Workload::Server, OPS, 3, 1 << 20);
        let mut buf = Vec::new();
        t.write(&mut buf, "test").unwrap();
        let back = Trace::parse("server", std::str::from_utf8(&buf).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn ids_may_be_reused_after_free() {
        let t = Trace::parse("t", "alloc 5 10\nfree 5\nalloc 5 20 # again\nfree 5\n").unwrap();
        assert_eq!(
            t.ops,
            vec![
                Op::Alloc { slot: 0, size: 10 },
                Op::Free { slot: 0 },
                Op::Alloc { slot: 1, size: 20 },
                Op::Free { slot: 1 }
            ]
        );
        assert_eq!(t.heap, None);
    }

    #[test]
    fn bad_lines_are_errors_naming_the_line() {
        let cases = [
            (
                "alloc 1 8\nfree 2\n",
                "t:2: free of id 2, which is not live",
            ),
            (
                "alloc 1 8\nalloc 1 8\n",
                "t:2: alloc of id 1, which is still live",
            ),
            ("alloc 1 0\n", "t:1: size 0"),
            (
                "heap lots\n",
                "t:1: heap size must be a non-negative integer",
            ),
            ("malloc 3\n", "t:1: expected `alloc ID SIZE`"),
            ("alloc -1 8\n", "t:1: id must be"),
        ];
        for (text, want) in cases {
            let e = Trace::parse("t", text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
