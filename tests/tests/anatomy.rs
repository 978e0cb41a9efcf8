//! Latency anatomy: each call's time split into on-CPU, run-queue wait and blocked, checked
//! against workloads whose split is known, and against the kernel's own per-thread
//! run-queue counter (`/proc/thread-self/schedstat`, run_delay) as an independent oracle.

use tests::{record_json, rows, syslat, temp_path, workload};

/// The summary row of `syscall` (grouped by syscall: one row).
fn row<'a>(summary: &'a serde_json::Value, syscall: &str) -> &'a serde_json::Value {
    let r = rows(summary, syscall);
    assert_eq!(r.len(), 1, "one {syscall} row in {summary}");
    r[0]
}

fn num(row: &serde_json::Value, k: &str) -> u64 {
    row[k]
        .as_u64()
        .unwrap_or_else(|| panic!("row field {k} in {row}"))
}

/// Every row's three parts sum exactly to its total.
fn assert_parts_sum(summary: &serde_json::Value) {
    for r in summary["rows"].as_array().expect("rows") {
        assert_eq!(
            num(r, "oncpu_total_ns") + num(r, "runq_total_ns") + num(r, "blocked_total_ns"),
            num(r, "total_ns"),
            "parts of {r}"
        );
    }
}

#[test]
fn getppid_runs_on_cpu() {
    let out = temp_path("anatomy-getppid.json");
    let s = record_json(&out, &["-s", "getppid"], &[workload(), "getppid", "100000"]);
    let r = row(&s, "getppid");
    assert_eq!(num(r, "count"), 100_000);
    let (total, oncpu) = (num(r, "total_ns"), num(r, "oncpu_total_ns"));
    assert!(
        oncpu * 10 >= total * 9,
        "on-CPU {oncpu} ns of {total} ns is under 90 %"
    );
    assert_parts_sum(&s);
}

#[test]
fn a_pipe_read_woken_later_is_blocked() {
    let out = temp_path("anatomy-pipe.json");
    // The dynamic loader's few reads come on top of the pipe's.
    let base = record_json(&out, &["-s", "read"], &[workload(), "pipe", "0", "5"]);
    let s = record_json(&out, &["-s", "read"], &[workload(), "pipe", "40", "5"]);
    let r = row(&s, "read");
    assert_eq!(num(r, "count") - num(row(&base, "read"), "count"), 40);
    let (total, blocked) = (num(r, "total_ns"), num(r, "blocked_total_ns"));
    assert!(
        blocked * 100 >= total * 85,
        "blocked {blocked} ns of {total} ns is under 85 %"
    );
    // A read blocks until the writer wakes it: a voluntary switch (a reader that was itself
    // kept off its CPU past the write finds the byte there and does not block).
    assert!(num(r, "switches") >= 30, "{r}");
    let p50 = num(r, "blocked_p50_ns");
    assert!((4_500_000..=7_000_000).contains(&p50), "blocked p50 {p50}");
    assert_parts_sum(&s);
}

/// A thread sharing CPU 0 with a SCHED_FIFO thread that spins 20 ms and sleeps 5 ms: its
/// 1 ms sleeps often wake while the CPU is taken, and wait on the run queue.
#[test]
fn run_queue_wait_matches_the_kernels_schedstat() {
    let out = temp_path("anatomy-starve.json");
    let o = syslat(&[
        "record",
        "--by",
        "thread",
        "-s",
        "clock_nanosleep",
        "-f",
        "json",
        "-o",
        out.to_str().expect("utf-8 path"),
        "--",
        workload(),
        "starve",
        "200",
        "1000",
        "20",
        "5",
    ])
    .output()
    .expect("syslat runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8_lossy(&o.stdout);
    let mut it = printed
        .split_whitespace()
        .map(|v| v.parse::<u64>().expect("number"));
    let (tid, run_delay) = (it.next().expect("tid"), it.next().expect("run_delay"));
    let s = tests::summary(&out);
    let victim: Vec<_> = rows(&s, "clock_nanosleep")
        .into_iter()
        .filter(|r| r["tid"].as_u64() == Some(tid))
        .collect();
    assert_eq!(victim.len(), 1, "the sleeping thread {tid}'s row in {s}");
    let r = victim[0];
    assert_eq!(num(r, "count"), 200);
    let runq = num(r, "runq_total_ns");
    // The kernel counts waits outside the calls too (tiny here), we only those inside.
    let (lo, hi) = (run_delay * 3 / 4, run_delay * 5 / 4);
    assert!(
        (lo..=hi).contains(&runq),
        "run-queue total {runq} ns vs schedstat run_delay {run_delay} ns (±25 %)"
    );
    assert!(num(r, "runq_p99_ns") >= 5_000_000, "runq p99 in {r}");
    let blocked_p50 = num(r, "blocked_p50_ns");
    assert!(
        (900_000..=1_500_000).contains(&blocked_p50),
        "blocked p50 {blocked_p50} ns, not about 1 ms"
    );
    assert!(num(r, "involuntary_switches") <= num(r, "switches"));
    assert_parts_sum(&s);
}
