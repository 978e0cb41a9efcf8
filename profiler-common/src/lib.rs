//! Types and constants shared by the eBPF programs (`profiler-ebpf`) and user space
//! (`profiler`). Everything here is `#[repr(C)]` plain data with explicit padding, so the
//! byte layout is the same on both sides; nothing here has behaviour.
#![no_std]

/// What a record is: the first byte of every record in the call log and the ring buffer.
pub mod kind {
    /// A completed call ([`super::SyscallEvent`]) that never left its CPU.
    pub const CALL: u8 = 0;
    /// A completed call that was switched out at least once: the next call-log slot holds
    /// its [`super::Anatomy`].
    pub const CALL_SWITCHED: u8 = 1;
    /// The [`super::Anatomy`] of the call in the slot before.
    pub const ANATOMY: u8 = 2;
    /// A thread group died ([`super::ProcExit`], ring buffer).
    pub const PROC_EXIT: u8 = 3;
    /// A call slower than `--slow` ([`super::SlowEvent`], ring buffer).
    pub const SLOW: u8 = 4;
    /// A wake-up marker (ring buffer, 8 bytes: this kind in the low byte of a `u64`): a
    /// CPU's call log reached its wake-up level. It only wakes the reader, who skips it.
    /// With `--stacks`, a marker with a tgid in its high 32 bits says that process has
    /// just exec'd (its mappings are read then).
    pub const WAKE: u8 = 5;
    /// The [`super::StackIds`] of the call before it (after its anatomy slot when it
    /// switched), present when the call's [`super::SyscallEvent::flags`] has
    /// [`super::flag::STACK`].
    pub const STACK: u8 = 6;
    /// The frames of a stack whose bucket in the stack-trace map held another stack
    /// ([`super::StackFrames`], ring buffer): written before the call that names it.
    pub const FRAMES: u8 = 7;
}

/// Bits of [`SyscallEvent::flags`].
pub mod flag {
    /// A [`super::StackIds`] slot follows the call (after its anatomy slot, if any).
    pub const STACK: u8 = 1;
}

/// One completed system call, as written to the per-CPU call log by `sys_exit`.
///
/// 32 bytes: the smallest record that carries what the histograms need. The kind, the
/// number and the cgroup share the first word, so a record is four 8-byte stores.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallEvent {
    /// [`kind::CALL`], [`kind::CALL_SWITCHED`] or (inside a [`SlowEvent`]) [`kind::SLOW`].
    pub kind: u8,
    /// [`flag`] bits: what follows the call in the call log.
    pub flags: u8,
    /// Syscall number, taken at `sys_enter` (the exit id may be -1); below [`MAX_SYSCALLS`].
    pub nr: u16,
    /// With `--by cgroup`: the low 32 bits of the task's cgroup v2 id (its directory's inode
    /// number; ids are allocated small and cyclically); otherwise zero.
    pub cgroup: u32,
    /// Time from `sys_enter` to `sys_exit`, in nanoseconds (`bpf_ktime_get_ns`).
    pub duration_ns: u64,
    /// The raw return value; `-4095..=-1` is an errno.
    pub ret: i64,
    /// Process id (thread-group id) in the initial pid namespace.
    pub tgid: u32,
    /// Thread id in the initial pid namespace.
    pub tid: u32,
}

const _: () = assert!(core::mem::size_of::<SyscallEvent>() == 32);

/// Where a call's time went while its thread was off CPU: waiting for a CPU while runnable
/// (`runq_ns`: preempted, or woken and not yet running, as the scheduler's
/// `sched_info.run_delay` counts it) and the rest of the time off CPU (`blocked_ns`:
/// sleeping), measured by the `sched_switch` program and split at the return. On-CPU time is the rest of
/// the call's duration. A call that never switched has none (all zero).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Anatomy {
    /// [`kind::ANATOMY`] in the call log; unused elsewhere.
    pub kind: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
    /// Switches out while sleeping (the call blocked).
    pub voluntary: u32,
    /// Switches out while runnable (preempted, or yielded).
    pub involuntary: u32,
    /// With `--stacks`, kernel side only: the id of the kernel stack taken at the last
    /// switch-out (where the call blocked or was preempted), or the helper's negative
    /// errno; it rides with the anatomy through the moves of the call. Not read by user
    /// space (the call's [`StackIds`] carry it).
    pub kstack: i32,
    /// Runnable but not running, ns.
    pub runq_ns: u64,
    /// Sleeping, ns.
    pub blocked_ns: u64,
}

const _: () = assert!(core::mem::size_of::<Anatomy>() == 32);

/// The stacks of a call (`--stacks`), taken at `sys_exit` with `bpf_get_stackid`: ids in
/// the `STACKS` stack-trace map, or a negative errno when the helper failed (`-EFAULT`: no
/// user stack, as for a kernel thread; `-EEXIST`: the map's bucket holds another stack;
/// `-ENOMEM`: the map is full), or [`NO_STACK`] when none was taken.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackIds {
    /// [`kind::STACK`] in the call log; unused elsewhere.
    pub kind: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
    /// The user stack's id (frame-pointer walk from the user registers).
    pub user: i32,
    /// The kernel stack's id.
    pub kernel: i32,
    /// Explicit padding.
    pub _pad2: u32,
    /// Explicit padding to a call-log slot.
    pub _pad3: [u64; 2],
}

impl Default for StackIds {
    fn default() -> Self {
        StackIds {
            kind: kind::STACK,
            _pad: [0; 3],
            user: NO_STACK,
            kernel: NO_STACK,
            _pad2: 0,
            _pad3: [0; 2],
        }
    }
}

const _: () = assert!(core::mem::size_of::<StackIds>() == 32);

/// A stack id that says no stack was taken (stacks off, or the call under the threshold).
pub const NO_STACK: i32 = i32::MIN;

/// Entries of the `STACKS` stack-trace map with `--stacks` (bcc's `profile` uses the
/// same): distinct user and kernel stacks together. The kernel allocates a power of two of
/// buckets of `STACK_DEPTH` frames each (about 17 MiB), only when stacks are on.
pub const STACK_MAP_ENTRIES: u32 = 16_384;

/// Frames kept per stack: the kernel's `PERF_MAX_STACK_DEPTH`. Deeper stacks keep their
/// innermost frames.
pub const STACK_DEPTH: usize = 127;

/// The first id of a stack sent in the ring buffer ([`StackFrames`]) because its bucket in
/// the stack-trace map held another stack (`bpf_get_stackid` failed with `EEXIST`; with
/// a few hundred distinct stacks that happens in several percent of runs). Such an id is
/// `INLINE_STACK_BASE + (cpu % 2^14) * 2^16 + seq`, with `seq` counting that CPU's inline
/// stacks modulo 2^16: unique among those not yet read, and never a map id.
pub const INLINE_STACK_BASE: i32 = STACK_MAP_ENTRIES as i32;

/// A stack's frames, sent in the ring buffer under an id of its own (see
/// [`INLINE_STACK_BASE`]) before the call that names it is published.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackFrames {
    /// [`kind::FRAMES`].
    pub kind: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
    /// The id the call's [`StackIds`] carry.
    pub id: i32,
    /// Bytes of `ips` written (`bpf_get_stack`'s result): 8 per frame.
    pub len: u32,
    /// Explicit padding.
    pub _pad2: u32,
    /// Instruction pointers, innermost first.
    pub ips: [u64; STACK_DEPTH],
}

const _: () = assert!(core::mem::size_of::<StackFrames>() == 16 + 8 * STACK_DEPTH);

/// Bytes of the `FRAMES` ring buffer with `--stacks` (one page without): about 8,000
/// stacks whose bucket was taken between two drains of user space.
pub const FRAMES_RING_BYTES: u32 = 8 << 20;

/// A thread group died (ring buffer): user space learns its name, which it may not have had
/// time to read from /proc, and retires the pid.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcExit {
    /// [`kind::PROC_EXIT`].
    pub kind: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
    /// The thread group.
    pub tgid: u32,
    /// The thread that exited last.
    pub tid: u32,
    /// Explicit padding.
    pub _pad2: u32,
    /// Its command name, NUL-padded; any bytes.
    pub comm: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<ProcExit>() == 32);

/// Per-thread state of a call in flight while its task is off CPU (task-local storage or,
/// on the legacy object, a tid-keyed hash): moved there from the per-CPU open-call slot by
/// `sched_switch` when the task is switched out, moved back when it is switched in, so
/// `sys_exit` finds it on its CPU. Also the marker a new task gets at fork so that its
/// first exit (from `fork`/`clone`) is not counted as unpaired.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EnterState {
    /// `bpf_ktime_get_ns` at enter; 0 when no call is in flight.
    pub ts: u64,
    /// Syscall number at enter, or [`NR_FORK_CHILD`] for a new task's first exit.
    pub nr: u32,
    /// Thread id of the caller.
    pub tid: u32,
    /// The caller's `regs` (the syscall tracepoints' first argument).
    pub regs: u64,
    /// `bpf_ktime_get_ns` when the task was switched out; 0 while on CPU.
    pub off_ts: u64,
    /// The target set's generation under which the task was found targeted at the switch
    /// out (`u64::MAX`: not known): while it is unchanged, the switch in can tell the CPU's
    /// identity memo who the task is.
    pub generation: u64,
    /// The first three syscall arguments, saved only when the slow-call log is on.
    pub args: [u64; 3],
    /// The call's time off CPU so far, in `blocked_ns` (split at the return: see
    /// `Anatomy`'s use in the kernel programs), and in `runq_ns` the task's
    /// `sched_info.run_delay` when the call first left the CPU.
    pub anatomy: Anatomy,
}

const _: () = assert!(core::mem::size_of::<EnterState>() == 96);

/// A completed call slower than `--slow`: written to the ring buffer instead of the call
/// log, with its kind [`kind::SLOW`] in `call.kind`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowEvent {
    /// The call, as for every other.
    pub call: SyscallEvent,
    /// Where its time went off CPU.
    pub anatomy: Anatomy,
    /// Its first three arguments.
    pub args: [u64; 3],
    /// `bpf_ktime_get_ns` at exit (CLOCK_MONOTONIC).
    pub exit_ns: u64,
    /// For path-taking calls (see `PATH_ARG`), the path argument read from user memory at
    /// exit with a bounded helper: NUL-terminated, truncated; not trusted to be UTF-8.
    pub path: [u8; SLOW_PATH_LEN],
    /// Its stacks with `--stacks` (its `kind` unused), else both [`NO_STACK`].
    pub stack: StackIds,
}

/// Bytes of a path kept in a [`SlowEvent`].
pub const SLOW_PATH_LEN: usize = 128;

const _: () = assert!(core::mem::size_of::<SlowEvent>() == 128 + SLOW_PATH_LEN);

/// Marks a task created by a traced parent: its first `sys_exit` is the return from
/// fork/clone in the child, which has no matching enter and is not a loss.
pub const NR_FORK_CHILD: u32 = u32::MAX;

/// Marks a call excluded by the syscall filter: its exit is ignored (not a loss).
pub const NR_IGNORED: u32 = u32::MAX - 2;

/// Most process names `--comm` accepts.
pub const MAX_COMMS: u32 = 8;

/// Syscall numbers at or above this are ignored (no architecture has this many).
pub const MAX_SYSCALLS: u32 = 1024;

/// `FILTER_MODE` values: which processes the programs time.
pub mod filter_mode {
    /// Every process except syslat itself.
    pub const ALL: u32 = 0;
    /// Only processes whose tgid bit is set in `TGID_BITS` (descendants are added at fork).
    pub const TGIDS: u32 = 1;
    /// Only threads whose tid bit is set in `TGID_BITS` (new threads are not added).
    pub const TIDS: u32 = 2;
    /// Only tasks in the cgroup v2 subtree `CGROUP_ID` at level `CGROUP_LEVEL`.
    pub const CGROUP: u32 = 3;
}

/// Size of the syscall filter bitmap, in 64-bit words.
pub const SYSCALL_WORDS: u32 = MAX_SYSCALLS / 64;

/// Indices into the per-CPU `COUNTERS` array.
pub mod counter {
    /// Slow calls written to the ring buffer (calls in the call log are counted by its
    /// heads).
    pub const EMITTED: u32 = 0;
    /// Completed calls lost because the call log (or, for slow calls, the ring buffer) was
    /// full.
    pub const DROPPED: u32 = 1;
    /// Exits of targeted threads with no recorded enter (in flight when tracing started).
    pub const UNPAIRED: u32 = 2;
    /// Enters that found a previous call still open (its exit was never seen).
    pub const STALE: u32 = 3;
    /// Enters whose per-thread slot could not be allocated (the call is not timed).
    pub const NO_STORAGE: u32 = 4;
    /// Threads that exited inside a syscall (`exit`, `exit_group`, or killed).
    pub const UNFINISHED: u32 = 5;
    /// Child processes added to the target set at fork.
    pub const FORKS_FOLLOWED: u32 = 6;
    /// Number of counters.
    pub const COUNT: u32 = 7;
}

/// One CPU's positions in the per-CPU call log (`LOG`): `head` is written only by that CPU's
/// `sys_exit`, `tail` only by user space, each on its own cache line. Both count records
/// ever written / consumed, so `head - tail` is the fill level and `head` the emitted total.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LogPos {
    /// Records written by the programs on this CPU.
    pub head: u64,
    /// Padding to a cache line.
    pub _pad0: [u64; 7],
    /// Records consumed by user space.
    pub tail: u64,
    /// Padding to a cache line.
    pub _pad1: [u64; 7],
}

const _: () = assert!(core::mem::size_of::<LogPos>() == 128);

/// Offset of [`LogPos::head`] in bytes (user space reads it through a shared mapping).
pub const LOG_HEAD_OFFSET: usize = 0;
/// Offset of [`LogPos::tail`] in bytes.
pub const LOG_TAIL_OFFSET: usize = 64;

/// Fewest records per CPU in the call log.
pub const MIN_LOG_SLOTS: u32 = 64;

/// Default size in bytes of the per-CPU call logs, all CPUs together (a power of two): 256 Ki
/// calls, over 100 ms of headroom at 2 million calls a second with a 10 ms drain.
pub const DEFAULT_LOG_BYTES: u32 = 8 << 20;

/// Size in bytes of the ring buffer for rare records (process exits, slow calls).
pub const CONTROL_RING_BYTES: u32 = 1 << 20;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: SyscallEvent is repr(C), has explicit padding, and every bit pattern is valid.
    unsafe impl aya::Pod for super::SyscallEvent {}
    // SAFETY: EnterState is repr(C), has explicit padding, and every bit pattern is valid.
    unsafe impl aya::Pod for super::EnterState {}
    // SAFETY: SlowEvent is repr(C) over u64s and a SyscallEvent; every bit pattern is valid.
    unsafe impl aya::Pod for super::SlowEvent {}
    // SAFETY: Anatomy is repr(C) over integers with explicit padding; every bit pattern is
    // valid.
    unsafe impl aya::Pod for super::Anatomy {}
    // SAFETY: StackIds is repr(C) over integers with explicit padding; every bit pattern
    // is valid.
    unsafe impl aya::Pod for super::StackIds {}
    // SAFETY: ProcExit is repr(C) over integers and bytes with explicit padding; every bit
    // pattern is valid.
    unsafe impl aya::Pod for super::ProcExit {}
    // SAFETY: LogPos is repr(C) over u64s; every bit pattern is valid.
    unsafe impl aya::Pod for super::LogPos {}
}
