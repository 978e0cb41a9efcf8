//! The immutable result presenters read: rows of series plus the loss accounting.

use std::{collections::BTreeMap, sync::Arc};

use super::{GroupBy, KeyId, RowKey, Series};
use crate::syscalls;

/// Loss and bookkeeping counters, summed over CPUs, plus what user space received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossCounters {
    /// Completed calls user space read from the event buffers.
    pub received: u64,
    /// Completed calls the kernel wrote to the event buffers.
    pub emitted: u64,
    /// Completed calls lost because an event buffer was full.
    pub dropped: u64,
    /// Calls not timed because no per-thread slot could be allocated.
    pub no_storage: u64,
    /// Exits with no recorded enter (calls in flight when tracing started).
    pub unpaired: u64,
    /// Enters that found an earlier call whose exit was never seen.
    pub stale: u64,
    /// Threads that exited inside a syscall (`exit_group` and `exit` never return).
    pub unfinished: u64,
    /// Child processes followed at fork.
    pub forks_followed: u64,
    /// Runs of the syscall and switch programs the kernel skipped because a run of the
    /// same program was in progress on that CPU (preempted: the raw hook on Linux 7.2 and later); each is
    /// a call lost or mis-timed.
    pub skipped: u64,
}

impl LossCounters {
    /// The counts accumulated since `earlier` (counters only grow).
    pub fn since(&self, earlier: &LossCounters) -> LossCounters {
        LossCounters {
            received: self.received.saturating_sub(earlier.received),
            emitted: self.emitted.saturating_sub(earlier.emitted),
            dropped: self.dropped.saturating_sub(earlier.dropped),
            no_storage: self.no_storage.saturating_sub(earlier.no_storage),
            unpaired: self.unpaired.saturating_sub(earlier.unpaired),
            stale: self.stale.saturating_sub(earlier.stale),
            unfinished: self.unfinished.saturating_sub(earlier.unfinished),
            forks_followed: self.forks_followed.saturating_sub(earlier.forks_followed),
            skipped: self.skipped.saturating_sub(earlier.skipped),
        }
    }

    /// Completed calls that were not counted: dropped plus untimed.
    pub fn lost(&self) -> u64 {
        self.dropped + self.no_storage
    }
}

/// The statistics presenters show for a row.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// Number of calls.
    pub count: u64,
    /// Failed calls.
    pub errors: u64,
    /// Failures by errno name, largest first.
    pub errnos: Vec<(String, u64)>,
    /// Exact total time.
    pub total_ns: u64,
    /// Fastest call (exact).
    pub min_ns: u64,
    /// Exact mean (total / count).
    pub mean_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Slowest call (exact).
    pub max_ns: u64,
}

/// A container as rows keyed by container name it (`--by container`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerInfo {
    /// Its full id, 64 hex digits; empty for the host row and the unknown row.
    pub id: String,
    /// Its name, as its runtime calls it: `-` for the host row (processes outside any
    /// container), `?` for calls whose cgroup was gone before syslat could read it, empty
    /// when the runtime could not be asked. Untrusted text: escape it before printing.
    pub name: String,
    /// The image it runs, as its runtime tells (empty when not told). Untrusted text.
    pub image: String,
    /// Its Kubernetes pod's UID, when kubelet made its cgroup.
    pub pod_uid: Option<String>,
}

impl ContainerInfo {
    /// The row of the processes outside any container.
    pub fn host() -> Self {
        ContainerInfo {
            name: "-".into(),
            ..Default::default()
        }
    }

    /// The row of calls whose cgroup could not be read (removed before syslat saw it).
    pub fn unknown() -> Self {
        ContainerInfo {
            name: "?".into(),
            ..Default::default()
        }
    }

    /// The identity of its row: the id, or for the rows without one the name.
    pub fn key(&self) -> &str {
        if self.id.is_empty() {
            &self.name
        } else {
            &self.id
        }
    }

    /// The id as `docker ps` shows it (12 digits), or `-` when there is none.
    pub fn short_id(&self) -> &str {
        if self.id.is_empty() {
            "-"
        } else {
            &self.id[..self.id.len().min(12)]
        }
    }
}

/// One row: a syscall's calls, all of them or those of one key (process, thread, cgroup,
/// container, or the folded rest).
#[derive(Clone, Debug)]
pub struct Row {
    /// Syscall number.
    pub nr: u32,
    /// Syscall name.
    pub syscall: String,
    /// Whose calls.
    pub key: RowKey,
    /// The data, shared with the aggregator until either side changes it (a snapshot of a
    /// series nothing wrote since costs a reference count, not a copy).
    pub series: Arc<Series>,
}

impl Row {
    /// A row of syscall `nr`'s calls made by `key`.
    pub fn new(nr: u32, key: RowKey, series: impl Into<Arc<Series>>) -> Self {
        Self {
            nr,
            syscall: syscalls::name(nr),
            key,
            series: series.into(),
        }
    }

    /// What makes two rows the same row: their key's identity and the syscall.
    pub fn id(&self) -> (KeyId, &str, u32) {
        (self.key.id(), &self.syscall, self.nr)
    }

    /// The value at percentile `p` (0..=100), kept within the exact min..max.
    pub fn percentile(&self, p: f64) -> u64 {
        let s = &self.series;
        s.hist.percentile(p).clamp(s.min(), s.max_ns.max(s.min()))
    }

    /// The shares of the row's total time on CPU, waiting for a CPU and blocked (each
    /// `None` for a row with no time at all).
    pub fn anatomy_split(&self) -> Split {
        let s = &self.series;
        let share = |ns: u64| (s.total_ns > 0).then(|| ns as f64 / s.total_ns as f64);
        Split {
            oncpu: share(s.oncpu_ns()),
            runq: share(s.off_cpu.runq_ns),
            blocked: share(s.off_cpu.blocked_ns),
        }
    }

    /// The per-call run-queue wait at percentile `p` (0 when no call switched).
    pub fn runq_percentile(&self, p: f64) -> u64 {
        self.series
            .off_cpu
            .hists()
            .map_or(0, |(runq, _)| runq.percentile(p))
    }

    /// The per-call blocked time at percentile `p` (0 when no call switched).
    pub fn blocked_percentile(&self, p: f64) -> u64 {
        self.series
            .off_cpu
            .hists()
            .map_or(0, |(_, blocked)| blocked.percentile(p))
    }

    /// Computes the row's statistics.
    pub fn stats(&self) -> Stats {
        let s = &self.series;
        let h = &s.hist;
        let count = s.count();
        let mut errnos: Vec<(String, u64)> = s
            .errnos
            .iter()
            .map(|(e, n)| (syscalls::errno_name(*e), *n))
            .collect();
        errnos.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        // Percentiles are bucket values (3 significant digits); keep them within the exact
        // range so that p99.9 never shows above the exact max.
        let (min, max) = (s.min(), s.max_ns);
        let pct = |p: f64| h.percentile(p).clamp(min, max.max(min));
        Stats {
            count,
            errors: s.errors,
            errnos,
            total_ns: s.total_ns,
            min_ns: s.min(),
            mean_ns: s.total_ns.checked_div(count).unwrap_or(0),
            p50_ns: pct(50.0),
            p90_ns: pct(90.0),
            p99_ns: pct(99.0),
            p999_ns: pct(99.9),
            max_ns: s.max_ns,
        }
    }
}

/// What rows are ordered by, largest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Total time (the default).
    #[default]
    Total,
    /// Calls.
    Calls,
    /// Time running on a CPU.
    Oncpu,
    /// Time waiting for a CPU: who is CPU-starved inside its syscalls.
    Runq,
    /// Time blocked.
    Blocked,
}

/// Where a row's time went, as shares of its total (they sum to 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Split {
    /// Running on a CPU.
    pub oncpu: Option<f64>,
    /// Runnable, waiting for a CPU.
    pub runq: Option<f64>,
    /// Sleeping.
    pub blocked: Option<f64>,
}

/// Everything recorded over one period.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Wall-clock start, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// Length of the period, ns.
    pub duration_ns: u64,
    /// How rows are keyed.
    pub group: GroupBy,
    /// Loss accounting.
    pub loss: LossCounters,
    /// Events aggregated.
    pub events: u64,
    /// Distinct keys folded into `other` rows by the key cap.
    pub folded_keys: u64,
    /// Rows, largest total time first.
    pub rows: Vec<Row>,
}

impl Snapshot {
    /// Orders the rows by `key`, largest first (ties keep their order by total time).
    pub fn sort_rows(&mut self, key: SortKey) {
        let value = |r: &Row| -> u64 {
            let s = &r.series;
            match key {
                SortKey::Total => s.total_ns,
                SortKey::Calls => s.count(),
                SortKey::Oncpu => s.oncpu_ns(),
                SortKey::Runq => s.off_cpu.runq_ns,
                SortKey::Blocked => s.off_cpu.blocked_ns,
            }
        };
        self.rows.sort_by_key(|r| std::cmp::Reverse(value(r)));
    }

    /// Total calls over all rows.
    pub fn total_calls(&self) -> u64 {
        self.rows.iter().map(|r| r.series.count()).sum()
    }

    /// Per-errno totals over all rows, by name.
    pub fn errno_totals(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for r in &self.rows {
            for (e, n) in &r.series.errnos {
                *m.entry(syscalls::errno_name(*e)).or_default() += n;
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_a_row() {
        let mut s = Series::default();
        for ns in [100u64, 200, 300, 400] {
            s.record(ns, None);
        }
        s.record(500, Some(2));
        let st = Row::new(110, RowKey::Syscall, s).stats();
        assert_eq!(st.count, 5);
        assert_eq!(st.total_ns, 1500);
        assert_eq!(st.mean_ns, 300);
        assert_eq!((st.min_ns, st.max_ns), (100, 500));
        assert_eq!(st.p50_ns, 300);
        assert_eq!(st.errnos, vec![("ENOENT".to_string(), 1)]);
    }

    #[test]
    fn rows_sort_by_run_queue_time() {
        let mut busy = Series::default();
        busy.record(1_000, None);
        let mut starved = Series::default();
        starved.record_switched(500, None, [400, 0, 0, 1]);
        let mut snap = Snapshot {
            start_unix_ns: 0,
            duration_ns: 0,
            group: GroupBy::Syscall,
            loss: LossCounters::default(),
            events: 2,
            folded_keys: 0,
            rows: vec![
                Row::new(0, RowKey::Syscall, busy),
                Row::new(1, RowKey::Syscall, starved),
            ],
        };
        snap.sort_rows(SortKey::Runq);
        assert_eq!(snap.rows[0].nr, 1);
        snap.sort_rows(SortKey::Total);
        assert_eq!(snap.rows[0].nr, 0);
        let split = snap.rows[1].anatomy_split();
        assert_eq!((split.oncpu, split.runq), (Some(0.2), Some(0.8)));
    }

    #[test]
    fn empty_row_stats_are_zero() {
        let st = Row::new(0, RowKey::Syscall, Series::default()).stats();
        assert_eq!((st.count, st.mean_ns, st.p99_ns, st.max_ns), (0, 0, 0, 0));
    }
}
