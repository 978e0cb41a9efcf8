//! Targets in /proc: checks that pids exist and finds their existing descendants (new
//! ones are followed by the kernel at fork).
#![forbid(unsafe_code)]

use std::collections::{BTreeSet, HashMap};

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match procfs::process::Process::new(pid as i32).and_then(|p| p.stat()) {
        Ok(stat) => stat.state != 'Z' && stat.state != 'X',
        Err(_) => false,
    }
}

/// Whether `pid` is a thread-group leader (a process id, not a thread id).
pub fn is_process(pid: u32) -> bool {
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.status())
        .is_ok_and(|s| s.tgid == pid as i32)
}

/// Whether `pid` is a kernel thread (`PF_KTHREAD` in its flags): it makes no syscalls.
pub fn is_kernel_thread(pid: u32) -> bool {
    const PF_KTHREAD: u32 = 0x0020_0000;
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.stat())
        .is_ok_and(|s| s.flags & PF_KTHREAD != 0)
}

/// `roots` plus every process below them in the process tree, right now.
pub fn with_descendants(roots: &[u32]) -> BTreeSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(all) = procfs::process::all_processes() {
        for p in all.flatten() {
            if let Ok(stat) = p.stat() {
                children
                    .entry(stat.ppid as u32)
                    .or_default()
                    .push(stat.pid as u32);
            }
        }
    }
    let mut out = BTreeSet::new();
    let mut stack: Vec<u32> = roots.to_vec();
    while let Some(p) = stack.pop() {
        if out.insert(p) {
            stack.extend(children.get(&p).into_iter().flatten().copied());
        }
    }
    out
}

/// Processes whose command name is one of `names`, right now.
pub fn by_comm(names: &[String]) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(all) = procfs::process::all_processes() {
        for p in all.flatten() {
            if let Ok(stat) = p.stat()
                && names.contains(&stat.comm)
            {
                out.push(stat.pid as u32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let set = with_descendants(&[me]);
        assert!(set.contains(&me));
        assert!(set.contains(&child.id()));
        assert!(alive(child.id()));
        assert!(is_process(me));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!alive(child.id()));
        assert!(!alive(u32::MAX - 7));
    }
}
