//! `syslat record` against workloads with exactly known syscalls, through the real binary
//! and the real eBPF programs. Run as root, one test at a time (`cargo xtask test`).
//! These tests never skip: a machine that cannot load eBPF fails them.

#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tests::{
    Reaped, Record, Signal, count, fails_with, our_program_ids, own_at_p50, own_range,
    record_timed, record_workload, rows, signal, summary, syslat, temp_path, wait_for_exit,
    workload,
};

fn p50_ms(s: &serde_json::Value, syscall: &str) -> f64 {
    let r = rows(s, syscall);
    assert_eq!(r.len(), 1, "one {syscall} row");
    r[0]["p50_ns"].as_u64().unwrap() as f64 / 1e6
}

#[test]
fn getppid_counted_exactly() {
    let s = record_workload(&temp_path("getppid.json"), &[], &["getppid", "100000"]);
    assert_eq!(count(&s, "getppid"), 100_000);
    assert_eq!(s["lost_events"], 0);
    assert_eq!(
        s["unpaired_events"], 0,
        "the command's first syscall is traced from its enter"
    );
    assert_eq!(
        count(&s, "execve"),
        1,
        "exactly one execve: the command's own"
    );
}

#[test]
fn threads_counted_exactly() {
    let s = record_workload(&temp_path("threads.json"), &[], &["threads", "4", "25000"]);
    assert_eq!(count(&s, "getppid"), 100_000);
    assert_eq!(s["lost_events"], 0);
    assert_eq!(
        s["unpaired_events"], 0,
        "new threads' first return from clone is not a loss"
    );
}

/// syslat's p50 of a row against the workload's own bracket of the matching call
/// ([`own_at_p50`], [`own_range`]).
fn assert_p50_matches_own(s: &serde_json::Value, syscall: &str, own: &[u64], fast: usize) {
    let r = rows(s, syscall);
    assert_eq!(r.len(), 1, "one {syscall} row");
    let p50 = r[0]["p50_ns"].as_u64().unwrap();
    let own = own_at_p50(own, fast);
    assert!(
        own_range(own).contains(&p50),
        "{syscall} p50 {p50} ns, the workload's own {own} ns"
    );
}

#[test]
fn sleeps_have_the_right_latency() {
    let (s, own) = record_timed(&temp_path("sleeps.json"), &[], &["timed-sleep", "20", "10"]);
    assert_eq!(count(&s, "clock_nanosleep"), 20);
    // A 10 ms sleep takes at least 10 ms; the rest is the machine's and the oracle's.
    assert!(p50_ms(&s, "clock_nanosleep") >= 10.0);
    assert_p50_matches_own(&s, "clock_nanosleep", &own, 0);
}

#[test]
fn blocking_reads_pair_across_cpus() {
    // The reader blocks and is woken by another thread, often on the other CPU.
    // The thread start-up reads a few files itself; a run with 0 pipe reads gives that base.
    let base = record_workload(&temp_path("pipe-base.json"), &[], &["pipe", "0", "5"]);
    let (s, own) = record_timed(&temp_path("pipe.json"), &[], &["timed-pipe", "20", "5"]);
    let fast = count(&base, "read");
    assert_eq!(count(&s, "read") - fast, 20);
    assert_eq!(own.len(), 20);
    assert_p50_matches_own(&s, "read", &own, fast as usize);
}

#[test]
fn failures_counted_by_errno() {
    // The dynamic loader's own ENOENTs are the same in both runs; the difference is exact.
    let base = record_workload(&temp_path("enoent-base.json"), &[], &["enoent", "0"]);
    let s = record_workload(&temp_path("enoent.json"), &[], &["enoent", "500"]);
    let enoent = |v: &serde_json::Value| -> u64 {
        rows(v, "openat")
            .iter()
            .map(|r| r["errnos"]["ENOENT"].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!(enoent(&s) - enoent(&base), 500);
    assert_eq!(count(&s, "openat") - count(&base, "openat"), 500);
    let errors: u64 = rows(&s, "openat")
        .iter()
        .map(|r| r["errors"].as_u64().unwrap())
        .sum();
    assert!(errors >= 500);
}

#[test]
fn short_lived_children_leave_no_stale_state() {
    let s = record_workload(
        &temp_path("forks.json"),
        &[],
        &["forks", "3000", "getppid", "20000"],
    );
    assert_eq!(count(&s, "getppid"), 20_000);
    assert_eq!(count(&s, "clone"), 3000, "the parent's forks");
    assert_eq!(count(&s, "wait4"), 3000);
    assert_eq!(s["stale_events"], 0);
    assert_eq!(s["unpaired_events"], 0);
    assert_eq!(s["lost_events"], 0);
    // Every child and the workload itself end inside exit_group.
    assert_eq!(s["unfinished_calls"], 3001);
}

#[test]
fn by_process_separates_children() {
    let s = record_workload(
        &temp_path("by-process.json"),
        &["--by", "process"],
        &["forks", "3", "getppid", "50"],
    );
    let getppid = rows(&s, "getppid");
    assert_eq!(getppid.len(), 1);
    assert_eq!(getppid[0]["count"], 50);
    assert_eq!(getppid[0]["comm"], "workload");
    let pids: std::collections::BTreeSet<u64> = s["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 4, "the workload and its 3 children");
}

#[test]
fn exit_status_is_the_commands() {
    Record::to("/dev/null", &[])
        .command(&["sh", "-c", "exit 3"])
        .exits(3);
    Record::to("/dev/null", &[])
        .command(&["sh", "-c", "kill -KILL $$"])
        .exits(128 + 9);
}

/// Starts a workload that waits on stdin before running `steps`.
fn gated(steps: &[&str]) -> std::process::Child {
    Command::new(workload())
        .arg("gate")
        .args(steps)
        .stdin(Stdio::piped())
        .spawn()
        .expect("workload starts")
}

#[test]
fn pid_targets_only_that_process_and_its_children() {
    let mut a = Reaped(gated(&["getppid", "3000", "forks", "2"]));
    let mut b = Reaped(gated(&["getppid", "5000"]));
    let out = temp_path("pid.json");
    let rec = Record::json(&out, &["--by", "process", "-p", &a.id().to_string()])
        .into_command()
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rec = Reaped(rec);
    // Wait until syslat says it is tracing.
    let mut err = BufReader::new(rec.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("tracing 1 process"), "{line}");
    b.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(b.wait().unwrap().success());
    a.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(a.wait().unwrap().success());
    // syslat ends by itself once its only target has exited.
    let status = wait_for_exit(
        &mut rec,
        Duration::from_secs(10),
        "syslat did not stop after its target exited",
    );
    assert!(status.success());
    let s = summary(&out);
    assert_eq!(count(&s, "getppid"), 3000, "b's 5000 calls are not counted");
    let pids: std::collections::BTreeSet<u64> = s["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.contains(&(a.id() as u64)));
    assert!(
        !pids.contains(&(b.id() as u64)),
        "untargeted process appears"
    );
    assert_eq!(pids.len(), 3, "a and its two children");
    // The gate read was in flight when tracing started: the only unpaired exit.
    assert_eq!(s["unpaired_events"], 1);
}

#[test]
fn bad_inputs_fail_with_one_line() {
    fails_with(&["record", "-p", "3999999"], "no such process: 3999999");
    fails_with(&["record", "-d", "soon"], "invalid duration 'soon'");
    fails_with(&["record", "-d", "0"], "invalid duration");
    fails_with(
        &["record", "-o", "/nonexistent-dir/out.json", "--", "true"],
        "cannot write /nonexistent-dir/out.json",
    );
    fails_with(
        &["record", "--", "no-such-command-xyz"],
        "command not found: no-such-command-xyz",
    );
    fails_with(&["record", "-f", "xml"], "invalid value 'xml'");
    fails_with(&["frobnicate"], "unrecognized subcommand");
}

#[test]
fn unprivileged_user_is_told_what_is_missing() {
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(tests::syslat_bin())
        .args(["record", "-d", "1"])
        .output()
        .expect("setpriv runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("CAP_BPF and CAP_PERFMON"), "{stderr}");
}

#[test]
fn nothing_stays_attached_after_sigkill() {
    // Other syslat instances may run on this machine: follow only the programs that
    // appear with ours.
    let before = our_program_ids();
    let mut rec = Reaped(
        syslat(&["record", "-o", "/dev/null"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(rec.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("tracing all processes"), "{line}");
    let mine: Vec<u32> = our_program_ids().difference(&before).copied().collect();
    assert!(
        mine.len() >= 2,
        "sys_enter and sys_exit loaded while running: {mine:?}"
    );
    rec.kill().unwrap();
    rec.wait().unwrap();
    // The kernel releases programs when the last fd closes; allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = our_program_ids();
        let left: Vec<&u32> = mine.iter().filter(|id| now.contains(id)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "programs {left:?} still loaded after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigint_writes_the_final_dump() {
    let out = temp_path("sigint.json");
    let mut rec = Record::json(&out, &[]).start();
    let w = Command::new(workload())
        .args(["getppid", "1000"])
        .status()
        .unwrap();
    assert!(w.success());
    signal(&rec, Signal::SIGINT);
    let st = rec.wait().unwrap();
    assert_eq!(st.code(), Some(130));
    let s = summary(&out);
    assert!(
        count(&s, "getppid") >= 1000,
        "system-wide recording includes the workload"
    );
}
