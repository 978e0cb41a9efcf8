//! Containers in cgroup paths, and `--container ARG`: the cgroup v2 directory of one
//! container. ARG is a full container id, a prefix of one of at least 12 hex digits (as
//! `docker ps` shows), or a name the runtime knows (asked over Docker's API socket, which
//! Podman also serves).
//!
//! Ids are read from cgroup paths, where the runtimes put them: `docker-<id>.scope`,
//! `libpod-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope` (systemd driver) or a
//! bare `<id>` directory (cgroupfs driver: `/docker/<id>`, kubelet's
//! `/kubepods/burstable/pod<UID>/<id>`). Only a path component that holds a whole
//! 64-hex-digit id, bare or after one of those prefixes, counts, so `dock` never matches
//! `docker.service` and CRI-O's and Podman's monitors (`crio-conmon-<id>.scope`,
//! `libpod-conmon-<id>.scope`), which run outside the container, are not taken for it. The
//! first such component is the container (the outer one of nested containers). Kubelet
//! puts a container's directory right under its pod's, `kubepods-<qos>-pod<UID>.slice`
//! (systemd driver, the UID's dashes written as underscores) or `pod<UID>` (cgroupfs); that
//! UID is the pod's.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use super::{
    cgroup::CgroupError,
    runtime_api::{self, Api, Endpoint},
};

/// Hex digits of a container id.
pub const ID_LEN: usize = 64;
/// The shortest prefix accepted (the short id `docker ps` prints).
const MIN_PREFIX: usize = 12;
/// The API sockets tried for a container name: Docker's, then Podman's.
const SOCKETS: [&str; 3] = [
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
];

/// The runtime a cgroup path's naming convention points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// `docker-<id>.scope`, or `<id>` under a `docker` directory.
    Docker,
    /// `libpod-<id>.scope`, `libpod-<id>`.
    Podman,
    /// `cri-containerd-<id>.scope` (containerd's CRI plugin: no HTTP API to ask).
    Containerd,
    /// `crio-<id>.scope`.
    Crio,
    /// A bare `<id>` directory elsewhere (cgroupfs driver: kubelet's, nerdctl's, ...).
    Unknown,
}

/// A container named by a cgroup path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathContainer {
    /// Its full id, 64 lowercase hex digits.
    pub id: String,
    /// The runtime its directory's name points to.
    pub runtime: Runtime,
    /// Its pod's UID, when its directory is right under a kubelet pod's.
    pub pod_uid: Option<String>,
    /// Its directory, relative to the hierarchy's root (no leading `/`).
    pub dir: PathBuf,
}

/// Whether `s` is a whole container id.
pub fn is_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container id and runtime a cgroup path component names, if it names one.
fn id_in<'a>(component: &'a str, parent: Option<&str>) -> Option<(&'a str, Runtime)> {
    let (name, scope) = match component.strip_suffix(".scope") {
        Some(n) => (n, true),
        None => (component, false),
    };
    let prefixed = [
        ("docker-", Runtime::Docker),
        ("libpod-", Runtime::Podman),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::Crio),
    ]
    .into_iter()
    .find_map(|(p, rt)| name.strip_prefix(p).map(|id| (id, rt)));
    let (id, runtime) = match prefixed {
        Some(found) => found,
        None if scope => return None,
        None if parent == Some("docker") => (name, Runtime::Docker),
        None => (name, Runtime::Unknown),
    };
    is_id(id).then_some((id, runtime))
}

/// Whether `s` is a pod UID: a UUID (8-4-4-4-12 hex digits), or the 32 hex digits kubelet
/// gives static pods (a hash of their manifest).
fn is_pod_uid(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        32 => b.iter().all(u8::is_ascii_hexdigit),
        36 => b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        }),
        _ => false,
    }
}

/// The pod UID a kubelet pod directory's name holds: `kubepods[-<qos>]-pod<UID>.slice`
/// with the UID's dashes as underscores (systemd driver), or `pod<UID>` (cgroupfs).
fn pod_uid_in(component: &str) -> Option<String> {
    let uid = match component.strip_suffix(".slice") {
        Some(unit) => unit
            .rsplit('-')
            .next()?
            .strip_prefix("pod")?
            .replace('_', "-"),
        None => component.strip_prefix("pod")?.to_string(),
    };
    is_pod_uid(&uid).then(|| uid.to_ascii_lowercase())
}

/// The container a cgroup v2 path (as in `/proc/PID/cgroup`, relative to the hierarchy's
/// root) belongs to: its first component that names one.
pub fn in_path(path: &str) -> Option<PathContainer> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, comp) in comps.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| comps[p]);
        let Some((id, runtime)) = id_in(comp, parent) else {
            continue;
        };
        return Some(PathContainer {
            id: id.to_ascii_lowercase(),
            runtime,
            pod_uid: parent.and_then(pod_uid_in),
            dir: comps[..=i].iter().collect(),
        });
    }
    None
}

/// The containers (id, cgroup path relative to the hierarchy) among `cgroups`, the v2
/// paths of running processes, whose id starts with `prefix`.
fn matching<'a>(cgroups: impl Iterator<Item = &'a str>, prefix: &str) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for c in cgroups.filter_map(in_path) {
        if c.id.starts_with(prefix) && !found.iter().any(|(f, _)| *f == c.id) {
            found.push((c.id, c.dir));
        }
    }
    found
}

/// Why the container a flag names has no cgroup to trace.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// Neither a name nor an id (the value is shown escaped).
    #[error(
        "invalid container '{0}': give its name, its id, or at least {MIN_PREFIX} hex digits of \
         the id"
    )]
    Invalid(String),
    /// /proc could not be listed.
    #[error("cannot read /proc")]
    Proc(#[source] std::io::Error),
    /// No process's cgroup names the id.
    #[error("no running container with id {0} (no process's cgroup names it)")]
    NotRunning(String),
    /// The prefix names several containers (their short ids).
    #[error("container id prefix {id} is ambiguous: {}", .matches.join(", "))]
    Ambiguous {
        /// The prefix.
        id: String,
        /// The short ids it matches.
        matches: Vec<String>,
    },
    /// The cgroup v2 hierarchy was not found.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A name, and no runtime socket to ask for its id.
    #[error(
        "no container named '{name}': no container runtime socket to ask ({}); give its id",
        .sockets.join(", ")
    )]
    NoSocket {
        /// The name.
        name: String,
        /// The sockets looked for.
        sockets: Vec<String>,
    },
    /// No runtime asked knows the name (what each said).
    #[error("no container named '{name}' ({})", .tried.join("; "))]
    NotFound {
        /// The name.
        name: String,
        /// Each socket's answer.
        tried: Vec<String>,
    },
}

/// The v2 cgroup path of every running process.
fn process_cgroups() -> Result<Vec<String>, ContainerError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .map_err(ContainerError::Proc)?
        .flatten()
    {
        if let Some(rel) = super::procinfo::cgroup_v2_path(entry.path()) {
            out.push(rel);
        }
    }
    Ok(out)
}

/// The cgroup v2 directory of the container `arg` names.
pub fn cgroup_of(arg: &str) -> Result<PathBuf, ContainerError> {
    let hex = arg.bytes().all(|b| b.is_ascii_hexdigit());
    let id = if hex && (MIN_PREFIX..=ID_LEN).contains(&arg.len()) {
        arg.to_ascii_lowercase()
    } else if valid_name(arg) {
        id_of_name(arg, &SOCKETS)?
    } else {
        return Err(ContainerError::Invalid(crate::output::text::escape(arg)));
    };
    let cgroups = process_cgroups()?;
    let mut found = matching(cgroups.iter().map(String::as_str), &id);
    match found.len() {
        0 => Err(ContainerError::NotRunning(id)),
        1 => Ok(super::cgroup::v2_root()?.join(found.remove(0).1)),
        _ => Err(ContainerError::Ambiguous {
            matches: found
                .iter()
                .map(|(f, _)| f[..MIN_PREFIX].to_string())
                .collect(),
            id,
        }),
    }
}

/// Whether `s` can be a container name (Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
fn valid_name(s: &str) -> bool {
    let mut b = s.bytes();
    s.len() >= 2
        && s.len() <= 255
        && b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// The full id of container `name`, from the first API socket in `sockets` that answers.
fn id_of_name(name: &str, sockets: &[&str]) -> Result<String, ContainerError> {
    let mut tried = Vec::new();
    for sock in sockets {
        if !Path::new(sock).exists() {
            continue;
        }
        let ep = Endpoint {
            sock: PathBuf::from(sock),
            api: Api::Docker,
        };
        match runtime_api::inspect(&ep, name) {
            Ok(Some(c)) => match c.id {
                Some(id) => return Ok(id),
                None => tried.push(format!("{sock}: answer without Id")),
            },
            Ok(None) => tried.push(format!("{sock}: no such container")),
            Err(e) => tried.push(e.to_string()),
        }
    }
    if tried.is_empty() {
        return Err(ContainerError::NoSocket {
            name: name.to_string(),
            sockets: sockets.iter().map(|s| s.to_string()).collect(),
        });
    }
    Err(ContainerError::NotFound {
        name: name.to_string(),
        tried,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    const A: &str = "3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
    const B: &str = "3f4e2a1b9c8d00000000000000000000000000000000000000000000000000aa";
    const UID: &str = "0f6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";

    #[test]
    fn only_whole_ids_match() {
        let a = format!("/system.slice/docker-{A}.scope");
        let b = format!("/docker/{B}");
        let paths = [
            "/system.slice/docker.service",
            "/system.slice/containerd.service",
            a.as_str(),
            b.as_str(),
            "/user.slice/user-0.slice/session-1.scope",
        ];
        // "dock" is no id at all; and no prefix of a service name matches.
        assert!(matches!(
            cgroup_of("dock!"),
            Err(ContainerError::Invalid(_))
        ));
        assert!(matches!(
            cgroup_of("ffffffffffff"),
            Err(ContainerError::NotRunning(_))
        ));
        assert!(matching(paths.iter().copied(), "docker").is_empty());
        let one = matching(paths.iter().copied(), &A[..16]);
        assert_eq!(one.len(), 1);
        assert_eq!(
            one[0].1,
            PathBuf::from(format!("system.slice/docker-{A}.scope"))
        );
        // A 12-digit prefix both ids share is ambiguous: both are listed.
        let both = matching(paths.iter().copied(), &A[..12]);
        assert_eq!(both.len(), 2);
        assert_eq!(
            id_in(&format!("cri-containerd-{A}.scope"), None),
            Some((A, Runtime::Containerd))
        );
        assert_eq!(
            id_in(&format!("libpod-{A}.scope"), None),
            Some((A, Runtime::Podman))
        );
        assert_eq!(id_in("docker-3f4e2a1b9c8d.scope", None), None);
    }

    /// The container of `path`: (id, runtime, pod UID, directory).
    fn parsed(path: &str) -> Option<(String, Runtime, Option<String>, String)> {
        in_path(path).map(|c| (c.id, c.runtime, c.pod_uid, c.dir.display().to_string()))
    }

    #[test]
    fn every_runtime_convention_is_read() {
        use Runtime::*;
        let uid_ = UID.replace('-', "_");
        let cases: Vec<(String, Runtime, Option<&str>, String)> = vec![
            // Docker: systemd and cgroupfs drivers; rootless Docker under the user's manager.
            (
                format!("/system.slice/docker-{A}.scope"),
                Docker,
                None,
                format!("system.slice/docker-{A}.scope"),
            ),
            (format!("/docker/{A}"), Docker, None, format!("docker/{A}")),
            (
                format!(
                    "/user.slice/user-1000.slice/user@1000.service/user.slice/docker-{A}.scope"
                ),
                Docker,
                None,
                format!("user.slice/user-1000.slice/user@1000.service/user.slice/docker-{A}.scope"),
            ),
            // Podman: systemd (and a sub-cgroup inside the container), cgroupfs.
            (
                format!("/machine.slice/libpod-{A}.scope/container"),
                Podman,
                None,
                format!("machine.slice/libpod-{A}.scope"),
            ),
            (
                format!("/libpod_parent/libpod-{A}"),
                Podman,
                None,
                format!("libpod_parent/libpod-{A}"),
            ),
            // Kubelet, systemd driver: containerd and CRI-O, the UID's dashes as underscores.
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{A}.scope"
                ),
                Containerd,
                Some(UID),
                format!(
                    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{A}.scope"
                ),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{uid_}.slice/crio-{A}.scope"),
                Crio,
                Some(UID),
                format!("kubepods.slice/kubepods-pod{uid_}.slice/crio-{A}.scope"),
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/docker-{A}.scope"
                ),
                Docker,
                Some(UID),
                format!(
                    "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/docker-{A}.scope"
                ),
            ),
            // Kubelet, cgroupfs driver: a bare id under pod<UID>; a static pod's UID is a hash.
            (
                format!("/kubepods/burstable/pod{UID}/{A}"),
                Unknown,
                Some(UID),
                format!("kubepods/burstable/pod{UID}/{A}"),
            ),
            (
                format!("/kubepods/pod{}/{A}", &B[..32]),
                Unknown,
                Some(&B[..32]),
                format!("kubepods/pod{}/{A}", &B[..32]),
            ),
            // Nested: the outer container is the one.
            (
                format!("/docker/{A}/docker/{B}"),
                Docker,
                None,
                format!("docker/{A}"),
            ),
        ];
        for (path, runtime, uid, dir) in cases {
            assert_eq!(
                parsed(&path),
                Some((A.to_string(), runtime, uid.map(str::to_string), dir)),
                "{path}"
            );
        }
        // Upper-case hex is the same container.
        assert_eq!(
            in_path(&format!("/docker/{}", A.to_ascii_uppercase()))
                .unwrap()
                .id,
            A
        );
    }

    #[test]
    fn hostile_and_host_paths_name_no_container() {
        let uid_ = UID.replace('-', "_");
        for path in [
            "/".to_string(),
            String::new(),
            "/init.scope".into(),
            "/system.slice/docker.service".into(),
            "/system.slice/containerd.service".into(),
            "/user.slice/user-0.slice/session-1.scope".into(),
            // The runtimes' monitors live beside the container, not in it.
            format!("/kubepods.slice/kubepods-pod{uid_}.slice/crio-conmon-{A}.scope"),
            format!("/machine.slice/libpod-conmon-{A}.scope"),
            // One digit short, one too many, not hex, an unknown prefix on a scope.
            format!("/docker/{}", &A[..63]),
            format!("/docker/{A}0"),
            format!("/docker/{}g", &A[..63]),
            format!("/system.slice/evil-{A}.scope"),
            format!("/system.slice/{A}.scope"),
            format!("/docker/docker-{A}.scope.x"),
            // Separators and controls around an id do not make it one.
            format!("/docker/{A}\n"),
            format!("/docker/ {A}"),
            format!("/docker/{A}\u{1b}[2J"),
            "/../../..".into(),
            "/a".repeat(10_000),
        ] {
            assert_eq!(in_path(&path), None, "{path:?}");
        }
        // A pod directory is only a pod's when its UID is well formed.
        for (parent, uid) in [
            (format!("kubepods-burstable-pod{uid_}.slice"), Some(UID)),
            (format!("pod{UID}"), Some(UID)),
            (format!("pod{}", UID.to_ascii_uppercase()), Some(UID)),
            ("pod1234.slice".to_string(), None),
            (format!("kubepods-pod{uid_}x.slice"), None),
            (format!("pod{}", &UID[..35]), None),
            (format!("pod{}", UID.replace('-', "_")), None),
            (format!("podx{UID}"), None),
            (format!("kubepods-burstable-pod{UID}.slice"), None),
        ] {
            let c = in_path(&format!("/{parent}/{A}")).unwrap();
            assert_eq!(c.pod_uid.as_deref(), uid, "{parent}");
        }
        // Only the container's own parent is its pod.
        let c = in_path(&format!("/kubepods/pod{UID}/x/{A}")).unwrap();
        assert_eq!(c.pod_uid, None);
    }

    #[test]
    fn names_are_asked_of_the_runtime_socket() {
        let dir = std::env::temp_dir().join(format!("syslat-docker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("docker.sock");
        let _ = std::fs::remove_file(&sock);
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            for answer in [
                format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{{\"Id\":\"{A}\",\"Name\":\"/web\"}}"
                ),
                "HTTP/1.0 404 Not Found\r\n\r\n{\"message\":\"No such container\"}".to_string(),
            ] {
                let (mut c, _) = listener.accept().unwrap();
                let mut req = [0u8; 512];
                let n = c.read(&mut req).unwrap();
                assert!(String::from_utf8_lossy(&req[..n]).starts_with("GET /containers/"));
                c.write_all(answer.as_bytes()).unwrap();
            }
        });
        let s = sock.to_str().unwrap();
        assert_eq!(id_of_name("web", &[s]).unwrap(), A);
        let e = id_of_name("nope", &[s]).unwrap_err().to_string();
        assert!(e.starts_with("no container named 'nope'"), "{e}");
        server.join().unwrap();
        let e = id_of_name("web", &["/nonexistent/docker.sock"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no container runtime socket"), "{e}");
        assert!(valid_name("my-app_1.2") && !valid_name("-x") && !valid_name("a/b"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
