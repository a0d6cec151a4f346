//! Turns the results of `cargo bench -p kmem-genalloc --bench genalloc` into
//! the markdown table of docs/BENCHMARKS.md (printed) and the plot
//! docs/genalloc-bench.svg.
//!
//! Run after the bench: `cargo run --release -p kmem-genalloc --example bench_plot`
//! (reads `$CARGO_TARGET_DIR/criterion`, default `target/criterion`).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

/// Chunk sizes; the plot's x is log2 of the size in MiB.
const SIZES: [(&str, f64); 4] = [
    ("1MiB", 0.0),
    ("256MiB", 8.0),
    ("64GiB", 16.0),
    ("1TiB", 20.0),
];
const FILLS: [usize; 4] = [0, 50, 90, 95];

fn median_ns(dir: &Path, mode: &str, size: &str, fill: usize) -> Option<f64> {
    let p = dir.join(format!(
        "genalloc_alloc_free_8k/{mode}/{size}_f{fill}/new/estimates.json"
    ));
    let s = std::fs::read_to_string(p).ok()?;
    let m = &s[s.find("\"median\"")?..];
    let v = &m[m.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    v[..v.find([',', '}'])?].trim().parse().ok()
}

fn fmt(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or(root.join("target"));
    let dir = target.join("criterion");
    let get = |m: &str, s: &str, f: usize| {
        median_ns(&dir, m, s, f).ok_or(format!("no result for {m}/{s}_f{f} in {}", dir.display()))
    };

    println!(
        "| chunk | fill | summary | kernel linear | offset-allocator | linear / summary | summary / offset-allocator |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (s, _) in SIZES {
        for f in FILLS {
            let (a, b, c) = (
                get("summary", s, f)?,
                get("linear", s, f)?,
                get("offset_allocator", s, f)?,
            );
            println!(
                "| {s} | {f}% | {} | {} | {} | {:.1}x | {:.2}x |",
                fmt(a),
                fmt(b),
                fmt(c),
                b / a,
                a / c
            );
        }
    }
    println!();
    for f in FILLS {
        let (small, big) = (get("summary", "1MiB", f)?, get("summary", "1TiB", f)?);
        println!("summary, {f}% full: 1 TiB / 1 MiB = {:.2}x", big / small);
    }

    let out = root.join("docs/genalloc-bench.svg");
    let area = SVGBackend::new(&out, (900, 560)).into_drawing_area();
    area.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&area)
        .caption(
            "genalloc: alloc+free of 8 KiB vs chunk size (4 KiB granules, filled from the front)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(-1f64..21f64, (10f64..1e8f64).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("chunk size (log scale)")
        .x_labels(23)
        .y_desc("ns per alloc+free (median)")
        .x_label_formatter(&|v| match v.round() as i64 {
            0 => "1 MiB".into(),
            4 => "16 MiB".into(),
            8 => "256 MiB".into(),
            12 => "4 GiB".into(),
            16 => "64 GiB".into(),
            20 => "1 TiB".into(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| fmt(*v))
        .draw()?;
    let styles: [(&str, RGBColor); 3] = [
        ("summary", BLUE),
        ("linear", RED),
        ("offset_allocator", GREEN),
    ];
    for (mode, color) in styles {
        for (k, f) in [0usize, 90, 95].into_iter().enumerate() {
            if mode == "offset_allocator" && f != 90 {
                continue;
            }
            let pts: Vec<(f64, f64)> = SIZES
                .iter()
                .filter_map(|&(s, x)| median_ns(&dir, mode, s, f).map(|y| (x, y)))
                .collect();
            let style = ShapeStyle {
                color: color.mix(1.0 - 0.3 * k as f64),
                filled: true,
                stroke_width: 2,
            };
            chart
                .draw_series(LineSeries::new(pts.clone(), style))?
                .label(format!("{} {f}% full", mode.replace('_', "-")))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, style)))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()?;
    area.present()?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
