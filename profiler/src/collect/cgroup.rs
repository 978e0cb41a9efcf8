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

/// Why a cgroup v2 directory could not be found or resolved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The mount table could not be read.
    #[error("cannot read /proc/self/mounts")]
    Mounts(#[source] procfs::ProcError),
    /// No cgroup2 file system in the mount table.
    #[error("no cgroup v2 hierarchy is mounted")]
    NoV2,
    /// The directory cannot be opened.
    #[error("cannot open cgroup {}", .path.display())]
    Open {
        /// The directory as given.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The directory is outside the v2 hierarchy.
    #[error(
        "{} is not a cgroup v2 directory (the v2 hierarchy is at {})",
        .path.display(),
        .root.display()
    )]
    OutsideV2 {
        /// The directory as given.
        path: PathBuf,
        /// The v2 mount point.
        root: PathBuf,
    },
    /// The directory has no `cgroup.procs`.
    #[error("{} is not a cgroup v2 directory (no cgroup.procs)", .0.display())]
    NoProcs(PathBuf),
    /// The directory cannot be stat'ed.
    #[error("cannot stat {}", .path.display())]
    Stat {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The cgroup v2 mount point.
pub fn v2_root() -> Result<PathBuf, CgroupError> {
    procfs::mounts()
        .map_err(CgroupError::Mounts)?
        .into_iter()
        .find(|m| m.fs_vfstype == "cgroup2")
        .map(|m| PathBuf::from(m.fs_file))
        .ok_or(CgroupError::NoV2)
}

/// Resolves a cgroup v2 directory to its id and depth.
pub fn resolve(path: &Path) -> Result<CgroupTarget, CgroupError> {
    let root = v2_root()?;
    let canon = path.canonicalize().map_err(|source| CgroupError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let Ok(rel) = canon.strip_prefix(&root) else {
        return Err(CgroupError::OutsideV2 {
            path: path.to_path_buf(),
            root,
        });
    };
    if !canon.join("cgroup.procs").exists() {
        return Err(CgroupError::NoProcs(path.to_path_buf()));
    }
    let meta = std::fs::metadata(&canon).map_err(|source| CgroupError::Stat {
        path: canon.clone(),
        source,
    })?;
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
        assert!(matches!(
            resolve(Path::new("/tmp")),
            Err(CgroupError::OutsideV2 { .. })
        ));
        let e = resolve(Path::new("/nonexistent-cgroup")).unwrap_err();
        assert_eq!(e.to_string(), "cannot open cgroup /nonexistent-cgroup");
        assert!(matches!(
            e,
            CgroupError::Open { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound
        ));
    }
}
