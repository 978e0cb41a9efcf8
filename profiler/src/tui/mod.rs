//! The live view of `syslat top`: state ([`app`]), pure drawing ([`view`]), keys
//! ([`input`]) and the terminal guard ([`terminal`]). It only reads [`Frame`]s published by
//! the collector; it never touches the kernel, so a slow terminal cannot cause drops.
#![forbid(unsafe_code)]

pub mod app;
pub mod input;
pub mod run;
pub mod terminal;
pub mod view;

use crate::aggregate::{Snapshot, stacks::StackSet};

/// What the collector publishes each interval.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The last interval, per syscall.
    pub interval_syscalls: Snapshot,
    /// The last interval, per process and syscall.
    pub interval_processes: Snapshot,
    /// Since start, per syscall.
    pub total_syscalls: Snapshot,
    /// Since start, per process and syscall.
    pub total_processes: Snapshot,
    /// Seconds since tracing started.
    pub uptime_s: f64,
    /// What is traced, in words.
    pub targets: String,
    /// syslat's own CPU use over the last interval, percent of one CPU.
    pub self_cpu_pct: f64,
    /// syslat's CPU time per traced syscall over the last interval, ns (its cost estimate).
    pub self_ns_per_call: f64,
    /// The traced command's exit status, once it has exited.
    pub finished: Option<i32>,
    /// With `--stacks`: the last interval's calls by stack.
    pub interval_stacks: Option<StackSet>,
    /// With `--stacks`: since start.
    pub total_stacks: Option<StackSet>,
}
