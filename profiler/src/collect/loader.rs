//! Loads syslat's embedded eBPF object, sets its load-time constants (filter mode, own
//! pid, kernel struct offsets), attaches the programs, and gives typed access to the maps:
//! the target bitmap and its generation, the per-CPU call logs, the ring buffer of rare
//! records and the loss counters.
//!
//! Nothing is pinned: when syslat exits, for any reason including SIGKILL, the kernel
//! closes the file descriptors and detaches every program.

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{Array, MapData, PerCpuArray, RingBuf, StackTraceMap},
    programs::{BtfTracePoint, ProgramError, RawTracePoint, TracePoint},
};
use profiler_common::{
    CONTROL_RING_BYTES, DEFAULT_LOG_BYTES, FRAMES_RING_BYTES, INLINE_STACK_BASE, MAX_COMMS,
    NO_STACK, ProcExit, STACK_DEPTH, STACK_MAP_ENTRIES, SYSCALL_WORDS, SlowEvent, StackFrames,
    counter, filter_mode, kind,
};

use super::{
    calllog::{CallLogs, Generation, slots_per_cpu},
    features::{self, Flavor, KernelFeatures, SyscallHook},
    kernel_btf, privileges,
    stacks::InlineStack,
};
use crate::aggregate::{Batch, Event, LossCounters, StackRef};

/// The eBPF object built by `build.rs`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/syslat.bpf.o"));
/// The same programs built for kernels without task storage in tracing programs, BPF
/// atomic or/and, or the ancestor cgroup helper (`features::Flavor::Legacy`).
static LEGACY_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/syslat-legacy.bpf.o"));

/// Entries of the legacy object's `ENTER` hash: threads switched out inside a traced call
/// at the same moment (plus new tasks not yet returned from fork). A full map counts the
/// call as `no_storage`, never loses it silently.
const LEGACY_ENTER_ENTRIES: u32 = 32_768;

/// Which processes are timed.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Filter {
    /// Every process but syslat.
    #[default]
    All,
    /// Processes added with [`Probe::add_tgid`], and their descendants.
    Tgids,
    /// Threads added with [`Probe::add_tgid`] (thread ids), nothing else.
    Tids,
    /// Every task in a cgroup v2 subtree.
    Cgroup {
        /// Its id (the directory's inode number).
        id: u64,
        /// Its depth below the root (the root is level 0).
        level: u32,
        /// The directory (the legacy object is given an fd of it).
        path: std::path::PathBuf,
    },
}

/// Everything fixed at load time.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Which processes.
    pub filter: Filter,
    /// Only these syscall numbers, if set.
    pub syscalls: Option<Vec<u32>>,
    /// Only failed calls.
    pub errors_only: bool,
    /// With [`Filter::Tgids`]: process names that are (re)targeted at every exec.
    pub comms: Vec<String>,
    /// Calls at least this slow (ns) come with their arguments ([`SlowEvent`]); 0: off.
    pub slow_ns: u64,
    /// Events carry the task's cgroup id.
    pub by_cgroup: bool,
    /// Size in bytes of the per-CPU call logs, all CPUs together; `None`: the default.
    pub ring_bytes: Option<u32>,
    /// Take the user and kernel stacks of calls at least this slow (ns; 0: every call);
    /// `None`: no stacks.
    pub stacks_ns: Option<u64>,
}

/// Why tracing could not start. Each message is one line that names what failed; the
/// kernel's answer is kept as the error's source, and [`LoadError::hint`] says what to do
/// about it (the capabilities for EPERM, what is missing for ENOENT).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not root and lacking capabilities.
    #[error("permission denied: loading eBPF programs needs root, or {0} (try sudo)")]
    NotPermitted(String),
    /// The kernel refused the feature probes themselves (EPERM despite the capabilities
    /// in this process's effective set: a user namespace, a seccomp or LSM policy).
    #[error("the kernel refused a BPF call")]
    Denied(#[source] features::ProbeError),
    /// No usable kernel BTF.
    #[error(transparent)]
    Btf(#[from] kernel_btf::BtfError),
    /// The kernel lacks something no fallback replaces.
    #[error(transparent)]
    Unsupported(#[from] features::Unsupported),
    /// `SYSLAT_SYSCALL_HOOK` names no hook.
    #[error(transparent)]
    Hook(#[from] features::BadHook),
    /// The perf-handled syscall programs cannot read this kernel's event records.
    #[error(transparent)]
    Format(#[from] super::tracepoint_format::FormatError),
    /// aya could not read the kernel's BTF for the tp_btf programs.
    #[error("cannot read the kernel's BTF for the sched programs")]
    AyaBtf(#[source] aya::BtfError),
    /// The number of possible CPUs could not be read.
    #[error("cannot read {path}")]
    Cpus {
        /// The sysfs file.
        path: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The object or one of its maps could not be loaded.
    #[error("failed to load the eBPF object")]
    Object(#[source] aya::EbpfError),
    /// A program is missing from the object.
    #[error("program {0} is missing from the eBPF object")]
    MissingProgram(&'static str),
    /// A program is not of the type syslat loads it as.
    #[error("program {prog} of the eBPF object")]
    Program {
        /// Program name.
        prog: &'static str,
        /// aya's error.
        #[source]
        source: ProgramError,
    },
    /// The verifier rejected a program.
    #[error("the kernel rejected program {prog}{hint}")]
    Verifier {
        /// Program name.
        prog: &'static str,
        /// The syscall error.
        #[source]
        source: std::io::Error,
        /// Where to find the verifier log.
        hint: &'static str,
    },
    /// Attaching failed.
    #[error("failed to attach {prog} to {hook}")]
    Attach {
        /// Program name.
        prog: &'static str,
        /// Hook name.
        hook: &'static str,
        /// aya's error, holding the kernel's answer.
        #[source]
        source: ProgramError,
    },
    /// A map is not in the object or not of the expected type.
    #[error("eBPF map {name} is missing or has the wrong type ({why})")]
    MapShape {
        /// The map.
        name: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A map could not be opened, written or read.
    #[error("eBPF map {0}")]
    Map(&'static str, #[source] aya::maps::MapError),
    /// A map's memory or fd could not be used.
    #[error("eBPF map {name}: cannot {what}")]
    MapIo {
        /// The map.
        name: &'static str,
        /// What failed.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The target set could not be written.
    #[error("failed to add pid {0} to the target set")]
    Target(u32, #[source] aya::maps::MapError),
}

/// What an OS error met while loading or attaching calls for.
const NEEDS_CAPS: &str = "needs root, or CAP_BPF and CAP_PERFMON granted by the host \
     (not only inside a user namespace); before Linux 5.11 also RLIMIT_MEMLOCK above the \
     maps' size (systemd LimitMEMLOCK=infinity, or CAP_SYS_RESOURCE)";

impl LoadError {
    /// Advice for the kernel's answer, to follow the message: the capabilities for EPERM
    /// and EACCES, what is missing for ENOENT. `None` when the message says it all.
    pub fn hint(&self) -> Option<&'static str> {
        let errno = os_error_in(self)?.raw_os_error()?;
        if errno == libc::EPERM || errno == libc::EACCES {
            return Some(NEEDS_CAPS);
        }
        if errno == libc::ENOENT {
            return match self {
                LoadError::Attach { .. } => Some("this kernel has no such tracepoint"),
                LoadError::AyaBtf(_) => Some(
                    "the kernel has no BTF (/sys/kernel/btf/vmlinux): it must be built with \
                     CONFIG_DEBUG_INFO_BTF",
                ),
                LoadError::Verifier { .. } | LoadError::Object(_) => {
                    Some("the kernel lacks a type or function the programs use (see syslat doctor)")
                }
                _ => None,
            };
        }
        None
    }
}

/// The first `io::Error` in `err`'s chain of sources (itself included).
fn os_error_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        next = e.source();
    }
    None
}

/// Most exec notices kept between two drains (the rest are read at first sight instead).
const MAX_EXECS: usize = 1 << 16;

/// The most call-log slots [`Probe::drain`] hands on at once: 8 KiB, so a piece read in
/// place stays in the L1 cache through the passes over it (its calls found, the callers
/// named, the stacks observed, the fold). 4,096 slots (128 KiB) cost 2-3 ns more per call.
pub const DRAIN_BATCH: usize = 256;

/// A CPU's append wakes user space when its call log is this fraction full (1/N): early
/// enough that the rest of the log absorbs a burst while user space wakes up and drains.
const WAKE_FRACTION: u32 = 4;

/// Loaded and attached programs plus their maps. Dropping it detaches everything.
pub struct Probe {
    // Field order matters for drop: maps before the object that owns the programs.
    logs: CallLogs,
    generation: Generation,
    events: RingBuf<MapData>,
    /// The ring buffer's fd again, registered with the runtime: readable when the programs
    /// wake user space (a call log reached its wake-up level, a slow call, a flood of rare
    /// records).
    wake: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    counters: PerCpuArray<MapData, u64>,
    bits: Array<MapData, u64>,
    received: u64,
    slow: Vec<SlowEvent>,
    /// Ring buffer records of the current drain, kept until the call logs are read.
    rare: Vec<Event>,
    /// The stack-trace map, until [`Probe::take_stacks`] hands it on.
    stacks: Option<StackTraceMap<MapData>>,
    /// Processes that exec'd (`--stacks`), since [`Probe::take_execs`].
    execs: Vec<u32>,
    /// The `FRAMES` ring buffer (with `stacks_ns`).
    frames: Option<RingBuf<MapData>>,
    /// Stacks read from it, until handed on with the next batch.
    inline: Vec<InlineStack>,
    _logger: Option<tokio::task::JoinHandle<()>>,
    /// How the syscall programs are hooked.
    hook: SyscallHook,
    ebpf: Ebpf,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

/// `/proc/sys/kernel/pid_max`, or the largest value it can take.
fn pid_max() -> u32 {
    procfs::sys::kernel::pid_max()
        .ok()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(4_194_304)
}

impl Probe {
    /// Loads the programs (not yet attached) with the given options.
    pub fn load(opts: &LoadOptions) -> Result<Self, LoadError> {
        if let Some(missing) = privileges::missing_capabilities() {
            return Err(LoadError::NotPermitted(missing));
        }
        raise_memlock();
        let mut kernel = KernelFeatures::probe();
        // A refused probe says nothing about the kernel: report the refusal, not a feature
        // that seems missing.
        if let Some(i) = kernel.denied() {
            let (_, refused) = kernel.found.swap_remove(i);
            if let Err(e) = refused {
                return Err(LoadError::Denied(e));
            }
        }
        let flavor = kernel.flavor()?;
        log::debug!("loading the {} eBPF object", flavor.name());
        let hook = SyscallHook::current()?;
        log::debug!("syscall programs on {}", hook.name());
        if hook == SyscallHook::Perf {
            super::tracepoint_format::check()?;
        }
        let (offsets, _) = kernel_btf::offsets(kernel.forced)?;
        let words = pid_max().div_ceil(64).max(1);
        let (mode, cgroup_id, cgroup_level) = match opts.filter {
            Filter::All => (filter_mode::ALL, 0u64, 0u32),
            Filter::Tgids => (filter_mode::TGIDS, 0, 0),
            Filter::Tids => (filter_mode::TIDS, 0, 0),
            Filter::Cgroup { id, level, .. } => (filter_mode::CGROUP, id, level),
        };
        let self_tgid = std::process::id();
        let syscall_filter = u32::from(opts.syscalls.is_some());
        let errors_only = u32::from(opts.errors_only);
        let ncomms = opts.comms.len().min(MAX_COMMS as usize) as u32;
        let cpus =
            aya::util::nr_cpus().map_err(|(path, source)| LoadError::Cpus { path, source })? as u32;
        let slots = slots_per_cpu(opts.ring_bytes.unwrap_or(DEFAULT_LOG_BYTES), cpus);
        let exec_nrs =
            ["execve", "execveat"].map(|name| crate::syscalls::number(name).unwrap_or(u32::MAX));
        let stacks_ns = opts.stacks_ns.unwrap_or(u64::MAX);
        let stack_entries = if opts.stacks_ns.is_some() {
            stack_map_entries()
        } else {
            1
        };
        let (by_cgroup, log_wake) = (u32::from(opts.by_cgroup), slots / WAKE_FRACTION);
        let mut loader = EbpfLoader::new();
        if flavor == Flavor::Legacy {
            loader.map_max_entries("ENTER", LEGACY_ENTER_ENTRIES);
        }
        let object = match flavor {
            Flavor::Default => OBJECT,
            Flavor::Legacy => LEGACY_OBJECT,
        };
        let mut ebpf = loader
            // The ENTER task-storage map is a type aya 0.14 does not model.
            .allow_unsupported_maps()
            .override_global("FILTER_MODE", &mode, true)
            .override_global("SELF_TGID", &self_tgid, true)
            .override_global("OFF_TASK_PID", &offsets.task_pid, true)
            .override_global("OFF_TASK_TGID", &offsets.task_tgid, true)
            .override_global("OFF_TASK_SIGNAL", &offsets.task_signal, true)
            .override_global("OFF_TASK_STATE", &offsets.task_state, true)
            .override_global("OFF_TASK_RUN_DELAY", &offsets.task_run_delay, true)
            .override_global("OFF_SIGNAL_LIVE", &offsets.signal_live, true)
            .override_global("SYSCALL_FILTER", &syscall_filter, true)
            .override_global("ERRORS_ONLY", &errors_only, true)
            .override_global("NCOMMS", &ncomms, true)
            .override_global("EXEC_NRS", &exec_nrs, true)
            .override_global("CGROUP_ID", &cgroup_id, true)
            .override_global("CGROUP_LEVEL", &cgroup_level, true)
            .override_global("SLOW_NS", &opts.slow_ns, true)
            .override_global("BY_CGROUP", &by_cgroup, true)
            .override_global("OFF_ARGS", &offsets.args, true)
            .override_global("LOG_SLOTS", &slots, true)
            .override_global("LOG_WAKE", &log_wake, true)
            .override_global("STACKS_NS", &stacks_ns, true)
            .map_max_entries("STACKS", stack_entries)
            .map_max_entries("TGID_BITS", words)
            .map_max_entries("LOG", cpus * slots)
            .map_max_entries("LOG_POS", cpus)
            .map_max_entries("EVENTS", CONTROL_RING_BYTES)
            .map_max_entries(
                "FRAMES",
                if opts.stacks_ns.is_some() {
                    FRAMES_RING_BYTES
                } else {
                    4096
                },
            )
            .load(object)
            .map_err(LoadError::Object)?;
        // The loader holds its own parse of the kernel's BTF (about 12 MiB here):
        // freed before `load_programs` parses it again for the tp_btf programs, so the
        // two copies are never resident at once.
        drop(loader);
        fill_filters(&mut ebpf, opts)?;
        if let (Flavor::Legacy, Filter::Cgroup { path, .. }) = (flavor, &opts.filter) {
            set_target_cgroup(&mut ebpf, path)?;
        }
        let logger = start_logger(&mut ebpf);
        let events = RingBuf::try_from(take_map(&mut ebpf, "EVENTS")?)
            .map_err(|e| LoadError::Map("EVENTS", e))?;
        let wake = std::os::fd::AsFd::as_fd(&events)
            .try_clone_to_owned()
            .and_then(super::exits::register_readable)
            .map_err(|source| LoadError::MapIo {
                name: "EVENTS",
                what: "wait on it",
                source,
            })?;
        let counters = PerCpuArray::try_from(take_map(&mut ebpf, "COUNTERS")?)
            .map_err(|e| LoadError::Map("COUNTERS", e))?;
        let bits = Array::try_from(take_map(&mut ebpf, "TGID_BITS")?)
            .map_err(|e| LoadError::Map("TGID_BITS", e))?;
        let logs = CallLogs::new(
            array_data(&mut ebpf, "LOG")?,
            array_data(&mut ebpf, "LOG_POS")?,
            cpus,
            slots,
        )
        .map_err(|source| LoadError::MapIo {
            name: "LOG",
            what: "map it",
            source,
        })?;
        let (stacks, frames) = match opts.stacks_ns {
            Some(_) => (
                Some(
                    StackTraceMap::try_from(take_map(&mut ebpf, "STACKS")?)
                        .map_err(|e| LoadError::Map("STACKS", e))?,
                ),
                Some(
                    RingBuf::try_from(take_map(&mut ebpf, "FRAMES")?)
                        .map_err(|e| LoadError::Map("FRAMES", e))?,
                ),
            ),
            None => (None, None),
        };
        let generation = Generation::new(
            Array::try_from(take_map(&mut ebpf, ".bss")?).map_err(|e| LoadError::Map(".bss", e))?,
        );
        let mut probe = Probe {
            logs,
            generation,
            events,
            wake,
            counters,
            bits,
            received: 0,
            slow: Vec::new(),
            rare: Vec::new(),
            stacks,
            execs: Vec::new(),
            frames,
            inline: Vec::new(),
            _logger: logger,
            hook,
            ebpf,
        };
        probe.load_programs()?;
        // Both parses of the BTF are freed now.
        super::memory::give_back();
        Ok(probe)
    }

    fn load_programs(&mut self) -> Result<(), LoadError> {
        let btf = Btf::from_sys_fs().map_err(LoadError::AyaBtf)?;
        if self.hook == SyscallHook::Perf {
            for name in ["sys_enter_tp", "sys_exit_tp"] {
                let prog: &mut TracePoint = self.program(name)?;
                prog.load().map_err(|e| verifier_error(name, e))?;
            }
        }
        let raw: &[&'static str] = match self.hook {
            SyscallHook::Raw => &["sys_enter", "sys_exit"],
            SyscallHook::Perf => &[],
        };
        for &name in raw
            .iter()
            .chain(&["sched_process_exit", "sched_process_exec"])
        {
            let prog: &mut RawTracePoint = self.program(name)?;
            prog.load().map_err(|e| verifier_error(name, e))?;
        }
        for name in ["sched_process_fork", "sched_switch"] {
            let prog: &mut BtfTracePoint = self.program(name)?;
            prog.load(name, &btf).map_err(|e| verifier_error(name, e))?;
        }
        Ok(())
    }

    fn program<'a, T>(&'a mut self, name: &'static str) -> Result<&'a mut T, LoadError>
    where
        &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
    {
        let prog = self
            .ebpf
            .program_mut(name)
            .ok_or(LoadError::MissingProgram(name))?;
        prog.try_into()
            .map_err(|source: ProgramError| LoadError::Program { prog: name, source })
    }

    /// Attaches every program: fork and switch tracking first, then exit, enter, process
    /// exit and exec.
    pub fn attach(&mut self) -> Result<(), LoadError> {
        let attach_err =
            |prog, hook, source: ProgramError| LoadError::Attach { prog, hook, source };
        // The switch hook before sys_enter: an open call must never be left on a CPU
        // when its task is switched out.
        for (name, hook) in [
            ("sched_process_fork", "tp_btf/sched_process_fork"),
            ("sched_switch", "tp_btf/sched_switch"),
        ] {
            let p: &mut BtfTracePoint = self.program(name)?;
            p.attach().map_err(|e| attach_err(name, hook, e))?;
        }
        // sys_exit before sys_enter: a call opened must find its exit hooked.
        let raw: &[(&'static str, &'static str)] = match self.hook {
            SyscallHook::Raw => &[
                ("sys_exit", "raw_tp/sys_exit"),
                ("sys_enter", "raw_tp/sys_enter"),
            ],
            SyscallHook::Perf => {
                for (name, event, hook) in [
                    (
                        "sys_exit_tp",
                        "sys_exit",
                        "tracepoint/raw_syscalls/sys_exit",
                    ),
                    (
                        "sys_enter_tp",
                        "sys_enter",
                        "tracepoint/raw_syscalls/sys_enter",
                    ),
                ] {
                    let p: &mut TracePoint = self.program(name)?;
                    p.attach("raw_syscalls", event)
                        .map_err(|e| attach_err(name, hook, e))?;
                }
                &[]
            }
        };
        for &(name, hook) in raw.iter().chain(&[
            ("sched_process_exit", "raw_tp/sched_process_exit"),
            ("sched_process_exec", "raw_tp/sched_process_exec"),
        ]) {
            let p: &mut RawTracePoint = self.program(name)?;
            p.attach(name).map_err(|e| attach_err(name, hook, e))?;
        }
        Ok(())
    }

    /// Adds process `tgid` to the target set (its future children follow automatically);
    /// with [`Filter::Tids`], a thread id.
    pub fn add_tgid(&mut self, tgid: u32) -> Result<(), LoadError> {
        let idx = tgid / 64;
        let err = |e: aya::maps::MapError| LoadError::Target(tgid, e);
        // Read-modify-write from user space: the kernel only ORs in bits of traced
        // parents' children, and targets are added before those exist.
        let word = self.bits.get(&idx, 0).map_err(err)?;
        self.bits
            .set(idx, word | (1u64 << (tgid % 64)), 0)
            .map_err(err)?;
        self.generation.bump().map_err(err)
    }

    /// Waits until the programs wake user space: a CPU's call log reached its wake-up level
    /// (a quarter full), a slow call was written, or rare records fill a quarter of the ring
    /// buffer. Cancel-safe; the caller drains afterwards. Each wake-up is reported once, so
    /// a caller that stops draining is not woken in a loop.
    pub async fn woken(&self) -> std::io::Result<()> {
        let mut ready = self.wake.readable().await?;
        ready.clear_ready();
        Ok(())
    }

    /// Hands every completed call and process-exit record waiting to `fold`: the calls as
    /// pieces of the call logs read in place, at most [`DRAIN_BATCH`] slots each (so the
    /// programs get their slots back early whatever the rate), each with the stacks sent
    /// in the ring buffer since the piece before (`--stacks`): every inline stack a
    /// piece's calls name is among those or handed on earlier. Returns how many.
    ///
    /// The ring buffer (process exits, slow calls) is read first and handed on last: a
    /// process's calls are in the call logs before its exit record is in the ring buffer,
    /// so every call read here comes before the exit record of its process. A piece that
    /// names an inline stack reads the `FRAMES` ring first: the frames were submitted
    /// before the call was published, so they are there by now.
    pub fn drain(&mut self, mut fold: impl FnMut(Batch<'_>, &[InlineStack])) -> usize {
        let mut rare = std::mem::take(&mut self.rare);
        rare.clear();
        self.drain_ring(&mut rare);
        // After the ring: a slow call's frames were sent before it.
        read_frames(&mut self.frames, &mut self.inline);
        let (frames, inline) = (&mut self.frames, &mut self.inline);
        let n = self.logs.drain(DRAIN_BATCH, |slots| {
            let batch = Batch::Slots(slots);
            if frames.is_some() && batch.events().any(|e| names_inline_stack(&e)) {
                read_frames(frames, inline);
            }
            fold(batch, inline);
            inline.clear();
        });
        self.received += n as u64;
        if !rare.is_empty() || !self.inline.is_empty() {
            fold(Batch::Events(&rare), &self.inline);
            self.inline.clear();
        }
        let total = rare.len() + n;
        self.rare = rare;
        total
    }

    /// Appends the ring buffer's records to `out`, in order. Each starts with its kind;
    /// one too short for its kind, or of a kind this build does not know, is skipped.
    fn drain_ring(&mut self, out: &mut Vec<Event>) {
        while let Some(item) = self.events.next() {
            match item.first().copied() {
                Some(kind::PROC_EXIT) if item.len() >= size_of::<ProcExit>() => {
                    // SAFETY: the record holds at least a ProcExit, written by the
                    // programs as one (repr(C), every bit pattern valid); read_unaligned
                    // copes with any alignment.
                    let exit =
                        unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<ProcExit>()) };
                    out.push(Event::Exit(exit));
                }
                Some(kind::SLOW) if item.len() >= size_of::<SlowEvent>() => {
                    // SAFETY: as above, for a SlowEvent.
                    let slow =
                        unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<SlowEvent>()) };
                    self.received += 1;
                    out.push(if slow.stack.user == NO_STACK {
                        Event::Call(slow.call, slow.anatomy)
                    } else {
                        Event::CallStack(
                            slow.call,
                            slow.anatomy,
                            StackRef {
                                user: slow.stack.user,
                                kernel: slow.stack.kernel,
                            },
                        )
                    });
                    self.slow.push(slow);
                }
                // A wake-up marker: it has done its job (woken the reader).
                Some(kind::WAKE) => {
                    // With a tgid in its high half (`--stacks`): that process just exec'd.
                    let tgid = item
                        .get(..8)
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map_or(0, |b| (u64::from_le_bytes(b) >> 32) as u32);
                    if tgid != 0 && self.execs.len() < MAX_EXECS {
                        self.execs.push(tgid);
                    }
                }
                _ => {}
            }
        }
    }

    /// The stack-trace map (with `stacks_ns`), once: its reader resolves the stack ids of
    /// the drained calls.
    pub fn take_stacks(&mut self) -> Option<StackTraceMap<MapData>> {
        self.stacks.take()
    }

    /// Processes that exec'd since the last call (with `stacks_ns`), oldest first.
    pub fn take_execs(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.execs)
    }

    /// Slow calls (with `slow_ns`) drained since the last call; each is also in `drain`'s
    /// output as an ordinary event.
    pub fn take_slow(&mut self) -> Vec<SlowEvent> {
        std::mem::take(&mut self.slow)
    }

    /// Runs of the syscall and switch programs the kernel skipped (see
    /// [`super::prog_stats`]), summed.
    fn skipped_runs(&self) -> u64 {
        [
            "sys_enter",
            "sys_exit",
            "sys_enter_tp",
            "sys_exit_tp",
            "sched_switch",
        ]
        .iter()
        .filter_map(|name| {
            let fd = self.ebpf.program(name)?.fd().ok()?;
            super::prog_stats::recursion_misses(std::os::fd::AsFd::as_fd(fd))
                .map_err(|e| log::debug!("recursion misses of {name}: {e}"))
                .ok()
        })
        .sum()
    }

    /// The loss counters, summed over CPUs, and the count received so far.
    pub fn loss(&self) -> LossCounters {
        let get = |i: u32| -> u64 {
            self.counters
                .get(&i, 0)
                .map(|v| v.iter().sum())
                .unwrap_or(0)
        };
        LossCounters {
            received: self.received,
            emitted: get(counter::EMITTED) + self.logs.written(),
            dropped: get(counter::DROPPED),
            no_storage: get(counter::NO_STORAGE),
            unpaired: get(counter::UNPAIRED),
            stale: get(counter::STALE),
            unfinished: get(counter::UNFINISHED),
            forks_followed: get(counter::FORKS_FOLLOWED),
            skipped: self.skipped_runs(),
        }
    }
}

/// Writes the syscall bitmap and the names into their maps.
fn fill_filters(ebpf: &mut Ebpf, opts: &LoadOptions) -> Result<(), LoadError> {
    if let Some(nrs) = &opts.syscalls {
        let map = ebpf.map_mut("SYSCALL_BITS").ok_or(LoadError::MapShape {
            name: "SYSCALL_BITS",
            why: "not in the object",
        })?;
        let mut bits: Array<&mut MapData, u64> =
            Array::try_from(map).map_err(|e| LoadError::Map("SYSCALL_BITS", e))?;
        let mut words = [0u64; SYSCALL_WORDS as usize];
        for &nr in nrs.iter().filter(|&&nr| nr < SYSCALL_WORDS * 64) {
            words[(nr / 64) as usize] |= 1 << (nr % 64);
        }
        for (i, w) in words.iter().enumerate() {
            bits.set(i as u32, w, 0)
                .map_err(|e| LoadError::Map("SYSCALL_BITS", e))?;
        }
    }
    if opts.slow_ns > 0 {
        let map = ebpf.map_mut("PATH_ARG").ok_or(LoadError::MapShape {
            name: "PATH_ARG",
            why: "not in the object",
        })?;
        let mut table: Array<&mut MapData, u32> =
            Array::try_from(map).map_err(|e| LoadError::Map("PATH_ARG", e))?;
        for (name, arg) in crate::syscalls::PATH_ARGS {
            if let Some(nr) = crate::syscalls::number(name) {
                table
                    .set(nr, arg + 1, 0)
                    .map_err(|e| LoadError::Map("PATH_ARG", e))?;
            }
        }
    }
    if !opts.comms.is_empty() {
        let map = ebpf.map_mut("COMMS").ok_or(LoadError::MapShape {
            name: "COMMS",
            why: "not in the object",
        })?;
        let mut comms: Array<&mut MapData, [u8; 16]> =
            Array::try_from(map).map_err(|e| LoadError::Map("COMMS", e))?;
        for (i, name) in opts.comms.iter().take(MAX_COMMS as usize).enumerate() {
            let mut v = [0u8; 16];
            let b = name.as_bytes();
            v[..b.len().min(15)].copy_from_slice(&b[..b.len().min(15)]);
            comms
                .set(i as u32, v, 0)
                .map_err(|e| LoadError::Map("COMMS", e))?;
        }
    }
    Ok(())
}

/// Puts the `--cgroup` directory in the legacy object's `CGROUPS` slot 0.
fn set_target_cgroup(ebpf: &mut Ebpf, path: &std::path::Path) -> Result<(), LoadError> {
    let dir = std::fs::File::open(path).map_err(|source| LoadError::MapIo {
        name: "CGROUPS",
        what: "open the --cgroup directory",
        source,
    })?;
    let map = ebpf.map_mut("CGROUPS").ok_or(LoadError::MapShape {
        name: "CGROUPS",
        why: "not in the object",
    })?;
    let mut cgroups =
        aya::maps::CgroupArray::try_from(map).map_err(|e| LoadError::Map("CGROUPS", e))?;
    cgroups
        .set(0, dir, 0)
        .map_err(|e| LoadError::Map("CGROUPS", e))
}

/// The data of the plain array map `name`, taken out of the object.
fn array_data(ebpf: &mut Ebpf, name: &'static str) -> Result<MapData, LoadError> {
    match take_map(ebpf, name)? {
        aya::maps::Map::Array(data) => Ok(data),
        _ => Err(LoadError::MapShape {
            name,
            why: "not an array",
        }),
    }
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, LoadError> {
    ebpf.take_map(name).ok_or(LoadError::MapShape {
        name,
        why: "not in the object",
    })
}

fn verifier_error(prog: &'static str, e: ProgramError) -> LoadError {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            for line in tail.into_iter().rev() {
                log::debug!("verifier: {line}");
            }
            LoadError::Verifier {
                prog,
                source: io_error,
                hint: if log::log_enabled!(log::Level::Debug) {
                    " (verifier log above)"
                } else {
                    " (run with -vv for the verifier log)"
                },
            }
        }
        source => LoadError::Program { prog, source },
    }
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; newer ones use the memory cgroup.
/// Failing to raise it is harmless on those, so it is only logged.
fn raise_memlock() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass; no memory is retained.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
    if ret != 0 {
        log::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Forwards the programs' aya-log messages to `log` (shown with `-vv`).
fn start_logger(ebpf: &mut Ebpf) -> Option<tokio::task::JoinHandle<()>> {
    let logger = match aya_log::EbpfLogger::init(ebpf) {
        Ok(l) => l,
        Err(e) => {
            log::debug!("eBPF logger not started: {e}");
            return None;
        }
    };
    // SAFETY: the logger owns its ring buffer fd, which stays open and unchanged until the
    // logger (moved into the AsyncFd) is dropped.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE)
    };
    let mut fd = match registered {
        Ok(fd) => fd,
        Err(e) => {
            log::debug!("eBPF logger not started: {e}");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        loop {
            match fd.readable_mut().await {
                Ok(mut guard) => {
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
                Err(e) => {
                    log::debug!("eBPF logger stopped: {e}");
                    return;
                }
            }
        }
    }))
}

/// Set to a number of entries (1 to `STACK_MAP_ENTRIES`), shrinks the stack-trace map so
/// that stacks collide in it: for the tests of the ring-buffer path of such stacks.
pub const STACK_MAP_ENTRIES_ENV: &str = "SYSLAT_STACK_MAP_ENTRIES";

/// The stack-trace map's size: [`STACK_MAP_ENTRIES`], or [`STACK_MAP_ENTRIES_ENV`]'s.
fn stack_map_entries() -> u32 {
    std::env::var(STACK_MAP_ENTRIES_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(STACK_MAP_ENTRIES, |n| n.clamp(1, STACK_MAP_ENTRIES))
}

/// Reads the `FRAMES` ring (`--stacks`): stacks sent there because their bucket in the
/// stack-trace map was taken, handed on with the next batch.
fn read_frames(frames: &mut Option<RingBuf<MapData>>, inline: &mut Vec<InlineStack>) {
    let Some(ring) = frames.as_mut() else {
        return;
    };
    while let Some(item) = ring.next() {
        if item.first() != Some(&kind::FRAMES) || item.len() < size_of::<StackFrames>() {
            continue;
        }
        // SAFETY: the record holds a StackFrames, written by the programs as one
        // (repr(C), every bit pattern valid); read_unaligned copes with any alignment.
        let rec = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<StackFrames>()) };
        let n = (rec.len as usize / 8).min(STACK_DEPTH);
        inline.push(InlineStack {
            id: rec.id,
            ips: rec.ips[..n].iter().copied().filter(|&ip| ip != 0).collect(),
        });
    }
}

/// Whether `ev` is a call with a stack sent in the ring buffer (see
/// [`profiler_common::INLINE_STACK_BASE`]).
fn names_inline_stack(ev: &Event) -> bool {
    matches!(ev, Event::CallStack(_, _, r) if r.user >= INLINE_STACK_BASE || r.kernel >= INLINE_STACK_BASE)
}

#[cfg(test)]
mod hint_tests {
    use super::*;

    fn attach(errno: i32) -> LoadError {
        LoadError::Attach {
            prog: "sys_enter",
            hook: "raw_tp/sys_enter",
            source: ProgramError::SyscallError(aya::sys::SyscallError {
                call: "bpf_raw_tracepoint_open",
                io_error: std::io::Error::from_raw_os_error(errno),
            }),
        }
    }

    #[test]
    fn the_kernels_answer_picks_the_hint() {
        assert_eq!(attach(libc::EPERM).hint(), Some(NEEDS_CAPS));
        assert_eq!(attach(libc::EACCES).hint(), Some(NEEDS_CAPS));
        assert_eq!(
            attach(libc::ENOENT).hint(),
            Some("this kernel has no such tracepoint")
        );
        assert_eq!(attach(libc::EINVAL).hint(), None);
        let verifier = LoadError::Verifier {
            prog: "sys_exit",
            source: std::io::Error::from_raw_os_error(libc::EPERM),
            hint: "",
        };
        assert_eq!(verifier.hint(), Some(NEEDS_CAPS));
        assert!(NEEDS_CAPS.contains("CAP_BPF and CAP_PERFMON"));
        // The message names the hook; the cause stays the source, for the chain.
        assert_eq!(
            attach(libc::EPERM).to_string(),
            "failed to attach sys_enter to raw_tp/sys_enter"
        );
        let source = std::error::Error::source(&attach(libc::EPERM))
            .map(ToString::to_string)
            .unwrap();
        assert_eq!(source, "`bpf_raw_tracepoint_open` failed");
    }
}
