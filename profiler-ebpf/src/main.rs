//! syslat's eBPF programs: time every syscall of the targeted processes.
//!
//! - `sys_enter` / `sys_exit` (raw tracepoints, the cheapest hook): who is calling comes
//!   from a per-CPU memo (`identity.rs`); the enter timestamp and syscall number stay in a
//!   per-CPU open-call slot (`cpu.rs`), moved to a per-thread slot (`moved.rs`) only when
//!   the task is switched out inside the call and back when it is switched in; the exit
//!   pairs with it and appends one 32-byte `SyscallEvent` to this CPU's call log
//!   (`calllog.rs`), which user space reads in place, followed by the call's `Anatomy` when
//!   it was switched out. Slow calls with their arguments and process exits, both rare, go
//!   through a ring buffer.
//! - `sched_switch` (tp_btf): a call's time off CPU, split at the return into run-queue
//!   wait (from the scheduler's own `sched_info.run_delay`) and blocked (the call's
//!   anatomy); nothing for a call that never switches.
//! - `sched_process_fork` (tp_btf, for a typed child pointer): a traced parent's new child
//!   process is added to the target set before it can run, and every new task of a traced
//!   process is marked so that its first exit (the return from fork) is not an "unpaired" loss.
//! - `sched_process_exit`: counts threads that die inside a syscall; when a traced thread
//!   group dies, reports it (with its name) and drops it from the target set.
//!
//! Every path is O(1); nothing here logs on the per-syscall path.
#![no_std]
#![no_main]
// Inline BPF assembly for atomic RMW (see atomic.rs); the build enables it with
// RUSTC_BOOTSTRAP=syslat (the bin crate).
#![feature(asm_experimental_arch)]

mod atomic;
mod calllog;
mod cpu;
mod identity;
mod maps;
mod moved;

use core::sync::atomic::{Ordering, compiler_fence};

use aya_ebpf::helpers::{bpf_get_current_cgroup_id, bpf_probe_read_user_str_bytes};
use aya_ebpf::{
    bindings::BPF_F_USER_STACK,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
        bpf_probe_read_kernel,
        generated::{bpf_get_smp_processor_id, bpf_get_stack},
    },
    macros::{btf_tracepoint, raw_tracepoint, tracepoint},
    programs::{
        BtfTracePointContext, RawTracePointContext, TracePointContext, tracing::StackIdContext,
    },
};
use aya_log_ebpf::debug;
use cpu::{SWITCHED, this_cpu};
use identity::{bump_generation, targeted, targeted_task};
use maps::{
    BY_CGROUP, COMMS, ERRORS_ONLY, EVENTS, EXEC_NRS, FILTER_MODE, FRAMES, INLINE_SEQ, NCOMMS,
    OFF_ARGS, OFF_SIGNAL_LIVE, OFF_TASK_PID, OFF_TASK_RUN_DELAY, OFF_TASK_SIGNAL, OFF_TASK_STATE,
    OFF_TASK_TGID, PATH_ARG, SLOW_NS, STACKS, STACKS_NS, SYSCALL_BITS, SYSCALL_FILTER, TGID_BITS,
    bump, constant, constant64,
};
use profiler_common::{
    Anatomy, EnterState, INLINE_STACK_BASE, MAX_COMMS, MAX_SYSCALLS, NR_FORK_CHILD, NR_IGNORED,
    ProcExit, STACK_DEPTH, SlowEvent, StackFrames, StackIds, SyscallEvent, counter, filter_mode,
    flag, kind,
};

/// Whether syscall `id` passes the `-s` filter.
#[inline(always)]
fn syscall_wanted(id: i64) -> bool {
    if constant(&SYSCALL_FILTER) == 0 {
        return true;
    }
    let nr = id as u32;
    match SYSCALL_BITS.get(nr / 64) {
        Some(word) => *word & (1u64 << (nr % 64)) != 0,
        None => false,
    }
}

/// Whether syscall `id` is execve or execveat (numbers set by user space for this
/// architecture).
#[inline(always)]
fn is_exec(id: i64) -> bool {
    let nr = id as u32;
    nr == constant(&EXEC_NRS[0]) || nr == constant(&EXEC_NRS[1])
}

/// `raw_syscalls:sys_enter(struct pt_regs *regs, long id)` as a raw tracepoint, the
/// cheapest hook: used where the kernel runs it with preemption disabled (up to 7.1,
/// `cpu.rs`). The caller is told apart by `regs`, and the arguments are read from it.
#[raw_tracepoint(tracepoint = "sys_enter")]
fn sys_enter(ctx: RawTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    syscall_enter(regs, ctx.arg(1), || regs_args(regs));
    0
}

/// The same tracepoint through perf's handler (`tracepoint/raw_syscalls/sys_enter`), which
/// keeps preemption disabled around the program on 7.2 and later too (`cpu.rs`). Its
/// context is the event record ([`tp`]); the caller is told apart by its task pointer,
/// which like `regs` is unique among live tasks and fixed for a task's lifetime.
#[tracepoint(category = "raw_syscalls", name = "sys_enter")]
fn sys_enter_tp(ctx: TracePointContext) -> u32 {
    // SAFETY: helper with no arguments.
    let task = unsafe { bpf_get_current_task() };
    syscall_enter(task, tp::field(&ctx, tp::ID) as i64, || {
        [0, 1, 2].map(|i| tp::field(&ctx, tp::ARGS + 8 * i))
    });
    0
}

/// The first three syscall arguments, from the task's saved user registers (`regs`).
#[inline(always)]
fn regs_args(regs: u64) -> [u64; 3] {
    let p = regs as *const u8;
    let mut args = [0u64; 3];
    for (arg, off) in args.iter_mut().zip(OFF_ARGS.iter()) {
        // SAFETY: `off` points into `OFF_ARGS`, a valid, aligned static; read_volatile
        // keeps the loader's values from being folded away.
        let off = unsafe { core::ptr::read_volatile(off) };
        *arg = read_kernel::<u64>(p, off).unwrap_or(0);
    }
    args
}

/// Fields of the `raw_syscalls` events' records, the context of the perf-handled programs
/// (`events/raw_syscalls/sys_{enter,exit}/format`, the same on every kernel since 3.x;
/// user space checks them before loading).
mod tp {
    use aya_ebpf::{EbpfContext as _, programs::TracePointContext};

    /// `long id` (both events), after the 8-byte common header.
    pub(crate) const ID: usize = 8;
    /// `unsigned long args[6]` (sys_enter).
    pub(crate) const ARGS: usize = 16;
    /// `long ret` (sys_exit).
    pub(crate) const RET: usize = 16;

    /// The 8-byte field at `offset` of the record.
    #[inline(always)]
    pub(crate) fn field(ctx: &TracePointContext, offset: usize) -> u64 {
        // SAFETY: the context is the event record, readable by direct loads up to its size,
        // and `offset` is one of the constants above (8-aligned, inside both records).
        unsafe { ctx.as_ptr().cast::<u8>().add(offset).cast::<u64>().read() }
    }
}

/// Opens the call `id` of the task identified by `regs` when it is targeted; `args` gives
/// its first three arguments (read only with the slow-call log).
#[inline(always)]
fn syscall_enter(regs: u64, id: i64, args: impl Fn() -> [u64; 3]) {
    let Some(cpu) = this_cpu() else {
        return;
    };
    let switches = cpu::switches(cpu);
    compiler_fence(Ordering::SeqCst);
    if !enter(cpu, regs, id, true, &args) {
        return;
    }
    compiler_fence(Ordering::SeqCst);
    if cpu::switches(cpu) != switches {
        // Preempted meanwhile (the raw tracepoint from 7.2, see `cpu.rs`): the memo may be
        // another task's, and a switch out and back may have moved a half-written slot and
        // put it back. Identify the task again and write the slot again whole; the call
        // starts now.
        identity::forget(cpu);
        if !enter(cpu, regs, id, false, &args) && cpu.open.regs == regs {
            cpu.open.regs = 0;
        }
    }
}

/// Opens the call of the current task (its `regs`) on this CPU when the task is targeted;
/// false when it is not. `first`: the program's first attempt (not a retry).
#[inline(always)]
fn enter(
    cpu: &mut cpu::CpuState,
    regs: u64,
    id: i64,
    first: bool,
    args: &impl Fn() -> [u64; 3],
) -> bool {
    let pid_tgid = match targeted_task(cpu, regs) {
        Some(p) => p,
        // With `--comm`, an exec may bring this process into the target set: time the
        // exec from its start (rare: exec calls of untargeted processes only).
        None if constant(&NCOMMS) != 0 && is_exec(id) => bpf_get_current_pid_tgid(),
        None => return false,
    };
    if first && cpu.open.regs != 0 {
        // This task's previous call never returned (or, if the invariant were broken,
        // another task's call would be lost here).
        bump(counter::STALE);
    }
    open_call(cpu, regs, id, pid_tgid as u32, args);
    true
}

/// Writes the open call of `id` by thread `tid` into this CPU's slot, `regs` last.
#[inline(always)]
fn open_call(cpu: &mut cpu::CpuState, regs: u64, id: i64, tid: u32, args: &impl Fn() -> [u64; 3]) {
    let open = &mut cpu.open;
    open.tid = tid;
    if !syscall_wanted(id) {
        // Not timed; the matching exit is ignored, not counted as unpaired.
        open.ts = 0;
        open.nr = NR_IGNORED;
        compiler_fence(Ordering::SeqCst);
        open.regs = regs;
        return;
    }
    open.nr = id as u32;
    if constant64(&SLOW_NS) != 0 {
        open.args = args();
    }
    // SAFETY: helper with no arguments.
    open.ts = unsafe { bpf_ktime_get_ns() };
    // `regs` marks the slot in use: stored after the rest, so a preemption between these
    // stores never leaves a half-written slot marked in use (the fence keeps the compiler
    // from reordering them; the CPU's own order is not at stake on one CPU).
    compiler_fence(Ordering::SeqCst);
    open.regs = regs;
}

/// `raw_syscalls:sys_exit(struct pt_regs *regs, long ret)` as a raw tracepoint (see
/// [`sys_enter`]).
#[raw_tracepoint(tracepoint = "sys_exit")]
fn sys_exit(ctx: RawTracePointContext) -> i32 {
    syscall_exit(&ctx, ctx.arg(0), || ctx.arg(1));
    0
}

/// The same through perf's handler (see [`sys_enter_tp`]).
#[tracepoint(category = "raw_syscalls", name = "sys_exit")]
fn sys_exit_tp(ctx: TracePointContext) -> u32 {
    // SAFETY: helper with no arguments.
    let task = unsafe { bpf_get_current_task() };
    syscall_exit(&ctx, task, || tp::field(&ctx, tp::RET) as i64);
    0
}

/// Closes the call of the task identified by `regs` (as at its enter) and publishes it;
/// `ret` gives its return value.
#[inline(always)]
fn syscall_exit<C: StackIdContext>(ctx: &C, regs: u64, ret: impl Fn() -> i64) {
    let Some(cpu) = this_cpu() else {
        return;
    };
    let switches = cpu::switches(cpu);
    compiler_fence(Ordering::SeqCst);
    let Some(mut pid_tgid) = targeted_task(cpu, regs) else {
        if constant(&NCOMMS) != 0 && cpu.open.regs == regs {
            // An exec timed at enter that did not bring its process into the target set
            // (it failed, or the new name is not one of the names): not a call of ours.
            cpu.open.regs = 0;
        }
        return;
    };
    // SAFETY: helper with no arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    // Returned on the CPU where it began or, after a switch, where it was moved back.
    let mut here = cpu.open.regs == regs;
    let mut copy = (cpu.open.ts, cpu.open.nr, cpu.open.args, cpu.open.anatomy);
    compiler_fence(Ordering::SeqCst);
    if cpu::switches(cpu) != switches {
        // Preempted meanwhile (possible from 7.2): the memo may be another task's, and the call
        // may have been moved out and back in with its time off CPU. Identify the task
        // again and copy again.
        identity::forget(cpu);
        let Some(p) = targeted_task(cpu, regs) else {
            return;
        };
        pid_tgid = p;
        here = cpu.open.regs == regs;
        copy = (cpu.open.ts, cpu.open.nr, cpu.open.args, cpu.open.anatomy);
    }
    let tgid = (pid_tgid >> 32) as u32;
    let (ts, mut nr, args, mut anatomy) = if here {
        // Cleared after the copy: a switch before this line moves the whole call out and
        // back (the slot is the task's again when it runs here).
        compiler_fence(Ordering::SeqCst);
        cpu.open.regs = 0;
        copy
    } else {
        // A new task's fork marker, or a call that began before tracing.
        let Some(found) = moved::take_current(pid_tgid) else {
            bump(counter::UNPAIRED);
            return;
        };
        (found.ts, found.nr, found.args, found.anatomy)
    };
    // Only a timed call carries the flag (the markers' numbers have high bits set).
    let switched = ts != 0 && nr & SWITCHED != 0;
    if switched {
        nr &= !SWITCHED;
    }
    if ts == 0 {
        // The child's return from fork/clone, or a filtered-out call: not a loss.
        if nr != NR_FORK_CHILD && nr != NR_IGNORED {
            bump(counter::UNPAIRED);
        }
        return;
    }
    if nr >= MAX_SYSCALLS {
        return;
    }
    let ret = ret();
    if constant(&ERRORS_ONLY) != 0 && !(-4095..0).contains(&ret) {
        return;
    }
    let duration_ns = now.saturating_sub(ts);
    if switched {
        split_off_cpu(&mut anatomy);
    } else {
        anatomy = Anatomy::default();
    }
    let cgroup = if constant(&BY_CGROUP) != 0 {
        // SAFETY: helper with no arguments.
        unsafe { bpf_get_current_cgroup_id() as u32 }
    } else {
        0
    };
    let mut call = SyscallEvent {
        kind: if switched {
            kind::CALL_SWITCHED
        } else {
            kind::CALL
        },
        flags: 0,
        nr: nr as u16,
        cgroup,
        duration_ns,
        ret,
        tgid,
        tid: pid_tgid as u32,
    };
    let slow = constant64(&SLOW_NS);
    if slow != 0 && duration_ns >= slow {
        // Written in place in the ring buffer: a `SlowEvent` is too big for the BPF stack
        // beside the rest of this program's locals.
        let Some(mut entry) = EVENTS.reserve_untyped::<SlowEvent>(0) else {
            bump(counter::DROPPED);
            return;
        };
        let ev = entry.as_mut_ptr();
        // SAFETY: `ev` points to a reserved ring-buffer record of a `SlowEvent`'s size,
        // ours until submitted; every field is written before the submit.
        unsafe {
            (&raw mut (*ev).call).write(SyscallEvent {
                kind: kind::SLOW,
                ..call
            });
            (&raw mut (*ev).anatomy).write(anatomy);
            (&raw mut (*ev).args).write(args);
            (&raw mut (*ev).exit_ns).write(now);
            (&raw mut (*ev).stack).write(match wants_stacks(duration_ns) {
                true => stack_ids(ctx, switched, &anatomy),
                false => StackIds::default(),
            });
            (&raw mut (*ev).path).write_bytes(0, 1);
        }
        // The path argument, read now (the caller's memory is still there at exit) with the
        // bounded string helper; user space never trusts it to be UTF-8 and reads it only
        // up to its NUL.
        let which = PATH_ARG.get(nr).copied().unwrap_or(0);
        if (1..=3).contains(&which) {
            // VERIFIER: a match keeps every index constant (no bounds proof needed).
            let src = match which {
                1 => args[0],
                2 => args[1],
                _ => args[2],
            } as *const u8;
            // SAFETY: the helper reads at most SLOW_PATH_LEN bytes from user memory and
            // fails cleanly on a bad address; the destination is the record's path field,
            // of that size.
            let _ = unsafe { bpf_probe_read_user_str_bytes(src, &mut (*ev).path) };
        }
        // The kernel's adaptive wake-up: only when user space had read everything before
        // (at most once per drain), so slow calls are logged as they happen.
        entry.submit(0);
        bump(counter::EMITTED);
        return;
    }
    if wants_stacks(duration_ns) {
        // Apart from the path below, so that without `--stacks` it is what it was.
        let ids = stack_ids(ctx, switched, &anatomy);
        anatomy.kind = kind::ANATOMY;
        call.flags = flag::STACK;
        calllog::append_with_stack(call, switched.then_some(anatomy), ids);
        return;
    }
    if switched {
        anatomy.kind = kind::ANATOMY;
        calllog::append_switched(call, anatomy);
    } else {
        calllog::append(call);
    }
}

/// Whether a call that took `duration_ns` has its stacks taken (`--stacks`). The constant
/// is compared first: with stacks off (`u64::MAX`) the verifier sees the branch is never
/// taken and removes what it guards.
#[inline(always)]
fn wants_stacks(duration_ns: u64) -> bool {
    let stacks = constant64(&STACKS_NS);
    stacks != u64::MAX && duration_ns >= stacks
}

/// The current task's user stack and kernel stack, as ids in `STACKS` (negative: the
/// helper's errno). A call that was switched out has the kernel stack of its last
/// switch-out, in its `anatomy` (where it blocked or was preempted: at the return it would
/// only show the exit path). The user stack is walked by frame pointers from the registers
/// saved at syscall entry, so code built without them yields a short or wrong chain.
#[inline(always)]
fn stack_ids<C: StackIdContext>(ctx: &C, switched: bool, anatomy: &Anatomy) -> StackIds {
    StackIds {
        user: stack_id(ctx, u64::from(BPF_F_USER_STACK)),
        kernel: if switched {
            anatomy.kstack
        } else {
            stack_id(ctx, 0)
        },
        ..StackIds::default()
    }
}

/// `bpf_get_stackid` into `STACKS`: the id, or the helper's negative errno. When the
/// stack's bucket holds another stack (`EEXIST`: the map is a hash without chaining, and a
/// few hundred distinct stacks already collide in several percent of runs) or no bucket is
/// free (`ENOMEM`), the frames go to the ring buffer instead, under an id of their own ([`inline_stack`]).
#[inline(always)]
fn stack_id<C: StackIdContext>(ctx: &C, flags: u64) -> i32 {
    match ctx.get_stackid(&STACKS, flags) {
        Ok(id) => id as i32,
        // Or when the map had no free bucket to give (`ENOMEM`: a map too small for the
        // session's stacks, or its per-CPU free list empty on this CPU for a moment).
        Err(errno) if errno == -EEXIST || errno == -ENOMEM => {
            inline_stack(ctx, flags).unwrap_or(errno)
        }
        Err(errno) => errno,
    }
}

/// `EEXIST`, as the helpers return it negated.
const EEXIST: i32 = 17;
/// `ENOMEM`: the stack map had no free bucket.
const ENOMEM: i32 = 12;
/// `ENOSPC`: the stack's bucket was taken and the `FRAMES` ring buffer full.
const ENOSPC: i32 = 28;

/// Writes the current stack (`bpf_get_stack`, with `flags` as for the stack id) to the
/// ring buffer as a [`StackFrames`] record and returns its id (see
/// [`profiler_common::INLINE_STACK_BASE`]) in the `FRAMES` ring buffer; the record is
/// submitted before the call that names it is published, so user space reading the call
/// has it. A negative errno when it could not be sent (`-ENOSPC`: the ring is full).
#[inline(never)]
fn inline_stack<C: StackIdContext>(ctx: &C, flags: u64) -> Option<i32> {
    // A plain per-CPU count: two programs on one CPU take the same number only if one
    // preempts the other between the load and the store, which kernels before 7.2 rule
    // out (`cpu.rs`); a duplicate id would give one of two calls the other's frames.
    let seq = INLINE_SEQ.get_ptr_mut(0)?;
    // SAFETY: a valid per-CPU array slot (the lookup succeeded); plain integer.
    let n = unsafe {
        let n = *seq;
        *seq = n.wrapping_add(1);
        n
    };
    // SAFETY: helper with no arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let id = INLINE_STACK_BASE + (((cpu & 0x3fff) << 16) | (n & 0xffff)) as i32;
    let Some(mut entry) = FRAMES.reserve_untyped::<StackFrames>(0) else {
        return Some(-ENOSPC);
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points to a reserved ring-buffer record of a `StackFrames`'s size, ours
    // until submitted or discarded; the helper writes at most `size_of_val(ips)` bytes
    // into its `ips` field and the header is written before the submit.
    let len = unsafe {
        bpf_get_stack(
            ctx.as_ptr(),
            (&raw mut (*rec).ips).cast(),
            (STACK_DEPTH * 8) as u32,
            flags,
        )
    };
    if len < 0 {
        entry.discard(0);
        return Some(len as i32);
    }
    // SAFETY: as above.
    unsafe {
        (&raw mut (*rec).kind).write(kind::FRAMES);
        (&raw mut (*rec)._pad).write([0; 3]);
        (&raw mut (*rec).id).write(id);
        (&raw mut (*rec).len).write(len as u32);
        (&raw mut (*rec)._pad2).write(0);
    }
    entry.submit(u64::from(aya_ebpf::bindings::BPF_RB_NO_WAKEUP));
    Some(id)
}

/// Reads a kernel `T` at `base + offset`.
#[inline(always)]
pub(crate) fn read_kernel<T>(base: *const u8, offset: u32) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly on a bad one.
    unsafe { bpf_probe_read_kernel(base.add(offset as usize).cast::<T>()) }.ok()
}

/// `sched:sched_process_fork(struct task_struct *parent, struct task_struct *child)`.
#[btf_tracepoint(function = "sched_process_fork")]
fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let parent_tgid = (pid_tgid >> 32) as u32;
    if !targeted(pid_tgid) {
        return 0;
    }
    let child: *const u8 = ctx.arg(1);
    // Mark the new task so that its first sys_exit (returning from fork) pairs silently.
    moved::mark_child(child);
    if constant(&FILTER_MODE) != filter_mode::TGIDS {
        return 0;
    }
    let Some(child_tgid) = read_kernel::<u32>(child, constant(&OFF_TASK_TGID)) else {
        return 0;
    };
    if child_tgid != parent_tgid
        && let Some(word) = TGID_BITS.get_ptr_mut(child_tgid / 64)
    {
        // Atomic: cannot lose a bit changed concurrently for another tgid in the word.
        atomic::set_bit(word, child_tgid % 64);
        bump_generation();
        bump(counter::FORKS_FOLLOWED);
        debug!(&ctx, "following child {} of {}", child_tgid, parent_tgid);
    }
    0
}

/// `sched:sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
/// unsigned int prev_state)` (`prev_state` since 5.18: not used), run in `prev`'s context
/// with the run queue locked. An open call on this CPU is `prev`'s: it moves to `prev`'s
/// storage, stamped with the time; a call of `next`'s waiting in its storage moves back to
/// this CPU with the time it spent off CPU added. How much of that time was run-queue wait
/// is the scheduler's own figure, taken at the return ([`split_off_cpu`]), so no
/// `sched_wakeup` program is needed.
///
/// Fields of `prev` are read by direct loads of the BTF-typed pointer (offsets from the
/// frozen `.rodata`, which the verifier sees as constants): no helper call per field.
#[btf_tracepoint(function = "sched_switch")]
fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    let Some(cpu) = this_cpu() else {
        return 0;
    };
    let mut now = 0;
    if cpu.open.regs != 0 {
        // SAFETY: helper with no arguments.
        now = unsafe { bpf_ktime_get_ns() };
        switch_out(&ctx, &mut cpu.open, now);
    }
    // A syscall program preempted on this CPU (possible from 7.2) sees that it was.
    cpu.switches = cpu.switches.wrapping_add(1);
    let next: *const u8 = ctx.arg(2);
    // With `-p`/`--tid` a task that is no target has no call waiting: skip its lookup.
    if identity::task_targeted(next) == Some(false) {
        return 0;
    }
    let Some(slot) = moved::task_slot(next) else {
        return 0;
    };
    if slot.ts == 0 || slot.off_ts == 0 {
        // A fork marker, an ignored call, or nothing in flight.
        return 0;
    }
    if now == 0 {
        // SAFETY: helper with no arguments.
        now = unsafe { bpf_ktime_get_ns() };
    }
    // All of the time off CPU, split at the return.
    slot.anatomy.blocked_ns += now.saturating_sub(slot.off_ts);
    if slot.generation == identity::generation() {
        // Its first exit here then finds it in the memo, without a helper call.
        let tgid: u32 = task_field(next, constant(&OFF_TASK_TGID));
        let pid_tgid = (u64::from(tgid) << 32) | u64::from(slot.tid);
        identity::remember(&mut cpu.who, slot.regs, slot.generation, pid_tgid, true);
    }
    let open = &mut cpu.open;
    open.ts = slot.ts;
    open.tid = slot.tid;
    open.nr = slot.nr | SWITCHED;
    open.args = slot.args;
    open.anatomy = slot.anatomy;
    open.regs = slot.regs;
    moved::release(next, slot);
    0
}

/// A field of a task, by a direct load of a BTF-typed task pointer (a `tp_btf` argument or
/// `bpf_get_current_task_btf`) at `off`, a load-time constant.
#[inline(always)]
pub(crate) fn task_field<T: Copy>(task: *const u8, off: u32) -> T {
    // SAFETY: `task` is a trusted BTF pointer to a live `task_struct` and `off` (from the
    // frozen `.rodata`, a constant to the verifier) is the offset of a field of type `T`
    // taken from the kernel's BTF; the verifier checks the load against that BTF and the
    // JIT makes it fault-safe.
    unsafe { core::ptr::read(task.add(off as usize).cast::<T>()) }
}

/// Moves `open`, the call in flight of the task being switched out (current), to its
/// storage, stamped `now`.
#[inline(always)]
fn switch_out(ctx: &BtfTracePointContext, open: &mut cpu::OpenCall, now: u64) {
    let regs = open.regs;
    open.regs = 0;
    let prev: *const u8 = ctx.arg(1);
    // `prev` is current here; a mismatch would mean the invariant broke: drop the call.
    let tid: u32 = task_field(prev, constant(&OFF_TASK_PID));
    if tid != open.tid {
        bump(counter::STALE);
        return;
    }
    // Read before the target set, as the memo's generation is (`identity.rs`).
    let generation = match identity::generation() {
        g if identity::task_targeted(prev) == Some(true) => g,
        _ => u64::MAX,
    };
    let preempt: u64 = ctx.arg(0);
    // Preempted, or yielded while running (`TASK_RUNNING` is 0): an involuntary switch.
    // The low 32 bits of `state` (a long before 5.14) hold the same value on little-endian.
    let runnable = preempt & 0xff != 0 || task_field::<u32>(prev, constant(&OFF_TASK_STATE)) == 0;
    // Only a timed call carries the flag (`NR_IGNORED` has high bits set).
    let switched = open.ts != 0 && open.nr & SWITCHED != 0;
    let mut anatomy = if switched {
        open.anatomy
    } else {
        // The first switch of the call: the task's run-queue total so far (it has been
        // running since the call began, so this is its value at the call's start).
        let mut a = Anatomy::default();
        let off = constant(&OFF_TASK_RUN_DELAY);
        if off != 0 {
            a.runq_ns = task_field(prev, off);
        }
        a
    };
    if runnable {
        anatomy.involuntary += 1;
    } else {
        anatomy.voluntary += 1;
    }
    if constant64(&STACKS_NS) != u64::MAX {
        // `--stacks`: where it blocked or was preempted (the task is current here).
        anatomy.kstack = stack_id(ctx, 0);
    }
    let state = EnterState {
        ts: open.ts,
        nr: if switched {
            open.nr & !SWITCHED
        } else {
            open.nr
        },
        tid: open.tid,
        regs,
        off_ts: now,
        generation,
        args: open.args,
        anatomy,
    };
    if !moved::save_prev(prev, u64::from(tid), &state) {
        bump(counter::NO_STORAGE);
    }
}

/// At the return of a call that was switched out: `anatomy` holds all its time off CPU in
/// `blocked_ns` and, in `runq_ns`, the task's `sched_info.run_delay` when it first left the
/// CPU. The growth of run_delay since is the time the scheduler counted the task as queued
/// for a CPU (from a preemption or from a wake-up to the switch-in), the figure
/// `/proc/PID/schedstat` shows; the rest of the time off CPU was blocked.
#[inline(always)]
fn split_off_cpu(anatomy: &mut Anatomy) {
    let off_cpu = anatomy.blocked_ns;
    let start = anatomy.runq_ns;
    let off = constant(&OFF_TASK_RUN_DELAY);
    let runq = if off == 0 {
        0
    } else {
        moved::current_run_delay(off)
            .saturating_sub(start)
            .min(off_cpu)
    };
    anatomy.runq_ns = runq;
    anatomy.blocked_ns = off_cpu - runq;
}

/// `sched:sched_process_exit(struct task_struct *p)`, run by the exiting task itself.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
fn sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    task_exit();
    // Any task's exit: its stack (and so its `regs` address) may go to a new task, and a
    // dead group's target bit may have been cleared.
    bump_generation();
    0
}

/// The work of `sched_process_exit` for a targeted task.
#[inline(always)]
fn task_exit() {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if !targeted(pid_tgid) {
        return;
    }
    // The call it dies in is open either on this CPU or, after a switch, in its storage.
    if let Some(cpu) = this_cpu() {
        let open = &mut cpu.open;
        if open.regs != 0 && open.tid == pid_tgid as u32 {
            if open.ts != 0 {
                bump(counter::UNFINISHED);
            }
            open.regs = 0;
        }
    }
    if moved::clear_on_exit(pid_tgid) {
        // exit/exit_group never return; a killed thread dies inside its call.
        bump(counter::UNFINISHED);
    }
    // The thread group is dead once `signal->live` reached 0 (do_exit decrements it
    // before this tracepoint).
    // SAFETY: helper with no arguments.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let Some(signal) = read_kernel::<*const u8>(task, constant(&OFF_TASK_SIGNAL)) else {
        return;
    };
    if read_kernel::<i32>(signal, constant(&OFF_SIGNAL_LIVE)) != Some(0) {
        return;
    }
    // Tell user space the process is gone and what it was called (it may not have had
    // time to read /proc). Rare, so the comm helper is affordable here.
    if let Some(mut entry) = EVENTS.reserve_untyped::<ProcExit>(0) {
        entry.write(ProcExit {
            kind: kind::PROC_EXIT,
            _pad: [0; 3],
            tgid,
            tid: pid_tgid as u32,
            _pad2: 0,
            comm: bpf_get_current_comm().unwrap_or([0; 16]),
        });
        entry.submit(maps::rare_wakeup_flags());
    }
    // Drop the dead group from the target set, so a recycled pid is never traced.
    if constant(&FILTER_MODE) == filter_mode::TGIDS
        && let Some(word) = TGID_BITS.get_ptr_mut(tgid / 64)
    {
        atomic::clear_bit(word, tgid % 64);
    }
}

/// `sched:sched_process_exec`, run by the task after exec: with `--comm`, the process is
/// targeted exactly when its new name is one of the names (rare path, so a loop is fine).
#[raw_tracepoint(tracepoint = "sched_process_exec")]
fn sched_process_exec(_ctx: RawTracePointContext) -> i32 {
    retarget_by_name();
    // An exec by a non-leader thread gives it the leader's pid; with `--comm` the target set
    // may have changed.
    bump_generation();
    // `--stacks`: wake user space, so that it reads the new image's mappings while the
    // process lives (a short-lived one may be gone by the next timed drain).
    let pid_tgid = bpf_get_current_pid_tgid();
    if constant64(&STACKS_NS) != u64::MAX && targeted(pid_tgid) {
        calllog::wake_user_for((pid_tgid >> 32) as u32);
    }
    0
}

/// With `--comm`, sets or clears the exec'ing process's target bit by its new name.
#[inline(always)]
fn retarget_by_name() {
    let n = constant(&NCOMMS);
    if n == 0 || constant(&FILTER_MODE) != filter_mode::TGIDS {
        return;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    let mut matched = false;
    for i in 0..MAX_COMMS {
        if i >= n {
            break;
        }
        if COMMS.get(i).is_some_and(|name| *name == comm) {
            matched = true;
        }
    }
    if let Some(word) = TGID_BITS.get_ptr_mut(tgid / 64) {
        if matched {
            atomic::set_bit(word, tgid % 64);
        } else {
            atomic::clear_bit(word, tgid % 64);
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// The programs call GPL-only helpers (task storage, probe_read_kernel).
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
