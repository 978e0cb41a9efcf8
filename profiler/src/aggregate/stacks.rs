//! Call stacks (`--stacks`): calls and their summed latency per (process name, user stack,
//! kernel stack, syscall). Plain data: the frames arrive symbolized (`collect::stacks`),
//! are interned once, and each call then costs one hash of four small integers.
//!
//! Bounded: at most `max_stacks` distinct keys; calls beyond that fold, exactly, into one
//! `[other stacks]` entry per process name and syscall, and the result says how many calls
//! were folded. [`StackSet`] is the serializable result every presenter reads (folded
//! lines, flame graphs, call paths); it merges across recordings.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use serde::{Deserialize, Serialize};

use crate::syscalls;

/// A stack's frames, outermost first (the order of folded stacks): function names, or a
/// bracketed note such as `[unknown]` or `[lost: ...]`.
pub type Frames = Arc<[Arc<str>]>;

/// The default cap on distinct (process name, user stack, kernel stack, syscall) keys.
pub const DEFAULT_MAX_STACKS: usize = 10_000;

/// The frame that stands for every stack folded beyond the cap.
pub const OTHER_STACKS: &str = "[other stacks]";

/// The outermost frame added to a user stack of one or two frames: the frame-pointer walk
/// stopped at once, so the code most likely lacks frame pointers (README, "Stacks").
pub const SHORT_STACK: &str = "[short stack: no frame pointers?]";

/// The suffix of kernel frames in folded stacks (the convention of flamegraph.pl's
/// `stackcollapse-perf.pl --kernel`, which inferno and flamegraph.pl colour as kernel).
pub const KERNEL_SUFFIX: &str = "_[k]";

/// What a folded line's value counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weight {
    /// The calls' summed latency, ns.
    #[default]
    Time,
    /// The number of calls.
    Count,
}

/// Calls and their summed latency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Calls.
    pub count: u64,
    /// Summed latency, ns.
    pub total_ns: u64,
}

impl Tally {
    fn add(&mut self, count: u64, ns: u64) {
        self.count += count;
        self.total_ns = self.total_ns.saturating_add(ns);
    }

    /// The value of a folded line under `weight`.
    pub fn weight(&self, weight: Weight) -> u64 {
        match weight {
            Weight::Time => self.total_ns,
            Weight::Count => self.count,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    comm: u32,
    user: u32,
    kernel: u32,
    nr: u32,
}

/// Interns values so that each distinct one is stored once and named by an index.
#[derive(Debug)]
struct Interner<T: std::hash::Hash + Eq + Clone> {
    values: Vec<T>,
    ids: HashMap<T, u32>,
}

impl<T: std::hash::Hash + Eq + Clone> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            values: Vec::new(),
            ids: HashMap::new(),
        }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Interner<T> {
    fn intern(&mut self, v: T) -> u32 {
        if let Some(&id) = self.ids.get(&v) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.clone());
        self.ids.insert(v, id);
        id
    }
}

/// Accumulates calls by stack. Fold into it with interned ids ([`StackTable::frames_id`],
/// [`StackTable::comm_id`]), read it as a [`StackSet`].
#[derive(Debug)]
pub struct StackTable {
    frames: Interner<Frames>,
    comms: Interner<Arc<str>>,
    tallies: HashMap<Key, Tally>,
    other: BTreeMap<(u32, u32), Tally>,
    max_stacks: usize,
}

impl Default for StackTable {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_STACKS)
    }
}

impl StackTable {
    /// An empty table keeping at most `max_stacks` distinct keys.
    pub fn new(max_stacks: usize) -> Self {
        StackTable {
            frames: Interner::default(),
            comms: Interner::default(),
            tallies: HashMap::new(),
            other: BTreeMap::new(),
            max_stacks,
        }
    }

    /// The id of a frame list (the same list always gets the same id).
    pub fn frames_id(&mut self, frames: Frames) -> u32 {
        self.frames.intern(frames)
    }

    /// The id of a process name.
    pub fn comm_id(&mut self, comm: &str) -> u32 {
        if let Some(&id) = self.comms.ids.get(comm) {
            return id;
        }
        self.comms.intern(Arc::from(comm))
    }

    /// Adds one call of syscall `nr` that took `ns`, made by process `comm` from stacks
    /// `user` and `kernel` (ids from this table).
    #[inline]
    pub fn add(&mut self, comm: u32, user: u32, kernel: u32, nr: u32, ns: u64) {
        let key = Key {
            comm,
            user,
            kernel,
            nr,
        };
        if let Some(t) = self.tallies.get_mut(&key) {
            t.add(1, ns);
        } else if self.tallies.len() < self.max_stacks {
            self.tallies.insert(
                key,
                Tally {
                    count: 1,
                    total_ns: ns,
                },
            );
        } else {
            self.other.entry((comm, nr)).or_default().add(1, ns);
        }
    }

    /// The frames of id `id`.
    pub fn frames(&self, id: u32) -> Option<Frames> {
        self.frames.values.get(id as usize).cloned()
    }

    /// Everything added since the last take, leaving the tallies empty (ids stay valid).
    pub fn take(&mut self) -> StackSet {
        let set = self.summary();
        self.tallies.clear();
        self.other.clear();
        set
    }

    /// Whether no call was added.
    pub fn is_empty(&self) -> bool {
        self.tallies.is_empty() && self.other.is_empty()
    }

    /// Everything added so far, as plain rows.
    pub fn summary(&self) -> StackSet {
        let frames = |id: u32| -> Vec<String> {
            self.frames.values[id as usize]
                .iter()
                .map(|f| f.to_string())
                .collect()
        };
        let comm = |id: u32| self.comms.values[id as usize].to_string();
        let mut rows: Vec<StackRow> = self
            .tallies
            .iter()
            .map(|(k, t)| StackRow {
                comm: comm(k.comm),
                syscall: syscalls::name(k.nr),
                nr: k.nr,
                user: frames(k.user),
                kernel: frames(k.kernel),
                other: false,
                count: t.count,
                total_ns: t.total_ns,
            })
            .collect();
        rows.extend(self.other.iter().map(|(&(c, nr), t)| StackRow {
            comm: comm(c),
            syscall: syscalls::name(nr),
            nr,
            user: Vec::new(),
            kernel: Vec::new(),
            other: true,
            count: t.count,
            total_ns: t.total_ns,
        }));
        let mut set = StackSet { rows };
        set.sort();
        set
    }
}

/// The calls of one (process name, user stack, kernel stack, syscall), as serialized in a
/// summary line's `stacks` (README, "JSON Lines").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRow {
    /// Process name.
    pub comm: String,
    /// Syscall name.
    pub syscall: String,
    /// Syscall number.
    pub nr: u32,
    /// User frames, outermost first.
    #[serde(default)]
    pub user: Vec<String>,
    /// Kernel frames, outermost first.
    #[serde(default)]
    pub kernel: Vec<String>,
    /// Set on the entry that holds the calls of stacks beyond the cap (no frames).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other: bool,
    /// Calls.
    pub count: u64,
    /// Summed latency, ns.
    pub total_ns: u64,
}

impl StackRow {
    fn key(&self) -> (&str, u32, &[String], &[String], bool) {
        (&self.comm, self.nr, &self.user, &self.kernel, self.other)
    }

    /// The frames of the folded line, outermost first: the process name, the user frames,
    /// the kernel frames (suffixed `_[k]`) and the syscall, each made safe for the format.
    pub fn folded_frames(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.user.len() + self.kernel.len() + 3);
        out.push(folded_name(&self.comm));
        if self.other {
            out.push(OTHER_STACKS.to_string());
        }
        out.extend(self.user.iter().map(|f| folded_name(f)));
        out.extend(
            self.kernel
                .iter()
                .map(|f| format!("{}{KERNEL_SUFFIX}", folded_name(f))),
        );
        out.push(folded_name(&self.syscall));
        out
    }
}

/// A frame name made safe for a folded line: `;` separates frames and a line ends the
/// record, so `;` becomes `:` and control characters become `?`.
pub fn folded_name(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| match c {
            ';' => ':',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    if clean.is_empty() {
        "[empty]".to_string()
    } else {
        clean
    }
}

/// The stacks of a recording (or of an interval of `top`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackSet {
    /// The entries, largest summed latency first.
    pub rows: Vec<StackRow>,
}

/// One call path of a syscall: its frames (user then kernel, outermost first) and calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallPath {
    /// Process name.
    pub comm: String,
    /// User frames, outermost first (`[other stacks]` alone for the folded entry).
    pub user: Vec<String>,
    /// Kernel frames, outermost first.
    pub kernel: Vec<String>,
    /// The calls made from it.
    pub tally: Tally,
    /// Whether the user part is one or two frames (frame pointers likely missing).
    pub short: bool,
}

impl StackSet {
    /// Largest summed latency first; ties in a fixed order, so output is deterministic.
    fn sort(&mut self) {
        self.rows.sort_by(|a, b| {
            b.total_ns
                .cmp(&a.total_ns)
                .then(b.count.cmp(&a.count))
                .then_with(|| a.key().cmp(&b.key()))
        });
    }

    /// Whether there are no stacks.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds the entries of `other`: equal keys are summed, so merging recordings is exact.
    pub fn merge(&mut self, other: &StackSet) {
        type OwnedKey = (String, u32, Vec<String>, Vec<String>, bool);
        let mut index: HashMap<OwnedKey, usize> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (c, n, u, k, o) = r.key();
                ((c.to_string(), n, u.to_vec(), k.to_vec(), o), i)
            })
            .collect();
        for r in &other.rows {
            let (c, n, u, k, o) = r.key();
            let key = (c.to_string(), n, u.to_vec(), k.to_vec(), o);
            match index.get(&key) {
                Some(&i) => {
                    let t = &mut self.rows[i];
                    t.count += r.count;
                    t.total_ns = t.total_ns.saturating_add(r.total_ns);
                }
                None => {
                    index.insert(key, self.rows.len());
                    self.rows.push(r.clone());
                }
            }
        }
        self.sort();
    }

    /// Keeps only the entries of these syscalls.
    pub fn retain_syscalls(&mut self, only: &[u32]) {
        self.rows.retain(|r| only.contains(&r.nr));
    }

    /// Brendan Gregg's folded format: `comm;outer;...;inner;syscall VALUE`, one line per
    /// distinct stack, VALUE the summed latency in ns or the calls (`weight`). Lines with
    /// a value of 0 are left out (flamegraph.pl and inferno draw nothing for them).
    pub fn folded(&self, weight: Weight) -> String {
        let mut lines: BTreeMap<String, u64> = BTreeMap::new();
        for r in &self.rows {
            let v = r.weight(weight);
            if v > 0 {
                *lines.entry(r.folded_frames().join(";")).or_default() += v;
            }
        }
        let mut out = String::new();
        for (stack, v) in lines {
            out.push_str(&stack);
            out.push(' ');
            out.push_str(&v.to_string());
            out.push('\n');
        }
        out
    }

    /// The syscalls with stacks, with their summed tallies, largest under `weight` first.
    pub fn syscalls(&self, weight: Weight) -> Vec<(u32, String, Tally)> {
        let mut by: BTreeMap<u32, (String, Tally)> = BTreeMap::new();
        for r in &self.rows {
            let e = by
                .entry(r.nr)
                .or_insert_with(|| (r.syscall.clone(), Tally::default()));
            e.1.add(r.count, r.total_ns);
        }
        let mut v: Vec<(u32, String, Tally)> =
            by.into_iter().map(|(nr, (s, t))| (nr, s, t)).collect();
        v.sort_by(|a, b| {
            b.2.weight(weight)
                .cmp(&a.2.weight(weight))
                .then(a.0.cmp(&b.0))
        });
        v
    }

    /// The call paths that make syscall `nr`, largest summed latency first, at most `n`
    /// (one per process name and stacks).
    pub fn paths(&self, nr: u32, n: usize) -> Vec<CallPath> {
        self.rows
            .iter()
            .filter(|r| r.nr == nr)
            .take(n)
            .map(|r| CallPath {
                comm: r.comm.clone(),
                user: if r.other {
                    vec![OTHER_STACKS.to_string()]
                } else {
                    r.user.clone()
                },
                kernel: r.kernel.clone(),
                tally: Tally {
                    count: r.count,
                    total_ns: r.total_ns,
                },
                short: r.user.first().is_some_and(|f| f == SHORT_STACK),
            })
            .collect()
    }

    /// Calls in entries folded beyond the cap.
    pub fn folded_calls(&self) -> u64 {
        self.rows.iter().filter(|r| r.other).map(|r| r.count).sum()
    }

    /// Calls whose user stack was one or two frames (marked [`SHORT_STACK`]), and all
    /// calls.
    pub fn short_calls(&self) -> (u64, u64) {
        let short = self
            .rows
            .iter()
            .filter(|r| r.user.first().is_some_and(|f| f == SHORT_STACK))
            .map(|r| r.count)
            .sum();
        (short, self.rows.iter().map(|r| r.count).sum())
    }
}

impl StackRow {
    /// The value of its folded line under `weight`.
    pub fn weight(&self, weight: Weight) -> u64 {
        Tally {
            count: self.count,
            total_ns: self.total_ns,
        }
        .weight(weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(names: &[&str]) -> Frames {
        names.iter().map(|n| Arc::from(*n)).collect()
    }

    #[test]
    fn folds_calls_by_stack_and_writes_folded_lines() {
        let mut t = StackTable::new(100);
        let nanosleep = syscalls::number("clock_nanosleep").unwrap();
        let getppid = syscalls::number("getppid").unwrap();
        let c = t.comm_id("helper");
        let slow = t.frames_id(frames(&["main", "slow_path_a"]));
        let fast = t.frames_id(frames(&["main", "fast_path_b"]));
        assert_eq!(t.frames_id(frames(&["main", "slow_path_a"])), slow);
        let k = t.frames_id(frames(&["entry_SYSCALL_64", "do_syscall_64"]));
        for _ in 0..3 {
            t.add(c, slow, k, nanosleep, 10_000_000);
        }
        for _ in 0..100 {
            t.add(c, fast, k, getppid, 200);
        }
        let set = t.summary();
        assert_eq!(set.rows.len(), 2);
        assert_eq!(set.rows[0].count, 3, "largest time first");
        assert_eq!(
            set.folded(Weight::Time),
            "helper;main;fast_path_b;entry_SYSCALL_64_[k];do_syscall_64_[k];getppid 20000\n\
             helper;main;slow_path_a;entry_SYSCALL_64_[k];do_syscall_64_[k];clock_nanosleep 30000000\n"
        );
        assert!(set.folded(Weight::Count).contains("getppid 100\n"));
        let paths = set.paths(getppid, 5);
        assert_eq!(paths.len(), 1);
        assert_eq!(paths[0].user[1], "fast_path_b");
        assert_eq!(paths[0].tally.count, 100);
        let names: Vec<String> = set
            .syscalls(Weight::Time)
            .into_iter()
            .map(|s| s.1)
            .collect();
        assert_eq!(names, ["clock_nanosleep", "getppid"]);
    }

    #[test]
    fn the_cap_folds_the_rest_exactly() {
        let mut t = StackTable::new(2);
        let c = t.comm_id("x");
        let k = t.frames_id(frames(&[]));
        for i in 0..10u64 {
            let u = t.frames_id(frames(&[&format!("f{i}")]));
            t.add(c, u, k, 0, 10);
        }
        let set = t.summary();
        assert_eq!(set.rows.len(), 3);
        assert_eq!(set.folded_calls(), 8);
        let total: u64 = set.rows.iter().map(|r| r.count).sum();
        assert_eq!(total, 10);
        assert!(
            set.folded(Weight::Count)
                .contains("x;[other stacks];read 8\n")
        );
    }

    #[test]
    fn names_are_made_safe_and_sets_merge() {
        assert_eq!(folded_name("a;b\nc"), "a:b?c");
        assert_eq!(folded_name(""), "[empty]");
        let mut t = StackTable::new(10);
        let c = t.comm_id("x");
        let u = t.frames_id(frames(&["main"]));
        t.add(c, u, u, 1, 5);
        let one = t.summary();
        let mut both = one.clone();
        both.merge(&one);
        assert_eq!(both.rows.len(), 1);
        assert_eq!((both.rows[0].count, both.rows[0].total_ns), (2, 10));
        let json = serde_json::to_string(&both).unwrap();
        let back: StackSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, both);
    }
}
