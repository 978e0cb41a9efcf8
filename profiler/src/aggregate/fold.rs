//! Folds batches of completed-call events into series keyed by syscall, and by process (or
//! thread) and syscall when asked. The per-syscall series are a vector indexed by syscall
//! number, so the common case costs one histogram record per event.
//!
//! Per-process keys are bounded (`max_keys`): beyond the cap, calls fold into one exact
//! `other` row per syscall. A process-exit record retires its pid: a later process that
//! reuses the number gets a new generation, so two processes never merge.

use std::collections::{HashMap, HashSet};

use profiler_common::{Anatomy, MAX_SYSCALLS, SyscallEvent};

use super::{ContainerInfo, Event, LossCounters, Row, RowKey, Series, Snapshot, comm_name};
use crate::syscalls;

/// The aggregation key of the rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GroupBy {
    /// One row per syscall.
    #[default]
    Syscall,
    /// One row per (process, syscall).
    Process,
    /// One row per (thread, syscall).
    Thread,
    /// One row per (cgroup v2, syscall).
    Cgroup,
    /// One row per (container, syscall): events carry a container key in their `cgroup`
    /// field (collection maps cgroups to containers), named at snapshot time.
    Container,
}

/// The default cap on per-process (or per-thread) keys.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// tgid of the `other` rows.
const OTHER: u32 = u32::MAX;
/// The key (in place of a pid, cgroup or container key) whose calls always go to the
/// `other` rows.
pub const OTHER_KEY: u32 = OTHER;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    tgid: u32,
    generation: u32,
    tid: u32,
    nr: u32,
}

/// Accumulates events; cheap to fold into, turned into a [`Snapshot`] for presenters.
#[derive(Debug)]
pub struct Aggregator {
    group: GroupBy,
    max_keys: usize,
    by_syscall: Vec<Option<Series>>,
    keyed: HashMap<Key, Series>,
    /// The keys admitted under the cap: processes (tgid, generation), threads, or cgroups,
    /// each with as many syscall rows as it makes (`--max-keys` counts these, not rows).
    admitted: HashSet<(u32, u32, u32)>,
    /// Current generation of each pid that was reused at least once.
    generations: HashMap<u32, u32>,
    /// Names learned from process-exit records, by (tgid, generation).
    names: HashMap<(u32, u32), String>,
    /// Keys folded into `other` (distinct processes, threads or cgroups).
    folded: HashSet<(u32, u32, u32)>,
    events: u64,
}

impl Default for Aggregator {
    fn default() -> Self {
        Self::new(GroupBy::Syscall)
    }
}

impl Aggregator {
    /// An empty aggregator grouping rows by `group`, with the default key cap.
    pub fn new(group: GroupBy) -> Self {
        Self::with_max_keys(group, DEFAULT_MAX_KEYS)
    }

    /// An empty aggregator with at most `max_keys` processes (or threads, or cgroups);
    /// 0 folds every one into the `other` rows.
    pub fn with_max_keys(group: GroupBy, max_keys: usize) -> Self {
        Aggregator {
            group,
            max_keys,
            by_syscall: Vec::new(),
            keyed: HashMap::new(),
            admitted: HashSet::new(),
            generations: HashMap::new(),
            names: HashMap::new(),
            folded: HashSet::new(),
            events: 0,
        }
    }

    /// Folds one batch of events.
    pub fn fold(&mut self, events: &[Event]) {
        for ev in events {
            match ev {
                Event::Call(call, anatomy) | Event::CallStack(call, anatomy, _) => {
                    self.record_call(call, anatomy)
                }
                Event::Exit(exit) => self.retire(exit.tgid, &exit.comm),
            }
        }
    }

    /// Folds one call that never left its CPU.
    pub fn record(&mut self, ev: &SyscallEvent) {
        self.record_call(ev, &Anatomy::default());
    }

    /// Folds one completed call with its time off CPU.
    #[inline]
    pub fn record_call(&mut self, ev: &SyscallEvent, anatomy: &Anatomy) {
        let nr = u32::from(ev.nr);
        if nr >= MAX_SYSCALLS {
            return;
        }
        self.events += 1;
        let errno = syscalls::errno_of(ev.ret);
        let switched = anatomy.voluntary != 0 || anatomy.involuntary != 0;
        let off = [
            anatomy.runq_ns,
            anatomy.blocked_ns,
            u64::from(anatomy.voluntary),
            u64::from(anatomy.involuntary),
        ];
        let put = |s: &mut Series| {
            if switched {
                s.record_switched(ev.duration_ns, errno, off);
            } else {
                s.record(ev.duration_ns, errno);
            }
        };
        let idx = nr as usize;
        if self.by_syscall.len() <= idx {
            self.by_syscall.resize_with(idx + 1, || None);
        }
        put(self.by_syscall[idx].get_or_insert_with(Series::default));
        if self.group == GroupBy::Syscall {
            return;
        }
        let key = match self.group {
            GroupBy::Cgroup | GroupBy::Container => Key {
                tgid: ev.cgroup,
                generation: 0,
                tid: 0,
                nr,
            },
            _ => Key {
                tgid: ev.tgid,
                generation: self.generations.get(&ev.tgid).copied().unwrap_or(0),
                tid: if self.group == GroupBy::Thread {
                    ev.tid
                } else {
                    0
                },
                nr,
            },
        };
        let key = self.admit(key);
        put(self.keyed.entry(key).or_default());
    }

    /// The key to record under: `key` itself, or its syscall's `other` key when its
    /// process (thread, cgroup) is not among the first `max_keys` seen.
    fn admit(&mut self, key: Key) -> Key {
        let who = (key.tgid, key.generation, key.tid);
        if key.tgid == OTHER || self.admitted.contains(&who) {
            return key;
        }
        if self.admitted.len() >= self.max_keys {
            self.folded.insert(who);
            return Key {
                tgid: OTHER,
                generation: 0,
                tid: 0,
                nr: key.nr,
            };
        }
        self.admitted.insert(who);
        key
    }

    /// A process-exit record: remember the name, and start a new generation for the pid.
    pub fn retire(&mut self, tgid: u32, comm: &[u8; 16]) {
        if matches!(
            self.group,
            GroupBy::Syscall | GroupBy::Cgroup | GroupBy::Container
        ) {
            return;
        }
        let generation = self.generations.entry(tgid).or_insert(0);
        self.names.insert((tgid, *generation), comm_name(comm));
        *generation += 1;
    }

    /// Takes everything folded so far, leaving this aggregator empty (same grouping and
    /// cap; pid generations and names carry over). Events are folded batch by batch, so
    /// each one lands in exactly one taken part.
    pub fn take(&mut self) -> Aggregator {
        let mut next = Aggregator::with_max_keys(self.group, self.max_keys);
        next.generations = self.generations.clone();
        next.names = self.names.clone();
        std::mem::replace(self, next)
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
        // Real keys in a stable order, so which keys survive a cap does not depend on
        // hash order.
        let mut keys: Vec<&Key> = other.keyed.keys().collect();
        keys.sort_unstable_by_key(|k| (k.tgid == OTHER, **k));
        for k in keys {
            let key = self.admit(*k);
            self.keyed.entry(key).or_default().merge(&other.keyed[k]);
        }
        self.folded.extend(other.folded.iter().copied());
        for (k, v) in &other.generations {
            let g = self.generations.entry(*k).or_insert(0);
            *g = (*g).max(*v);
        }
        for (k, v) in &other.names {
            self.names.entry(*k).or_insert_with(|| v.clone());
        }
        self.events += other.events;
    }

    /// How rows are keyed.
    pub fn group(&self) -> GroupBy {
        self.group
    }

    /// Events folded so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// One row per syscall (unsorted).
    fn syscall_rows(&self) -> Vec<Row> {
        let rows = self.by_syscall.iter().enumerate();
        rows.filter_map(|(nr, s)| {
            s.as_ref()
                .map(|s| Row::new(nr as u32, RowKey::Syscall, s.clone()))
        })
        .collect()
    }

    /// A snapshot keyed by syscall only, whatever the grouping (the per-syscall series are
    /// always kept).
    pub fn syscall_snapshot(
        &self,
        start_unix_ns: u64,
        duration_ns: u64,
        loss: LossCounters,
    ) -> Snapshot {
        let mut rows = self.syscall_rows();
        rows.sort_by(|a, b| {
            b.series
                .total_ns
                .cmp(&a.series.total_ns)
                .then_with(|| a.nr.cmp(&b.nr))
        });
        Snapshot {
            start_unix_ns,
            duration_ns,
            group: GroupBy::Syscall,
            loss,
            events: self.events,
            folded_keys: 0,
            rows,
        }
    }

    /// An immutable snapshot, rows sorted by total time (largest first). `name` names a
    /// key: a live process by pid (names of exited ones come from their exit records), or
    /// with [`GroupBy::Cgroup`] a cgroup by id (its path).
    pub fn snapshot(
        &self,
        start_unix_ns: u64,
        duration_ns: u64,
        loss: LossCounters,
        name: &dyn Fn(u32) -> Option<String>,
    ) -> Snapshot {
        self.snapshot_with(start_unix_ns, duration_ns, loss, name, &|_| None)
    }

    /// [`Aggregator::snapshot`], with `container` telling what a container key stands for
    /// (with [`GroupBy::Container`]; a key it does not know is shown as unknown, `?`).
    pub fn snapshot_with(
        &self,
        start_unix_ns: u64,
        duration_ns: u64,
        loss: LossCounters,
        name: &dyn Fn(u32) -> Option<String>,
        container: &dyn Fn(u32) -> Option<ContainerInfo>,
    ) -> Snapshot {
        let mut rows: Vec<Row> = match self.group {
            GroupBy::Syscall => self.syscall_rows(),
            // One row per cgroup id: named by its path, or by its container.
            GroupBy::Container | GroupBy::Cgroup => self
                .keyed
                .iter()
                .map(|(k, s)| {
                    let key = if k.tgid == OTHER {
                        RowKey::Other
                    } else if self.group == GroupBy::Container {
                        RowKey::Container(container(k.tgid).unwrap_or_else(ContainerInfo::unknown))
                    } else {
                        RowKey::Cgroup {
                            path: name(k.tgid).unwrap_or_else(|| format!("cgroup#{}", k.tgid)),
                        }
                    };
                    Row::new(k.nr, key, s.clone())
                })
                .collect(),
            GroupBy::Process | GroupBy::Thread => self
                .keyed
                .iter()
                .map(|(k, s)| {
                    if k.tgid == OTHER {
                        return Row::new(k.nr, RowKey::Other, s.clone());
                    }
                    let comm = self
                        .names
                        .get(&(k.tgid, k.generation))
                        .cloned()
                        .or_else(|| {
                            // A retired generation without a name stays unnamed rather than
                            // taking the name of the pid's new owner.
                            (self.generations.get(&k.tgid).copied().unwrap_or(0) == k.generation)
                                .then(|| name(k.tgid))
                                .flatten()
                        });
                    let pid = k.tgid;
                    let key = if self.group == GroupBy::Thread {
                        RowKey::Thread {
                            pid,
                            tid: k.tid,
                            comm,
                        }
                    } else {
                        RowKey::Process { pid, comm }
                    };
                    Row::new(k.nr, key, s.clone())
                })
                .collect(),
        };
        rows.sort_by(|a, b| {
            b.series
                .total_ns
                .cmp(&a.series.total_ns)
                .then_with(|| a.key.cmp(&b.key))
                .then_with(|| a.nr.cmp(&b.nr))
        });
        Snapshot {
            start_unix_ns,
            duration_ns,
            group: self.group,
            loss,
            events: self.events,
            folded_keys: self.folded.len() as u64,
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(tgid: u32, nr: u16, ns: u64, ret: i64) -> Event {
        Event::call(call(tgid, nr, ns, ret))
    }

    fn call(tgid: u32, nr: u16, ns: u64, ret: i64) -> SyscallEvent {
        SyscallEvent {
            duration_ns: ns,
            ret,
            tgid,
            tid: tgid,
            nr,
            ..SyscallEvent::default()
        }
    }

    fn exit(tgid: u32, name: &[u8]) -> Event {
        Event::exit(tgid, name)
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
        assert_eq!(s.rows[1].key, RowKey::Syscall);
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
        let row = s.rows.iter().find(|r| r.key.pid() == Some(1)).unwrap();
        assert_eq!((row.series.count(), row.series.total_ns), (2, 40));
        assert_eq!(s.errno_totals().get("EAGAIN"), Some(&1));
    }

    #[test]
    fn groups_by_process_with_names() {
        let mut a = Aggregator::new(GroupBy::Process);
        a.fold(&[ev(7, 0, 10, 0), ev(8, 0, 30, 0), ev(7, 0, 10, 0)]);
        let s = a.snapshot(0, 0, LossCounters::default(), &|p| Some(format!("p{p}")));
        assert_eq!(s.rows.len(), 2);
        assert_eq!(
            (s.rows[0].key.pid(), s.rows[0].series.count()),
            (Some(8), 1)
        );
        assert_eq!(s.rows[1].key.comm(), Some("p7"));
        assert_eq!(s.rows[1].series.count(), 2);
    }

    #[test]
    fn threads_are_separate_rows() {
        let mut a = Aggregator::new(GroupBy::Thread);
        let mut e = call(7, 0, 10, 0);
        a.record(&e);
        e.tid = 8;
        a.record(&e);
        a.record(&e);
        let s = a.snapshot(0, 0, LossCounters::default(), &|_| None);
        let tids: Vec<(Option<u32>, Option<u32>, u64)> = s
            .rows
            .iter()
            .map(|r| (r.key.pid(), r.key.tid(), r.series.count()))
            .collect();
        assert_eq!(tids, vec![(Some(7), Some(8), 2), (Some(7), Some(7), 1)]);
    }

    #[test]
    fn groups_by_cgroup() {
        let mut a = Aggregator::new(GroupBy::Cgroup);
        let mut e = call(7, 0, 10, 0);
        e.cgroup = 42;
        a.record(&e);
        a.record(&call(8, 0, 10, 0));
        a.record(&e);
        let s = a.snapshot(0, 0, LossCounters::default(), &|id| {
            (id == 42).then(|| "/app".to_string())
        });
        let got: Vec<(RowKey, u64)> = s
            .rows
            .iter()
            .map(|r| (r.key.clone(), r.series.count()))
            .collect();
        let cgroup = |p: &str| RowKey::Cgroup { path: p.into() };
        assert_eq!(got, vec![(cgroup("/app"), 2), (cgroup("cgroup#0"), 1)]);
    }

    #[test]
    fn groups_by_container_with_a_cap() {
        // Keys 0 (host), 5 and 6 (containers); at most two kept, the third folds.
        let mut a = Aggregator::with_max_keys(GroupBy::Container, 2);
        for (key, n) in [(5u32, 3), (0, 2), (6, 4), (5, 1)] {
            for _ in 0..n {
                let mut e = call(100 + key, 0, 10, 0);
                e.cgroup = key;
                a.record(&e);
            }
        }
        a.fold(&[exit(105, b"gone")]);
        let info = |k: u32| match k {
            0 => Some(ContainerInfo::host()),
            5 => Some(ContainerInfo {
                id: "a".repeat(64),
                name: "web".into(),
                image: "nginx".into(),
                pod_uid: None,
            }),
            _ => None,
        };
        let s = a.snapshot_with(0, 0, LossCounters::default(), &|_| None, &info);
        let got: Vec<(Option<String>, bool, u64)> = s
            .rows
            .iter()
            .map(|r| {
                let name = match &r.key {
                    RowKey::Container(c) => Some(c.name.clone()),
                    _ => None,
                };
                (name, r.key.is_other(), r.series.count())
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (None, true, 4),
                (Some("web".into()), false, 4),
                (Some("-".into()), false, 2)
            ]
        );
        assert_eq!(s.folded_keys, 1);
        assert_eq!(s.total_calls(), 10, "folding keeps every call");
        // A key nobody can name is the unknown row, not the host's.
        let s = a.snapshot(0, 0, LossCounters::default(), &|_| None);
        assert!(
            s.rows
                .iter()
                .any(|r| r.key == RowKey::Container(ContainerInfo::unknown()))
        );
    }

    #[test]
    fn reused_pids_do_not_merge() {
        let mut a = Aggregator::new(GroupBy::Process);
        a.fold(&[ev(5, 0, 10, 0), exit(5, b"first"), ev(5, 0, 20, 0)]);
        let s = a.snapshot(0, 0, LossCounters::default(), &|_| Some("second".into()));
        let mut names: Vec<(String, u64)> = s
            .rows
            .iter()
            .map(|r| (r.key.comm().unwrap().to_string(), r.series.total_ns))
            .collect();
        names.sort();
        assert_eq!(names, vec![("first".into(), 10), ("second".into(), 20)]);
    }

    #[test]
    fn key_cap_folds_into_exact_other_rows() {
        let mut a = Aggregator::with_max_keys(GroupBy::Process, 3);
        for pid in 0..100u32 {
            a.record(&call(pid, 0, 10, 0));
            a.record(&call(pid, 1, 10, -2));
        }
        let s = a.snapshot(0, 0, LossCounters::default(), &|_| None);
        assert_eq!(
            s.rows.len(),
            3 * 2 + 2,
            "3 processes with both their syscalls, then one other row per syscall"
        );
        assert_eq!(s.total_calls(), 200, "folding keeps totals exact");
        assert_eq!(s.folded_keys, 97, "processes folded, not rows");
        let other: Vec<&Row> = s.rows.iter().filter(|r| r.key.is_other()).collect();
        assert_eq!(other.len(), 2);
        assert_eq!(other.iter().map(|r| r.series.count()).sum::<u64>(), 194);
        assert_eq!(s.errno_totals().get("ENOENT"), Some(&100));
        // 0 keeps no process at all.
        let mut none = Aggregator::with_max_keys(GroupBy::Process, 0);
        none.fold(&[ev(7, 0, 10, 0)]);
        let s = none.snapshot(0, 0, LossCounters::default(), &|_| None);
        assert!(s.rows.iter().all(|r| r.key.is_other()) && s.folded_keys == 1);
    }

    #[test]
    fn decodes_comm() {
        assert_eq!(comm_name(b"kworker/0:1\0\0\0\0\0"), "kworker/0:1");
        assert_eq!(comm_name(b"sixteen-bytes-xx"), "sixteen-bytes-xx");
    }

    #[test]
    fn anatomy_reaches_every_row_kind() {
        let mut a = Aggregator::new(GroupBy::Thread);
        let call = SyscallEvent {
            duration_ns: 1_000,
            tgid: 5,
            tid: 6,
            nr: 3,
            ..SyscallEvent::default()
        };
        let anatomy = Anatomy {
            runq_ns: 100,
            blocked_ns: 600,
            voluntary: 1,
            involuntary: 1,
            ..Anatomy::default()
        };
        a.fold(&[Event::Call(call, anatomy), Event::call(call)]);
        let s = a.snapshot(0, 0, LossCounters::default(), &|_| None);
        let row = &s.rows[0];
        assert_eq!(row.key.tid(), Some(6));
        let o = &row.series.off_cpu;
        assert_eq!((o.runq_ns, o.blocked_ns, o.switches()), (100, 600, 2));
        assert_eq!(row.series.oncpu_ns(), 1_300);
        assert_eq!(o.hists().unwrap().0.count(), 2);
        let by_syscall = a.syscall_snapshot(0, 0, LossCounters::default());
        assert_eq!(by_syscall.rows[0].series.off_cpu, *o);
    }
}
