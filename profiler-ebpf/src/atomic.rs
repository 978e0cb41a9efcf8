//! Atomic read-modify-write on map values. The bpfel target has no atomic RMW in `core`
//! (`atomic_cas` is off), so these emit the BPF atomic instructions directly
//! (`BPF_ATOMIC | BPF_ADD/OR/AND`, ISA v3; the object is built with `--cpu=v3`).

use core::arch::asm;

/// `*p += v`, atomically.
#[inline(always)]
pub(crate) fn add(p: *mut u64, v: u64) {
    // SAFETY: callers pass a pointer to a live, 8-byte aligned map value; the instruction
    // touches exactly those 8 bytes.
    unsafe { asm!("lock *(u64 *)({p} + 0) += {v}", p = in(reg) p, v = in(reg) v) };
}

/// `*p |= v`, atomically.
#[inline(always)]
pub(crate) fn or(p: *mut u64, v: u64) {
    // SAFETY: as in `add`.
    unsafe { asm!("lock *(u64 *)({p} + 0) |= {v}", p = in(reg) p, v = in(reg) v) };
}

/// `*p &= v`, atomically.
#[inline(always)]
pub(crate) fn and(p: *mut u64, v: u64) {
    // SAFETY: as in `add`.
    unsafe { asm!("lock *(u64 *)({p} + 0) &= {v}", p = in(reg) p, v = in(reg) v) };
}
