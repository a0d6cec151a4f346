//! Not under Miri: the whole test harness runs on the allocator there, which
//! takes Miri far too long; the other test files cover kmalloc under Miri.
#![cfg(not(miri))]

//! A whole Rust program — this test binary, its harness, threads,
//! collections, large buffers — on kmalloc as the global allocator.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;

#[global_allocator]
static A: kmem_kmalloc::Kmalloc = kmem_kmalloc::Kmalloc::new();

const SCALE: usize = if cfg!(miri) { 1 } else { 50 };

#[test]
fn everything_comes_from_kmem() {
    let v: Vec<u8> = std::iter::repeat_n(1u8, 100).collect();
    let b = Box::new(5u64);
    let s = String::from("kmem");
    for p in [
        v.as_ptr() as usize,
        &*b as *const u64 as usize,
        s.as_ptr() as usize,
    ] {
        assert!(kmem_page::is_kmem(p));
    }
}

#[test]
fn collections_threads_and_cross_thread_drops() {
    let (tx, rx) = mpsc::channel::<(Vec<u32>, String, Box<[u8]>)>();
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut map = HashMap::new();
                let mut tree = BTreeMap::new();
                for i in 0..100 * SCALE {
                    map.insert(format!("k{t}-{i}"), vec![i as u32; i % 50]);
                    tree.insert(i, i.to_string());
                    if i % 3 == 0 {
                        map.remove(&format!("k{t}-{}", i / 2));
                    }
                    tx.send((
                        vec![i as u32; i % 64],
                        format!("{t}:{i}"),
                        vec![t as u8; i % 300].into(),
                    ))
                    .unwrap();
                }
                assert_eq!(tree.len(), 100 * SCALE);
                assert!(tree.iter().all(|(k, v)| *v == k.to_string()));
                map.len()
            })
        })
        .collect();
    drop(tx);
    // Objects made on the producers are dropped here, on another thread.
    let mut n = 0;
    for (v, s, b) in rx {
        assert!(
            v.iter()
                .all(|&x| x as usize == v.len().max(1) - 1 || v.len() < 64)
        );
        assert!(s.contains(':'));
        assert!(b.iter().all(|&x| Some(x) == b.first().copied()));
        n += 1;
    }
    assert_eq!(n, 4 * 100 * SCALE);
    for p in producers {
        assert!(p.join().unwrap() > 0);
    }
}

#[test]
fn large_buffers_and_realloc_growth() {
    let big = vec![7u8; if cfg!(miri) { 70_000 } else { 6 << 20 }];
    assert!(big.iter().all(|&b| b == 7));
    let z = vec![0u64; if cfg!(miri) { 3000 } else { 1 << 20 }];
    assert!(z.iter().all(|&b| b == 0));
    let mut grow = Vec::new();
    for i in 0..(if cfg!(miri) { 20_000 } else { 3_000_000 }) {
        grow.push(i as u32);
    }
    assert!(grow.iter().enumerate().all(|(i, &x)| x == i as u32));
    grow.truncate(10);
    grow.shrink_to_fit();
    assert_eq!(grow, (0..10).collect::<Vec<u32>>());
    let mut s = String::new();
    for i in 0..1000 * SCALE {
        s.push_str(&i.to_string());
    }
    assert!(s.starts_with("0123"));
}

#[test]
fn over_aligned_types() {
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    #[repr(align(64))]
    struct Line(#[allow(dead_code)] [u8; 40]);
    let p = Box::new(Page([1; 4096]));
    assert_eq!(&*p as *const Page as usize % 4096, 0);
    assert_eq!(p.0[4095], 1);
    let v: Vec<Line> = (0..100).map(|_| Line([0; 40])).collect();
    assert_eq!(v.as_ptr() as usize % 64, 0);
    let l = Box::new(Line([2; 40]));
    assert_eq!(&*l as *const Line as usize % 64, 0);
}

/// `realloc` keeps an object in place only within its size class, so that
/// `dealloc` — which goes by the layout to the class's cache — always
/// finds the right cache; crossing classes moves the contents. Nothing
/// may be reported.
#[test]
fn realloc_moves_across_classes_and_dealloc_follows_the_layout() {
    use std::alloc::{GlobalAlloc, Layout};
    let a = kmem_kmalloc::Kmalloc::new();
    // SAFETY: every pointer is used within its layout and given back once,
    // with the layout it was last (re)allocated with.
    let ((), reports) = kmem_platform::diag::capture(|| unsafe {
        let l100 = Layout::from_size_align(100, 8).unwrap();
        let p = a.alloc(l100);
        p.write_bytes(0x5a, 100);
        // 100 → 120: same class (kmalloc-128): in place.
        let q = a.realloc(p, l100, 120);
        assert_eq!(q, p);
        let l120 = Layout::from_size_align(120, 8).unwrap();
        // 120 → 10: kmalloc-16: moves, contents kept.
        let r = a.realloc(q, l120, 10);
        assert_ne!(r, q);
        assert_eq!(kmem_kmalloc::ksize(r).unwrap(), 16);
        assert!((0..10).all(|i| *r.add(i) == 0x5a));
        let l10 = Layout::from_size_align(10, 8).unwrap();
        // Grows into a page block, then shrinks within it, then back to a class.
        let s = a.realloc(r, l10, 20_000);
        let l20k = Layout::from_size_align(20_000, 8).unwrap();
        let t = a.realloc(s, l20k, 16_000);
        assert_eq!(t, s, "a page block shrinking a little stays");
        let l16k = Layout::from_size_align(16_000, 8).unwrap();
        let u = a.realloc(t, l16k, 64);
        assert_ne!(u, t);
        assert_eq!(kmem_kmalloc::ksize(u).unwrap(), 64);
        assert!((0..10).all(|i| *u.add(i) == 0x5a));
        a.dealloc(u, Layout::from_size_align(64, 8).unwrap());
        // Over-aligned: the class that has the alignment, both ways.
        let la = Layout::from_size_align(40, 256).unwrap();
        let v = a.alloc(la);
        assert_eq!(v as usize % 256, 0);
        let w = a.realloc(v, la, 200);
        assert_eq!(w as usize % 256, 0);
        a.dealloc(w, Layout::from_size_align(200, 256).unwrap());
    });
    assert!(reports.is_empty(), "{reports:?}");
}
