//! Latency anatomy: each call's time split into on-CPU, run-queue wait and blocked, checked
//! against workloads whose split is known, against the kernel's own per-thread run-queue
//! counter (`/proc/thread-self/schedstat`, run_delay, which syslat's split is taken from),
//! and against an independent tracer: bpftrace timing wake-up (or preemption) to switch-in
//! in the same run, the way bcc's runqlat does.

use tests::{
    Record, Signal, own_at_p50, own_range, record_timed, record_workload, rows, signal, temp_path,
};

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
    let s = record_workload(&out, &["-s", "getppid"], &["getppid", "100000"]);
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
    let base = record_workload(&out, &["-s", "read"], &["pipe", "0", "5"]);
    let (s, own) = record_timed(&out, &["-s", "read"], &["timed-pipe", "40", "5"]);
    let r = row(&s, "read");
    let fast = num(row(&base, "read"), "count");
    assert_eq!(num(r, "count") - fast, 40);
    let (total, blocked) = (num(r, "total_ns"), num(r, "blocked_total_ns"));
    assert!(
        blocked * 100 >= total * 85,
        "blocked {blocked} ns of {total} ns is under 85 %"
    );
    // A read blocks until the writer wakes it: a voluntary switch (a reader that was itself
    // kept off its CPU past the write finds the byte there and does not block).
    assert!(num(r, "switches") >= 30, "{r}");
    // Each read's blocked part lies inside the workload's own bracket of it: the p50 is no
    // larger than the matching bracket's (however loaded the machine), and a read woken
    // after 5 ms blocks for most of them.
    let p50 = num(r, "blocked_p50_ns");
    let own = own_at_p50(&own, fast as usize);
    assert!(
        (4_500_000..=*own_range(own).end()).contains(&p50),
        "blocked p50 {p50} ns, the workload's own {own} ns"
    );
    assert_parts_sum(&s);
}

/// A thread sharing CPU 0 with a SCHED_FIFO thread that spins 20 ms and sleeps 5 ms: its
/// 1 ms sleeps often wake while the CPU is taken, and wait on the run queue.
/// bpftrace's run-queue wait per thread id: from a wake-up, or a switch-out while still
/// runnable (preempted; the low 7 bits of `prev_state` are 0), to the switch-in.
const RUNQLAT: &str = r#"
tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new { @q[args->pid] = nsecs; }
tracepoint:sched:sched_switch {
  if ((args->prev_state & 0x7f) == 0) { @q[args->prev_pid] = nsecs; }
  $t = @q[args->next_pid];
  if ($t != 0) { @rq[args->next_pid] += nsecs - $t; delete(@q[args->next_pid]); }
}
END { clear(@q); }
"#;

/// bpftrace running [`RUNQLAT`], stopped (SIGINT) and read by [`Runqlat::finish`].
struct Runqlat(std::process::Child);

impl Runqlat {
    fn start() -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new("bpftrace")
            .args(["-e", RUNQLAT])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("bpftrace runs (cargo xtask setup installs it)");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("bpftrace's first line");
        assert!(line.starts_with("Attaching"), "bpftrace: {line}");
        child.stdout = Some(out.into_inner());
        Runqlat(child)
    }

    /// The run-queue total of thread `tid`, ns.
    fn finish(mut self, tid: u64) -> u64 {
        use std::io::Read as _;
        signal(&self.0, Signal::SIGINT);
        let mut text = String::new();
        self.0
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut text)
            .expect("bpftrace output");
        assert!(self.0.wait().expect("bpftrace exits").success(), "{text}");
        let key = format!("@rq[{tid}]: ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .map(|v| v.trim().parse().expect("a number"))
            .unwrap_or_else(|| panic!("no run-queue total for {tid} from bpftrace: {text}"))
    }
}

#[test]
fn run_queue_wait_matches_the_kernels_schedstat() {
    let out = temp_path("anatomy-starve.json");
    let oracle = Runqlat::start();
    let o = Record::json(&out, &["--by", "thread", "-s", "clock_nanosleep"])
        .workload(&["starve", "200", "1000", "20", "5"])
        .run();
    let printed = String::from_utf8_lossy(&o.stdout);
    let mut it = printed
        .split_whitespace()
        .map(|v| v.parse::<u64>().expect("number"));
    let (tid, run_delay) = (it.next().expect("tid"), it.next().expect("run_delay"));
    let traced = oracle.finish(tid);
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
    // bpftrace saw the whole run of the thread, also its (tiny) waits outside the calls.
    let (lo, hi) = (traced * 9 / 10, traced * 11 / 10);
    assert!(
        (lo..=hi).contains(&runq),
        "run-queue total {runq} ns vs bpftrace's {traced} ns (±10 %)"
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
