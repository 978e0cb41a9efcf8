//! The maps shared by syslat's programs, and the load-time constants user space sets.
//! Map names stay under 16 bytes (the kernel keeps 15 characters and a NUL).

#[cfg(not(feature = "legacy"))]
use aya_ebpf::bindings::{BPF_F_NO_PREALLOC, bpf_map_type::BPF_MAP_TYPE_TASK_STORAGE};
#[cfg(feature = "legacy")]
use aya_ebpf::btf_maps::{CgroupArray, HashMap};
use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    btf_maps::{Array, PerCpuArray, RingBuf, StackTrace},
    macros::btf_map,
};
use profiler_common::{
    CONTROL_RING_BYTES, EnterState, LogPos, MAX_COMMS, MAX_SYSCALLS, STACK_DEPTH, SYSCALL_WORDS,
    StackFrames, SyscallEvent, counter,
};

/// `BPF_F_MMAPABLE` as the btf map definitions' const parameter.
const MMAPABLE: usize = BPF_F_MMAPABLE as usize;

#[cfg(not(feature = "legacy"))]
/// A BTF definition of a `BPF_MAP_TYPE_TASK_STORAGE` map, which aya-ebpf 0.2 lacks.
///
/// The fields are never read: the loader reads their *types* from BTF (`type`, `key`,
/// `value`, `max_entries` and `map_flags` encoded as pointer-to-array lengths, the libbpf
/// convention). Task storage is freed with its task, so a thread that dies inside a syscall
/// leaves nothing behind, and it needs no capacity planning.
#[repr(C)]
pub(crate) struct TaskStorage<T> {
    r#type: *const [i32; BPF_MAP_TYPE_TASK_STORAGE as usize],
    key: *const i32,
    value: *const T,
    max_entries: *const [i32; 0],
    map_flags: *const [i32; BPF_F_NO_PREALLOC as usize],
}

#[cfg(not(feature = "legacy"))]
// SAFETY: the fields are null placeholders that are never dereferenced; the kernel owns the
// map. `Sync` is required for a static.
unsafe impl<T> Sync for TaskStorage<T> {}

#[cfg(not(feature = "legacy"))]
impl<T> TaskStorage<T> {
    const fn new() -> Self {
        Self {
            r#type: core::ptr::null(),
            key: core::ptr::null(),
            value: core::ptr::null(),
            max_entries: core::ptr::null(),
            map_flags: core::ptr::null(),
        }
    }

    /// The map pointer the storage helpers take.
    #[inline(always)]
    pub(crate) fn as_ptr(&self) -> *mut core::ffi::c_void {
        core::ptr::from_ref(self).cast_mut().cast()
    }
}

/// Per-thread enter state of a call moved off its CPU at a context switch, and fork
/// markers (`moved.rs`).
#[cfg(not(feature = "legacy"))]
#[btf_map]
pub(crate) static ENTER: TaskStorage<EnterState> = TaskStorage::new();

/// The legacy object's `ENTER` (kernels without task storage in tracing programs, 5.10):
/// a preallocated hash keyed by thread id, sized by user space at load time. Entries are
/// deleted when the call returns and when the task exits, so it holds at most one entry
/// per thread that is switched out inside a syscall (or not yet returned from fork).
#[cfg(feature = "legacy")]
#[btf_map]
pub(crate) static ENTER: HashMap<u32, EnterState, 1> = HashMap::new();

/// The legacy object's `--cgroup` target: slot 0 holds the cgroup v2 directory, tested
/// with `bpf_current_task_under_cgroup` (raw tracepoints of 5.10 lack
/// `bpf_get_current_ancestor_cgroup_id`).
#[cfg(feature = "legacy")]
#[btf_map]
pub(crate) static CGROUPS: CgroupArray<1> = CgroupArray::new();

/// Rare records: process exits (no wake-up unless the ring is a quarter full), slow calls
/// (`SlowEvent`, the kernel's adaptive wake-up: only when user space has read everything
/// before), and 8-byte wake-up markers (`calllog::wake_user`) that user space skips. User
/// space sleeps on this ring's fd.
#[btf_map]
pub(crate) static EVENTS: RingBuf<SyscallEvent, { CONTROL_RING_BYTES as usize }> = RingBuf::new();

/// The per-CPU call logs: CPU `c` owns entries `c * LOG_SLOTS ..` as a single-producer
/// ring. User space maps the array and reads it in place. Sized at load time
/// (`cpus * LOG_SLOTS`); a plain store per call instead of a ring-buffer reservation (three
/// helper calls and a lock shared by all CPUs).
#[btf_map]
pub(crate) static LOG: Array<SyscallEvent, 1, MMAPABLE> = Array::new();

/// Each CPU's head and tail in `LOG`.
#[btf_map]
pub(crate) static LOG_POS: Array<LogPos, 1, MMAPABLE> = Array::new();

/// Records per CPU in `LOG` (a power of two).
#[unsafe(no_mangle)]
pub(crate) static LOG_SLOTS: u32 = 0;

/// The fill level of a CPU's log (records waiting, the append's own included) at which the
/// append that reaches it wakes user space (`calllog::wake_user`). User space sets a quarter
/// of `LOG_SLOTS` and otherwise sleeps for long stretches, so an idle machine costs it
/// almost nothing while a burst still leaves three quarters of the log as headroom. The
/// fill rises by one or two per append, so each rise reaches this level exactly once: one
/// wake-up per drain cycle and CPU.
#[unsafe(no_mangle)]
pub(crate) static LOG_WAKE: u32 = u32::MAX;

/// The target-set generation: bumped whenever the answer to "is this task targeted, and
/// what is its pid?" may have changed for some task: a target added or removed, an exec, a
/// task exit. A global (in `.bss`) rather than a map, so reading it is one load instead of
/// a lookup. The programs bump it with an atomic add; user space, which can only rewrite
/// the whole value, writes what it read plus 2^32, a value never seen before, so a bump of
/// ours that races with its write can never bring back an old stamp.
#[unsafe(no_mangle)]
pub(crate) static mut GENERATION: u64 = 0;

/// Per-CPU state: the identity memo and the open call of the running task (`cpu.rs`).
#[btf_map]
pub(crate) static CPU: PerCpuArray<crate::cpu::CpuState, 1> = PerCpuArray::new();

/// Loss and bookkeeping counters, indexed by `profiler_common::counter`.
#[btf_map]
pub(crate) static COUNTERS: PerCpuArray<u64, { counter::COUNT as usize }> = PerCpuArray::new();

/// Bitmap of targeted tgids: bit `tgid % 64` of word `tgid / 64`. User space sizes it from
/// `/proc/sys/kernel/pid_max`. An array lookup is inlined by the verifier, so an untargeted
/// process pays a few instructions, not a hash.
#[btf_map]
pub(crate) static TGID_BITS: Array<u64, 512> = Array::new();

/// Syscalls to time when `SYSCALL_FILTER` is set: bit `nr % 64` of word `nr / 64`.
#[btf_map]
pub(crate) static SYSCALL_BITS: Array<u64, { SYSCALL_WORDS as usize }> = Array::new();

/// Process names for `--comm` (NUL-padded), the first `NCOMMS` entries used.
#[btf_map]
pub(crate) static COMMS: Array<[u8; 16], { MAX_COMMS as usize }> = Array::new();

/// Whether `SYSCALL_BITS` restricts the syscalls timed.
#[unsafe(no_mangle)]
pub(crate) static SYSCALL_FILTER: u32 = 0;
/// Whether only failed calls are reported.
#[unsafe(no_mangle)]
pub(crate) static ERRORS_ONLY: u32 = 0;
/// The numbers of execve and execveat on this architecture (for `--comm`).
#[unsafe(no_mangle)]
pub(crate) static EXEC_NRS: [u32; 2] = [u32::MAX; 2];
/// Number of names in `COMMS`; when non-zero, an exec sets or clears the tgid bit by name.
#[unsafe(no_mangle)]
pub(crate) static NCOMMS: u32 = 0;
/// cgroup v2 id (directory inode) for `filter_mode::CGROUP`.
#[unsafe(no_mangle)]
pub(crate) static CGROUP_ID: u64 = 0;
/// Depth of that cgroup below the root (the root is level 0).
#[unsafe(no_mangle)]
pub(crate) static CGROUP_LEVEL: u32 = 0;

/// Whether events carry the task's cgroup id (`--by cgroup`).
#[unsafe(no_mangle)]
pub(crate) static BY_CGROUP: u32 = 0;
/// For the slow-call log: which argument of syscall `nr` is a path (1-based; 0: none).
#[btf_map]
pub(crate) static PATH_ARG: Array<u32, { MAX_SYSCALLS as usize }> = Array::new();

/// Calls at least this slow (ns) are written as `SlowEvent`s with their arguments; 0: off.
#[unsafe(no_mangle)]
pub(crate) static SLOW_NS: u64 = 0;
/// Calls at least this slow (ns) have their user and kernel stacks taken (`--stacks`);
/// `u64::MAX`: off (the verifier then drops the whole path), 0: every call.
#[unsafe(no_mangle)]
pub(crate) static STACKS_NS: u64 = u64::MAX;

/// The stacks taken with `--stacks`, user and kernel alike: a hash of frame arrays, so a
/// stack seen again costs its id only. Sized at load time (`STACK_MAP_ENTRIES`, or 1 when
/// stacks are off); entries are never deleted, so an id always names the same stack.
#[btf_map]
pub(crate) static STACKS: StackTrace<1, 0, STACK_DEPTH> = StackTrace::new();

/// Stacks whose bucket in `STACKS` held another stack (`profiler_common::StackFrames`):
/// apart from `EVENTS`, so that a flood of them cannot crowd out exit records and slow
/// calls. Sized at load time (`FRAMES_RING_BYTES`, or a page without `--stacks`); no
/// wake-ups: user space reads it whenever it reads a call that names one.
#[btf_map]
pub(crate) static FRAMES: RingBuf<StackFrames, 4096> = RingBuf::new();

/// Per-CPU count of the stacks sent in the ring buffer because their bucket was taken
/// (`inline_stack` in `main.rs`): the low half of their ids.
#[btf_map]
pub(crate) static INLINE_SEQ: PerCpuArray<u32, 1> = PerCpuArray::new();

/// Byte offsets of the first three syscall arguments in `struct pt_regs` (from BTF).
#[unsafe(no_mangle)]
pub(crate) static OFF_ARGS: [u32; 3] = [0; 3];

/// Which processes to time: `profiler_common::filter_mode`.
#[unsafe(no_mangle)]
pub(crate) static FILTER_MODE: u32 = 0;
/// syslat's own tgid, never traced in `filter_mode::ALL`.
#[unsafe(no_mangle)]
pub(crate) static SELF_TGID: u32 = 0;
/// Byte offset of `task_struct.tgid`, read from the kernel's BTF by user space.
#[unsafe(no_mangle)]
pub(crate) static OFF_TASK_TGID: u32 = 0;
/// Byte offset of `task_struct.pid` (the thread id; the legacy object keys `ENTER` by it).
#[unsafe(no_mangle)]
pub(crate) static OFF_TASK_PID: u32 = 0;
/// Byte offset of `task_struct.__state` (`state` before 5.14): 0 is `TASK_RUNNING`.
#[unsafe(no_mangle)]
pub(crate) static OFF_TASK_STATE: u32 = 0;
/// Byte offset of `task_struct.sched_info.run_delay` (the scheduler's total run-queue wait of
/// the task, what `/proc/PID/schedstat` shows second); 0 when the kernel has no
/// `CONFIG_SCHED_INFO`.
#[unsafe(no_mangle)]
pub(crate) static OFF_TASK_RUN_DELAY: u32 = 0;
/// Byte offset of `task_struct.signal`.
#[unsafe(no_mangle)]
pub(crate) static OFF_TASK_SIGNAL: u32 = 0;
/// Byte offset of `signal_struct.live`.
#[unsafe(no_mangle)]
pub(crate) static OFF_SIGNAL_LIVE: u32 = 0;

/// Reads a load-time constant. `read_volatile` keeps the compiler from folding the
/// placeholder value; the verifier then sees the real, frozen value and prunes dead branches.
#[inline(always)]
pub(crate) fn constant(c: &'static u32) -> u32 {
    // SAFETY: `c` is a valid, aligned static.
    unsafe { core::ptr::read_volatile(c) }
}

/// Reads a 64-bit load-time constant (see [`constant`]).
#[inline(always)]
pub(crate) fn constant64(c: &'static u64) -> u64 {
    // SAFETY: `c` is a valid, aligned static.
    unsafe { core::ptr::read_volatile(c) }
}

/// Adds one to a per-CPU counter with an atomic add, so a program preempted on this CPU
/// (the syscall programs may be, from 7.2: see `cpu.rs`) cannot lose an increment.
#[inline(always)]
pub(crate) fn bump(index: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(index) {
        crate::atomic::add(p, 1);
    }
}

/// Submit flags for a record that needs no prompt reader (a process exit): no wake-up,
/// unless the ring is already a quarter full, so a flood of them cannot overflow it while
/// user space sleeps.
#[inline(always)]
pub(crate) fn rare_wakeup_flags() -> u64 {
    // SAFETY: EVENTS is a ring buffer map; the helper only reads its positions.
    let waiting = unsafe {
        aya_ebpf::helpers::generated::bpf_ringbuf_query(
            core::ptr::from_ref(&EVENTS).cast_mut().cast(),
            u64::from(aya_ebpf::bindings::BPF_RB_AVAIL_DATA),
        )
    };
    if waiting >= u64::from(CONTROL_RING_BYTES / 4) {
        u64::from(aya_ebpf::bindings::BPF_RB_FORCE_WAKEUP)
    } else {
        u64::from(aya_ebpf::bindings::BPF_RB_NO_WAKEUP)
    }
}
