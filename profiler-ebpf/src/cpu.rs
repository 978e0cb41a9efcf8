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
//!
//! # When the programs run (the one place this is stated)
//! - `sched_switch` runs with the run queue locked and interrupts off (kernel/sched/core.c),
//!   so never preempted, on every kernel.
//! - `sys_enter`/`sys_exit` (raw tracepoints) run with preemption disabled up to 7.1: the
//!   syscall tracepoints became faultable in 6.14, but up to 7.1 the BPF probe stub still
//!   disabled preemption around the program (disassembled `__bpf_trace_sys_enter` of
//!   Debian's 7.1.13: `incl %gs:__preempt_count; call bpf_trace_run2; decl ...`). From 7.2
//!   it does not (7.2.12: `jmp bpf_trace_run2`; include/trace/bpf_probe.h
//!   `__BPF_DECLARE_TRACE_SYSCALL` only `might_fault()`, kernel/trace/bpf_trace.c
//!   `__bpf_trace_run` only `rcu_read_lock_dont_migrate()`): a non-sleepable program there
//!   runs with migration disabled but may be preempted, and while one task is preempted
//!   inside it, the kernel skips every other task's run of it on that CPU
//!   (`bpf_prog_get_recursion_context`, counted in the program's `recursion_misses`): on
//!   7.3.4 most calls of threads sharing a CPU were lost that way.
//! - `sys_enter_tp`/`sys_exit_tp`, the same code on the same events through perf's
//!   tracepoint handler, are what user space attaches from 7.2 (`features::SyscallHook`):
//!   perf's handler for the syscall event class disables preemption around the program on
//!   every kernel, faultable tracepoints included (include/trace/perf.h,
//!   `DECLARE_EVENT_SYSCALL_CLASS`: `might_fault(); guard(preempt_notrace)()`, because
//!   perf's per-CPU buffers need it), and then `trace_call_bpf` runs it. Measured on
//!   7.3.4: 0 skipped runs, the 16-threads-on-one-CPU stress exact.
//! - So on every kernel syslat attaches to, a syscall program is never preempted. The
//!   code still holds if it were (`SYSLAT_SYSCALL_HOOK=raw` on 7.2+): the program stays on
//!   its CPU; the same program never nests on a CPU. What could happen: `sched_switch`
//!   running while a preempted `sys_enter`/`sys_exit` is half-way through this CPU's
//!   `open` slot or memo. So `sched_switch` bumps [`CpuState::switches`] and each syscall
//!   program reads it before and after its run: `sys_enter` writes the slot again whole
//!   when a switch ran between (`regs`, the slot's "in use" mark, is stored last),
//!   `sys_exit` copies it again, and both identify the task again. The skipped runs are
//!   then reported (`skipped_runs`), not silent.
//! - Memory order: every access to this state is made by programs on its own CPU, one at a
//!   time, and a CPU sees its own stores in program order on any architecture, so only the
//!   compiler's order matters here (`compiler_fence`). The call log, read by user space on
//!   another CPU, is the one place with a cross-CPU order (`calllog.rs`).

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
    /// Context switches on this CPU (wrapping), bumped by `sched_switch`: a syscall program
    /// that reads it before and after its stores knows whether it was preempted between.
    pub(crate) switches: u64,
}

/// This CPU's context-switch count, read from memory each time (a preempted program sees
/// the switches that ran meanwhile).
#[inline(always)]
pub(crate) fn switches(cpu: &CpuState) -> u64 {
    // SAFETY: a valid, aligned field of this CPU's state.
    unsafe { core::ptr::read_volatile(&cpu.switches) }
}

/// This CPU's state.
#[inline(always)]
pub(crate) fn this_cpu() -> Option<&'static mut CpuState> {
    let p = CPU.get_ptr_mut(0)?;
    // SAFETY: this CPU's value of a per-CPU map, valid while the program runs (migration
    // is disabled). Programs of one kind never nest on a CPU; see the module comment for
    // when a scheduler program can run while a syscall program is preempted.
    Some(unsafe { &mut *p })
}
