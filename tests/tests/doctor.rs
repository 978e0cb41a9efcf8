//! `syslat doctor` and the choice of eBPF object: on this kernel (6.18, every feature
//! there) the default object, and the legacy one when `SYSLAT_FORCE_FALLBACK=1` asks for
//! it, for `doctor` and for a real recording (whose counts stay exact); and the syscall
//! programs on perf's tracepoint handler (what 7.2 and later get) when
//! `SYSLAT_SYSCALL_HOOK=perf` asks for them here: the same exact counts, arguments and paths.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use tests::{Record, count, syslat, temp_path};

fn doctor(force: bool) -> String {
    let mut c = syslat(&["doctor"]);
    if force {
        c.env("SYSLAT_FORCE_FALLBACK", "1");
    } else {
        c.env_remove("SYSLAT_FORCE_FALLBACK");
    }
    let o = c.output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn doctor_lists_every_feature_and_the_object() {
    let text = doctor(false);
    for feature in [
        "BPF ring buffer map",
        "task-local storage map",
        "bpf_task_storage_get in raw tracepoints",
        "bpf_get_current_task_btf in raw tracepoints",
        "BPF atomic or/and instructions",
        "bpf_get_current_ancestor_cgroup_id in raw tracepoints",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(feature))
            .unwrap_or_else(|| panic!("no line for {feature}:\n{text}"));
        assert_eq!(
            line[feature.len()..].split_whitespace().next(),
            Some("yes"),
            "{line}"
        );
    }
    assert!(text.contains("eBPF object  default\n"), "{text}");
    assert!(
        text.contains("status       syslat can trace here"),
        "{text}"
    );

    let forced = doctor(true);
    assert!(
        forced.contains("eBPF object  legacy (forced by SYSLAT_FORCE_FALLBACK)"),
        "{forced}"
    );
    assert!(forced.contains("kernel BTF   read into memory"), "{forced}");
}

/// Records the workload with `-vv`, on the legacy object when `force`; returns the summary
/// and the log.
fn record(force: bool) -> (serde_json::Value, String) {
    let out = temp_path(if force { "forced.json" } else { "default.json" });
    let o = Record::json(&out, &["-vv"])
        .workload(&["threads", "4", "25000", "forks", "200", "pipe", "10", "2"])
        .env("SYSLAT_FORCE_FALLBACK", force.then_some("1"))
        .run();
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    (tests::summary(&out), log)
}

#[test]
fn forced_fallback_records_exactly_with_the_legacy_object() {
    let (legacy, log) = record(true);
    assert!(
        log.contains("loading the legacy (fallbacks) eBPF object"),
        "{log}"
    );
    let (default, log) = record(false);
    assert!(log.contains("loading the default eBPF object"), "{log}");
    for s in [&legacy, &default] {
        assert_eq!(count(s, "getppid"), 100_000);
        assert_eq!(s["unpaired_events"], 0);
        assert_eq!(s["stale_events"], 0);
        assert_eq!(s["lost_events"], 0);
    }
    // The blocking pipe reads are switched out and come back through the tid-keyed hash
    // (legacy) or task storage (default): the same calls either way.
    for syscall in ["read", "clone", "clone3", "wait4", "exit_group"] {
        assert_eq!(
            count(&legacy, syscall),
            count(&default, syscall),
            "{syscall}"
        );
    }
    assert!(count(&legacy, "read") >= 10);
}

/// Records the workload with `-vv` and the syscall hook `hook`; returns the summary and the
/// log.
fn record_hooked(hook: &str, steps: &[&str], args: &[&str]) -> (serde_json::Value, String) {
    let out = temp_path(&format!("hook-{hook}.json"));
    let o = Record::json(&out, &[&["-vv"], args].concat())
        .workload(steps)
        .env("SYSLAT_SYSCALL_HOOK", Some(hook))
        .run();
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    (tests::summary(&out), log)
}

#[test]
fn perf_tracepoints_record_what_raw_tracepoints_do() {
    let steps = ["threads", "4", "25000", "forks", "200", "pipe", "10", "2"];
    let (raw, log) = record_hooked("raw", &steps, &[]);
    assert!(log.contains("syscall programs on raw tracepoints"), "{log}");
    let (perf, log) = record_hooked("perf", &steps, &[]);
    assert!(
        log.contains("syscall programs on perf tracepoints"),
        "{log}"
    );
    for s in [&raw, &perf] {
        assert_eq!(count(s, "getppid"), 100_000);
        assert_eq!(s["unpaired_events"], 0);
        assert_eq!(s["stale_events"], 0);
        assert_eq!(s["lost_events"], 0);
        assert_eq!(s["skipped_runs"], 0);
    }
    for syscall in ["read", "clone", "clone3", "wait4", "exit_group"] {
        assert_eq!(count(&raw, syscall), count(&perf, syscall), "{syscall}");
    }

    // The slow-call log's arguments come from the event record on this hook.
    let out = temp_path("hook-perf-slow.json");
    Record::json(&out, &["-s", "openat", "--slow", "1ns"])
        .workload(&["enoent", "5"])
        .env("SYSLAT_SYSCALL_HOOK", Some("perf"))
        .run();
    let text = std::fs::read_to_string(&out).unwrap();
    let slow = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| {
            v["type"] == "slow"
                && v["path"] == "/nonexistent/syslat-test-path"
                && v["errno"] == "ENOENT"
        })
        .count();
    assert_eq!(slow, 5, "{text}");

    let mut c = syslat(&["doctor"]);
    let o = c.env("SYSLAT_SYSCALL_HOOK", "perf").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("syscalls     perf tracepoints")
            && text.contains("forced by SYSLAT_SYSCALL_HOOK"),
        "{text}"
    );
}

#[test]
fn a_bad_syscall_hook_is_one_line_and_exit_2() {
    let o = syslat(&["record", "--", "true"])
        .env("SYSLAT_SYSCALL_HOOK", "kprobe")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "syslat: SYSLAT_SYSCALL_HOOK must be raw or perf, not \"kprobe\"\n"
    );
}
