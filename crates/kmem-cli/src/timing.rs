//! Small timing helpers for the report: medians of repeated batches.

use std::time::Instant;

/// Runs `op` `iters` times per batch, `batches` times, and returns the median
/// nanoseconds per call.
pub fn median_ns(batches: usize, iters: usize, mut op: impl FnMut()) -> f64 {
    // Warm up once.
    for _ in 0..iters.min(1000) {
        op();
    }
    let mut v: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                op();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Formats nanoseconds for a table column.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{ns:.1} ns")
    }
}
