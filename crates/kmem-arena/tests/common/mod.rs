//! What the region pool's test binaries share.

/// A page allocator of this test's own (heap-backed, so Miri can run it),
/// giving wholly free regions straight back.
macro_rules! pages {
    () => {
        PageAllocator::with_config(
            TestPlatform::new(),
            Config {
                keep_free_pages: 0,
                max_pages: usize::MAX,
            },
        )
    };
    ($max:expr) => {
        PageAllocator::with_config(
            TestPlatform::new(),
            Config {
                keep_free_pages: 0,
                max_pages: $max,
            },
        )
    };
}
