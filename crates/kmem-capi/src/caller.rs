//! The C caller's return address, for the debug checks' call sites.
//!
//! Rust has no `__builtin_return_address`, and an ordinary `extern "C"`
//! function cannot read its own return address reliably (without frame
//! pointers the prologue may have moved the stack pointer before any code
//! of ours runs). So each C entry point that allocates or frees is a
//! **naked trampoline** (the [`c_entry!`](crate::c_entry) macro): its first
//! instruction copies the return address — `[rsp]` on x86-64, `x30` (the
//! link register) on AArch64 — into the register of one extra argument and
//! tail-jumps to the real function (`*_from(..., ret)`), which runs its body
//! inside [`kmem_slab::debug::with_caller`]. On other architectures the entry
//! point is an ordinary function passing 0 (sites are then the Rust
//! locations inside kmem).
//!
//! Cost when no cache tracks users: the copy, the jump, and one relaxed
//! load in `with_caller` — a few cycles on a path of ~20 ns.

/// Defines the exported C function `$name` as a trampoline that calls
/// `$imp(args..., return_address)`. `$n` is the number of C arguments (the
/// return address goes in argument register `$n`; at most 5 arguments).
///
/// ```ignore
/// kmem_capi::c_entry! {
///     /// `void *kmalloc(size_t, gfp_t)`.
///     pub unsafe extern "C" fn kmalloc(size: usize, gfp: c_uint) -> *mut c_void = kmalloc_from, 2;
/// }
/// ```
#[macro_export]
macro_rules! c_entry {
    (
        $(#[$m:meta])*
        pub unsafe extern "C" fn $name:ident($($a:ident: $t:ty),*) $(-> $r:ty)? = $imp:path, $n:tt;
    ) => {
        $(#[$m])*
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($a: $t),*) $(-> $r)? {
            $crate::__c_entry_tail!($n, $imp)
        }
        $(#[$m])*
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($a: $t),*) $(-> $r)? {
            // SAFETY: the same contract, no return address known.
            unsafe { $imp($($a,)* 0) }
        }
    };
}

/// [`c_entry!`](crate::c_entry) together with the function it jumps to:
/// defines the exported C function `$name` as a trampoline to `$from`, and
/// `$from(args..., ret)`, which evaluates `$body` (an expression over the
/// arguments) inside [`kmem_slab::debug::with_caller`]`(ret, ..)`, so that
/// the debug checks record the C caller's return address as the call site.
/// What stays written out at each entry point is its doc comment, its
/// signature and its body.
///
/// `$body` is evaluated inside an `unsafe` block: the entry point is an
/// `unsafe extern "C" fn` whose `# Safety` section (in its doc comment) is
/// the contract the body relies on.
///
/// ```ignore
/// c_entry_with_caller! {
///     /// `void *kzalloc(size_t, gfp_t)`.
///     pub unsafe extern "C" fn kzalloc(size: usize, gfp: c_uint) -> *mut c_void
///         = kzalloc_from, 2 => out(km::kzalloc(size, Gfp(gfp)));
/// }
/// ```
macro_rules! c_entry_with_caller {
    (
        $(#[$m:meta])*
        pub unsafe extern "C" fn $name:ident($($a:ident: $t:ty),*) $(-> $r:ty)?
            = $from:ident, $n:tt => $body:expr;
    ) => {
        c_entry! {
            $(#[$m])*
            pub unsafe extern "C" fn $name($($a: $t),*) $(-> $r)? = $from, $n;
        }

        #[doc = concat!("`", stringify!($name), "` called from the C return address `ret` (the debug checks' call site).")]
        ///
        /// # Safety
        ///
        #[doc = concat!("As for [`", stringify!($name), "`].")]
        #[allow(unused_unsafe)]
        unsafe extern "C" fn $from($($a: $t,)* ret: usize) $(-> $r)? {
            // SAFETY: the entry point's contract, passed on by its caller.
            kmem_slab::debug::with_caller(ret, || unsafe { $body })
        }
    };
}

#[cfg(target_arch = "x86_64")]
#[doc(hidden)]
#[macro_export]
macro_rules! __c_entry_tail {
    (0, $imp:path) => { core::arch::naked_asm!("mov rdi, qword ptr [rsp]", "jmp {imp}", imp = sym $imp) };
    (1, $imp:path) => { core::arch::naked_asm!("mov rsi, qword ptr [rsp]", "jmp {imp}", imp = sym $imp) };
    (2, $imp:path) => { core::arch::naked_asm!("mov rdx, qword ptr [rsp]", "jmp {imp}", imp = sym $imp) };
    (3, $imp:path) => { core::arch::naked_asm!("mov rcx, qword ptr [rsp]", "jmp {imp}", imp = sym $imp) };
    (4, $imp:path) => { core::arch::naked_asm!("mov r8, qword ptr [rsp]", "jmp {imp}", imp = sym $imp) };
    (5, $imp:path) => { core::arch::naked_asm!("mov r9, qword ptr [rsp]", "jmp {imp}", imp = sym $imp) };
}

#[cfg(target_arch = "aarch64")]
#[doc(hidden)]
#[macro_export]
macro_rules! __c_entry_tail {
    (0, $imp:path) => { core::arch::naked_asm!("mov x0, x30", "b {imp}", imp = sym $imp) };
    (1, $imp:path) => { core::arch::naked_asm!("mov x1, x30", "b {imp}", imp = sym $imp) };
    (2, $imp:path) => { core::arch::naked_asm!("mov x2, x30", "b {imp}", imp = sym $imp) };
    (3, $imp:path) => { core::arch::naked_asm!("mov x3, x30", "b {imp}", imp = sym $imp) };
    (4, $imp:path) => { core::arch::naked_asm!("mov x4, x30", "b {imp}", imp = sym $imp) };
    (5, $imp:path) => { core::arch::naked_asm!("mov x5, x30", "b {imp}", imp = sym $imp) };
}
