//! Checks, before anything is loaded, that this process may load and attach tracing
//! programs, so the user gets one line naming what is missing instead of an EPERM later.
#![forbid(unsafe_code)]

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability mask of this process (`CapEff` in /proc/self/status).
fn effective_caps() -> Option<u64> {
    procfs::process::Process::myself()
        .and_then(|p| p.status())
        .map(|s| s.capeff)
        .ok()
}

/// `None` when tracing is permitted, else the list of missing capabilities.
pub fn missing_capabilities() -> Option<String> {
    missing_from(effective_caps().unwrap_or(0))
}

fn missing_from(caps: u64) -> Option<String> {
    let has = |c: u32| caps & (1u64 << c) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return None;
    }
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|(c, _)| !has(*c))
        .map(|(_, n)| n)
        .collect();
    Some(missing.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_sets() {
        assert_eq!(missing_from(0), Some("CAP_BPF and CAP_PERFMON".into()));
        assert_eq!(missing_from(1 << CAP_BPF), Some("CAP_PERFMON".into()));
        assert_eq!(missing_from((1 << CAP_BPF) | (1 << CAP_PERFMON)), None);
        assert_eq!(missing_from(1 << CAP_SYS_ADMIN), None);
    }

    #[test]
    fn reads_this_process_caps() {
        // The unit tests run as root, which holds every capability.
        let caps = effective_caps().expect("/proc/self/status has CapEff");
        assert_ne!(caps & (1 << CAP_SYS_ADMIN), 0, "{caps:#x}");
        assert_eq!(missing_capabilities(), None);
    }
}
