//! `gfp_t`: how an allocation may behave (wait, zero, never fail).
//!
//! The bit values are Linux's (as of 5.x–6.x `include/linux/gfp_types.h`), so
//! that C code built against `kmem.h` passes the same numbers it would in the
//! kernel.

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign};

/// Allocation flags (the kernel's `gfp_t`).
///
/// ```
/// use kmem_page::Gfp;
/// let g = Gfp::KERNEL | Gfp::ZERO;
/// assert!(g.may_wait() && g.zero());
/// assert!(!Gfp::ATOMIC.may_wait());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct Gfp(pub u32);

impl Gfp {
    /// `__GFP_HIGH`: the caller is high priority (may use reserves).
    pub const HIGH: Gfp = Gfp(0x20);
    /// `__GFP_IO`: may start I/O.
    pub const IO: Gfp = Gfp(0x40);
    /// `__GFP_FS`: may call into the file system.
    pub const FS: Gfp = Gfp(0x80);
    /// `__GFP_ZERO`: return zeroed memory.
    pub const ZERO: Gfp = Gfp(0x100);
    /// `__GFP_DIRECT_RECLAIM`: the caller may sleep and reclaim.
    pub const DIRECT_RECLAIM: Gfp = Gfp(0x400);
    /// `__GFP_KSWAPD_RECLAIM`: may wake background reclaim.
    pub const KSWAPD_RECLAIM: Gfp = Gfp(0x800);
    /// `__GFP_NOWARN`: do not report a failure.
    pub const NOWARN: Gfp = Gfp(0x2000);
    /// `__GFP_RETRY_MAYFAIL`: try hard, but may fail.
    pub const RETRY_MAYFAIL: Gfp = Gfp(0x4000);
    /// `__GFP_NOFAIL`: retry for ever; never return failure.
    pub const NOFAIL: Gfp = Gfp(0x8000);
    /// `__GFP_NORETRY`: fail fast.
    pub const NORETRY: Gfp = Gfp(0x10000);
    /// `GFP_KERNEL`: the usual flags; may wait.
    pub const KERNEL: Gfp = Gfp(0x400 | 0x800 | 0x40 | 0x80);
    /// `GFP_ATOMIC`: never waits, may dip into reserves.
    pub const ATOMIC: Gfp = Gfp(0x20 | 0x800);
    /// `GFP_NOWAIT`: never waits.
    pub const NOWAIT: Gfp = Gfp(0x800);

    /// Whether the caller may sleep (`__GFP_DIRECT_RECLAIM`).
    pub const fn may_wait(self) -> bool {
        self.0 & Self::DIRECT_RECLAIM.0 != 0
    }
    /// Whether the memory must be zeroed (`__GFP_ZERO`).
    pub const fn zero(self) -> bool {
        self.0 & Self::ZERO.0 != 0
    }
    /// Whether the allocation must not fail (`__GFP_NOFAIL`).
    pub const fn nofail(self) -> bool {
        self.0 & Self::NOFAIL.0 != 0
    }
    /// Whether failures should go unreported (`__GFP_NOWARN`).
    pub const fn nowarn(self) -> bool {
        self.0 & Self::NOWARN.0 != 0
    }
    /// Whether all bits of `other` are set.
    pub const fn contains(self, other: Gfp) -> bool {
        self.0 & other.0 == other.0
    }
    /// These flags without those of `other`.
    pub const fn without(self, other: Gfp) -> Gfp {
        Gfp(self.0 & !other.0)
    }
}

impl BitOr for Gfp {
    type Output = Gfp;
    fn bitor(self, rhs: Gfp) -> Gfp {
        Gfp(self.0 | rhs.0)
    }
}
impl BitOrAssign for Gfp {
    fn bitor_assign(&mut self, rhs: Gfp) {
        self.0 |= rhs.0;
    }
}
impl BitAnd for Gfp {
    type Output = Gfp;
    fn bitand(self, rhs: Gfp) -> Gfp {
        Gfp(self.0 & rhs.0)
    }
}

impl fmt::Debug for Gfp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Gfp {
    /// Prints the flags as the kernel's tracepoints do, e.g. `GFP_KERNEL|__GFP_ZERO`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        let mut first = true;
        let mut put = |f: &mut fmt::Formatter<'_>, s: &str| -> fmt::Result {
            if !first {
                f.write_str("|")?;
            }
            first = false;
            f.write_str(s)
        };
        for (bits, name) in [
            (Gfp::KERNEL.0, "GFP_KERNEL"),
            (Gfp::ATOMIC.0, "GFP_ATOMIC"),
            (Gfp::NOWAIT.0, "GFP_NOWAIT"),
            (Gfp::HIGH.0, "__GFP_HIGH"),
            (Gfp::IO.0, "__GFP_IO"),
            (Gfp::FS.0, "__GFP_FS"),
            (Gfp::ZERO.0, "__GFP_ZERO"),
            (Gfp::DIRECT_RECLAIM.0, "__GFP_DIRECT_RECLAIM"),
            (Gfp::NOWARN.0, "__GFP_NOWARN"),
            (Gfp::RETRY_MAYFAIL.0, "__GFP_RETRY_MAYFAIL"),
            (Gfp::NOFAIL.0, "__GFP_NOFAIL"),
            (Gfp::NORETRY.0, "__GFP_NORETRY"),
        ] {
            if rest & bits == bits && bits != 0 {
                put(f, name)?;
                rest &= !bits;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        } else if first {
            f.write_str("0")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;

    #[test]
    fn names_like_the_kernel() {
        assert_eq!(
            format!("{}", Gfp::KERNEL | Gfp::ZERO),
            "GFP_KERNEL|__GFP_ZERO"
        );
        assert_eq!(format!("{}", Gfp::ATOMIC), "GFP_ATOMIC");
        assert_eq!(format!("{}", Gfp(0)), "0");
        assert_eq!(format!("{}", Gfp(0x0010_0000)), "0x100000");
    }

    #[test]
    fn kernel_values() {
        assert_eq!(Gfp::KERNEL.0, 0xcc0);
        assert_eq!(Gfp::ATOMIC.0, 0x820);
        assert_eq!(Gfp::NOWAIT.0, 0x800);
        assert!(!Gfp::NOWAIT.may_wait());
    }
}
