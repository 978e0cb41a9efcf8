//! Folds batches of completed-call events into series keyed by syscall, and by process
//! and syscall when asked. The per-syscall series are a vector indexed by syscall number,
//! so the common case costs one histogram record per event.

use std::collections::HashMap;

use profiler_common::{MAX_SYSCALLS, SyscallEvent};

use super::{LossCounters, Row, Series, Snapshot};
use crate::syscalls;

/// The aggregation key of the rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GroupBy {
    /// One row per syscall.
    #[default]
    Syscall,
    /// One row per (process, syscall).
    Process,
}

/// Accumulates events; cheap to fold into, turned into a [`Snapshot`] for presenters.
#[derive(Debug, Default)]
pub struct Aggregator {
    group: GroupBy,
    by_syscall: Vec<Option<Series>>,
    by_process: HashMap<(u32, u32), Series>,
    events: u64,
}

impl Aggregator {
    /// An empty aggregator grouping rows by `group`.
    pub fn new(group: GroupBy) -> Self {
        Self {
            group,
            ..Self::default()
        }
    }

    /// Folds one batch of events.
    pub fn fold(&mut self, events: &[SyscallEvent]) {
        for ev in events {
            self.record(ev);
        }
    }

    /// Folds one event.
    #[inline]
    pub fn record(&mut self, ev: &SyscallEvent) {
        if ev.nr >= MAX_SYSCALLS {
            return;
        }
        self.events += 1;
        let errno = syscalls::errno_of(ev.ret);
        let idx = ev.nr as usize;
        if self.by_syscall.len() <= idx {
            self.by_syscall.resize_with(idx + 1, || None);
        }
        self.by_syscall[idx]
            .get_or_insert_with(Series::default)
            .record(ev.duration_ns, errno);
        if self.group == GroupBy::Process {
            self.by_process
                .entry((ev.tgid, ev.nr))
                .or_default()
                .record(ev.duration_ns, errno);
        }
    }

    /// Takes everything folded so far, leaving this aggregator empty (same grouping).
    /// Events are folded batch by batch, so each one lands in exactly one taken part.
    pub fn take(&mut self) -> Aggregator {
        std::mem::replace(self, Aggregator::new(self.group))
    }

    /// Adds every series of `other` (same grouping) into `self`.
    pub fn merge(&mut self, other: &Aggregator) {
        if self.by_syscall.len() < other.by_syscall.len() {
            self.by_syscall.resize_with(other.by_syscall.len(), || None);
        }
        for (nr, s) in other.by_syscall.iter().enumerate() {
            if let Some(s) = s {
                self.by_syscall[nr]
                    .get_or_insert_with(Series::default)
                    .merge(s);
            }
        }
        for (k, s) in &other.by_process {
            self.by_process.entry(*k).or_default().merge(s);
        }
        self.events += other.events;
    }

    /// Events folded so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The tgids seen so far (for naming processes).
    pub fn tgids(&self) -> impl Iterator<Item = u32> + '_ {
        self.by_process.keys().map(|(tgid, _)| *tgid)
    }

    /// An immutable snapshot, rows sorted by total time (largest first). `comm` names a
    /// process; it is only asked when grouping by process.
    pub fn snapshot(
        &self,
        start_unix_ns: u64,
        duration_ns: u64,
        loss: LossCounters,
        comm: &dyn Fn(u32) -> Option<String>,
    ) -> Snapshot {
        let mut rows: Vec<Row> = match self.group {
            GroupBy::Syscall => self
                .by_syscall
                .iter()
                .enumerate()
                .filter_map(|(nr, s)| {
                    s.as_ref()
                        .map(|s| Row::new(nr as u32, None, None, s.clone()))
                })
                .collect(),
            GroupBy::Process => self
                .by_process
                .iter()
                .map(|(&(tgid, nr), s)| Row::new(nr, Some(tgid), comm(tgid), s.clone()))
                .collect(),
        };
        rows.sort_by(|a, b| {
            b.series
                .total_ns
                .cmp(&a.series.total_ns)
                .then_with(|| a.pid.cmp(&b.pid))
                .then_with(|| a.nr.cmp(&b.nr))
        });
        Snapshot {
            start_unix_ns,
            duration_ns,
            group: self.group,
            loss,
            events: self.events,
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(tgid: u32, nr: u32, ns: u64, ret: i64) -> SyscallEvent {
        SyscallEvent {
            duration_ns: ns,
            ret,
            tgid,
            tid: tgid,
            nr,
            _pad: 0,
        }
    }

    #[test]
    fn empty_snapshot() {
        let a = Aggregator::new(GroupBy::Syscall);
        let s = a.snapshot(0, 0, LossCounters::default(), &|_| None);
        assert!(s.rows.is_empty());
        assert_eq!(s.events, 0);
    }

    #[test]
    fn groups_by_syscall_sorted_by_total() {
        let mut a = Aggregator::new(GroupBy::Syscall);
        a.fold(&[
            ev(1, 0, 10, 0),
            ev(2, 0, 10, 0),
            ev(1, 1, 100, -2),
            ev(1, 5000, 1, 0),
        ]);
        let s = a.snapshot(0, 0, LossCounters::default(), &|_| None);
        assert_eq!(s.events, 3, "out-of-range syscall numbers are ignored");
        assert_eq!(s.rows.len(), 2);
        assert_eq!((s.rows[0].nr, s.rows[0].series.count()), (1, 1));
        assert_eq!(s.rows[0].series.errnos.get(&2), Some(&1));
        assert_eq!((s.rows[1].nr, s.rows[1].series.count()), (0, 2));
        assert_eq!(s.rows[1].pid, None);
    }

    #[test]
    fn take_and_merge_keep_totals_exact() {
        let mut total = Aggregator::new(GroupBy::Process);
        let mut cur = Aggregator::new(GroupBy::Process);
        cur.fold(&[ev(1, 0, 10, 0), ev(2, 3, 20, -11)]);
        let first = cur.take();
        assert_eq!(cur.events(), 0);
        cur.fold(&[ev(1, 0, 30, 0)]);
        total.merge(&first);
        total.merge(&cur.take());
        let s = total.snapshot(0, 0, LossCounters::default(), &|_| None);
        assert_eq!(s.events, 3);
        assert_eq!(s.total_calls(), 3);
        let row = s.rows.iter().find(|r| r.pid == Some(1)).unwrap();
        assert_eq!((row.series.count(), row.series.total_ns), (2, 40));
        assert_eq!(s.errno_totals().get("EAGAIN"), Some(&1));
    }

    #[test]
    fn groups_by_process_with_names() {
        let mut a = Aggregator::new(GroupBy::Process);
        a.fold(&[ev(7, 0, 10, 0), ev(8, 0, 30, 0), ev(7, 0, 10, 0)]);
        let s = a.snapshot(0, 0, LossCounters::default(), &|p| Some(format!("p{p}")));
        assert_eq!(s.rows.len(), 2);
        assert_eq!((s.rows[0].pid, s.rows[0].series.count()), (Some(8), 1));
        assert_eq!(s.rows[1].comm.as_deref(), Some("p7"));
        assert_eq!(s.rows[1].series.count(), 2);
    }
}
