//! `--container ARG`: the cgroup v2 directory of one container. ARG is a full container
//! id, a prefix of one of at least 12 hex digits (as `docker ps` shows), or a name the
//! runtime knows (asked over Docker's API socket, which Podman also serves).
//!
//! Ids are read from the cgroup paths of running processes (/proc/*/cgroup), where the
//! runtimes put them: `docker-<id>.scope`, `libpod-<id>.scope`, `cri-containerd-<id>.scope`,
//! `crio-<id>.scope` (systemd driver) or a bare `<id>` directory (cgroupfs driver). Only a
//! path component that holds a whole 64-hex-digit id counts, so `dock` never matches
//! `docker.service`.
#![forbid(unsafe_code)]

use std::{
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
};

/// Hex digits of a container id.
const ID_LEN: usize = 64;
/// The shortest prefix accepted (the short id `docker ps` prints).
const MIN_PREFIX: usize = 12;
/// The API sockets tried for a container name: Docker's, then Podman's.
const SOCKETS: [&str; 3] = [
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
];

/// The container id a cgroup path component names, if it names one.
fn id_in(component: &str) -> Option<&str> {
    let name = component.strip_suffix(".scope").unwrap_or(component);
    let id = name.rsplit('-').next().unwrap_or(name);
    (id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The containers (id, cgroup path relative to the hierarchy) among `cgroups`, the v2
/// paths of running processes, whose id starts with `prefix`.
fn matching<'a>(cgroups: impl Iterator<Item = &'a str>, prefix: &str) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for rel in cgroups {
        let mut dir = PathBuf::new();
        for comp in Path::new(rel.trim_start_matches('/')).components() {
            dir.push(comp);
            let Some(id) = comp.as_os_str().to_str().and_then(id_in) else {
                continue;
            };
            if id.starts_with(prefix) && !found.iter().any(|(f, _)| f == id) {
                found.push((id.to_string(), dir.clone()));
            }
            break;
        }
    }
    found
}

/// The v2 cgroup path of every running process.
fn process_cgroups() -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .map_err(|e| format!("cannot read /proc: {e}"))?
        .flatten()
    {
        let Ok(text) = std::fs::read_to_string(entry.path().join("cgroup")) else {
            continue;
        };
        if let Some(rel) = text.lines().find_map(|l| l.strip_prefix("0::")) {
            out.push(rel.to_string());
        }
    }
    Ok(out)
}

/// The cgroup v2 directory of the container `arg` names.
pub fn cgroup_of(arg: &str) -> Result<PathBuf, String> {
    let hex = arg.bytes().all(|b| b.is_ascii_hexdigit());
    let id = if hex && (MIN_PREFIX..=ID_LEN).contains(&arg.len()) {
        arg.to_ascii_lowercase()
    } else if valid_name(arg) {
        id_of_name(arg, &SOCKETS)?
    } else {
        return Err(format!(
            "invalid container '{}': give its name, its id, or at least {MIN_PREFIX} hex \
             digits of the id",
            crate::output::text::escape(arg)
        ));
    };
    let cgroups = process_cgroups()?;
    let mut found = matching(cgroups.iter().map(String::as_str), &id);
    match found.len() {
        0 => Err(format!(
            "no running container with id {id} (no process's cgroup names it)"
        )),
        1 => Ok(super::cgroup::v2_root()?.join(found.remove(0).1)),
        _ => Err(format!(
            "container id prefix {id} is ambiguous: {}",
            found
                .iter()
                .map(|(f, _)| &f[..MIN_PREFIX])
                .collect::<Vec<_>>()
                .join(", ")
        )),
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
fn id_of_name(name: &str, sockets: &[&str]) -> Result<String, String> {
    let mut tried = Vec::new();
    for sock in sockets {
        if !Path::new(sock).exists() {
            continue;
        }
        match inspect(sock, name) {
            Ok(Some(id)) => return Ok(id),
            Ok(None) => tried.push(format!("{sock}: no such container")),
            Err(e) => tried.push(format!("{sock}: {e}")),
        }
    }
    if tried.is_empty() {
        return Err(format!(
            "no container named '{name}': no container runtime socket to ask ({}); give its id",
            sockets.join(", ")
        ));
    }
    Err(format!(
        "no container named '{name}' ({})",
        tried.join("; ")
    ))
}

/// `GET /containers/NAME/json` over the API socket: the container's id, `None` on 404.
fn inspect(sock: &str, name: &str) -> Result<Option<String>, String> {
    let mut s = std::os::unix::net::UnixStream::connect(sock).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /containers/{name}/json HTTP/1.0\r\nHost: localhost\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    // A container's description is a few KiB; never read more than 4 MiB of an answer.
    let mut reply = Vec::new();
    s.take(4 << 20)
        .read_to_end(&mut reply)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&reply);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    match status {
        "404" => Ok(None),
        "200" => {
            let v: serde_json::Value =
                serde_json::from_str(body).map_err(|e| format!("bad answer: {e}"))?;
            let id = v["Id"].as_str().ok_or("answer without Id")?;
            if id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(Some(id.to_string()))
            } else {
                Err("answer with a malformed Id".into())
            }
        }
        other => Err(format!(
            "HTTP status {}",
            crate::output::text::escape(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
    const B: &str = "3f4e2a1b9c8d00000000000000000000000000000000000000000000000000aa";

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
        assert!(cgroup_of("dock!").is_err());
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
        assert_eq!(id_in(&format!("cri-containerd-{A}.scope")), Some(A));
        assert_eq!(id_in(&format!("libpod-{A}.scope")), Some(A));
        assert_eq!(id_in("docker-3f4e2a1b9c8d.scope"), None);
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
        let e = id_of_name("nope", &[s]).unwrap_err();
        assert!(e.starts_with("no container named 'nope'"), "{e}");
        server.join().unwrap();
        let e = id_of_name("web", &["/nonexistent/docker.sock"]).unwrap_err();
        assert!(e.contains("no container runtime socket"), "{e}");
        assert!(valid_name("my-app_1.2") && !valid_name("-x") && !valid_name("a/b"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
