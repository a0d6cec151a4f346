//! The seed's character-device example (§4.2), rewritten as a user-space
//! service: `example_read` allocates a 256-byte object from a mempool with
//! `GFP_KERNEL`, fills it with 0xAB, copies `count` bytes to the caller and
//! frees it. The point of the mempool is that this read path must not fail
//! under memory pressure — so here the backend's page allocator is squeezed
//! to nothing by a "hog" while readers hammer the device, and every read must
//! still succeed. The module init's error unwinding (`goto fail_pool`) becomes
//! `ExampleDevice::init` failing cleanly when the pool cannot be filled.
#![cfg(not(loom))]

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use kmem_mempool::{Backend, BoxBackend, FaultyBackend, Gfp, Mempool, MempoolError};
use kmem_page::{Config, PageAllocator};
use kmem_platform::TestPlatform;

const POOL_SIZE: usize = 32;
const OBJECT_SIZE: usize = 256;
const EINVAL: i32 = 22;
const ENOMEM: i32 = 12;

/// `example_alloc`/`example_free`: the seed uses `kmalloc(OBJECT_SIZE)`; the
/// kmalloc layer is not in yet, so an object is a page from the device's page
/// allocator (the pool neither knows nor cares).
struct ExampleBackend<'a> {
    pages: &'a PageAllocator<TestPlatform>,
}

// SAFETY: page-layer blocks are exclusive, aligned and initialised; freed with
// the order they were allocated with.
unsafe impl Backend for ExampleBackend<'_> {
    type Elem = [u8; OBJECT_SIZE];
    fn alloc(&self, gfp: Gfp) -> Option<NonNull<[u8; OBJECT_SIZE]>> {
        self.pages.alloc_raw(0, gfp).ok().map(NonNull::cast)
    }
    unsafe fn free(&self, e: NonNull<[u8; OBJECT_SIZE]>) {
        // SAFETY: an order-0 block of `pages` (the trait's contract).
        unsafe { self.pages.free_raw(e.cast(), 0).unwrap() };
    }
}

/// `struct example_device`, over any backend of 256-byte objects.
struct ExampleDevice<B: Backend<Elem = [u8; OBJECT_SIZE]>> {
    pool: Mempool<B>,
}

impl<'a> ExampleDevice<ExampleBackend<'a>> {
    /// `example_init`: create the pool or fail with -ENOMEM, leaving nothing behind.
    fn init(pages: &'a PageAllocator<TestPlatform>) -> Result<Self, i32> {
        Self::with_backend(ExampleBackend { pages })
    }
}

impl<B: Backend<Elem = [u8; OBJECT_SIZE]>> ExampleDevice<B> {
    fn with_backend(backend: B) -> Result<Self, i32> {
        match Mempool::new(POOL_SIZE, backend) {
            Ok(pool) => Ok(ExampleDevice { pool }),
            Err(MempoolError::Prefill { .. } | MempoolError::NoReserveArray { .. }) => Err(-ENOMEM),
            Err(e) => panic!("unexpected: {e}"),
        }
    }

    /// `example_read`.
    fn read(&self, buf: &mut [u8]) -> Result<usize, i32> {
        let count = buf.len();
        if count > OBJECT_SIZE {
            return Err(-EINVAL);
        }
        // mempool_alloc(dev->pool, GFP_KERNEL): never NULL.
        let mut item = self.pool.alloc();
        item.fill(0xAB);
        buf.copy_from_slice(&item[..count]);
        Ok(count) // mempool_free on drop
    }
}

/// The same read path with pressure injected at the backend (this variant also
/// runs under Miri): a thread flips the backend between failing and healthy
/// while readers, more of them than the reserve holds, keep reading.
#[test]
fn reads_never_fail_while_the_backend_fails_on_and_off() {
    let (readers, reads) = if cfg!(miri) { (3, 15) } else { (6, 3000) };
    let backend = FaultyBackend::new(BoxBackend::new(
        (|| [0u8; OBJECT_SIZE]) as fn() -> [u8; OBJECT_SIZE],
    ));
    let dev = ExampleDevice::with_backend(backend).unwrap();
    dev.pool.resize(2).unwrap(); // fewer objects in reserve than readers
    dev.pool
        .set_retry_interval(std::time::Duration::from_secs(30));
    dev.pool.backend().set_failing(true);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                dev.pool.backend().set_failing(i % 4 != 0);
                i += 1;
                std::thread::yield_now();
            }
        });
        let workers: Vec<_> = (0..readers)
            .map(|t| {
                let dev = &dev;
                s.spawn(move || {
                    let mut buf = [0u8; OBJECT_SIZE];
                    for i in 0..reads {
                        let n = 1 + (i * 13 + t) % OBJECT_SIZE;
                        assert_eq!(dev.read(&mut buf[..n]), Ok(n));
                        assert!(buf[..n].iter().all(|&b| b == 0xAB));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let st = dev.pool.stats();
    assert!(
        st.backend_failures > 0 && st.reserve_allocs > 0,
        "the pressure was real: {st}"
    );
    assert_eq!((st.outstanding, st.expired), (0, 0), "{st}");
    let backend_live = dev.pool.backend().live();
    assert_eq!(backend_live, st.curr_nr, "nothing leaked");
}

/// Page blocks handed to the hog thread.
struct Blocks(Vec<NonNull<u8>>);
// SAFETY: the blocks are plain memory owned by whoever holds the vector.
unsafe impl Send for Blocks {}
impl Blocks {
    fn into_inner(self) -> Vec<NonNull<u8>> {
        self.0
    }
}

fn pressured_pages(max_pages: usize) -> PageAllocator<TestPlatform> {
    PageAllocator::with_config(
        TestPlatform::new(),
        Config {
            keep_free_pages: 0,
            max_pages,
        },
    )
}

#[test]
fn reads_never_fail_while_memory_is_exhausted() {
    let (readers, reads) = if cfg!(miri) { (2, 30) } else { (6, 4000) };
    let pages = pressured_pages(1024);
    let dev = ExampleDevice::init(&pages).unwrap();
    dev.pool
        .set_retry_interval(std::time::Duration::from_millis(1));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // The hog: grabs every free page before the readers start, then lets a
        // few go now and then and grabs them back.
        let held = Blocks(std::iter::from_fn(|| pages.alloc_raw(0, Gfp::NOWAIT).ok()).collect());
        let pages = &pages;
        let stop = &stop;
        let hog = s.spawn(move || {
            let mut held = held.into_inner();
            let mut rounds = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if rounds % 4 == 3 {
                    // Brief relief: a few pages come back.
                    for p in held.drain(held.len().saturating_sub(3)..) {
                        // SAFETY: order-0 blocks this test allocated.
                        unsafe { pages.free_raw(p, 0).unwrap() };
                    }
                }
                std::thread::yield_now();
                while let Ok(p) = pages.alloc_raw(0, Gfp::NOWAIT) {
                    held.push(p);
                }
                rounds += 1;
            }
            for p in held {
                // SAFETY: as above.
                unsafe { pages.free_raw(p, 0).unwrap() };
            }
        });
        let workers: Vec<_> = (0..readers)
            .map(|t| {
                let dev = &dev;
                s.spawn(move || {
                    let mut buf = [0u8; OBJECT_SIZE];
                    for i in 0..reads {
                        let n = 1 + (i * 7 + t) % OBJECT_SIZE;
                        assert_eq!(dev.read(&mut buf[..n]), Ok(n));
                        assert!(buf[..n].iter().all(|&b| b == 0xAB));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        hog.join().unwrap();
    });
    let st = dev.pool.stats();
    assert!(
        st.backend_failures > 0 && st.reserve_allocs > 0,
        "the pressure was real: {st}"
    );
    assert_eq!(st.outstanding, 0);
    assert_eq!(dev.read(&mut [0u8; OBJECT_SIZE + 1]), Err(-EINVAL));
    drop(dev);
    assert_eq!(
        pages.stats().allocated_pages,
        0,
        "the device's exit returned everything"
    );
    pages.check().unwrap();
}

#[test]
fn readers_outnumbering_the_reserve_wait_instead_of_failing() {
    // Only 2 objects in reserve and none from the backend: 4 readers must
    // take turns, waiting for each other's frees.
    let (readers, reads) = if cfg!(miri) { (3, 10) } else { (4, 2000) };
    let pages = pressured_pages(1024);
    let pool = Mempool::new(2, ExampleBackend { pages: &pages }).unwrap();
    pool.set_retry_interval(std::time::Duration::from_secs(30));
    let dev = ExampleDevice { pool };
    let hog: Vec<_> = std::iter::from_fn(|| pages.alloc_raw(0, Gfp::NOWAIT).ok()).collect();
    std::thread::scope(|s| {
        for _ in 0..readers {
            let dev = &dev;
            s.spawn(move || {
                let mut buf = [0u8; 64];
                for _ in 0..reads {
                    assert_eq!(dev.read(&mut buf), Ok(64));
                }
            });
        }
    });
    let st = dev.pool.stats();
    assert_eq!(
        st.reserve_allocs,
        (readers * reads) as u64,
        "every object came from the reserve"
    );
    assert_eq!(
        st.expired, 0,
        "every wait ended with a wake-up, none with the timer"
    );
    for p in hog {
        // SAFETY: order-0 blocks allocated above.
        unsafe { pages.free_raw(p, 0).unwrap() };
    }
}

#[test]
fn init_fails_cleanly_when_the_pool_cannot_be_filled() {
    let pages = pressured_pages(1024);
    let hog: Vec<_> = std::iter::from_fn(|| pages.alloc_raw(0, Gfp::NOWAIT).ok())
        .take(1024 - 10)
        .collect();
    assert_eq!(ExampleDevice::init(&pages).err(), Some(-ENOMEM));
    assert_eq!(
        pages.stats().allocated_pages,
        1024 - 10,
        "the 10 objects it got were freed"
    );
    for p in hog {
        // SAFETY: order-0 blocks allocated above.
        unsafe { pages.free_raw(p, 0).unwrap() };
    }
    assert!(ExampleDevice::init(&pages).is_ok());
}
