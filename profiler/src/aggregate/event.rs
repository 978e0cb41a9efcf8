//! What the aggregator folds: the kernel's records, decoded (`collect` turns call-log slots
//! and ring-buffer records into these, in order).

use profiler_common::{Anatomy, ProcExit, SyscallEvent};

/// One decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A completed call, with where its time went off CPU (all zero when it never left
    /// its CPU).
    Call(SyscallEvent, Anatomy),
    /// A thread group died: its name, and the end of its pid's current generation.
    Exit(ProcExit),
}

impl Event {
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
