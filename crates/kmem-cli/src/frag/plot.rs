//! The plots of `kmem frag`: per trace, one SVG each for the largest
//! satisfiable request, external fragmentation and time per operation over
//! the replay, one line per algorithm.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::fmt_bytes;
use super::metrics::{Run, Sample};

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
];

/// What one chart shows.
struct Chart<'a> {
    file: String,
    title: String,
    y_desc: &'a str,
    log: bool,
    value: fn(&Sample) -> f64,
    label: fn(f64) -> String,
}

/// Writes `largest-NAME.svg`, `frag-NAME.svg` and `time-NAME.svg` into `dir`
/// (created if missing); returns their paths.
pub fn plot(dir: &Path, name: &str, heap: u64, runs: &[Run]) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let heap_s = fmt_bytes(heap);
    let charts = [
        Chart {
            file: format!("largest-{name}.svg"),
            title: format!("{name}: largest satisfiable request (heap {heap_s})"),
            y_desc: "largest request that would succeed (log)",
            log: true,
            value: |s| s.largest.max(1) as f64,
            label: |v| fmt_bytes(v.round() as u64),
        },
        Chart {
            file: format!("frag-{name}.svg"),
            title: format!("{name}: external fragmentation, 1 - largest free / free"),
            y_desc: "external fragmentation",
            log: false,
            value: Sample::ext_frag,
            label: |v| format!("{v:.1}"),
        },
        Chart {
            file: format!("time-{name}.svg"),
            title: format!("{name}: time per operation (each segment: mean, median of repeats)"),
            y_desc: "ns per alloc or free (log)",
            log: true,
            value: |s| s.ns_per_op.max(0.1),
            label: |v| format!("{v:.0} ns"),
        },
    ];
    let mut paths = Vec::new();
    for c in &charts {
        let path = dir.join(&c.file);
        draw(&path, c, runs).map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

fn draw(path: &Path, c: &Chart, runs: &[Run]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = runs
        .iter()
        .filter_map(|r| r.samples.last())
        .map(|s| s.op)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let values = || runs.iter().flat_map(|r| r.samples.iter().map(c.value));
    let y_max = values().fold(f64::MIN, f64::max).max(1e-9);
    let y_min = values().fold(f64::MAX, f64::min);
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(&c.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80);
    let series = |r: &Run| -> Vec<(f64, f64)> {
        r.samples
            .iter()
            .map(|s| (s.op as f64, (c.value)(s)))
            .collect()
    };
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("operations replayed")
                .x_label_formatter(&|v| format!("{}", v.round() as u64))
                .y_desc(c.y_desc)
                .y_label_formatter(&|v| (c.label)(*v))
                .draw()?;
            for (i, r) in runs.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(series(r), color.stroke_width(2)))?
                    .label(r.algo.name())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.85))
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }};
    }
    if c.log {
        let lo = (y_min.max(1e-3) / 2.0).min(y_max / 4.0);
        // Headroom above the data for the legend.
        finish!(builder.build_cartesian_2d(0f64..x_max, (lo..y_max * 12.0).log_scale())?);
    } else {
        finish!(builder.build_cartesian_2d(0f64..x_max, 0f64..y_max.max(1.0) * 1.35)?);
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::heap::Algo;
    use super::super::metrics::replay;
    use super::super::trace::{Trace, Workload};
    use super::*;

    #[test]
    #[cfg_attr(
        miri,
        ignore = "plotters' SVG writer is slow under Miri and has no unsafe of ours"
    )]
    fn writes_three_svg_files_with_every_algorithm() {
        let dir = std::env::temp_dir().join(format!("kmem-frag-plot-{}", std::process::id()));
        let t = Trace::generate(Workload::Powerlaw, 2000, 1, 1 << 20);
        let runs: Vec<Run> = Algo::ALL
            .iter()
            .map(|&a| replay(a, &t, 1 << 20, 50, 1, &mut |_| {}))
            .collect();
        let paths = plot(&dir, "powerlaw", 1 << 20, &runs).unwrap();
        assert_eq!(paths.len(), 3);
        for p in &paths {
            let svg = std::fs::read_to_string(p).unwrap();
            assert!(svg.starts_with("<svg"), "{}", p.display());
            assert!(svg.contains("<polyline"), "{}: no lines", p.display());
            for a in Algo::ALL {
                assert!(svg.contains(a.name()), "{}: no {}", p.display(), a.name());
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
