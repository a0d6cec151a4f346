//! The workloads of the `#[global_allocator]` benchmark: ordinary Rust code
//! (collections, strings, boxes, threads) whose every allocation goes to the
//! global allocator of the bench binary that includes this file
//! (`global_kmem`, `global_system`, `global_mimalloc`, `global_jemalloc`).
//! Each binary reports under the same criterion ids with its allocator's
//! name, so `scripts/bench-global.sh` can put them side by side.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::mpsc;

use criterion::Criterion;

/// A small deterministic generator (xorshift64*), so every allocator sees
/// the same sequence.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (non-zero).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// `Box<[u8; 64]>` allocate + drop: the hot pair through `GlobalAlloc`.
fn box_pair() {
    let b = black_box(Box::new([7u8; 64]));
    drop(b);
}

/// Random replacement of boxed byte strings of 8..256 bytes in a ring of
/// 1024 (small-object churn with frees in random order).
fn churn(ring: &mut [Option<Box<[u8]>>], rng: &mut Rng) {
    for _ in 0..1000 {
        let k = rng.range(0, ring.len() as u64) as usize;
        let n = rng.range(8, 256) as usize;
        ring[k] = Some(vec![k as u8; n].into_boxed_slice());
    }
}

/// Building and dropping a `BTreeMap<u64, String>` of 1000 entries.
fn btree(rng: &mut Rng) -> usize {
    let mut m = BTreeMap::new();
    for i in 0..1000u64 {
        m.insert(rng.next(), format!("value-{i}"));
    }
    m.len()
}

/// Building and dropping a `HashMap<String, Vec<u32>>` of 500 entries.
fn hashmap() -> usize {
    let mut m: HashMap<String, Vec<u32>> = HashMap::new();
    for i in 0..500u32 {
        m.entry(format!("key{}", i % 250)).or_default().push(i);
    }
    m.len()
}

/// `Vec<u64>` grown by push to 100 000 elements (realloc growth, then a large free).
fn vec_growth() -> usize {
    let mut v = Vec::new();
    for i in 0..100_000u64 {
        v.push(i);
    }
    v.len()
}

/// 2000 boxes made on one thread and dropped on another (cross-thread frees),
/// sent in batches of 100 through a channel.
fn cross_thread() -> usize {
    let (tx, rx) = mpsc::sync_channel::<Vec<Box<[u8; 48]>>>(4);
    let consumer = std::thread::spawn(move || {
        let mut n = 0;
        for batch in rx {
            n += batch.len();
            drop(batch);
        }
        n
    });
    for _ in 0..20 {
        let batch: Vec<Box<[u8; 48]>> = (0..100).map(|i| Box::new([i as u8; 48])).collect();
        tx.send(batch).unwrap();
    }
    drop(tx);
    consumer.join().unwrap()
}

/// Runs every workload under criterion, naming the allocator `name`.
pub fn run(name: &str) {
    let mut c = Criterion::default().configure_from_args();
    c.bench_function(&format!("box_pair/{name}"), |b| b.iter(box_pair));
    let mut ring: Vec<Option<Box<[u8]>>> = (0..1024).map(|_| None).collect();
    let mut rng = Rng::new(0x6b6d);
    c.bench_function(&format!("churn_1000/{name}"), |b| {
        b.iter(|| churn(&mut ring, &mut rng))
    });
    drop(ring);
    let mut rng = Rng::new(0xbee);
    c.bench_function(&format!("btree_1000/{name}"), |b| {
        b.iter(|| black_box(btree(&mut rng)))
    });
    c.bench_function(&format!("hashmap_500/{name}"), |b| {
        b.iter(|| black_box(hashmap()))
    });
    c.bench_function(&format!("vec_growth_100k/{name}"), |b| {
        b.iter(|| black_box(vec_growth()))
    });
    c.bench_function(&format!("cross_thread_2000/{name}"), |b| {
        b.iter(|| black_box(cross_thread()))
    });
    c.final_summary();
}
