//! A mempool over a slab cache keeps its `min_nr` objects for when the cache
//! cannot grow (its page allocator is out of memory).
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
    let cache = KmemCache::builder("bio-test", 512)
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
