//! `/proc/buddyinfo`, kmem's way.

use core::fmt::{self, Write};

use kmem_platform::PageSource;

use crate::PageAllocator;

impl<S: PageSource> PageAllocator<S> {
    /// Writes the allocator's free blocks per order in the layout of
    /// `/proc/buddyinfo`: `Node 0, zone   Normal` then one `%6lu ` count per
    /// order, 0 to `MAX_PAGE_ORDER`.
    ///
    /// ```
    /// use kmem_page::{Gfp, PageAllocator};
    /// let pages = PageAllocator::new_os();
    /// let _b = pages.alloc(4, Gfp::KERNEL).unwrap();  // 16 pages split off a 4 MiB block
    /// let mut s = String::new();
    /// pages.write_buddyinfo(&mut s).unwrap();
    /// assert_eq!(s, "Node 0, zone   Normal      0      0      0      0      1      1      1      1      1      1      0 \n");
    /// ```
    pub fn write_buddyinfo(&self, w: &mut dyn Write) -> fmt::Result {
        let counts = self.with_zone(|z| {
            let mut c = [0usize; crate::NR_PAGE_ORDERS];
            for (o, a) in z.free_area.iter().enumerate() {
                c[o] = a.nr_free;
            }
            c
        });
        write!(w, "Node {}, zone {:>8} ", 0, "Normal")?;
        for c in counts {
            write!(w, "{c:6} ")?;
        }
        w.write_char('\n')
    }

    /// Writes the buddyinfo line to a file descriptor without allocating.
    /// Returns `Err(errno)` if the write fails.
    ///
    /// ```
    /// let pages = kmem_page::PageAllocator::new_os();
    /// pages.buddyinfo_to_fd(1).unwrap();
    /// ```
    pub fn buddyinfo_to_fd(&self, fd: i32) -> Result<(), i32> {
        let mut b = kmem_platform::diag::StackBuf::<256>::new();
        let _ = self.write_buddyinfo(&mut b);
        kmem_platform::diag::write_fd(fd, b.as_bytes())
    }
}
