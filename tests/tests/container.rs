//! Containers against a real runtime: Docker (Debian's docker.io, started here when it is
//! not running; nothing is pulled: the image is imported from a tarball of busybox-static,
//! the workload and the libraries it links). Two containers wait at a gate (a file in a
//! bind-mounted directory) until syslat is tracing, then make known numbers of getppid
//! calls (7000 and 3000). Each is counted exactly under `--container NAME`, `--container
//! ID-PREFIX`, as its row of `record --by container` (with its id, name and image, and the
//! same through `report`), and as its series of `serve --by container`. A third container,
//! started while `record --by container` traces, makes 300 calls and is gone within tens of
//! milliseconds: it has its own exact row too; so has one whose calls syslat drains only
//! after its process and cgroup are gone (syslat stopped meanwhile).
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use tests::{
    Reaped, Record, Signal, cgroup_v2_root, count, http,
    http::metric,
    prometheus::{Prometheus, has_data, now, substitute, urlencode},
    run, signal, start_serving, summary, temp_path, workload,
};

const DOCKER: &str = "/usr/bin/docker";
/// getppid calls of the two containers.
const CALLS_A: u64 = 7000;
const CALLS_B: u64 = 3000;
/// clock_nanosleep calls (of 1 µs) of a third container, run to its end while tracing (not
/// getppid: runc's init, in the container's cgroup when it starts, makes getppid calls too).
const CALLS_C: u64 = 300;

fn docker(args: &[&str]) -> String {
    let o = Command::new(DOCKER).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// FNV-1a of the files' bytes: the image's tag, so a rebuilt workload gets a new image.
fn fingerprint(files: &[PathBuf]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        for b in std::fs::read(f).unwrap() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The libraries `bin` loads (with the dynamic loader), as `ldd` lists them.
fn libraries(bin: &str) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().unwrap();
    assert!(out.status.success(), "ldd {bin}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = l.split("=> ").nth(1).unwrap_or(l);
            let path = path.split(" (").next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A running dockerd and the test image (its tag).
fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        ensure_dockerd();
        let libs = libraries(workload());
        let mut files = vec![PathBuf::from("/bin/busybox"), PathBuf::from(workload())];
        files.extend(libs.iter().cloned());
        let tag = format!("syslat-test-workload:{}", fingerprint(&files));
        let have = Command::new(DOCKER)
            .args(["image", "inspect", &tag])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            let root = temp_path("workload-image");
            let _ = std::fs::remove_dir_all(&root);
            let put = |from: &Path, to: &Path| {
                let dest = root.join(to.strip_prefix("/").unwrap());
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::copy(from, dest).unwrap();
            };
            put(Path::new("/bin/busybox"), Path::new("/bin/busybox"));
            put(Path::new(workload()), Path::new("/workload"));
            for lib in &libs {
                put(lib, lib);
            }
            let mut tar = Command::new("tar")
                .arg("-C")
                .arg(&root)
                .args(["-c", "."])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let ok = Command::new(DOCKER)
                .args(["import", "-", &tag])
                .stdin(tar.stdout.take().unwrap())
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(tar.wait().unwrap().success(), "tar");
            assert!(ok.success(), "docker import");
        }
        tag
    })
}

fn ensure_dockerd() {
    let up = || {
        Command::new(DOCKER)
            .arg("info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if up() {
        return;
    }
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

/// The name of this test process's container `tag`, with any container left under that
/// name by an earlier run removed.
fn fresh_name(tag: &str) -> String {
    let name = format!("syslat-test-{}-{tag}", std::process::id());
    let _ = Command::new(DOCKER).args(["rm", "-f", &name]).output();
    name
}

/// A started container, waiting at its gate to make `calls` getppid calls (then sleep 0.5
/// s); removed on drop.
struct Container {
    name: String,
    id: String,
    gate: PathBuf,
}

impl Container {
    fn start(tag: &str, calls: u64) -> Self {
        Self::start_steps(tag, &format!("getppid {calls} sleep 1 500"))
    }

    /// A gated container that runs the workload's `steps` once its gate opens.
    fn start_steps(tag: &str, steps: &str) -> Self {
        // After its calls the workload sleeps 0.5 s, so that its cgroup outlives syslat's
        // next drain even on a loaded machine: a container gone before syslat could read
        // its cgroup is counted exactly too, but in the `?` row (README, Containers).
        Self::start_gated(
            tag,
            &format!(
                "while [ ! -e /gate/go ]; do /bin/busybox sleep 0.02; done; \
                 exec /workload {steps}"
            ),
        )
    }

    /// A container that runs the busybox shell `script` with its gate, a directory of the
    /// host's, mounted at `/gate` (read-only): the script waits for `/gate/go`, which
    /// [`Container::open_gate`] makes.
    fn start_gated(tag: &str, script: &str) -> Self {
        let image = image();
        let name = fresh_name(tag);
        let gate = temp_path(&format!("gate-{tag}"));
        let _ = std::fs::remove_dir_all(&gate);
        std::fs::create_dir_all(&gate).unwrap();
        let id = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "-v",
            &format!("{}:/gate:ro", gate.display()),
            image,
            "/bin/busybox",
            "sh",
            "-c",
            script,
        ]);
        assert_eq!(id.len(), 64, "{id}");
        Container { name, id, gate }
    }

    /// Runs a container that makes `calls` clock_nanosleep calls at once and exits (tens of
    /// ms: gone, cgroup and all, before syslat may have drained its calls); returns when it
    /// has exited.
    fn run_to_end(tag: &str, calls: u64) -> Self {
        let image = image();
        let name = fresh_name(tag);
        let calls = calls.to_string();
        docker(&[
            "run",
            "--name",
            &name,
            "--network",
            "none",
            image,
            "/workload",
            "sleep-us",
            &calls,
            "1",
        ]);
        let id = docker(&["inspect", "-f", "{{.Id}}", &name]);
        assert_eq!(id.len(), 64, "{id}");
        Container {
            name,
            id,
            gate: PathBuf::new(),
        }
    }

    fn open_gate(&self) {
        std::fs::write(self.gate.join("go"), b"").unwrap();
    }

    /// Waits for the container's workload to finish, asserting it succeeded.
    fn wait(&self) {
        assert_eq!(
            docker(&["wait", &self.name]),
            "0",
            "{} exit status",
            self.name
        );
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER).args(["rm", "-f", &self.name]).output();
    }
}

/// Two gated containers, `a` and `b`.
fn two() -> (Container, Container) {
    (
        Container::start("a", CALLS_A),
        Container::start("b", CALLS_B),
    )
}

/// Lets both containers run to the end while `tracer` traces, then ends the tracer with
/// SIGINT (a recording's end; it exits 130 after writing its summary).
fn run_both(a: &Container, b: &Container, mut tracer: Reaped) {
    a.open_gate();
    b.open_gate();
    a.wait();
    b.wait();
    signal(&tracer, Signal::SIGINT);
    assert_eq!(tracer.wait().unwrap().code(), Some(130));
}

#[test]
fn a_container_by_name_or_id_prefix_is_counted_exactly() {
    for by_name in [true, false] {
        let (a, b) = two();
        let target = if by_name {
            a.name.clone()
        } else {
            a.id[..12].to_string()
        };
        let out = temp_path("container.json");
        let rec = Record::json(&out, &["--container", &target, "-s", "getppid"]).start();
        run_both(&a, &b, rec);
        assert_eq!(
            count(&summary(&out), "getppid"),
            CALLS_A,
            "--container {target}: its calls, none of the other container's"
        );
    }
}

/// The rows of `syscall` with container id `id`.
fn container_rows<'a>(
    s: &'a serde_json::Value,
    syscall: &str,
    id: &str,
) -> Vec<&'a serde_json::Value> {
    s["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["syscall"] == syscall && r["container_id"] == id)
        .collect()
}

#[test]
fn by_container_rows_have_exact_counts_names_and_images() {
    let (a, b) = two();
    let out = temp_path("by-container.json");
    let rec = Record::json(&out, &["--by", "container"]).start();
    // A third container, made and gone while tracing: its cgroup's path comes from the
    // hierarchy's watch.
    let c = Container::run_to_end("c", CALLS_C);
    run_both(&a, &b, rec);
    let expected = [
        (&a, "getppid", CALLS_A),
        (&b, "getppid", CALLS_B),
        (&c, "clock_nanosleep", CALLS_C),
    ];
    let check = |s: &serde_json::Value, how: &str| {
        assert_eq!(s["by"], "container", "{how}");
        for (c, syscall, calls) in expected {
            let rows = container_rows(s, syscall, &c.id);
            assert_eq!(rows.len(), 1, "{how}: one {syscall} row for {}", c.name);
            assert_eq!(rows[0]["count"], calls, "{how}: {}", c.name);
            // Every row of the container (its shell's and workload's calls) is named.
            let all: Vec<&serde_json::Value> = s["rows"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["container_id"] == c.id.as_str())
                .collect();
            assert!(all.len() > 1, "{how}: the container's other syscalls too");
            for r in all {
                assert_eq!(r["container_name"], c.name.as_str(), "{how}: {r}");
                assert_eq!(r["container_image"], image(), "{how}: {r}");
                assert!(r.get("pod_uid").is_none(), "{how}: not in a pod: {r}");
            }
        }
        // Processes outside containers (this test, dockerd) are the host row.
        let host: Vec<&serde_json::Value> = s["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["container_id"] == "")
            .collect();
        assert!(
            host.iter().any(|r| r["container_name"] == "-"),
            "{how}: a host row"
        );
        assert!(
            s["rows"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r.get("pid").is_none()),
            "{how}"
        );
    };
    check(&summary(&out), "record");
    // `report` regroups the recording by container: the same rows.
    let o = run(&[
        "report",
        "--by",
        "container",
        "-f",
        "json",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reported: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    check(&reported, "report");
    // The table: a container's short id, name and image, then the syscall and its count.
    let o = run(&[
        "report",
        "--by",
        "container",
        "-s",
        "getppid,clock_nanosleep",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.lines().nth(1).unwrap().starts_with("CONTAINER "),
        "{text}"
    );
    for (c, syscall, calls) in expected {
        let line = text
            .lines()
            .find(|l| l.starts_with(&c.id[..12]) && l.split_whitespace().nth(3) == Some(syscall))
            .unwrap_or_else(|| panic!("no {syscall} row of {}: {text}", c.name));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cells[..5],
            [
                &c.id[..12],
                c.name.as_str(),
                image(),
                syscall,
                &calls.to_string()
            ],
            "{text}"
        );
    }
}

#[test]
fn a_container_gone_before_its_calls_are_drained_has_its_row() {
    // Traced: clock_nanosleep only, which the container makes in its workload alone (its
    // gate loop is a shell builtin, no sleep).
    let image = image();
    let out = temp_path("brief.json");
    let mut rec = Record::json(&out, &["--by", "container", "-s", "clock_nanosleep"]).start();
    let c = Container::start_gated(
        "brief",
        &format!("while [ ! -e /gate/go ]; do :; done; exec /workload sleep-us {CALLS_C} 1"),
    );
    // syslat is stopped while the container makes its calls, exits and is cleaned up: when
    // it drains them, the container's process and cgroup are gone. Its cgroup's path was
    // seen when it was made (the hierarchy's watch); without it, the row would be `?`.
    std::thread::sleep(Duration::from_millis(300));
    signal(&rec, Signal::SIGSTOP);
    c.open_gate();
    c.wait();
    let root = cgroup_v2_root();
    let dirs = [
        root.join("docker").join(&c.id),
        root.join(format!("system.slice/docker-{}.scope", c.id)),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while dirs.iter().any(|d| d.exists()) {
        assert!(Instant::now() < deadline, "the container's cgroup stays");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&rec, Signal::SIGCONT);
    std::thread::sleep(Duration::from_millis(200));
    signal(&rec, Signal::SIGINT);
    assert_eq!(rec.wait().unwrap().code(), Some(130));
    let s = summary(&out);
    let rows = container_rows(&s, "clock_nanosleep", &c.id);
    assert_eq!(rows.len(), 1, "{s}");
    assert_eq!(rows[0]["count"], CALLS_C);
    assert_eq!(rows[0]["container_name"], c.name.as_str());
    assert_eq!(rows[0]["container_image"], image);
}

/// The body of `GET /metrics` from the `serve` at `addr`.
fn scrape(addr: &str) -> String {
    http::body(&http::get(addr, "/metrics", "text/plain")).to_string()
}

#[test]
fn serve_by_container_labels_series_by_container() {
    let (a, b) = two();
    let addr = "127.0.0.1:19878";
    let _srv = start_serving(addr, &["--by", "container", "-s", "getppid"]);
    // A real Prometheus scrapes it from before the containers' calls (for the dashboard's
    // container panels, below).
    let prom = Prometheus::start("by-container", addr, true);
    prom.wait_up();
    let start = now();
    // A third container makes its calls over 4.5 s, so that rates over a few scrapes are
    // not all zero.
    let c = Container::start_steps(
        "c",
        "getppid 300 sleep 1 1500 getppid 300 sleep 1 1500 getppid 300 sleep 1 1500",
    );
    c.open_gate();
    a.open_gate();
    b.open_gate();
    a.wait();
    b.wait();
    c.wait();
    let series = |c: &Container| {
        format!(
            r#"syslat_syscall_duration_seconds_count{{syscall="getppid",container_id="{}",container_name="{}",pod_uid=""}}"#,
            c.id, c.name
        )
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = scrape(addr);
        let got = (metric(&text, &series(&a)), metric(&text, &series(&b)));
        if got == (Some(CALLS_A), Some(CALLS_B)) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "counts never reached: {got:?}\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Every series of the family carries the three container labels, and none a pid.
    for l in text
        .lines()
        .filter(|l| l.starts_with("syslat_syscall_duration_seconds"))
    {
        assert!(
            l.contains("container_id=\"")
                && l.contains("container_name=\"")
                && l.contains("pod_uid=\""),
            "{l}"
        );
        assert!(!l.contains("pid=") && !l.contains("comm="), "{l}");
    }
    // The dashboard's container panels, queried from that Prometheus: data, by container,
    // naming these containers.
    // a and b exactly (checked above); c's 900 and whatever runc's init made in its cgroup.
    let want = (CALLS_A + CALLS_B + 900) as f64;
    let q = r#"histogram_count(sum(syslat_syscall_duration_seconds{syscall="getppid",container_id!=""}))"#;
    let got = prom.settle(q, want);
    assert!(got.is_some_and(|v| v >= want), "{got:?}: {}", prom.log());
    std::thread::sleep(Duration::from_secs(3));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/syslat.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let panels: Vec<&serde_json::Value> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
        .filter(|p| {
            p["title"]
                .as_str()
                .is_some_and(|t| t.contains("by container"))
        })
        .collect();
    assert!(panels.len() >= 2, "the dashboard's container panels");
    let range_s = (now() - start).ceil() as u64 + 5;
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            let expr = substitute(t["expr"].as_str().unwrap(), range_s);
            let data = prom
                .api(&format!(
                    "query_range?query={}&start={start:.3}&end={:.3}&step=1",
                    urlencode(&expr),
                    now()
                ))
                .unwrap_or_else(|e| panic!("{}: {expr}: {e}", p["title"]));
            let result = data["result"].as_array().unwrap();
            assert!(
                has_data(result),
                "panel {} has no data: {expr}: {result:?}",
                p["title"]
            );
            assert!(
                result
                    .iter()
                    .any(|r| r["metric"]["container_name"] == c.name.as_str()),
                "panel {} lacks container {}: {result:?}",
                p["title"],
                c.name
            );
        }
    }
    drop(prom);
    http::assert_promtool_accepts(&text);
}
