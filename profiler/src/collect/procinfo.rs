//! Process names: read from /proc at first sight, cached, and completed by the kernel's
//! process-exit records (see `aggregate::comm_name`) for processes that were gone before
//! /proc could be read. The name of a process that exited is forgotten at the next drain
//! ([`Comms::sweep`]): the aggregator keeps exited processes' names itself, so the cache
//! holds the live processes (and the last drain's exits), not every process ever seen.
//! Also a process's cgroup v2 path, which container and cgroup naming read.
#![forbid(unsafe_code)]

use std::{collections::HashMap, path::PathBuf};

/// A bounded cache of process names by tgid.
#[derive(Debug, Default)]
pub struct Comms {
    names: HashMap<u32, String>,
    /// Processes that exited since the last [`Comms::sweep`].
    exited: Vec<u32>,
}

/// Most names kept; beyond this the cache is cleared (names are re-read on demand).
const MAX_NAMES: usize = 1 << 20;

impl Comms {
    /// The name of `tgid`, reading /proc the first time.
    pub fn get(&mut self, tgid: u32) -> Option<String> {
        if let Some(n) = self.names.get(&tgid) {
            return Some(n.clone());
        }
        let name = read_comm(tgid)?;
        self.insert(tgid, name.clone());
        Some(name)
    }

    /// Caches `tgid`'s name from /proc, unless one is known (a caller seen while it still
    /// exists).
    pub fn see(&mut self, tgid: u32) {
        if !self.names.contains_key(&tgid)
            && let Some(name) = read_comm(tgid)
        {
            self.insert(tgid, name);
        }
    }

    /// Records a name learned elsewhere (a process-exit record), unless one is known.
    pub fn learn(&mut self, tgid: u32, name: String) {
        if !self.names.contains_key(&tgid) {
            self.insert(tgid, name);
        }
    }

    /// A process-exit record: `tgid`'s name is learned (see [`Comms::learn`]) and kept
    /// until the next [`Comms::sweep`] (the slow calls of the same drain are still named).
    pub fn exited(&mut self, tgid: u32, name: String) {
        self.learn(tgid, name);
        self.exited.push(tgid);
    }

    /// Forgets the names of the processes that exited before this call.
    pub fn sweep(&mut self) {
        for tgid in self.exited.drain(..) {
            self.names.remove(&tgid);
        }
    }

    /// Whether a name is cached for `tgid`.
    pub fn contains(&self, tgid: u32) -> bool {
        self.names.contains_key(&tgid)
    }

    /// Every cached name.
    pub fn all(&self) -> HashMap<u32, String> {
        self.names.clone()
    }

    /// The cached name, without touching /proc.
    pub fn cached(&self, tgid: u32) -> Option<String> {
        self.names.get(&tgid).cloned()
    }

    fn insert(&mut self, tgid: u32, name: String) {
        if self.names.len() >= MAX_NAMES {
            self.names.clear();
        }
        self.names.insert(tgid, name);
    }
}

/// `/proc/<pid>/comm`, if the process exists.
pub fn read_comm(pid: u32) -> Option<String> {
    procfs::process::Process::new(pid as i32)
        .ok()?
        .stat()
        .ok()
        .map(|s| s.comm)
}

/// The cgroup v2 path (relative to the hierarchy's root, with a leading `/`) of the
/// process whose /proc directory is `dir`: the `0::` line of its `cgroup` file, read with
/// procfs. `None` when the process is gone, has no v2 line, or the path is not UTF-8
/// (cgroup names may hold any byte; callers then walk the hierarchy instead).
pub fn cgroup_v2_path(dir: PathBuf) -> Option<String> {
    procfs::process::Process::new_with_root(dir)
        .ok()?
        .cgroups()
        .ok()?
        .into_iter()
        .find(|c| c.hierarchy == 0 && c.controllers.is_empty())
        .map(|c| c.pathname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cgroup_v2_path() {
        let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let want = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(String::from);
        assert_eq!(cgroup_v2_path(PathBuf::from("/proc/self")), want);
        assert_eq!(cgroup_v2_path(PathBuf::from("/proc/0")), None);
    }

    #[test]
    fn reads_own_comm() {
        let mut c = Comms::default();
        let me = std::process::id();
        let name = c.get(me).expect("own process exists");
        assert!(!name.is_empty());
        assert_eq!(c.cached(me), Some(name));
        c.learn(me, "other".into());
        assert_ne!(
            c.cached(me).as_deref(),
            Some("other"),
            "a known name is kept"
        );
    }

    #[test]
    fn exited_names_are_swept_at_the_next_drain() {
        let mut c = Comms::default();
        c.exited(1 << 30, "gone".into());
        c.learn(7, "live".into());
        assert_eq!(c.cached(1 << 30).as_deref(), Some("gone"));
        c.sweep();
        assert!(!c.contains(1 << 30));
        assert_eq!(c.cached(7).as_deref(), Some("live"));
        assert_eq!(c.all().len(), 1);
    }
}
