//! The stock backends: a mempool over a slab cache keeps its `min_nr` objects for
//! when the cache cannot grow; a kmalloc pool hands out whole elements.
#![cfg(not(loom))]

use kmem_mempool::{Mempool, SlabBackend};
use kmem_page::{Config, Gfp, PageAllocator};
use kmem_platform::TestPlatform;
use kmem_slab::KmemCache;

#[test]
fn reserve_serves_min_nr_when_the_cache_cannot_grow() {
    // A page allocator limited to one region, for this cache alone.
    static PAGES: PageAllocator<TestPlatform> = PageAllocator::with_config(
        TestPlatform::new(),
        Config {
            keep_free_pages: 0,
            max_pages: 1024,
        },
    );
    // Fewer, larger objects under Miri: exhausting the region is the point, not the count.
    let size = if cfg!(miri) { 2048 } else { 512 };
    let cache = KmemCache::builder("bio-test", size)
        .pages(&PAGES)
        .create()
        .unwrap();
    let min_nr = 8;
    let pool = Mempool::new(min_nr, SlabBackend::new(&cache)).unwrap();
    // Exhaust the cache's memory from outside the pool.
    let mut hog = Vec::new();
    while let Ok(p) = cache.alloc(Gfp::NOWAIT) {
        hog.push(p);
    }
    assert!(cache.alloc(Gfp::NOWAIT).is_err());
    // Exactly min_nr more objects, all from the reserve.
    let got: Vec<_> = (0..min_nr)
        .map(|_| pool.try_alloc().expect("reserve"))
        .collect();
    assert!(
        pool.try_alloc().is_none(),
        "the reserve is empty and the cache cannot grow"
    );
    let st = pool.stats();
    assert_eq!(st.reserve_allocs, min_nr as u64);
    assert!(st.backend_failures >= min_nr as u64);
    drop(got); // refills the reserve
    assert_eq!(pool.stats().curr_nr, min_nr);
    for p in hog {
        // SAFETY: objects of `cache` allocated above.
        unsafe { cache.free(p).unwrap() };
    }
    drop(pool);
    // Objects parked in array caches count as active (as in slabinfo): drain
    // them, then nothing may be left outstanding.
    cache.shrink();
    assert_eq!(cache.active_objects(), 0);
    cache.destroy().map_err(|(_, e)| e).unwrap();
}

#[test]
fn kmalloc_pool_hands_out_whole_elements_and_refuses_size_zero() {
    use kmem_mempool::{KmallocBackend, MempoolError};
    assert!(matches!(
        KmallocBackend::new(0),
        Err(MempoolError::BadSize { size: 0 })
    ));
    let pool = Mempool::new(4, KmallocBackend::new(300).unwrap()).unwrap();
    let mut held: Vec<_> = (0..16).map(|_| pool.try_alloc().unwrap()).collect();
    for (i, e) in held.iter_mut().enumerate() {
        e.as_bytes_mut().fill(i as u8);
        // kmalloc gives at least the size asked for (the 512-byte class here).
        assert!(kmem_kmalloc::ksize(e.as_ptr().as_ptr().cast()).unwrap() >= 300);
    }
    for (i, e) in held.iter().enumerate() {
        assert!(e.as_bytes().iter().all(|&b| b == i as u8));
    }
    drop(held);
    assert_eq!(pool.stats().curr_nr, 4);
}
