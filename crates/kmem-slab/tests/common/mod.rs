//! Helpers shared by the integration tests (each test file is its own crate
//! and includes this module with `mod common;`).

/// A fresh page allocator over test memory, in a static of the calling test
/// (so Miri sees it reachable; every test gives all its memory back).
macro_rules! test_pages {
    () => {{
        static PAGES: kmem_page::PageAllocator<kmem_platform::TestPlatform> =
            kmem_page::PageAllocator::with_config(
                kmem_platform::TestPlatform::new(),
                kmem_page::Config {
                    keep_free_pages: 0,
                    max_pages: usize::MAX,
                },
            );
        &PAGES
    }};
}
