//! Collections in a pool (allocator_api2), the thread-safe variant, and the
//! pool that lives in its own first block.

use allocator_api2::vec::Vec as AVec;
use kmem_arena::{Arena, LockedPool, SyncArena};
use kmem_page::{Config, PageAllocator};
use kmem_platform::TestPlatform;

#[macro_use]
mod common;

#[test]
fn vec_lives_in_the_arena_and_grows_in_place() {
    let pages = &pages!();
    let arena = Arena::new_in(pages);
    let mut v: AVec<u32, _> = AVec::with_capacity_in(4, &arena);
    let first = v.as_ptr();
    for i in 0..200 {
        v.push(i);
    }
    assert_eq!(v.as_ptr(), first, "the newest allocation grew in place");
    assert_eq!(v.iter().sum::<u32>(), 199 * 200 / 2);
    // Growing past the small limit moves it to its own pages; dropping it gives them back.
    let before = pages.stats().allocated_pages;
    for i in 0..10_000 {
        v.push(i);
    }
    assert!(pages.stats().allocated_pages > before);
    drop(v);
    assert_eq!(
        pages.stats().allocated_pages,
        before,
        "a large Vec buffer is freed on drop"
    );
    // Each regrowth takes a new buffer before freeing the old: two entries
    // served every large regrowth, reused in turn.
    assert_eq!(arena.large_entries(), (0, 2));
}

#[test]
fn hashbrown_map_in_the_arena() {
    let pages = &pages!();
    let mut arena = Arena::new_in(pages);
    for round in 0..3u64 {
        let mut m = hashbrown::HashMap::new_in(&arena);
        let n = if cfg!(miri) { 50 } else { 2000 };
        for i in 0..n {
            m.insert(i, i * round);
        }
        assert_eq!(m.len(), n as usize);
        assert_eq!(m[&(n - 1)], (n - 1) * round);
        let s: String = arena.alloc_str("key").to_owned();
        assert_eq!(s, "key");
        drop(m);
        arena.reset();
        assert_eq!(arena.stats().current_allocated, 0);
    }
    drop(arena);
    assert_eq!(pages.stats().allocated_pages, 0);
}

#[test]
fn shrink_and_grow_zeroed_keep_contents() {
    let pages = &pages!();
    let arena = Arena::new_in(pages);
    let mut v: AVec<u8, _> = AVec::new_in(&arena);
    v.extend_from_slice(&[7; 100]);
    v.shrink_to_fit();
    assert_eq!(v.capacity(), 100);
    v.resize(6000, 1); // now large
    v.truncate(10);
    v.shrink_to_fit(); // back to small: moved
    assert_eq!(&v[..], &[7; 10]);
    let z = allocator_api2::boxed::Box::<[u64], _>::new_zeroed_slice_in(1000, &arena);
    // SAFETY: zeroed u64s are valid.
    let z = unsafe { z.assume_init() };
    assert!(z.iter().all(|&x| x == 0));
}

#[test]
fn sync_arena_is_shared_between_threads() {
    let pages = &pages!();
    let mut arena = SyncArena::new_in(pages);
    let n = if cfg!(miri) { 10 } else { 1000 };
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let arena = &arena;
            s.spawn(move || {
                let mut mine = Vec::new();
                for i in 0..n {
                    let x = arena.alloc(t * 1_000_000 + i);
                    mine.push(x as *mut u64 as usize);
                    let st = arena.alloc(format!("{t}-{i}"));
                    assert_eq!(*st, format!("{t}-{i}"));
                }
                for (i, p) in mine.into_iter().enumerate() {
                    // SAFETY: our own allocation, still live.
                    assert_eq!(unsafe { *(p as *const u64) }, t * 1_000_000 + i as u64);
                }
                let mut v: AVec<u64, _> = AVec::new_in(arena);
                v.extend(0..100);
                assert_eq!(v.len(), 100);
            });
        }
    });
    assert!(arena.stats().allocation_count as u64 >= 8 * n);
    arena.reset();
    // The arena can move to another thread and be dropped there.
    std::thread::scope(|s| {
        s.spawn(move || drop(arena));
    });
    assert_eq!(pages.stats().allocated_pages, 0);
}

#[test]
fn locked_pool_lives_in_its_first_block() {
    let p = LockedPool::create(4000).unwrap();
    // SAFETY: live until destroyed below, used from this thread only.
    unsafe {
        let pool = p.as_ref().lock();
        assert_eq!(
            pool.block_size(),
            8192,
            "4000 bytes + the pool + a node header"
        );
        let a = pool.alloc(16).unwrap().as_ptr() as usize;
        assert_eq!(
            a & !8191,
            p.as_ptr() as usize,
            "first allocation is in the pool's own block"
        );
        assert!(a >= p.as_ptr() as usize + size_of::<LockedPool>());
        let big = pool.alloc(100_000).unwrap();
        assert_eq!(pool.free(big.as_ptr()), Ok(()));
        let ours = pool.alloc(10).unwrap();
        assert!(matches!(
            pool.free(ours.as_ptr()),
            Err(kmem_arena::FreeError::Small { .. })
        ));
        drop(pool);
        LockedPool::destroy(p);
    }
}
