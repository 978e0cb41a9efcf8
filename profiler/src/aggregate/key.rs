//! The one typed key of a row: who made its calls (besides its syscall). Every format
//! derives its columns, fields, tags and labels from it; none looks at sentinels (a name
//! `other`, a pid slot holding a cgroup id). Plain data: no I/O, no formatting of its own.

use super::{ContainerInfo, GroupBy};

/// Who made a row's calls: the part of its identity besides the syscall.
///
/// The derived order puts [`RowKey::Other`] first, then keys by pid (and tid), cgroup path
/// or container, which is the order rows of equal total time are listed in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RowKey {
    /// The calls of processes (threads, cgroups, containers) folded beyond `--max-keys`:
    /// one row per syscall, counts exact.
    Other,
    /// Every call of the syscall (`--by syscall`).
    Syscall,
    /// One process (`--by process`).
    Process {
        /// Its pid.
        pid: u32,
        /// Its name (`comm`), when known. Untrusted text: escape it before printing.
        comm: Option<String>,
    },
    /// One thread (`--by thread`).
    Thread {
        /// Its process's pid.
        pid: u32,
        /// Its tid.
        tid: u32,
        /// Its process's name, when known. Untrusted text.
        comm: Option<String>,
    },
    /// One cgroup v2 (`--by cgroup`).
    Cgroup {
        /// Its path, relative to the hierarchy's root (`cgroup#ID` when it could not be
        /// read). Untrusted text.
        path: String,
    },
    /// One container (`--by container`).
    Container(ContainerInfo),
}

/// What makes two rows of one syscall the same row: the key without the names that
/// describe it (a process's name, a container's name and image can differ between the
/// intervals of a recording; its pid or id does not).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyId {
    /// [`RowKey::Other`].
    Other,
    /// [`RowKey::Syscall`].
    Syscall,
    /// A process, by pid.
    Process(u32),
    /// A thread, by pid and tid.
    Thread(u32, u32),
    /// A cgroup, by path.
    Cgroup(String),
    /// A container, by [`ContainerInfo::key`].
    Container(String),
}

impl RowKey {
    /// The grouping this key belongs to (`None` for [`RowKey::Other`], which every
    /// grouping but [`GroupBy::Syscall`] has).
    pub fn group(&self) -> Option<GroupBy> {
        Some(match self {
            RowKey::Other => return None,
            RowKey::Syscall => GroupBy::Syscall,
            RowKey::Process { .. } => GroupBy::Process,
            RowKey::Thread { .. } => GroupBy::Thread,
            RowKey::Cgroup { .. } => GroupBy::Cgroup,
            RowKey::Container(_) => GroupBy::Container,
        })
    }

    /// The key of this row's calls when rows are regrouped by `group`: the same key, or a
    /// coarser one (a thread's process; any row's syscall); `None` when this key does not
    /// hold what `group` needs (a process row has no thread).
    pub fn regroup(&self, group: GroupBy) -> Option<RowKey> {
        match (self, group) {
            (_, GroupBy::Syscall) => Some(RowKey::Syscall),
            (RowKey::Other, _) => Some(RowKey::Other),
            (RowKey::Thread { pid, comm, .. }, GroupBy::Process) => Some(RowKey::Process {
                pid: *pid,
                comm: comm.clone(),
            }),
            (k, g) if k.group() == Some(g) => Some(k.clone()),
            _ => None,
        }
    }

    /// The key's identity (see [`KeyId`]).
    pub fn id(&self) -> KeyId {
        match self {
            RowKey::Other => KeyId::Other,
            RowKey::Syscall => KeyId::Syscall,
            RowKey::Process { pid, .. } => KeyId::Process(*pid),
            RowKey::Thread { pid, tid, .. } => KeyId::Thread(*pid, *tid),
            RowKey::Cgroup { path } => KeyId::Cgroup(path.clone()),
            RowKey::Container(c) => KeyId::Container(c.key().to_string()),
        }
    }

    /// Takes from `other` (a key of the same identity) the names this key lacks: a
    /// process's name, a container's name and the rest of what its runtime told.
    pub fn absorb(&mut self, other: &RowKey) {
        match (self, other) {
            (
                RowKey::Process { comm, .. } | RowKey::Thread { comm, .. },
                RowKey::Process { comm: theirs, .. } | RowKey::Thread { comm: theirs, .. },
            ) if comm.is_none() => comm.clone_from(theirs),
            (RowKey::Container(have), RowKey::Container(c))
                if have.name.is_empty() && !c.name.is_empty() =>
            {
                *have = c.clone();
            }
            _ => {}
        }
    }

    /// The process id, for a process's or a thread's row.
    pub fn pid(&self) -> Option<u32> {
        match self {
            RowKey::Process { pid, .. } | RowKey::Thread { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    /// The thread id, for a thread's row.
    pub fn tid(&self) -> Option<u32> {
        match self {
            RowKey::Thread { tid, .. } => Some(*tid),
            _ => None,
        }
    }

    /// The process name, for a process's or a thread's row whose name is known.
    pub fn comm(&self) -> Option<&str> {
        match self {
            RowKey::Process { comm, .. } | RowKey::Thread { comm, .. } => comm.as_deref(),
            _ => None,
        }
    }

    /// Whether the row holds the calls of keys folded beyond `--max-keys`.
    pub fn is_other(&self) -> bool {
        *self == RowKey::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(comm: Option<&str>) -> RowKey {
        RowKey::Thread {
            pid: 7,
            tid: 8,
            comm: comm.map(str::to_string),
        }
    }

    #[test]
    fn regroups_to_coarser_keys_only() {
        let t = thread(Some("cat"));
        assert_eq!(
            t.regroup(GroupBy::Process),
            Some(RowKey::Process {
                pid: 7,
                comm: Some("cat".into())
            })
        );
        assert_eq!(t.regroup(GroupBy::Syscall), Some(RowKey::Syscall));
        assert_eq!(t.regroup(GroupBy::Thread), Some(t.clone()));
        assert_eq!(t.regroup(GroupBy::Cgroup), None);
        let p = t.regroup(GroupBy::Process).unwrap();
        assert_eq!(p.regroup(GroupBy::Thread), None);
        assert_eq!(RowKey::Syscall.regroup(GroupBy::Process), None);
        for g in [
            GroupBy::Process,
            GroupBy::Thread,
            GroupBy::Cgroup,
            GroupBy::Container,
        ] {
            assert_eq!(RowKey::Other.regroup(g), Some(RowKey::Other));
        }
        assert_eq!(
            RowKey::Other.regroup(GroupBy::Syscall),
            Some(RowKey::Syscall)
        );
    }

    #[test]
    fn identity_leaves_names_out_and_absorb_fills_them() {
        let mut a = thread(None);
        let b = thread(Some("cat"));
        assert_eq!(a.id(), b.id());
        a.absorb(&b);
        assert_eq!(a, b);
        a.absorb(&thread(Some("dog")));
        assert_eq!(a.comm(), Some("cat"), "a known name is kept");
        let unnamed = ContainerInfo {
            id: "ab".repeat(32),
            ..ContainerInfo::default()
        };
        let named = ContainerInfo {
            name: "web".into(),
            image: "nginx".into(),
            ..unnamed.clone()
        };
        let mut c = RowKey::Container(unnamed);
        assert_eq!(c.id(), RowKey::Container(named.clone()).id());
        c.absorb(&RowKey::Container(named.clone()));
        assert_eq!(c, RowKey::Container(named));
        assert_ne!(
            RowKey::Container(ContainerInfo::host()).id(),
            RowKey::Container(ContainerInfo::unknown()).id()
        );
    }

    #[test]
    fn accessors() {
        let t = thread(Some("cat"));
        assert_eq!(
            (t.pid(), t.tid(), t.comm()),
            (Some(7), Some(8), Some("cat"))
        );
        assert!(RowKey::Other.is_other() && !t.is_other());
        let cg = RowKey::Cgroup { path: "a".into() };
        assert_eq!(
            (cg.pid(), cg.comm(), cg.group()),
            (None, None, Some(GroupBy::Cgroup))
        );
        assert!(
            RowKey::Other < RowKey::Syscall,
            "folded rows sort first among ties"
        );
    }
}
