//! Who is calling, without a helper call on the common path.
//!
//! `bpf_get_current_pid_tgid` is a real function call (costly with return-thunk mitigations)
//! and both programs need its answer on every syscall of every process, targeted or not.
//! The syscall tracepoints pass `regs`, the address of the task's saved user registers at
//! the top of its kernel stack: unique among live tasks and fixed for a task's lifetime. So
//! each CPU remembers the last `regs` it saw with that task's `pid_tgid` and whether it is
//! targeted, stamped with the global `GENERATION`. Everything that can change the answer
//! bumps the generation: adding or removing a target (user space or fork/exit following),
//! an exec (may change the pid and, with `--comm`, the target set) and any task exit (its
//! stack, and so its `regs` address, may be reused by a new task).

use core::sync::atomic::{Ordering, compiler_fence};

use aya_ebpf::helpers::bpf_get_current_pid_tgid;
use profiler_common::filter_mode;

use crate::{
    cpu::CpuState,
    maps::{FILTER_MODE, GENERATION, SELF_TGID, TGID_BITS, constant},
};

/// One CPU's memo (part of `cpu::CpuState`).
#[repr(C)]
pub(crate) struct Identity {
    /// `regs` of the task identified last; 0: none.
    regs: u64,
    /// `GENERATION` when it was identified.
    generation: u64,
    /// Its `bpf_get_current_pid_tgid`.
    pid_tgid: u64,
    /// Whether it is targeted.
    targeted: u64,
}

/// The current task's `pid_tgid` when it is targeted. `regs` is the tracepoint's first
/// argument; the memo is this CPU's.
///
/// From 7.2 a syscall program may be preempted, and another task's program may then use
/// and rewrite the memo on this CPU (see `cpu.rs`). So the memo is rewritten with `regs`
/// cleared first and set last, and the callers check this CPU's switch count around their
/// whole run: one that moved forgets the memo ([`forget`]) and identifies the task again.
#[inline(always)]
pub(crate) fn targeted_task(cpu: &mut CpuState, regs: u64) -> Option<u64> {
    if constant(&FILTER_MODE) == filter_mode::CGROUP {
        // A task can move between cgroups without any event the memo would see.
        let pid_tgid = bpf_get_current_pid_tgid();
        return targeted(pid_tgid).then_some(pid_tgid);
    }
    // The generation is read before the target set, so an answer computed from an older set
    // is stored under an older generation and never reused.
    let generation = generation();
    let memo = &mut cpu.who;
    if memo.regs == regs && memo.generation == generation {
        return (memo.targeted != 0).then_some(memo.pid_tgid);
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let yes = targeted(pid_tgid);
    remember(memo, regs, generation, pid_tgid, yes);
    yes.then_some(pid_tgid)
}

/// Empties this CPU's memo (after a preemption made it untrustworthy).
#[inline(always)]
pub(crate) fn forget(cpu: &mut CpuState) {
    cpu.who.regs = 0;
}

/// The global generation of the target set.
#[inline(always)]
pub(crate) fn generation() -> u64 {
    // SAFETY: a valid, aligned global; volatile because other CPUs and user space update it.
    unsafe { core::ptr::read_volatile(&raw const GENERATION) }
}

/// Stores an identification in `memo`: `regs` cleared first and set last, so a memo caught
/// half-written never matches.
#[inline(always)]
pub(crate) fn remember(memo: &mut Identity, regs: u64, generation: u64, pid_tgid: u64, yes: bool) {
    memo.regs = 0;
    compiler_fence(Ordering::SeqCst);
    memo.generation = generation;
    memo.pid_tgid = pid_tgid;
    memo.targeted = u64::from(yes);
    compiler_fence(Ordering::SeqCst);
    memo.regs = regs;
}

/// Whether the task `task` (BTF-typed: `sched_switch`'s `prev` or `next`) is targeted, by
/// direct loads of its ids, where that needs no helper (`None` with `--cgroup`).
#[inline(always)]
pub(crate) fn task_targeted(task: *const u8) -> Option<bool> {
    use crate::maps::{OFF_TASK_PID, OFF_TASK_TGID};
    let tgid: u32 = crate::task_field(task, constant(&OFF_TASK_TGID));
    match constant(&FILTER_MODE) {
        filter_mode::ALL => Some(tgid != constant(&SELF_TGID)),
        filter_mode::TIDS => Some(bit(crate::task_field(task, constant(&OFF_TASK_PID)))),
        filter_mode::CGROUP => None,
        _ => Some(bit(tgid)),
    }
}

/// Invalidates every CPU's memo. Called after the change it announces.
#[inline(always)]
pub(crate) fn bump_generation() {
    crate::atomic::add(&raw mut GENERATION, 1);
}

/// Whether bit `n` of the `TGID_BITS` bitmap is set.
#[inline(always)]
fn bit(n: u32) -> bool {
    match TGID_BITS.get(n / 64) {
        Some(word) => *word & (1u64 << (n % 64)) != 0,
        None => false,
    }
}

/// Whether the task with this `pid_tgid` is targeted (no memo). The mode is a load-time
/// constant, so the verifier prunes the other branches.
#[inline(always)]
pub(crate) fn targeted(pid_tgid: u64) -> bool {
    let tgid = (pid_tgid >> 32) as u32;
    match constant(&FILTER_MODE) {
        filter_mode::ALL => tgid != constant(&SELF_TGID),
        filter_mode::TIDS => bit(pid_tgid as u32),
        filter_mode::CGROUP => in_target_cgroup() && tgid != constant(&SELF_TGID),
        _ => bit(tgid),
    }
}

/// Whether the current task is in the `--cgroup` subtree: its ancestor at the target's
/// level is the target.
#[cfg(not(feature = "legacy"))]
#[inline(always)]
fn in_target_cgroup() -> bool {
    use crate::maps::{CGROUP_ID, CGROUP_LEVEL, constant64};
    // SAFETY: helper with a plain integer argument.
    let id = unsafe {
        aya_ebpf::helpers::bpf_get_current_ancestor_cgroup_id(constant(&CGROUP_LEVEL) as i32)
    };
    id == constant64(&CGROUP_ID)
}

/// The legacy object's test: the cgroup directory user space put in `CGROUPS` slot 0
/// (raw tracepoints of 5.10 lack `bpf_get_current_ancestor_cgroup_id`; this helper has
/// been there since 4.9). The same subtree rule, for cgroups created later too.
#[cfg(feature = "legacy")]
#[inline(always)]
fn in_target_cgroup() -> bool {
    crate::maps::CGROUPS
        .current_task_under_cgroup(0)
        .unwrap_or(false)
}
