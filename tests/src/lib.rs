//! Helpers for syslat's integration tests: find the `syslat` binary and the workload,
//! run them, and read the JSON summary.
#![forbid(unsafe_code)]

pub mod browser;
pub mod http;
pub mod prometheus;
mod record;

pub use nix::sys::signal::Signal;
pub use record::{
    Record, own_at_p50, own_durations, own_range, record_json, record_timed, record_workload,
};

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::{Duration, Instant},
};

/// The `syslat` binary under test: `$SYSLAT_BIN`, else next to this test's target dir.
pub fn syslat_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SYSLAT_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test> -> target/<profile>/syslat
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = dir.join("syslat");
    assert!(
        bin.exists(),
        "{} not built: run `cargo xtask test`",
        bin.display()
    );
    bin
}

/// The test workload (`src/bin/workload.rs`): `$SYSLAT_WORKLOAD`, else the binary Cargo
/// built beside this test's `deps` directory (`target/<profile>/workload`; Cargo builds a
/// package's binaries before its integration tests, so `cargo test -p tests` and `cargo
/// xtask test` always have it). `env!("CARGO_BIN_EXE_workload")` names the same file but
/// exists only inside the integration tests, not in this library.
pub fn workload() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = match std::env::var_os("SYSLAT_WORKLOAD") {
            Some(p) => PathBuf::from(p),
            None => {
                // target/<profile>/deps/<test> -> target/<profile>/workload
                let exe = std::env::current_exe().expect("test executable path");
                exe.parent()
                    .and_then(|d| d.parent())
                    .expect("target/<profile>")
                    .join("workload")
            }
        };
        assert!(
            path.exists(),
            "{} not built: run `cargo xtask test`",
            path.display()
        );
        path.into_os_string()
            .into_string()
            .expect("a UTF-8 workload path")
    })
}

/// Waits up to `within` for `child` to exit by itself and returns its status; `what` says
/// what was expected in the failure message.
pub fn wait_for_exit(
    child: &mut std::process::Child,
    within: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Where cgroup v2 is mounted (from `/proc/self/mounts`).
pub fn cgroup_v2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("/proc/self/mounts");
    let line = mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .expect("cgroup v2 mounted");
    PathBuf::from(line[1])
}

/// A `Command` for `syslat` with `args`, which every test that starts syslat builds on.
///
/// cargo (and `cargo xtask`, through `cargo run`) put their library directories in
/// LD_LIBRARY_PATH; the dynamic loader of a command syslat starts would probe each of them
/// and their hwcaps subdirectories for libgcc_s: 120 failed openat on a machine with
/// AVX-512 and a different number on another, enough to fill the slow-call log's budget
/// and to make two runs of one command differ in their call counts. syslat and the
/// commands it starts need none of it.
pub fn syslat(args: &[&str]) -> Command {
    let mut c = Command::new(syslat_bin());
    c.env_remove("LD_LIBRARY_PATH");
    c.args(args);
    c
}

/// Runs syslat and returns its output.
pub fn run(args: &[&str]) -> Output {
    syslat(args).output().expect("syslat runs")
}

/// A fresh temporary path for an output file.
pub fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("syslat-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// The last line of a JSON Lines file, parsed (the summary).
pub fn summary(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("output file");
    let last = text.lines().last().expect("at least one line");
    let v: serde_json::Value = serde_json::from_str(last).expect("valid JSON");
    assert_eq!(v["type"], "summary", "last line is the summary");
    v
}

/// The row of `syscall` in a summary (summed over processes when grouped by process).
pub fn count(summary: &serde_json::Value, syscall: &str) -> u64 {
    rows(summary, syscall)
        .iter()
        .map(|r| r["count"].as_u64().expect("count"))
        .sum()
}

/// Every row of `syscall` in a summary.
pub fn rows<'a>(summary: &'a serde_json::Value, syscall: &str) -> Vec<&'a serde_json::Value> {
    summary["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["syscall"] == syscall)
        .collect()
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failing test never
/// leaves a tracer running behind it.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Sends `sig` to `child` (kill(2) on its pid), asserting that it was sent.
pub fn signal(child: &std::process::Child, sig: Signal) {
    let pid = i32::try_from(child.id()).expect("a pid fits in pid_t");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).expect("kill(2) on our child");
}

/// Spawns `cmd` with its stderr piped and returns it with its first stderr line.
fn spawn_with_first_line(cmd: &mut Command) -> (Reaped, String) {
    use std::io::BufRead;
    let mut child = Reaped(
        cmd.stderr(std::process::Stdio::piped())
            .spawn()
            .expect("syslat starts"),
    );
    let mut line = String::new();
    let stderr = child.stderr.take().expect("piped stderr");
    std::io::BufReader::new(stderr)
        .read_line(&mut line)
        .expect("a first stderr line");
    (child, line)
}

/// Starts `syslat ARGS` and returns once it says it is tracing (its first stderr line).
pub fn start_tracing(args: &[&str]) -> Reaped {
    start_tracing_with(&mut syslat(args))
}

/// Starts `cmd` (a tracing syslat) and returns once it says it is tracing.
fn start_tracing_with(cmd: &mut Command) -> Reaped {
    let (child, line) = spawn_with_first_line(cmd);
    assert!(
        line.starts_with("syslat: tracing"),
        "syslat did not start tracing: {line}"
    );
    child
}

/// Starts `syslat serve --listen ADDR ARGS` with its stdin a pipe (the gate of a `gate`
/// workload after `--`) and returns once its first stderr line says it serves
/// `http://ADDR/metrics`.
pub fn start_serving(addr: &str, args: &[&str]) -> Reaped {
    let mut all = vec!["serve", "--listen", addr];
    all.extend_from_slice(args);
    let (child, line) = spawn_with_first_line(syslat(&all).stdin(std::process::Stdio::piped()));
    assert!(
        line.contains(&format!("serving http://{addr}/metrics")),
        "{line}"
    );
    child
}

/// IDs of the loaded BPF programs named like syslat's `sys_enter`/`sys_exit` (bpftool).
pub fn our_program_ids() -> std::collections::BTreeSet<u32> {
    let o = Command::new("bpftool")
        .args(["prog", "show"])
        .output()
        .expect("bpftool runs");
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("name sys_enter") || l.contains("name sys_exit"))
        .filter_map(|l| l.split(':').next()?.trim().parse().ok())
        .collect()
}

/// Sessions started by this test binary (each gets its own name).
static TMUX_SESSIONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A tmux session, killed on drop.
pub struct Tmux(String);

impl Tmux {
    /// Starts `cmd` in a new detached 150x45 session.
    pub fn start(cmd: &str) -> Self {
        let name = format!(
            "syslat-test-{}-{}",
            std::process::id(),
            TMUX_SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "150",
                "-y",
                "45",
                cmd,
            ])
            .status()
            .expect("tmux is installed by cargo xtask setup");
        assert!(ok.success());
        Tmux(name)
    }

    /// The visible screen.
    pub fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Types `k` (tmux key names).
    pub fn keys(&self, k: &str) {
        assert!(
            Command::new("tmux")
                .args(["send-keys", "-t", &self.0, k])
                .status()
                .expect("tmux runs")
                .success()
        );
    }

    /// Waits until the screen satisfies `pred`.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

/// Runs `syslat ARGS` and asserts that it fails as bad input should: exit 2 and one line
/// on stderr, `syslat: ...`, that contains `expect` (and no panic); returns that line.
pub fn fails_with(args: &[&str], expect: &str) -> String {
    let o = run(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line expected: {stderr}"
    );
    assert!(stderr.starts_with("syslat: "), "{stderr}");
    assert!(
        stderr.contains(expect),
        "{args:?}: {stderr:?} lacks {expect:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr.into_owned()
}

/// The syscalls each round of the workload's `zoo` step makes, at least once each (`getpid`
/// and `umask` twice, `close` five times): with a process's start-up, a recording of more
/// than 47 distinct syscalls.
pub const ZOO: [&str; 50] = [
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "gettid",
    "getsid",
    "getpgid",
    "getpriority",
    "sched_yield",
    "sched_getaffinity",
    "sched_getscheduler",
    "sched_getparam",
    "getrusage",
    "times",
    "uname",
    "sysinfo",
    "umask",
    "getcwd",
    "prlimit64",
    "getcpu",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "getgroups",
    "getresuid",
    "getresgid",
    "rt_sigprocmask",
    "rt_sigpending",
    "sigaltstack",
    "getitimer",
    "prctl",
    "pipe2",
    "write",
    "read",
    "dup",
    "fcntl",
    "lseek",
    "fstat",
    "openat",
    "getdents64",
    "newfstatat",
    "faccessat",
    "readlinkat",
    "statfs",
    "kill",
    "tgkill",
    "eventfd2",
    "epoll_create1",
];
