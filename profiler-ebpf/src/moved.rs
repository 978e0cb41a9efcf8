//! Where a call waits while its task is off CPU, and where a new task's fork marker lives:
//! the per-thread side of the enter state (the per-CPU side is `cpu.rs`).
//!
//! Two mechanisms, chosen when the object is built (user space embeds both objects and
//! loads the one the running kernel supports; see `collect/features.rs`):
//! - default: task-local storage (`BPF_MAP_TYPE_TASK_STORAGE` with `bpf_task_storage_get`
//!   and `bpf_get_current_task_btf` from tracing programs, Linux 5.11), freed with its task;
//! - feature `legacy` (5.10): a preallocated hash keyed by thread id. An entry is written
//!   only at a context switch inside a call (or at fork) and deleted when the call returns
//!   and when the task exits, so the common path (no switch) never touches it either way.
//!
//! Every function here runs in the context of the task it names (current), except
//! [`mark_child`], which runs in the parent.

use profiler_common::{Anatomy, EnterState, NR_FORK_CHILD};

use crate::maps::ENTER;

/// The fork marker: the child's first exit (the return from fork/clone) pairs silently.
const FORK_MARKER: EnterState = EnterState {
    ts: 0,
    nr: NR_FORK_CHILD,
    tid: 0,
    regs: 0,
    off_ts: 0,
    generation: u64::MAX,
    args: [0; 3],
    anatomy: Anatomy {
        kind: 0,
        _pad: [0; 3],
        voluntary: 0,
        involuntary: 0,
        kstack: 0,
        runq_ns: 0,
        blocked_ns: 0,
    },
};

/// Takes the current task's moved call (or fork marker) out of its slot, leaving it
/// empty. `None`: the task has no slot (its call began before tracing).
#[inline(always)]
pub(crate) fn take_current(pid_tgid: u64) -> Option<EnterState> {
    imp::take_current(pid_tgid)
}

/// Moves `open`, the call in flight of the task being switched out (`prev`, which is
/// current), to its slot. False when no slot could be had (counted by the caller).
#[inline(always)]
pub(crate) fn save_prev(prev: *const u8, pid_tgid: u64, open: &EnterState) -> bool {
    imp::save_prev(prev, pid_tgid, open)
}

/// The slot of `task` (not current: a task being switched in or woken), if it has one.
/// Its task is not running, and the scheduler holds the task's run-queue lock around both
/// caller (`sched_switch`), so nothing else writes the slot meanwhile.
#[inline(always)]
pub(crate) fn task_slot(task: *const u8) -> Option<&'static mut EnterState> {
    imp::task_slot(task)
}

/// Empties `task`'s slot after its call was moved back to the CPU.
#[inline(always)]
pub(crate) fn release(task: *const u8, slot: &mut EnterState) {
    imp::release(task, slot);
}

/// Gives a new task (`child`) its fork marker.
#[inline(always)]
pub(crate) fn mark_child(child: *const u8) {
    imp::mark_child(child);
}

/// The current task's `sched_info.run_delay` (`off` is its offset in `task_struct`).
#[inline(always)]
pub(crate) fn current_run_delay(off: u32) -> u64 {
    imp::current_run_delay(off)
}

/// At the exit of the current task: empties its slot; true when a call was in flight in
/// it (the task dies inside a syscall).
#[inline(always)]
pub(crate) fn clear_on_exit(pid_tgid: u64) -> bool {
    imp::clear_on_exit(pid_tgid)
}

#[cfg(not(feature = "legacy"))]
mod imp {
    use aya_ebpf::{
        bindings::BPF_LOCAL_STORAGE_GET_F_CREATE,
        helpers::{bpf_get_current_task_btf, generated::bpf_task_storage_get},
    };
    use profiler_common::EnterState;

    use super::{ENTER, FORK_MARKER};

    /// The current task's storage value, if it has one.
    #[inline(always)]
    fn current_slot() -> Option<&'static mut EnterState> {
        // SAFETY: `ENTER` is a task storage map and `bpf_get_current_task_btf` returns a
        // trusted pointer to the current task; the helper returns null or a pointer to a
        // live value that stays valid for the rest of this program run.
        unsafe {
            let task = bpf_get_current_task_btf();
            let p = bpf_task_storage_get(ENTER.as_ptr(), task.cast(), core::ptr::null_mut(), 0);
            p.cast::<EnterState>().as_mut()
        }
    }

    #[inline(always)]
    pub(super) fn task_slot(task: *const u8) -> Option<&'static mut EnterState> {
        // SAFETY: `task` is a BTF-typed task pointer the scheduler tracepoint passes; the
        // helper returns null (no storage: the common case for a task with no call off
        // CPU) or its live value, valid for the rest of this program run.
        unsafe {
            let p = bpf_task_storage_get(
                ENTER.as_ptr(),
                task.cast_mut().cast(),
                core::ptr::null_mut(),
                0,
            );
            p.cast::<EnterState>().as_mut()
        }
    }

    #[inline(always)]
    pub(super) fn release(_task: *const u8, slot: &mut EnterState) {
        // The storage stays with its task; an empty slot is `ts == 0` with no marker.
        slot.ts = 0;
        slot.nr = 0;
    }

    #[inline(always)]
    pub(super) fn take_current(_pid_tgid: u64) -> Option<EnterState> {
        let slot = current_slot()?;
        let found = *slot;
        slot.ts = 0;
        slot.nr = 0;
        Some(found)
    }

    #[inline(always)]
    pub(super) fn save_prev(prev: *const u8, _pid_tgid: u64, open: &EnterState) -> bool {
        // SAFETY: `prev` is the BTF-typed task pointer sched_switch passes; the helper
        // returns null or its live storage value, created if missing.
        let slot = unsafe {
            bpf_task_storage_get(
                ENTER.as_ptr(),
                prev.cast_mut().cast(),
                core::ptr::null_mut(),
                BPF_LOCAL_STORAGE_GET_F_CREATE as u64,
            )
        };
        // SAFETY: as above; the value is an `EnterState`.
        match unsafe { slot.cast::<EnterState>().as_mut() } {
            Some(slot) => {
                *slot = *open;
                true
            }
            None => false,
        }
    }

    #[inline(always)]
    pub(super) fn current_run_delay(off: u32) -> u64 {
        // SAFETY: helper with no arguments; it returns a trusted pointer to current.
        let task = unsafe { bpf_get_current_task_btf() } as *const u8;
        crate::task_field(task, off)
    }

    #[inline(always)]
    pub(super) fn mark_child(child: *const u8) {
        let mut init = FORK_MARKER;
        // SAFETY: `child` is the BTF-typed task pointer sched_process_fork passes; the
        // helper copies `init` into new storage for it.
        unsafe {
            bpf_task_storage_get(
                ENTER.as_ptr(),
                child.cast_mut().cast(),
                core::ptr::from_mut(&mut init).cast(),
                BPF_LOCAL_STORAGE_GET_F_CREATE as u64,
            );
        }
    }

    #[inline(always)]
    pub(super) fn clear_on_exit(_pid_tgid: u64) -> bool {
        match current_slot() {
            Some(slot) if slot.ts != 0 => {
                slot.ts = 0;
                true
            }
            _ => false,
        }
    }
}

#[cfg(feature = "legacy")]
mod imp {
    use aya_ebpf::bindings::BPF_ANY;
    use profiler_common::EnterState;

    use super::{ENTER, FORK_MARKER};
    use crate::maps::{OFF_TASK_PID, constant};

    #[inline(always)]
    pub(super) fn take_current(pid_tgid: u64) -> Option<EnterState> {
        let tid = pid_tgid as u32;
        let p = ENTER.get_ptr(tid)?;
        // SAFETY: a live value of the hash; only this task reads or writes its own entry
        // (it is running here), so nothing changes it under the copy.
        let found = unsafe { core::ptr::read(p) };
        // Deleting keeps the map at one entry per switched-out call.
        let _ = ENTER.remove(tid);
        Some(found)
    }

    /// The thread id of `task` (`task_struct.pid`), the hash's key.
    #[inline(always)]
    fn tid_of(task: *const u8) -> Option<u32> {
        crate::read_kernel::<u32>(task, constant(&OFF_TASK_PID))
    }

    #[inline(always)]
    pub(super) fn task_slot(task: *const u8) -> Option<&'static mut EnterState> {
        let tid = tid_of(task)?;
        let p = ENTER.get_ptr_mut(tid)?;
        // SAFETY: a live value of the hash; see `super::task_slot` for why nothing else
        // writes it meanwhile. Entries are deleted only by their own task or by
        // `release`, which this caller alone would call.
        unsafe { p.as_mut() }
    }

    #[inline(always)]
    pub(super) fn release(task: *const u8, _slot: &mut EnterState) {
        // Deleting keeps the map at one entry per call that is off CPU right now.
        if let Some(tid) = tid_of(task) {
            let _ = ENTER.remove(tid);
        }
    }

    #[inline(always)]
    pub(super) fn save_prev(_prev: *const u8, pid_tgid: u64, open: &EnterState) -> bool {
        ENTER
            .insert(pid_tgid as u32, open, u64::from(BPF_ANY))
            .is_ok()
    }

    #[inline(always)]
    pub(super) fn current_run_delay(off: u32) -> u64 {
        // 5.10 has no `bpf_get_current_task_btf`: a checked read from the untyped pointer.
        // SAFETY: helper with no arguments.
        let task = unsafe { aya_ebpf::helpers::bpf_get_current_task() } as *const u8;
        crate::read_kernel::<u64>(task, off).unwrap_or(0)
    }

    #[inline(always)]
    pub(super) fn mark_child(child: *const u8) {
        // The hash is keyed by thread id, read from the child (`task_struct.pid`).
        if let Some(tid) = tid_of(child) {
            // A full map leaves the child unmarked: its first exit counts as unpaired.
            let _ = ENTER.insert(tid, FORK_MARKER, u64::from(BPF_ANY));
        }
    }

    #[inline(always)]
    pub(super) fn clear_on_exit(pid_tgid: u64) -> bool {
        let tid = pid_tgid as u32;
        let Some(p) = ENTER.get_ptr(tid) else {
            return false;
        };
        // SAFETY: as in `take_current`.
        let in_flight = unsafe { (*p).ts } != 0;
        let _ = ENTER.remove(tid);
        in_flight
    }
}
