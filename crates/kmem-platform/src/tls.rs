//! One per-thread pointer and one per-thread word for kmem's fast paths,
//! each read in one instruction.
//!
//! Rust's `thread_local!` in a shared library (`libkmem_preload.so`,
//! `libkmem.so`) uses the general-dynamic TLS model: every access is a call to
//! `__tls_get_addr`. On x86-64 Linux this module defines its slot in assembly
//! in `.tbss` and reads it with the initial-exec sequence (`mov
//! slot@GOTTPOFF(%rip), %reg; mov %fs:(%reg), %reg`), which the linker relaxes
//! to local-exec in executables. A library using it claims 16 bytes of static
//! TLS: fine when it is loaded at start-up (`LD_PRELOAD`, a `DT_NEEDED`
//! dependency), and for a later `dlopen` glibc keeps a surplus for exactly
//! such libraries.
//!
//! Elsewhere (other targets, Miri) [`AVAILABLE`] is `false` and callers use
//! their own `thread_local!`.
//!
//! ```
//! let x86_linux = cfg!(all(target_arch = "x86_64", target_os = "linux", not(miri)));
//! assert_eq!(kmem_platform::tls::AVAILABLE, x86_linux);
//! ```

/// Whether [`get`] and [`set`] exist on this target.
pub const AVAILABLE: bool = cfg!(all(target_arch = "x86_64", target_os = "linux", not(miri)));

#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 3",
    ".globl kmem_platform_tls_slot",
    ".hidden kmem_platform_tls_slot",
    ".type kmem_platform_tls_slot,@object",
    ".size kmem_platform_tls_slot,8",
    "kmem_platform_tls_slot:",
    ".zero 8",
    ".globl kmem_platform_tls_word",
    ".hidden kmem_platform_tls_word",
    ".type kmem_platform_tls_word,@object",
    ".size kmem_platform_tls_word,8",
    "kmem_platform_tls_word:",
    ".zero 8",
    ".popsection",
);

/// Reads the 8-byte `.tbss` symbol `$sym` of the calling thread (the
/// initial-exec sequence).
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
macro_rules! tls_read {
    ($sym:literal) => {{
        let v: usize;
        // SAFETY: reads this thread's own 8-byte TLS variable through its
        // thread-pointer offset; no memory is written.
        unsafe {
            core::arch::asm!(
                concat!("mov {v}, qword ptr [rip + ", $sym, "@GOTTPOFF]"),
                "mov {v}, qword ptr fs:[{v}]",
                v = out(reg) v,
                options(nostack, readonly, preserves_flags, pure),
            );
        }
        v
    }};
}

/// Writes `$v` to the 8-byte `.tbss` symbol `$sym` of the calling thread.
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
macro_rules! tls_write {
    ($sym:literal, $v:expr) => {{
        let v: usize = $v;
        // SAFETY: writes this thread's own 8-byte TLS variable, which nothing
        // else in the program names.
        unsafe {
            core::arch::asm!(
                concat!("mov {t}, qword ptr [rip + ", $sym, "@GOTTPOFF]"),
                "mov qword ptr fs:[{t}], {v}",
                t = out(reg) _,
                v = in(reg) v,
                options(nostack, preserves_flags),
            );
        }
    }};
}

/// The calling thread's slot: null until [`set`] on this thread.
///
/// ```
/// # if kmem_platform::tls::AVAILABLE {
/// std::thread::spawn(|| assert!(kmem_platform::tls::get().is_null())).join().unwrap();
/// # }
/// ```
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
#[inline(always)]
pub fn get() -> *mut u8 {
    core::ptr::with_exposed_provenance_mut(tls_read!("kmem_platform_tls_slot"))
}

/// Sets the calling thread's slot.
///
/// ```
/// # if kmem_platform::tls::AVAILABLE {
/// std::thread::spawn(|| {
///     static X: u8 = 0;
///     let p = &X as *const u8 as *mut u8;
///     kmem_platform::tls::set(p);
///     assert_eq!(kmem_platform::tls::get(), p);
/// }).join().unwrap();
/// # }
/// ```
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
#[inline(always)]
pub fn set(p: *mut u8) {
    tls_write!("kmem_platform_tls_slot", p.expose_provenance());
}

/// The calling thread's word: 0 until [`set_word`] on this thread.
///
/// ```
/// # if kmem_platform::tls::AVAILABLE {
/// std::thread::spawn(|| assert_eq!(kmem_platform::tls::get_word(), 0)).join().unwrap();
/// # }
/// ```
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
#[inline(always)]
pub fn get_word() -> usize {
    tls_read!("kmem_platform_tls_word")
}

/// Sets the calling thread's word.
///
/// ```
/// # if kmem_platform::tls::AVAILABLE {
/// std::thread::spawn(|| {
///     kmem_platform::tls::set_word(4096);
///     assert_eq!(kmem_platform::tls::get_word(), 4096);
/// }).join().unwrap();
/// # }
/// ```
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
#[inline(always)]
pub fn set_word(v: usize) {
    tls_write!("kmem_platform_tls_word", v);
}

#[cfg(all(test, target_arch = "x86_64", target_os = "linux", not(miri)))]
mod tests {
    #[test]
    fn per_thread_values() {
        let a = 0x1000 as *mut u8;
        super::set(a);
        let other = std::thread::spawn(|| {
            assert!(super::get().is_null(), "a new thread starts with null");
            super::set(0x2000 as *mut u8);
            super::get() as usize
        })
        .join()
        .unwrap();
        assert_eq!(other, 0x2000);
        assert_eq!(super::get(), a, "another thread's set does not leak here");
        super::set(core::ptr::null_mut());
    }

    #[test]
    fn the_word_is_per_thread_and_apart_from_the_pointer() {
        super::set_word(7);
        super::set(0x3000 as *mut u8);
        assert_eq!(super::get_word(), 7, "setting the pointer leaves the word");
        let other = std::thread::spawn(|| {
            assert_eq!(super::get_word(), 0, "a new thread starts with 0");
            super::set_word(9);
            super::get_word()
        })
        .join()
        .unwrap();
        assert_eq!(other, 9);
        assert_eq!(super::get_word(), 7);
        super::set_word(0);
        assert!(
            super::get() as usize == 0x3000,
            "setting the word leaves the pointer"
        );
        super::set(core::ptr::null_mut());
    }
}
