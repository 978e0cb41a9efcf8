//! What a collection session traces and which of its calls it counts: plain data, built
//! and validated from the flags by `config`, read by the session and the loader. It holds
//! no I/O, so both sides can use it without importing each other.
#![forbid(unsafe_code)]

use std::{path::PathBuf, time::Duration};

/// What to trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every process.
    All,
    /// These processes and their descendants.
    Pids(Vec<u32>),
    /// These threads only.
    Tids(Vec<u32>),
    /// Processes with these names (now and at every exec).
    Comms(Vec<String>),
    /// A cgroup v2 subtree.
    Cgroup(CgroupTarget),
    /// A command to start.
    Command(Vec<String>),
}

/// A resolved cgroup v2 directory: what `--cgroup` and `--container` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupTarget {
    /// The directory.
    pub path: PathBuf,
    /// Its cgroup id (the directory's inode number).
    pub id: u64,
    /// Its depth below the cgroup v2 root (the root is 0).
    pub level: u32,
}

/// Which calls of the targets are counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// Only these syscall numbers (`-s`).
    pub syscalls: Option<Vec<u32>>,
    /// Only failed calls.
    pub errors_only: bool,
    /// Log calls at least this slow, with their arguments (`record --slow`).
    pub slow: Option<Duration>,
    /// Events carry their cgroup (`--by cgroup`).
    pub by_cgroup: bool,
    /// Events carry their cgroup, mapped to containers by collection (`--by container`).
    pub by_container: bool,
    /// Size of the per-CPU event buffers in bytes, all CPUs together, if not the default.
    pub ring_bytes: Option<u32>,
    /// With a command: SIGKILL it this long after the first signal passed on to it.
    pub kill_after: Option<Duration>,
    /// `--stacks[=DURATION]`: take the stacks of calls at least this slow (zero: every
    /// call).
    pub stacks: Option<Duration>,
}
