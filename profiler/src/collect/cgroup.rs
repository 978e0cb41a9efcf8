//! cgroup v2 targets: find the v2 hierarchy (from /proc/self/mounts, never assumed: it is
//! `/sys/fs/cgroup` on most systems and `/sys/fs/cgroup/unified` on hybrid ones), turn a
//! directory into the (id, level) pair the kernel filter compares (a container's directory
//! is found by `container.rs`).
#![forbid(unsafe_code)]

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

pub use super::scope::CgroupTarget;

/// The cgroup v2 mount point.
pub fn v2_root() -> Result<PathBuf, String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")
        .map_err(|e| format!("cannot read /proc/self/mounts: {e}"))?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| PathBuf::from(f[1]))
        .ok_or_else(|| "no cgroup v2 hierarchy is mounted".to_string())
}

/// Resolves a cgroup v2 directory to its id and depth.
pub fn resolve(path: &Path) -> Result<CgroupTarget, String> {
    let root = v2_root()?;
    let canon = path
        .canonicalize()
        .map_err(|e| format!("cannot open cgroup {}: {e}", path.display()))?;
    let rel = canon.strip_prefix(&root).map_err(|_| {
        format!(
            "{} is not a cgroup v2 directory (the v2 hierarchy is at {})",
            path.display(),
            root.display()
        )
    })?;
    if !canon.join("cgroup.procs").exists() {
        return Err(format!(
            "{} is not a cgroup v2 directory (no cgroup.procs)",
            path.display()
        ));
    }
    let meta =
        std::fs::metadata(&canon).map_err(|e| format!("cannot stat {}: {e}", canon.display()))?;
    Ok(CgroupTarget {
        path: canon.clone(),
        id: meta.ino(),
        level: rel.components().count() as u32,
    })
}

/// Every cgroup v2 directory by the low 32 bits of its id (as events carry it), as paths
/// relative to the hierarchy's root (`/` for the root). Walked when a report is built.
pub fn id_paths() -> std::collections::HashMap<u32, String> {
    match v2_root() {
        Ok(root) => id_paths_under(&root),
        Err(_) => std::collections::HashMap::new(),
    }
}

/// [`id_paths`] of the hierarchy mounted at `root`.
pub fn id_paths_under(root: &Path) -> std::collections::HashMap<u32, String> {
    let mut out = std::collections::HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if let Ok(meta) = std::fs::metadata(&dir) {
            let rel = dir
                .strip_prefix(root)
                .map(|r| format!("/{}", r.display()))
                .unwrap_or_default();
            out.insert(meta.ino() as u32, rel);
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        if out.len() > 1_000_000 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_a_fresh_cgroup() {
        let root = v2_root().expect("cgroup v2 is mounted here");
        let dir = root.join(format!("syslat-unit-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("root may create cgroups");
        let t = resolve(&dir);
        let _ = std::fs::remove_dir(&dir);
        let t = t.unwrap();
        assert_eq!(t.level, 1);
        assert!(t.id > 1);
        assert!(
            resolve(Path::new("/tmp"))
                .unwrap_err()
                .contains("not a cgroup v2 directory")
        );
        assert!(
            crate::collect::container::cgroup_of("ffffffffffff")
                .unwrap_err()
                .starts_with("no running container")
        );
    }
}
