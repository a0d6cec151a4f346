//! Replaying a trace through one algorithm, and what is measured on the way.
//!
//! The trace is cut into segments (one per sample); each segment's operations
//! run back to back under one clock reading, and the heap is examined
//! (largest free block, free bytes) between segments, outside the clock.

use std::time::Instant;

use super::heap::{Algo, AnyHeap, Block, Heap};
use super::trace::{Op, Trace};

/// The heap's state after a segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Operations replayed so far.
    pub op: usize,
    /// The largest request that would succeed now (= the largest free block).
    pub largest: u64,
    /// Bytes in no live block.
    pub free: u64,
    /// Σ live block lengths (requests as rounded by the algorithm).
    pub allocated: u64,
    /// Σ live requested bytes.
    pub requested: u64,
    /// Mean time per operation over the segment that ended here.
    pub ns_per_op: f64,
}

impl Sample {
    /// External fragmentation: 1 − largest free block / total free (0 when
    /// nothing is free).
    pub fn ext_frag(&self) -> f64 {
        if self.free == 0 {
            0.0
        } else {
            1.0 - self.largest as f64 / self.free as f64
        }
    }

    /// Internal fragmentation: (allocated − requested) / allocated (0 when
    /// nothing is allocated).
    pub fn int_frag(&self) -> f64 {
        if self.allocated == 0 {
            0.0
        } else {
            (self.allocated - self.requested) as f64 / self.allocated as f64
        }
    }
}

/// One algorithm's replay of one trace.
#[derive(Clone, Debug)]
pub struct Run {
    /// The algorithm.
    pub algo: Algo,
    /// Heap capacity.
    pub heap: u64,
    /// Samples in op order; the last is after the whole trace.
    pub samples: Vec<Sample>,
    /// Allocations that failed (no free block fit).
    pub failures: u64,
    /// Index of the first operation that failed.
    pub first_failure: Option<usize>,
    /// Mean time per operation over the whole replay (Σ segment medians).
    pub ns_per_op: f64,
    /// One past the highest byte any block reached.
    pub peak_footprint: u64,
    /// The most bytes allocated (rounded) at any moment.
    pub peak_allocated: u64,
}

impl Run {
    /// Mean external fragmentation over the samples.
    pub fn ext_frag_mean(&self) -> f64 {
        mean(self.samples.iter().map(Sample::ext_frag))
    }

    /// Worst external fragmentation of any sample.
    pub fn ext_frag_max(&self) -> f64 {
        self.samples
            .iter()
            .map(Sample::ext_frag)
            .fold(0.0, f64::max)
    }

    /// Internal fragmentation over the replay: Σ over samples of (allocated −
    /// requested) / Σ allocated (the mean weighted by bytes allocated).
    pub fn int_frag_mean(&self) -> f64 {
        let alloc: u64 = self.samples.iter().map(|s| s.allocated).sum();
        let req: u64 = self.samples.iter().map(|s| s.requested).sum();
        if alloc == 0 {
            0.0
        } else {
            (alloc - req) as f64 / alloc as f64
        }
    }

    /// The smallest "largest satisfiable request" seen.
    pub fn largest_min(&self) -> u64 {
        let min = self.samples.iter().map(|s| s.largest).min();
        min.unwrap_or(self.last().largest)
    }

    /// The state after the whole trace.
    pub fn last(&self) -> Sample {
        self.samples.last().copied().unwrap_or(Sample {
            op: 0,
            largest: self.heap,
            free: self.heap,
            allocated: 0,
            requested: 0,
            ns_per_op: 0.0,
        })
    }
}

fn mean(it: impl Iterator<Item = f64>) -> f64 {
    let (n, s) = it.fold((0usize, 0.0), |(n, s), x| (n + 1, s + x));
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// Replays `trace` through a fresh `algo` heap of `heap` bytes `repeats`
/// times (at least once), taking about `samples` samples; `tick(n)` is told
/// after every `n` operations.
///
/// The replay is deterministic, so every repeat passes through the same
/// states; the samples come from the first, and each segment's time is the
/// median over the repeats (a noisy machine's preemptions fall out).
pub fn replay(
    algo: Algo,
    trace: &Trace,
    heap: u64,
    samples: usize,
    repeats: usize,
    tick: &mut dyn FnMut(u64),
) -> Run {
    let mut run: Option<Run> = None;
    let mut times: Vec<Vec<f64>> = Vec::new();
    for i in 0..repeats.max(1) {
        let observe = i == 0;
        let r = match &mut AnyHeap::new(algo, heap) {
            AnyHeap::List(h) => replay_in(h, algo, trace, samples, observe, tick),
            AnyHeap::Buddy(h) => replay_in(h, algo, trace, samples, observe, tick),
            AnyHeap::Slab(h) => replay_in(&mut **h, algo, trace, samples, observe, tick),
        };
        times.push(r.samples.iter().map(|s| s.ns_per_op).collect());
        run.get_or_insert(r);
    }
    let mut run = run.expect("at least one replay");
    let (mut total, mut prev) = (0.0, 0);
    for (i, s) in run.samples.iter_mut().enumerate() {
        let mut t: Vec<f64> = times.iter().map(|v| v[i]).collect();
        t.sort_by(f64::total_cmp);
        s.ns_per_op = t[t.len() / 2];
        total += s.ns_per_op * (s.op - prev) as f64;
        prev = s.op;
    }
    run.ns_per_op = if prev == 0 { 0.0 } else { total / prev as f64 };
    run
}

/// One replay, monomorphic in the heap type so that the timed loop makes
/// direct calls; `observe`: also examine the heap after each segment
/// (otherwise the samples carry only the times).
fn replay_in<H: Heap>(
    h: &mut H,
    algo: Algo,
    trace: &Trace,
    samples: usize,
    observe: bool,
    tick: &mut dyn FnMut(u64),
) -> Run {
    let every = trace.ops.len().div_ceil(samples.max(1)).max(1);
    let mut blocks = vec![Block { offset: 0, len: 0 }; trace.slots()];
    let mut sizes = vec![0u64; trace.slots()];
    let mut run = Run {
        algo,
        heap: h.capacity(),
        samples: Vec::with_capacity(samples + 1),
        failures: 0,
        first_failure: None,
        ns_per_op: 0.0,
        peak_footprint: 0,
        peak_allocated: 0,
    };
    let (mut requested, mut done) = (0u64, 0usize);
    for chunk in trace.ops.chunks(every) {
        let t = Instant::now();
        for (i, op) in chunk.iter().enumerate() {
            match *op {
                Op::Alloc { slot, size } => match h.alloc(size) {
                    Some(b) => {
                        blocks[slot as usize] = b;
                        sizes[slot as usize] = size;
                        requested += size;
                        run.peak_allocated = run.peak_allocated.max(h.capacity() - h.free_bytes());
                    }
                    None => {
                        run.failures += 1;
                        run.first_failure.get_or_insert(done + i);
                    }
                },
                Op::Free { slot } => {
                    let b = blocks[slot as usize];
                    if b.len != 0 {
                        h.free(b);
                        requested -= sizes[slot as usize];
                    }
                }
            }
        }
        let ns = t.elapsed().as_nanos();
        done += chunk.len();
        run.samples.push(Sample {
            op: done,
            largest: if observe { h.largest_request() } else { 0 },
            free: h.free_bytes(),
            allocated: h.capacity() - h.free_bytes(),
            requested,
            ns_per_op: ns as f64 / chunk.len() as f64,
        });
        tick(chunk.len() as u64);
    }
    run.peak_footprint = h.high_water();
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operations per generated trace in these tests (Miri is slow).
    const OPS: usize = if cfg!(miri) { 200 } else { 3000 };

    fn run(algo: Algo, text: &str, heap: u64) -> Run {
        let t = Trace::parse("hand", text).unwrap();
        replay(algo, &t, heap, 1000, 1, &mut |_| {})
    }

    /// Three 1000-byte blocks (1008 with the granule), the middle one freed.
    const HOLE: &str = "alloc 1 1000\nalloc 2 1000\nalloc 3 1000\nfree 2\n";

    #[test]
    fn fragmentation_of_a_hand_made_trace_first_fit() {
        let r = run(Algo::FirstFit, HOLE, 4096);
        let s = r.last();
        // Free: the 1008-byte hole and the 4096 - 3024 = 1072-byte tail.
        assert_eq!(s.free, 4096 - 2 * 1008);
        assert_eq!(s.largest, 1072);
        assert!((s.ext_frag() - (1.0 - 1072.0 / 2080.0)).abs() < 1e-12);
        assert_eq!(s.allocated, 2016);
        assert_eq!(s.requested, 2000);
        assert!((s.int_frag() - 16.0 / 2016.0).abs() < 1e-12);
        assert_eq!(r.peak_footprint, 3024);
        assert_eq!(r.peak_allocated, 3024);
        assert_eq!(r.failures, 0);
        assert_eq!(r.samples.len(), 4);
        // After op 1: one block, the rest one free block.
        assert_eq!(r.samples[0].ext_frag(), 0.0);
        assert_eq!(r.largest_min(), 1072);
    }

    #[test]
    fn fragmentation_of_a_hand_made_trace_buddy() {
        let r = run(Algo::Buddy, HOLE, 4096);
        let s = r.last();
        // Three 1024 blocks; the freed middle one cannot merge (its buddy, the
        // first, is live): free = 1024 + 1024, largest 1024.
        assert_eq!((s.free, s.largest), (2048, 1024));
        assert_eq!(s.ext_frag(), 0.5);
        assert_eq!(s.allocated, 2048);
        assert!((s.int_frag() - 48.0 / 2048.0).abs() < 1e-12);
        assert_eq!(r.peak_footprint, 3072);
    }

    #[test]
    fn failures_are_counted_and_their_frees_skipped() {
        // Worst fit: 3000 bytes fit; then 2000 does not (1088 left).
        let text = "alloc 1 3000\nalloc 2 2000\nfree 2\nfree 1\nalloc 3 4096\n";
        let r = run(Algo::WorstFit, text, 4096);
        assert_eq!(r.failures, 1);
        assert_eq!(r.first_failure, Some(1));
        let s = r.last();
        assert_eq!((s.free, s.largest, s.requested), (0, 0, 4096));
        assert_eq!(s.ext_frag(), 0.0);
        assert_eq!(s.int_frag(), 0.0);
    }

    #[test]
    fn slab_free_space_stranded_in_one_class_is_external_fragmentation() {
        // 4 pages: fill two with 16-byte objects, free all but the first of
        // each page's; a 100-byte request still finds a fresh page, but the
        // largest free block is 2 pages, not the 8160 free bytes.
        let mut text = String::new();
        for i in 0..512 {
            text += &format!("alloc {i} 16\n");
        }
        for i in (0..512).filter(|i| i % 256 != 0) {
            text += &format!("free {i}\n");
        }
        let r = run(Algo::Slab, &text, 4 * 4096);
        let s = r.last();
        assert_eq!(s.free, 4 * 4096 - 32);
        assert_eq!(s.largest, 2 * 4096);
        assert!((s.ext_frag() - (1.0 - 8192.0 / (16384.0 - 32.0))).abs() < 1e-12);
    }

    #[test]
    fn samples_cover_the_trace() {
        let t = Trace::generate(super::super::trace::Workload::Uniform, OPS, 1, 1 << 20);
        let mut ticks = 0;
        let r = replay(Algo::BestFit, &t, 1 << 20, 10, 3, &mut |n| ticks += n);
        assert_eq!(ticks, 3 * OPS as u64);
        assert_eq!(r.samples.len(), 10);
        assert_eq!(r.samples.last().unwrap().op, OPS);
        assert!(r.samples.windows(2).all(|w| w[0].op < w[1].op));
    }

    #[test]
    fn repeats_change_only_the_times() {
        let t = Trace::generate(super::super::trace::Workload::Server, OPS, 2, 1 << 20);
        for algo in Algo::ALL {
            let one = replay(algo, &t, 1 << 20, 30, 1, &mut |_| {});
            let three = replay(algo, &t, 1 << 20, 30, 3, &mut |_| {});
            let strip = |r: &Run| -> Vec<Sample> {
                r.samples
                    .iter()
                    .map(|s| Sample {
                        ns_per_op: 0.0,
                        ..*s
                    })
                    .collect()
            };
            assert_eq!(strip(&one), strip(&three), "{algo:?}");
            assert_eq!(
                (one.failures, one.peak_footprint, one.peak_allocated),
                (three.failures, three.peak_footprint, three.peak_allocated)
            );
            assert!(three.ns_per_op > 0.0);
        }
    }

    #[test]
    fn an_empty_trace_leaves_the_heap_whole() {
        let r = run(Algo::Buddy, "", 8192);
        assert!(r.samples.is_empty());
        assert_eq!(r.largest_min(), 8192);
        assert_eq!(r.last().largest, 8192);
        assert_eq!((r.failures, r.ns_per_op, r.peak_footprint), (0, 0.0, 0));
    }
}
