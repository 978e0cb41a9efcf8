//! Container runtimes' HTTP APIs over their unix sockets, asked about one container: its
//! id, name and image. Docker's API (`GET /containers/X/json`, which Podman's socket serves
//! too) and CRI-O's (`GET /containers/ID`). containerd speaks gRPC only, so its containers
//! are known by id alone. Answers are untrusted: bounded in size and time, and the names
//! kept are cut to [`MAX_TEXT`] characters (and escaped wherever they are printed).
#![forbid(unsafe_code)]

use std::{
    io::{Read as _, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use super::container::{Runtime, is_id};

/// Docker's API sockets.
pub const DOCKER_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/docker.sock"];
/// Podman's (rootful) API socket, which serves Docker's API.
pub const PODMAN_SOCKETS: [&str; 1] = ["/run/podman/podman.sock"];
/// CRI-O's socket, whose HTTP side answers `GET /containers/ID`.
pub const CRIO_SOCKETS: [&str; 2] = ["/var/run/crio/crio.sock", "/run/crio/crio.sock"];

/// Longest name or image kept, in characters.
pub const MAX_TEXT: usize = 256;
/// Longest answer read: a container's description is a few KiB.
const MAX_ANSWER: u64 = 4 << 20;
/// How long one question may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Which API a socket speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// Docker's Engine API (Docker, Podman).
    Docker,
    /// CRI-O's inspect endpoint.
    Crio,
}

/// A runtime's socket and the API it speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The unix socket.
    pub sock: PathBuf,
    /// Its API.
    pub api: Api,
}

/// The sockets that exist on this machine for containers of `runtime`, in the order to ask
/// them (a bare id of an unknown runtime: Docker, Podman, then CRI-O).
pub fn endpoints(runtime: Runtime) -> Vec<Endpoint> {
    let docker = DOCKER_SOCKETS.iter().map(|s| (*s, Api::Docker));
    let podman = PODMAN_SOCKETS.iter().map(|s| (*s, Api::Docker));
    let crio = CRIO_SOCKETS.iter().map(|s| (*s, Api::Crio));
    let all: Vec<(&str, Api)> = match runtime {
        Runtime::Docker => docker.collect(),
        Runtime::Podman => podman.collect(),
        Runtime::Crio => crio.collect(),
        Runtime::Containerd => Vec::new(),
        Runtime::Unknown => docker.chain(podman).chain(crio).collect(),
    };
    all.into_iter()
        .filter(|(s, _)| Path::new(s).exists())
        .map(|(s, api)| Endpoint {
            sock: PathBuf::from(s),
            api,
        })
        .collect()
}

/// What a runtime says of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// Its full id, when the answer holds a well-formed one.
    pub id: Option<String>,
    /// Its name (Docker's without the leading `/`).
    pub name: String,
    /// The image it was started from, as given (`busybox:latest`), else the image id.
    pub image: String,
}

/// Why a runtime could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The socket did not take the connection.
    #[error("cannot connect to {sock}: {source}")]
    Connect {
        /// The socket.
        sock: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the question or reading the answer failed (or timed out).
    #[error("{sock}: {source}")]
    Io {
        /// The socket.
        sock: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The answer is not HTTP.
    #[error("{sock}: no HTTP answer")]
    NotHttp {
        /// The socket.
        sock: String,
    },
    /// An HTTP status other than 200 or 404.
    #[error("{sock}: HTTP status {status}")]
    Status {
        /// The socket.
        sock: String,
        /// The status, escaped.
        status: String,
    },
    /// The body is not the JSON expected.
    #[error("{sock}: bad answer: {source}")]
    Json {
        /// The socket.
        sock: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// Asks `ep` about the container `what` (an id, or with Docker's API a name too): its
/// description, or `None` when the runtime does not know it (404). `what` must be a
/// container id or name (`[a-zA-Z0-9_.-]`), which needs no escaping in a URL.
pub fn inspect(ep: &Endpoint, what: &str) -> Result<Option<Answer>, ApiError> {
    let path = match ep.api {
        Api::Docker => format!("/containers/{what}/json"),
        Api::Crio => format!("/containers/{what}"),
    };
    let sock = ep.sock.display().to_string();
    let Some(body) = get(&ep.sock, &path)? else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|source| ApiError::Json {
        sock: sock.clone(),
        source,
    })?;
    let text = |v: &serde_json::Value| v.as_str().map(cut).unwrap_or_default();
    Ok(Some(match ep.api {
        Api::Docker => Answer {
            id: v["Id"]
                .as_str()
                .filter(|id| is_id(id))
                .map(str::to_ascii_lowercase),
            name: cut(v["Name"].as_str().unwrap_or("").trim_start_matches('/')),
            image: match text(&v["Config"]["Image"]) {
                s if s.is_empty() => text(&v["Image"]),
                s => s,
            },
        },
        // CRI-O's answer has no id field: it is the one asked for.
        Api::Crio => Answer {
            id: is_id(what).then(|| what.to_ascii_lowercase()),
            name: text(&v["name"]),
            image: text(&v["image"]),
        },
    }))
}

/// `s` cut to [`MAX_TEXT`] characters.
fn cut(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

/// `GET path` over the unix socket `sock` (HTTP/1.0, so the answer is never chunked): the
/// body on 200, `None` on 404.
fn get(sock: &Path, path: &str) -> Result<Option<Vec<u8>>, ApiError> {
    let name = || sock.display().to_string();
    let io = |source| ApiError::Io {
        sock: name(),
        source,
    };
    let mut s = UnixStream::connect(sock).map_err(|source| ApiError::Connect {
        sock: name(),
        source,
    })?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    // One write: a server may answer as soon as the head is complete.
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(io)?;
    let mut reply = Vec::new();
    s.take(MAX_ANSWER).read_to_end(&mut reply).map_err(io)?;
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ApiError::NotHttp { sock: name() })?;
    let head = String::from_utf8_lossy(&reply[..split]);
    let status = head.split_whitespace().nth(1).unwrap_or("");
    match status {
        "200" => Ok(Some(reply[split + 4..].to_vec())),
        "404" => Ok(None),
        other => Err(ApiError::Status {
            sock: name(),
            status: crate::output::text::escape(&cut(other)),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    const A: &str = "3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

    /// A fake runtime on a fresh socket: answers each connection with the next of
    /// `answers`, and returns the request lines it got when joined.
    pub(crate) fn fake_runtime(
        tag: &str,
        answers: Vec<String>,
    ) -> (PathBuf, std::thread::JoinHandle<Vec<String>>) {
        let dir = std::env::temp_dir().join(format!("syslat-rt-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("api.sock");
        let _ = std::fs::remove_file(&sock);
        let listener = UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let mut asked = Vec::new();
            for answer in answers {
                let (mut c, _) = listener.accept().unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = c.read(&mut buf).unwrap();
                    assert!(n > 0, "the request head ends");
                    req.extend_from_slice(&buf[..n]);
                }
                let line = String::from_utf8_lossy(&req);
                asked.push(line.lines().next().unwrap_or("").to_string());
                c.write_all(answer.as_bytes()).unwrap();
            }
            asked
        });
        (sock, server)
    }

    fn ok(body: &str) -> String {
        format!("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{body}")
    }

    #[test]
    fn docker_and_crio_answers_are_read() {
        let long = "x".repeat(5000);
        let (sock, server) = fake_runtime(
            "answers",
            vec![
                ok(&format!(
                    r#"{{"Id":"{A}","Name":"/web","Image":"sha256:1","Config":{{"Image":"nginx:1.27"}}}}"#
                )),
                ok(&format!(
                    r#"{{"Id":"nope","Name":"/{long}","Image":"sha256:2"}}"#
                )),
                "HTTP/1.0 404 Not Found\r\n\r\n{}".to_string(),
                "HTTP/1.0 500 Oops\u{1b}[2J\r\n\r\n".to_string(),
                "garbage".to_string(),
                ok("{not json"),
                ok(r#"{"name":"k8s_app_pod_ns_uid_0","image":"registry/app:2","labels":{}}"#),
            ],
        );
        let docker = Endpoint {
            sock: sock.clone(),
            api: Api::Docker,
        };
        let a = inspect(&docker, "web").unwrap().unwrap();
        assert_eq!(
            a,
            Answer {
                id: Some(A.into()),
                name: "web".into(),
                image: "nginx:1.27".into()
            }
        );
        // A malformed id is dropped, a long name cut, the image id stands in.
        let b = inspect(&docker, A).unwrap().unwrap();
        assert_eq!(b.id, None);
        assert_eq!(b.name.chars().count(), MAX_TEXT);
        assert_eq!(b.image, "sha256:2");
        assert_eq!(inspect(&docker, A).unwrap(), None);
        let e = inspect(&docker, A).unwrap_err().to_string();
        assert!(e.ends_with("HTTP status 500"), "{e}");
        let e = inspect(&docker, A).unwrap_err().to_string();
        assert!(e.ends_with("no HTTP answer"), "{e}");
        let e = inspect(&docker, A).unwrap_err().to_string();
        assert!(e.contains("bad answer"), "{e}");
        let crio = Endpoint {
            sock: sock.clone(),
            api: Api::Crio,
        };
        let c = inspect(&crio, A).unwrap().unwrap();
        assert_eq!(
            c,
            Answer {
                id: Some(A.into()),
                name: "k8s_app_pod_ns_uid_0".into(),
                image: "registry/app:2".into()
            }
        );
        let asked = server.join().unwrap();
        assert_eq!(asked[0], "GET /containers/web/json HTTP/1.0");
        assert_eq!(asked[6], format!("GET /containers/{A} HTTP/1.0"));
        let gone = Endpoint {
            sock: PathBuf::from("/nonexistent/api.sock"),
            api: Api::Docker,
        };
        assert!(matches!(inspect(&gone, A), Err(ApiError::Connect { .. })));
        let _ = std::fs::remove_dir_all(sock.parent().unwrap());
    }
}
