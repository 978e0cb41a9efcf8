//! What the aggregator folds: the kernel's records, decoded (`collect` turns call-log slots
//! and ring-buffer records into these, in order).

use profiler_common::{Anatomy, ProcExit, SyscallEvent};

/// One decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A completed call, with where its time went off CPU (all zero when it never left
    /// its CPU).
    Call(SyscallEvent, Anatomy),
    /// A completed call whose stacks were taken (`--stacks`): as [`Event::Call`], with the
    /// ids of its stacks (symbolized by `collect::stacks`).
    CallStack(SyscallEvent, Anatomy, StackRef),
    /// A thread group died: its name, and the end of its pid's current generation.
    Exit(ProcExit),
}

/// A call's stack ids in the kernel's stack-trace map: non-negative ids, or the negative
/// errno of the helper that failed to take the stack (`profiler_common::StackIds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackRef {
    /// The user stack.
    pub user: i32,
    /// The kernel stack.
    pub kernel: i32,
}

impl Event {
    /// The call, if this is one (with or without stacks).
    pub fn as_call(&self) -> Option<(&SyscallEvent, &Anatomy)> {
        match self {
            Event::Call(c, a) | Event::CallStack(c, a, _) => Some((c, a)),
            Event::Exit(_) => None,
        }
    }

    /// A call that never left its CPU.
    pub fn call(ev: SyscallEvent) -> Self {
        Event::Call(ev, Anatomy::default())
    }

    /// A process-exit record for `tgid` named `name` (at most 16 bytes are kept).
    pub fn exit(tgid: u32, name: &[u8]) -> Self {
        let mut comm = [0u8; 16];
        let n = name.len().min(16);
        comm[..n].copy_from_slice(&name[..n]);
        Event::Exit(ProcExit {
            tgid,
            tid: tgid,
            comm,
            ..ProcExit::default()
        })
    }
}

/// The NUL-padded command name of a process-exit record, as text (invalid UTF-8 replaced;
/// presenters escape what they print).
pub fn comm_name(comm: &[u8; 16]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&comm[..end]).into_owned()
}
