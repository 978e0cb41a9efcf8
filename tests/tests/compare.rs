//! `syslat compare` as a CI gate, with the workload helper: real regressions fail (exit 1),
//! repeated identical recordings pass (exit 0) pairwise, and bad input exits 2.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::path::PathBuf;

use tests::{fails_with, record_workload, run, temp_path};

fn compare(args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["compare"];
    a.extend_from_slice(args);
    let o = run(&a);
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn status_of(json: &str, syscall: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["syscall"] == syscall)
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .into()
}

#[test]
fn slower_sleeps_regress() {
    let base = temp_path("cmp-10ms.json");
    record_workload(&base, &[], &["sleep", "100", "10"]);
    let new = temp_path("cmp-13ms.json");
    record_workload(&new, &[], &["sleep", "100", "13"]);
    let (code, out, err) = compare(&[base.to_str().unwrap(), new.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("verdict: REGRESSION") && last.contains("clock_nanosleep p50 +"),
        "{last}"
    );
    let (code, json, _) = compare(&["-f", "json", base.to_str().unwrap(), new.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(status_of(&json, "clock_nanosleep"), "regressed");
    let (code, md, _) = compare(&[
        "-f",
        "markdown",
        base.to_str().unwrap(),
        new.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(md.contains("| `clock_nanosleep` | **regressed** |"), "{md}");
}

#[test]
fn a_slowdown_of_tens_of_calls_regresses() {
    // 40 sleeps of 10 ms against 40 of 13 ms: under the old default of 100 calls, never
    // judged ("verdict: OK").
    let base = temp_path("cmp-40x10ms.json");
    record_workload(&base, &[], &["sleep", "40", "10"]);
    let new = temp_path("cmp-40x13ms.json");
    record_workload(&new, &[], &["sleep", "40", "13"]);
    let (code, out, err) = compare(&[base.to_str().unwrap(), new.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    let last = out.lines().last().unwrap();
    assert!(last.contains("clock_nanosleep p50 +"), "{last}");
    // The workload's start-up calls made once or twice are shown, not judged, and the
    // verdict says so.
    assert!(
        last.contains("rows not judged: fewer than 5 calls"),
        "{last}"
    );
    let again = temp_path("cmp-40x10ms-again.json");
    record_workload(&again, &[], &["sleep", "40", "10"]);
    let (code, out, _) = compare(&[base.to_str().unwrap(), again.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn identical_workloads_pass_pairwise() {
    let runs: Vec<PathBuf> = (0..10)
        .map(|i| {
            let out = temp_path(&format!("cmp-same-{i}.json"));
            record_workload(&out, &[], &["getppid", "20000", "sleep", "20", "2"]);
            out
        })
        .collect();
    let mut failures = Vec::new();
    for i in 0..runs.len() {
        for j in i + 1..runs.len() {
            let (code, out, _) = compare(&[runs[i].to_str().unwrap(), runs[j].to_str().unwrap()]);
            if code != 0 {
                failures.push(format!("{i} vs {j}: {}", out.lines().last().unwrap_or("")));
            }
        }
    }
    // Each comparison runs a test per row and metric at a small alpha; a whole run's
    // start-up calls can shift together (clean CI runs before `--run-drift` flagged mmap p50
    // +34% to +56% in up to 3 of 45 pairs), which the drift allowance now absorbs: at most
    // one pair in 45 may still be flagged, and only on a latency, never on counts. Between
    // single runs getppid's on-CPU tail is not judged (a CI run before that flagged 4 of 45
    // pairs: one run's p99 at 1.5 µs against 160 to 500 ns).
    assert!(
        failures.len() <= 1,
        "45 comparisons of the same workload, false positives: {failures:?}"
    );
    let (_, out, _) = compare(&[runs[0].to_str().unwrap(), runs[1].to_str().unwrap()]);
    assert!(
        out.lines().last().unwrap().contains("on-CPU tails of"),
        "the verdict says which tails were not judged: {out}"
    );
    for f in &failures {
        assert!(
            !f.contains("count ") && !f.contains("errors "),
            "a count flagged between identical workloads: {f}"
        );
    }
}

#[test]
fn call_counts_are_gated() {
    let n = temp_path("cmp-n.json");
    record_workload(&n, &[], &["getppid", "5000"]);
    let n2 = temp_path("cmp-n2.json");
    record_workload(&n2, &[], &["getppid", "5000"]);
    let two_n = temp_path("cmp-2n.json");
    record_workload(&two_n, &[], &["getppid", "10000"]);
    let (code, out, _) = compare(&[n.to_str().unwrap(), two_n.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .contains("getppid count +100.0%"),
        "{out}"
    );
    assert_eq!(compare(&[n.to_str().unwrap(), n2.to_str().unwrap()]).0, 0);
}

#[test]
fn a_syscall_only_in_new_is_reported_as_new() {
    let base = temp_path("cmp-nofork.json");
    record_workload(&base, &[], &["getppid", "1000"]);
    let new = temp_path("cmp-fork.json");
    record_workload(&new, &[], &["getppid", "1000", "forks", "2"]);
    let (code, json, _) = compare(&["-f", "json", base.to_str().unwrap(), new.to_str().unwrap()]);
    assert_eq!(status_of(&json, "wait4"), "new");
    assert_eq!(code, 0, "cheap new calls do not fail the gate: {json}");
}

#[test]
fn repeated_runs_side_by_side() {
    let a = temp_path("cmp-rep-a.json");
    record_workload(
        &a,
        &["--repeat", "3"],
        &["getppid", "3000", "sleep", "5", "2"],
    );
    let b = temp_path("cmp-rep-b.json");
    record_workload(
        &b,
        &["--repeat", "3"],
        &["getppid", "3000", "sleep", "5", "2"],
    );
    let text = std::fs::read_to_string(&a).unwrap();
    let runs: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "summary")
        .map(|v| v["run"].as_u64().unwrap())
        .collect();
    assert_eq!(runs, vec![1, 2, 3]);
    let (code, out, _) = compare(&["--base", a.to_str().unwrap(), "--new", b.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("base: 3 run(s), new: 3 run(s)"), "{out}");
    let slow = temp_path("cmp-rep-slow.json");
    record_workload(
        &slow,
        &["--repeat", "3"],
        &["getppid", "6000", "sleep", "5", "2"],
    );
    let (code, out, _) = compare(&[
        "--base",
        a.to_str().unwrap(),
        "--new",
        slow.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn bad_inputs_exit_2_with_one_line() {
    let good = temp_path("cmp-good.json");
    record_workload(&good, &[], &["getppid", "10"]);
    let junk = temp_path("cmp-junk.txt");
    std::fs::write(&junk, "not a recording\n").unwrap();
    let g = good.to_str().unwrap();
    for (args, expect) in [
        (
            vec!["/nonexistent/a.json", g],
            "cannot read /nonexistent/a.json",
        ),
        (vec![junk.to_str().unwrap(), g], "is not a syslat recording"),
        (
            vec!["--threshold", "p42=5%", g, g],
            "unknown threshold key 'p42'",
        ),
        (vec![g], "give BASE NEW"),
        (
            vec!["--by", "cgroup", g, g],
            "invalid value 'cgroup' for '--by",
        ),
    ] {
        let mut args = args;
        args.insert(0, "compare");
        fails_with(&args, expect);
    }
    let o = run(&["record", "--repeat", "2", "-d", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--repeat N needs"));
}
