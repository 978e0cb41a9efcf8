//! The path of every cgroup v2 directory, learned as it is created: an inotify watch on
//! each directory of the hierarchy (the kernel reports a `mkdir` in the cgroup filesystem
//! like any other), on a thread of its own. A container that lives a few milliseconds is
//! gone before syslat drains its calls, and with it its directory; its id's path is still
//! known here. Paths of removed cgroups are kept (that is the point), at most
//! [`MAX_PATHS`], the oldest dropped first. Without inotify (no watch left: see
//! `fs.inotify.max_user_watches`) collection falls back on `/proc` and walks.
#![forbid(unsafe_code)]

use std::{
    collections::{HashMap, VecDeque},
    os::{fd::AsFd as _, unix::fs::MetadataExt as _},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use nix::{
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor},
};

/// Most paths kept (live and removed cgroups together).
pub const MAX_PATHS: usize = 1 << 16;

/// Paths by the low 32 bits of the cgroup id, bounded, oldest out first.
#[derive(Default)]
struct Paths {
    by_id: HashMap<u32, String>,
    order: VecDeque<u32>,
}

impl Paths {
    fn insert(&mut self, id: u32, path: String) {
        if self.by_id.insert(id, path).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_PATHS {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }
}

/// A running watch of the hierarchy; dropping it stops the thread.
pub struct CgroupWatch {
    paths: Arc<Mutex<Paths>>,
    /// Closed to stop the thread (which sleeps in `poll` until a cgroup is made or this).
    stop: Option<std::io::PipeWriter>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CgroupWatch {
    /// Watches the hierarchy mounted at `root`: every directory there now (read before this
    /// returns) and every one created later.
    pub fn start(root: &Path) -> Result<Self, nix::Error> {
        let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        let paths = Arc::new(Mutex::new(Paths::default()));
        let mut tree = Tree {
            ino,
            root: root.to_path_buf(),
            dirs: HashMap::new(),
            paths: Arc::clone(&paths),
            full: false,
        };
        tree.add("");
        let (stopped, stop) = std::io::pipe().map_err(|e| {
            log::warn!("cannot make a pipe to stop the cgroup watch: {e}");
            nix::Error::EMFILE
        })?;
        let thread = std::thread::Builder::new()
            .name("syslat-cgroups".into())
            .spawn(move || tree.follow(&stopped))
            .map_err(|e| {
                log::warn!("cannot start a thread to watch cgroups: {e}");
                nix::Error::EAGAIN
            })?;
        Ok(CgroupWatch {
            paths,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The path (relative to the root, with a leading `/`) of the cgroup whose id's low 32
    /// bits are `id`, if it was seen, even if it is gone since.
    pub fn path(&self, id: u32) -> Option<String> {
        let paths = self.paths.lock().unwrap_or_else(PoisonError::into_inner);
        paths.by_id.get(&id).cloned()
    }
}

impl Drop for CgroupWatch {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::warn!("the thread watching cgroups panicked");
        }
    }
}

/// The watched directories.
struct Tree {
    ino: Inotify,
    root: PathBuf,
    /// Each watch's directory, relative to the root (no leading `/`).
    dirs: HashMap<WatchDescriptor, String>,
    paths: Arc<Mutex<Paths>>,
    /// A watch could not be added (the limit): said once.
    full: bool,
}

impl Tree {
    /// Watches directory `rel` and everything below it, and notes their ids. The watch
    /// comes before the listing, so a directory created meanwhile is listed or reported.
    fn add(&mut self, rel: &str) {
        let mut stack = vec![rel.to_string()];
        while let Some(rel) = stack.pop() {
            let dir = self.root.join(&rel);
            match self.ino.add_watch(&dir, AddWatchFlags::IN_CREATE) {
                Ok(wd) => {
                    self.dirs.insert(wd, rel.clone());
                }
                // Removed already; its id was noted when it was seen, if it was.
                Err(nix::Error::ENOENT | nix::Error::ENOTDIR) => continue,
                Err(e) => {
                    if !std::mem::replace(&mut self.full, true) {
                        log::warn!(
                            "cannot watch cgroup {}: {e}; cgroups created below it are found \
                             while they exist only",
                            dir.display()
                        );
                    }
                }
            }
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            self.paths
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(meta.ino() as u32, format!("/{rel}"));
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir())
                    && let Some(name) = e.file_name().to_str()
                {
                    stack.push(join(&rel, name));
                }
            }
        }
    }

    /// Follows the watches until the write end of `stopped` is closed.
    fn follow(mut self, stopped: &std::io::PipeReader) {
        loop {
            let mut fds = [
                PollFd::new(self.ino.as_fd(), PollFlags::POLLIN),
                PollFd::new(stopped.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) if fds[1].any().unwrap_or(true) => return,
                Ok(0) | Err(nix::Error::EINTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    log::warn!("cannot watch cgroups: {e}");
                    return;
                }
            }
            let events = match self.ino.read_events() {
                Ok(ev) => ev,
                Err(nix::Error::EAGAIN | nix::Error::EINTR) => continue,
                Err(e) => {
                    log::warn!("cannot watch cgroups: {e}");
                    return;
                }
            };
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    // Events were lost: look at the whole tree again.
                    self.add("");
                } else if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.dirs.remove(&ev.wd);
                } else if ev.mask.contains(AddWatchFlags::IN_ISDIR)
                    && let (Some(parent), Some(name)) = (
                        self.dirs.get(&ev.wd),
                        ev.name.as_ref().and_then(|n| n.to_str()),
                    )
                {
                    let rel = join(parent, name);
                    self.add(&rel);
                }
            }
        }
    }
}

/// `parent/name`, relative (no leading `/`).
fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ino(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().ino() as u32
    }

    #[test]
    fn directories_made_and_removed_later_are_known() {
        let root = std::env::temp_dir().join(format!("syslat-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("old/sub")).unwrap();
        let w = CgroupWatch::start(&root).unwrap();
        assert_eq!(
            w.path(ino(&root.join("old/sub"))).as_deref(),
            Some("/old/sub")
        );
        assert_eq!(w.path(ino(&root)).as_deref(), Some("/"));
        // A nested directory made at once, and one removed right after it was made.
        let deep = root.join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        let brief = root.join("old/brief");
        std::fs::create_dir(&brief).unwrap();
        let brief_id = ino(&brief);
        let deep_id = ino(&deep);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while w.path(deep_id).is_none() || w.path(brief_id).is_none() {
            assert!(std::time::Instant::now() < deadline, "never seen");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::remove_dir(&brief).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(w.path(deep_id).as_deref(), Some("/a/b/c"));
        assert_eq!(
            w.path(brief_id).as_deref(),
            Some("/old/brief"),
            "kept once gone"
        );
        drop(w);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn paths_are_bounded_oldest_out() {
        let mut p = Paths::default();
        for i in 0..(MAX_PATHS as u32 + 10) {
            p.insert(i, format!("/{i}"));
        }
        p.insert(20, "/again".into());
        assert_eq!(p.by_id.len(), MAX_PATHS);
        assert!(!p.by_id.contains_key(&9) && p.by_id.contains_key(&10));
        assert_eq!(p.by_id[&20], "/again");
    }
}
