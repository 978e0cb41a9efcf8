//! The per-CPU call log: where `sys_exit` writes each completed call.
//!
//! Each CPU is the only producer of its part of `LOG` (only `sys_exit` writes it, migration
//! is disabled while it runs and it never nests on a CPU; see `cpu.rs`), so a record
//! is a bounds check, a plain 32-byte store and a head update: no helper call, no lock, no
//! atomic. A call that was switched out takes two slots: the call and its `Anatomy`; a call
//! whose stacks were taken (`--stacks`) one more, its `StackIds`. User space reads the
//! records in place through a shared mapping and publishes its tail. Records that do not
//! fit are counted in `DROPPED`, never lost silently. The append that brings a log to
//! `LOG_WAKE` records waiting wakes user space (which otherwise sleeps), so a burst is
//! drained long before the log is full.

use aya_ebpf::{bindings::BPF_RB_FORCE_WAKEUP, helpers::generated::bpf_get_smp_processor_id};
use profiler_common::{Anatomy, LogPos, StackIds, SyscallEvent, counter, kind};

use crate::maps::{EVENTS, LOG, LOG_POS, LOG_SLOTS, LOG_WAKE, bump, constant};

/// Appends `call` to this CPU's log, or counts it as dropped when the log is full.
#[inline(always)]
pub(crate) fn append(call: SyscallEvent) {
    let Some((cpu, pos, head, slots)) = reserve(1) else {
        bump(counter::DROPPED);
        return;
    };
    // VERIFIER: the array lookup bounds-checks the computed index at run time.
    let Some(slot) = LOG.get_ptr_mut(index(cpu, head, slots)) else {
        bump(counter::DROPPED);
        return;
    };
    // SAFETY: `slot` is a live map value of this CPU's part of the log, which user space
    // does not read until `head` says so; see `publish` for the order of the stores.
    unsafe { core::ptr::write_volatile(slot, call) };
    publish(pos, head + 1);
}

/// Appends a call that was switched out (`call.kind` is `CALL_SWITCHED`) and, in the next
/// slot, its anatomy: two slots, published together.
#[inline(always)]
pub(crate) fn append_switched(call: SyscallEvent, anatomy: Anatomy) {
    let Some((cpu, pos, head, slots)) = reserve(2) else {
        bump(counter::DROPPED);
        return;
    };
    let first = LOG.get_ptr_mut(index(cpu, head, slots));
    let second = LOG.get_ptr_mut(index(cpu, head + 1, slots));
    let (Some(first), Some(second)) = (first, second) else {
        bump(counter::DROPPED);
        return;
    };
    // SAFETY: as in `append`; an `Anatomy` is 32 bytes like the slot's `SyscallEvent`
    // (asserted in profiler-common), and both are plain integers.
    unsafe {
        core::ptr::write_volatile(first, call);
        core::ptr::write_volatile(second.cast::<Anatomy>(), anatomy);
    }
    publish(pos, head + 2);
}

/// Appends a call whose stacks were taken (`call.flags` has `flag::STACK`): the call, its
/// anatomy when it was switched out, and its stack ids: two or three slots, published
/// together.
#[inline(always)]
pub(crate) fn append_with_stack(call: SyscallEvent, anatomy: Option<Anatomy>, stack: StackIds) {
    let n = if anatomy.is_some() { 3 } else { 2 };
    let Some((cpu, pos, head, slots)) = reserve(n) else {
        bump(counter::DROPPED);
        return;
    };
    let first = LOG.get_ptr_mut(index(cpu, head, slots));
    let last = LOG.get_ptr_mut(index(cpu, head + n - 1, slots));
    let (Some(first), Some(last)) = (first, last) else {
        bump(counter::DROPPED);
        return;
    };
    if let Some(anatomy) = anatomy {
        let Some(second) = LOG.get_ptr_mut(index(cpu, head + 1, slots)) else {
            bump(counter::DROPPED);
            return;
        };
        // SAFETY: as in `append_switched`.
        unsafe { core::ptr::write_volatile(second.cast::<Anatomy>(), anatomy) };
    }
    // SAFETY: as in `append`; a `StackIds` is 32 bytes of integers like the slot's
    // `SyscallEvent` (asserted in profiler-common).
    unsafe {
        core::ptr::write_volatile(first, call);
        core::ptr::write_volatile(last.cast::<StackIds>(), stack);
    }
    publish(pos, head + n);
}

/// This CPU, its positions, its head and the slots per CPU, when `n` records fit.
#[inline(always)]
fn reserve(n: u64) -> Option<(u32, *mut LogPos, u64, u64)> {
    // SAFETY: helper with no arguments (inlined by the verifier).
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let pos = LOG_POS.get_ptr_mut(cpu)?;
    let slots = u64::from(constant(&LOG_SLOTS));
    // SAFETY: `pos` is this CPU's live map value. `head` is written only here (this CPU);
    // `tail` is written by user space, hence the volatile read.
    let (head, tail) = unsafe {
        (
            core::ptr::read_volatile(&raw const (*pos).head),
            core::ptr::read_volatile(&raw const (*pos).tail),
        )
    };
    let waiting = head.wrapping_sub(tail);
    if waiting + n > slots {
        return None;
    }
    // The one compare the fast path pays for user space's long sleeps: these `n` records
    // bring the fill to `LOG_WAKE` (or, with several, past it). Waking before they are
    // published is harmless: a reader that comes first drains what is published, and these
    // at its next drain.
    if u64::from(constant(&LOG_WAKE)).wrapping_sub(waiting + 1) < n {
        wake_user();
    }
    Some((cpu, pos, head, slots))
}

/// Wakes user space, which sleeps on the `EVENTS` ring's fd: an 8-byte marker
/// ([`kind::WAKE`], which the reader skips) submitted with a forced wake-up. Once per drain
/// cycle and CPU; if the ring is full the marker is lost and user space drains at its next
/// timeout instead.
#[inline(always)]
fn wake_user() {
    wake_user_for(0);
}

/// [`wake_user`] with `tgid` in the marker's high 32 bits: a process that has just exec'd,
/// whose mappings `--stacks` wants read while it lives.
#[inline(always)]
pub(crate) fn wake_user_for(tgid: u32) {
    let marker = u64::from(kind::WAKE) | u64::from(tgid) << 32;
    let _ = EVENTS.output_untyped::<u64>(marker, u64::from(BPF_RB_FORCE_WAKEUP));
}

/// The `LOG` index of sequence number `seq` in CPU `cpu`'s part.
#[inline(always)]
fn index(cpu: u32, seq: u64, slots: u64) -> u32 {
    (u64::from(cpu) * slots + (seq & (slots - 1))) as u32
}

/// Publishes the records before `head`. Volatile stores keep the records before the head
/// update in program order, and x86-64 keeps stores in order (TSO), so a reader that sees
/// the new head sees the records. On a weakly ordered CPU (aarch64) this needs a release
/// store (`BPF_STORE_REL`, 6.16) or a fully ordered atomic (`BPF_XCHG`, 5.12): syslat's
/// releases are built and tested for x86-64 only.
#[inline(always)]
fn publish(pos: *mut LogPos, head: u64) {
    // SAFETY: `pos` is this CPU's live map value; only this CPU writes `head`.
    unsafe { core::ptr::write_volatile(&raw mut (*pos).head, head) };
}
