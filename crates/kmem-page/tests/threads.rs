//! Many threads allocating and freeing at once: no block is handed out twice,
//! contents survive, and everything is accounted for at the end.

use std::sync::{Arc, Mutex};

use kmem_page::{Config, Gfp, PAGE_SIZE, PageAllocator};
use kmem_platform::TestPlatform;

#[test]
fn stress_many_threads() {
    let threads = 4;
    let rounds = if cfg!(miri) { 20 } else { 4000 };
    let pages = Arc::new(PageAllocator::with_config(
        TestPlatform::new(),
        Config {
            keep_free_pages: 1024,
            max_pages: usize::MAX,
        },
    ));
    // Blocks handed between threads, so that frees happen on other threads.
    let exchange: Arc<Mutex<Vec<(usize, u32, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let pages = pages.clone();
            let exchange = exchange.clone();
            std::thread::spawn(move || {
                let mut mine: Vec<(usize, u32, u64)> = Vec::new();
                let mut x = 0x9e3779b97f4a7c15u64 ^ t as u64;
                for i in 0..rounds {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let order = (x % 5) as u32;
                    let p = pages.alloc_raw(order, Gfp::KERNEL).unwrap();
                    let tag = (t as u64) << 32 | i as u64;
                    // SAFETY: the block is ours; write a tag at both ends.
                    unsafe {
                        p.as_ptr().cast::<u64>().write(tag);
                        p.as_ptr()
                            .add((PAGE_SIZE << order) - 8)
                            .cast::<u64>()
                            .write(tag);
                    }
                    mine.push((p.as_ptr() as usize, order, tag));
                    if x.is_multiple_of(3) {
                        exchange
                            .lock()
                            .unwrap()
                            .push(mine.swap_remove((x as usize / 3) % mine.len()));
                    }
                    if mine.len() > 16 || x.is_multiple_of(4) {
                        let (a, o, tag) = if x.is_multiple_of(2) {
                            match exchange.lock().unwrap().pop() {
                                Some(e) => e,
                                None => continue,
                            }
                        } else {
                            match mine.pop() {
                                Some(e) => e,
                                None => continue,
                            }
                        };
                        // SAFETY: a live block of order `o`, owned by this thread now.
                        unsafe {
                            assert_eq!((a as *const u64).read(), tag, "block clobbered");
                            assert_eq!(((a + (PAGE_SIZE << o) - 8) as *const u64).read(), tag);
                            pages
                                .free_raw(std::ptr::NonNull::new(a as *mut u8).unwrap(), o)
                                .unwrap();
                        }
                    }
                }
                mine
            })
        })
        .collect();
    let mut rest: Vec<(usize, u32, u64)> = Vec::new();
    for h in hs {
        rest.extend(h.join().unwrap());
    }
    rest.extend(exchange.lock().unwrap().drain(..));
    rest.sort();
    for w in rest.windows(2) {
        assert!(
            w[0].0 + (PAGE_SIZE << w[0].1) <= w[1].0,
            "two live blocks overlap"
        );
    }
    for (a, o, tag) in rest {
        // SAFETY: live blocks of `pages`.
        unsafe {
            assert_eq!((a as *const u64).read(), tag);
            pages
                .free_raw(std::ptr::NonNull::new(a as *mut u8).unwrap(), o)
                .unwrap();
        }
    }
    pages.check().unwrap();
    pages.drain();
    pages.check().unwrap();
    let s = pages.stats();
    assert_eq!(s.allocated_pages, 0);
    assert_eq!(s.free_per_order[10], s.regions);
    pages.trim(0);
    assert_eq!(pages.source().live_bytes(), 0);
}

#[test]
fn concurrent_double_free_is_refused_once() {
    // Two threads race to free the same block: exactly one succeeds.
    let rounds = if cfg!(miri) { 5 } else { 500 };
    let pages = Arc::new(PageAllocator::new(TestPlatform::new()));
    for _ in 0..rounds {
        let p = pages.alloc_raw(1, Gfp::KERNEL).unwrap().as_ptr() as usize;
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let pages = pages.clone();
                // SAFETY: one of the two frees is right; the other must be refused.
                std::thread::spawn(move || unsafe {
                    pages
                        .free_raw(std::ptr::NonNull::new(p as *mut u8).unwrap(), 1)
                        .is_ok()
                })
            })
            .collect();
        let ok: usize = hs.into_iter().map(|h| h.join().unwrap() as usize).sum();
        assert_eq!(ok, 1);
    }
    pages.check().unwrap();
    assert_eq!(pages.stats().allocated_pages, 0);
}
