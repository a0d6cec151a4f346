//! The trace events (`--features trace`): `kmalloc`, `kfree`,
//! `kmem_cache_alloc`, `kmem_cache_free`, `mm_page_alloc`, `mm_page_free`,
//! each with the kernel tracepoint's fields, checked through a collecting
//! `tracing` subscriber installed for the test's thread only.
//!
//! Run: `cargo test -p kmem-kmalloc --features trace --test trace`.
// Every unsafe block frees what the test itself allocated just before.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use kmem_kmalloc::{kfree, kmalloc, kzalloc};
use kmem_page::{Gfp, PageAllocator};
use kmem_slab::KmemCache;
use tracing::field::{Field, Visit};
use tracing::span;
use tracing::{Event, Level, Metadata, Subscriber};

#[derive(Clone, Debug, PartialEq)]
enum Val {
    U(u64),
    S(String),
}

#[derive(Clone, Debug)]
struct Ev {
    name: &'static str,
    target: String,
    level: Level,
    fields: HashMap<&'static str, Val>,
}

impl Ev {
    fn u(&self, f: &str) -> u64 {
        match self.fields.get(f) {
            Some(Val::U(v)) => *v,
            other => panic!("{}: field {f} is {other:?}", self.name),
        }
    }
    fn s(&self, f: &str) -> &str {
        match self.fields.get(f) {
            Some(Val::S(v)) => v,
            other => panic!("{}: field {f} is {other:?}", self.name),
        }
    }
    fn field_names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.fields.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

struct Fields(HashMap<&'static str, Val>);

impl Visit for Fields {
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.insert(f.name(), Val::U(v));
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name(), Val::S(v.to_owned()));
    }
    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        self.0.insert(f.name(), Val::S(format!("{v:?}")));
    }
}

/// Keeps every event (no spans are used).
struct Collect(Arc<Mutex<Vec<Ev>>>);

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut f = Fields(HashMap::new());
        e.record(&mut f);
        self.0.lock().unwrap().push(Ev {
            name: e.metadata().name(),
            target: e.metadata().target().to_owned(),
            level: *e.metadata().level(),
            fields: f.0,
        });
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// Runs `f` with a collecting subscriber on this thread; returns the events.
fn collect(f: impl FnOnce()) -> Vec<Ev> {
    let evs = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::with_default(Collect(evs.clone()), f);
    let v = evs.lock().unwrap().clone();
    for e in &v {
        assert_eq!((e.target.as_str(), e.level), ("kmem", Level::TRACE));
    }
    v
}

fn named<'a>(evs: &'a [Ev], name: &str) -> Vec<&'a Ev> {
    evs.iter().filter(|e| e.name == name).collect()
}

/// Asserts `call_site` is this file at `line`.
fn assert_site(e: &Ev, line: u32) {
    let site = e.s("call_site");
    assert!(
        site.starts_with(&format!("{}:{line}:", file!())),
        "{}: call_site {site}, expected {}:{line}",
        e.name,
        file!()
    );
}

#[test]
fn kmalloc_and_kfree_carry_the_tracepoint_fields() {
    let mut p = std::ptr::null_mut();
    let (mut la, mut lf) = (0, 0);
    let evs = collect(|| {
        p = kmalloc(100, Gfp::KERNEL).unwrap().as_ptr();
        la = line!() - 1;
        unsafe { kfree(p).unwrap() };
        lf = line!() - 1;
    });
    let a = named(&evs, "kmalloc");
    assert_eq!(a.len(), 1, "{evs:?}");
    let a = a[0];
    assert_eq!(
        a.field_names(),
        ["bytes_alloc", "bytes_req", "call_site", "gfp_flags", "ptr"]
    );
    assert_eq!(a.u("ptr"), p as u64);
    assert_eq!((a.u("bytes_req"), a.u("bytes_alloc")), (100, 128));
    assert_eq!(a.u("gfp_flags"), Gfp::KERNEL.0 as u64);
    assert_site(a, la);
    let f = named(&evs, "kfree");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].field_names(), ["call_site", "ptr"]);
    assert_eq!(f[0].u("ptr"), p as u64);
    assert_site(f[0], lf);
    // kmalloc's classes do not also raise the cache events.
    assert!(named(&evs, "kmem_cache_alloc").is_empty());
    assert!(named(&evs, "kmem_cache_free").is_empty());
}

#[test]
fn helpers_report_their_callers_and_sizes() {
    let mut p = std::ptr::null_mut();
    let mut l = 0;
    let evs = collect(|| {
        p = kzalloc(9, Gfp::KERNEL).unwrap().as_ptr();
        l = line!() - 1;
        unsafe { kfree(p).unwrap() };
        // NULL and ZERO_SIZE_PTR: traced, as the kernel does.
        let z = kmalloc(0, Gfp::KERNEL).unwrap();
        unsafe { kfree(z.as_ptr()).unwrap() };
        unsafe { kfree(std::ptr::null()).unwrap() };
    });
    let a = named(&evs, "kmalloc");
    assert_eq!(a.len(), 2);
    assert_eq!(
        (a[0].u("ptr"), a[0].u("bytes_req"), a[0].u("bytes_alloc")),
        (p as u64, 9, 16)
    );
    assert_eq!(a[0].u("gfp_flags"), (Gfp::KERNEL | Gfp::ZERO).0 as u64);
    assert_site(a[0], l);
    assert_eq!(
        (a[1].u("ptr"), a[1].u("bytes_req"), a[1].u("bytes_alloc")),
        (16, 0, 0)
    );
    let f: Vec<u64> = named(&evs, "kfree").iter().map(|e| e.u("ptr")).collect();
    assert_eq!(f, [p as u64, 16, 0]);
}

#[test]
fn large_kmalloc_raises_page_events() {
    let mut p = std::ptr::null_mut();
    let evs = collect(|| {
        p = kmalloc(20_000, Gfp::KERNEL).unwrap().as_ptr();
        unsafe { kfree(p).unwrap() };
    });
    // 20000 bytes: 5 pages, an order-3 block.
    let a = named(&evs, "kmalloc");
    assert_eq!((a[0].u("ptr"), a[0].u("bytes_alloc")), (p as u64, 32768));
    let pa: Vec<_> = named(&evs, "mm_page_alloc")
        .into_iter()
        .filter(|e| e.u("page") == p as u64)
        .collect();
    assert_eq!(pa.len(), 1, "{evs:?}");
    assert_eq!(
        pa[0].field_names(),
        ["gfp_flags", "migratetype", "order", "page", "pfn"]
    );
    assert_eq!((pa[0].u("order"), pa[0].u("pfn")), (3, p as u64 >> 12));
    assert_eq!(pa[0].s("migratetype"), "large block");
    assert_eq!(pa[0].u("gfp_flags"), Gfp::KERNEL.0 as u64);
    let pf = named(&evs, "mm_page_free");
    assert_eq!(pf.len(), 1);
    assert_eq!(pf[0].field_names(), ["order", "page", "pfn"]);
    assert_eq!((pf[0].u("page"), pf[0].u("order")), (p as u64, 3));
    // The page events come between the kmalloc pair: alloc before kmalloc
    // returns, free after kfree was called.
    let pos = |n: &str| evs.iter().position(|e| e.name == n).unwrap();
    assert!(pos("mm_page_alloc") < pos("kmalloc"));
    assert!(pos("kfree") < pos("mm_page_free"));
}

#[test]
fn a_failed_kmalloc_is_traced_with_a_null_ptr() {
    let evs = collect(|| {
        assert!(kmalloc(1 << 62, Gfp::KERNEL | Gfp::NOWARN).is_err());
    });
    let a = named(&evs, "kmalloc");
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].u("ptr"), a[0].u("bytes_req"), a[0].u("bytes_alloc")),
        (0, 1 << 62, 0)
    );
}

#[test]
fn kmem_cache_events_name_the_cache() {
    let c = KmemCache::new("trace_cache", 100, 0).unwrap();
    let mut p = std::ptr::null_mut();
    let (mut la, mut lf) = (0, 0);
    let evs = collect(|| {
        p = c.alloc(Gfp::KERNEL).unwrap().as_ptr();
        la = line!() - 1;
        unsafe { c.free(std::ptr::NonNull::new(p).unwrap()).unwrap() };
        lf = line!() - 1;
    });
    let a = named(&evs, "kmem_cache_alloc");
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].field_names(),
        [
            "bytes_alloc",
            "bytes_req",
            "call_site",
            "gfp_flags",
            "name",
            "ptr"
        ]
    );
    assert_eq!(a[0].u("ptr"), p as u64);
    assert_eq!((a[0].u("bytes_req"), a[0].u("bytes_alloc")), (100, 104));
    assert_eq!(a[0].s("name"), "trace_cache");
    assert_eq!(a[0].u("gfp_flags"), Gfp::KERNEL.0 as u64);
    assert_site(a[0], la);
    let f = named(&evs, "kmem_cache_free");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].field_names(), ["call_site", "name", "ptr"]);
    assert_eq!((f[0].u("ptr"), f[0].s("name")), (p as u64, "trace_cache"));
    assert_site(f[0], lf);
    // The cache's first slab came from the page layer while we listened.
    let block = PAGE << c.geometry().order;
    let slab = named(&evs, "mm_page_alloc")
        .into_iter()
        .find(|e| e.s("migratetype") == "slab")
        .expect("a slab page event");
    assert_eq!(slab.u("page"), (p as usize & !(block - 1)) as u64);
    assert_eq!(slab.u("order"), c.geometry().order as u64);
    assert!(named(&evs, "kmalloc").is_empty());
}

const PAGE: usize = 4096;

#[test]
fn page_allocator_events() {
    let pages = PageAllocator::new(kmem_platform::TestPlatform::new());
    let mut addr = 0;
    let evs = collect(|| {
        let b = pages.alloc(2, Gfp::KERNEL | Gfp::ZERO).unwrap();
        addr = b.as_ptr() as usize;
        drop(b);
        // A refused free is traced too (the kernel traces before checking).
        let bad = unsafe { pages.free_raw(std::ptr::NonNull::new(addr as *mut u8).unwrap(), 2) };
        assert!(bad.is_err());
    });
    let a = named(&evs, "mm_page_alloc");
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].u("page"), a[0].u("pfn"), a[0].u("order")),
        (addr as u64, (addr / PAGE) as u64, 2)
    );
    assert_eq!(a[0].s("migratetype"), "pages");
    assert_eq!(a[0].u("gfp_flags"), (Gfp::KERNEL | Gfp::ZERO).0 as u64);
    let f = named(&evs, "mm_page_free");
    assert_eq!(f.len(), 2);
    assert!(
        f.iter()
            .all(|e| e.u("page") == addr as u64 && e.u("order") == 2)
    );
}

#[test]
fn no_events_without_a_subscriber_and_none_leak_to_other_threads() {
    // Events raised on another thread are not seen by this thread's subscriber.
    let evs = collect(|| {
        std::thread::spawn(|| {
            let p = kmalloc(64, Gfp::KERNEL).unwrap();
            unsafe { kfree(p.as_ptr()).unwrap() };
        })
        .join()
        .unwrap();
    });
    assert!(named(&evs, "kmalloc").is_empty());
    // And with no subscriber at all, the calls just work.
    let p = kmalloc(64, Gfp::KERNEL).unwrap();
    unsafe { kfree(p.as_ptr()).unwrap() };
}
