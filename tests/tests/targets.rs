//! Targeting and filters, applied in the kernel: `-t`, `-c` (including a process started
//! later), `--cgroup`, `-s` (names and classes) and `--errors-only`, each with exact counts
//! while other workloads run beside the target.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{
    io::Write,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use tests::{
    Reaped, Record, Signal, cgroup_v2_root, count, fails_with, record_workload, rows, signal,
    summary, temp_path, wait_for_exit, workload,
};

fn gated(bin: &str, steps: &[&str]) -> Reaped {
    Reaped(
        Command::new(bin)
            .arg("gate")
            .args(steps)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn release(c: &mut Child) {
    c.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(c.wait().unwrap().success());
}

fn stop(mut rec: Reaped) {
    signal(&rec, Signal::SIGINT);
    assert_eq!(rec.wait().unwrap().code(), Some(130));
}

/// Waits for a recording of `-p`/`-t` targets that have all exited to end by itself, as it
/// must at once (each target's pidfd says when it is gone): exit 0 within a second.
fn ends_with_its_targets(mut rec: Reaped) {
    let status = wait_for_exit(
        &mut rec,
        std::time::Duration::from_secs(1),
        "syslat still runs 1 s after its targets exited",
    );
    assert_eq!(status.code(), Some(0));
}

/// A copy of the workload under a unique name (its comm), so concurrent runs elsewhere on
/// the machine cannot match it.
fn renamed(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(name);
    std::fs::copy(workload(), &p).unwrap();
    p
}

#[test]
fn tid_traces_only_that_thread() {
    let mut w = gated(workload(), &["mixed", "3000", "5000"]);
    let out = temp_path("tid.json");
    let rec = Record::json(&out, &["-t", &w.id().to_string()]).start();
    release(&mut w);
    ends_with_its_targets(rec);
    let s = summary(&out);
    assert_eq!(count(&s, "getppid"), 3000, "only the main thread's calls");
}

/// A process already spinning in syscalls when `-p` names it is traced from the moment
/// syslat attaches, although it never blocks and keeps its CPU (whose per-CPU identity memo
/// must pick it up). Bound: a 1 s window of a loop that makes about two million calls a
/// second on this kind of machine must see at least 100,000 of them.
#[test]
fn a_running_process_is_traced_from_attach() {
    let mut w = Reaped(
        Command::new(workload())
            .args(["time-getppid", "1000000000"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = temp_path("running.json");
    let mut rec = Record::json(&out, &["-p", &w.id().to_string(), "-d", "1s"]).start();
    assert!(rec.wait().unwrap().success());
    w.kill().unwrap();
    let n = count(&summary(&out), "getppid");
    assert!(n >= 100_000, "only {n} getppid calls traced in 1 s");
}

#[test]
fn comm_picks_up_matching_processes_old_and_new() {
    let me = std::process::id() % 100_000;
    let (name, other) = (format!("slc{me}"), format!("slo{me}"));
    let (bin, other_bin) = (renamed(&name), renamed(&other));
    let mut before = gated(bin.to_str().unwrap(), &["getppid", "1000"]);
    let out = temp_path("comm.json");
    let rec = Record::json(&out, &["-c", &name, "--by", "process"]).start();
    release(&mut before);
    // Started after syslat: picked up at exec.
    assert!(
        Command::new(&bin)
            .args(["getppid", "2000"])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new(&other_bin)
            .args(["getppid", "4000"])
            .status()
            .unwrap()
            .success()
    );
    stop(rec);
    let s = summary(&out);
    assert_eq!(count(&s, "getppid"), 3000);
    assert!(
        rows(&s, "getppid")
            .iter()
            .all(|r| r["comm"] == name.as_str())
    );
    // The exec that brought the later process in is its first traced call, not a loss;
    // the other name's exec is not ours at all. The one unpaired return is the gated
    // process's read of stdin, which began before tracing did.
    assert_eq!(count(&s, "execve"), 1);
    assert_eq!(s["unpaired_events"], 1);
    assert_eq!(s["stale_events"], 0);
}

#[test]
fn cgroup_traces_its_processes_only() {
    let root = cgroup_v2_root();
    let dir = root.join(format!("syslat-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut inside = gated(
        workload(),
        &["getppid", "1500", "forks", "2", "getppid", "500"],
    );
    let mut outside = gated(workload(), &["getppid", "7000"]);
    std::fs::write(dir.join("cgroup.procs"), inside.id().to_string()).unwrap();
    let out = temp_path("cgroup.json");
    let rec = Record::json(
        &out,
        &["--cgroup", dir.to_str().unwrap(), "--by", "process"],
    )
    .start();
    release(&mut outside);
    release(&mut inside);
    stop(rec);
    let _ = std::fs::remove_dir(&dir);
    let s = summary(&out);
    assert_eq!(
        count(&s, "getppid"),
        2000,
        "the process moved into the cgroup, not the other"
    );
    assert_eq!(count(&s, "clone"), 2);
}

#[test]
fn syscall_filter_keeps_only_the_named_calls() {
    let s = record_workload(
        &temp_path("filter-getppid.json"),
        &["-s", "getppid"],
        &["getppid", "500", "enoent", "20"],
    );
    let names: Vec<&str> = s["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["syscall"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["getppid"]);
    assert_eq!(count(&s, "getppid"), 500);
    assert_eq!(s["unpaired_events"], 0, "filtered calls are not losses");
    let s = record_workload(
        &temp_path("filter-file.json"),
        &["-s", "%file"],
        &["getppid", "500", "enoent", "20"],
    );
    assert_eq!(count(&s, "getppid"), 0);
    assert!(count(&s, "openat") >= 20);
    assert!(rows(&s, "openat")[0]["errnos"]["ENOENT"].as_u64().unwrap() >= 20);
}

#[test]
fn errors_only_counts_failures() {
    let s = record_workload(
        &temp_path("errors-only.json"),
        &["--errors-only"],
        &["enoent", "300", "getppid", "1000"],
    );
    assert_eq!(count(&s, "getppid"), 0);
    for r in s["rows"].as_array().unwrap() {
        assert_eq!(r["errors"], r["count"], "{r}");
    }
    let base = record_workload(
        &temp_path("errors-only-base.json"),
        &["--errors-only"],
        &["enoent", "0"],
    );
    assert_eq!(count(&s, "openat") - count(&base, "openat"), 300);
}

#[test]
fn bad_filters_fail_with_one_line() {
    for (args, expect) in [
        (
            vec!["record", "-s", "opnat"],
            "unknown syscall 'opnat' (did you mean",
        ),
        (
            vec!["record", "-s", "%disk"],
            "unknown syscall class '%disk'",
        ),
        (
            vec!["record", "-c", "a-name-longer-than-15"],
            "invalid process name",
        ),
        (
            vec!["record", "--cgroup", "/tmp"],
            "not a cgroup v2 directory",
        ),
        (
            vec!["record", "--container", "deadbeefcafe"],
            "no running container with id deadbeefcafe",
        ),
        // A short word is a container name, asked of the runtime; never a substring of
        // any cgroup path (it used to match docker.service and trace every container).
        (
            vec!["record", "--container", "dock"],
            "no container named 'dock'",
        ),
        (vec!["record", "--container", "x"], "invalid container 'x'"),
        (vec!["record", "-t", "3999997"], "no such thread: 3999997"),
        (
            vec!["record", "-p", "1", "-c", "x"],
            "give one kind of target",
        ),
    ] {
        fails_with(&args, expect);
    }
}

#[test]
fn by_thread_rows_match_each_threads_calls() {
    let s = record_workload(
        &temp_path("by-thread.json"),
        &["--by", "thread"],
        &["mixed", "3000", "5000"],
    );
    let mut per_thread: Vec<u64> = rows(&s, "getppid")
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .collect();
    per_thread.sort_unstable();
    assert_eq!(per_thread, vec![3000, 5000]);
    let tids: std::collections::BTreeSet<u64> = rows(&s, "getppid")
        .iter()
        .map(|r| r["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(tids.len(), 2);
    assert_eq!(s["by"], "thread");
}

#[test]
fn max_keys_folds_with_exact_totals() {
    // 40 children, each making a few syscalls of their own, capped at 5 keys.
    let full = record_workload(
        &temp_path("keys-all.json"),
        &["--by", "process"],
        &["forks", "40", "getppid", "100"],
    );
    let capped = record_workload(
        &temp_path("keys-5.json"),
        &["--by", "process", "--max-keys", "5"],
        &["forks", "40", "getppid", "100"],
    );
    // --max-keys counts processes (each keeps all its syscall rows), not rows.
    let keys = |v: &serde_json::Value| -> std::collections::BTreeSet<u64> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r.get("other").is_none())
            .map(|r| r["pid"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(keys(&capped).len(), 5);
    assert_eq!(keys(&full).len(), 41, "the parent and its 40 children");
    assert_eq!(capped["folded_keys"], 36);
    assert_eq!(full["folded_keys"], 0);
    let none = record_workload(
        &temp_path("keys-0.json"),
        &["--by", "process", "--max-keys", "0"],
        &["forks", "3"],
    );
    assert!(keys(&none).is_empty());
    assert_eq!(none["folded_keys"], 4);
    assert_eq!(capped["calls"], full["calls"], "folding loses no call");
    assert_eq!(count(&capped, "getppid"), 100);
    assert_eq!(count(&capped, "clone"), 40);
    assert!(
        rows(&capped, "exit_group").is_empty(),
        "exit_group never returns, so is never a row"
    );
    let other: Vec<&serde_json::Value> = capped["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["other"] == true)
        .collect();
    assert!(
        !other.is_empty()
            && other
                .iter()
                .all(|r| r["comm"] == "other" && r.get("pid").is_none())
    );
}

#[test]
fn slow_log_has_exactly_the_slow_calls() {
    let out = temp_path("slow.json");
    Record::json(&out, &["--slow", "5ms"])
        .workload(&["sleep", "4", "10", "sleep", "20", "1", "getppid", "1000"])
        .run();
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let slow: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "slow").collect();
    assert_eq!(
        slow.len(),
        4,
        "the four 10 ms sleeps, none of the 1 ms ones: {text}"
    );
    for s in &slow {
        assert_eq!(s["syscall"], "clock_nanosleep");
        assert!(s["duration_ns"].as_u64().unwrap() >= 10_000_000);
        assert_eq!(s["comm"], "workload");
        assert_eq!(s["args"][0], 1, "CLOCK_MONOTONIC, the first argument");
        assert_eq!(s["ret"], 0);
    }
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(
        count(summary, "clock_nanosleep"),
        24,
        "slow calls are still in the histograms"
    );
}

#[test]
fn by_cgroup_rows_carry_the_cgroup() {
    let root = cgroup_v2_root();
    let me = std::process::id();
    let (a_dir, b_dir) = (
        root.join(format!("syslat-a-{me}")),
        root.join(format!("syslat-b-{me}")),
    );
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let mut a = gated(workload(), &["getppid", "1200"]);
    let mut b = gated(workload(), &["getppid", "3400"]);
    std::fs::write(a_dir.join("cgroup.procs"), a.id().to_string()).unwrap();
    std::fs::write(b_dir.join("cgroup.procs"), b.id().to_string()).unwrap();
    let out = temp_path("bycgroup.json");
    let pids = format!("{},{}", a.id(), b.id());
    let rec = Record::json(&out, &["-p", &pids, "--by", "cgroup"]).start();
    release(&mut a);
    release(&mut b);
    ends_with_its_targets(rec);
    let _ = std::fs::remove_dir(&a_dir);
    let _ = std::fs::remove_dir(&b_dir);
    let s = summary(&out);
    assert_eq!(s["by"], "cgroup");
    let by_cg: std::collections::BTreeMap<String, u64> = rows(&s, "getppid")
        .iter()
        .map(|r| {
            (
                r["cgroup"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_cg.get(&format!("/syslat-a-{me}")),
        Some(&1200),
        "{by_cg:?}"
    );
    assert_eq!(
        by_cg.get(&format!("/syslat-b-{me}")),
        Some(&3400),
        "{by_cg:?}"
    );
}

#[test]
fn slow_log_reads_paths_of_open_like_calls() {
    let out = temp_path("slowpath.json");
    Record::json(&out, &["-s", "openat", "--slow", "1ns"])
        .workload(&["enoent", "5"])
        .run();
    let text = std::fs::read_to_string(&out).unwrap();
    let ours: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "slow" && v["path"] == "/nonexistent/syslat-test-path")
        .collect();
    assert_eq!(ours.len(), 5, "{text}");
    assert!(
        ours.iter()
            .all(|v| v["errno"] == "ENOENT" && v["syscall"] == "openat")
    );
}
