//! What the aggregator folds: the kernel's records, either decoded ([`Event`]: `collect`
//! turns ring-buffer records into these) or call-log slots read in place ([`Slot`]: the
//! common case, folded without a copy), handed on in order as a [`Batch`].

use profiler_common::{Anatomy, ProcExit, StackIds, SyscallEvent, flag, kind};

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

/// One 32-byte call-log slot as the programs wrote it, read as four little-endian words: a
/// [`SyscallEvent`], followed by its [`Anatomy`] slot when the call was switched out
/// ([`kind::CALL_SWITCHED`]) and then by its [`StackIds`] slot when it has
/// [`flag::STACK`]. The decoders below take the fields at their `repr(C)` offsets, so no
/// slot is copied into an [`Event`] on the way to a histogram.
pub type Slot = [u64; 4];

/// What a batch of records is.
#[derive(Clone, Copy, Debug)]
pub enum Batch<'a> {
    /// Decoded records: process exits, slow calls, or rewritten calls.
    Events(&'a [Event]),
    /// Call-log slots, starting at a call and ending after the last slot of a call.
    Slots(&'a [Slot]),
}

/// One record of a batch, and how many slots or events it took.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Record<'a> {
    /// A completed call with its time off CPU and its stacks, if taken.
    Call(SyscallEvent, Anatomy, Option<StackRef>),
    /// A process exit.
    Exit(&'a ProcExit),
    /// Nothing to fold: a slot that is not the start of a complete call.
    Skip,
}

/// The call a slot holds.
#[inline]
pub(super) fn slot_call(w: &Slot) -> SyscallEvent {
    SyscallEvent {
        kind: w[0] as u8,
        flags: (w[0] >> 8) as u8,
        nr: (w[0] >> 16) as u16,
        cgroup: (w[0] >> 32) as u32,
        duration_ns: w[1],
        ret: w[2] as i64,
        tgid: w[3] as u32,
        tid: (w[3] >> 32) as u32,
    }
}

/// The anatomy a slot holds.
#[inline]
fn slot_anatomy(w: &Slot) -> Anatomy {
    Anatomy {
        kind: w[0] as u8,
        _pad: [0; 3],
        voluntary: (w[0] >> 32) as u32,
        involuntary: w[1] as u32,
        kstack: (w[1] >> 32) as i32,
        runq_ns: w[2],
        blocked_ns: w[3],
    }
}

/// The stack ids a slot holds.
#[inline]
fn slot_stack(w: &Slot) -> StackIds {
    StackIds {
        kind: w[0] as u8,
        user: (w[0] >> 32) as i32,
        kernel: w[1] as i32,
        ..StackIds::default()
    }
}

/// A call as its slot: the inverse of [`slot_call`].
#[cfg(test)]
pub fn call_slot(c: &SyscallEvent) -> Slot {
    [
        u64::from(c.kind)
            | u64::from(c.flags) << 8
            | u64::from(c.nr) << 16
            | u64::from(c.cgroup) << 32,
        c.duration_ns,
        c.ret as u64,
        u64::from(c.tgid) | u64::from(c.tid) << 32,
    ]
}

/// An anatomy as its slot: the inverse of [`slot_anatomy`].
#[cfg(test)]
pub fn anatomy_slot(a: &Anatomy) -> Slot {
    [
        u64::from(a.kind) | u64::from(a.voluntary) << 32,
        u64::from(a.involuntary) | u64::from(a.kstack as u32) << 32,
        a.runq_ns,
        a.blocked_ns,
    ]
}

/// Stack ids as their slot: the inverse of [`slot_stack`].
#[cfg(test)]
pub fn stack_slot(s: &StackIds) -> Slot {
    [
        u64::from(s.kind) | u64::from(s.user as u32) << 32,
        u64::from(s.kernel as u32),
        0,
        0,
    ]
}

/// How many slots the record starting at `w` takes (1 for a slot that starts no call).
#[inline]
pub fn slot_width(w: &Slot) -> usize {
    let (k, f) = (w[0] as u8, (w[0] >> 8) as u8);
    match k {
        kind::CALL | kind::CALL_SWITCHED => {
            1 + usize::from(k == kind::CALL_SWITCHED) + usize::from(f & flag::STACK != 0)
        }
        _ => 1,
    }
}

/// Calls `f` with the process (tgid) of each call of `slots`, once for a run of calls
/// from one process: a look at two words of each slot.
pub fn each_caller(slots: &[Slot], mut f: impl FnMut(u32)) {
    // No process has this id (pids are below 2^22).
    let mut last = u32::MAX;
    for w in slots {
        let tgid = w[3] as u32;
        // Only a call's first slot has one of these kinds.
        if tgid != last && matches!(w[0] as u8, kind::CALL | kind::CALL_SWITCHED) {
            f(tgid);
            last = tgid;
        }
    }
}

impl<'a> Batch<'a> {
    /// How many events or slots.
    pub(crate) fn len(&self) -> usize {
        match self {
            Batch::Events(e) => e.len(),
            Batch::Slots(s) => s.len(),
        }
    }

    /// The record at `i` and the index after it.
    #[inline(always)]
    pub(crate) fn at(&self, i: usize) -> (Record<'a>, usize) {
        match *self {
            Batch::Events(e) => (
                match &e[i] {
                    Event::Call(c, a) => Record::Call(*c, *a, None),
                    Event::CallStack(c, a, s) => Record::Call(*c, *a, Some(*s)),
                    Event::Exit(x) => Record::Exit(x),
                },
                i + 1,
            ),
            Batch::Slots(s) => {
                let w = &s[i];
                let k = w[0] as u8;
                if k == kind::CALL && (w[0] >> 8) as u8 & flag::STACK == 0 {
                    return (Record::Call(slot_call(w), Anatomy::default(), None), i + 1);
                }
                let next = i + slot_width(w);
                if !matches!(k, kind::CALL | kind::CALL_SWITCHED) || next > s.len() {
                    return (Record::Skip, i + 1);
                }
                let call = slot_call(w);
                let anatomy = if k == kind::CALL_SWITCHED {
                    slot_anatomy(&s[i + 1])
                } else {
                    Anatomy::default()
                };
                let stack = (call.flags & flag::STACK != 0)
                    .then(|| slot_stack(&s[next - 1]))
                    .filter(|st| st.kind == kind::STACK)
                    .map(|st| StackRef {
                        user: st.user,
                        kernel: st.kernel,
                    });
                (Record::Call(call, anatomy, stack), next)
            }
        }
    }

    /// The batch's records as events, decoded one by one (for the readers of a batch other
    /// than the aggregator: names, stacks, containers).
    pub fn events(self) -> impl Iterator<Item = Event> + 'a {
        let mut i = 0;
        std::iter::from_fn(move || {
            while i < self.len() {
                let (r, next) = self.at(i);
                i = next;
                match r {
                    Record::Call(c, a, None) => return Some(Event::Call(c, a)),
                    Record::Call(c, a, Some(s)) => return Some(Event::CallStack(c, a, s)),
                    Record::Exit(x) => return Some(Event::Exit(*x)),
                    Record::Skip => {}
                }
            }
            None
        })
    }
}

/// The NUL-padded command name of a process-exit record, as text (invalid UTF-8 replaced;
/// presenters escape what they print).
pub fn comm_name(comm: &[u8; 16]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&comm[..end]).into_owned()
}
