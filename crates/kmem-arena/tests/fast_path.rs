//! The typed hot paths' edge cases: a block filled to its last byte, values
//! aligned above 16 after a misaligned cursor, zero-sized values, and an
//! earlier block's leftover served in place while the window stays.

use core::alloc::Layout;

use kmem_arena::{Arena, BlockInfo, PageBackend};
use kmem_page::{Config, PageAllocator};
use kmem_platform::TestPlatform;

#[macro_use]
mod common;

/// Block header bytes (`NODE_SIZE`): data starts this far into a block.
const HEADER: usize = 48;

fn blocks<P: PageBackend>(a: &Arena<'_, P>) -> Vec<BlockInfo> {
    let mut v = Vec::new();
    a.for_each_block(|b| v.push(b));
    v
}

/// The address of a value the arena handed out.
fn addr<T: ?Sized>(r: &T) -> usize {
    r as *const T as *const u8 as usize
}

#[test]
fn a_stream_of_values_fills_a_block_to_its_last_byte() {
    let pages = &pages!();
    let arena = Arena::with_block_size_in(4095, pages).unwrap();
    assert_eq!(arena.block_size(), 8192);
    let per_block = (8192 - HEADER) / 8;
    let first = addr(arena.alloc(0u64));
    let block = first - HEADER;
    assert_eq!(block % 4096, 0);
    let mut last = first;
    for i in 1..per_block {
        last = addr(arena.alloc(i as u64));
        assert_eq!(last, first + 8 * i, "values are packed");
    }
    assert_eq!(
        last + 8,
        block + 8192,
        "the last value ends on the block's last byte"
    );
    assert_eq!(blocks(&arena)[0].free, 0);
    assert_eq!(blocks(&arena).len(), 1, "exactly full: no block yet");
    let next = addr(arena.alloc(0u64));
    assert_eq!(blocks(&arena).len(), 2);
    assert_eq!(next % 4096, HEADER, "the next value starts a new block");
    let s = arena.stats();
    assert_eq!(
        (s.allocation_count, s.total_allocated),
        (per_block + 1, 8 * (per_block + 1))
    );
}

#[test]
fn one_byte_short_of_the_end() {
    let pages = &pages!();
    let arena = Arena::with_block_size_in(4095, pages).unwrap();
    let room = 8192 - HEADER;
    // Three slices leave exactly 1 byte.
    arena.alloc_slice_copy(&[1u8; 4000]);
    arena.alloc_slice_copy(&[1u8; 4000]);
    arena.alloc_slice_copy(&[2u8; 8192 - HEADER - 8001]);
    assert_eq!(blocks(&arena)[0].free, 1);
    // A u16 does not fit the last byte; it goes to a new block, and the byte
    // stays for the next request that fits it (first fit).
    let w = addr(arena.alloc(3u16));
    assert_eq!(w % 4096, HEADER);
    assert_eq!(blocks(&arena).len(), 2);
    let b = addr(arena.alloc(4u8));
    assert_eq!(b % 8192, 8191, "the byte left in the first block");
    assert_eq!(blocks(&arena)[0].free, 0);
    let c = addr(arena.alloc(5u8));
    assert_eq!(c, w + 2, "then back to the window");
    let s = arena.stats();
    assert_eq!((s.allocation_count, s.total_allocated), (6, room + 3));
}

#[derive(Clone, Copy)]
#[repr(align(64))]
struct A64([u8; 64]);

#[derive(Clone, Copy)]
#[repr(align(32))]
struct A32(u8);

#[test]
fn alignment_above_16_after_a_misaligned_cursor() {
    let pages = &pages!();
    let arena = Arena::new_in(pages);
    let b = addr(arena.alloc(1u8));
    let x = arena.alloc(A64([2; 64]));
    assert_eq!(x.0, [2; 64]);
    let x = addr(x);
    assert_eq!(x % 64, 0);
    assert!(x > b && x - b < 64 + 1);
    let y = arena.alloc(A32(3));
    assert_eq!(y.0, 3);
    let y = addr(y);
    assert_eq!(y, x + 64, "64 is a multiple of 32: no padding");
    let c = addr(arena.alloc(4u8));
    assert_eq!(c, y + 32, "a byte packs right after");
    let p = arena.alloc_layout(Layout::from_size_align(100, 4096).unwrap());
    assert_eq!(p.as_ptr() as usize % 4096, 0);
    let q = arena.alloc_layout(Layout::from_size_align(1, 256).unwrap());
    assert_eq!(q.as_ptr() as usize % 256, 0);
    let s = arena.stats();
    assert_eq!(s.allocation_count, 6);
    assert_eq!(
        s.total_allocated,
        1 + 64 + 32 + 1 + 100 + 1,
        "padding is not counted"
    );
    // A value aligned to a page is larger than a small value may be here:
    // 4096 bytes > 4095 is a large allocation with pages of its own.
    #[derive(Clone, Copy)]
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    let pg = arena.alloc(Page([5; 4096]));
    assert_eq!(pg.0[4095], 5);
    assert_eq!(addr(pg) % 4096, 0);
    assert_eq!(arena.large_entries(), (1, 0));
}

#[test]
fn zero_sized_values_take_nothing() {
    let pages = &pages!();
    let arena = Arena::new_in(pages);
    let unit = addr(arena.alloc(()));
    assert_eq!(unit, 1);
    let empty: &mut [u64] = arena.alloc_slice_copy(&[]);
    assert_eq!(empty.as_ptr() as usize, 8);
    assert_eq!(arena.alloc_str(""), "");
    #[derive(Clone, Copy)]
    #[repr(align(128))]
    struct Z;
    assert_eq!(addr(arena.alloc(Z)), 128);
    for shift in 0..13 {
        let p = arena.alloc_layout(Layout::from_size_align(0, 1 << shift).unwrap());
        assert_eq!(p.as_ptr() as usize, 1 << shift);
    }
    assert_eq!(pages.stats().allocated_pages, 0, "no block was taken");
    assert_eq!(arena.stats(), Default::default(), "nothing counted");
    // Between real allocations, zero sizes leave the cursor alone.
    let a = addr(arena.alloc(1u32));
    arena.alloc(());
    arena.alloc_slice_copy::<u8>(&[]);
    let b = addr(arena.alloc(2u32));
    assert_eq!(b, a + 4);
    assert_eq!(arena.stats().allocation_count, 2);
}

#[test]
fn an_earlier_block_leftover_is_served_in_place() {
    let pages = &pages!();
    let arena = Arena::with_block_size_in(4095, pages).unwrap();
    let room = 8192 - HEADER;
    let b0 = addr(arena.alloc([1u8; 4000])) - HEADER;
    arena.alloc([2u8; 4000]);
    assert_eq!(blocks(&arena)[0].free, room - 8000); // 144
    // 200 bytes do not fit: a new block (the window moves there).
    let w = addr(arena.alloc([3u8; 200]));
    assert_eq!(blocks(&arena).len(), 2);
    // A u64 fits the first block's leftover: first fit puts it there.
    let v = addr(arena.alloc(4u64));
    assert_eq!(v, b0 + HEADER + 8000);
    // 150 bytes do not fit the leftover (136): the window, right after the 200.
    let x = addr(arena.alloc([5u8; 150]));
    assert_eq!(x, w + 200);
    // 100 do: the first block again.
    let y = addr(arena.alloc_slice_copy(&[6u8; 100]));
    assert_eq!(y, v + 8);
    // And the window goes on where it was.
    let z = addr(arena.alloc([7u8; 50]));
    assert_eq!(z, x + 150);
    assert_eq!(blocks(&arena)[0].free, 144 - 8 - 100);
    let s = arena.stats();
    assert_eq!(s.allocation_count, 7);
    assert_eq!(s.total_allocated, 8000 + 200 + 8 + 150 + 100 + 50);
}

#[test]
fn reset_rewinds_every_block_and_keeps_them() {
    let pages = &pages!();
    let mut arena = Arena::with_block_size_in(4095, pages).unwrap();
    let first = addr(arena.alloc(0u64));
    for i in 0..3000u64 {
        arena.alloc(i);
    }
    let n = blocks(&arena).len();
    assert!(n >= 3);
    let held = pages.stats().allocated_pages;
    for _ in 0..3 {
        arena.reset();
        assert!(
            blocks(&arena)
                .iter()
                .all(|b| b.free == 8192 - HEADER && b.failed == 0)
        );
        assert_eq!(addr(arena.alloc(0u64)), first, "the same memory again");
        for i in 0..3000u64 {
            arena.alloc(i);
        }
        assert_eq!(blocks(&arena).len(), n, "no new block after a reset");
        assert_eq!(pages.stats().allocated_pages, held);
    }
    let s = arena.stats();
    assert_eq!(s.allocation_count - s.free_count, 3001);
    assert_eq!(s.current_allocated, 3001 * 8);
}
