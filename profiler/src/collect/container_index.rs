//! `--by container`: the container of each call, from the cgroup id its event carries (the
//! low 32 bits, see `profiler_common::SyscallEvent::cgroup`). A cgroup id seen for the first
//! time is turned into a path (as the hierarchy's watch saw it made, `cgroup_watch`, which
//! knows cgroups removed since; else the calling process's `/proc/PID/cgroup`, checked
//! against the directory's inode; else one walk of the hierarchy per drained batch), the path into a
//! container id by the runtimes' conventions (`container::in_path`), and a new container
//! id into its name and image by asking its runtime's API socket, on a thread of its own so
//! a slow runtime never stalls the drain. Everything is cached and bounded: a cgroup is
//! looked at once, a container asked about once.
//!
//! Keys: [`HOST`] for calls outside any container, [`UNKNOWN`] for calls whose cgroup was
//! gone before its path could be read, then one per container in order of first sight;
//! beyond [`MAX_CONTAINERS`] containers, [`OTHER_KEY`] (the `other` rows).
#![forbid(unsafe_code)]

use std::{
    collections::{HashMap, HashSet},
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc},
    time::Duration,
};

use super::{
    cgroup,
    cgroup_watch::CgroupWatch,
    container::{self, PathContainer},
    runtime_api::{self, Answer, Endpoint},
};
use crate::aggregate::{ContainerInfo, OTHER_KEY};

/// The key of calls made outside any container.
pub const HOST: u32 = 0;
/// The key of calls whose cgroup was removed before syslat could read its path.
pub const UNKNOWN: u32 = 1;
/// The first container's key.
const FIRST: u32 = 2;
/// Most containers told apart in one session; calls of later ones go to the `other` rows.
pub const MAX_CONTAINERS: usize = 1 << 16;
/// Most cgroup ids remembered; beyond, the memo is cleared (and refilled on demand).
const MAX_CGROUPS: usize = 1 << 16;

/// The container of each cgroup id, and what the runtimes say of each container.
pub struct ContainerIndex {
    root: PathBuf,
    proc: PathBuf,
    /// Paths of the cgroups made since the start, and of those there then.
    watch: Option<CgroupWatch>,
    /// Sockets to ask about every container instead of its runtime's (tests).
    endpoints: Option<Vec<Endpoint>>,
    by_cgroup: HashMap<u32, u32>,
    /// The last (cgroup, key) looked up: consecutive calls mostly come from one cgroup.
    last: Option<(u32, u32)>,
    /// The hierarchy as walked during this batch (at most one walk per batch).
    walked: Option<HashMap<u32, String>>,
    ids: HashMap<String, u32>,
    containers: Vec<PathContainer>,
    overflow_warned: bool,
    lookups: Lookups,
}

impl ContainerIndex {
    /// An empty index over the cgroup v2 hierarchy and this machine's runtimes, watching
    /// the hierarchy for cgroups made from now on.
    pub fn new() -> Result<Self, cgroup::CgroupError> {
        let mut index = Self::with_paths(cgroup::v2_root()?, PathBuf::from("/proc"), None);
        index.watch(true);
        Ok(index)
    }

    /// Starts (or with `false`, stops) watching the hierarchy for new cgroups; without a
    /// watch (or if inotify fails) paths come from `/proc` and walks only.
    pub fn watch(&mut self, on: bool) {
        self.watch = None;
        if on {
            match CgroupWatch::start(&self.root) {
                Ok(w) => self.watch = Some(w),
                Err(e) => log::warn!(
                    "cannot watch {} for new cgroups ({e}): the calls of a container gone \
                     before they are drained are in the '?' row",
                    self.root.display()
                ),
            }
        }
    }

    /// An index over the hierarchy mounted at `root` and processes under `proc`; with
    /// `endpoints`, every container is asked about there instead of its runtime's sockets.
    pub fn with_paths(root: PathBuf, proc: PathBuf, endpoints: Option<Vec<Endpoint>>) -> Self {
        ContainerIndex {
            root,
            proc,
            watch: None,
            endpoints,
            by_cgroup: HashMap::new(),
            last: None,
            walked: None,
            ids: HashMap::new(),
            containers: Vec::new(),
            overflow_warned: false,
            lookups: Lookups::default(),
        }
    }

    /// Starts a batch of events: all of them happened before this call, so one walk of the
    /// hierarchy during the batch finds every cgroup of theirs that still exists.
    pub fn begin_batch(&mut self) {
        self.walked = None;
    }

    /// The key of a call made by process `tgid` in the cgroup whose id's low 32 bits are
    /// `cgroup`.
    #[inline]
    pub fn key(&mut self, cgroup: u32, tgid: u32) -> u32 {
        if let Some((c, k)) = self.last
            && c == cgroup
        {
            return k;
        }
        let key = self.lookup(cgroup, tgid);
        self.last = Some((cgroup, key));
        key
    }

    fn lookup(&mut self, cgroup: u32, tgid: u32) -> u32 {
        if let Some(k) = self.by_cgroup.get(&cgroup) {
            return *k;
        }
        let path = self.path_of(cgroup, tgid);
        let key = match &path {
            None => UNKNOWN,
            Some(path) => match container::in_path(path) {
                None => HOST,
                Some(c) => self.container_key(c),
            },
        };
        log::debug!(
            "cgroup id {cgroup} (first seen from pid {tgid}): {} -> key {key}",
            path.as_deref()
                .map_or_else(|| "gone".into(), crate::output::text::escape)
        );
        if self.by_cgroup.len() >= MAX_CGROUPS {
            self.by_cgroup.clear();
        }
        self.by_cgroup.insert(cgroup, key);
        key
    }

    fn container_key(&mut self, c: PathContainer) -> u32 {
        if let Some(k) = self.ids.get(&c.id) {
            return *k;
        }
        if self.containers.len() >= MAX_CONTAINERS {
            if !std::mem::replace(&mut self.overflow_warned, true) {
                log::warn!(
                    "more than {MAX_CONTAINERS} containers: the calls of later ones are in the 'other' rows"
                );
            }
            return OTHER_KEY;
        }
        let key = FIRST + self.containers.len() as u32;
        let endpoints = match &self.endpoints {
            Some(e) => e.clone(),
            None => runtime_api::endpoints(c.runtime),
        };
        self.lookups.ask(&c.id, endpoints);
        self.ids.insert(c.id.clone(), key);
        self.containers.push(c);
        key
    }

    /// The cgroup path (relative to the root, with a leading `/`) of cgroup id `cgroup`: as
    /// the watch saw it, else as the process's `/proc/PID/cgroup` says when that directory
    /// is the one, else as found by walking the hierarchy.
    fn path_of(&mut self, cgroup: u32, tgid: u32) -> Option<String> {
        if let Some(path) = self.watch.as_ref().and_then(|w| w.path(cgroup)) {
            return Some(path);
        }
        if let Some(rel) = self.proc_path(tgid)
            && low_ino(&self.root, &rel) == Some(cgroup)
        {
            return Some(rel);
        }
        let root = &self.root;
        let walked = self
            .walked
            .get_or_insert_with(|| cgroup::id_paths_under(root));
        walked.get(&cgroup).cloned()
    }

    /// The v2 line of `/proc/PID/cgroup`.
    fn proc_path(&self, tgid: u32) -> Option<String> {
        super::procinfo::cgroup_v2_path(self.proc.join(tgid.to_string()))
    }

    /// Waits up to `wait` for the runtimes' answers still due; whether none is due now.
    pub fn settle(&self, wait: Duration) -> bool {
        self.lookups.settle(wait)
    }

    /// The ids of the containers whose runtime has not answered yet.
    pub fn pending(&self) -> HashSet<String> {
        self.lookups.state().pending.clone()
    }

    /// What each key stands for. A container its runtime did not describe (no socket, no
    /// answer yet, or gone) has an empty name and image.
    pub fn infos(&self) -> HashMap<u32, ContainerInfo> {
        let state = self.lookups.state();
        let mut out = HashMap::with_capacity(self.containers.len() + 2);
        out.insert(HOST, ContainerInfo::host());
        out.insert(UNKNOWN, ContainerInfo::unknown());
        for (i, c) in self.containers.iter().enumerate() {
            let a = state.answers.get(&c.id);
            out.insert(
                FIRST + i as u32,
                ContainerInfo {
                    id: c.id.clone(),
                    name: a.map(|a| a.name.clone()).unwrap_or_default(),
                    image: a.map(|a| a.image.clone()).unwrap_or_default(),
                    pod_uid: c.pod_uid.clone(),
                },
            );
        }
        out
    }
}

/// The low 32 bits of the inode (the cgroup id) of directory `rel` below `root`.
fn low_ino(root: &Path, rel: &str) -> Option<u32> {
    let meta = std::fs::metadata(root.join(rel.trim_start_matches('/'))).ok()?;
    meta.is_dir().then_some(meta.ino() as u32)
}

/// Questions to the runtimes, asked in order on a thread started at the first one.
#[derive(Default)]
struct Lookups {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Ask>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Answers by container id (an empty answer when no runtime knew the container).
    answers: HashMap<String, Answer>,
    /// Ids asked about and not answered yet.
    pending: HashSet<String>,
    /// The index is being dropped: questions still queued are not asked.
    closing: bool,
}

struct Ask {
    id: String,
    endpoints: Vec<Endpoint>,
}

impl Lookups {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    /// Queues a question about container `id` to `endpoints` (none: it stays unnamed).
    fn ask(&mut self, id: &str, endpoints: Vec<Endpoint>) {
        if endpoints.is_empty() {
            return;
        }
        if self.tx.is_none() {
            let (tx, rx) = mpsc::channel::<Ask>();
            let shared = Arc::clone(&self.shared);
            match std::thread::Builder::new()
                .name("syslat-runtime".into())
                .spawn(move || answer_all(&rx, &shared))
            {
                Ok(h) => {
                    self.worker = Some(h);
                    self.tx = Some(tx);
                }
                Err(e) => {
                    log::warn!("cannot start a thread to ask container runtimes: {e}");
                    return;
                }
            }
        }
        self.state().pending.insert(id.to_string());
        let sent = self.tx.as_ref().is_some_and(|tx| {
            tx.send(Ask {
                id: id.to_string(),
                endpoints,
            })
            .is_ok()
        });
        if !sent {
            self.state().pending.remove(id);
        }
    }

    fn settle(&self, wait: Duration) -> bool {
        let guard = lock(&self.shared);
        let (guard, _) = self
            .shared
            .changed
            .wait_timeout_while(guard, wait, |s| !s.pending.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        guard.pending.is_empty()
    }
}

impl Drop for Lookups {
    /// Stops the thread after the question it is asking (each is bounded in time).
    fn drop(&mut self) {
        lock(&self.shared).closing = true;
        self.tx = None;
        if let Some(h) = self.worker.take()
            && h.join().is_err()
        {
            log::warn!("the thread asking container runtimes panicked");
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The thread: asks each queued question of its endpoints in turn, until one knows the
/// container; says the first failure of a session once.
fn answer_all(rx: &mpsc::Receiver<Ask>, shared: &Shared) {
    let mut warned = false;
    while let Ok(ask) = rx.recv() {
        if lock(shared).closing {
            break;
        }
        let mut answer = None;
        for ep in &ask.endpoints {
            match runtime_api::inspect(ep, &ask.id) {
                Ok(Some(a)) => {
                    answer = Some(a);
                    break;
                }
                Ok(None) => {}
                Err(e) if !warned => {
                    warned = true;
                    log::warn!(
                        "cannot ask the container runtime ({e}): containers it runs are shown by id"
                    );
                }
                Err(e) => log::debug!("container runtime: {e}"),
            }
        }
        let mut s = lock(shared);
        s.answers.insert(ask.id.clone(), answer.unwrap_or_default());
        s.pending.remove(&ask.id);
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::runtime_api::{Api, tests::fake_runtime};

    const A: &str = "3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
    const B: &str = "00000000000000000000000000000000000000000000000000000000000000bb";
    const UID: &str = "0f6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";

    fn ino(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().ino() as u32
    }

    /// A fake hierarchy and /proc: container A under docker (process 10 in it), container B
    /// in a kubelet pod (no process left), a host service (process 11), and process 12
    /// whose /proc entry names a cgroup that is not its own.
    #[test]
    fn calls_are_keyed_by_container_and_named_by_the_runtime() {
        let base = std::env::temp_dir().join(format!("syslat-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (root, proc) = (base.join("cg"), base.join("proc"));
        let a_dir = root.join("docker").join(A);
        let b_dir = root.join(format!(
            "kubepods.slice/kubepods-pod{}.slice/cri-containerd-{B}.scope",
            UID.replace('-', "_")
        ));
        let svc = root.join("system.slice/cron.service");
        for d in [&a_dir, &b_dir, &svc] {
            std::fs::create_dir_all(d).unwrap();
        }
        for (pid, path) in [
            (10, format!("/docker/{A}")),
            (11, "/system.slice/cron.service".to_string()),
            (12, "/system.slice/cron.service".to_string()),
        ] {
            std::fs::create_dir_all(proc.join(pid.to_string())).unwrap();
            std::fs::write(
                proc.join(pid.to_string()).join("cgroup"),
                format!("1:name=systemd:/x\n0::{path}\n"),
            )
            .unwrap();
        }
        let (sock, server) = fake_runtime(
            "index",
            vec![
                format!(
                    "HTTP/1.0 200 OK\r\n\r\n{{\"Id\":\"{A}\",\"Name\":\"/web\",\"Config\":{{\"Image\":\"nginx:1\"}}}}"
                ),
                "HTTP/1.0 404 Not Found\r\n\r\n".to_string(),
            ],
        );
        let ep = Endpoint {
            sock: sock.clone(),
            api: Api::Docker,
        };
        let mut idx = ContainerIndex::with_paths(root.clone(), proc, Some(vec![ep]));
        idx.begin_batch();
        let a = idx.key(ino(&a_dir), 10);
        assert_eq!(a, FIRST);
        assert_eq!(idx.key(ino(&svc), 11), HOST);
        // Process 12's /proc names cron.service, but its call was in B's cgroup: the walk
        // finds B (and B's process 99 is gone anyway).
        let b = idx.key(ino(&b_dir), 12);
        assert_eq!(b, FIRST + 1);
        assert_eq!(idx.key(ino(&b_dir), 99), b, "remembered");
        assert_eq!(idx.key(ino(&a_dir), 10), a);
        // A cgroup that exists nowhere: unknown.
        assert_eq!(idx.key(0xdead_beef, 99), UNKNOWN);
        assert!(idx.settle(Duration::from_secs(5)), "the runtime answered");
        assert!(idx.pending().is_empty());
        let infos = idx.infos();
        assert_eq!(
            infos[&a],
            ContainerInfo {
                id: A.into(),
                name: "web".into(),
                image: "nginx:1".into(),
                pod_uid: None
            }
        );
        // B's runtime did not know it (404): id and pod only.
        assert_eq!(
            infos[&b],
            ContainerInfo {
                id: B.into(),
                name: String::new(),
                image: String::new(),
                pod_uid: Some(UID.into())
            }
        );
        assert_eq!(infos[&HOST], ContainerInfo::host());
        assert_eq!(infos[&UNKNOWN].name, "?");
        let asked = server.join().unwrap();
        assert_eq!(
            asked,
            vec![
                format!("GET /containers/{A}/json HTTP/1.0"),
                format!("GET /containers/{B}/json HTTP/1.0")
            ]
        );
        drop(idx);
        let _ = std::fs::remove_dir_all(&base);
        let _ = std::fs::remove_dir_all(sock.parent().unwrap());
    }

    #[test]
    fn a_container_gone_before_its_calls_are_drained_is_still_named() {
        let base = std::env::temp_dir().join(format!("syslat-gone-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("cg");
        std::fs::create_dir_all(root.join("docker")).unwrap();
        let mut idx = ContainerIndex::with_paths(root.clone(), base.join("proc"), Some(Vec::new()));
        idx.watch(true);
        // Made after the watch started, gone before its first call is drained.
        let dir = root.join("docker").join(A);
        std::fs::create_dir(&dir).unwrap();
        let id = ino(&dir);
        std::thread::sleep(Duration::from_millis(300));
        std::fs::remove_dir(&dir).unwrap();
        idx.begin_batch();
        assert_eq!(idx.key(id, 4242), FIRST);
        assert_eq!(idx.infos()[&FIRST].id, A);
        // Without the watch the same is the unknown row.
        let mut blind =
            ContainerIndex::with_paths(root.clone(), base.join("proc"), Some(Vec::new()));
        blind.begin_batch();
        assert_eq!(blind.key(id, 4242), UNKNOWN);
        drop(idx);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn without_a_socket_containers_are_known_by_id() {
        let mut idx =
            ContainerIndex::with_paths(PathBuf::from("/nonexistent"), PathBuf::from("/x"), None);
        let c = container::in_path(&format!("/kubepods/pod{UID}/{A}")).unwrap();
        let mut c2 = c.clone();
        c2.runtime = container::Runtime::Containerd;
        let k = idx.container_key(c2);
        assert_eq!(idx.container_key(c), k, "one key per container id");
        assert!(idx.settle(Duration::ZERO), "nothing to ask: no thread");
        assert!(idx.lookups.worker.is_none());
        assert_eq!(idx.infos()[&k].pod_uid.as_deref(), Some(UID));
    }
}
