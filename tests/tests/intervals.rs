//! Interval dumps (`record -i`), SIGUSR1, the HdrHistogram log format read back by an
//! independent implementation (Python `hdrh`), and crash safety of the output file.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{process::Command, time::Duration};

use tests::{Record, Signal, own_at_p50, own_durations, own_range, signal, temp_path, workload};

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?}: {e}")))
        .collect()
}

fn row_count(line: &serde_json::Value, syscall: &str) -> u64 {
    line["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["syscall"] == syscall)
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

#[test]
fn intervals_add_up_to_the_summary() {
    let out = temp_path("intervals.json");
    let _ = std::fs::remove_file(&out);
    // ~1.5 s of work in steps, so calls complete in several 200 ms intervals.
    Record::json(&out, &["-i", "200ms"])
        .workload(&[
            "getppid", "20000", "sleep", "15", "50", "getppid", "30000", "sleep", "15", "50",
            "getppid", "7",
        ])
        .run();
    let all = lines(&out);
    let (intervals, summary): (Vec<_>, Vec<_>) = all.iter().partition(|l| l["type"] == "interval");
    assert_eq!(summary.len(), 1);
    assert_eq!(all.last().unwrap()["type"], "summary");
    assert!(intervals.len() >= 5, "{} intervals", intervals.len());
    let summary = summary[0];
    assert_eq!(row_count(summary, "getppid"), 50_007);
    for syscall in ["getppid", "clock_nanosleep", "execve", "mmap"] {
        let sum: u64 = intervals.iter().map(|l| row_count(l, syscall)).sum();
        assert_eq!(
            sum,
            row_count(summary, syscall),
            "{syscall}: intervals vs summary"
        );
    }
    let calls: u64 = intervals.iter().map(|l| l["calls"].as_u64().unwrap()).sum();
    assert_eq!(calls, summary["calls"].as_u64().unwrap());
    // Each interval's histogram holds exactly its row's calls: decode with Python's hdrh.
    let mut script = String::from("import sys, json\nfrom hdrh.histogram import HdrHistogram\n");
    script.push_str("for line in open(sys.argv[1]):\n  for r in json.loads(line)['rows']:\n");
    script.push_str("    h = HdrHistogram.decode(r['hdr'])\n");
    script.push_str("    assert h.get_total_count() == r['count'], (r['syscall'], h.get_total_count(), r['count'])\n");
    script.push_str("    p = h.get_value_at_percentile(50)\n");
    script.push_str("    assert abs(p - r['p50_ns']) <= max(2, r['p50_ns'] // 500), (r['syscall'], p, r['p50_ns'])\n");
    script.push_str("print('ok')\n");
    let py = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&py.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
}

#[test]
fn hdrlog_is_read_by_an_independent_implementation() {
    let out = temp_path("rec.hlog");
    let _ = std::fs::remove_file(&out);
    let o = Record::to(&out, &["-i", "300ms", "-f", "hdrlog"])
        .workload(&[
            "getppid",
            "12345",
            "timed-sleep",
            "20",
            "40",
            "getppid",
            "100",
        ])
        .run();
    let own = own_durations(&o);
    // Python's hdrh log reader, per tag: total count and the 50th percentile.
    let script = r#"
import sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
ref = HdrHistogram(1, 3600 * 10**9, 3)
reader = HistogramLogReader(sys.argv[1], ref)
totals, intervals = {}, 0
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    intervals += 1
    tag = h.get_tag()
    t = totals.setdefault(tag, HdrHistogram(1, 3600 * 10**9, 3))
    t.add(h)
print(intervals)
for tag, h in sorted(totals.items()):
    print(tag, h.get_total_count(), h.get_value_at_percentile(50))
"#;
    let py = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&py.stdout);
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let mut it = stdout.lines();
    let intervals: u32 = it.next().unwrap().parse().unwrap();
    assert!(intervals >= 3, "{stdout}");
    let tags: std::collections::HashMap<&str, (u64, u64)> = it
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0], (f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .collect();
    assert_eq!(tags["getppid"].0, 12_445, "{stdout}");
    assert_eq!(tags["clock_nanosleep"].0, 20, "{stdout}");
    // At least 40 ms, no more than the matching sleep's own bracket (0.1 % for the
    // histogram's rounding), and not 10 % below it: however loaded the machine.
    let p50 = tags["clock_nanosleep"].1;
    let own = own_at_p50(&own, 0);
    assert!(
        p50 >= 40_000_000 && own_range(own).contains(&p50),
        "p50 {p50} ns, the workload's own {own} ns: {stdout}"
    );
    assert_eq!(tags["execve"].0, 1);
}

#[test]
fn sigusr1_forces_a_dump() {
    let out = temp_path("usr1.json");
    let _ = std::fs::remove_file(&out);
    let mut rec = Record::json(&out, &[]).start();
    assert!(
        Command::new(workload())
            .args(["getppid", "777"])
            .status()
            .unwrap()
            .success()
    );
    signal(&rec, Signal::SIGUSR1);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.lines().count() == 1 {
            let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            assert_eq!(v["type"], "interval");
            assert!(row_count(&v, "getppid") >= 777);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dump after SIGUSR1"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&rec, Signal::SIGINT);
    assert_eq!(rec.wait().unwrap().code(), Some(130));
    // The forced interval, the rest up to Ctrl-C as a second interval, then the summary;
    // the intervals add up to it.
    let all = lines(&out);
    assert_eq!(all.len(), 3);
    assert_eq!(all[1]["type"], "interval");
    assert_eq!(all[2]["type"], "summary");
    assert_eq!(
        row_count(&all[0], "getppid") + row_count(&all[1], "getppid"),
        row_count(&all[2], "getppid")
    );
}

#[test]
fn sigkill_leaves_only_complete_lines() {
    let out = temp_path("killed.json");
    let _ = std::fs::remove_file(&out);
    let mut rec = Record::json(&out, &["-i", "100ms"]).start();
    let w = Command::new(workload())
        .args(["getppid", "200000", "sleep", "8", "50"])
        .status()
        .unwrap();
    assert!(w.success());
    rec.kill().unwrap();
    rec.wait().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with('\n'), "the file ends with a complete line");
    let all = lines(&out);
    assert!(all.len() >= 3, "{} dumps before the kill", all.len());
    assert!(all.iter().all(|l| l["type"] == "interval"));
    let getppid: u64 = all.iter().map(|l| row_count(l, "getppid")).sum();
    assert!(
        getppid >= 200_000,
        "the workload's calls were dumped before the kill: {getppid}"
    );
}
