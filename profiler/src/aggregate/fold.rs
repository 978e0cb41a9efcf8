//! Folds batches of completed-call events into series keyed by syscall, and by process (or
//! thread) and syscall when asked. The per-syscall series are a vector indexed by syscall
//! number, so the common case costs one histogram record per event.
//!
//! Per-process keys are bounded (`max_keys`): beyond the cap, calls fold into one exact
//! `other` row per syscall. A process-exit record retires its pid: a later process that
//! reuses the number gets a new generation, so two processes never merge.
//!
//! Grouped by anything but syscall, the per-syscall series are kept beside the keyed ones
//! only when asked ([`Aggregator::keep_syscall_totals`], `top`'s cumulative view): a call
//! then costs one histogram record, not two. Without them, [`Aggregator::syscall_snapshot`]
//! derives the per-syscall rows from the keyed series, and [`Aggregator::merge`] into an
//! aggregator that keeps them adds the keyed series by syscall: O(the part merged), once.
//!
//! State stays bounded for an agent that runs for months. [`Aggregator::take`] moves the
//! pid generations on rather than copying them, and the taken part keeps only the names
//! and generations of its own keys. With a retention ([`Aggregator::retain_exited`],
//! `serve`), [`Aggregator::expire`], run after each snapshot, moves the series of processes
//! that exited into one set of rows per name (the rows a name labels keep the same sums, so
//! no counter goes down), and drops a name's rows once they have been in `snapshots`
//! snapshots since they last changed and no live process has the name; their pids'
//! generations and names go with them. Kept per-syscall series are never dropped: they
//! hold every call.

use std::{
    collections::{HashMap as StdHashMap, HashSet as StdHashSet},
    sync::Arc,
};

/// The maps of the hot path hash with foldhash, not SipHash: their keys are pids and
/// syscall numbers (no untrusted input picks them to collide), and SipHash was half the
/// cost of a call by process. Still randomly seeded: code must not rely on hash order.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = StdHashSet<K, foldhash::fast::RandomState>;

use profiler_common::{Anatomy, MAX_SYSCALLS, SyscallEvent};

use super::event::{Record, Slot, slot_call};

use super::{
    Batch, ContainerInfo, Event, LossCounters, Row, RowKey, Series, Snapshot, comm_name, slot_width,
};
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
/// The generation of the rows of exited processes merged by name (with a retention); their
/// `tgid` is the name's parked id, not a pid.
const PARKED: u32 = u32::MAX;
/// The key (in place of a pid, cgroup or container key) whose calls always go to the
/// `other` rows.
pub const OTHER_KEY: u32 = OTHER;

/// A key without its syscall: (tgid or cgroup, generation, tid).
type Who = (u32, u32, u32);

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
    /// The per-syscall series: by syscall, the rows; keyed with `syscall_totals`, every
    /// call again; keyed without, the calls of keyed rows since dropped (by
    /// [`Aggregator::expire`]), which with the keyed rows make up every call.
    by_syscall: Vec<Option<Series>>,
    /// Keyed: whether `by_syscall` is kept (see [`Aggregator::keep_syscall_totals`]).
    syscall_totals: bool,
    /// Shared with the snapshots taken since a series last changed (copy on write).
    keyed: HashMap<Key, Arc<Series>>,
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
    /// The last caller resolved by [`Aggregator::record_call`]: its (tgid or cgroup, tid)
    /// and the key prefix its calls go to (a run of calls from one thread costs one map
    /// lookup each). Cleared whenever a generation or admission can change.
    last: Option<((u32, u32), Who)>,
    /// With a retention: see [`Aggregator::retain_exited`].
    retention: Option<Retention>,
}

/// What a retention keeps (see [`Aggregator::retain_exited`]).
#[derive(Debug, Default)]
struct Retention {
    /// Snapshots a name's parked rows stay in after they last changed.
    snapshots: u32,
    /// Processes (tgid, generation) that exited since the last [`Aggregator::expire`].
    exited: Vec<(u32, u32)>,
    /// The exited processes' rows, merged by name.
    parked: HashMap<String, Parked>,
    next_id: u32,
}

/// The rows of one name's exited processes.
#[derive(Debug)]
struct Parked {
    /// Stands for the name in the rows' keys (`tgid`, with generation [`PARKED`]).
    id: u32,
    /// Snapshots taken since the rows last changed.
    seen: u32,
    /// The syscalls of its rows.
    nrs: Vec<u32>,
}

/// The per-syscall series of syscall `nr`, created on first use.
fn syscall_series(by_syscall: &mut Vec<Option<Series>>, nr: u16) -> &mut Series {
    let idx = usize::from(nr);
    if by_syscall.len() <= idx {
        by_syscall.resize_with(idx + 1, || None);
    }
    by_syscall[idx].get_or_insert_with(Series::default)
}

/// Adds each of `keyed`'s series to its syscall's series in `by_syscall`.
fn add_by_syscall(by_syscall: &mut Vec<Option<Series>>, keyed: &HashMap<Key, Arc<Series>>) {
    for (k, s) in keyed {
        syscall_series(by_syscall, k.nr as u16).merge(s);
    }
}

/// A series for a snapshot: shared, or a settled copy when its latency histogram still
/// holds fast values apart, or its histograms of time off CPU still owe calls that never
/// switched (a snapshot's queries then read the histograms as they are).
fn shared(s: &Arc<Series>) -> Arc<Series> {
    if s.hist.unsettled() || s.off_cpu.unsettled() {
        Arc::new(Series::clone(s))
    } else {
        Arc::clone(s)
    }
}

/// The caller a call's row is keyed by under `group`, before generations and the cap:
/// (tgid or cgroup, tid or 0).
#[inline]
fn caller_of(group: GroupBy, ev: &SyscallEvent) -> (u32, u32) {
    match group {
        GroupBy::Cgroup | GroupBy::Container => (ev.cgroup, 0),
        GroupBy::Thread => (ev.tgid, ev.tid),
        _ => (ev.tgid, 0),
    }
}

/// Records one call into a series.
#[inline(always)]
fn put(s: &mut Series, ev: &SyscallEvent, anatomy: &Anatomy) {
    let errno = syscalls::errno_of(ev.ret);
    if anatomy.voluntary != 0 || anatomy.involuntary != 0 {
        let off = [
            anatomy.runq_ns,
            anatomy.blocked_ns,
            u64::from(anatomy.voluntary),
            u64::from(anatomy.involuntary),
        ];
        s.record_switched(ev.duration_ns, errno, off);
    } else {
        s.record(ev.duration_ns, errno);
    }
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
            syscall_totals: false,
            keyed: HashMap::default(),
            admitted: HashSet::default(),
            generations: HashMap::default(),
            names: HashMap::default(),
            folded: HashSet::default(),
            events: 0,
            last: None,
            retention: None,
        }
    }

    /// Grouped by anything but syscall: also keeps one series per syscall of every call,
    /// so [`Aggregator::syscall_snapshot`] costs O(syscalls) instead of O(keyed rows) and
    /// holds every call even after keyed rows are dropped. Costs a second histogram record
    /// per folded call; [`Aggregator::merge`] of a part that does not keep them costs none.
    pub fn keep_syscall_totals(&mut self) {
        self.syscall_totals = true;
    }

    /// Whether the per-syscall series are kept: by syscall they are the rows.
    fn keeps_syscall_series(&self) -> bool {
        self.group == GroupBy::Syscall || self.syscall_totals
    }

    /// Keeps the series of an exited process (by process or thread) for `snapshots`
    /// snapshots after its exit, then drops them (see [`Aggregator::expire`]); for a
    /// cumulative aggregator that runs for months (`serve`). While kept, a name's rows
    /// count as one key against the cap.
    pub fn retain_exited(&mut self, snapshots: u32) {
        self.retention = Some(Retention {
            snapshots: snapshots.max(1),
            ..Retention::default()
        });
    }

    /// Folds one batch of events. A run of calls of one syscall (from one caller, unless
    /// by syscall; the usual case: a CPU's log holds a thread's calls in order) finds its
    /// series once and records into it directly; the result is the same as
    /// [`Aggregator::record_call`] on each.
    pub fn fold(&mut self, events: &[Event]) {
        self.fold_records(Batch::Events(events));
    }

    /// Folds a batch: decoded events as [`Aggregator::fold`], or call-log slots read in
    /// place, with the same result as folding them decoded.
    pub fn fold_batch(&mut self, batch: Batch<'_>) {
        // Each arm inlines the loop for its kind of batch, so neither tests the kind per
        // record.
        match batch {
            Batch::Events(e) => self.fold_records(Batch::Events(e)),
            Batch::Slots(s) => self.fold_slots(s),
        }
    }

    /// Folds call-log slots. A run of slots that are plain calls (never switched, no
    /// stacks) of one syscall from one caller is told by two masked compares per slot
    /// and recorded as a run ([`Series::record_run`]); any other record goes through
    /// [`Aggregator::fold_records`].
    fn fold_slots(&mut self, slots: &[Slot]) {
        let group = self.group;
        let keyed = group != GroupBy::Syscall;
        let keep = self.keeps_syscall_series();
        // What a run shares: in the first word kind and flags (a plain call: both zero)
        // and the syscall, with the cgroup when grouped by it; in the last the caller.
        let (mask0, mask3) = match group {
            GroupBy::Syscall => (0xffff_ffff, 0),
            GroupBy::Process => (0xffff_ffff, 0xffff_ffff),
            GroupBy::Thread => (0xffff_ffff, u64::MAX),
            GroupBy::Cgroup | GroupBy::Container => (u64::MAX, 0),
        };
        let mut i = 0;
        while i < slots.len() {
            let w = &slots[i];
            let nr = (w[0] >> 16) as u16;
            if w[0] as u16 != 0 || u32::from(nr) >= MAX_SYSCALLS {
                // Not a plain call: decoded and folded on its own.
                let width = slot_width(w).min(slots.len() - i);
                self.fold_records(Batch::Slots(&slots[i..i + width]));
                i += width;
                continue;
            }
            let (first0, first3) = (w[0] & mask0, w[3] & mask3);
            let len = slots[i + 1..]
                .iter()
                .position(|s| s[0] & mask0 != first0 || s[3] & mask3 != first3)
                .map_or(slots.len() - i, |n| n + 1);
            let run = &slots[i..i + len];
            let calls = run.iter().map(|s| (s[1], s[2] as i64));
            if keep {
                syscall_series(&mut self.by_syscall, nr).record_run(calls.clone());
            }
            if keyed {
                let key = self.key_of_caller(caller_of(group, &slot_call(w)), nr);
                Arc::make_mut(self.keyed.entry(key).or_default()).record_run(calls);
            }
            self.events += len as u64;
            i += len;
        }
    }

    #[inline(always)]
    fn fold_records(&mut self, batch: Batch<'_>) {
        let group = self.group;
        // By syscall a run is one syscall's; otherwise one caller's too.
        let keyed = group != GroupBy::Syscall;
        let keep = self.keeps_syscall_series();
        let len = batch.len();
        let mut i = 0;
        while i < len {
            let (call, mut next) = match batch.at(i) {
                (Record::Call(call, ..), _) => (call, i),
                (Record::Exit(exit), next) => {
                    self.retire(exit.tgid, &exit.comm);
                    i = next;
                    continue;
                }
                (Record::Skip, next) => {
                    i = next;
                    continue;
                }
            };
            if u32::from(call.nr) >= MAX_SYSCALLS {
                i = batch.at(i).1;
                continue;
            }
            let caller = caller_of(group, &call);
            let key = keyed.then(|| self.key_of(&call));
            let mut total = keep.then(|| syscall_series(&mut self.by_syscall, call.nr));
            let mut series = key.map(|k| Arc::make_mut(self.keyed.entry(k).or_default()));
            // One pass: the run ends at the first record that is not a call of this
            // syscall (from this caller).
            let mut n = 0;
            while next < len {
                let (Record::Call(c, a, _), after) = batch.at(next) else {
                    break;
                };
                if c.nr != call.nr || (keyed && caller_of(group, &c) != caller) {
                    break;
                }
                if let Some(t) = total.as_deref_mut() {
                    put(t, &c, &a);
                }
                if let Some(s) = series.as_deref_mut() {
                    put(s, &c, &a);
                }
                n += 1;
                next = after;
            }
            self.events += n;
            i = next;
        }
    }

    /// The row key of a call (not by syscall): its caller's current generation, admitted
    /// under the cap or folded into `other`; remembered for a run of calls from one caller.
    fn key_of(&mut self, ev: &SyscallEvent) -> Key {
        self.key_of_caller(caller_of(self.group, ev), ev.nr)
    }

    /// [`Aggregator::key_of`] of a call of syscall `nr` from `caller`.
    fn key_of_caller(&mut self, caller: (u32, u32), nr: u16) -> Key {
        let (tgid, generation, tid) = match self.last {
            Some((c, who)) if c == caller => who,
            _ => {
                let generation = match self.group {
                    GroupBy::Cgroup | GroupBy::Container => 0,
                    _ => self.generations.get(&caller.0).copied().unwrap_or(0),
                };
                let key = self.admit(Key {
                    tgid: caller.0,
                    generation,
                    tid: caller.1,
                    nr: u32::from(nr),
                });
                let who = (key.tgid, key.generation, key.tid);
                self.last = Some((caller, who));
                who
            }
        };
        Key {
            tgid,
            generation,
            tid,
            nr: u32::from(nr),
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
        if self.keeps_syscall_series() {
            put(syscall_series(&mut self.by_syscall, ev.nr), ev, anatomy);
        }
        if self.group == GroupBy::Syscall {
            return;
        }
        let key = self.key_of(ev);
        put(
            Arc::make_mut(self.keyed.entry(key).or_default()),
            ev,
            anatomy,
        );
    }

    /// The key to record under: `key` itself, or its syscall's `other` key when its
    /// process (thread, cgroup) is not among the first `max_keys` seen.
    fn admit(&mut self, key: Key) -> Key {
        let who = (key.tgid, key.generation, key.tid);
        if key.tgid == OTHER || self.admitted.contains(&who) {
            return key;
        }
        let parked = self.retention.as_ref().map_or(0, |r| r.parked.len());
        if self.admitted.len() + parked >= self.max_keys {
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
        if let Some(r) = self.retention.as_mut() {
            r.exited.push((tgid, *generation));
        }
        *generation += 1;
        self.last = None;
    }

    /// After a snapshot (with a retention): the exited processes' series move to their
    /// name's parked rows, seen once (they were in the snapshot with their final values);
    /// the parked rows of a name that have been in `snapshots` snapshots since they last
    /// changed, and that no live process shares (its rows would go down), are dropped,
    /// with their pids' names and generations. `name` names a live process by pid. Costs
    /// O(exits since the last call) plus, when something is due, O(live processes).
    pub fn expire(&mut self, name: &dyn Fn(u32) -> Option<String>) {
        let Some(r) = self.retention.as_mut() else {
            return;
        };
        for p in r.parked.values_mut() {
            p.seen = p.seen.saturating_add(1);
        }
        if !r.exited.is_empty() {
            let gone: HashSet<(u32, u32)> = r.exited.drain(..).collect();
            let moved: Vec<(Key, Arc<Series>)> = self
                .keyed
                .extract_if(|k, _| {
                    k.tgid != OTHER
                        && k.generation != PARKED
                        && gone.contains(&(k.tgid, k.generation))
                })
                .collect();
            for (k, s) in moved {
                let label = self
                    .names
                    .get(&(k.tgid, k.generation))
                    .cloned()
                    .unwrap_or_else(|| "?".into());
                let next_id = &mut r.next_id;
                let p = r.parked.entry(label.clone()).or_insert_with(|| {
                    // Never OTHER's tgid (the count starts over after 2^32 - 1 names).
                    *next_id = next_id.wrapping_add(1) % OTHER;
                    Parked {
                        id: *next_id,
                        seen: 1,
                        nrs: Vec::new(),
                    }
                });
                p.seen = 1;
                if !p.nrs.contains(&k.nr) {
                    p.nrs.push(k.nr);
                }
                self.names.insert((p.id, PARKED), label);
                let key = Key {
                    tgid: p.id,
                    generation: PARKED,
                    tid: 0,
                    nr: k.nr,
                };
                match self.keyed.entry(key) {
                    // The name's first exited process with this syscall: its series moves
                    // as it is (no copy beside the original, however many exit at once).
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(s);
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        Arc::make_mut(o.get_mut()).merge(&s)
                    }
                }
            }
            self.admitted.retain(|w| !gone.contains(&(w.0, w.1)));
            self.folded.retain(|w| !gone.contains(&(w.0, w.1)));
            // A pid whose current generation has no keys left starts over at 0: nothing
            // of its earlier processes is left to merge with.
            let live: HashSet<(u32, u32)> = self
                .admitted
                .iter()
                .chain(&self.folded)
                .map(|w| (w.0, w.1))
                .collect();
            for &(tgid, generation) in &gone {
                self.names.remove(&(tgid, generation));
                if let Some(&g) = self.generations.get(&tgid)
                    && !live.contains(&(tgid, g))
                {
                    self.generations.remove(&tgid);
                }
            }
            self.last = None;
        }
        let due: Vec<String> = r
            .parked
            .iter()
            .filter(|(_, p)| p.seen >= r.snapshots)
            .map(|(n, _)| n.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        let live: HashSet<String> = self
            .admitted
            .iter()
            .filter_map(|&(tgid, _, _)| name(tgid))
            .collect();
        for label in due {
            if live.contains(&label) {
                continue;
            }
            if let Some(p) = r.parked.remove(&label) {
                for nr in p.nrs {
                    let gone = self.keyed.remove(&Key {
                        tgid: p.id,
                        generation: PARKED,
                        tid: 0,
                        nr,
                    });
                    // Without kept totals, the per-syscall series hold the dropped rows'
                    // calls (the rows by syscall still count every call).
                    if let Some(gone) = gone.filter(|_| !self.syscall_totals) {
                        syscall_series(&mut self.by_syscall, nr as u16).merge(&gone);
                    }
                }
                self.names.remove(&(p.id, PARKED));
            }
        }
    }

    /// Takes everything folded so far, leaving this aggregator empty (same grouping and
    /// cap). The pid generations move on to the emptied aggregator (no copy), which starts
    /// without names; the taken part keeps the names of the processes that exited while it
    /// was filled and the generations of those and of its own keys, so a take costs
    /// O(the part), not O(every process ever seen). Events are folded batch by batch, so
    /// each one lands in exactly one taken part.
    pub fn take(&mut self) -> Aggregator {
        let mut next = Aggregator::with_max_keys(self.group, self.max_keys);
        next.syscall_totals = self.syscall_totals;
        next.generations = std::mem::take(&mut self.generations);
        let mut part = std::mem::replace(self, next);
        let tgids = part.keyed.keys().map(|k| k.tgid);
        let tgids: HashSet<u32> = tgids.chain(part.names.keys().map(|w| w.0)).collect();
        for tgid in tgids {
            if let Some(&g) = self.generations.get(&tgid) {
                part.generations.insert(tgid, g);
            }
        }
        part
    }

    /// Adds every series of `other` (same grouping) into `self`. When `self` keeps
    /// per-syscall series and `other` does not, `other`'s keyed series are added to them by
    /// syscall; when `other` keeps them and `self` does not, `self` keeps them from then on
    /// (its own keyed series added to them once).
    pub fn merge(&mut self, other: &Aggregator) {
        self.last = None;
        if other.keeps_syscall_series() && !self.keeps_syscall_series() {
            // Its per-syscall series hold its keyed rows' calls too: keep ours from here on
            // (adding our keyed rows to ours once) and add its.
            add_by_syscall(&mut self.by_syscall, &self.keyed);
            self.syscall_totals = true;
        }
        for (nr, s) in other.by_syscall.iter().enumerate() {
            if let Some(s) = s {
                syscall_series(&mut self.by_syscall, nr as u16).merge(s);
            }
        }
        if self.keeps_syscall_series() && !other.keeps_syscall_series() {
            add_by_syscall(&mut self.by_syscall, &other.keyed);
        }
        // Real keys in a stable order, so which keys survive a cap does not depend on
        // hash order.
        let mut keys: Vec<&Key> = other.keyed.keys().collect();
        keys.sort_unstable_by_key(|k| (k.tgid == OTHER, **k));
        for k in keys {
            let key = self.admit(*k);
            Arc::make_mut(self.keyed.entry(key).or_default()).merge(&other.keyed[k]);
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

    /// One row per syscall (unsorted): the per-syscall series, or when they are not kept
    /// the keyed series added up by syscall (with those of dropped rows).
    fn syscall_rows(&self) -> Vec<Row> {
        let derived;
        let series = if self.keeps_syscall_series() {
            &self.by_syscall
        } else {
            derived = {
                let mut sums = self.by_syscall.clone();
                add_by_syscall(&mut sums, &self.keyed);
                sums
            };
            &derived
        };
        let rows = series.iter().enumerate();
        rows.filter_map(|(nr, s)| {
            s.as_ref()
                .map(|s| Row::new(nr as u32, RowKey::Syscall, s.clone()))
        })
        .collect()
    }

    /// A snapshot keyed by syscall only, whatever the grouping: from the per-syscall
    /// series, or when they are not kept (see [`Aggregator::keep_syscall_totals`]) from the
    /// keyed series, O(keyed rows).
    pub fn syscall_snapshot(
        &self,
        start_unix_ns: u64,
        duration_ns: u64,
        loss: LossCounters,
    ) -> Snapshot {
        let mut rows = self.syscall_rows();
        rows.sort_unstable_by(|a, b| {
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
                    Row::new(k.nr, key, shared(s))
                })
                .collect(),
            GroupBy::Process | GroupBy::Thread => self
                .keyed
                .iter()
                .map(|(k, s)| {
                    if k.tgid == OTHER {
                        return Row::new(k.nr, RowKey::Other, shared(s));
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
                    Row::new(k.nr, key, shared(s))
                })
                .collect(),
        };
        rows.sort_unstable_by(|a, b| {
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

    /// 3,000 runs of calls from 5 processes (2 threads, 3 cgroups each) of 3 syscalls, some
    /// failing, some switched out, with a process exit now and then.
    fn mixed_events() -> Vec<Event> {
        let mut events = Vec::new();
        let mut x = 7u64;
        // Enough calls that the busiest series become full histograms, some of them
        // slower than the values a histogram counts apart.
        for i in 0..6000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = x >> 33;
            let tgid = 1 + (r % 5) as u32;
            // Runs: the same caller and syscall repeat for a while.
            let repeat = 1 + (r >> 8) % 7;
            for _ in 0..repeat {
                let ns = if r.is_multiple_of(13) {
                    5000 + i
                } else {
                    100 + i % 37
                };
                let mut c = call(tgid, (r >> 4) as u16 % 3, ns, -((r % 3) as i64));
                c.tid = tgid * 10 + (r >> 12) as u32 % 2;
                c.cgroup = 100 + tgid % 3;
                let anatomy = if r.is_multiple_of(11) {
                    Anatomy {
                        voluntary: 1,
                        blocked_ns: 40,
                        ..Anatomy::default()
                    }
                } else {
                    Anatomy::default()
                };
                events.push(Event::Call(c, anatomy));
            }
            if r.is_multiple_of(97) {
                events.push(exit(tgid, b"gone"));
            }
        }
        events
    }

    /// Every keyed grouping.
    const KEYED: [GroupBy; 4] = [
        GroupBy::Process,
        GroupBy::Thread,
        GroupBy::Cgroup,
        GroupBy::Container,
    ];

    /// A snapshot's rows by syscall, each with its counts, sums, extremes, percentiles and
    /// time off CPU (not the histogram's representation, which merging may change).
    fn syscall_rows_of(a: &Aggregator) -> Vec<String> {
        let s = a.syscall_snapshot(0, 0, LossCounters::default());
        let mut rows: Vec<String> = s
            .rows
            .iter()
            .map(|r| {
                let x = &r.series;
                let p = [50.0, 90.0, 99.0, 99.9].map(|q| x.hist.percentile(q));
                format!(
                    "{} n={} sum={} min={} max={} err={} {:?} p={p:?} off={:?}",
                    r.syscall,
                    x.count(),
                    x.total_ns,
                    x.min_ns,
                    x.max_ns,
                    x.errors,
                    x.errnos,
                    x.off_cpu
                )
            })
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn syscall_rows_kept_derived_or_merged_are_the_same() {
        let events = mixed_events();
        let mut by_syscall = Aggregator::new(GroupBy::Syscall);
        by_syscall.fold(&events);
        let want = syscall_rows_of(&by_syscall);
        assert_eq!(want.len(), 3);
        for group in KEYED {
            // Derived from the keyed rows (a cap of 3 keys: the `other` rows count too).
            let mut derived = Aggregator::with_max_keys(group, 3);
            derived.fold(&events);
            assert_eq!(syscall_rows_of(&derived), want, "{group:?} derived");
            // Kept beside them.
            let mut kept = Aggregator::with_max_keys(group, 3);
            kept.keep_syscall_totals();
            kept.fold(&events);
            assert_eq!(syscall_rows_of(&kept), want, "{group:?} kept");
            // `top`: parts that do not keep them, merged into a total that does.
            let mut total = Aggregator::with_max_keys(group, 3);
            total.keep_syscall_totals();
            let mut cur = Aggregator::with_max_keys(group, 3);
            let mut unkept = Aggregator::with_max_keys(group, 3);
            for chunk in events.chunks(500) {
                cur.fold(chunk);
                let part = cur.take();
                assert!(part.by_syscall.is_empty(), "a part records each call once");
                total.merge(&part);
                unkept.merge(&part);
            }
            assert_eq!(syscall_rows_of(&total), want, "{group:?} merged");
            assert_eq!(syscall_rows_of(&unkept), want, "{group:?} merged, not kept");
            // A part that keeps them, merged into one that does not: it keeps them from then.
            let mut half = Aggregator::with_max_keys(group, 3);
            let (a, b) = events.split_at(events.len() / 2);
            half.fold(a);
            let mut rest = Aggregator::with_max_keys(group, 3);
            rest.keep_syscall_totals();
            rest.fold(b);
            half.merge(&rest);
            assert!(half.syscall_totals);
            assert_eq!(syscall_rows_of(&half), want, "{group:?} a kept part merged");
        }
    }

    /// A batch folded at once gives what recording its calls one by one gives, in every
    /// grouping: runs of one caller and syscall, interleavings, exits (a pid reused) and
    /// calls that switched, under a cap that folds some keys; and so does folding the
    /// calls as call-log slots.
    #[test]
    fn folding_a_batch_equals_recording_each_call() {
        let events = mixed_events();
        for group in std::iter::once(GroupBy::Syscall).chain(KEYED) {
            let mut batch = Aggregator::with_max_keys(group, 3);
            batch.fold(&events);
            let mut each = Aggregator::with_max_keys(group, 3);
            for ev in &events {
                match ev {
                    Event::Call(c, a) | Event::CallStack(c, a, _) => each.record_call(c, a),
                    Event::Exit(e) => each.retire(e.tgid, &e.comm),
                }
            }
            // The calls as call-log slots, read in place; the exits as events between them.
            let mut slots = Aggregator::with_max_keys(group, 3);
            let mut run: Vec<super::super::Slot> = Vec::new();
            for ev in &events {
                match ev {
                    Event::Call(c, a) | Event::CallStack(c, a, _) => {
                        let switched = a.voluntary + a.involuntary != 0;
                        let stack = matches!(ev, Event::CallStack(..));
                        let c = SyscallEvent {
                            kind: if switched {
                                profiler_common::kind::CALL_SWITCHED
                            } else {
                                profiler_common::kind::CALL
                            },
                            flags: if stack {
                                profiler_common::flag::STACK
                            } else {
                                0
                            },
                            ..*c
                        };
                        run.push(super::super::call_slot(&c));
                        if switched {
                            run.push(super::super::anatomy_slot(a));
                        }
                        if let Event::CallStack(_, _, r) = ev {
                            run.push(super::super::stack_slot(&profiler_common::StackIds {
                                user: r.user,
                                kernel: r.kernel,
                                ..profiler_common::StackIds::default()
                            }));
                        }
                    }
                    Event::Exit(_) => {
                        slots.fold_batch(Batch::Slots(&std::mem::take(&mut run)));
                        slots.fold_batch(Batch::Events(std::slice::from_ref(ev)));
                    }
                }
            }
            slots.fold_batch(Batch::Slots(&run));
            let rows = |a: &Aggregator| -> Vec<String> {
                let s = a.snapshot(0, 0, LossCounters::default(), &|p| Some(format!("p{p}")));
                s.rows
                    .iter()
                    .map(|r| format!("{:?} {} {:?}", r.key, r.syscall, r.series))
                    .collect()
            };
            assert_eq!(batch.events(), each.events(), "{group:?}");
            assert_eq!(rows(&batch), rows(&each), "{group:?}");
            assert_eq!(slots.events(), each.events(), "{group:?}");
            assert_eq!(rows(&slots), rows(&each), "{group:?}");
        }
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

    /// (name, total ns) of each row of `s`, sorted.
    fn comm_totals(s: &Snapshot) -> Vec<(String, u64)> {
        let mut names: Vec<(String, u64)> = s
            .rows
            .iter()
            .map(|r| (r.key.comm().unwrap().to_string(), r.series.total_ns))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn reused_pids_do_not_merge() {
        let mut a = Aggregator::new(GroupBy::Process);
        a.fold(&[ev(5, 0, 10, 0), exit(5, b"first"), ev(5, 0, 20, 0)]);
        let s = a.snapshot(0, 0, LossCounters::default(), &|_| Some("second".into()));
        assert_eq!(
            comm_totals(&s),
            vec![("first".into(), 10), ("second".into(), 20)]
        );
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

    /// (name, calls) of the rows of `a`'s snapshot (named by `live`), sorted.
    fn named_counts(a: &Aggregator, live: &dyn Fn(u32) -> Option<String>) -> Vec<(String, u64)> {
        let s = a.snapshot(0, 0, LossCounters::default(), live);
        let mut by_name: std::collections::BTreeMap<String, u64> = Default::default();
        for r in &s.rows {
            *by_name
                .entry(r.key.comm().unwrap_or_default().to_string())
                .or_default() += r.series.count();
        }
        by_name.into_iter().collect()
    }

    #[test]
    fn exited_processes_are_kept_for_the_retention_then_dropped() {
        let mut a = Aggregator::with_max_keys(GroupBy::Process, 4);
        a.retain_exited(2);
        let live = |p: u32| (p == 9).then(|| "live".to_string());
        // Two exited processes named "w", one named "x", one live process.
        let mut batch = Vec::new();
        for (pid, n) in [(1u32, 3), (2, 4), (3, 5), (9, 1)] {
            for _ in 0..n {
                batch.push(ev(pid, 0, 10, 0));
            }
        }
        batch.extend([exit(1, b"w"), exit(2, b"w"), exit(3, b"x")]);
        a.fold(&batch);
        let want = vec![
            ("live".to_string(), 1),
            ("w".to_string(), 7),
            ("x".to_string(), 5),
        ];
        // Each snapshot (scrape) below is followed by expire, as serve does.
        assert_eq!(
            named_counts(&a, &live),
            want,
            "first scrape after the exits"
        );
        a.expire(&live);
        assert_eq!(
            a.keyed.len(),
            3,
            "merged by name: one row per name and syscall"
        );
        assert_eq!(
            named_counts(&a, &live),
            want,
            "second scrape: the same sums"
        );
        a.expire(&live);
        assert_eq!(named_counts(&a, &live), vec![("live".to_string(), 1)]);
        assert!(a.names.is_empty() && a.generations.is_empty());
        assert_eq!(a.admitted.len(), 1);
        // The per-syscall rows hold every call.
        let s = a.syscall_snapshot(0, 0, LossCounters::default());
        assert_eq!(s.total_calls(), 13);
        // The slots freed: new processes are admitted, not folded (the cap is 4).
        a.fold(&[ev(4, 0, 10, 0), ev(5, 0, 10, 0), ev(6, 0, 10, 0)]);
        let s = a.snapshot(0, 0, LossCounters::default(), &live);
        assert!(s.rows.iter().all(|r| !r.key.is_other()) && s.folded_keys == 0);
    }

    #[test]
    fn a_name_shared_by_a_live_process_is_kept() {
        let mut a = Aggregator::new(GroupBy::Process);
        a.retain_exited(2);
        let live = |p: u32| (p == 9).then(|| "sh".to_string());
        a.fold(&[ev(1, 0, 10, 0), ev(9, 0, 10, 0), exit(1, b"sh")]);
        for _ in 0..3 {
            assert_eq!(named_counts(&a, &live), vec![("sh".to_string(), 2)]);
            a.expire(&live);
        }
        // The live one exits too: both kept for one more scrape, then gone.
        a.fold(&[exit(9, b"sh")]);
        assert_eq!(named_counts(&a, &live), vec![("sh".to_string(), 2)]);
        a.expire(&|_| None);
        assert_eq!(named_counts(&a, &|_| None), vec![("sh".to_string(), 2)]);
        a.expire(&|_| None);
        assert!(named_counts(&a, &|_| None).is_empty());
        assert!(a.keyed.is_empty() && a.names.is_empty());
    }

    #[test]
    fn take_moves_generations_and_keeps_exit_names() {
        let mut total = Aggregator::new(GroupBy::Process);
        let mut cur = Aggregator::new(GroupBy::Process);
        cur.fold(&[ev(5, 0, 10, 0)]);
        total.merge(&cur.take());
        // The process exits in the next interval, without a call in it; its pid is reused.
        cur.fold(&[exit(5, b"first"), ev(5, 0, 20, 0)]);
        let part = cur.take();
        assert_eq!(
            part.names.len(),
            1,
            "the part names the process that exited in it"
        );
        assert!(
            cur.names.is_empty(),
            "the next interval starts without names"
        );
        assert_eq!(cur.generations.get(&5), Some(&1));
        total.merge(&part);
        let s = total.snapshot(0, 0, LossCounters::default(), &|_| Some("second".into()));
        assert_eq!(
            comm_totals(&s),
            vec![("first".into(), 10), ("second".into(), 20)]
        );
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
