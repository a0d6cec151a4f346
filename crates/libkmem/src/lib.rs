//! `libkmem.so`: the shared library C programs link with `-lkmem`.
//!
//! All the code lives in `kmem-capi`; this crate only links it into a `cdylib`
//! named `kmem`, whose exported symbols are exactly the `#[no_mangle]`
//! functions declared in `include/kmem.h`.
pub use kmem_capi;
