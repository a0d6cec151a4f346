//! The slabtop-like screen: a summary of all caches, then one row per
//! cache sorted by the chosen key. Drawn with ratatui, for the terminal
//! (`kmem top`) and into a buffer (`kmem top --once`, the tests).

use ratatui::Frame;
use ratatui::backend::TestBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table};

use super::parse::{SlabRow, Snapshot};

/// The page size slab sizes are counted in.
pub const PAGE_SIZE: u64 = 4096;

/// What the rows are sorted by (slabtop's keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    /// Number of objects, most first (key `o`, the default).
    Objs,
    /// Active objects, most first (key `a`).
    Active,
    /// Object size, largest first (key `s`).
    Size,
    /// Cache size (memory in slabs), largest first (key `c`).
    Cache,
    /// Name, A to Z (key `n`).
    Name,
    /// Use (active / all objects), highest first (key `u`).
    Use,
    /// Number of slabs, most first (key `l`).
    Slabs,
}

impl SortKey {
    /// The sort key a key press selects, as in slabtop.
    pub fn from_key(c: char) -> Option<SortKey> {
        Some(match c {
            'o' => SortKey::Objs,
            'a' => SortKey::Active,
            's' => SortKey::Size,
            'c' => SortKey::Cache,
            'n' => SortKey::Name,
            'u' => SortKey::Use,
            'l' => SortKey::Slabs,
            _ => return None,
        })
    }

    /// Sorts `rows` by this key; ties go by name, so the order is total.
    pub fn sort(self, rows: &mut [SlabRow]) {
        rows.sort_by(|a, b| {
            let by = match self {
                SortKey::Objs => b.num_objs.cmp(&a.num_objs),
                SortKey::Active => b.active_objs.cmp(&a.active_objs),
                SortKey::Size => b.objsize.cmp(&a.objsize),
                SortKey::Cache => b.cache_bytes(PAGE_SIZE).cmp(&a.cache_bytes(PAGE_SIZE)),
                SortKey::Name => std::cmp::Ordering::Equal,
                // active/num, compared exactly (an empty cache counts as 0).
                SortKey::Use => {
                    let frac = |r: &SlabRow| {
                        (
                            r.active_objs.min(r.num_objs) as u128,
                            r.num_objs.max(1) as u128,
                        )
                    };
                    let ((an, ad), (bn, bd)) = (frac(a), frac(b));
                    (bn * ad).cmp(&(an * bd))
                }
                SortKey::Slabs => b.num_slabs.cmp(&a.num_slabs),
            };
            by.then_with(|| a.name.cmp(&b.name))
        });
    }

    /// The column this key sorts (index into [`COLUMNS`]).
    fn column(self) -> usize {
        match self {
            SortKey::Objs => 0,
            SortKey::Active => 1,
            SortKey::Use => 2,
            SortKey::Size => 3,
            SortKey::Slabs => 4,
            SortKey::Cache => 6,
            SortKey::Name => 7,
        }
    }
}

/// The table's columns, as slabtop names them, with their widths.
const COLUMNS: [(&str, u16); 8] = [
    ("OBJS", 9),
    ("ACTIVE", 9),
    ("USE", 5),
    ("OBJ SIZE", 9),
    ("SLABS", 8),
    ("OBJ/SLAB", 9),
    ("CACHE SIZE", 11),
    ("NAME", 0),
];

/// Totals over all caches (slabtop's header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Active objects in all caches.
    pub active_objs: u64,
    /// Objects in all caches.
    pub num_objs: u64,
    /// Slabs with an object in use.
    pub active_slabs: u64,
    /// All slabs.
    pub num_slabs: u64,
    /// Caches with an object in use.
    pub active_caches: u64,
    /// All caches.
    pub caches: u64,
    /// Bytes in active objects.
    pub active_bytes: u64,
    /// Bytes in all objects.
    pub total_bytes: u64,
    /// Smallest, average and largest object size.
    pub min_obj: u64,
    /// Average object size over all objects.
    pub avg_obj: u64,
    /// Largest object size.
    pub max_obj: u64,
}

impl Totals {
    /// Sums `rows`.
    pub fn of(rows: &[SlabRow]) -> Totals {
        let mut t = Totals {
            min_obj: rows.iter().map(|r| r.objsize).min().unwrap_or(0),
            max_obj: rows.iter().map(|r| r.objsize).max().unwrap_or(0),
            caches: rows.len() as u64,
            ..Totals::default()
        };
        for r in rows {
            t.active_objs += r.active_objs;
            t.num_objs += r.num_objs;
            t.active_slabs += r.active_slabs;
            t.num_slabs += r.num_slabs;
            t.active_caches += u64::from(r.active_objs > 0);
            t.active_bytes += r.active_objs.saturating_mul(r.objsize);
            t.total_bytes += r.num_objs.saturating_mul(r.objsize);
        }
        t.avg_obj = t.total_bytes.checked_div(t.num_objs).unwrap_or(0);
        t
    }
}

fn pct(a: u64, b: u64) -> String {
    if b == 0 {
        "0.0%".into()
    } else {
        format!("{:.1}%", a as f64 * 100.0 / b as f64)
    }
}

/// slabtop's sizes: kibibytes with two decimals.
fn kib2(bytes: u64) -> String {
    format!("{:.2}K", bytes as f64 / 1024.0)
}

/// Everything one frame shows.
#[derive(Clone, Debug)]
pub struct View {
    /// What is watched (title).
    pub target: String,
    /// The last snapshot read, if any.
    pub snap: Option<Snapshot>,
    /// The sort key.
    pub sort: SortKey,
    /// An error from the last read (the last good snapshot stays shown).
    pub status: Option<String>,
    /// Key help and refresh period at the bottom (live view only).
    pub help: Option<String>,
}

/// The summary lines above the table.
fn summary(view: &View) -> Vec<Line<'static>> {
    let empty = Snapshot::default();
    let snap = view.snap.as_ref().unwrap_or(&empty);
    let t = Totals::of(&snap.caches);
    let mut lines = vec![
        Line::from(format!(
            " kmem top — {}{}",
            view.target,
            match snap.pid {
                Some(p) if !view.target.contains(&p.to_string()) => format!(" (pid {p})"),
                _ => String::new(),
            }
        ))
        .style(Style::default().add_modifier(Modifier::BOLD)),
        Line::from(format!(
            " Active / Total Objects (% used)    : {} / {} ({})",
            t.active_objs,
            t.num_objs,
            pct(t.active_objs, t.num_objs)
        )),
        Line::from(format!(
            " Active / Total Slabs (% used)      : {} / {} ({})",
            t.active_slabs,
            t.num_slabs,
            pct(t.active_slabs, t.num_slabs)
        )),
        Line::from(format!(
            " Active / Total Caches (% used)     : {} / {} ({})",
            t.active_caches,
            t.caches,
            pct(t.active_caches, t.caches)
        )),
        Line::from(format!(
            " Active / Total Size (% used)       : {} / {} ({})",
            kib2(t.active_bytes),
            kib2(t.total_bytes),
            pct(t.active_bytes, t.total_bytes)
        )),
        Line::from(format!(
            " Minimum / Average / Maximum Object : {} / {} / {}",
            kib2(t.min_obj),
            kib2(t.avg_obj),
            kib2(t.max_obj)
        )),
    ];
    if let Some(p) = snap.pages {
        lines.push(Line::from(format!(
            " Pages allocated / managed (free)   : {} / {} ({} + {} per-cpu){}",
            p.allocated,
            p.managed,
            p.free,
            p.cached,
            if p.huge > 0 {
                format!(", {} huge", p.huge)
            } else {
                String::new()
            }
        )));
    }
    if let Some(k) = snap.kmalloc {
        let mut l = format!(
            " kmalloc large / huge in use        : {} / {} in {} / {} blocks",
            kib2(k.large_bytes),
            kib2(k.huge_bytes),
            k.large_allocs.saturating_sub(k.large_frees),
            k.huge_allocs.saturating_sub(k.huge_frees),
        );
        if k.failures + k.bad_frees > 0 {
            l += &format!(", {} failed, {} bad frees", k.failures, k.bad_frees);
        }
        lines.push(Line::from(l));
    }
    lines
}

fn cells(r: &SlabRow) -> [String; 8] {
    [
        r.num_objs.to_string(),
        r.active_objs.to_string(),
        format!("{}%", r.use_percent()),
        kib2(r.objsize),
        r.num_slabs.to_string(),
        r.objperslab.to_string(),
        format!("{}K", r.cache_bytes(PAGE_SIZE) / 1024),
        r.name.clone(),
    ]
}

/// Right-aligns `s` in a column of `w` (the name column stays left).
fn align(s: String, w: u16) -> String {
    if w == 0 {
        s
    } else {
        format!("{s:>width$}", width = w as usize)
    }
}

/// The rows in display order.
pub fn sorted_rows(snap: &Snapshot, sort: SortKey) -> Vec<SlabRow> {
    let mut rows = snap.caches.clone();
    sort.sort(&mut rows);
    rows
}

/// How many columns a frame of `view` needs to show every name and summary
/// line whole.
pub fn full_width(view: &View) -> u16 {
    let fixed: u16 = COLUMNS.iter().map(|(_, w)| w + 1).sum();
    let names = view
        .snap
        .as_ref()
        .and_then(|s| s.caches.iter().map(|r| r.name.chars().count()).max())
        .unwrap_or(0);
    let summary = summary(view).iter().map(Line::width).max().unwrap_or(0);
    (fixed as usize + names.max(4))
        .max(summary)
        .min(u16::MAX as usize / 4) as u16
}

/// How many screen lines a frame of `view` needs to show every row.
pub fn full_height(view: &View) -> u16 {
    let rows = view.snap.as_ref().map_or(0, |s| s.caches.len());
    let extra = u16::from(view.status.is_some()) + u16::from(view.help.is_some());
    (summary(view).len() + 2 + rows) as u16 + extra
}

/// Draws `view` over the whole frame.
pub fn draw(f: &mut Frame, view: &View) {
    let head = summary(view);
    let bottom = u16::from(view.status.is_some()) + u16::from(view.help.is_some());
    let [top, table, foot] = Layout::vertical([
        Constraint::Length(head.len() as u16 + 1),
        Constraint::Min(1),
        Constraint::Length(bottom),
    ])
    .areas(f.area());
    f.render_widget(Paragraph::new(head), top);
    draw_table(f, table, view);
    let mut foot_lines = Vec::new();
    if let Some(s) = &view.status {
        foot_lines.push(Line::from(format!(" {s}")).style(Style::default().fg(Color::Red)));
    }
    if let Some(h) = &view.help {
        foot_lines
            .push(Line::from(format!(" {h}")).style(Style::default().add_modifier(Modifier::DIM)));
    }
    f.render_widget(Paragraph::new(foot_lines), foot);
}

fn draw_table(f: &mut Frame, area: Rect, view: &View) {
    let sorted = view.sort.column();
    let header = Row::new(COLUMNS.iter().enumerate().map(|(i, (name, w))| {
        let style = if i == sorted {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        };
        Cell::from(align(name.to_string(), *w)).style(style)
    }));
    let rows = view
        .snap
        .as_ref()
        .map(|s| sorted_rows(s, view.sort))
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            Row::new(
                cells(&r)
                    .into_iter()
                    .zip(COLUMNS)
                    .map(|(s, (_, w))| Cell::from(align(s, w))),
            )
        });
    let widths = COLUMNS.map(|(_, w)| {
        if w == 0 {
            Constraint::Min(8)
        } else {
            Constraint::Length(w)
        }
    });
    f.render_widget(Table::new(rows, widths).header(header), area);
}

/// Renders `view` into a `width` × `height` text screen (trailing blanks
/// trimmed): what the terminal would show.
pub fn render_lines(view: &View, width: u16, height: u16) -> Vec<String> {
    let mut term = ratatui::Terminal::new(TestBackend::new(width, height))
        .expect("a TestBackend terminal cannot fail");
    term.draw(|f| draw(f, view))
        .expect("drawing into a TestBackend cannot fail");
    let buf = term.backend().buffer();
    (0..height)
        .map(|y| {
            let line: String = (0..width).map(|x| buf[(x, y)].symbol()).collect();
            line.trim_end().to_string()
        })
        .collect()
}

/// One frame as text, tall enough for every row (`kmem top --once`).
pub fn render_text(view: &View, width: u16) -> String {
    let mut s = render_lines(view, width, full_height(view)).join("\n");
    while s.ends_with('\n') {
        s.pop();
    }
    s.push('\n');
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::top::parse::parse_snapshot;
    use crate::top::parse::tests::SAMPLE;

    fn view(text: &str, sort: SortKey) -> View {
        View {
            target: "sample".into(),
            snap: Some(parse_snapshot(text).unwrap()),
            sort,
            status: None,
            help: None,
        }
    }

    /// The cache names in the order the rendered screen lists them.
    pub(crate) fn names_on_screen(lines: &[String]) -> Vec<String> {
        let head = lines
            .iter()
            .position(|l| l.trim_start().starts_with("OBJS"))
            .expect("a table header");
        let name_col = lines[head].find("NAME").unwrap();
        lines[head + 1..]
            .iter()
            .take_while(|l| l.len() > name_col && l[..name_col].trim_end().ends_with('K'))
            .map(|l| l[name_col..].trim_end().to_string())
            .collect()
    }

    #[test]
    fn each_sort_key_orders_the_rows() {
        let expect: [(SortKey, &[&str]); 7] = [
            (
                SortKey::Objs,
                &[
                    "kmalloc-64",
                    "kmalloc-1k",
                    "my cache",
                    "kmalloc-8k",
                    "dentry",
                ],
            ),
            (
                SortKey::Active,
                &[
                    "kmalloc-64",
                    "kmalloc-1k",
                    "my cache",
                    "kmalloc-8k",
                    "dentry",
                ],
            ),
            (
                SortKey::Size,
                &[
                    "kmalloc-8k",
                    "kmalloc-1k",
                    "dentry",
                    "kmalloc-64",
                    "my cache",
                ],
            ),
            (
                SortKey::Cache,
                &[
                    "kmalloc-1k",
                    "kmalloc-64",
                    "kmalloc-8k",
                    "my cache",
                    "dentry",
                ],
            ),
            (
                SortKey::Name,
                &[
                    "dentry",
                    "kmalloc-1k",
                    "kmalloc-64",
                    "kmalloc-8k",
                    "my cache",
                ],
            ),
            (
                SortKey::Use,
                &[
                    "kmalloc-64",
                    "kmalloc-1k",
                    "kmalloc-8k",
                    "my cache",
                    "dentry",
                ],
            ),
            (
                SortKey::Slabs,
                &[
                    "kmalloc-1k",
                    "kmalloc-64",
                    "kmalloc-8k",
                    "my cache",
                    "dentry",
                ],
            ),
        ];
        for (key, names) in expect {
            let lines = render_lines(&view(SAMPLE, key), 100, 20);
            assert_eq!(
                names_on_screen(&lines),
                names,
                "sort {key:?}:\n{}",
                lines.join("\n")
            );
        }
    }

    #[test]
    fn rows_show_slabtop_columns() {
        let lines = render_lines(&view(SAMPLE, SortKey::Objs), 100, 20);
        let header = lines
            .iter()
            .find(|l| l.trim_start().starts_with("OBJS"))
            .unwrap();
        assert_eq!(
            header,
            "     OBJS    ACTIVE   USE  OBJ SIZE    SLABS  OBJ/SLAB  CACHE SIZE NAME"
        );
        let row = lines.iter().find(|l| l.ends_with("kmalloc-1k")).unwrap();
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            words,
            [
                "1200",
                "1116",
                "93%",
                "1.00K",
                "300",
                "4",
                "1200K",
                "kmalloc-1k"
            ]
        );
        let row = lines.iter().find(|l| l.ends_with("kmalloc-8k")).unwrap();
        let words: Vec<&str> = row.split_whitespace().collect();
        // 16 slabs of 2 pages: 128 KiB.
        assert_eq!(
            words,
            ["16", "13", "81%", "8.00K", "16", "1", "128K", "kmalloc-8k"]
        );
    }

    #[test]
    fn header_sums_all_caches() {
        let lines = render_lines(&view(SAMPLE, SortKey::Objs), 100, 20);
        let text = lines.join("\n");
        // 13+1116+3000+100+0 of 16+1200+3200+128+0.
        assert!(
            text.contains("Active / Total Objects (% used)    : 4229 / 4544 (93.1%)"),
            "{text}"
        );
        assert!(
            text.contains("Active / Total Slabs (% used)      : 343 / 367 (93.5%)"),
            "{text}"
        );
        assert!(
            text.contains("Active / Total Caches (% used)     : 4 / 5 (80.0%)"),
            "{text}"
        );
        assert!(
            text.contains("Minimum / Average / Maximum Object : 0.03K / "),
            "{text}"
        );
        assert!(text.contains("/ 8.00K"), "{text}");
        let t = Totals::of(&parse_snapshot(SAMPLE).unwrap().caches);
        assert_eq!(
            t.total_bytes,
            16 * 8192 + 1200 * 1024 + 3200 * 64 + 128 * 32
        );
    }

    #[test]
    fn the_sort_column_is_highlighted() {
        let v = view(SAMPLE, SortKey::Cache);
        let mut term = ratatui::Terminal::new(TestBackend::new(100, 20)).unwrap();
        term.draw(|f| draw(f, &v)).unwrap();
        let buf = term.backend().buffer();
        let row = |y: u16| (0..100).map(|x| buf[(x, y)].symbol()).collect::<String>();
        let y = (0..20).find(|&y| row(y).contains("CACHE SIZE")).unwrap();
        let line = row(y);
        let at = line.find("CACHE SIZE").unwrap() as u16;
        assert!(buf[(at, y)].modifier.contains(Modifier::REVERSED));
        let objs = line.find("OBJS").unwrap() as u16;
        assert!(!buf[(objs, y)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn a_read_error_is_shown_below_the_last_rows() {
        let mut v = view(SAMPLE, SortKey::Name);
        v.status = Some("nobody listens on /tmp/x.sock any more".into());
        v.help = Some("q quit".into());
        let lines = render_lines(&v, 100, full_height(&v));
        assert_eq!(names_on_screen(&lines).len(), 5);
        assert_eq!(
            lines[lines.len() - 2],
            " nobody listens on /tmp/x.sock any more"
        );
        assert_eq!(lines[lines.len() - 1], " q quit");
    }

    #[test]
    fn summary_lines_of_a_snapshot() {
        let text = format!(
            "kmem-stats 1\npid 77\npages managed=1024 free=100 allocated=900 cached=24 huge=0 regions=1\n\
             kmalloc large_allocs=5 large_frees=2 large_bytes=24576 huge_allocs=0 huge_frees=0 huge_bytes=0 failures=0 bad_frees=0\n{SAMPLE}"
        );
        let out = render_text(&view(&text, SortKey::Objs), 120);
        assert!(out.starts_with(" kmem top — sample (pid 77)\n"), "{out}");
        assert!(
            out.contains(" Pages allocated / managed (free)   : 900 / 1024 (100 + 24 per-cpu)\n"),
            "{out}"
        );
        assert!(
            out.contains(" kmalloc large / huge in use        : 24.00K / 0.00K in 3 / 0 blocks\n"),
            "{out}"
        );
        assert_eq!(out.lines().filter(|l| l.ends_with("dentry")).count(), 1);
    }

    #[test]
    fn the_text_frame_is_wide_enough_for_every_name() {
        let long = SAMPLE.replace("dentry     ", "a_cache_with_a_really_long_name_indeed");
        let v = view(&long, SortKey::Name);
        let out = render_text(&v, full_width(&v));
        assert!(
            out.lines()
                .any(|l| l.ends_with(" a_cache_with_a_really_long_name_indeed")),
            "{out}"
        );
    }

    #[test]
    fn a_narrow_terminal_keeps_the_names() {
        let lines = render_lines(&view(SAMPLE, SortKey::Objs), 80, 20);
        assert_eq!(names_on_screen(&lines).len(), 5);
    }
}
