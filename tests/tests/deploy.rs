//! The deployment files: `deploy/daemonset.yaml` is checked field by field against the
//! Kubernetes API types (the official Python client's models, generated from the API's
//! OpenAPI spec: an unknown or misspelt field, a wrong type or a missing required field
//! fails), and its pod runs under a real containerd and runc with the security context it
//! declares (host pid namespace, only the capabilities it adds, the runtime's default
//! seccomp profile, read-only root) and counts a known workload on the host exactly.
//! `packaging/syslat.service` passes `systemd-analyze verify`, and its command, run under
//! exactly its capabilities, does the same. No cluster and no systemd are needed.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tests::{Reaped, Signal, signal, syslat_bin, temp_path, workload};

/// The repository's root (this crate is `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Reads a YAML file of Kubernetes objects, builds each one as the Kubernetes API type its
/// `apiVersion` and `kind` name (strictly: every field must exist in that type, with the
/// type's value type; the models' constructors reject missing required fields), and prints
/// the documents as one JSON array.
const VALIDATE: &str = r#"
import json, re, sys, yaml
from kubernetes import client

PRIMITIVE = {"str": str, "int": int, "bool": bool, "float": (int, float)}

def build(value, typ, path):
    # Type names as the client spells them: List[T] and Dict[str, T] (list[T] and
    # dict(str, T) in older clients).
    listed = re.fullmatch(r"[Ll]ist\[(.+)\]", typ)
    mapped = re.fullmatch(r"(?:Dict\[|dict\()[^,]+, (.+)[\])]", typ)
    if listed:
        if not isinstance(value, list):
            sys.exit(f"{path}: expected a list for {typ}, got {value!r}")
        return [build(v, listed.group(1), f"{path}[{i}]") for i, v in enumerate(value)]
    if mapped:
        if not isinstance(value, dict):
            sys.exit(f"{path}: expected a mapping for {typ}, got {value!r}")
        return {k: build(v, mapped.group(1), f"{path}.{k}") for k, v in value.items()}
    if typ in PRIMITIVE:
        if not isinstance(value, PRIMITIVE[typ]) or (typ != "bool" and isinstance(value, bool)):
            sys.exit(f"{path}: expected {typ}, got {value!r}")
        return value
    if typ == "object":  # IntOrString, Quantity, RawExtension
        return value
    cls = getattr(client, typ, None)
    if cls is None:
        sys.exit(f"{path}: no Kubernetes type {typ}")
    if not isinstance(value, dict):
        sys.exit(f"{path}: expected a {typ} mapping, got {value!r}")
    attrs = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    fields = {}
    for k, v in value.items():
        if k not in attrs:
            sys.exit(f"{path}: {typ} has no field {k!r}")
        fields[attrs[k]] = build(v, cls.openapi_types[attrs[k]], f"{path}.{k}")
    try:
        return cls(**fields)
    except ValueError as e:
        sys.exit(f"{path}: {e}")

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
for i, d in enumerate(docs):
    version = d.get("apiVersion", "").split("/")[-1]
    typ = version[:1].upper() + version[1:] + d.get("kind", "")
    build(d, typ, f"document {i} ({typ})")
print(json.dumps(docs))
"#;

/// The documents of `deploy/daemonset.yaml`, validated by [`VALIDATE`].
fn daemonset_docs() -> Vec<serde_json::Value> {
    let o = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(root().join("deploy/daemonset.yaml"))
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "the manifest is not a valid Kubernetes object (the Python packages kubernetes and \
         PyYAML are installed by cargo xtask setup): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The validator itself rejects what it must: an unknown field, a wrong type, a missing
/// required field.
#[test]
fn the_validator_rejects_bad_manifests() {
    let good = std::fs::read_to_string(root().join("deploy/daemonset.yaml")).unwrap();
    for (bad, why) in [
        (good.replace("hostPID:", "hostPid:"), "no field 'hostPid'"),
        (
            good.replace("containerPort: 9876", "containerPort: \"9876\""),
            "expected int",
        ),
        (good.replace("- name: syslat\n", "- \n"), "Field required"),
    ] {
        assert_ne!(bad, good, "the edit for {why:?} applies");
        let path = temp_path("bad-daemonset.yaml");
        std::fs::write(&path, bad).unwrap();
        let o = Command::new("python3")
            .arg("-c")
            .arg(VALIDATE)
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(why), "{why}: {err}");
    }
}

/// The one container of the DaemonSet's pod template, and the pod spec.
fn pod(docs: &[serde_json::Value]) -> (&serde_json::Value, &serde_json::Value) {
    let ds = docs
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet");
    let spec = &ds["spec"]["template"]["spec"];
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    (spec, &containers[0])
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// What the README and the manifest's comment promise: `serve` on every node, scraped by
/// annotation on the port it listens on, in the host's pid namespace, with CAP_BPF and
/// CAP_PERFMON (and CAP_SYS_RESOURCE for old kernels) and nothing else, and the node's BTF.
#[test]
fn daemonset_is_a_valid_kubernetes_object_with_what_syslat_needs() {
    let docs = daemonset_docs();
    let ds = docs.iter().find(|d| d["kind"] == "DaemonSet").unwrap();
    assert_eq!(ds["apiVersion"], "apps/v1");
    let labels = &ds["spec"]["template"]["metadata"]["labels"];
    for (k, v) in ds["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "the selector matches the pod's label {k}");
    }
    let (spec, c) = pod(&docs);
    assert_eq!(spec["hostPID"], true);
    let args = strings(&c["args"]);
    assert_eq!(args[0], "serve");
    let listen = args
        .windows(2)
        .find(|w| w[0] == "--listen")
        .map(|w| w[1].clone())
        .expect("--listen");
    let port: u64 = listen.rsplit_once(':').unwrap().1.parse().unwrap();
    assert!(
        listen.starts_with("0.0.0.0:"),
        "reachable from the pod network: {listen}"
    );
    assert_eq!(c["ports"][0]["containerPort"], port);
    let notes = &ds["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(notes["prometheus.io/scrape"], "true");
    assert_eq!(notes["prometheus.io/port"], port.to_string());
    assert_eq!(notes["prometheus.io/path"], "/metrics");
    let sc = &c["securityContext"];
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(
        strings(&sc["capabilities"]["add"]),
        ["BPF", "PERFMON", "SYS_RESOURCE"]
    );
    assert_ne!(sc["privileged"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    let mounts: Vec<(&str, &str)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(mounts.contains(&("btf", "/sys/kernel/btf")), "{mounts:?}");
    for (name, path) in mounts {
        let vol = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"));
        assert_eq!(vol["hostPath"]["path"], path, "the node's own {path}");
    }
}

/// A containerd socket: the system's, or the one dockerd runs; else containerd is started
/// in the background (a daemon of init, like the container test's dockerd).
fn containerd() -> &'static str {
    const SOCKETS: [&str; 2] = [
        "/run/containerd/containerd.sock",
        "/var/run/docker/containerd/containerd.sock",
    ];
    let up = |s: &str| {
        Command::new("ctr")
            .args(["--address", s, "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success())
    };
    if let Some(s) = SOCKETS.into_iter().find(|s| up(s)) {
        return s;
    }
    let started = Command::new("sh")
        .args(["-c", "containerd >/dev/null 2>&1 &"])
        .status()
        .expect("sh runs");
    assert!(
        started.success(),
        "containerd (Debian package containerd) is installed by cargo xtask setup"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !up(SOCKETS[0]) {
        assert!(Instant::now() < deadline, "containerd did not start");
        std::thread::sleep(Duration::from_millis(250));
    }
    SOCKETS[0]
}

/// A root file system for the pod's container: the syslat under test with the libraries it
/// links (the image of deploy/Dockerfile holds the static build alone), and busybox to
/// look at the container from inside.
fn rootfs() -> PathBuf {
    let dir = temp_path("pod-rootfs");
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["usr/bin", "bin", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let bin = syslat_bin();
    let mut files = vec![(bin.clone(), PathBuf::from("usr/bin/syslat"))];
    files.push((PathBuf::from("/bin/busybox"), PathBuf::from("bin/busybox")));
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        files.push((PathBuf::from(lib), PathBuf::from(&lib[1..])));
    }
    for (from, to) in files {
        let to = dir.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    dir
}

/// This process's capability bounding set (the machine may lack some capability, e.g.
/// CAP_SYS_RESOURCE: no container can be given what its runtime does not have).
fn own_bounding_set() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap();
    u64::from_str_radix(hex.trim(), 16).unwrap()
}

fn cap_number(name: &str) -> u32 {
    match name {
        "SYS_PTRACE" => 19,
        "SYS_ADMIN" => 21,
        "SYS_RESOURCE" => 24,
        "PERFMON" => 38,
        "BPF" => 39,
        other => panic!("capability {other} is not expected here"),
    }
}

/// The capabilities `ctr run` grants unless told otherwise (containerd's default set); the
/// pod's `drop: [ALL]` drops each. The container's status below proves none is left.
const CTR_DEFAULT_CAPS: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    Some(resp)
}

/// The `_count` of `syscall` for processes named `comm` in `serve --by process`'s metrics.
fn count_for(metrics: &str, syscall: &str, comm: &str) -> Option<u64> {
    let (s, c) = (format!("syscall=\"{syscall}\""), format!("comm=\"{comm}\""));
    metrics
        .lines()
        .find(|l| {
            l.starts_with("syslat_syscall_duration_seconds_count{")
                && l.contains(&s)
                && l.contains(&c)
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Runs a workload copy named `comm` making `n` getppid calls, then waits until the
/// `serve` at `addr` reports exactly them (a name read from the host's /proc).
fn scrape_counts_workload(addr: &str, comm: &str, n: u64) {
    let bin = std::env::temp_dir().join(comm);
    std::fs::copy(workload(), &bin).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(addr, "/").is_none() {
        assert!(Instant::now() < deadline, "serve never listened on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The process stays alive (its gate) until it is counted, so /proc has its name.
    let mut w = Reaped(
        Command::new(&bin)
            .args(["getppid", &n.to_string(), "gate"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = http_get(addr, "/metrics").unwrap_or_default();
        let got = count_for(&m, "getppid", comm);
        if got == Some(n) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{comm}'s {n} getppid calls never showed: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(w.stdin.take());
    assert!(w.wait().unwrap().success());
    let _ = std::fs::remove_file(&bin);
}

/// The pod as containerd and runc run it (what the kubelet asks of them through the CRI):
/// the host pid namespace, the capabilities the manifest adds and no other, no privilege
/// escalation, a read-only root, the runtime's default seccomp profile, the manifest's host
/// mounts. Inside, syslat traces the host and names a host process exactly.
#[test]
fn daemonset_security_context_traces_under_containerd() {
    let docs = daemonset_docs();
    let (spec, c) = pod(&docs);
    let sock = containerd();
    let root = rootfs();
    let ns = Namespace {
        sock,
        name: format!("syslat-test-{}", std::process::id()),
    };
    let ctr = |args: &[String]| {
        let mut cmd = Command::new("ctr");
        cmd.args(["--address", sock, "-n", &ns.name]).args(args);
        cmd
    };
    let sc = &c["securityContext"];
    let bounding = own_bounding_set();
    let mut caps = 0u64;
    let mut flags: Vec<String> = vec!["run".into(), "--rm".into(), "--rootfs".into()];
    for cap in strings(&sc["capabilities"]["add"]) {
        let bit = 1u64 << cap_number(&cap);
        if bounding & bit == 0 {
            // Not on this machine (CAP_SYS_RESOURCE here): a runtime can't grant it.
            eprintln!("this machine lacks CAP_{cap}: the container is run without it");
            continue;
        }
        caps |= bit;
        flags.extend(["--cap-add".into(), format!("CAP_{cap}")]);
    }
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    for cap in CTR_DEFAULT_CAPS {
        flags.extend(["--cap-drop".into(), format!("CAP_{cap}")]);
    }
    if sc["seccompProfile"]["type"] == "RuntimeDefault" {
        flags.push("--seccomp".into());
    }
    if sc["readOnlyRootFilesystem"] == true {
        flags.push("--read-only".into());
    }
    if spec["hostPID"] == true {
        flags.extend([
            "--with-ns".into(),
            format!("pid:/proc/{}/ns/pid", std::process::id()),
        ]);
    }
    for m in c["volumeMounts"].as_array().unwrap() {
        let vol = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap();
        let ro = if m["readOnly"] == true { ":ro" } else { "" };
        flags.extend([
            "--mount".into(),
            format!(
                "type=bind,src={},dst={},options=rbind{ro}",
                vol["hostPath"]["path"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap()
            ),
        ]);
    }
    // The pod network cannot be had here; the host's stands in for it.
    flags.push("--net-host".into());
    flags.push(root.to_str().unwrap().into());

    // Inside: exactly those capabilities, no new privileges, seccomp filtering.
    let mut look = flags.clone();
    look.extend(["look".into(), "/bin/busybox".into(), "cat".into()]);
    look.push("/proc/self/status".into());
    let o = ctr(&look).output().unwrap();
    let status = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "ctr run: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{k} in {status}"))
    };
    for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(
            u64::from_str_radix(&field(set), 16).unwrap(),
            caps,
            "{set} {status}"
        );
    }
    if sc["allowPrivilegeEscalation"] == false {
        assert_eq!(field("NoNewPrivs:"), "1");
    }
    assert_eq!(field("Seccomp:"), "2", "filtered by the default profile");

    // syslat serve with the manifest's arguments, by process (to find the workload by its
    // name), on a test port of the host network.
    let addr = "127.0.0.1:19874";
    let mut args = strings(&c["args"]);
    let at = args.iter().position(|a| a == "--listen").unwrap();
    args[at + 1] = addr.into();
    args.extend(["--by".into(), "process".into()]);
    let mut serve = flags;
    serve.extend(["serve".into(), "/usr/bin/syslat".into()]);
    serve.extend(args);
    let mut pod = Reaped(ctr(&serve).stderr(Stdio::piped()).spawn().unwrap());
    let comm = format!("slk{}", std::process::id() % 100_000);
    scrape_counts_workload(addr, &comm, 4321);
    let killed = ctr(&[
        "task".into(),
        "kill".into(),
        "-s".into(),
        "SIGINT".into(),
        "serve".into(),
    ])
    .status()
    .unwrap();
    assert!(killed.success());
    let mut err = String::new();
    pod.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    // syslat's status for SIGINT, passed on by ctr.
    assert_eq!(pod.wait().unwrap().code(), Some(130), "{err}");
    assert!(err.contains("serving http://"), "{err}");
}

/// A containerd namespace of this test's, removed when done (once its containers are).
struct Namespace {
    sock: &'static str,
    name: String,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for _ in 0..20 {
            let gone = Command::new("ctr")
                .args(["--address", self.sock, "namespace", "remove", &self.name])
                .output()
                .is_ok_and(|o| o.status.success());
            if gone {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The values of `key=` lines in the unit's `[Service]` section (the last one wins).
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .unwrap_or_else(|| panic!("{key}= in the unit"))
        .trim()
        .to_string()
}

/// `packaging/syslat.service` is a valid unit (`systemd-analyze verify`, with its command
/// pointed at the syslat under test), and its command works under exactly its capabilities
/// and rlimit, as root, as systemd would start it.
#[test]
fn systemd_unit_verifies_and_its_capabilities_suffice() {
    let unit = std::fs::read_to_string(root().join("packaging/syslat.service")).unwrap();
    let exec = unit_value(&unit, "ExecStart");
    assert!(exec.starts_with("/usr/bin/syslat serve"), "{exec}");
    let bin = syslat_bin();
    let local = unit.replace("/usr/bin/syslat", bin.to_str().unwrap());
    let path = temp_path("syslat.service");
    std::fs::write(&path, local).unwrap();
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd) runs");
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let bounding: Vec<String> = unit_value(&unit, "CapabilityBoundingSet")
        .split_whitespace()
        .map(|c| c.strip_prefix("CAP_").unwrap().to_string())
        .collect();
    let ambient: Vec<String> = unit_value(&unit, "AmbientCapabilities")
        .split_whitespace()
        .map(|c| c.strip_prefix("CAP_").unwrap().to_string())
        .collect();
    assert_eq!(bounding, ["BPF", "PERFMON"]);
    assert_eq!(ambient, bounding);
    assert_eq!(unit_value(&unit, "NoNewPrivileges"), "yes");
    assert_eq!(unit_value(&unit, "LimitMEMLOCK"), "infinity");
    let set = |caps: &[String]| {
        let mut s = String::from("-all");
        for c in caps {
            s.push_str(&format!(",+{}", c.to_lowercase()));
        }
        s
    };
    let addr = "127.0.0.1:19873";
    // LimitMEMLOCK=infinity, set before the capabilities are dropped, as systemd does; a
    // machine without CAP_SYS_RESOURCE (this kind) cannot lift the hard limit, and its
    // kernel (5.11 and later) charges BPF maps to the memory cgroup instead anyway.
    let mut cmd = if own_bounding_set() & (1 << cap_number("SYS_RESOURCE")) != 0 {
        let mut c = Command::new("prlimit");
        c.args(["--memlock=unlimited:unlimited", "setpriv"]);
        c
    } else {
        Command::new("setpriv")
    };
    cmd.args(["--no-new-privs", "--bounding-set", &set(&bounding)])
        .args([
            "--inh-caps",
            &set(&ambient),
            "--ambient-caps",
            &set(&ambient),
        ])
        .arg(&bin)
        .args(exec.split_whitespace().skip(1))
        .args(["--by", "process", "--listen", addr])
        .stderr(Stdio::piped());
    let mut serve = Reaped(cmd.spawn().unwrap());
    let comm = format!("slu{}", std::process::id() % 100_000);
    scrape_counts_workload(addr, &comm, 2345);
    // Nothing more than the unit's capabilities.
    let status = std::fs::read_to_string(format!("/proc/{}/status", serve.id())).unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap();
    let want: u64 = bounding.iter().map(|c| 1u64 << cap_number(c)).sum();
    assert_eq!(
        u64::from_str_radix(eff.trim(), 16).unwrap(),
        want,
        "{status}"
    );
    signal(&serve, Signal::SIGINT);
    assert_eq!(serve.wait().unwrap().code(), Some(130));
}
