//! Process names: read from /proc at first sight, cached, and completed by the kernel's
//! process-exit records (see `aggregate::comm_name`) for processes that were gone before
//! /proc could be read.
#![forbid(unsafe_code)]

use std::collections::HashMap;

/// A bounded cache of process names by tgid.
#[derive(Debug, Default)]
pub struct Comms {
    names: HashMap<u32, String>,
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

    /// Records a name learned elsewhere (a process-exit record), unless one is known.
    pub fn learn(&mut self, tgid: u32, name: String) {
        if !self.names.contains_key(&tgid) {
            self.insert(tgid, name);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
