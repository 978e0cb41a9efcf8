//! Per-CPU state of the syscall programs: who ran last (`identity.rs`) and the open call of
//! the task running on this CPU.
//!
//! Most syscalls return on the CPU where they began without a context switch in between,
//! so `sys_enter` keeps the enter timestamp here, and `sys_exit` finds it here: two plain
//! memory accesses instead of a task-storage lookup (two helper calls) at each end. The
//! per-thread record stays correct across blocking and migration because `sched_switch`
//! moves an open call into the switched-out task's storage (`ENTER`) before anything else
//! can run on the CPU, and moves it back here when the task is switched in again (on
//! whatever CPU), with the time it spent off CPU (`Anatomy`). `sys_exit` falls back to
//! the storage only for what was never moved back (a new task's fork marker, a call that
//! began before tracing). Invariant: an open call here always belongs to the task running
//! on this CPU.

use profiler_common::Anatomy;

use crate::{identity::Identity, maps::CPU};

/// Set in [`OpenCall::nr`] for a call moved back at a switch-in: its `anatomy` is valid.
/// `sys_enter` stores a plain number, so a call that never switches pays nothing for it.
pub(crate) const SWITCHED: u32 = 1 << 30;

/// A call entered on this CPU and not yet returned or moved.
#[repr(C)]
pub(crate) struct OpenCall {
    /// `regs` of the calling task; 0: no open call.
    pub(crate) regs: u64,
    /// `bpf_ktime_get_ns` at enter; 0 for a call the syscall filter excludes.
    pub(crate) ts: u64,
    /// Thread id of the caller.
    pub(crate) tid: u32,
    /// Syscall number, or `NR_IGNORED`; with [`SWITCHED`] or'ed in once it was switched out.
    pub(crate) nr: u32,
    /// First three arguments (only with the slow-call log).
    pub(crate) args: [u64; 3],
    /// Time off CPU so far; valid only with [`SWITCHED`] in `nr`.
    pub(crate) anatomy: Anatomy,
}

/// One CPU's state.
#[repr(C)]
pub(crate) struct CpuState {
    /// The identity memo.
    pub(crate) who: Identity,
    /// The open call of the running task.
    pub(crate) open: OpenCall,
}

/// This CPU's state.
#[inline(always)]
pub(crate) fn this_cpu() -> Option<&'static mut CpuState> {
    let p = CPU.get_ptr_mut(0)?;
    // SAFETY: this CPU's value of a per-CPU map. The syscall and scheduler tracepoint
    // programs run with preemption disabled and never nest, so nothing else on this CPU
    // touches it while one of them holds the reference.
    Some(unsafe { &mut *p })
}
