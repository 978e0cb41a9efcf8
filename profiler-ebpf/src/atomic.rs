//! Atomic read-modify-write on map values. The bpfel target has no atomic RMW in `core`
//! (`atomic_cas` is off), so these emit the BPF atomic instructions directly. `add` is the
//! original `BPF_XADD` encoding (every kernel syslat supports); `BPF_ATOMIC | BPF_OR/AND`
//! came with Linux 5.12, so the legacy object (feature `legacy`) sets and clears bits with
//! a test and an add instead.

use core::arch::asm;

/// `*p += v`, atomically.
#[inline(always)]
pub(crate) fn add(p: *mut u64, v: u64) {
    // SAFETY: callers pass a pointer to a live, 8-byte aligned map value; the instruction
    // touches exactly those 8 bytes.
    unsafe { asm!("lock *(u64 *)({p} + 0) += {v}", p = in(reg) p, v = in(reg) v) };
}

/// Sets bit `bit` (0..64) of `*p`, atomically with respect to the other bits of the word.
#[inline(always)]
pub(crate) fn set_bit(p: *mut u64, bit: u32) {
    let mask = 1u64 << (bit & 63);
    #[cfg(not(feature = "legacy"))]
    // SAFETY: as in `add`.
    unsafe {
        asm!("lock *(u64 *)({p} + 0) |= {v}", p = in(reg) p, v = in(reg) mask)
    };
    #[cfg(feature = "legacy")]
    // VERIFIER: "BPF_STX uses reserved fields" on 5.10 for BPF_OR/BPF_AND. Adding the bit
    // only while it is clear sets it without touching its neighbours (no carry). A given
    // bit (one tgid) is changed only by events of that tgid, which do not race one another:
    // the fork that creates it (before the child runs), its own exec, and the exit of its
    // last thread; user space adds targets before they can fork. So the test and the add
    // never interleave with another change of the same bit.
    // SAFETY: as in `add`; the plain load reads the same live, aligned value.
    unsafe {
        if core::ptr::read_volatile(p) & mask == 0 {
            add(p, mask);
        }
    }
}

/// Clears bit `bit` (0..64) of `*p`, atomically with respect to the other bits.
#[inline(always)]
pub(crate) fn clear_bit(p: *mut u64, bit: u32) {
    let mask = 1u64 << (bit & 63);
    #[cfg(not(feature = "legacy"))]
    // SAFETY: as in `add`.
    unsafe {
        asm!("lock *(u64 *)({p} + 0) &= {v}", p = in(reg) p, v = in(reg) !mask)
    };
    #[cfg(feature = "legacy")]
    // VERIFIER: as in `set_bit`: subtracting the bit only while it is set clears it
    // without a borrow into its neighbours.
    // SAFETY: as in `set_bit`.
    unsafe {
        if core::ptr::read_volatile(p) & mask != 0 {
            add(p, mask.wrapping_neg());
        }
    }
}
