//! Process names: read from /proc at first sight, cached, and completed by the kernel's
//! process-exit records for processes that were gone before /proc could be read.
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

/// Decodes the NUL-padded 16-byte command name carried by a process-exit record.
pub fn decode_comm(lo: u64, hi: i64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&lo.to_le_bytes());
    bytes[8..].copy_from_slice(&hi.to_le_bytes());
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_comm() {
        let name = b"kworker/0:1\0\0\0\0\0";
        let lo = u64::from_le_bytes(name[..8].try_into().unwrap());
        let hi = i64::from_le_bytes(name[8..].try_into().unwrap());
        assert_eq!(decode_comm(lo, hi), "kworker/0:1");
        let full = b"0123456789abcdef";
        let lo = u64::from_le_bytes(full[..8].try_into().unwrap());
        let hi = i64::from_le_bytes(full[8..].try_into().unwrap());
        assert_eq!(decode_comm(lo, hi), "0123456789abcdef");
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
}
