//! Reaping: `reap()` semantics (touched arrays are only marked; untouched ones
//! give back (limit + 4) / 5), and the background reaper thread.
//! One test function: reaping is process-wide.
// Every unsafe block here frees or touches an object the test itself allocated
// from the cache it frees it to; the safety argument is the same throughout.
#![allow(clippy::undocumented_unsafe_blocks)]

use kmem_page::Gfp;
use kmem_slab::KmemCache;

#[test]
fn reap_semantics_and_background_reaper() {
    let c = KmemCache::new("reap_test", 64, 0).unwrap();
    let g = c.geometry();
    let v: Vec<_> = (0..g.limit)
        .map(|_| c.alloc(Gfp::KERNEL).unwrap())
        .collect();
    for p in v {
        unsafe { c.free(p).unwrap() };
    }
    // The thread's array holds `limit` objects; allocate once to touch it.
    let p = c.alloc(Gfp::KERNEL).unwrap();
    unsafe { c.free(p).unwrap() };
    // Objects in this thread's array: active objects less the shared array's.
    let in_arrays = || {
        let i = c.info();
        i.active_objs - i.sharedavail
    };
    let before = in_arrays();
    assert!(before >= g.limit as usize / 2);
    kmem_slab::reap();
    assert_eq!(
        in_arrays(),
        before,
        "a touched array is only marked untouched"
    );
    kmem_slab::reap();
    assert_eq!(
        before - in_arrays(),
        g.limit.div_ceil(5) as usize, // Linux: (limit + 4) / 5
        "an untouched array gives back (limit+4)/5"
    );
    // Free slabs go back over the 4 s passes, down to nothing in use.
    for _ in 0..40 {
        kmem_slab::reap();
    }
    let i = c.info();
    assert_eq!(i.active_objs, 0, "arrays and the shared array drained");
    assert!(i.num_slabs <= 1);

    // The background reaper does the same on its own.
    let v: Vec<_> = (0..g.limit)
        .map(|_| c.alloc(Gfp::KERNEL).unwrap())
        .collect();
    for p in v {
        unsafe { c.free(p).unwrap() };
    }
    assert!(c.info().active_objs > 0);
    let passes = kmem_slab::reaper_passes();
    assert!(kmem_slab::start_reaper(5_000_000));
    assert!(!kmem_slab::start_reaper(5_000_000), "already running");
    let t0 = std::time::Instant::now();
    while c.info().active_objs > 0 && t0.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(kmem_slab::stop_reaper());
    assert!(!kmem_slab::reaper_running());
    assert!(kmem_slab::reaper_passes() > passes);
    assert_eq!(
        c.info().active_objs,
        0,
        "the background reaper drained the idle array"
    );
}
