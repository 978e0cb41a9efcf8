//! Overload and faults: drops are counted exactly when the event buffers overflow and `top`
//! shows them, a burst on an idle recording is drained before its CPU's log fills, Ctrl-C
//! still ends a flooded recording at once with its dump, memory stays
//! bounded with many short-lived processes, two instances both count exactly, and an output
//! that cannot be written (disk full, file removed) is an error that still hands all the
//! data over on stderr.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tests::{
    Reaped, Record, Signal, count, record_workload, run, signal, summary, temp_path, workload,
};

#[test]
fn overflow_drops_are_counted_exactly() {
    let full = record_workload(&temp_path("ov-full.json"), &[], &["getppid", "300000"]);
    assert_eq!(full["dropped_events"], 0);
    let tiny = record_workload(
        &temp_path("ov-tiny.json"),
        &["--ring-buffer", "4K"],
        &["getppid", "300000"],
    );
    let dropped = tiny["dropped_events"].as_u64().unwrap();
    assert!(
        dropped > 100_000,
        "4 KiB of event buffers cannot hold a 10 ms burst: {dropped}"
    );
    // Every call of the command is either counted or counted as dropped.
    assert_eq!(
        tiny["calls"].as_u64().unwrap() + dropped,
        full["calls"].as_u64().unwrap()
    );
    assert_eq!(tiny["lost_events"].as_u64().unwrap(), dropped);
    // And the text report says so.
    let o = run(&[
        "record",
        "--ring-buffer",
        "4K",
        "-o",
        "/dev/stdout",
        "--",
        workload(),
        "getppid",
        "100000",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("WARNING:") && text.contains("were lost"),
        "{text}"
    );
}

/// A recording that sat idle has its drains asleep (up to 500 ms apart); a burst must wake
/// it through the programs before the burst's CPU's log is full. One thread pinned to CPU 0
/// makes 1,000,000 calls, over seven times what that CPU's log holds (131,072 records: the
/// buffer is sized so on any number of CPUs), about half a second of calls: with only the
/// timed drains its log would overflow, with the wake-up at a quarter full nothing is lost.
#[test]
fn a_burst_on_an_idle_recording_is_drained_in_time() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let ring = format!("{}M", (4 * cpus).next_power_of_two());
    let calls = 1_000_000u64;
    let mut w = Reaped(
        Command::new("taskset")
            .args(["-c", "0", workload(), "gate", "getppid", &calls.to_string()])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = temp_path("idle-burst.json");
    let mut rec = Record::json(&out, &["--ring-buffer", &ring, "-p", &w.id().to_string()]).start();
    // Idle: the last drain is long past when the burst starts.
    std::thread::sleep(Duration::from_millis(1500));
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(w.wait().unwrap().success());
    // It ends by itself with its target.
    assert_eq!(rec.wait().unwrap().code(), Some(0));
    let s = summary(&out);
    assert_eq!(
        s["dropped_events"], 0,
        "a burst on an idle recording lost calls"
    );
    assert_eq!(count(&s, "getppid"), calls);
}

#[test]
fn ctrl_c_ends_a_flooded_recording_at_once() {
    let out = temp_path("flood.json");
    let mut rec = Record::json(&out, &["--ring-buffer", "4K"]).start();
    let mut storm = Reaped(
        Command::new(workload())
            .args(["threads", "2", "100000000"])
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    signal(&rec, Signal::SIGINT);
    let st = rec.wait().unwrap();
    let took = t.elapsed();
    storm.kill().unwrap();
    assert_eq!(st.code(), Some(130));
    assert!(
        took < Duration::from_secs(1),
        "took {took:?} to stop under a syscall storm"
    );
    let s = summary(&out);
    assert!(
        s["dropped_events"].as_u64().unwrap() > 0,
        "the overload is visible"
    );
    assert!(count(&s, "getppid") > 0);
}

/// Peak RSS (kB) of a running syslat, polled until it exits, with what its
/// `/proc/PID/status` said of its memory at that peak and when (for the failure message:
/// anonymous memory is syslat's heap, file and shared memory its mapped maps and binary).
fn peak_rss_while_running(mut child: Reaped) -> (u64, String, std::process::ExitStatus) {
    let started = std::time::Instant::now();
    let (mut peak, mut at_peak) = (0, String::new());
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (peak, at_peak, st);
        }
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            && kb > peak
        {
            peak = kb;
            let memory: Vec<String> = status
                .lines()
                .filter(|l| l.starts_with("VmRSS") || l.starts_with("Rss"))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            at_peak = format!("at {:?}: {}", started.elapsed(), memory.join(", "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn memory_stays_bounded_with_many_short_lived_processes() {
    let out = temp_path("many.json");
    let child = Reaped(
        Record::json(&out, &["--by", "process"])
            .workload(&["forks", "20000"])
            .into_command()
            .spawn()
            .unwrap(),
    );
    let (peak_kb, at_peak, st) = peak_rss_while_running(child);
    assert!(st.success());
    assert!(
        peak_kb > 0 && peak_kb < 64 * 1024,
        "peak RSS {peak_kb} kB with 20,000 processes ({at_peak})"
    );
    let s = summary(&out);
    assert_eq!(count(&s, "clone"), 20_000);
    let pids: std::collections::BTreeSet<u64> = s["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["pid"].as_u64())
        .collect();
    // Exited processes stay in the report, up to the default 10,000 keys; the rest fold
    // into exact `other` rows.
    assert!(pids.len() > 9_000, "{}", pids.len());
    assert!(s["folded_keys"].as_u64().unwrap() > 0);
}

#[test]
fn two_instances_both_count_exactly() {
    let a = temp_path("two-a.json");
    let b = temp_path("two-b.json");
    let spawn = |out: &std::path::Path, n: &str| {
        Record::json(out, &[])
            .workload(&["getppid", n])
            .into_command()
            .spawn()
            .unwrap()
    };
    let (mut x, mut y) = (Reaped(spawn(&a, "50000")), Reaped(spawn(&b, "70000")));
    assert!(x.wait().unwrap().success() && y.wait().unwrap().success());
    assert_eq!(count(&summary(&a), "getppid"), 50_000);
    assert_eq!(count(&summary(&b), "getppid"), 70_000);
}

#[test]
fn a_full_disk_is_an_error_that_keeps_the_data() {
    let o = Record::json("/dev/full", &[])
        .workload(&["getppid", "10"])
        .exits(2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("syslat: failed to write /dev/full")),
        "{err}"
    );
    let dumped = err
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("the summary on stderr");
    let v: serde_json::Value = serde_json::from_str(dumped).unwrap();
    assert_eq!(count(&v, "getppid"), 10);
}

/// JSON Lines of `text` (other lines, such as syslat's messages, are skipped).
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?}: {e}")))
        .collect()
}

/// Calls of `syscall` in the `interval` lines among `lines`.
fn in_intervals(lines: &[serde_json::Value], syscall: &str) -> u64 {
    lines
        .iter()
        .filter(|l| l["type"] == "interval")
        .map(|l| count(l, syscall))
        .sum()
}

#[test]
fn a_removed_output_file_is_an_error_that_keeps_the_data() {
    use std::io::{Read, Write};
    let out = temp_path("removed.jsonl");
    let path = out.to_str().unwrap();
    // 1000 calls, then the workload waits on its stdin (syslat's) before 2000 more.
    let mut rec = Reaped(
        Record::json(&out, &["-i", "100ms"])
            .workload(&["getppid", "1000", "gate", "getppid", "2000"])
            .into_command()
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&out).map_or(0, |t| in_intervals(&json_lines(&t), "getppid"))
        < 1000
    {
        assert!(
            Instant::now() < deadline,
            "no interval with the first calls"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first 1000 calls are now only in the file, which goes away.
    std::fs::remove_file(&out).unwrap();
    rec.stdin.take().unwrap().write_all(b"x").unwrap();
    let mut err = String::new();
    rec.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(rec.wait().unwrap().code(), Some(2), "{err}");
    let said = format!("syslat: failed to write {path}: the file was removed");
    assert_eq!(
        err.lines().filter(|l| l.starts_with(&said)).count(),
        1,
        "{err}"
    );
    // Everything is on stderr: the removed file's intervals, the later ones, the summary.
    let lines = json_lines(&err);
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary", "{err}");
    assert_eq!(count(summary, "getppid"), 3000);
    assert_eq!(in_intervals(&lines, "getppid"), 3000, "{err}");
    assert!(!out.exists());
}

#[test]
fn top_says_how_many_were_dropped() {
    let full = record_workload(&temp_path("top-full.json"), &[], &["getppid", "300000"]);
    let o = run(&[
        "top",
        "-b",
        "-i",
        "1s",
        "--ring-buffer",
        "4K",
        "--",
        workload(),
        "getppid",
        "300000",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let number_after = |line: &str, key: &str| -> u64 {
        let at = line
            .find(key)
            .unwrap_or_else(|| panic!("{key:?} in {line}"))
            + key.len();
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    let dropped: u64 = out
        .lines()
        .filter(|l| l.starts_with("syslat top - "))
        .map(|l| number_after(l, "dropped "))
        .sum();
    let traced: u64 = out
        .lines()
        .filter(|l| l.contains(" calls traced in "))
        .map(|l| number_after(l, ""))
        .sum();
    assert!(dropped > 100_000, "{out}");
    // Every call of the command is in a table or in a header's dropped count.
    assert_eq!(traced + dropped, full["calls"].as_u64().unwrap(), "{out}");
}
