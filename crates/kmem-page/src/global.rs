//! The process-wide page allocator that kmalloc, the C ABI and the slab
//! layer's default caches share.

use kmem_platform::Os;

use crate::PageAllocator;

pub(crate) static GLOBAL: PageAllocator<Os> = PageAllocator::new_os();

/// The process's page allocator over OS memory (what `__get_free_pages` uses).
///
/// ```
/// use kmem_page::Gfp;
/// let p = kmem_page::global().alloc(0, Gfp::KERNEL).unwrap();
/// assert!(kmem_page::is_kmem(p.as_ptr() as usize));
/// ```
pub fn global() -> &'static PageAllocator<Os> {
    &GLOBAL
}
