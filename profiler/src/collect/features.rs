//! What the running kernel's BPF supports, probed the way `bpftool feature probe` does (by
//! creating a map or loading a tiny program), and which of syslat's two eBPF objects it
//! can run: the default one, or the legacy one built for 5.10-class kernels
//! (`profiler-ebpf/src/moved.rs`). `SYSLAT_FORCE_FALLBACK=1` picks every fallback on any
//! kernel, so the test suite covers both paths on one machine.
//!
//! Probing loads nothing that stays: every fd is closed before it returns.

use std::os::fd::{FromRawFd as _, OwnedFd};

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported, is_map_supported},
};

/// The environment variable that forces every fallback (for tests and the bench).
pub const FORCE_FALLBACK_ENV: &str = "SYSLAT_FORCE_FALLBACK";

/// Whether [`FORCE_FALLBACK_ENV`] is set to something other than empty or `0`.
pub fn fallback_forced() -> bool {
    std::env::var_os(FORCE_FALLBACK_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The environment variable that picks the syscall hook on any kernel: `raw` or
/// `perf` (for tests and the bench; see [`SyscallHook`]).
pub const SYSCALL_HOOK_ENV: &str = "SYSLAT_SYSCALL_HOOK";

/// How the `raw_syscalls` tracepoints run syslat's syscall programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallHook {
    /// As raw tracepoints (`raw_tp/sys_enter`): the cheapest, and run with preemption
    /// disabled up to 7.1.
    Raw,
    /// Through perf's tracepoint handler (`tracepoint/raw_syscalls/sys_enter`): a few
    /// tens of ns dearer per call, but perf keeps preemption disabled around the program
    /// on 7.2 and later, where a raw tracepoint program may be preempted and the kernel
    /// then skips every other task's run of it on that CPU (`profiler-ebpf/src/cpu.rs`).
    Perf,
}

/// A [`SYSCALL_HOOK_ENV`] value that is neither `raw` nor `perf`.
#[derive(Debug, thiserror::Error)]
#[error("{SYSCALL_HOOK_ENV} must be raw or perf, not {0:?}")]
pub struct BadHook(pub String);

impl SyscallHook {
    /// The first kernel (major, minor) whose raw syscall tracepoints run programs
    /// preemptible.
    pub const PREEMPTIBLE_RAW_SINCE: (u32, u32) = (7, 2);

    /// The hook for a kernel of this `release` (`/proc/sys/kernel/osrelease`), unless
    /// `forced` (the value of [`SYSCALL_HOOK_ENV`]) says otherwise. A release that does
    /// not parse gets the raw hook.
    pub fn choose(release: &str, forced: Option<&str>) -> Result<Self, BadHook> {
        match forced {
            Some("raw") => return Ok(SyscallHook::Raw),
            Some("perf") => return Ok(SyscallHook::Perf),
            Some("") | None => {}
            Some(other) => return Err(BadHook(other.to_string())),
        }
        Ok(match release_version(release) {
            Some(v) if v >= Self::PREEMPTIBLE_RAW_SINCE => SyscallHook::Perf,
            _ => SyscallHook::Raw,
        })
    }

    /// The hook for the running kernel and the environment.
    pub fn current() -> Result<Self, BadHook> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let forced = std::env::var(SYSCALL_HOOK_ENV).ok();
        Self::choose(release.trim(), forced.as_deref())
    }

    /// Its name in `doctor`.
    pub fn name(self) -> &'static str {
        match self {
            SyscallHook::Raw => "raw tracepoints (raw_tp/sys_enter, raw_tp/sys_exit)",
            SyscallHook::Perf => "perf tracepoints (tracepoint/raw_syscalls/sys_{enter,exit})",
        }
    }
}

/// (major, minor) of a kernel release such as `7.3.4+deb13-amd64`.
fn release_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// One kernel feature syslat may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// `BPF_MAP_TYPE_RINGBUF`: required (process exits, slow calls).
    RingBuf,
    /// `BPF_MAP_TYPE_TASK_STORAGE`.
    TaskStorage,
    /// `bpf_task_storage_get` from raw tracepoints.
    TaskStorageHelper,
    /// `bpf_get_current_task_btf` from raw tracepoints.
    CurrentTaskBtf,
    /// `BPF_ATOMIC` with `BPF_OR`/`BPF_AND`.
    AtomicOrAnd,
    /// `bpf_get_current_ancestor_cgroup_id` from raw tracepoints.
    AncestorCgroup,
}

impl Feature {
    /// Every feature, in the order `doctor` lists them.
    pub const ALL: [Feature; 6] = [
        Feature::RingBuf,
        Feature::TaskStorage,
        Feature::TaskStorageHelper,
        Feature::CurrentTaskBtf,
        Feature::AtomicOrAnd,
        Feature::AncestorCgroup,
    ];

    /// What it is, for people.
    pub fn name(self) -> &'static str {
        match self {
            Feature::RingBuf => "BPF ring buffer map",
            Feature::TaskStorage => "task-local storage map",
            Feature::TaskStorageHelper => "bpf_task_storage_get in raw tracepoints",
            Feature::CurrentTaskBtf => "bpf_get_current_task_btf in raw tracepoints",
            Feature::AtomicOrAnd => "BPF atomic or/and instructions",
            Feature::AncestorCgroup => "bpf_get_current_ancestor_cgroup_id in raw tracepoints",
        }
    }

    /// The first mainline kernel that has it (from the kernel sources: the commit that
    /// added the map type, helper or instruction).
    pub fn since(self) -> &'static str {
        match self {
            Feature::RingBuf => "5.8",
            Feature::TaskStorage | Feature::TaskStorageHelper | Feature::CurrentTaskBtf => "5.11",
            Feature::AtomicOrAnd => "5.12",
            // Measured on the kernel matrix: absent on 5.10, present on 6.1.
            Feature::AncestorCgroup => "after 5.10",
        }
    }

    /// What syslat does with it, and without it.
    pub fn used_for(self) -> (&'static str, Option<&'static str>) {
        match self {
            Feature::RingBuf => ("process exits and slow calls", None),
            Feature::TaskStorage | Feature::TaskStorageHelper | Feature::CurrentTaskBtf => (
                "a call switched out mid-syscall waits in its task's storage",
                Some("a hash keyed by thread id, written only at such a switch"),
            ),
            Feature::AtomicOrAnd => (
                "following forks, execs and exits in the target bitmap",
                Some("test-and-add on the bit (each bit has one writer at a time)"),
            ),
            Feature::AncestorCgroup => (
                "--cgroup subtree test",
                Some("bpf_current_task_under_cgroup with a cgroup array (4.9)"),
            ),
        }
    }
}

/// Which eBPF object runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// The default object.
    Default,
    /// The legacy object (feature `legacy` of profiler-ebpf).
    Legacy,
}

impl Flavor {
    /// Its name in `doctor` and `-v` logs.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Default => "default",
            Flavor::Legacy => "legacy (fallbacks)",
        }
    }
}

/// A probe that could not tell: the kernel refused the call itself (EPERM without the
/// capabilities, for one), so the feature may well be there.
#[derive(Debug, thiserror::Error)]
#[error("cannot probe for the {}", .feature.name())]
pub struct ProbeError {
    /// What was probed.
    pub feature: Feature,
    /// aya's error, which holds the failed call's `io::Error`.
    #[source]
    pub source: aya::programs::ProgramError,
}

impl ProbeError {
    /// The OS error the kernel answered the probe with, if it was one.
    pub fn os_error(&self) -> Option<&std::io::Error> {
        match &self.source {
            aya::programs::ProgramError::SyscallError(e) => Some(&e.io_error),
            _ => None,
        }
    }
}

/// The probe results.
#[derive(Debug)]
pub struct KernelFeatures {
    /// Each feature and whether the kernel has it (`Err`: the probe itself failed).
    pub found: Vec<(Feature, Result<bool, ProbeError>)>,
    /// Whether [`FORCE_FALLBACK_ENV`] was set.
    pub forced: bool,
}

/// A required feature is missing: nothing can replace it.
#[derive(Debug, thiserror::Error)]
#[error("this kernel lacks the {} (Linux {} and later), which syslat needs", .0.name(), .0.since())]
pub struct Unsupported(pub Feature);

impl KernelFeatures {
    /// Probes the running kernel.
    pub fn probe() -> Self {
        let found = Feature::ALL
            .iter()
            .map(|&f| (f, probe_one(f)))
            .collect::<Vec<_>>();
        for (f, r) in &found {
            log::debug!("kernel feature {}: {r:?}", f.name());
        }
        KernelFeatures {
            found,
            forced: fallback_forced(),
        }
    }

    /// Whether `f` is there (a failed probe counts as absent).
    pub fn has(&self, f: Feature) -> bool {
        self.found
            .iter()
            .any(|(g, r)| *g == f && matches!(r, Ok(true)))
    }

    /// The first probe the kernel refused with EPERM or EACCES: the probes then say
    /// nothing about the kernel, only that this process may not use BPF.
    /// Its index in [`KernelFeatures::found`].
    pub fn denied(&self) -> Option<usize> {
        self.found.iter().position(|(_, r)| {
            r.as_ref()
                .err()
                .and_then(ProbeError::os_error)
                .and_then(std::io::Error::raw_os_error)
                .is_some_and(|n| n == libc::EPERM || n == libc::EACCES)
        })
    }

    /// The object to load, or the missing feature that nothing replaces.
    pub fn flavor(&self) -> Result<Flavor, Unsupported> {
        if !self.has(Feature::RingBuf) {
            return Err(Unsupported(Feature::RingBuf));
        }
        let modern = Feature::ALL
            .iter()
            .filter(|f| f.used_for().1.is_some())
            .all(|&f| self.has(f));
        Ok(if modern && !self.forced {
            Flavor::Default
        } else {
            Flavor::Legacy
        })
    }
}

fn probe_one(f: Feature) -> Result<bool, ProbeError> {
    let failed = |source| ProbeError { feature: f, source };
    let map = |m: MapType| is_map_supported(m).map_err(|e| failed(e.into()));
    let helper = |h: BpfHelper| is_helper_supported(ProgramType::RawTracePoint, h).map_err(failed);
    match f {
        Feature::RingBuf => map(MapType::RingBuf),
        Feature::TaskStorage => map(MapType::TaskStorage),
        Feature::TaskStorageHelper => helper(BpfHelper::BPF_FUNC_task_storage_get),
        Feature::CurrentTaskBtf => helper(BpfHelper::BPF_FUNC_get_current_task_btf),
        Feature::AncestorCgroup => helper(BpfHelper::BPF_FUNC_get_current_ancestor_cgroup_id),
        Feature::AtomicOrAnd => Ok(atomic_or_loads()),
    }
}

/// `bpf(cmd, attr, sizeof *attr)`, for the commands aya does not expose; its result, or the
/// errno.
///
/// # Safety
/// `attr` must be the `union bpf_attr` head that `cmd` reads, zero-padded, and every
/// pointer in it valid for the kernel to read (or write) for the call's duration.
pub(super) unsafe fn sys_bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<i64> {
    // SAFETY: the caller vouches for `attr`; the kernel reads `size_of::<T>()` bytes of it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_ref(attr),
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

/// The head of `union bpf_attr` for `BPF_PROG_LOAD` (linux/bpf.h), zero-padded: the kernel
/// requires every byte it does not know to be zero.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    _rest: [u64; 8],
}

/// One BPF instruction (`struct bpf_insn`).
#[repr(C)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

/// Whether a socket filter doing `lock *(u64 *)(r10 - 8) |= r1` loads.
fn atomic_or_loads() -> bool {
    const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_OR: i32 = 0x40;
    let insns = [
        // *(u64 *)(r10 - 8) = 0
        Insn {
            code: 0x7a,
            regs: 0x0a,
            off: -8,
            imm: 0,
        },
        // r1 = 1
        Insn {
            code: 0xb7,
            regs: 0x01,
            off: 0,
            imm: 1,
        },
        // lock *(u64 *)(r10 - 8) |= r1   (BPF_STX | BPF_ATOMIC | BPF_DW)
        Insn {
            code: 0xdb,
            regs: 0x1a,
            off: -8,
            imm: BPF_OR,
        },
        // r0 = 0
        Insn {
            code: 0xb7,
            regs: 0x00,
            off: 0,
            imm: 0,
        },
        // exit
        Insn {
            code: 0x95,
            regs: 0,
            off: 0,
            imm: 0,
        },
    ];
    let license = c"GPL";
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        _rest: [0; 8],
    };
    // SAFETY: `attr` is a valid, fully initialised `BPF_PROG_LOAD` attribute whose pointers
    // (instructions, license) outlive the call.
    let fd = match unsafe { sys_bpf(BPF_PROG_LOAD, &attr) } {
        Ok(fd) => fd,
        Err(e) => {
            log::debug!("atomic or probe: {e}");
            return false;
        }
    };
    // SAFETY: a successful BPF_PROG_LOAD returns a new fd that nothing else owns.
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    true
}

#[cfg(test)]
mod hook_tests {
    use super::{SyscallHook, release_version};

    #[test]
    fn releases_parse() {
        assert_eq!(release_version("7.3.4+deb13-amd64"), Some((7, 3)));
        assert_eq!(release_version("6.18.44-fc-v1045"), Some((6, 18)));
        assert_eq!(release_version("5.10.0-35-amd64"), Some((5, 10)));
        assert_eq!(release_version("garbage"), None);
    }

    #[test]
    fn the_hook_follows_the_kernel_unless_forced() {
        let choose = |r, f| SyscallHook::choose(r, f).unwrap();
        assert_eq!(choose("7.1.13+deb13-amd64", None), SyscallHook::Raw);
        assert_eq!(choose("7.2.12+deb13-amd64", None), SyscallHook::Perf);
        assert_eq!(choose("8.0.1", None), SyscallHook::Perf);
        assert_eq!(choose("6.18.44", None), SyscallHook::Raw);
        assert_eq!(choose("6.18.44", Some("perf")), SyscallHook::Perf);
        assert_eq!(choose("7.3.4", Some("raw")), SyscallHook::Raw);
        assert_eq!(choose("7.3.4", Some("")), SyscallHook::Perf);
        assert_eq!(choose("", None), SyscallHook::Raw);
        let err = SyscallHook::choose("6.1", Some("kprobe")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SYSLAT_SYSCALL_HOOK must be raw or perf, not \"kprobe\""
        );
    }
}
