//! Types and constants shared by the eBPF programs (`profiler-ebpf`) and user space
//! (`profiler`). Everything here is `#[repr(C)]` plain data with explicit padding, so the
//! byte layout is the same on both sides; nothing here has behaviour.
#![no_std]

/// One completed system call, as written to the ring buffer by `sys_exit`.
///
/// 32 bytes: the smallest record that carries what the histograms need.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallEvent {
    /// Time from `sys_enter` to `sys_exit`, in nanoseconds (`bpf_ktime_get_ns`).
    pub duration_ns: u64,
    /// The raw return value; `-4095..=-1` is an errno.
    pub ret: i64,
    /// Process id (thread-group id) in the initial pid namespace.
    pub tgid: u32,
    /// Thread id in the initial pid namespace.
    pub tid: u32,
    /// Syscall number, taken at `sys_enter` (the exit id may be -1).
    pub nr: u32,
    /// With `--by cgroup`: the low 32 bits of the task's cgroup v2 id (its directory's inode
    /// number; ids are allocated small and cyclically); otherwise zero.
    pub cgroup: u32,
}

const _: () = assert!(core::mem::size_of::<SyscallEvent>() == 32);

/// Per-thread state kept in task-local storage: a call still open when its task was switched
/// out (moved there from the per-CPU open-call slot by `sched_switch`), or the marker a new
/// task gets at fork so that its first exit (from `fork`/`clone`) is not counted as unpaired.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EnterState {
    /// `bpf_ktime_get_ns` at enter; 0 when no call is in flight.
    pub ts: u64,
    /// Syscall number at enter, or [`NR_FORK_CHILD`] for a new task's first exit.
    pub nr: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// The first three syscall arguments, saved only when the slow-call log is on.
    pub args: [u64; 3],
}

const _: () = assert!(core::mem::size_of::<EnterState>() == 40);

/// A completed call slower than `--slow`: written instead of a [`SyscallEvent`] (it starts
/// with one), and told apart by its size.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowEvent {
    /// The call, as for every other.
    pub call: SyscallEvent,
    /// Its first three arguments.
    pub args: [u64; 3],
    /// `bpf_ktime_get_ns` at exit (CLOCK_MONOTONIC).
    pub exit_ns: u64,
    /// For path-taking calls (see `PATH_ARG`), the path argument read from user memory at
    /// exit with a bounded helper: NUL-terminated, truncated; not trusted to be UTF-8.
    pub path: [u8; SLOW_PATH_LEN],
}

/// Bytes of a path kept in a [`SlowEvent`].
pub const SLOW_PATH_LEN: usize = 128;

const _: () = assert!(core::mem::size_of::<SlowEvent>() == 64 + SLOW_PATH_LEN);

/// Marks a task created by a traced parent: its first `sys_exit` is the return from
/// fork/clone in the child, which has no matching enter and is not a loss.
pub const NR_FORK_CHILD: u32 = u32::MAX;

/// Marks a call excluded by the syscall filter: its exit is ignored (not a loss).
pub const NR_IGNORED: u32 = u32::MAX - 2;

/// Most process names `--comm` accepts.
pub const MAX_COMMS: u32 = 8;

/// `SyscallEvent::nr` of a process-exit record: the thread group `tgid` is dead, and
/// `duration_ns` and `ret` hold its 16-byte command name (little endian), NUL-padded.
/// It is not a syscall and is not counted as an emitted event.
pub const NR_PROC_EXIT: u32 = u32::MAX - 1;

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
    // SAFETY: LogPos is repr(C) over u64s; every bit pattern is valid.
    unsafe impl aya::Pod for super::LogPos {}
}
