//! The debug checks, one buggy program per kind of bug: each must be
//! reported naming the cache and the bug (with the call sites), the cache
//! must be repaired and usable afterwards, and the test keeps running.
// Every unsafe block frees an object of the test's own cache, or is the
// bug under test: a write just outside (or after the free of) an object
// whose slab stays mapped, or a free of a bad pointer, which the cache
// refuses without touching it.
#![allow(clippy::undocumented_unsafe_blocks)]

use core::ptr::NonNull;

use kmem_page::Gfp;
use kmem_platform::diag::capture;
use kmem_slab::debug::{self, CallSite, DebugConfig, DebugLayout};
use kmem_slab::{KmemCache, SlabError, SlabFlags};

fn cache(name: &str, size: usize, align: usize, flags: SlabFlags) -> KmemCache {
    KmemCache::builder(name, size)
        .align(align)
        .debug(flags)
        .create()
        .unwrap()
}

fn here(line: u32) -> String {
    format!("{}:{line}:", file!())
}

fn has(reports: &[String], needle: &str) -> bool {
    reports.iter().any(|r| r.contains(needle))
}

#[test]
fn use_after_free_is_reported_at_the_next_alloc_and_repaired() {
    let c = cache("dbg_uaf", 48, 0, SlabFlags::DEBUG_ALL);
    let (alloc_line, p) = (line!(), c.alloc(Gfp::KERNEL).unwrap());
    let free_line = line!() + 1;
    unsafe { c.free(p).unwrap() };
    // The bug: a write into the free object.
    unsafe { p.as_ptr().add(10).write(0x41) };
    let (q, reports) = capture(|| c.alloc(Gfp::KERNEL).unwrap());
    assert_eq!(q, p, "a debug cache reuses the object (LIFO on its slab)");
    assert!(
        reports[0].contains("BUG dbg_uaf: Poison overwritten"),
        "{reports:#?}"
    );
    assert!(has(&reports, "@offset=10: first byte 0x41 instead of 0x6b"));
    assert!(has(&reports, &format!("allocated at {}", here(alloc_line))));
    assert!(has(&reports, &format!("freed at {}", here(free_line))));
    assert!(has(&reports, "FIX dbg_uaf: restored Poison"));
    assert!(has(&reports, "Object"), "a hex dump: {reports:#?}");
    unsafe { c.free(q).unwrap() };
    let (n, reports) = capture(|| c.validate());
    assert_eq!((n, reports.len()), (0, 0), "{reports:#?}");
    c.destroy().map_err(|(_, e)| e).unwrap();
}

#[test]
fn overflow_is_reported_on_free_and_the_red_zone_restored() {
    let c = cache("dbg_overflow", 20, 0, SlabFlags::DEBUG_ALL);
    let p = c.alloc(Gfp::KERNEL).unwrap();
    unsafe { p.as_ptr().add(20).write(0) };
    let free_line = line!() + 1;
    let (r, reports) = capture(|| unsafe { c.free(p) });
    assert!(r.is_ok(), "the object is still freed");
    assert!(
        reports[0].contains("BUG dbg_overflow: Right Redzone overwritten (buffer overflow)"),
        "{reports:#?}"
    );
    assert!(has(&reports, "@offset=20: first byte 0x00 instead of 0xcc"));
    assert!(has(&reports, &format!("freed at {}", here(free_line))));
    assert!(has(&reports, "FIX dbg_overflow: restored Redzone"));
    assert_eq!(c.active_objects(), 0);
    assert_eq!(capture(|| c.validate()).0, 0, "repaired");
    c.destroy().map_err(|(_, e)| e).unwrap();
}

#[test]
fn underflow_is_reported_on_free() {
    let c = cache("dbg_underflow", 64, 64, SlabFlags::RED_ZONE);
    let p = c.alloc(Gfp::KERNEL).unwrap();
    assert_eq!(p.as_ptr() as usize % 64, 0, "red zones keep the alignment");
    unsafe { p.as_ptr().sub(1).write(7) };
    let (r, reports) = capture(|| unsafe { c.free(p) });
    assert!(r.is_ok());
    assert!(
        reports[0].contains("BUG dbg_underflow: Left Redzone overwritten (buffer underflow)"),
        "{reports:#?}"
    );
    assert!(has(&reports, "@offset=-1: first byte 0x07 instead of 0xcc"));
    c.destroy().map_err(|(_, e)| e).unwrap();
}

#[test]
fn overflow_while_allocated_is_found_by_validate() {
    let c = cache(
        "dbg_validate",
        32,
        0,
        SlabFlags::RED_ZONE | SlabFlags::POISON,
    );
    let a = c.alloc(Gfp::KERNEL).unwrap();
    let b = c.alloc(Gfp::KERNEL).unwrap();
    unsafe { c.free(b).unwrap() };
    unsafe { a.as_ptr().add(33).write(1) }; // overflow of the live object
    unsafe { b.as_ptr().write(2) }; // write after free
    let (n, reports) = capture(|| c.validate());
    assert_eq!(n, 2, "{reports:#?}");
    assert!(has(&reports, "BUG dbg_validate: Right Redzone overwritten"));
    assert!(has(&reports, "BUG dbg_validate: Poison overwritten"));
    assert_eq!(capture(|| c.validate()).0, 0, "both repaired");
    let (r, reports) = capture(|| unsafe { c.free(a) });
    assert!(r.is_ok() && reports.is_empty(), "{reports:#?}");
}

#[test]
fn double_free_names_both_frees() {
    let c = cache("dbg_double", 64, 0, SlabFlags::DEBUG_ALL);
    let p = c.alloc(Gfp::KERNEL).unwrap();
    let first = line!() + 1;
    unsafe { c.free(p).unwrap() };
    let second = line!() + 1;
    let (r, reports) = capture(|| unsafe { c.free(p) });
    assert_eq!(
        r,
        Err(SlabError::NotAllocated {
            addr: p.as_ptr() as usize
        })
    );
    assert!(
        has(&reports, "BUG dbg_double: double free of"),
        "{reports:#?}"
    );
    assert!(has(&reports, &format!("freed at {}", here(first))));
    assert!(has(&reports, &format!("bad free at {}", here(second))));
    // Nothing changed: the object is handed out once, then the cache is empty.
    let q = c.alloc(Gfp::KERNEL).unwrap();
    assert_eq!(c.active_objects(), 1);
    unsafe { c.free(q).unwrap() };
    assert_eq!(capture(|| c.validate()).0, 0);
}

#[test]
fn invalid_pointer_is_refused() {
    let c = cache("dbg_invalid", 32, 0, SlabFlags::DEBUG_ALL);
    let mut local = [0u8; 32];
    let p = NonNull::new(local.as_mut_ptr()).unwrap();
    let (r, reports) = capture(|| unsafe { c.free(p) });
    assert!(matches!(r, Err(SlabError::NotKmem { .. })));
    assert!(
        has(&reports, "BUG dbg_invalid: free of") && has(&reports, "invalid pointer"),
        "{reports:#?}"
    );
    assert_eq!(local, [0; 32], "foreign memory is not touched");
}

#[test]
fn interior_pointer_says_where_it_points() {
    let c = cache("dbg_interior", 40, 0, SlabFlags::DEBUG_ALL);
    let alloc_line = line!() + 1;
    let p = c.alloc(Gfp::KERNEL).unwrap();
    let inner = NonNull::new(unsafe { p.as_ptr().add(8) }).unwrap();
    let (r, reports) = capture(|| unsafe { c.free(inner) });
    assert!(matches!(r, Err(SlabError::Interior { .. })));
    assert!(
        has(&reports, "BUG dbg_interior: free of") && has(&reports, "interior pointer"),
        "{reports:#?}"
    );
    assert!(has(&reports, "is 8 bytes inside the object at"));
    assert!(has(&reports, &format!("allocated at {}", here(alloc_line))));
    // A pointer into the red zone before the object.
    let rz = NonNull::new(unsafe { p.as_ptr().sub(4) }).unwrap();
    let (_, reports) = capture(|| unsafe { c.free(rz) });
    assert!(
        has(&reports, "is 4 bytes in the left red zone of the object"),
        "{reports:#?}"
    );
    unsafe { c.free(p).unwrap() };
    assert_eq!(capture(|| c.validate()).0, 0);
}

#[test]
fn wrong_cache_names_the_owner() {
    let a = cache("dbg_wrong_a", 32, 0, SlabFlags::DEBUG_ALL);
    let b = cache("dbg_wrong_b", 32, 0, SlabFlags::DEBUG_ALL);
    let alloc_line = line!() + 1;
    let p = b.alloc(Gfp::KERNEL).unwrap();
    let (r, reports) = capture(|| unsafe { a.free(p) });
    assert!(matches!(r, Err(SlabError::WrongCache { .. })));
    assert!(
        has(&reports, "BUG dbg_wrong_a: free of")
            && has(&reports, "into the wrong cache: it belongs to dbg_wrong_b"),
        "{reports:#?}"
    );
    assert!(has(&reports, &format!("allocated at {}", here(alloc_line))));
    unsafe { b.free(p).unwrap() };
}

#[test]
fn leaks_are_grouped_by_site_with_counts_and_bytes() {
    let c = cache("dbg_leaks", 100, 0, SlabFlags::STORE_USER);
    let mut kept = Vec::new();
    let site_a = line!() + 2;
    for _ in 0..3 {
        kept.push(c.alloc(Gfp::KERNEL).unwrap());
    }
    let site_b = line!() + 1;
    kept.push(c.alloc(Gfp::KERNEL).unwrap());
    let freed = c.alloc(Gfp::KERNEL).unwrap();
    unsafe { c.free(freed).unwrap() };
    let mut out = String::new();
    let s = c.leak_report(&mut out).unwrap();
    assert_eq!((s.objects, s.bytes, s.sites), (4, 400, 2), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("3 objects (300 bytes) of dbg_leaks allocated at ")
            && lines[0].contains(&here(site_a)),
        "{out}"
    );
    assert!(
        lines[1].starts_with("1 object (100 bytes) of dbg_leaks allocated at ")
            && lines[1].contains(&here(site_b)),
        "{out}"
    );
    // Destroying the cache with live objects: the count, then the sites.
    let (r, reports) = capture(|| c.destroy());
    let (c, err) = r.unwrap_err();
    assert_eq!(err, SlabError::Busy { live: 4 });
    assert!(has(
        &reports,
        "kmem_cache_destroy(dbg_leaks): 4 objects still in use"
    ));
    assert!(
        has(
            &reports,
            &format!(
                "kmem_cache_destroy(dbg_leaks): 3 objects (300 bytes) of dbg_leaks allocated at {}",
                here(site_a)
            )
        ),
        "{reports:#?}"
    );
    // The process-wide report lists the same sites.
    let mut all = String::new();
    debug::leak_report(&mut all).unwrap();
    assert!(all.contains(&here(site_b)), "{all}");
    for p in kept {
        unsafe { c.free(p).unwrap() };
    }
    let mut out = String::new();
    assert_eq!(c.leak_report(&mut out).unwrap().objects, 0);
    c.destroy().map_err(|(_, e)| e).unwrap();
}

#[test]
fn c_callers_are_recorded_by_return_address() {
    let c = cache("dbg_c_site", 16, 0, SlabFlags::STORE_USER);
    let p = debug::with_caller(0xdead_beef, || c.alloc(Gfp::KERNEL).unwrap());
    let mut out = String::new();
    c.leak_report(&mut out).unwrap();
    assert!(out.contains("allocated at 0xdeadbeef"), "{out}");
    // Outside `with_caller` the Rust location is recorded again.
    let q = c.alloc(Gfp::KERNEL).unwrap();
    let mut out = String::new();
    c.leak_report(&mut out).unwrap();
    assert!(out.contains(file!()), "{out}");
    unsafe {
        c.free(p).unwrap();
        c.free(q).unwrap();
    }
}

/// A clean workload with every check on reports nothing, keeps alignment,
/// zeroes with `Gfp::ZERO`, and leaves every object free.
#[test]
fn clean_workload_reports_nothing() {
    let rounds = if cfg!(miri) { 2 } else { 20 };
    for (size, align) in [(1, 0), (8, 8), (24, 0), (100, 32), (256, 256), (3000, 0)] {
        let c = cache("dbg_clean", size, align, SlabFlags::DEBUG_ALL);
        assert_eq!(c.geometry().limit, 0);
        let ((), reports) = capture(|| {
            let mut live = Vec::new();
            for r in 0..rounds {
                for _ in 0..7 {
                    let p = c.zalloc(Gfp::KERNEL).unwrap();
                    assert_eq!(p.as_ptr() as usize % align.max(8), 0);
                    let s = unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), size) };
                    assert!(s.iter().all(|&b| b == 0));
                    s.fill(r as u8);
                    live.push(p);
                }
                let mut kept = Vec::new();
                for (i, p) in live.drain(..).enumerate() {
                    if i % 2 == 0 {
                        unsafe { c.free(p).unwrap() };
                    } else {
                        kept.push(p);
                    }
                }
                live = kept;
            }
            for p in live {
                unsafe { c.free(p).unwrap() };
            }
            assert_eq!(c.validate(), 0);
        });
        assert!(reports.is_empty(), "{size}/{align}: {reports:#?}");
        assert_eq!(c.active_objects(), 0);
        c.destroy().map_err(|(_, e)| e).unwrap();
    }
}

#[test]
fn constructed_caches_keep_their_state_and_are_not_poisoned() {
    let c = KmemCache::builder("dbg_ctor", 32)
        .debug(SlabFlags::DEBUG_ALL)
        .ctor(|p: NonNull<u8>| unsafe { p.as_ptr().write_bytes(0x5a, 32) })
        .create()
        .unwrap();
    assert!(!c.flags().contains(SlabFlags::POISON));
    let p = c.alloc(Gfp::KERNEL).unwrap();
    unsafe { c.free(p).unwrap() };
    let q = c.alloc(Gfp::KERNEL).unwrap();
    assert!(
        unsafe { core::slice::from_raw_parts(q.as_ptr(), 32) }
            .iter()
            .all(|&b| b == 0x5a)
    );
    unsafe { q.as_ptr().add(32).write(0) };
    let (_, reports) = capture(|| unsafe { c.free(q) });
    assert!(
        has(&reports, "BUG dbg_ctor: Right Redzone overwritten"),
        "{reports:#?}"
    );
}

#[test]
fn layout_and_config() {
    let l = DebugLayout::compute(50, 16, SlabFlags::DEBUG_ALL);
    assert_eq!((l.red_left, l.red_end, l.track_off), (16, 64, 64));
    assert_eq!(l.stride % 16, 0);
    assert!(!DebugLayout::compute(50, 16, SlabFlags::HWCACHE_ALIGN).on());
    let c = DebugConfig::parse("fz,dbg_cfg_a,dbg_cfg_pre*").unwrap();
    assert_eq!(
        c.flags(),
        SlabFlags::CONSISTENCY_CHECKS | SlabFlags::RED_ZONE
    );
    assert!(c.applies_to("dbg_cfg_a") && c.applies_to("dbg_cfg_prefix"));
    assert!(!c.applies_to("dbg_cfg_b"));
    assert_eq!(
        DebugConfig::parse("").unwrap().flags(),
        SlabFlags::DEBUG_ALL
    );
    assert_eq!(
        DebugConfig::parse(",x").unwrap().flags_for("x"),
        SlabFlags::DEBUG_ALL
    );
    assert_eq!(DebugConfig::parse("-").unwrap().flags(), SlabFlags::empty());
    assert!(matches!(
        DebugConfig::parse("FX"),
        Err(debug::DebugParseError::UnknownLetter('X'))
    ));
    assert_eq!(CallSite::Return(0x10).to_string(), "0x10");
}

#[test]
fn global_config_applies_to_named_caches_created_afterwards() {
    // Only caches named dbg_global_* are affected, so other tests running
    // in parallel keep their layout.
    let before = debug::global();
    debug::set_global(DebugConfig::parse("PZ,dbg_global_*").unwrap());
    let on = KmemCache::new("dbg_global_on", 32, 0).unwrap();
    let off = KmemCache::new("dbg_other_off", 32, 0).unwrap();
    debug::set_global(before);
    assert!(on.flags().contains(SlabFlags::POISON | SlabFlags::RED_ZONE));
    assert!(on.debug_layout().on() && !off.debug_layout().on());
    let p = on.alloc(Gfp::KERNEL).unwrap();
    unsafe { p.as_ptr().add(32).write(9) };
    let (_, reports) = capture(|| unsafe { on.free(p) });
    assert!(has(
        &reports,
        "BUG dbg_global_on: Right Redzone overwritten"
    ));
}
