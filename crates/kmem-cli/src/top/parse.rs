//! Reading what a served program sends: `/proc/slabinfo` version 2.1, alone
//! (a `KMEM_SLABINFO` file, Linux's own `/proc/slabinfo`) or after the
//! `kmem-stats 1` summary lines of the preload's `KMEM_STATS` socket (format
//! in `crates/kmem-preload/src/stats_server.rs`).
//!
//! Bad input is an [`Err`] naming the line and what was expected, never a
//! panic.

use std::fmt;

/// The first line of slabinfo 2.1.
const SLABINFO_HEADER: &str = "slabinfo - version: 2.1";
/// The first line of a `KMEM_STATS` snapshot.
const STATS_HEADER: &str = "kmem-stats 1";

/// One cache's row of `/proc/slabinfo` 2.1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlabRow {
    /// The cache's name (may contain spaces: kmem caches are named by users).
    pub name: String,
    /// Objects not free in a slab.
    pub active_objs: u64,
    /// Objects in all slabs.
    pub num_objs: u64,
    /// Object stride in bytes.
    pub objsize: u64,
    /// Objects per slab.
    pub objperslab: u64,
    /// Pages per slab.
    pub pagesperslab: u64,
    /// Per-cpu (per-thread) array capacity.
    pub limit: u64,
    /// Refill / flush batch.
    pub batchcount: u64,
    /// Shared array factor.
    pub sharedfactor: u64,
    /// Slabs with at least one object taken.
    pub active_slabs: u64,
    /// All slabs.
    pub num_slabs: u64,
    /// Objects in the shared array.
    pub sharedavail: u64,
}

impl SlabRow {
    /// Bytes of memory in the cache's slabs (slabtop's CACHE SIZE).
    pub fn cache_bytes(&self, page_size: u64) -> u64 {
        self.num_slabs
            .saturating_mul(self.pagesperslab)
            .saturating_mul(page_size)
    }

    /// Active objects in per cent of all objects (0 for an empty cache).
    pub fn use_percent(&self) -> u64 {
        (self.active_objs.min(self.num_objs).saturating_mul(100))
            .checked_div(self.num_objs)
            .unwrap_or(0)
    }
}

/// The page allocator's counters in a snapshot (`pages` line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageSummary {
    /// Pages the buddy system manages.
    pub managed: u64,
    /// Free pages on the free lists.
    pub free: u64,
    /// Pages handed out.
    pub allocated: u64,
    /// Free pages on the per-cpu lists.
    pub cached: u64,
    /// Pages in huge mappings.
    pub huge: u64,
    /// Buddy regions.
    pub regions: u64,
}

/// kmalloc's large-path counters in a snapshot (`kmalloc` line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KmallocSummary {
    /// Page blocks handed out (8 KiB – 4 MiB requests).
    pub large_allocs: u64,
    /// Page blocks freed.
    pub large_frees: u64,
    /// Bytes in page blocks now.
    pub large_bytes: u64,
    /// Huge mappings made.
    pub huge_allocs: u64,
    /// Huge mappings freed.
    pub huge_frees: u64,
    /// Bytes in huge mappings now.
    pub huge_bytes: u64,
    /// Failed large requests.
    pub failures: u64,
    /// Refused frees.
    pub bad_frees: u64,
}

/// Everything one read of a target gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The serving process (`None` for plain slabinfo).
    pub pid: Option<u32>,
    /// Page allocator counters, if sent.
    pub pages: Option<PageSummary>,
    /// kmalloc counters, if sent.
    pub kmalloc: Option<KmallocSummary>,
    /// The caches, in the order they were listed.
    pub caches: Vec<SlabRow>,
}

/// Why input could not be read: the 1-based line and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number (0: the input as a whole).
    pub line: usize,
    /// What was expected and what was found.
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.msg)
        } else {
            write!(f, "line {}: {}", self.line, self.msg)
        }
    }
}

impl std::error::Error for ParseError {}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        msg: msg.into(),
    })
}

fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{:?}…", &s[..i]),
        None => format!("{s:?}"),
    }
}

/// Parses a `KMEM_STATS` snapshot, or plain slabinfo 2.1 (then only
/// `caches` is filled).
pub fn parse_snapshot(text: &str) -> Result<Snapshot, ParseError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let Some((_, first)) = lines.clone().next() else {
        return err(0, "empty input (the target sent nothing)");
    };
    let mut snap = Snapshot::default();
    if first.trim_end() == STATS_HEADER {
        lines.next();
        loop {
            let Some((n, line)) = lines.clone().next() else {
                return err(0, "the snapshot ended before its slabinfo");
            };
            if line.starts_with("slabinfo") {
                break;
            }
            lines.next();
            summary_line(&mut snap, n, line)?;
        }
    } else if first.starts_with("kmem-stats") {
        return err(
            1,
            format!(
                "unsupported snapshot format {} (this kmem reads {STATS_HEADER:?})",
                shorten(first)
            ),
        );
    }
    snap.caches = slabinfo_lines(lines)?;
    Ok(snap)
}

fn summary_line(snap: &mut Snapshot, n: usize, line: &str) -> Result<(), ParseError> {
    let mut words = line.split_whitespace();
    let Some(key) = words.next() else {
        return Ok(());
    };
    let num = |v: &str, what: &str| number(n, v, what);
    let pairs = |w| pairs(n, w);
    match key {
        "error" => {
            return err(
                n,
                format!("the target could not take a snapshot: {}", line[5..].trim()),
            );
        }
        "pid" => {
            let v = words.next().unwrap_or("");
            snap.pid = Some(
                num(v, "pid")?
                    .try_into()
                    .or_else(|_| err(n, "pid out of range"))?,
            );
        }
        "pages" => {
            let mut p = PageSummary::default();
            for (k, v) in pairs(words)? {
                match k {
                    "managed" => p.managed = v,
                    "free" => p.free = v,
                    "allocated" => p.allocated = v,
                    "cached" => p.cached = v,
                    "huge" => p.huge = v,
                    "regions" => p.regions = v,
                    _ => {}
                }
            }
            snap.pages = Some(p);
        }
        "kmalloc" => {
            let mut k = KmallocSummary::default();
            for (key, v) in pairs(words)? {
                match key {
                    "large_allocs" => k.large_allocs = v,
                    "large_frees" => k.large_frees = v,
                    "large_bytes" => k.large_bytes = v,
                    "huge_allocs" => k.huge_allocs = v,
                    "huge_frees" => k.huge_frees = v,
                    "huge_bytes" => k.huge_bytes = v,
                    "failures" => k.failures = v,
                    "bad_frees" => k.bad_frees = v,
                    _ => {}
                }
            }
            snap.kmalloc = Some(k);
        }
        // A newer preload's sections: skipped.
        _ => {}
    }
    Ok(())
}

fn number(n: usize, v: &str, what: &str) -> Result<u64, ParseError> {
    v.parse().or_else(|_| {
        err(
            n,
            format!("{what}: expected a number, found {}", shorten(v)),
        )
    })
}

/// The `k=v` pairs of a summary line (unknown keys are the caller's to skip).
fn pairs(n: usize, words: std::str::SplitWhitespace<'_>) -> Result<Vec<(&str, u64)>, ParseError> {
    words
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((k, number(n, v, k)?)),
            None => err(n, format!("expected key=value, found {}", shorten(w))),
        })
        .collect()
}

fn slabinfo_lines<'a>(
    mut lines: impl Iterator<Item = (usize, &'a str)>,
) -> Result<Vec<SlabRow>, ParseError> {
    match lines.next() {
        Some((_, l)) if l.trim_end() == SLABINFO_HEADER => {}
        Some((n, l)) if l.starts_with("slabinfo - version:") => {
            return err(
                n,
                format!(
                    "unsupported slabinfo {} (only version 2.1 is read)",
                    shorten(l.trim_start_matches("slabinfo - "))
                ),
            );
        }
        Some((n, l)) => {
            return err(
                n,
                format!("expected {SLABINFO_HEADER:?}, found {}", shorten(l)),
            );
        }
        None => return err(0, "no slabinfo (empty input)"),
    }
    let mut rows = Vec::new();
    for (n, line) in lines {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        rows.push(row(n, line)?);
    }
    Ok(rows)
}

/// `name active num size objperslab pagesperslab : tunables l b s :
/// slabdata as ns sa` (the name and 15 words) — parsed from the right, so a name may hold spaces.
fn row(n: usize, line: &str) -> Result<SlabRow, ParseError> {
    const FIXED: usize = 15;
    let words: Vec<(usize, &str)> = line
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - line.as_ptr() as usize, w))
        .collect();
    if words.len() < FIXED + 1 {
        return err(
            n,
            format!(
                "a slabinfo row has a name and 15 fields, found {} words in {}",
                words.len(),
                shorten(line)
            ),
        );
    }
    let (name_end, rest) = (words[words.len() - FIXED].0, &words[words.len() - FIXED..]);
    let name = line[..name_end].trim_end().to_string();
    let word = |i: usize| rest[i].1;
    for (i, lit) in [(5, ":"), (6, "tunables"), (10, ":"), (11, "slabdata")] {
        if word(i) != lit {
            return err(
                n,
                format!(
                    "cache {name:?}: expected {lit:?} as field {}, found {}",
                    i + 2,
                    shorten(word(i))
                ),
            );
        }
    }
    const NAMES: [&str; FIXED] = [
        "active_objs",
        "num_objs",
        "objsize",
        "objperslab",
        "pagesperslab",
        "",
        "",
        "limit",
        "batchcount",
        "sharedfactor",
        "",
        "",
        "active_slabs",
        "num_slabs",
        "sharedavail",
    ];
    let num = |i: usize| -> Result<u64, ParseError> {
        word(i).parse().or_else(|_| {
            err(
                n,
                format!(
                    "cache {name:?}: <{}> is not a number: {}",
                    NAMES[i],
                    shorten(word(i))
                ),
            )
        })
    };
    Ok(SlabRow {
        active_objs: num(0)?,
        num_objs: num(1)?,
        objsize: num(2)?,
        objperslab: num(3)?,
        pagesperslab: num(4)?,
        limit: num(7)?,
        batchcount: num(8)?,
        sharedfactor: num(9)?,
        active_slabs: num(12)?,
        num_slabs: num(13)?,
        sharedavail: num(14)?,
        name,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn parse_slabinfo(text: &str) -> Result<Vec<SlabRow>, ParseError> {
        let s = parse_snapshot(text)?;
        assert_eq!(s.pid, None, "plain slabinfo has no summary");
        Ok(s.caches)
    }

    /// A sample in the exact layout kmem (and Linux) prints.
    pub(crate) const SAMPLE: &str = "\
slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
kmalloc-8k            13     16   8192    1    2 : tunables    8    4    0 : slabdata     13     16      0
kmalloc-1k          1116   1200   1024    4    1 : tunables   54   27    8 : slabdata    279    300      0
kmalloc-64          3000   3200     64   64    1 : tunables  120   60    8 : slabdata     50     50      0
my cache             100    128     32  128    1 : tunables  120   60    8 : slabdata      1      1      0
dentry                 0      0    192   21    1 : tunables  120   60    8 : slabdata      0      0      0
";

    #[test]
    fn parses_every_field_of_a_row() {
        let rows = parse_slabinfo(SAMPLE).unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[1],
            SlabRow {
                name: "kmalloc-1k".into(),
                active_objs: 1116,
                num_objs: 1200,
                objsize: 1024,
                objperslab: 4,
                pagesperslab: 1,
                limit: 54,
                batchcount: 27,
                sharedfactor: 8,
                active_slabs: 279,
                num_slabs: 300,
                sharedavail: 0,
            }
        );
        assert_eq!(rows[0].cache_bytes(4096), 16 * 2 * 4096);
        assert_eq!(rows[1].use_percent(), 93);
        assert_eq!(rows[4].use_percent(), 0);
    }

    #[test]
    fn a_name_with_spaces_survives() {
        let rows = parse_slabinfo(SAMPLE).unwrap();
        assert_eq!(rows[3].name, "my cache");
        assert_eq!(rows[3].active_objs, 100);
    }

    #[test]
    fn reads_what_kmem_slab_writes() {
        let c = kmem::slab::KmemCache::new("parse_roundtrip", 200, 0).unwrap();
        let p = c.alloc(kmem::page::Gfp::KERNEL).unwrap();
        let mut s = String::new();
        kmem::slab::write_slabinfo(&mut s).unwrap();
        let rows = parse_slabinfo(&s).unwrap();
        let r = rows.iter().find(|r| r.name == "parse_roundtrip").unwrap();
        let i = c.info();
        assert_eq!(
            (r.active_objs, r.num_objs, r.objsize, r.num_slabs),
            (
                i.active_objs as u64,
                i.num_objs as u64,
                i.objsize as u64,
                i.num_slabs as u64
            )
        );
        // SAFETY: `p` came from `c` and is not used again.
        unsafe { c.free(p).unwrap() };
    }

    #[test]
    fn parses_a_snapshot_with_its_summary() {
        let text = format!(
            "kmem-stats 1\npid 4242\npages managed=1024 free=100 allocated=900 cached=24 huge=0 regions=1 future=7\n\
             kmalloc large_allocs=5 large_frees=2 large_bytes=24576 huge_allocs=1 huge_frees=1 huge_bytes=0 failures=0 bad_frees=3\n\
             newsection x=1 y=2\n{SAMPLE}"
        );
        let s = parse_snapshot(&text).unwrap();
        assert_eq!(s.pid, Some(4242));
        assert_eq!(
            s.pages,
            Some(PageSummary {
                managed: 1024,
                free: 100,
                allocated: 900,
                cached: 24,
                huge: 0,
                regions: 1
            })
        );
        let k = s.kmalloc.unwrap();
        assert_eq!((k.large_allocs, k.large_bytes, k.bad_frees), (5, 24576, 3));
        assert_eq!(s.caches.len(), 5);
        // Plain slabinfo is a snapshot without a summary.
        let plain = parse_snapshot(SAMPLE).unwrap();
        assert_eq!((plain.pid, plain.pages), (None, None));
        assert_eq!(plain.caches, s.caches);
    }

    fn parse_err(text: &str) -> String {
        parse_snapshot(text).unwrap_err().to_string()
    }

    #[test]
    fn malformed_input_is_a_clear_error() {
        assert_eq!(parse_err(""), "empty input (the target sent nothing)");
        assert_eq!(
            parse_err("hello\n"),
            "line 1: expected \"slabinfo - version: 2.1\", found \"hello\""
        );
        assert_eq!(
            parse_err("slabinfo - version: 1.1\n"),
            "line 1: unsupported slabinfo \"version: 1.1\" (only version 2.1 is read)"
        );
        assert_eq!(
            parse_err("kmem-stats 2\n"),
            "line 1: unsupported snapshot format \"kmem-stats 2\" (this kmem reads \"kmem-stats 1\")"
        );
        assert_eq!(
            parse_err("kmem-stats 1\npid 7\n"),
            "the snapshot ended before its slabinfo"
        );
        assert_eq!(
            parse_err("kmem-stats 1\npid seven\nslabinfo - version: 2.1\n"),
            "line 2: pid: expected a number, found \"seven\""
        );
        assert_eq!(
            parse_err("kmem-stats 1\npages managed=1 free\nslabinfo - version: 2.1\n"),
            "line 2: expected key=value, found \"free\""
        );
        assert_eq!(
            parse_err("kmem-stats 1\nerror out of memory\n"),
            "line 2: the target could not take a snapshot: out of memory"
        );
        // A truncated row (the stream was cut).
        let cut = &SAMPLE[..SAMPLE.find("kmalloc-64").unwrap() + 38];
        assert_eq!(
            parse_err(cut),
            "line 5: a slabinfo row has a name and 15 fields, found 4 words in \"kmalloc-64          3000   3200     64\""
        );
        let bad_num = SAMPLE.replace("1116   1200", "1116   12x0");
        assert_eq!(
            parse_err(&bad_num),
            "line 4: cache \"kmalloc-1k\": <num_objs> is not a number: \"12x0\""
        );
        let bad_lit = SAMPLE.replace("60    8 : slabdata     50", "60    8 : slabinfo     50");
        assert_eq!(
            parse_err(&bad_lit),
            "line 5: cache \"kmalloc-64\": expected \"slabdata\" as field 13, found \"slabinfo\""
        );
        let negative = SAMPLE.replace("100    128", "-100    128");
        assert!(parse_err(&negative).contains("<active_objs> is not a number: \"-100\""));
        // Binary garbage never panics.
        let garbage: String = (0u8..=255).map(char::from).cycle().take(5000).collect();
        assert!(parse_snapshot(&garbage).is_err());
        assert!(parse_snapshot(&format!("{SAMPLE}{garbage}")).is_err());
    }
}
