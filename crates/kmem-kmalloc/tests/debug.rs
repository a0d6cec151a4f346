//! kmalloc with every debug check on (`KMEM_DEBUG=FZPU` for all caches, set
//! before the kmalloc caches exist): a clean workload reports nothing, and
//! each kind of bug is reported naming its kmalloc cache and the call sites.
// Every unsafe block frees what the test allocated from kmalloc, or is the
// bug under test inside memory the slab keeps mapped.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::sync::{Mutex, MutexGuard, Once};

use kmem_kmalloc::*;
use kmem_page::Gfp;
use kmem_platform::diag::capture;
use kmem_slab::SlabFlags;
use kmem_slab::debug::{self, DebugConfig};

const G: Gfp = Gfp::KERNEL;

/// Sets the checks up once; the returned guard serialises the tests (each
/// one's bug must not show up in another's reports).
fn all_checks_on() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        debug::set_global(DebugConfig::new(SlabFlags::DEBUG_ALL));
        // The caches are created now, with the checks.
        let p = kmalloc(8, G).unwrap();
        unsafe { kfree(p.as_ptr()).unwrap() };
    });
    g
}

fn here(line: u32) -> String {
    format!("{}:{line}:", file!())
}

fn has(reports: &[String], needle: &str) -> bool {
    reports.iter().any(|r| r.contains(needle))
}

#[test]
fn clean_workload_with_every_check_reports_nothing() {
    let _serial = all_checks_on();
    let n = if cfg!(miri) { 2 } else { 50 };
    let ((), reports) = capture(|| {
        let mut v = Vec::new();
        for i in 0..n {
            for &size in &[
                1usize, 7, 8, 24, 64, 96, 150, 200, 256, 700, 2000, 5000, 8192, 20000,
            ] {
                let p = kmalloc(size, G).unwrap();
                let usable = ksize(p.as_ptr()).unwrap();
                assert!(usable >= size);
                unsafe { core::ptr::write_bytes(p.as_ptr(), i as u8, usable) };
                v.push(p);
            }
            let z = kzalloc(100, G).unwrap();
            assert!(
                unsafe { core::slice::from_raw_parts(z.as_ptr(), 128) }
                    .iter()
                    .all(|&b| b == 0)
            );
            let r = unsafe { krealloc(z.as_ptr(), 1000, G).unwrap() };
            unsafe { kfree_sensitive(r.as_ptr()).unwrap() };
            let a = kmalloc_aligned(40, 64, G).unwrap();
            assert_eq!(a.as_ptr() as usize % 64, 0);
            unsafe { kfree(a.as_ptr()).unwrap() };
            if i % 3 == 2 {
                for p in v.drain(..) {
                    unsafe { kfree(p.as_ptr()).unwrap() };
                }
            }
        }
        for p in v {
            unsafe { kfree(p.as_ptr()).unwrap() };
        }
        assert_eq!(validate(), 0);
    });
    assert!(reports.is_empty(), "{reports:#?}");
}

#[test]
fn overflow_past_the_bucket_is_reported_on_kfree() {
    let _serial = all_checks_on();
    let p = kmalloc(50, G).unwrap();
    // The whole bucket (ksize) is the caller's: no report for bytes 50..64.
    unsafe { core::ptr::write_bytes(p.as_ptr(), 1, 64) };
    unsafe { p.as_ptr().add(64).write(0x33) };
    let free_line = line!() + 1;
    let (r, reports) = capture(|| unsafe { kfree(p.as_ptr()) });
    assert!(r.is_ok());
    assert!(
        has(
            &reports,
            "BUG kmalloc-64: Right Redzone overwritten (buffer overflow)"
        ),
        "{reports:#?}"
    );
    assert!(has(&reports, "first byte 0x33 instead of 0xcc"));
    assert!(has(&reports, &format!("freed at {}", here(free_line))));
}

#[test]
fn use_after_free_is_found() {
    let _serial = all_checks_on();
    let alloc_line = line!() + 1;
    let p = kmalloc(900, G).unwrap(); // kmalloc-1k
    unsafe { kfree(p.as_ptr()).unwrap() };
    unsafe { p.as_ptr().add(512).write(0) };
    let (n, reports) = capture(validate);
    assert_eq!(n, 1, "{reports:#?}");
    assert!(has(&reports, "BUG kmalloc-1k: Poison overwritten"));
    assert!(has(&reports, "@offset=512"));
    assert!(has(&reports, &format!("allocated at {}", here(alloc_line))));
}

#[test]
fn double_and_interior_frees_are_refused_with_detail() {
    let _serial = all_checks_on();
    let p = kmalloc(32, G).unwrap();
    let inner = unsafe { p.as_ptr().add(4) };
    let (r, reports) = capture(|| unsafe { kfree(inner) });
    assert!(r.is_err());
    assert!(
        has(&reports, "BUG kmalloc-32: free of") && has(&reports, "interior pointer"),
        "{reports:#?}"
    );
    unsafe { kfree(p.as_ptr()).unwrap() };
    let (r, reports) = capture(|| unsafe { kfree(p.as_ptr()) });
    assert!(r.is_err());
    assert!(
        has(&reports, "BUG kmalloc-32: double free of"),
        "{reports:#?}"
    );
}

#[test]
fn leaks_name_the_kmalloc_call_sites() {
    let _serial = all_checks_on();
    let mut v = Vec::new();
    let site = line!() + 2;
    for _ in 0..5 {
        v.push(kmalloc(3000, G).unwrap()); // kmalloc-4k
    }
    let mut out = String::new();
    debug::leak_report(&mut out).unwrap();
    let want = format!(
        "5 objects (20480 bytes) of kmalloc-4k allocated at {}",
        here(site)
    );
    assert!(out.contains(&want), "{out}");
    for p in v {
        unsafe { kfree(p.as_ptr()).unwrap() };
    }
    let mut out = String::new();
    debug::leak_report(&mut out).unwrap();
    assert!(!out.contains("kmalloc-4k"), "{out}");
}
