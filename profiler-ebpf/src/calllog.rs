//! The per-CPU call log: where `sys_exit` writes each completed call.
//!
//! Each CPU is the only producer of its part of `LOG` (the syscall tracepoint programs run
//! with preemption disabled, and a program never runs twice at once on a CPU), so a record
//! is a bounds check, a plain 32-byte store and a head update: no helper call, no lock, no
//! atomic. User space reads the records in place through a shared mapping and publishes
//! its tail. Records that do not fit are counted in `DROPPED`, never lost silently.

use aya_ebpf::helpers::generated::bpf_get_smp_processor_id;
use profiler_common::{SyscallEvent, counter};

use crate::maps::{LOG, LOG_POS, LOG_SLOTS, bump, constant};

/// Appends `call` to this CPU's log, or counts it as dropped when the log is full.
#[inline(always)]
pub(crate) fn append(call: SyscallEvent) {
    // SAFETY: helper with no arguments (inlined by the verifier).
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(pos) = LOG_POS.get_ptr_mut(cpu) else {
        bump(counter::DROPPED);
        return;
    };
    let slots = u64::from(constant(&LOG_SLOTS));
    // SAFETY: `pos` is this CPU's live map value. `head` is written only here (this CPU);
    // `tail` is written by user space, hence the volatile read.
    let (head, tail) = unsafe {
        (
            core::ptr::read_volatile(&raw const (*pos).head),
            core::ptr::read_volatile(&raw const (*pos).tail),
        )
    };
    if head.wrapping_sub(tail) >= slots {
        bump(counter::DROPPED);
        return;
    }
    // VERIFIER: the array lookup bounds-checks the computed index at run time.
    let index = u64::from(cpu) * slots + (head & (slots - 1));
    let Some(slot) = LOG.get_ptr_mut(index as u32) else {
        bump(counter::DROPPED);
        return;
    };
    // SAFETY: `slot` is a live map value of this CPU's part of the log, which user space
    // does not read until `head` says so. Volatile stores keep the record before the head
    // update in program order; x86 keeps stores in order, so a reader that sees the new head
    // sees the record.
    unsafe {
        core::ptr::write_volatile(slot, call);
        core::ptr::write_volatile(&raw mut (*pos).head, head + 1);
    }
}
