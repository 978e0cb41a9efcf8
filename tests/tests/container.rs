//! `--container` against a real container runtime: Docker (Debian's docker.io, started here
//! when it is not running; the image is imported from busybox-static, nothing is pulled).
//! Two containers make the same known calls at once; tracing one, by name or by a 12-digit
//! id prefix, counts exactly its calls and none of the other's.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tests::{count, record_json_targets, temp_path};

const DOCKER: &str = "/usr/bin/docker";
const IMAGE: &str = "syslat-test-busybox:latest";
/// Each container waits 2 s (time for syslat to attach), then execs busybox 50 times.
const SCRIPT: &str = "sleep 2; i=0; while [ $i -lt 50 ]; do /bin/busybox true; i=$((i+1)); done";

fn docker(args: &[&str]) -> String {
    let o = Command::new(DOCKER).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// A running dockerd and the test image.
fn ensure_docker() {
    let up = || {
        Command::new(DOCKER)
            .arg("info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !up() {
        // A daemon for every later test too: started by a shell in the background, so it
        // belongs to init, not to this test process.
        let started = Command::new("sh")
            .args(["-c", "dockerd >/dev/null 2>&1 &"])
            .status()
            .expect("sh runs");
        assert!(
            started.success(),
            "dockerd is installed by cargo xtask setup"
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while !up() {
            assert!(Instant::now() < deadline, "dockerd did not start");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let have = Command::new(DOCKER)
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        let root = temp_path("busybox-image");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let ok = Command::new(DOCKER)
            .args(["import", "-", IMAGE])
            .stdin(tar.stdout.take().unwrap())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(tar.wait().unwrap().success(), "tar");
        assert!(ok.success(), "docker import");
    }
}

/// A started container running [`SCRIPT`], removed on drop.
struct Container {
    name: String,
    id: String,
}

impl Container {
    fn start(tag: &str) -> Self {
        let name = format!("syslat-test-{}-{tag}", std::process::id());
        let _ = Command::new(DOCKER).args(["rm", "-f", &name]).output();
        let id = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            IMAGE,
            "/bin/busybox",
            "sh",
            "-c",
            SCRIPT,
        ]);
        assert_eq!(id.len(), 64, "{id}");
        Container { name, id }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER).args(["rm", "-f", &self.name]).output();
    }
}

#[test]
fn a_container_by_name_or_id_prefix_is_counted_exactly() {
    ensure_docker();
    for by_name in [true, false] {
        let (a, _b) = (Container::start("a"), Container::start("b"));
        let target = if by_name {
            a.name.clone()
        } else {
            a.id[..12].to_string()
        };
        let out = temp_path("container.json");
        let s = record_json_targets(&out, &["--container", &target, "-s", "execve", "-d", "4"]);
        assert_eq!(
            count(&s, "execve"),
            50,
            "--container {target}: its 50 execs, none of the other container's"
        );
    }
}
